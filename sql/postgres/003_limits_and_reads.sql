-- windshift PostgreSQL engine, migration 003: stream limits, purges, reads and wake-ups.
--
-- Applied as 001 says: in one transaction, search_path set to the schema.
--
-- BYTES
--   An event's size is the memory engine's (recordBytes, engines/memory/
--   event-log.ts): subject, payload, and each header name and value, strings
--   in UTF-16 units (JavaScript's `length`), so both engines refuse the same
--   events. `events.bytes` holds it; `streams.event_count` / `byte_count`
--   hold the totals, kept by the functions here in the transaction of their
--   inserts and deletes, under the stream row's lock (FOR NO KEY UPDATE, as
--   append() takes it). Remove events only through them (or with their
--   stream): a DELETE by hand leaves the counters high. `last_stored_at` is
--   the last stored event's time even once it is gone (nats-server's
--   last_ts); `purged`: a whole-stream purge ran (an empty stream's first id
--   is then the next id, not 0).
--
-- LIMITS, in append(), in the memory engine's order (memory/stream.ts)
--   Under the stream's lock: events older than maxAgeMs go from the front
--   (stored_at grows with the id), then deduplication and the expected-id
--   checks of 001, then maxEventSize, then with discardPolicy "new" the
--   refusals (per subject with discardNewPerSubject; maxEvents unless the
--   event replaces the oldest of its subject, at its limit; maxBytes less
--   the replaced event's bytes). Then the event is stored and the oldest
--   over maxEventsPerSubject (its subject), maxEvents, then maxBytes go, the
--   new event too if it alone is over maxBytes. A refusal is an outcome, not
--   an error, so what expired stays deleted. No append scans the stream:
--   checks read at most maxEventsPerSubject + 1 entries of the subject, and
--   removals walk the front by the primary key only as far as they delete.
--   Expired events stay stored until the stream's next append, purge,
--   delete_event() or expire(); getEvent, reads and contents() leave them out
--   by stored_at. claim() (002) does not: the engine may call expire() first.
--
-- WAKE-UPS
--   A stored event sends NOTIFY on channel 'windshift', payload
--   '<schema> <stream id>', delivered at commit. Refusals and duplicates don't.
--
-- PURGES: purge() below, as nats-server 2.9's PurgeEx and memory/purge.ts.
--   Consumers' next_id moves (forward only) past the purged ids as the memory
--   engine moves them: every consumer on a plain purge; those without a
--   filter on one with keepLast, upToId or '>'; on a subject purge those
--   whose filter is exactly that subject, to before the first event left on
--   it. Delivery rows of purged events are deleted, so the derived ack floor
--   (002) follows. Locks in 002's order: stream row, delivery rows, all the
--   stream's consumer rows (no claim then inserts a delivery of a purged
--   event), events.
--
-- DEDUPLICATION: unchanged from 001: keys live as long as their events, so
--   one removed by a limit, purge or delete_event() within its window takes
--   its key along (the memory engine and JetStream keep it to the window's end).

ALTER TABLE events ADD COLUMN bytes integer NOT NULL DEFAULT 0;

ALTER TABLE streams
  ADD COLUMN event_count bigint NOT NULL DEFAULT 0, ADD COLUMN byte_count bigint NOT NULL DEFAULT 0,
  ADD COLUMN last_stored_at timestamptz, ADD COLUMN purged boolean NOT NULL DEFAULT false;

-- The length of p in UTF-16 code units (JavaScript's string length).
CREATE FUNCTION utf16_length(p text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT char_length(p) + CASE WHEN octet_length(p) > char_length(p)
    THEN (SELECT count(*)::integer FROM regexp_matches(p, '[\U00010000-\U0010FFFF]', 'g'))
    ELSE 0 END
$$;

-- An event's share of maxBytes: subject, payload, header names and values.
CREATE FUNCTION event_bytes(p_subject text, p_headers jsonb, p_payload bytea) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT utf16_length(p_subject) + octet_length(p_payload)
       + coalesce((SELECT sum(utf16_length(h ->> 0) + utf16_length(h ->> 1))::integer
                     FROM jsonb_array_elements(p_headers) h), 0)
$$;

-- Events stored before this migration.
UPDATE events SET bytes = event_bytes(subject, headers, payload);
UPDATE streams s SET event_count = c.n, byte_count = c.b
  FROM (SELECT e.stream, count(*) AS n, sum(e.bytes) AS b FROM events e GROUP BY e.stream) c WHERE s.id = c.stream;
UPDATE streams s
   SET last_stored_at = (SELECT e.stored_at FROM events e WHERE e.stream = s.id ORDER BY e.id DESC LIMIT 1);

-- Deletes the events of p_stream with ids below p_below (p_ids NULL), or
-- with ids in p_ids; returns how many and their bytes. The caller holds the
-- stream row's lock and subtracts them from the stream's counters.
CREATE FUNCTION drop_events(p_stream integer, p_below bigint, p_ids bigint[], OUT n bigint, OUT b bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF p_ids IS NULL THEN
    WITH d AS (DELETE FROM events e WHERE e.stream = p_stream AND e.id < p_below RETURNING e.bytes)
    SELECT count(*), coalesce(sum(d.bytes), 0) INTO n, b FROM d;
  ELSE
    WITH d AS (DELETE FROM events e WHERE e.stream = p_stream AND e.id = ANY (p_ids) RETURNING e.bytes)
    SELECT count(*), coalesce(sum(d.bytes), 0) INTO n, b FROM d;
  END IF;
END
$$;

-- Deletes the events of p_stream older than p_max_age_ms at p_now (none
-- when NULL), as drop_events(). They are a prefix: the first check is one
-- index probe, and the scan goes only as far as it deletes.
CREATE FUNCTION drop_expired(p_stream integer, p_max_age_ms bigint, p_now timestamptz, OUT n bigint, OUT b bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_cutoff timestamptz := p_now - p_max_age_ms * interval '1 millisecond'; v_live bigint;
BEGIN
  n := 0; b := 0;
  IF p_max_age_ms IS NULL OR NOT EXISTS (
    SELECT 1 FROM (SELECT e.stored_at FROM events e WHERE e.stream = p_stream ORDER BY e.id LIMIT 1) f
     WHERE f.stored_at <= v_cutoff) THEN
    RETURN;
  END IF;
  SELECT e.id INTO v_live FROM events e WHERE e.stream = p_stream AND e.stored_at > v_cutoff ORDER BY e.id LIMIT 1;
  SELECT x.n, x.b INTO n, b FROM drop_events(p_stream, coalesce(v_live, 9223372036854775807), NULL) x;
END
$$;

-- Deletes the expired events of stream p_stream now, unless an append (or
-- purge) holds the stream, which expires them itself; returns how many. For
-- the engine to call before claims, or on a timer.
CREATE FUNCTION expire(p_stream integer) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_max_age bigint; v record;
BEGIN
  SELECT (s.config ->> 'maxAgeMs')::bigint INTO v_max_age
    FROM streams s WHERE s.id = p_stream FOR NO KEY UPDATE SKIP LOCKED;
  IF NOT FOUND OR v_max_age IS NULL THEN
    RETURN 0;
  END IF;
  SELECT * INTO v FROM drop_expired(p_stream, v_max_age, clock_timestamp());
  IF v.n > 0 THEN
    UPDATE streams s SET event_count = s.event_count - v.n, byte_count = s.byte_count - v.b WHERE s.id = p_stream;
  END IF;
  RETURN v.n;
END
$$;

-- 001's append() with limits, byte accounting and the wake-up. Outcomes:
--   stored, duplicate, wrong_last_subject_id, wrong_last_id, moved  as in 001
--   event_too_large   the payload is over maxEventSize
--   subject_full      discard new per subject: the subject is at maxEventsPerSubject
--   stream_full       discard new: the stream is at maxEvents
--   bytes_full        discard new: the event would take the stream over maxBytes
CREATE OR REPLACE FUNCTION append(
  p_stream integer, p_subjects jsonb, p_subject text, p_headers jsonb, p_payload bytea, p_msg_id text,
  p_expected_last_id bigint, p_expected_last_subject_id bigint,
  OUT outcome text, OUT id bigint, OUT stored_at timestamptz
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_last bigint; v_config jsonb; v_count bigint; v_bytes bigint; v_now timestamptz; v_window bigint;
  v_max_events bigint; v_per_subject bigint; v_max_bytes bigint; v_size integer;
  v_on_subject bigint := 0; v_replaced integer; v_excess bigint; v_cut bigint; v_new bigint;
  v_n bigint; v_b bigint; r record;
BEGIN
  SELECT s.last_id, s.config, s.event_count, s.byte_count INTO v_last, v_config, v_count, v_bytes
    FROM streams s WHERE s.id = p_stream FOR NO KEY UPDATE;
  IF NOT FOUND OR v_config -> 'subjects' IS DISTINCT FROM p_subjects THEN
    outcome := 'moved'; RETURN;
  END IF;
  v_now := clock_timestamp();
  v_window := (v_config ->> 'deduplicationWindowMs')::bigint;
  v_max_events := (v_config ->> 'maxEvents')::bigint;
  v_per_subject := (v_config ->> 'maxEventsPerSubject')::bigint;
  v_max_bytes := (v_config ->> 'maxBytes')::bigint;

  SELECT x.n, x.b INTO v_n, v_b FROM drop_expired(p_stream, (v_config ->> 'maxAgeMs')::bigint, v_now) x;
  IF v_n > 0 THEN
    -- Kept now, as a refusal below returns early.
    v_count := v_count - v_n; v_bytes := v_bytes - v_b;
    UPDATE streams s SET event_count = v_count, byte_count = v_bytes WHERE s.id = p_stream;
  END IF;

  IF p_msg_id IS NOT NULL AND v_window > 0 THEN
    SELECT e.id, e.stored_at INTO id, stored_at
      FROM events e WHERE e.stream = p_stream AND e.msg_id = p_msg_id ORDER BY e.id DESC LIMIT 1;
    IF FOUND AND stored_at > v_now - v_window * interval '1 millisecond' THEN
      outcome := 'duplicate'; RETURN;
    END IF;
    id := NULL; stored_at := NULL;
  END IF;

  IF p_expected_last_subject_id IS NOT NULL THEN
    SELECT coalesce(max(e.id), 0) INTO id FROM events e WHERE e.stream = p_stream AND e.subject = p_subject;
    IF id <> p_expected_last_subject_id THEN
      outcome := 'wrong_last_subject_id'; RETURN;
    END IF;
    id := NULL;
  END IF;

  IF p_expected_last_id IS NOT NULL AND v_last <> p_expected_last_id THEN
    outcome := 'wrong_last_id'; id := v_last; RETURN;
  END IF;

  IF octet_length(p_payload) > (v_config ->> 'maxEventSize')::bigint THEN
    outcome := 'event_too_large'; RETURN;
  END IF;
  v_size := event_bytes(p_subject, p_headers, p_payload);
  IF v_per_subject IS NOT NULL THEN
    SELECT count(*) INTO v_on_subject FROM (
      SELECT 1 FROM events e WHERE e.stream = p_stream AND e.subject = p_subject LIMIT v_per_subject + 1) x;
  END IF;

  IF v_config ->> 'discardPolicy' = 'new' THEN
    IF v_on_subject >= v_per_subject THEN
      IF (v_config ->> 'discardNewPerSubject')::boolean THEN
        outcome := 'subject_full'; RETURN;
      END IF;
      -- It replaces the oldest of its subject: the stream does not grow.
      SELECT e.bytes INTO v_replaced
        FROM events e WHERE e.stream = p_stream AND e.subject = p_subject ORDER BY e.id LIMIT 1;
    END IF;
    IF v_replaced IS NULL AND v_count >= v_max_events THEN
      outcome := 'stream_full'; RETURN;
    END IF;
    IF v_bytes - coalesce(v_replaced, 0) + v_size > v_max_bytes THEN
      outcome := 'bytes_full'; RETURN;
    END IF;
  END IF;

  v_new := v_last + 1;
  INSERT INTO events (stream, id, subject, headers, payload, stored_at, msg_id, bytes)
  VALUES (p_stream, v_new, p_subject, p_headers, p_payload, v_now, p_msg_id, v_size);
  v_count := v_count + 1; v_bytes := v_bytes + v_size;

  IF v_on_subject >= v_per_subject THEN
    SELECT x.n, x.b INTO v_n, v_b FROM drop_events(p_stream, NULL, ARRAY(
      SELECT e.id FROM events e WHERE e.stream = p_stream AND e.subject = p_subject
       ORDER BY e.id DESC OFFSET v_per_subject)) x;
    v_count := v_count - v_n; v_bytes := v_bytes - v_b;
  END IF;

  IF v_count > v_max_events THEN
    SELECT e.id INTO v_cut FROM events e WHERE e.stream = p_stream ORDER BY e.id OFFSET v_count - v_max_events LIMIT 1;
    SELECT x.n, x.b INTO v_n, v_b FROM drop_events(p_stream, v_cut, NULL) x;
    v_count := v_count - v_n; v_bytes := v_bytes - v_b;
  END IF;

  IF v_bytes > v_max_bytes THEN
    v_excess := v_bytes - v_max_bytes;
    FOR r IN SELECT e.id, e.bytes FROM events e WHERE e.stream = p_stream ORDER BY e.id LOOP
      v_excess := v_excess - r.bytes;
      v_cut := r.id;
      EXIT WHEN v_excess <= 0;
    END LOOP;
    SELECT x.n, x.b INTO v_n, v_b FROM drop_events(p_stream, v_cut + 1, NULL) x;
    v_count := v_count - v_n; v_bytes := v_bytes - v_b;
  END IF;

  UPDATE streams s SET last_id = v_new, last_stored_at = v_now, event_count = v_count, byte_count = v_bytes
   WHERE s.id = p_stream;
  PERFORM pg_notify('windshift', current_schema() || ' ' || p_stream);
  outcome := 'stored'; id := v_new; stored_at := v_now;
END
$$;

-- Deletes event p_id of stream p_stream (expiring first, as the memory
-- engine does); false when it is not there. Raises no_data_found (P0002)
-- 'stream' when the stream is missing.
CREATE FUNCTION delete_event(p_stream text, p_id bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_id integer; v_max_age bigint; v_n bigint; v_b bigint; v_bytes integer;
BEGIN
  SELECT s.id, (s.config ->> 'maxAgeMs')::bigint INTO v_id, v_max_age
    FROM streams s WHERE s.name = p_stream FOR NO KEY UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'stream' USING ERRCODE = 'no_data_found'; END IF;
  SELECT x.n, x.b INTO v_n, v_b FROM drop_expired(v_id, v_max_age, clock_timestamp()) x;
  DELETE FROM events e WHERE e.stream = v_id AND e.id = p_id RETURNING e.bytes INTO v_bytes;
  UPDATE streams s
     SET event_count = s.event_count - v_n - (v_bytes IS NOT NULL)::integer,
         byte_count = s.byte_count - v_b - coalesce(v_bytes, 0)
   WHERE s.id = v_id AND (v_n > 0 OR v_bytes IS NOT NULL);
  RETURN v_bytes IS NOT NULL;
END
$$;

-- Purges stream p_stream as nats-server 2.9's PurgeEx does; returns how many
-- events it deleted (not counting expired ones). p_subject NULL: all
-- subjects; p_filter: p_subject as an anchored regular expression when it
-- has wildcards (NULL for a literal subject). Raises no_data_found (P0002)
-- 'stream' when the stream is missing.
--   Without a subject (or with '>'): keepLast 0 or none deletes the ids
--   below upToId (all, without it); an upToId past the end of an emptied
--   stream becomes the next id. keepLast n keeps the ids from
--   last_id - n + 1 on, unless the stream holds at most n events.
--   With a subject: its events below upToId, or all but its keepLast
--   newest, or all of them (keepLast wins over upToId).
CREATE FUNCTION purge(p_stream text, p_subject text, p_filter text, p_keep_last bigint, p_up_to bigint)
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v record; v_count bigint; v_last bigint; v_purged boolean; x record; v_n bigint := 0;
  v_b bigint := 0; v_cut bigint; v_ids bigint[]; v_first bigint;
  v_all boolean := p_subject IS NULL OR p_subject = '>';
BEGIN
  SELECT s.id, s.last_id, s.config, s.event_count, s.purged INTO v
    FROM streams s WHERE s.name = p_stream FOR NO KEY UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'stream' USING ERRCODE = 'no_data_found'; END IF;
  v_last := v.last_id;
  v_purged := v.purged;
  SELECT * INTO x FROM drop_expired(v.id, (v.config ->> 'maxAgeMs')::bigint, clock_timestamp());
  UPDATE streams s SET event_count = s.event_count - x.n, byte_count = s.byte_count - x.b
   WHERE s.id = v.id AND x.n > 0;
  v_count := v.event_count - x.n;

  IF v_all THEN
    IF coalesce(p_keep_last, 0) = 0 THEN
      v_cut := coalesce(p_up_to, v_last + 1);
    ELSIF p_keep_last < v_count THEN
      v_cut := v_last - p_keep_last + 1;
    END IF;
  ELSE
    IF p_filter IS NULL THEN
      v_ids := ARRAY(SELECT e.id FROM events e WHERE e.stream = v.id AND e.subject = p_subject ORDER BY e.id);
    ELSE
      v_ids := ARRAY(SELECT e.id FROM events e WHERE e.stream = v.id AND e.subject ~ p_filter ORDER BY e.id);
    END IF;
    IF p_keep_last IS NOT NULL THEN
      v_ids := v_ids[1:greatest(cardinality(v_ids) - p_keep_last, 0)];
    ELSIF p_up_to IS NOT NULL THEN
      v_ids := ARRAY(SELECT u FROM unnest(v_ids) u WHERE u < p_up_to ORDER BY u);
    END IF;
  END IF;

  IF v_cut IS NOT NULL OR cardinality(v_ids) > 0 THEN
    -- 002's lock order: delivery rows, then consumer rows, then the events.
    DELETE FROM deliveries d WHERE d.stream = v.id AND (d.event_id < v_cut OR d.event_id = ANY (v_ids));
    PERFORM 1 FROM consumers c WHERE c.stream = v.id ORDER BY c.id FOR NO KEY UPDATE;
    SELECT y.n, y.b INTO v_n, v_b FROM drop_events(v.id, v_cut, v_ids) y;
    v_count := v_count - v_n;
  END IF;

  IF v_all THEN
    IF v_count = 0 AND v_cut > v_last + 1 THEN v_last := v_cut - 1; END IF;
    v_purged := v_purged OR v_cut IS NOT NULL;
    SELECT coalesce(min(e.id), v_last + 1) INTO v_first FROM events e WHERE e.stream = v.id;
    UPDATE consumers c SET next_id = v_first - 1
     WHERE c.stream = v.id AND c.next_id < v_first - 1
       AND ((p_subject IS NULL AND p_keep_last IS NULL AND p_up_to IS NULL) OR c.filter IS NULL);
  ELSE
    SELECT coalesce(min(e.id), v_last + 1) INTO v_first FROM events e
     WHERE e.stream = v.id AND (e.subject = p_subject OR e.subject ~ p_filter);
    UPDATE consumers c SET next_id = v_first - 1
     WHERE c.stream = v.id AND c.next_id < v_first - 1 AND c.config -> 'subjects' = jsonb_build_array(p_subject);
  END IF;

  UPDATE streams s
     SET last_id = v_last, event_count = s.event_count - v_n, byte_count = s.byte_count - v_b, purged = v_purged
   WHERE s.id = v.id;
  RETURN v_n;
END
$$;

-- What stream p_stream holds now, as the engine's StreamContents says, in
-- the caller's snapshot; expired events are left out. No row's values when
-- the stream is missing (all NULL).
CREATE FUNCTION contents(
  p_stream integer, OUT event_count bigint, OUT byte_count bigint, OUT first_id bigint, OUT first_time timestamptz,
  OUT last_id bigint, OUT last_time timestamptz, OUT subjects bigint, OUT consumers bigint
)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
  v_cutoff timestamptz; v_purged boolean; v_last_at timestamptz; v_n bigint; v_b bigint;
BEGIN
  SELECT s.event_count, s.byte_count, s.last_id, s.last_stored_at, s.purged,
         clock_timestamp() - (s.config ->> 'maxAgeMs')::bigint * interval '1 millisecond'
    INTO event_count, byte_count, last_id, v_last_at, v_purged, v_cutoff
    FROM streams s WHERE s.id = p_stream;
  IF NOT FOUND THEN RETURN; END IF;
  SELECT e.id, e.stored_at INTO first_id, first_time FROM events e
   WHERE e.stream = p_stream AND (v_cutoff IS NULL OR e.stored_at > v_cutoff) ORDER BY e.id LIMIT 1;
  IF v_cutoff IS NOT NULL THEN
    SELECT count(*), coalesce(sum(e.bytes), 0) INTO v_n, v_b FROM events e
     WHERE e.stream = p_stream AND e.id < coalesce(first_id, last_id + 1);
    event_count := event_count - v_n; byte_count := byte_count - v_b;
  END IF;
  first_id := coalesce(first_id, CASE WHEN last_id = 0 AND NOT v_purged THEN 0 ELSE last_id + 1 END);
  last_time := CASE WHEN event_count = 0 THEN NULL ELSE v_last_at END;
  -- Distinct subjects by skipping along events_last_per_subject, each kept
  -- when its newest event is live.
  WITH RECURSIVE t(subject) AS (
    SELECT (SELECT e.subject FROM events e WHERE e.stream = p_stream ORDER BY e.subject LIMIT 1)
    UNION ALL
    SELECT (SELECT e.subject FROM events e WHERE e.stream = p_stream AND e.subject > t.subject ORDER BY e.subject LIMIT 1)
      FROM t WHERE t.subject IS NOT NULL
  )
  SELECT count(*) INTO subjects FROM t
   WHERE t.subject IS NOT NULL
     AND (v_cutoff IS NULL OR (SELECT e.stored_at FROM events e WHERE e.stream = p_stream AND e.subject = t.subject
                                ORDER BY e.id DESC LIMIT 1) > v_cutoff);
  SELECT count(*) INTO consumers FROM consumers c WHERE c.stream = p_stream;
END
$$;

INSERT INTO migrations (version, name) VALUES (3, 'limits_and_reads');
