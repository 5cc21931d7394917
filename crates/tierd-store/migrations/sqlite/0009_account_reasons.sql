-- tierd store, schema version 9 (SQLite). Keep in step with ../postgres/0009_account_reasons.sql.
-- An account's reasons (its explanation's `reasons`, a line of text) kept in `accounts` beside
-- the explanation in `account_texts`: the push reads every account's reasons and nothing else of
-- its texts, and taking them out of the explanation (JSON text of a few KB) in SQL parsed every
-- explanation on every push. Written with the explanation, from it, by the store.

ALTER TABLE accounts ADD COLUMN reasons TEXT;
UPDATE accounts SET reasons = (
    SELECT json_extract(t.explanation, '$.reasons') FROM account_texts t
    WHERE t.id = accounts.id AND json_valid(t.explanation) AND json_type(t.explanation, '$.reasons') = 'text'
);
