-- Delivery leases instead of session advisory locks: a delivery marks the
-- rows it is posting with its token and an expiry (renewed while it runs),
-- so nothing depends on a database session and workers may go through a
-- transaction-mode pooler. The statement that records impact.com's answer
-- clears the lease in the same row version. No index: rows are found by id.
ALTER TABLE conversions
    ADD COLUMN lease_owner uuid,
    ADD COLUMN lease_until timestamptz;
ALTER TABLE adjustments
    ADD COLUMN lease_owner uuid,
    ADD COLUMN lease_until timestamptz;
