-- tierd store, schema version 3 (SQLite). Keep in step with ../postgres/0003_webhooks.sql:
-- same tables, columns and constraints; only the types of generated ids differ.
-- The webhook outbox. An event is written in the same transaction as the change that caused it,
-- with one delivery row per endpoint that wants it; a worker on any instance claims due
-- deliveries, sends them and logs every attempt. Endpoints appear here by name only: their URLs
-- and secrets stay in the configuration and the environment, never in the database.

CREATE TABLE webhook_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The `webhook-id` header: the same on every attempt, the receiver's idempotency key.
    event_id    TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    -- The exact body sent and signed ({type, timestamp, data}).
    payload     TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event           BIGINT NOT NULL REFERENCES webhook_events (id),
    endpoint        TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivering', 'delivered', 'failed')),
    -- Attempts made so far (a claim that died before answering is not one).
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by      TEXT,
    -- A claim older than this is presumed dead and the delivery may be claimed again.
    claimed_until   BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    last_attempt_at BIGINT,
    delivered_at    BIGINT,
    UNIQUE (event, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);

-- The attempt log: one row per HTTP attempt.
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery    BIGINT NOT NULL REFERENCES webhook_deliveries (id),
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status      BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    owner       TEXT NOT NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery, attempt);

-- Endpoints switched off: after the last retry of a delivery, or on HTTP 410.
CREATE TABLE webhook_endpoints (
    name        TEXT PRIMARY KEY,
    disabled_at BIGINT,
    reason      TEXT
);
