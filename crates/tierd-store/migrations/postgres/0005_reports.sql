-- tierd store, schema version 6 (PostgreSQL). Keep in step with ../sqlite/0006_reports.sql.
-- What the reports (API, dashboard, /metrics) read without scanning `accounts`:
-- - one tier's accounts in id order, paged by cursor, through (tier, id);
-- - accounts found by a prefix of their lower-cased name or domain;
-- - the number of accounts per tier, kept current by statement triggers as rows change.
--   Several instances commit batches at once here, so the triggers only ever INSERT a delta per
--   tier and statement (no counter row is locked, so no commit waits on or deadlocks with
--   another); readers sum them and `Store::compact_tier_counts` folds them back into one row
--   per tier.

DROP INDEX accounts_by_tier;
CREATE INDEX accounts_by_tier_id ON accounts (tier, id);
CREATE INDEX accounts_by_lower_name ON accounts (lower(name) text_pattern_ops);
CREATE INDEX accounts_by_lower_domain ON accounts (lower(domain) text_pattern_ops);
CREATE INDEX tier_history_by_run ON tier_history (run, account);

CREATE TABLE tier_counts (
    id       BIGSERIAL PRIMARY KEY,
    tier     TEXT NOT NULL CHECK (tier IN ('tier_1', 'tier_2', 'tier_3', 'untiered')),
    accounts BIGINT NOT NULL
);
INSERT INTO tier_counts (tier, accounts)
    SELECT t.tier, (SELECT COUNT(*) FROM accounts a WHERE a.tier = t.tier)
    FROM (VALUES ('tier_1'), ('tier_2'), ('tier_3'), ('untiered')) AS t (tier);

CREATE FUNCTION tier_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tier_counts (tier, accounts) SELECT tier, COUNT(*) FROM new_rows GROUP BY tier;
    RETURN NULL;
END $$;
CREATE FUNCTION tier_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tier_counts (tier, accounts)
        SELECT tier, SUM(d) FROM (
            SELECT o.tier, -1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.tier <> n.tier
            UNION ALL
            SELECT n.tier, 1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.tier <> n.tier
        ) moved GROUP BY tier;
    RETURN NULL;
END $$;
CREATE FUNCTION tier_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tier_counts (tier, accounts) SELECT tier, -COUNT(*) FROM old_rows GROUP BY tier;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_count_insert AFTER INSERT ON accounts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tier_counts_on_insert();
CREATE TRIGGER accounts_count_update AFTER UPDATE ON accounts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tier_counts_on_update();
CREATE TRIGGER accounts_count_delete AFTER DELETE ON accounts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tier_counts_on_delete();
