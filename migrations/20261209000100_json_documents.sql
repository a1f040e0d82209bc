-- The documents written once per event and read back whole — a
-- conversion's parameters (`payload`), the object as fetched (`fetched`)
-- and the event as HubSpot sent it (`webhook_events.event`) — are stored
-- as `json`, not `jsonb`. PostgreSQL checks `json` input with its lexer
-- and keeps the text; `jsonb` input builds and sorts a binary tree, and
-- its output renders the text again. Per conversion that parsing was the
-- largest single cost of recording it (about a sixth of PostgreSQL's time
-- on the batch statement), for documents no index reads and that are
-- searched only by the website's search box and the erasure of a
-- contact, both of which cast or use the `json` functions.
--
-- Altering the type rewrites both tables (an ACCESS EXCLUSIVE lock for as
-- long as that takes): on a large deployment, run it in a quiet window.
ALTER TABLE conversions
    ALTER COLUMN payload TYPE json,
    ALTER COLUMN fetched TYPE json;
ALTER TABLE webhook_events ALTER COLUMN event TYPE json;

-- The conversion page and the send-again dead letter read `fetched` with
-- its sources (migration 20261208000200).
CREATE FUNCTION fetched_with_sources(fetched json, sources_id bigint) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$ SELECT fetched_with_sources(fetched::jsonb, sources_id) $$;
