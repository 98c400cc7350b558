-- windshift PostgreSQL engine, migration 005: appends in batches.
--
-- Applied as 001 says: in one transaction, search_path set to the schema.
--
-- Appends to one stream take turns on its row lock anyway (001), and each
-- commit waits for the write-ahead log to reach the disk. When several
-- publishes of one process wait for the same stream, the engine sends them
-- as one call of append_many(): the same append() for each, in order, in
-- one transaction, so one commit (and one flush) stores them all. Each event
-- keeps its own outcome (a failed check refuses that event only; the events
-- before and after it are stored), and an idempotency key repeated within
-- the batch is a duplicate of its first event, as it would be one by one.

-- Calls append() for each event i of the arrays, in order; one row per event.
CREATE FUNCTION append_many(
  p_stream integer,
  p_subjects jsonb,
  p_subject text[],
  p_headers jsonb[],
  p_payload bytea[],
  p_msg_id text[],
  p_expected_last_id bigint[],
  p_expected_last_subject_id bigint[]
)
RETURNS TABLE (n integer, outcome text, id bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  r record;
BEGIN
  FOR i IN 1 .. coalesce(cardinality(p_subject), 0) LOOP
    SELECT a.outcome, a.id INTO r
      FROM append(p_stream, p_subjects, p_subject[i], p_headers[i], p_payload[i], p_msg_id[i],
                  p_expected_last_id[i], p_expected_last_subject_id[i]) a;
    n := i;
    outcome := r.outcome;
    id := r.id;
    RETURN NEXT;
  END LOOP;
END
$$;

INSERT INTO migrations (version, name) VALUES (5, 'append_batches');
