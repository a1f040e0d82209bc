-- Reversals and modifications of delivered conversions (impact.com Actions
-- API): the per-portal rules, and one row per adjustment sent (or to send).

-- The rules of one object type, as the document's `adjustments.<type>`
-- section (stored as given, so an export re-applies unchanged).
CREATE TABLE adjustment_rules (
    portal_id   bigint NOT NULL REFERENCES portals ON DELETE CASCADE,
    object_type text NOT NULL CHECK (object_type IN ('contacts', 'companies', 'deals')),
    rules       jsonb NOT NULL,
    PRIMARY KEY (portal_id, object_type)
);

-- One reversal (DELETE) or modification (PUT) of a delivered conversion.
CREATE TABLE adjustments (
    id             bigserial PRIMARY KEY,
    portal_id      bigint NOT NULL REFERENCES portals ON DELETE CASCADE,
    conversion_id  bigint NOT NULL REFERENCES conversions ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('reversal', 'modification')),
    -- The identity of the triggering event (as dead letters key it): a
    -- repeated webhook produces the same key, hence one adjustment.
    event_key      text NOT NULL,
    object_type    text NOT NULL,
    object_id      bigint NOT NULL,
    -- Why, in words: "dealstage=closedlost", "deleted", "amount=1500".
    cause          text NOT NULL,
    -- The exact form sent, in order: [["ActionTrackerId","12"], ...].
    form           jsonb NOT NULL,
    -- Modifications: the Amount sent.
    amount         text,
    -- pending: recorded, not (known to be) delivered; delivered: impact.com
    -- answered QUEUED; failed: permanently refused (see failure_reason).
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts       integer NOT NULL DEFAULT 0,
    queued_uri     text,
    failure_reason text,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    delivered_at   timestamptz,
    UNIQUE (conversion_id, kind, event_key)
);
-- A conversion is reversed at most once, whatever the number of events
-- asking for it (a refused reversal does not count).
CREATE UNIQUE INDEX adjustments_one_reversal ON adjustments (conversion_id)
    WHERE kind = 'reversal' AND status <> 'failed';
CREATE INDEX adjustments_portal ON adjustments (portal_id, created_at);
CREATE INDEX adjustments_status ON adjustments (status, updated_at);
CREATE INDEX conversions_object ON conversions (portal_id, object_type, object_id);

-- A dead letter may hold a failed adjustment (replayed by resending it).
ALTER TABLE dead_letters
    ADD COLUMN adjustment_id bigint REFERENCES adjustments ON DELETE SET NULL;

-- The `adjusted` status of webhook events is added by
-- 20261127000006_adjusted_events.sql (after 000004 redefines that check).
