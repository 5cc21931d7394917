-- tierd store, schema version 11 (SQLite). Keep in step with ../postgres/0011_hot_checks.sql.
-- PostgreSQL's version drops the run checks of the tables written per account, which cost a
-- query per row there. SQLite checks a foreign key with one lookup in `runs` (a few pages,
-- always cached), and dropping one would rebuild each table: nothing changes here, and the
-- version number stays the same on both backends.
SELECT 1;
