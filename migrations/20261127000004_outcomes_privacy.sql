-- Submission outcomes: impact.com answers QUEUED and decides later; the
-- worker follows each delivered conversion's QueuedUri until its submission
-- is Complete, and keeps the verdict here. `status` stays the delivery state
-- (a delivered conversion is never posted again, whatever its outcome).
ALTER TABLE conversions
    -- NULL: not known yet (being followed); complete: credited as far as
    -- impact.com says; rejected: completed with an ErrorReason;
    -- duplicate_resend: CONV_DUPLICATE of our own resend after a crash (the
    -- first submission went through); unknown: given up (no answer in time,
    -- or impact.com no longer knows the submission).
    ADD COLUMN outcome text
        CHECK (outcome IN ('complete', 'rejected', 'duplicate_resend', 'unknown')),
    -- The submission's last Status (Queued, In Progress, Complete).
    ADD COLUMN submission_status text,
    -- impact.com's ErrorType / ErrorReason (e.g. Contract Error / CONTRACT_NOT_FOUND).
    ADD COLUMN error_type text,
    ADD COLUMN error_reason text,
    -- Polls so far, and when the next one is due (NULL: delivered_at + interval).
    ADD COLUMN outcome_checks integer NOT NULL DEFAULT 0,
    ADD COLUMN outcome_next_check_at timestamptz,
    ADD COLUMN outcome_checked_at timestamptz;

-- The poller's work list: delivered conversions whose outcome is not known.
CREATE INDEX conversions_outcome_due ON conversions (outcome_next_check_at, delivered_at)
    WHERE status = 'delivered' AND outcome IS NULL AND queued_uri IS NOT NULL;
CREATE INDEX conversions_outcome ON conversions (portal_id, outcome) WHERE outcome IS NOT NULL;

-- Privacy: contacts whose personal data was erased (contact.privacyDeletion,
-- contact.deletion when configured, or an operator's request). Ids only:
-- this row says that an erasure happened, never what was erased.
CREATE TABLE privacy_erasures (
    portal_id   bigint NOT NULL,
    contact_id  bigint NOT NULL,
    -- privacy_deletion | deletion | request
    trigger     text NOT NULL,
    actor       text NOT NULL,
    -- How many rows of each table were scrubbed, by the last pass.
    counts      jsonb NOT NULL DEFAULT '{}',
    first_erased_at timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz NOT NULL DEFAULT now(),
    passes      integer NOT NULL DEFAULT 1,
    PRIMARY KEY (portal_id, contact_id)
);

-- An event of an erased contact is recorded `erased` (the erasure request
-- itself) or `skipped` with reason contact_erased (a late event).
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_status_check;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_status_check
    CHECK (status IN ('skipped', 'ignored', 'failed', 'converted', 'erased'));
