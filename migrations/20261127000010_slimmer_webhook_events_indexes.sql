-- Every event the worker finishes writes one webhook_events row, so each of
-- the table's indexes costs an entry per event. Five btrees were four more
-- than the queries need:
--
-- - The identity constraint led with event_id, which the dedupe lookup
--   matches with IS NOT DISTINCT FROM (not an index condition), so a second
--   index on (portal_id, object_id, occurred_at) served the lookups. The
--   identity now leads with those columns (uniqueness does not depend on
--   column order) and serves the dedupe lookups, an object's events
--   (privacy erasure) and a portal's events (account deletion) alone.
-- - (portal_id, processed_at) served no query: retention and the
--   subscriptions report select by processed_at alone. A BRIN index serves
--   those range scans (rows are appended in processed_at order) for a
--   fraction of a btree's upkeep.
-- - (conversion_id) held an entry for every ignored or skipped event, whose
--   conversion_id is NULL; only converted events are looked up by it.
--
-- On a large table this rebuilds the identity index while holding a lock on
-- webhook_events: run it while the workers are stopped.
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_identity;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_identity UNIQUE NULLS NOT DISTINCT
    (portal_id, object_id, occurred_at, subscription_type, property_name, event_id);
DROP INDEX IF EXISTS webhook_events_object;
DROP INDEX IF EXISTS webhook_events_portal;
CREATE INDEX webhook_events_processed ON webhook_events USING brin (processed_at);
DROP INDEX IF EXISTS webhook_events_conversion;
CREATE INDEX webhook_events_conversion ON webhook_events (conversion_id)
    WHERE conversion_id IS NOT NULL;
