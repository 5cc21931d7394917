-- tierd store, schema version 10 (PostgreSQL). Keep in step with ../sqlite/0010_texts_lz4.sql.
-- An account's facts and explanation (about 5 KB of text) are compressed by TOAST as they are
-- written. lz4 does it several times faster than pglz, PostgreSQL's default: a 100k-account run
-- from HubSpot used about a sixth less of the server's CPU (docs/benchmarks.md). A server built
-- without lz4 (or older than PostgreSQL 14, which cannot choose) keeps pglz. Rows written before
-- keep the compression they were written with.
DO $$
BEGIN
    ALTER TABLE account_texts
        ALTER COLUMN facts SET COMPRESSION lz4,
        ALTER COLUMN explanation SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'account_texts keeps pglz: this server cannot compress with lz4';
END
$$;
