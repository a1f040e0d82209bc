-- A conversion's story for the website's conversion page: the object as
-- fetched (only the properties the mapping used) with the source of each
-- impact.com field, and every delivery attempt. Kept lean: one jsonb per
-- conversion (written with the row, no extra statement) and one narrow row
-- per attempt (one statement per delivery batch).

-- {"object": {property: value}, "sources": {impact.com field: source},
--  "line_items": [{property: value}], "trigger": [property, value]}
-- (absent keys: nothing of that kind). NULL for conversions recorded before
-- this migration, and after a privacy erasure.
ALTER TABLE conversions ADD COLUMN fetched jsonb;

-- Every POST of a conversion to impact.com (in-process retries of a short
-- blip count as one attempt, their time included).
CREATE TABLE delivery_attempts (
    conversion_id bigint NOT NULL REFERENCES conversions ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- HTTP status of impact.com's answer (NULL: no answer, e.g. a timeout).
    http_status   smallint,
    duration_ms   integer NOT NULL,
    -- queued: impact.com accepted it; otherwise the failure reason code.
    result        text NOT NULL,
    error         text,
    -- A replay's "send again" of a conversion already delivered.
    resend        boolean NOT NULL DEFAULT false
);
CREATE INDEX delivery_attempts_conversion ON delivery_attempts (conversion_id, at);
