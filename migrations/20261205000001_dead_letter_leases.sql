-- Leases on dead letters taken by a replay. The replay that takes a dead
-- letter (`open` -> `replaying`) holds it under `lease_holder` until
-- `lease_expires_at`, renewing while it works; once the lease has expired
-- (the worker died) the dead letter can be taken or discarded again, and the
-- worker's reaper gives it back (`open`). A replay ends only a lease it holds.
ALTER TABLE dead_letters
    ADD COLUMN lease_holder     text,
    ADD COLUMN lease_expires_at timestamptz;

-- Replays stranded before leases existed: given back ten minutes after
-- this migration (a replay still running then has long finished).
UPDATE dead_letters SET lease_expires_at = now() + interval '10 minutes'
WHERE state = 'replaying';

CREATE INDEX dead_letters_lease ON dead_letters (lease_expires_at)
    WHERE state = 'replaying';
