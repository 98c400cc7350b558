-- windshift PostgreSQL engine, migration 004: key-value buckets with compare-and-set.
--
-- Applied as 001 says: in one transaction, search_path set to the schema.
--
-- THE DESIGN
--   buckets   One row per bucket. `options` is the bucket's KeyValueOptions as
--             JSON (`ttlMs`, `replicas`; replicas mean nothing here and are
--             only kept). `revision` is the last revision the bucket gave (0:
--             none), as a JetStream bucket's stream sequence: every write of
--             any key takes the next one, so revisions strictly increase
--             across the bucket, and a key's revision tells whether it was
--             written since it was read.
--
--   entries   One row per live key, PRIMARY KEY (bucket, key). `key` is the
--             key's UTF-8 bytes (bytea, not text: text cannot hold U+0000,
--             and keys are any non-empty strings, as the other engines take
--             them). `written_at` is the database's clock (clock_timestamp())
--             at the last write, read after the bucket's lock was taken.
--
-- COMPARE-AND-SET
--   kv_put() and kv_delete() first take the bucket row's lock (FOR NO KEY
--   UPDATE), held until the statement's transaction ends; each statement of
--   the function after it takes a new snapshot, so the key's revision is read
--   as the lock's previous holders left it, and racing writers of one
--   expected revision are decided one after the other: exactly one finds it.
--   A single SQL statement would not do: its one snapshot would be taken
--   before the wait for the lock. The price is one writer per bucket at a
--   time, as a JetStream bucket (one stream) has; buckets do not wait for
--   each other, and reads (kv_get is a plain SELECT) never wait.
--
-- TTL
--   A bucket whose ttlMs is above 0 drops an entry once ttlMs have passed
--   since its last write (written_at + ttl <= now, on the database's clock).
--   Reads and compare-and-set treat such an entry as absent (revision 0); it
--   is deleted lazily, by the next write of the bucket, at most 100 rows a
--   write besides the key written (entries_written finds them), so no one
--   write pays for a large backlog. Deleting an expired key takes no revision, as
--   deleting an absent one does not.

CREATE TABLE buckets (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  options jsonb NOT NULL CHECK (jsonb_typeof(options -> 'ttlMs') = 'number'),
  revision bigint NOT NULL DEFAULT 0 CHECK (revision >= 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entries (
  bucket integer NOT NULL REFERENCES buckets (id) ON DELETE CASCADE,
  key bytea NOT NULL CHECK (length(key) > 0),
  value bytea NOT NULL,
  revision bigint NOT NULL CHECK (revision > 0),
  written_at timestamptz NOT NULL,
  PRIMARY KEY (bucket, key)
);

-- The oldest writes of a bucket first, for lazy expiry.
CREATE INDEX entries_written ON entries (bucket, written_at);

-- The bucket named `p_name`, opened as `p_mode` says:
--   open    only if it exists (no row otherwise)
--   create  created with `p_options` when missing; an existing one keeps its options
--   ensure  created with `p_options`, or updated to them
-- `created` says whether this call made it.
CREATE FUNCTION kv_open(p_name text, p_mode text, p_options jsonb, OUT id integer, OUT options jsonb, OUT created boolean)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF p_mode = 'ensure' THEN
    INSERT INTO buckets AS b (name, options) VALUES (p_name, p_options)
    ON CONFLICT (name) DO UPDATE SET options = EXCLUDED.options
    RETURNING b.id, b.options, (b.xmax = 0) INTO id, options, created;
    RETURN;
  ELSIF p_mode = 'create' THEN
    INSERT INTO buckets AS b (name, options) VALUES (p_name, p_options)
    ON CONFLICT (name) DO NOTHING
    RETURNING b.id, b.options, true INTO id, options, created;
    IF FOUND THEN
      RETURN;
    END IF;
  ELSIF p_mode <> 'open' THEN
    RAISE EXCEPTION 'unknown mode %', p_mode USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- A new statement, so a new snapshot: it sees a bucket another session
  -- committed while the insert above waited for it.
  SELECT b.id, b.options, false INTO id, options, created FROM buckets b WHERE b.name = p_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'bucket' USING ERRCODE = 'no_data_found';
  END IF;
END
$$;

-- Takes bucket `p_bucket`'s lock, drops (at most 100 of) its expired entries,
-- and reads key `p_key`'s revision (0: absent or expired).
CREATE FUNCTION kv_lock(p_bucket text, p_key bytea, OUT bucket integer, OUT locked_at timestamptz, OUT actual bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_ttl double precision;
BEGIN
  SELECT b.id, (b.options ->> 'ttlMs')::double precision INTO bucket, v_ttl
    FROM buckets b
   WHERE b.name = p_bucket
     FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'bucket' USING ERRCODE = 'no_data_found';
  END IF;
  locked_at := clock_timestamp();
  IF v_ttl > 0 THEN
    DELETE FROM entries e
     WHERE e.bucket = kv_lock.bucket
       AND (e.key = p_key
            OR e.key IN (SELECT x.key FROM entries x
                          WHERE x.bucket = kv_lock.bucket
                            AND x.written_at <= locked_at - v_ttl * interval '1 millisecond'
                          ORDER BY x.written_at
                          LIMIT 100))
       AND e.written_at <= locked_at - v_ttl * interval '1 millisecond';
  END IF;
  SELECT coalesce(max(e.revision), 0) INTO actual FROM entries e WHERE e.bucket = kv_lock.bucket AND e.key = p_key;
END
$$;

-- Writes `p_value` to key `p_key` of bucket `p_bucket`, when `p_expected` is
-- NULL or the key's revision (0: absent or expired). `written` says whether it
-- did; `revision` is then the new revision, else the key's actual one.
-- no_data_found ('bucket') when the bucket is missing.
CREATE FUNCTION kv_put(p_bucket text, p_key bytea, p_value bytea, p_expected bigint, OUT written boolean, OUT revision bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v integer;
  v_now timestamptz;
  v_actual bigint;
BEGIN
  SELECT l.bucket, l.locked_at, l.actual INTO v, v_now, v_actual FROM kv_lock(p_bucket, p_key) l;
  IF p_expected IS NOT NULL AND p_expected <> v_actual THEN
    written := false;
    revision := v_actual;
    RETURN;
  END IF;
  UPDATE buckets b SET revision = b.revision + 1 WHERE b.id = v RETURNING b.revision INTO revision;
  INSERT INTO entries AS e (bucket, key, value, revision, written_at)
  VALUES (v, p_key, p_value, kv_put.revision, v_now)
  ON CONFLICT (bucket, key) DO UPDATE
     SET value = EXCLUDED.value, revision = EXCLUDED.revision, written_at = EXCLUDED.written_at;
  written := true;
END
$$;

-- Deletes key `p_key` of bucket `p_bucket`, when `p_expected` is NULL or the
-- key's revision (0: absent or expired); a delete of a live key takes a
-- revision, as the server's delete marker does. `written` says whether the
-- check passed; `revision` is the key's revision before the call (0: none).
CREATE FUNCTION kv_delete(p_bucket text, p_key bytea, p_expected bigint, OUT written boolean, OUT revision bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v integer;
BEGIN
  SELECT l.bucket, l.actual INTO v, revision FROM kv_lock(p_bucket, p_key) l;
  IF p_expected IS NOT NULL AND p_expected <> revision THEN
    written := false;
    RETURN;
  END IF;
  written := true;
  IF revision > 0 THEN
    DELETE FROM entries e WHERE e.bucket = v AND e.key = p_key;
    UPDATE buckets b SET revision = b.revision + 1 WHERE b.id = v;
  END IF;
END
$$;

INSERT INTO migrations (version, name) VALUES (4, 'key_values');
