-- The dead-letter store: events the pipeline gave up on (permanent failure,
-- exhausted retry ladder, poison or malformed message), kept with everything
-- an operator needs to decide, and replayed or discarded from here.
CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    -- NULL only for a malformed message whose portal cannot be read.
    portal_id       bigint,
    object_type     text,
    object_id       bigint,
    -- permanent: refused input (impact.com 4xx, mapping incomplete, object
    -- deleted); exhausted: transient failures outlasted the retry ladder;
    -- poison: cut off by the work queue's delivery limit (crash, panic);
    -- malformed: the message body is not events.
    reason_class    text NOT NULL
                    CHECK (reason_class IN ('permanent', 'exhausted', 'poison', 'malformed')),
    -- Stable reason code (shared::failure), e.g. impact_rejected.
    reason          text NOT NULL,
    -- The last remote answer: HTTP status (when there was one) and body/detail.
    last_status     integer,
    last_error      text,
    attempts        integer NOT NULL DEFAULT 0,
    -- The event(s) as queued: a JSON array (or a string for malformed bodies).
    events          jsonb NOT NULL,
    -- Identity of a single-event dead letter (dedupes repeated writes).
    event_key       text,
    -- The object as fetched from HubSpot, and the parameters that were (or
    -- would have been) sent to impact.com.
    fetched_object  jsonb,
    payload         jsonb,
    conversion_id   bigint REFERENCES conversions ON DELETE SET NULL,
    -- open → replaying → replayed, or open → discarded.
    state           text NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'replaying', 'replayed', 'discarded')),
    resolved_by     text,
    resolution      text,
    resolved_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_state ON dead_letters (state, created_at);
CREATE INDEX dead_letters_portal ON dead_letters (portal_id, created_at);
-- One open dead letter per event.
CREATE UNIQUE INDEX dead_letters_open_event ON dead_letters (event_key)
    WHERE state = 'open' AND event_key IS NOT NULL;

-- Replays and discards record their outcome.
ALTER TABLE audit_log ADD COLUMN outcome text;
