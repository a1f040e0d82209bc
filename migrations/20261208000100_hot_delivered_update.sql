-- Marking a conversion delivered becomes a HOT update: PostgreSQL writes
-- the new row version on the same page and no index entry at all, where
-- it used to add one to each of the table's four indexes. An update can be
-- HOT only if it changes no column an index reads (key or predicate); the
-- outcome poller's work list read `status`, `queued_uri` and
-- `delivered_at`, which the delivery sets.
--
-- The work list now reads only columns a first delivery leaves as they
-- are: `outcome` (still NULL), `outcome_next_check_at` (NULL until the
-- poller's first claim) and `created_at`. A first look is found by
-- `outcome_next_check_at IS NULL AND created_at <= now() - first look`
-- (the delivery time is then checked on the row); later looks by
-- `outcome_next_check_at <= now()`. Rows that will never be looked at
-- (failed, or delivered without a QueuedUri) are moved out of the first
-- range by the poller (`outcome_next_check_at = 'infinity'`).
DROP INDEX conversions_outcome_due;
CREATE INDEX conversions_outcome_due ON conversions (outcome_next_check_at, created_at)
    WHERE outcome IS NULL;

-- Room on each page for the delivered version of every row it holds (a
-- HOT update needs free space on the row's own page, and a page's rows
-- are delivered together, within one transaction or a few, before the
-- old versions can be pruned): half of each page is left free by inserts.
-- At 70 % only about a third of the updates found room. Pages written
-- from now on; existing ones keep their layout.
ALTER TABLE conversions SET (fillfactor = 50);

-- A conversion queued by impact.com on its first attempt keeps that
-- attempt in its own row (when, how long) instead of a `delivery_attempts`
-- row: one row and one index entry fewer per conversion. Failed attempts,
-- resends and later attempts are still rows of `delivery_attempts`.
ALTER TABLE conversions
    ADD COLUMN first_attempt_at timestamptz,
    ADD COLUMN first_attempt_ms integer;

-- Every attempt of a conversion, wherever it is kept: what the conversion
-- page lists.
CREATE VIEW conversion_attempts AS
    SELECT conversion_id, at, http_status, duration_ms, result, error, resend
    FROM delivery_attempts
    UNION ALL
    SELECT id, first_attempt_at, 200::smallint, first_attempt_ms, 'queued', NULL, false
    FROM conversions WHERE first_attempt_at IS NOT NULL;
