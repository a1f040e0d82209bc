-- Two foreign keys were checked on every recorded event: each converted
-- event's webhook_events row looked its conversion up (the row the same
-- statement had just inserted), and each conversion looked its portal up,
-- taking a KEY SHARE lock on the portal's row, so that every worker's
-- transactions queued on the same row (MultiXacts under load). Together a
-- fifth of the statement's time at 5,000 conversions/s.
--
-- What they enforced is kept by the code that deletes:
-- - deleting an account deletes its conversions in the same transaction
--   (ingest's `ops::delete`), and the retention job deletes conversions of
--   portals that no longer exist (a worker racing an account deletion);
-- - deleting conversions (retention, account deletion) clears or deletes the
--   webhook_events rows that point at them.
-- Foreign keys that are not on the per-event path (adjustments, dead
-- letters, triggers, mappings) stay.
ALTER TABLE conversions DROP CONSTRAINT conversions_portal_id_fkey;
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_conversion_id_fkey;
