-- Website sessions, kept on the server so that they can be ended: logging
-- out deletes the row, and a copied session cookie is refused from then
-- on. The cookie names its row by a random id; only the id's SHA-256 is
-- stored, so reading this table gives no usable cookie.
CREATE TABLE website_sessions (
    key             bytea PRIMARY KEY,
    -- Deleting the account deletes its sessions.
    portal_id       bigint NOT NULL REFERENCES portals ON DELETE CASCADE,
    -- The HubSpot user who logged in (token introspection's `user_id`
    -- and `user`), named in the audit log of what the session does.
    hubspot_user_id bigint,
    hubspot_user    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX website_sessions_portal ON website_sessions (portal_id);
CREATE INDEX website_sessions_expiry ON website_sessions (expires_at);

-- Uninstalled in HubSpot (the token refresh answered `invalid_grant`, in
-- a worker or the website): the portal's sessions end, whichever process
-- noticed. A reinstall logs in afresh.
CREATE FUNCTION website_sessions_end_on_uninstall() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM website_sessions WHERE portal_id = NEW.portal_id;
    RETURN NULL;
END $$;

CREATE TRIGGER portals_uninstalled_end_sessions
    AFTER UPDATE OF status ON portals
    FOR EACH ROW
    WHEN (NEW.status = 'uninstalled' AND OLD.status IS DISTINCT FROM 'uninstalled')
    EXECUTE FUNCTION website_sessions_end_on_uninstall();

-- The version of a portal's configuration document, raised by every
-- applied change: an editor that saves on top of a version that is no
-- longer current is refused instead of overwriting the other change.
ALTER TABLE portals ADD COLUMN config_version bigint NOT NULL DEFAULT 1;
