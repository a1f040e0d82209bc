-- Portal configuration, processed events and conversions (the worker's
-- system of record). Every table is scoped by the HubSpot portal id.

-- One row per HubSpot account using the connector.
CREATE TABLE portals (
    -- The HubSpot portal (hub) id.
    portal_id               bigint PRIMARY KEY CHECK (portal_id > 0),
    -- active: events are processed; paused: kept but skipped (by the owner);
    -- uninstalled: the app was removed in HubSpot (OAuth grant revoked).
    status                  text NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'paused', 'uninstalled')),
    -- How the worker authenticates to HubSpot.
    hubspot_auth_kind       text NOT NULL CHECK (hubspot_auth_kind IN ('private_app', 'oauth')),
    -- Secrets are AES-256-GCM ciphertexts (see shared::crypto), never plain text.
    hubspot_private_token   bytea,
    hubspot_access_token    bytea,
    hubspot_refresh_token   bytea,
    hubspot_token_expires_at timestamptz,
    -- impact.com settings; NULL until the owner entered them (an OAuth
    -- install creates the row first): such a portal is "unconfigured".
    impact_account_sid      text,
    impact_auth_token       bytea,
    impact_program_id       text,
    -- ok | failing (impact.com answered 401/403) | unknown (not used yet).
    credentials_status      text NOT NULL DEFAULT 'unknown'
                            CHECK (credentials_status IN ('unknown', 'ok', 'failing')),
    credentials_error       text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Event triggers per object type ("Active" = on_create).
CREATE TABLE triggers (
    portal_id   bigint NOT NULL REFERENCES portals ON DELETE CASCADE,
    object_type text NOT NULL CHECK (object_type IN ('contacts', 'companies', 'deals')),
    on_create   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (portal_id, object_type)
);

-- Property triggers ("Add trigger"): several act as OR.
CREATE TABLE trigger_properties (
    portal_id   bigint NOT NULL,
    object_type text NOT NULL,
    position    integer NOT NULL,
    property    text NOT NULL,
    -- Optional value condition: fire only when the new value is one of these.
    only_values jsonb,
    PRIMARY KEY (portal_id, object_type, position),
    UNIQUE (portal_id, object_type, property),
    FOREIGN KEY (portal_id, object_type) REFERENCES triggers ON DELETE CASCADE
);

-- Field mappings: source (HubSpot property, computed field, line-item field
-- or constant) → impact.com field, in the document's order.
CREATE TABLE mappings (
    portal_id    bigint NOT NULL REFERENCES portals ON DELETE CASCADE,
    object_type  text NOT NULL CHECK (object_type IN ('contacts', 'companies', 'deals')),
    position     integer NOT NULL,
    source_from  text,
    source_const text,
    target       text NOT NULL,
    value_map    jsonb,
    PRIMARY KEY (portal_id, object_type, position),
    UNIQUE (portal_id, object_type, target),
    CHECK ((source_from IS NULL) <> (source_const IS NULL))
);

-- What impact.com received (or will receive): one row per idempotency key.
CREATE TABLE conversions (
    id            bigserial PRIMARY KEY,
    portal_id     bigint NOT NULL REFERENCES portals ON DELETE CASCADE,
    event_type    text NOT NULL,
    order_id      text NOT NULL,
    object_type   text NOT NULL,
    object_id     bigint NOT NULL,
    -- The exact parameters sent, in order: [["CampaignId","1000"], ...].
    payload       jsonb NOT NULL,
    -- pending: recorded, not (known to be) delivered; delivered: impact.com
    -- answered QUEUED; failed: permanently refused (see failure_reason).
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    queued_uri    text,
    failure_reason text,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    UNIQUE (portal_id, event_type, order_id)
);
CREATE INDEX conversions_status ON conversions (status, updated_at);

-- Every webhook event the worker finished with, keyed by its identity so a
-- repeated notification or a redelivered message is recognised.
CREATE TABLE webhook_events (
    id                bigserial PRIMARY KEY,
    -- Not a foreign key: events of unknown portals are recorded too.
    portal_id         bigint NOT NULL,
    event_id          bigint,
    subscription_type text NOT NULL,
    object_id         bigint NOT NULL,
    occurred_at       bigint NOT NULL,
    property_name     text NOT NULL DEFAULT '',
    -- skipped (portal unknown/paused/unconfigured), ignored (no trigger
    -- fired), failed (permanent failure, see reason), converted.
    status            text NOT NULL
                      CHECK (status IN ('skipped', 'ignored', 'failed', 'converted')),
    reason            text,
    error             text,
    conversion_id     bigint REFERENCES conversions ON DELETE SET NULL,
    -- The event as HubSpot sent it (kept for inspection and replays).
    event             jsonb NOT NULL,
    received_at       timestamptz,
    processed_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_events_identity UNIQUE NULLS NOT DISTINCT
        (portal_id, event_id, subscription_type, object_id, occurred_at, property_name)
);
CREATE INDEX webhook_events_portal ON webhook_events (portal_id, processed_at);
CREATE INDEX webhook_events_conversion ON webhook_events (conversion_id);

-- Who changed what configuration.
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    portal_id bigint,
    actor     text NOT NULL,
    action    text NOT NULL,
    detail    jsonb,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_portal ON audit_log (portal_id, at);
