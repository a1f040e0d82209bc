-- `conversions (status, updated_at)` served no query: the listings filter by
-- status with `$n IS NULL OR status = $n` and order by id, retention selects
-- delivered rows by `delivered_at` (nearly every row is delivered), and the
-- outcome poller has its own partial index. Yet every conversion paid two
-- entries in it: one when recorded, one when marked delivered (the update
-- changes both columns).
DROP INDEX IF EXISTS conversions_status;
