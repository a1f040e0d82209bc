-- HubSpot's burst limit (e.g. 110 requests in any 10 s) is per account, and
-- every worker (and ingest's website) calls HubSpot for the same accounts:
-- the rolling window of shared::hubspot::budget lives here, so that two
-- workers share one budget instead of each spending all of it. Keyed by a
-- hash of the access token, like the in-process window; every time is the
-- database's clock, the one clock all processes share.
CREATE TABLE hubspot_rate_windows (
    account bytea PRIMARY KEY,
    -- Send times of the requests in the current window, oldest first (may
    -- lie in the future: reserved slots).
    sent timestamptz[] NOT NULL DEFAULT '{}',
    -- No request before then (a DAILY 429, or a Retry-After).
    paused_until timestamptz,
    touched_at timestamptz NOT NULL DEFAULT now()
);

-- Takes one request slot of `p_account`'s window (`p_capacity` requests per
-- `p_interval`): `at` is when the request may be sent (maybe later than
-- `now`). When the account is paused for longer than `p_longest`, no slot is
-- taken: `at` is NULL and `paused_until` says until when.
CREATE FUNCTION hubspot_rate_reserve(
    p_account bytea, p_capacity int, p_interval interval, p_longest interval
) RETURNS TABLE (at timestamptz, now timestamptz, paused_until timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_sent timestamptz[];
    v_paused timestamptz;
    v_n int;
    v_at timestamptz;
    v_new int;
BEGIN
    INSERT INTO hubspot_rate_windows (account) VALUES (p_account)
        ON CONFLICT (account) DO NOTHING;
    GET DIAGNOSTICS v_new = ROW_COUNT;
    IF v_new > 0 THEN
        -- A new access token: forget the windows of long-expired ones.
        DELETE FROM hubspot_rate_windows w
            WHERE w.touched_at < v_now - interval '1 day';
    END IF;
    SELECT w.sent, w.paused_until INTO v_sent, v_paused
        FROM hubspot_rate_windows w WHERE w.account = p_account FOR UPDATE;
    IF v_paused IS NOT NULL AND v_paused - v_now > p_longest THEN
        RETURN QUERY SELECT NULL::timestamptz, v_now, v_paused;
        RETURN;
    END IF;
    v_sent := ARRAY(SELECT t FROM unnest(v_sent) t WHERE t > v_now - p_interval ORDER BY t);
    v_n := cardinality(v_sent);
    IF v_n < p_capacity THEN
        v_at := greatest(v_now, v_sent[v_n]);
    ELSE
        v_at := greatest(v_sent[v_n - p_capacity + 1] + p_interval, v_sent[v_n]);
    END IF;
    -- greatest() ignores NULLs: no pause, no effect.
    v_at := greatest(v_at, v_paused);
    UPDATE hubspot_rate_windows w SET sent = v_sent || v_at, touched_at = v_now
        WHERE w.account = p_account;
    RETURN QUERY SELECT v_at, v_now, v_paused;
END $$;

-- An answer came for the slot reserved at `p_reserved`: the slot moves to
-- now (HubSpot counted the request somewhere in between; the later bound
-- is the safe one), and the rate-limit headers tell what others (other
-- apps of the account) used: `p_max` − `p_remaining` beyond our own
-- requests. A 429 (`p_limited`) fills the window; `p_pause` (a Retry-After,
-- or the time to a DAILY limit's reset) holds every request back as long.
CREATE FUNCTION hubspot_rate_answered(
    p_account bytea, p_reserved timestamptz, p_capacity int, p_interval interval,
    p_max int, p_remaining int, p_limited boolean, p_pause interval
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_sent timestamptz[];
    v_pos int;
    v_used int;
    v_more int := 0;
BEGIN
    SELECT w.sent INTO v_sent
        FROM hubspot_rate_windows w WHERE w.account = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_sent := ARRAY(SELECT t FROM unnest(v_sent) t WHERE t > v_now - p_interval ORDER BY t);
    v_pos := array_position(v_sent, p_reserved);
    IF v_pos IS NOT NULL THEN
        v_sent := v_sent[:v_pos - 1] || v_sent[v_pos + 1:];
        v_sent := ARRAY(SELECT t FROM unnest(v_sent || v_now) t ORDER BY t);
    END IF;
    IF p_remaining IS NOT NULL THEN
        SELECT count(*) INTO v_used FROM unnest(v_sent) t WHERE t <= v_now;
        v_more := least(greatest(coalesce(p_max, p_capacity) - p_remaining - v_used, 0), p_capacity);
    END IF;
    IF p_limited THEN
        v_more := greatest(v_more, p_capacity - cardinality(v_sent));
    END IF;
    IF v_more > 0 THEN
        v_sent := ARRAY(SELECT t FROM unnest(v_sent || array_fill(v_now, ARRAY[v_more])) t ORDER BY t);
    END IF;
    UPDATE hubspot_rate_windows w
        SET sent = v_sent,
            touched_at = v_now,
            paused_until = CASE
                WHEN p_pause IS NULL OR p_pause <= interval '0' THEN w.paused_until
                ELSE greatest(w.paused_until, v_now + p_pause)
            END
        WHERE w.account = p_account;
END $$;
