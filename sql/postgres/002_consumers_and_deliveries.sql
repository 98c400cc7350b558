-- windshift PostgreSQL engine, migration 002: consumers and their deliveries.
--
-- Applied as 001 says: in one transaction, search_path set to the schema.
--
-- THE DESIGN
--   consumers   One row per consumer of a stream (durable, or ephemeral with a
--               generated name). `config` is the engine's whole ConsumerConfig
--               as JSON (camelCase keys, `null` for unset, `from` as given at
--               creation: an update keeps it). `filter` is the consumer's
--               subjects compiled to one anchored regular expression (NULL:
--               every subject), so claims filter in SQL. `next_id` is the
--               consumer's position: the last id handed out or looked past
--               (JetStream's delivered stream sequence). As ids are gapless
--               and commit in id order (001), `id > next_id` never skips an
--               event committed late.
--
--   deliveries  One row per event delivered and not settled yet, PRIMARY KEY
--               (consumer, event_id). `due_at` is when the row may be claimed
--               again: the end of the processing lease while in flight, the
--               end of a nak's delay, or now for a release. `attempts` counts
--               deliveries made. Settling (ack, term) deletes the row; an event
--               that leaves its stream takes its rows with it (the foreign key
--               to events). No state column: in flight and waiting are both
--               "not due before due_at", and a settled row is gone.
--
-- ACK FLOOR
--   Not stored: it is the lowest unsettled id less one, or `next_id` when none
--   is unsettled, read from the primary key. Storing it would make every ack
--   lock the consumer row and queue behind claims.
--
-- CLAIMS
--   claim() hands out at most p_max deliveries in one statement. First the
--   due rows (oldest due first), taken with FOR UPDATE SKIP LOCKED, so
--   competing claimers never take the same row and never wait for each
--   other; each gets attempts + 1 and a new lease. Rows due with every
--   allowed attempt made (maxDeliveryAttempts) are deleted instead: never
--   redelivered. Then new events, under the consumer row's lock (claimers
--   take turns here, for one statement's length): the stream's `last_id` is
--   read first, then events in (next_id, last_id] are scanned: every one of
--   them committed before `last_id` was read, so the scan sees them all, and
--   next_id can move to `last_id` when fewer matched than were wanted.
--   maxUnsettledEvents caps the rows a consumer has.
--
-- LOCK ORDER
--   Delivery rows before the consumer row, in claim() and settle() alike.

CREATE TABLE consumers (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream integer NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  name text NOT NULL,
  config jsonb NOT NULL CHECK (jsonb_typeof(config -> 'subjects') = 'array'),
  filter text,
  next_id bigint NOT NULL CHECK (next_id >= 0),
  active_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  created timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream, name)
);

CREATE TABLE deliveries (
  consumer integer NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
  stream integer NOT NULL,
  event_id bigint NOT NULL,
  attempts integer NOT NULL CHECK (attempts > 0),
  due_at timestamptz NOT NULL,
  PRIMARY KEY (consumer, event_id),
  FOREIGN KEY (stream, event_id) REFERENCES events (stream, id) ON DELETE CASCADE
);

-- Due rows of a consumer, oldest first.
CREATE INDEX deliveries_due ON deliveries (consumer, due_at, event_id);
-- For the foreign key's cascade when events are removed.
CREATE INDEX deliveries_event ON deliveries (stream, event_id);

