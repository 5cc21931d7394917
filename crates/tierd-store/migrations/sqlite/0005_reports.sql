-- tierd store, schema version 6 (SQLite). Keep in step with ../postgres/0006_reports.sql.
-- What the reports (API, dashboard, /metrics) read without scanning `accounts`:
-- - one tier's accounts in id order, paged by cursor, through (tier, id);
-- - accounts found by a prefix of their lower-cased name or domain;
-- - the number of accounts per tier, kept current by triggers as rows change. SQLite has one
--   writer at a time, so the triggers update one row per tier in place.

DROP INDEX accounts_by_tier;
CREATE INDEX accounts_by_tier_id ON accounts (tier, id);
CREATE INDEX accounts_by_lower_name ON accounts (lower(name));
CREATE INDEX accounts_by_lower_domain ON accounts (lower(domain));
-- Movements between two runs read the changes a run made.
CREATE INDEX tier_history_by_run ON tier_history (run, account);

-- Rows summed per tier: on SQLite one per tier; PostgreSQL appends deltas (see its file).
CREATE TABLE tier_counts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    tier     TEXT NOT NULL CHECK (tier IN ('tier_1', 'tier_2', 'tier_3', 'untiered')),
    accounts BIGINT NOT NULL
);
INSERT INTO tier_counts (tier, accounts)
    SELECT t.tier, (SELECT COUNT(*) FROM accounts a WHERE a.tier = t.tier)
    FROM (SELECT 'tier_1' AS tier UNION ALL SELECT 'tier_2' UNION ALL SELECT 'tier_3' UNION ALL SELECT 'untiered') t;

CREATE TRIGGER accounts_count_insert AFTER INSERT ON accounts BEGIN
    UPDATE tier_counts SET accounts = accounts + 1
        WHERE id = (SELECT MIN(id) FROM tier_counts WHERE tier = NEW.tier);
END;
CREATE TRIGGER accounts_count_update AFTER UPDATE OF tier ON accounts WHEN OLD.tier <> NEW.tier BEGIN
    UPDATE tier_counts SET accounts = accounts - 1
        WHERE id = (SELECT MIN(id) FROM tier_counts WHERE tier = OLD.tier);
    UPDATE tier_counts SET accounts = accounts + 1
        WHERE id = (SELECT MIN(id) FROM tier_counts WHERE tier = NEW.tier);
END;
CREATE TRIGGER accounts_count_delete AFTER DELETE ON accounts BEGIN
    UPDATE tier_counts SET accounts = accounts - 1
        WHERE id = (SELECT MIN(id) FROM tier_counts WHERE tier = OLD.tier);
END;
