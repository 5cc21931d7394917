-- tierd store, schema version 9 (PostgreSQL). Keep in step with ../sqlite/0009_account_reasons.sql.
-- An account's reasons (its explanation's `reasons`, a line of text) kept in `accounts` beside
-- the explanation in `account_texts`: the push reads every account's reasons and nothing else of
-- its texts, and taking them out of the explanation (JSON text of a few KB) in SQL parsed and
-- decompressed every explanation on every push. Written with the explanation, from it, by the store.

ALTER TABLE accounts ADD COLUMN reasons TEXT;
UPDATE accounts a SET reasons = t.explanation::json ->> 'reasons' FROM account_texts t
WHERE t.id = a.id AND json_typeof(t.explanation::json -> 'reasons') = 'string';
