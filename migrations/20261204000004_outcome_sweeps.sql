-- Submission outcomes decided in bulk: the poller lists an impact.com
-- program's recent actions (`GET /Advertisers/{SID}/Actions`) and marks the
-- conversions they show credited, instead of reading each submission. One
-- row per (account, program) is the lease that lets one worker at a time
-- make that listing, once per poll interval.
CREATE TABLE outcome_sweeps (
    account_sid text NOT NULL,
    campaign_id text NOT NULL,
    -- No other worker lists this program's actions before then.
    next_at     timestamptz NOT NULL,
    -- When the last listing started.
    swept_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_sid, campaign_id)
);
