-- windshift PostgreSQL engine, migration 003: stream limits, purges and wake-ups.
--
-- Applied as 001 says: in one transaction, search_path set to the schema.
-- (Being written: limits in append(), purge, and the NOTIFY that wakes consumers.)

INSERT INTO migrations (version, name) VALUES (3, 'limits_and_reads');
