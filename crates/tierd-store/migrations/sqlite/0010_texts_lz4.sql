-- tierd store, schema version 10 (SQLite). Keep in step with ../postgres/0010_texts_lz4.sql.
-- PostgreSQL's version compresses account_texts with lz4. SQLite does not compress values:
-- nothing changes here, and the version number stays the same on both backends.
SELECT 1;