-- Whether a consumer with inactiveThresholdMs went unused (no claim, no
-- ensure) for longer: it is then gone, as JetStream removes it, though its
-- row stays until drop_inactive() deletes it.
CREATE FUNCTION inactive(p_config jsonb, p_active_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(p_active_at + (p_config ->> 'inactiveThresholdMs')::bigint * interval '1 millisecond'
                  <= clock_timestamp(), false)
$$;

-- Deletes the inactive consumers of stream `p_stream` (by name) with what
-- they had unsettled; how many.
CREATE FUNCTION drop_inactive(p_stream text) RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_ids integer[];
BEGIN
  SELECT array_agg(c.id) INTO v_ids
    FROM consumers c JOIN streams s ON s.id = c.stream
   WHERE s.name = p_stream AND inactive(c.config, c.active_at);
  IF v_ids IS NULL THEN
    RETURN 0;
  END IF;
  -- Delivery rows first, then the consumer rows: claim()'s lock order.
  DELETE FROM deliveries d WHERE d.consumer = ANY (v_ids);
  DELETE FROM consumers c WHERE c.id = ANY (v_ids);
  RETURN cardinality(v_ids);
END
$$;

-- The consumer `p_consumer` of stream `p_stream`; raises no_data_found
-- (P0002) with the message 'stream' or 'consumer' for what is missing (an
-- inactive consumer is missing).
CREATE FUNCTION consumer_row(p_stream text, p_consumer text, OUT id integer, OUT stream integer, OUT config jsonb)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
  SELECT c.id, c.stream, c.config INTO id, stream, config
    FROM consumers c JOIN streams s ON s.id = c.stream
   WHERE s.name = p_stream AND c.name = p_consumer AND NOT inactive(c.config, c.active_at);
  IF NOT FOUND THEN
    IF EXISTS (SELECT 1 FROM streams s WHERE s.name = p_stream) THEN
      RAISE EXCEPTION 'consumer' USING ERRCODE = 'no_data_found';
    END IF;
    RAISE EXCEPTION 'stream' USING ERRCODE = 'no_data_found';
  END IF;
END
$$;

-- Hands out at most p_max deliveries: due redeliveries first, in the order
-- they fell due (releases keep the order they were sent in), then new events.
CREATE FUNCTION claim(p_stream text, p_consumer text, p_max integer)
RETURNS TABLE (id bigint, subject text, headers jsonb, payload bytea, stored_at timestamptz, attempts integer)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v record;
  v_config jsonb;
  v_filter text;
  v_next bigint;
  v_last bigint;
  v_max integer;
  v_room integer;
  v_taken integer;
  v_now timestamptz := clock_timestamp();
  v_ids bigint[];
  v_idle bigint;
  v_cutoff timestamptz;
BEGIN
  SELECT * INTO v FROM consumer_row(p_stream, p_consumer);
  v_max := (v.config ->> 'maxDeliveryAttempts')::integer;
  -- A claim (of any size, 0 too) is activity: it keeps a consumer with
  -- inactiveThresholdMs alive, written at most every quarter threshold.
  v_idle := (v.config ->> 'inactiveThresholdMs')::bigint;
  IF v_idle IS NOT NULL THEN
    UPDATE consumers c SET active_at = v_now
     WHERE c.id = v.id AND c.active_at < v_now - (v_idle / 4) * interval '1 millisecond';
  END IF;
  -- Events older than the stream's maxAgeMs are never handed out, whether
  -- or not an append removed them yet.
  SELECT coalesce(v_now - (s.config ->> 'maxAgeMs')::bigint * interval '1 millisecond', '-infinity')
    INTO v_cutoff FROM streams s WHERE s.id = v.stream;

  IF v_max IS NOT NULL THEN
    DELETE FROM deliveries d
     WHERE (d.consumer, d.event_id) IN (
       SELECT x.consumer, x.event_id FROM deliveries x
        WHERE x.consumer = v.id AND x.due_at <= v_now AND x.attempts >= v_max
          FOR UPDATE SKIP LOCKED);
  END IF;

  RETURN QUERY
    WITH due AS (
      SELECT x.event_id, x.due_at FROM deliveries x
       WHERE x.consumer = v.id AND x.due_at <= v_now AND (v_max IS NULL OR x.attempts < v_max)
         AND EXISTS (SELECT 1 FROM events e WHERE e.stream = v.stream AND e.id = x.event_id AND e.stored_at > v_cutoff)
       ORDER BY x.due_at, x.event_id
       LIMIT p_max
         FOR UPDATE SKIP LOCKED
    ), taken AS (
      UPDATE deliveries d
         SET attempts = d.attempts + 1,
             due_at = v_now + (v.config ->> 'processingTimeoutMs')::bigint * interval '1 millisecond'
        FROM due
       WHERE d.consumer = v.id AND d.event_id = due.event_id
      RETURNING d.event_id, d.attempts
    )
    SELECT e.id, e.subject, e.headers, e.payload, e.stored_at, t.attempts
      FROM taken t
      JOIN due ON due.event_id = t.event_id
      JOIN events e ON e.stream = v.stream AND e.id = t.event_id
     ORDER BY due.due_at, due.event_id;
  GET DIAGNOSTICS v_taken = ROW_COUNT;
  IF v_taken >= p_max THEN
    RETURN;
  END IF;

  -- Claimers take turns from here; the config is read again under the lock.
  SELECT c.next_id, c.config, c.filter INTO v_next, v_config, v_filter
    FROM consumers c WHERE c.id = v.id FOR NO KEY UPDATE;
  SELECT least(p_max - v_taken, (v_config ->> 'maxUnsettledEvents')::integer - count(*))
    INTO v_room FROM deliveries d WHERE d.consumer = v.id;
  IF v_room <= 0 THEN
    RETURN;
  END IF;
  -- Every id up to v_last committed before this read: the next statement sees them all.
  SELECT s.last_id INTO v_last FROM streams s WHERE s.id = v.stream;

  -- FOR KEY SHARE: an event removed meanwhile (a limit, deleteEvent) is
  -- skipped, and one not removed yet stays until this statement ends, so the
  -- delivery row's foreign key always holds.
  WITH picked AS (
    SELECT e.id FROM events e
     WHERE e.stream = v.stream AND e.id > v_next AND e.id <= v_last
       AND (v_filter IS NULL OR e.subject ~ v_filter)
       AND e.stored_at > v_cutoff
     ORDER BY e.id
     LIMIT v_room
       FOR KEY SHARE
  ), inserted AS (
    INSERT INTO deliveries (consumer, stream, event_id, attempts, due_at)
    SELECT v.id, v.stream, p.id, 1,
           v_now + (v_config ->> 'processingTimeoutMs')::bigint * interval '1 millisecond'
      FROM picked p
    RETURNING event_id
  )
  SELECT array_agg(i.event_id ORDER BY i.event_id) INTO v_ids FROM inserted i;

  UPDATE consumers c
     SET next_id = CASE WHEN cardinality(v_ids) = v_room THEN v_ids[v_room] ELSE v_last END
   WHERE c.id = v.id;

  RETURN QUERY
    SELECT e.id, e.subject, e.headers, e.payload, e.stored_at, 1
      FROM events e
     WHERE e.stream = v.stream AND e.id = ANY (v_ids)
     ORDER BY e.id;
END
$$;

-- Settles event p_id of a consumer: 'ack' / 'term' delete its row,
-- 'progress' renews its lease, 'nak' / 'release' make it due after
-- p_delay_ms (or delete it when it has had every allowed attempt). True
-- when the event was unsettled; false when it was settled already or gone.
CREATE FUNCTION settle(p_stream text, p_consumer text, p_id bigint, p_kind text, p_delay_ms bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v record;
  v_now timestamptz := clock_timestamp();
  v_max integer;
BEGIN
  SELECT * INTO v FROM consumer_row(p_stream, p_consumer);
  v_max := (v.config ->> 'maxDeliveryAttempts')::integer;
  IF p_kind IN ('ack', 'term') THEN
    DELETE FROM deliveries d WHERE d.consumer = v.id AND d.event_id = p_id;
  ELSIF p_kind = 'progress' THEN
    UPDATE deliveries d
       SET due_at = v_now + (v.config ->> 'processingTimeoutMs')::bigint * interval '1 millisecond'
     WHERE d.consumer = v.id AND d.event_id = p_id;
  ELSIF p_kind IN ('nak', 'release') THEN
    DELETE FROM deliveries d
     WHERE d.consumer = v.id AND d.event_id = p_id AND v_max IS NOT NULL AND d.attempts >= v_max;
    IF NOT FOUND THEN
      UPDATE deliveries d
         SET due_at = v_now + greatest(p_delay_ms, 0) * interval '1 millisecond'
       WHERE d.consumer = v.id AND d.event_id = p_id;
    END IF;
  ELSE
    RAISE EXCEPTION 'unknown settlement %', p_kind USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN FOUND;
END
$$;

INSERT INTO migrations (version, name) VALUES (2, 'consumers_and_deliveries');
