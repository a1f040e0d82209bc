-- Tenant isolation (issue 20, items 6-8).

-- When an operator paused the portal (a document with "status": "paused").
-- A login through HubSpot resumes an `uninstalled` portal (a reinstall),
-- never a `paused` one: the website says since when it is paused.
ALTER TABLE portals ADD COLUMN paused_at timestamptz;
UPDATE portals SET paused_at = updated_at WHERE status = 'paused';

-- The lease of an OAuth token refresh: the process that set it (compare and
-- set, no transaction open) calls HubSpot; the others wait for the new
-- token. A lease outlives the HTTP client's timeout; an expired lease (a
-- process that died mid-refresh) is taken over.
ALTER TABLE portals ADD COLUMN hubspot_refreshing_until timestamptz;

-- Account deletion erases everything of the portal. Tables that are never
-- written for a portal that does not exist cascade from `portals`; the
-- others (written on the per-event path, or for events of unknown portals:
-- dead_letters, webhook_events, conversions, privacy_erasures, audit_log)
-- are deleted explicitly by the deletion and, for rows a worker wrote
-- while it ran, by the retention job (shared::db::account).
DELETE FROM replay_requests r
    WHERE r.portal_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM portals p WHERE p.portal_id = r.portal_id);
ALTER TABLE replay_requests ADD CONSTRAINT replay_requests_portal_id_fkey
    FOREIGN KEY (portal_id) REFERENCES portals ON DELETE CASCADE;

-- What earlier deletions left behind (dead letters, privacy records, audit
-- details) of accounts deleted before this version.
WITH deleted AS (
    SELECT DISTINCT a.portal_id FROM audit_log a
    WHERE a.action = 'portal.delete' AND a.portal_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM portals p WHERE p.portal_id = a.portal_id)
), letters AS (
    DELETE FROM dead_letters WHERE portal_id IN (SELECT portal_id FROM deleted)
), erasures AS (
    DELETE FROM privacy_erasures WHERE portal_id IN (SELECT portal_id FROM deleted)
)
DELETE FROM audit_log
    WHERE portal_id IN (SELECT portal_id FROM deleted) AND action <> 'portal.delete';
