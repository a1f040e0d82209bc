-- Deduplication looks events up by their identity with
-- `event_id IS NOT DISTINCT FROM $x`, which the unique identity index cannot
-- serve beyond its first column: each lookup scanned every event of the
-- portal, so a 100,000-contact import slowed down as it went (seconds per
-- message near the end). This index narrows a lookup to the object's events.
CREATE INDEX IF NOT EXISTS webhook_events_object
    ON webhook_events (portal_id, object_id, occurred_at);
