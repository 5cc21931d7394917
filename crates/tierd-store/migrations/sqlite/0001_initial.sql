-- tierd store, schema version 1 (SQLite). Keep in step with ../postgres/0001_initial.sql:
-- same tables, columns and constraints; only the types of generated ids differ.
-- Times are epoch milliseconds (BIGINT); JSON is TEXT.

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ('full', 'incremental', 'dry_run', 'pilot')),
    status        TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    model_version TEXT NOT NULL,
    owner         TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    watermark     TEXT,
    stats         TEXT,
    error         TEXT
);
-- At most one running run: the database itself refuses overlapping runs.
CREATE UNIQUE INDEX runs_one_running ON runs (status) WHERE status = 'running';
CREATE INDEX runs_by_kind_status ON runs (kind, status, id);

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    domain              TEXT,
    facts               TEXT NOT NULL,
    facts_hash          TEXT NOT NULL,
    score               DOUBLE PRECISION NOT NULL CHECK (score >= 0 AND score <= 5),
    coverage            DOUBLE PRECISION NOT NULL CHECK (coverage >= 0 AND coverage <= 1),
    potential_value     DOUBLE PRECISION NOT NULL DEFAULT 0,
    tier                TEXT NOT NULL CHECK (tier IN ('tier_1', 'tier_2', 'tier_3', 'untiered')),
    explanation         TEXT NOT NULL,
    model_version       TEXT NOT NULL,
    scored_at           BIGINT NOT NULL,
    pushed_tier         TEXT CHECK (pushed_tier IN ('tier_1', 'tier_2', 'tier_3', 'untiered')),
    pushed_score_bucket DOUBLE PRECISION,
    pushed_reason       TEXT,
    pushed_at           BIGINT,
    crm_tier_seen       TEXT,
    locked              BOOLEAN NOT NULL DEFAULT FALSE,
    updated_run         BIGINT REFERENCES runs (id)
);
CREATE INDEX accounts_by_tier ON accounts (tier);

CREATE TABLE tier_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account       TEXT NOT NULL,
    run           BIGINT NOT NULL REFERENCES runs (id),
    at            BIGINT NOT NULL,
    from_tier     TEXT,
    to_tier       TEXT NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    reason        TEXT NOT NULL,
    model_version TEXT NOT NULL
);
CREATE INDEX tier_history_by_account ON tier_history (account, id);

CREATE TABLE facts_cache (
    plugin         TEXT NOT NULL,
    plugin_version TEXT NOT NULL,
    key            TEXT NOT NULL,
    facts          TEXT NOT NULL,
    state          TEXT NOT NULL,
    observed_at    BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    PRIMARY KEY (plugin, plugin_version, key)
);
CREATE INDEX facts_cache_by_expiry ON facts_cache (expires_at);

CREATE TABLE signals (
    account     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    date        TEXT NOT NULL,
    source      TEXT NOT NULL,
    run         BIGINT REFERENCES runs (id),
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (account, kind, subject, date)
);
CREATE INDEX signals_by_observed_at ON signals (observed_at);

CREATE TABLE checkpoints (
    run      BIGINT NOT NULL REFERENCES runs (id),
    stage    TEXT NOT NULL,
    position TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (run, stage)
);

CREATE TABLE pending_pushes (
    account          TEXT PRIMARY KEY REFERENCES accounts (id),
    tier             TEXT NOT NULL CHECK (tier IN ('tier_1', 'tier_2', 'tier_3', 'untiered')),
    score_bucket     DOUBLE PRECISION NOT NULL,
    reason           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    last_error       TEXT NOT NULL,
    permanent        BOOLEAN NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    first_failed_run BIGINT NOT NULL REFERENCES runs (id),
    first_failed_at  BIGINT NOT NULL,
    last_failed_at   BIGINT NOT NULL
);

CREATE TABLE work_items (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run        BIGINT NOT NULL REFERENCES runs (id),
    batch_no   BIGINT NOT NULL,
    payload    TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'claimed', 'done', 'failed')),
    claimed_by TEXT,
    claimed_at BIGINT,
    attempts   BIGINT NOT NULL DEFAULT 0,
    UNIQUE (run, batch_no)
);
CREATE INDEX work_items_queue ON work_items (run, state, batch_no);
