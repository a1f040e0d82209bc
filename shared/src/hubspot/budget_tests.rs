use super::*;

#[test]
fn never_more_than_the_limit_in_any_window() {
    let mut w = Window::new();
    let now = Instant::now();
    let times: Vec<Instant> = (0..200).map(|_| now + w.reserve(now)).collect();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[..i]
            .iter()
            .filter(|s| t.saturating_duration_since(**s) < w.interval)
            .count();
        assert!(in_window < w.capacity, "request {i}: {in_window} before it");
    }
    assert_eq!(times[94], now, "the first 95 go at once");
    assert_eq!(times[95], now + Duration::from_secs(10));
}

#[test]
fn headers_and_429s_shrink_what_is_left() {
    let budget = RateBudget::default();
    budget.observe(
        "t",
        Observed {
            max: Some(190),
            interval_ms: Some(10_000),
            remaining: Some(3),
            limited: false,
            success: true,
            headerless: false,
        },
    );
    let mut buckets = budget.buckets.lock().expect("not poisoned");
    let w = buckets.get_mut(&key("t")).expect("created");
    assert_eq!(w.capacity, 180);
    assert_eq!(w.sent.len(), 180, "the server's count wins");
    assert!(w.reserve(Instant::now()) > Duration::ZERO);
}

#[tokio::test]
async fn a_daily_429_pauses_the_account_and_a_rolling_one_waits_the_window() {
    let budget = RateBudget::default();
    budget.rate_limited("daily", "DAILY", Duration::from_secs(3600));
    let paused = budget.acquire("daily").await.expect_err("paused");
    assert!(budget.acquire("other").await.is_ok());
    assert!(paused.retry_after > Duration::from_secs(3500));
    // Another account is not affected.
    assert!(budget.acquire("other").await.is_ok());
    budget.rate_limited("rolling", "TEN_SECONDLY_ROLLING", Duration::from_secs(1));
    let mut buckets = budget.buckets.lock().expect("not poisoned");
    let w = buckets.get_mut(&key("rolling")).expect("created");
    assert!(w.reserve(Instant::now()) >= Duration::from_millis(900));
}

#[test]
fn answers_without_rate_limit_headers_lift_the_window() {
    let budget = RateBudget::default();
    let no_headers = Observed {
        success: true,
        ..Observed::default()
    };
    budget.observe("t", no_headers);
    let mut buckets = budget.buckets.lock().expect("not poisoned");
    let w = buckets.get_mut(&key("t")).expect("created");
    let now = Instant::now();
    assert!((0..500).all(|_| w.reserve(now).is_zero()));
    drop(buckets);
    budget.observe(
        "t",
        Observed {
            max: Some(110),
            interval_ms: Some(10_000),
            remaining: Some(100),
            limited: false,
            success: true,
            headerless: false,
        },
    );
    let mut buckets = budget.buckets.lock().expect("not poisoned");
    let w = buckets.get_mut(&key("t")).expect("created");
    assert!(!w.unlimited, "headers are back");
}

#[test]
fn a_search_answer_leaves_the_window_as_it_was() {
    let budget = RateBudget::default();
    let search = Observed {
        success: true,
        headerless: true,
        ..Observed::default()
    };
    // A fresh account: a search answer does not make it unlimited.
    budget.observe("fresh", search);
    // A limited account stays limited after a search answer, and after an
    // answer of another endpoint without headers (a proxy, a new route).
    budget.observe(
        "learned",
        Observed {
            max: Some(10),
            interval_ms: Some(10_000),
            remaining: Some(9),
            success: true,
            ..Observed::default()
        },
    );
    budget.observe("learned", search);
    budget.observe(
        "learned",
        Observed {
            success: true,
            ..Observed::default()
        },
    );
    let buckets = budget.buckets.lock().expect("not poisoned");
    for account in ["fresh", "learned"] {
        let w = buckets.get(&key(account)).expect("created");
        assert!(!w.unlimited, "{account} was made unlimited");
    }
    assert_eq!(buckets.get(&key("learned")).expect("created").capacity, 9);
}
