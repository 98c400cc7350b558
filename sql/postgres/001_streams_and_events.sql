-- windshift PostgreSQL engine, migration 001: streams and their events.
--
-- HOW TO APPLY
--   Run each file of this folder once, in order, in one transaction each, with
--   search_path set to the target schema (which must exist):
--     BEGIN; SET LOCAL search_path TO windshift; \i 001_streams_and_events.sql; COMMIT;
--   Names here are unqualified, so one set of files serves any schema; the
--   functions keep the search_path they were created with. Each file records
--   itself in `migrations`, so a schema migrated by your own tool and one
--   migrated by windshift's `ensureSchema()` look the same, and either can
--   take over from the other. ensureSchema() does exactly the above, holding
--   a transaction-scoped advisory lock keyed on the schema name, so that
--   several processes may run it at once.
--
-- THE DESIGN
--   streams   One row per stream. `id` is a surrogate key, so events carry a
--             4-byte integer rather than the name, and a stream deleted and
--             created again under the same name never meets its predecessor's
--             events. `config` is the engine's whole StreamConfig as JSON
--             (camelCase keys, `null` for unlimited), subjects included; the
--             engine matches subjects (`*`, `>`) in the application with the
--             same code as the other engines, and refuses overlapping subjects
--             under an advisory lock on the catalog. `last_id` is the last id
--             ever given (0: none); ids are never reused.
--
--   events    One row per stored event, PRIMARY KEY (stream, id). `headers` is
--             a JSON array of [name, value] pairs (order and repeated names
--             kept), including the Nats-Msg-Id / Nats-Expected-* headers the
--             event was published with, as JetStream stores them. `msg_id` is
--             the idempotency key again, for the deduplication index.
--             `stored_at` is the database's clock, read after the stream's
--             lock is taken, so it never goes down as ids go up.
--
-- GAPLESS IDS IN COMMIT ORDER
--   append() takes the stream row's lock (FOR NO KEY UPDATE, the lock an
--   UPDATE takes) before anything else, makes its checks with fresh
--   snapshots, then `UPDATE streams SET last_id = last_id + 1 ... RETURNING`
--   and inserts the event, all in the caller's transaction. The lock is held
--   until that transaction ends, so the next append of the stream reads
--   `last_id` only after this one committed (or rolled back, giving its id
--   back). Ids are therefore gapless and committed in id order: a reader that
--   saw id N never later finds an id below N. A sequence would not do: it
--   hands out ids that commit in any order, and loses those rolled back. The
--   price is one writer per stream at a time; appends to different streams
--   do not wait for each other. Inside a long business transaction an append
--   holds its stream for that transaction's length.
--
-- DEDUPLICATION
--   Within the stream's deduplicationWindowMs (0: none), an event whose
--   idempotency key was stored is not stored again: append() returns the
--   first event's id with outcome 'duplicate'. The lookup runs under the
--   stream's lock on events_msg_id, so racing writers of one key store it
--   once. The window is measured on stored_at, the database's clock.
--   Keys live as long as their events: when limits and purges come, an event
--   removed before its window ends takes its key with it (JetStream keeps
--   it); keeping such keys would need a small table of their own.
--
-- WHAT COMES NEXT (later migrations)
--   consumers  (stream, name, config, next_id, ack_floor, …): as ids are
--              gapless and commit-ordered, a consumer's position is one
--              integer, and `WHERE stream = $1 AND id > $position ORDER BY id`
--              on the primary key never skips an event committed late.
--   deliveries (consumer, stream, id, attempts, due_at, …) with a foreign key
--              to events (stream, id); subscribers claim due rows with
--              FOR UPDATE SKIP LOCKED. The primary key and
--              events_last_per_subject serve filtered reads too.
--   key_values (bucket, key, revision, value, …) for compare-and-set.
--   Limits (maxEvents, maxBytes, maxAgeMs, …) need counters on streams,
--   kept in the same transaction as the insert, and the byte size of an
--   event; wake-ups need a NOTIFY in append().

