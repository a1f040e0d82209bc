-- An event that fired no trigger (`ignored`) is recorded by its identity
-- and outcome only: its body (with the changed property's value) is not
-- kept. Nothing reads it — the conversion page shows the events that
-- produced a conversion, and deduplication reads the identity columns —
-- and an import's or a busy pipeline's events that fire nothing were half
-- of the rows' bytes and of the JSON PostgreSQL parsed per event.
ALTER TABLE webhook_events ALTER COLUMN event DROP NOT NULL;
