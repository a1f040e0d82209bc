-- Replays asked for from the console (website button, admin API) and
-- carried out by a worker: the console inserts the request, publishes its id
-- to the replays queue, and shows its progress from here.
CREATE TABLE replay_requests (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Who asked (the audit log's actor: admin:alice, website:portal:1001, ...).
    actor           text NOT NULL,
    -- The portal the request is limited to (a website session's portal);
    -- NULL: an operator's request, any portal.
    portal_id       bigint,
    dead_letter_ids bigint[] NOT NULL,
    -- {"dry_run": bool, "as_sent": bool, "force": bool}
    mode            jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed')),
    -- One report per dead letter, in order: {"id", "outcome", "detail", ...}.
    results         jsonb NOT NULL DEFAULT '[]',
    -- Why a failed request failed.
    error           text,
    started_at      timestamptz,
    finished_at     timestamptz
);

CREATE INDEX replay_requests_portal_created ON replay_requests (portal_id, created_at DESC);