CREATE TABLE IF NOT EXISTS migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE streams (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  config jsonb NOT NULL CHECK (jsonb_typeof(config -> 'subjects') = 'array'),
  last_id bigint NOT NULL DEFAULT 0 CHECK (last_id >= 0),
  created timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
  stream integer NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  id bigint NOT NULL CHECK (id > 0),
  subject text NOT NULL,
  headers jsonb NOT NULL DEFAULT '[]',
  payload bytea NOT NULL,
  stored_at timestamptz NOT NULL,
  msg_id text,
  PRIMARY KEY (stream, id)
);

-- The last event on a subject (expectedLastSubjectId, getEvent lastOn, and
-- later maxEventsPerSubject and consumers filtering on a literal subject).
CREATE INDEX events_last_per_subject ON events (stream, subject, id);

-- The newest event with an idempotency key, for deduplication.
CREATE INDEX events_msg_id ON events (stream, msg_id, id) WHERE msg_id IS NOT NULL;

-- Stores one event in stream `p_stream`, or says why not. `p_subjects` are
-- the subjects the caller matched `p_subject` against: when the stream is
-- gone or its subjects changed since, the outcome is 'moved' and nothing is
-- stored (the caller looks again). Checks in nats-server's order:
-- deduplication, then the subject's last id, then the stream's. Outcomes:
--   stored                 id, stored_at: the new event
--   duplicate              id, stored_at: the event first stored with the key
--   wrong_last_subject_id  id: the subject's last id (0: none)
--   wrong_last_id          id: the stream's last id
--   moved                  nothing
CREATE FUNCTION append(
  p_stream integer,
  p_subjects jsonb,
  p_subject text,
  p_headers jsonb,
  p_payload bytea,
  p_msg_id text,
  p_expected_last_id bigint,
  p_expected_last_subject_id bigint,
  OUT outcome text,
  OUT id bigint,
  OUT stored_at timestamptz
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_last bigint;
  v_window bigint;
  v_subjects jsonb;
  v_now timestamptz;
BEGIN
  -- The lock that serialises this stream's appends, held until commit. Each
  -- statement below takes a new snapshot, so it sees every append committed
  -- by the lock's previous holders.
  SELECT s.last_id, (s.config ->> 'deduplicationWindowMs')::bigint, s.config -> 'subjects'
    INTO v_last, v_window, v_subjects
    FROM streams s
   WHERE s.id = p_stream
     FOR NO KEY UPDATE;
  IF NOT FOUND OR v_subjects IS DISTINCT FROM p_subjects THEN
    outcome := 'moved';
    RETURN;
  END IF;
  v_now := clock_timestamp();

  IF p_msg_id IS NOT NULL AND v_window > 0 THEN
    SELECT e.id, e.stored_at INTO id, stored_at
      FROM events e
     WHERE e.stream = p_stream AND e.msg_id = p_msg_id
     ORDER BY e.id DESC
     LIMIT 1;
    IF FOUND AND stored_at > v_now - v_window * interval '1 millisecond' THEN
      outcome := 'duplicate';
      RETURN;
    END IF;
  END IF;

  IF p_expected_last_subject_id IS NOT NULL THEN
    SELECT coalesce(max(e.id), 0) INTO id
      FROM events e
     WHERE e.stream = p_stream AND e.subject = p_subject;
    IF id <> p_expected_last_subject_id THEN
      outcome := 'wrong_last_subject_id';
      stored_at := NULL;
      RETURN;
    END IF;
  END IF;

  IF p_expected_last_id IS NOT NULL AND v_last <> p_expected_last_id THEN
    outcome := 'wrong_last_id';
    id := v_last;
    stored_at := NULL;
    RETURN;
  END IF;

  UPDATE streams s SET last_id = s.last_id + 1 WHERE s.id = p_stream RETURNING s.last_id INTO id;
  INSERT INTO events (stream, id, subject, headers, payload, stored_at, msg_id)
  VALUES (p_stream, id, p_subject, p_headers, p_payload, v_now, p_msg_id);
  outcome := 'stored';
  stored_at := v_now;
END
$$;

INSERT INTO migrations (version, name) VALUES (1, 'streams_and_events');
