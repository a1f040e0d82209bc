-- Per-portal webhook secrets: a private app signs its webhooks with its own
-- client secret (AES-256-GCM ciphertext, see shared::crypto; bound to
-- `portal:{id}:hubspot_webhook_secret`). NULL: the portal's webhooks are
-- verified with the default secret (CONNECTOR_HUBSPOT_CLIENT_SECRET).
ALTER TABLE portals ADD COLUMN hubspot_webhook_secret bytea;

-- invalid: an event of a delivery that ingest could not read (e.g. a
-- non-numeric objectId); kept as sent, never replayable.
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_reason_class_check;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_reason_class_check
    CHECK (reason_class IN ('permanent', 'exhausted', 'poison', 'malformed', 'invalid'));
