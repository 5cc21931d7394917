-- tierd store, schema version 11 (PostgreSQL). Keep in step with ../sqlite/0011_hot_checks.sql.
-- The tables written once or twice per account in every run no longer check their run against
-- `runs`. PostgreSQL checks a foreign key by running a query per row (a trigger through SPI,
-- planned again each time): at 100k accounts from HubSpot those checks took about a fifth of
-- the server's CPU (docs/benchmarks.md). Runs are never deleted and these ids come from the
-- store itself, so the check guarded nothing a run can get wrong. The low-volume tables
-- (checkpoints, work items, pending pushes) keep theirs.
ALTER TABLE accounts DROP CONSTRAINT IF EXISTS accounts_updated_run_fkey;
ALTER TABLE tier_history DROP CONSTRAINT IF EXISTS tier_history_run_fkey;
ALTER TABLE signals DROP CONSTRAINT IF EXISTS signals_run_fkey;
ALTER TABLE deals DROP CONSTRAINT IF EXISTS deals_updated_run_fkey;
ALTER TABLE deal_history DROP CONSTRAINT IF EXISTS deal_history_run_fkey;
ALTER TABLE shadow_history DROP CONSTRAINT IF EXISTS shadow_history_run_fkey;

-- A work item's payload is a batch of accounts as JSON (about 800 bytes an account: 400 KB for
-- 500, measured at 100k), compressed by TOAST as it is queued: lz4 where the server has it, as
-- for account_texts (0010).
DO $$
BEGIN
    ALTER TABLE work_items ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'work_items keeps pglz: this server cannot compress with lz4';
END
$$;
