-- tierd store, schema version 2 (PostgreSQL). Keep in step with ../sqlite/0002_tier_basis.sql.
-- What tiering needs to re-tier an account that a run does not rescore: its tier before the
-- engagement lift and the pyramid caps, and until when an engagement override lifts it. Every run
-- then recomputes every account's tier (an expired lift ends on time, a freed cap seat is taken),
-- not only the rescored accounts'.

-- Tier by thresholds, hysteresis and lock; NULL (rows from before this version): the tier itself.
ALTER TABLE accounts ADD COLUMN base_tier TEXT CHECK (base_tier IN ('tier_1', 'tier_2', 'tier_3', 'untiered'));
-- The last day (YYYY-MM-DD) an engagement override lifts the account, as of its last scoring.
ALTER TABLE accounts ADD COLUMN engaged_until TEXT;
-- Which override (its index in the tiering policy).
ALTER TABLE accounts ADD COLUMN engaged_by BIGINT;
-- FALSE while a new account is scored but not yet tiered: its first tiering is recorded in the
-- history as a change from nothing.
ALTER TABLE accounts ADD COLUMN tiered BOOLEAN NOT NULL DEFAULT TRUE;
