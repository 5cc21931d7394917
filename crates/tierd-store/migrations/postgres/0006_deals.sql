-- tierd store, schema version 6 (PostgreSQL). Keep in step with ../sqlite/0006_deals.sql:
-- same tables, columns and constraints; only the types of generated ids differ.
-- Deals (HubSpot deals, Salesforce Opportunities, a deals file) per account, for the funnel per
-- tier. `deals` holds each deal as last seen; `deal_history` one row per change tierd saw or the
-- CRM dated (creation, a stage entered, moved to another account, deleted, reopened), so a
-- deal's past is kept even when the CRM rewrites it.

CREATE TABLE deals (
    id          TEXT PRIMARY KEY,
    -- The connector's account id; NULL when the CRM gave none (reported, never tiered).
    account     TEXT,
    pipeline    TEXT,
    stage       TEXT,
    amount      DOUBLE PRECISION,
    currency    TEXT,
    -- Epoch milliseconds; NULL when the CRM gave none.
    created_at  BIGINT,
    -- YYYY-MM-DD; NULL while open or unknown.
    close_date  TEXT,
    -- NULL when the stage does not say (an unknown stage).
    closed      BOOLEAN,
    won         BOOLEAN,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,
    first_seen  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_run BIGINT REFERENCES runs (id)
);
CREATE INDEX deals_by_account ON deals (account);
CREATE INDEX deals_by_created ON deals (created_at);

CREATE TABLE deal_history (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deal    TEXT NOT NULL,
    account TEXT,
    -- When it happened (the CRM's stage entry date when it has one, else when tierd saw it).
    at      BIGINT NOT NULL,
    event   TEXT NOT NULL CHECK (event IN ('created', 'stage', 'moved', 'amount', 'deleted', 'reopened', 'restored')),
    stage   TEXT,
    amount  DOUBLE PRECISION,
    run     BIGINT REFERENCES runs (id)
);
CREATE INDEX deal_history_by_deal ON deal_history (deal, at, id);
CREATE INDEX deal_history_by_account ON deal_history (account, at);
