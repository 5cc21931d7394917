-- tierd store, schema version 8 (SQLite). Keep in step with ../postgres/0008_account_texts.sql.
-- An account's facts and explanation (JSON text, about 5 KB of its 6 KB) move to their own
-- table. They are written when the account is scored and read when someone looks at it, while
-- its tier and pushed state are written by every batch commit: an UPDATE writes the whole row
-- again (SQLite copies every column, overflow pages included), so a first full run wrote each
-- account's facts and explanation three times. Now the tier and push updates write ~300 bytes.

CREATE TABLE account_texts (
    -- accounts.id: every account has exactly one row here, written in the same transaction.
    id          TEXT PRIMARY KEY,
    facts       TEXT NOT NULL,
    explanation TEXT NOT NULL
);
INSERT INTO account_texts (id, facts, explanation) SELECT id, facts, explanation FROM accounts;
ALTER TABLE accounts DROP COLUMN facts;
ALTER TABLE accounts DROP COLUMN explanation;
