-- Events that only adjusted earlier conversions (reversals, modifications;
-- see 20261127000003_adjustments.sql) are recorded `adjusted`. Redefines
-- the check of 20261127000004_outcomes_privacy.sql, keeping `erased`.
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_status_check;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_status_check
    CHECK (status IN ('skipped', 'ignored', 'failed', 'converted', 'erased', 'adjusted'));
