-- tierd store, schema version 7 (PostgreSQL). Keep in step with ../sqlite/0007_shadow.sql:
-- same tables, columns and constraints; only the types of generated ids differ.
-- The shadow model (`[shadow] model = "candidate.toml"`): scored beside the live model on every
-- committing run, stored here, never pushed. `shadow_scores` holds each account's latest shadow
-- score and tier; `shadow_history` one row per shadow tier change (or first shadow tier), so the
-- funnel can count deals under the tier the shadow model gave on the day they were created.

CREATE TABLE shadow_scores (
    account       TEXT PRIMARY KEY,
    score         DOUBLE PRECISION NOT NULL,
    tier          TEXT NOT NULL,
    -- The shadow model's name@version: a new candidate starts its history over.
    model_version TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE shadow_history (
    id            BIGSERIAL PRIMARY KEY,
    account       TEXT NOT NULL,
    run           BIGINT REFERENCES runs (id),
    -- Epoch milliseconds.
    at            BIGINT NOT NULL,
    from_tier     TEXT,
    to_tier       TEXT NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    model_version TEXT NOT NULL
);
CREATE INDEX shadow_history_by_account ON shadow_history (account, at);
