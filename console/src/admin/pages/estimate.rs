//! A replay request's progress, and the estimate a dry run gives: how many
//! of its dead letters would be sent, how many would still fail and why,
//! read from the reports the worker stored (`replay_requests.results`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use shared::db::replays::ReplayRequestRow;

/// What one dry-run report says would happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A conversion would be sent.
    WouldSend,
    /// Its conversion was delivered already: refused without `force`.
    AlreadyDelivered,
    /// Would fail again (the failure reason).
    Fails(String),
    /// The events no longer convert (why).
    NothingToSend(String),
    /// Not replayed at all (`not_open`, `not_found`, `not_replayable`).
    Skipped(String),
}

/// The verdict of one report of a dry run.
pub fn verdict(report: &Value) -> Verdict {
    let outcome = report["outcome"].as_str().unwrap_or_default();
    if outcome != "dry_run" {
        return Verdict::Skipped(outcome.to_owned());
    }
    if report["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("would refuse"))
    {
        return Verdict::AlreadyDelivered;
    }
    let items: Vec<&Value> = match &report["preview"] {
        Value::Array(a) => a.iter().collect(),
        Value::Null => vec![],
        one => vec![one],
    };
    if items.iter().any(|i| i.get("would_send").is_some()) {
        return Verdict::WouldSend;
    }
    if let Some(e) = items.iter().find_map(|i| i["error"].as_str()) {
        return Verdict::Fails(e.to_owned());
    }
    match items.iter().find_map(|i| i["nothing_to_send"].as_str()) {
        Some(why) => Verdict::NothingToSend(why.to_owned()),
        None => Verdict::NothingToSend("no events".into()),
    }
}

/// A request's progress and, for a dry run, its estimate.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// Dead letters in the request.
    pub total: usize,
    /// Reports stored so far.
    pub done: usize,
    /// 0 to 100.
    pub percent: usize,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// Whether it is over.
    pub finished: bool,
    /// Dry run: conversions that would be sent.
    pub would_send: usize,
    /// Dry run: delivered already (refused without force).
    pub already_delivered: usize,
    /// Dry run: would still fail, by reason.
    pub fails: BTreeMap<String, usize>,
    /// Dry run: would still fail, in all.
    pub failing: usize,
    /// Dry run: nothing to send, by reason.
    pub nothing: BTreeMap<String, usize>,
    /// Not replayable now, by outcome.
    pub skipped: BTreeMap<String, usize>,
    /// Real replay: outcomes counted (`delivered`, `failed`, ...).
    pub outcomes: BTreeMap<String, usize>,
    /// The one-line summary.
    pub summary: String,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn reasons(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The progress of request `r`.
pub fn progress(r: &ReplayRequestRow) -> Progress {
    let reports = r.results.as_array().cloned().unwrap_or_default();
    let total = r.dead_letter_ids.len();
    let done = reports.len().min(total);
    let mut p = Progress {
        total,
        done,
        percent: (done * 100).checked_div(total).unwrap_or(100),
        status: r.status.clone(),
        finished: r.finished(),
        ..Progress::default()
    };
    for report in &reports {
        if r.mode.dry_run {
            match verdict(report) {
                Verdict::WouldSend => p.would_send += 1,
                Verdict::AlreadyDelivered => p.already_delivered += 1,
                Verdict::Fails(why) => *p.fails.entry(why).or_default() += 1,
                Verdict::NothingToSend(why) => *p.nothing.entry(why).or_default() += 1,
                Verdict::Skipped(why) => *p.skipped.entry(why).or_default() += 1,
            }
        } else {
            let outcome = report["outcome"].as_str().unwrap_or("unknown").to_owned();
            *p.outcomes.entry(outcome).or_default() += 1;
        }
    }
    p.failing = p.fails.values().sum();
    p.summary = summary(&p, r.mode.dry_run);
    p
}

fn summary(p: &Progress, dry_run: bool) -> String {
    let letters = plural(p.total, "letter", "letters");
    if !dry_run {
        let counted = if p.outcomes.is_empty() {
            "none replayed yet".to_owned()
        } else {
            reasons(&p.outcomes)
        };
        return format!("{letters}: {counted}");
    }
    let mut parts = vec![format!(
        "{} would be sent",
        plural(p.would_send, "conversion", "conversions")
    )];
    if p.failing > 0 || p.fails.is_empty() {
        let why = if p.fails.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons(&p.fails))
        };
        parts.push(format!("{} still fail{why}", p.failing));
    }
    if p.already_delivered > 0 {
        parts.push(format!(
            "{} delivered already (not sent again)",
            p.already_delivered
        ));
    }
    let nothing: usize = p.nothing.values().sum();
    if nothing > 0 {
        parts.push(format!(
            "{nothing} would send nothing ({})",
            reasons(&p.nothing)
        ));
    }
    let skipped: usize = p.skipped.values().sum();
    if skipped > 0 {
        parts.push(format!(
            "{skipped} cannot be replayed now ({})",
            reasons(&p.skipped)
        ));
    }
    if p.done < p.total {
        parts.push(format!("{} not estimated yet", p.total - p.done));
    }
    format!("{letters}: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(dry_run: bool, n: usize, results: Value) -> ReplayRequestRow {
        ReplayRequestRow {
            id: uuid::Uuid::nil(),
            created_at: chrono::Utc::now(),
            actor: "admin:alice".into(),
            portal_id: None,
            dead_letter_ids: (1..=n as i64).collect(),
            mode: shared::broker::ReplayMode {
                dry_run,
                ..Default::default()
            },
            status: "done".into(),
            results,
            error: None,
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn a_dry_run_estimates_what_would_be_sent_and_what_still_fails() {
        let send = json!({"id": 1, "outcome": "dry_run", "detail": "would re-evaluate",
                          "preview": [{"would_send": [["OrderId", "1"]]}]});
        let fail = json!({"id": 2, "outcome": "dry_run", "detail": "would re-evaluate",
                          "preview": [{"error": "missing_required_field", "detail": "x"}]});
        let delivered = json!({"id": 3, "outcome": "dry_run",
                               "detail": "would refuse: its conversion was delivered already"});
        let gone = json!({"id": 4, "outcome": "not_open", "detail": "replayed"});
        let mut results = vec![];
        results.extend(std::iter::repeat_n(send, 380));
        results.extend(std::iter::repeat_n(fail, 32));
        let p = progress(&row(true, 412, Value::Array(results.clone())));
        assert_eq!(
            p.summary,
            "412 letters: 380 conversions would be sent, 32 still fail (missing_required_field: 32)"
        );
        assert_eq!((p.percent, p.done), (100, 412));
        results.truncate(2);
        results.push(delivered);
        results.push(gone);
        let p = progress(&row(true, 5, Value::Array(results)));
        assert_eq!(
            p.summary,
            "5 letters: 2 conversions would be sent, 0 still fail, 1 delivered already (not sent again), \
             1 cannot be replayed now (not_open: 1), 1 not estimated yet"
        );
        assert_eq!(p.percent, 80);
        let p = progress(&row(false, 2, json!([{"outcome": "delivered"}])));
        assert_eq!(p.summary, "2 letters: delivered: 1");
    }
}
