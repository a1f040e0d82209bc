//! Activity's search form read into a filter, and its CSV export's rows.

use std::fmt::Write as _;

use chrono::{NaiveDate, TimeZone, Utc};
use shared::db::website::{ConversionItem, search::Filter};

use super::Fields;

const STATUSES: &[&str] = &["pending", "delivered", "failed"];
const OUTCOMES: &[&str] = &[
    "queued",
    "complete",
    "rejected",
    "duplicate_resend",
    "unknown",
];

/// The filter the form asks for, and what in it was not understood.
pub(crate) fn filter(q: &Fields) -> (Filter, Vec<String>) {
    let mut problems = Vec::new();
    let get = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut one_of = |k: &str, allowed: &[&str]| {
        let v = get(k)?;
        if allowed.contains(&v.as_str()) {
            Some(v)
        } else {
            problems.push(format!("{k} {v:?} is not one of {}", allowed.join(", ")));
            None
        }
    };
    let status = one_of("status", STATUSES);
    let outcome = one_of("outcome", OUTCOMES);
    let object_type = one_of("object_type", &["contacts", "companies", "deals"]);
    let mut day = |k: &str, plus: i64| {
        let v = get(k)?;
        match NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
            Ok(d) => d
                .checked_add_days(chrono::Days::new(plus as u64))
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| Utc.from_utc_datetime(&t)),
            Err(_) => {
                problems.push(format!("{k} {v:?} is not a date (YYYY-MM-DD)"));
                None
            }
        }
    };
    let from = day("from", 0);
    // "to" is inclusive: up to the end of that day.
    let until = day("to", 1);
    let f = Filter {
        q: get("q"),
        status,
        outcome,
        object_type,
        from,
        until,
    };
    (f, problems)
}

/// The filters as a query string (without `before`), for the next page's
/// and the export's links.
pub(crate) fn query_string(q: &Fields) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for k in ["q", "status", "outcome", "object_type", "from", "to"] {
        if let Some(v) = q.get(k).filter(|v| !v.trim().is_empty()) {
            ser.append_pair(k, v.trim());
        }
    }
    ser.finish()
}

/// The export's first line.
pub(crate) const CSV_HEADER: &str = "id,recorded_at,updated_at,object_type,object_id,event_type,order_id,click_id,status,outcome,error_type,error_reason,queued_uri,failure_reason,attempts,merged_into\r\n";

/// One CSV field: quoted when it must be; a text a spreadsheet would run
/// as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
fn field(out: &mut String, v: &str) {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&v);
    }
}

/// Appends conversion `c` as a CSV line.
pub(crate) fn csv_row(out: &mut String, c: &ConversionItem) {
    let text = [
        c.created_at.as_deref().unwrap_or_default(),
        &c.updated_at,
        &c.object_type,
    ];
    let _ = write!(out, "{}", c.id);
    for t in text {
        out.push(',');
        field(out, t);
    }
    let _ = write!(out, ",{}", c.object_id);
    for t in [
        c.event_type.as_str(),
        &c.order_id,
        c.click_id.as_deref().unwrap_or_default(),
        &c.status,
        c.outcome.as_deref().unwrap_or_default(),
        c.error_type.as_deref().unwrap_or_default(),
        c.error_reason.as_deref().unwrap_or_default(),
        c.queued_uri.as_deref().unwrap_or_default(),
        c.failure_reason.as_deref().unwrap_or_default(),
    ] {
        out.push(',');
        field(out, t);
    }
    let _ = write!(out, ",{}", c.attempts.unwrap_or_default());
    out.push(',');
    if let Some(m) = c.merged_into {
        let _ = write!(out, "{m}");
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut s = String::new();
        field(&mut s, "a,b \"c\"");
        s.push('|');
        field(&mut s, "=HYPERLINK(\"x\")");
        s.push('|');
        field(&mut s, "plain");
        assert_eq!(s, "\"a,b \"\"c\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"|plain");
    }

    #[test]
    fn the_form_is_read_and_bad_values_are_reported() {
        let q: Fields = [
            ("q", " 9_closedwon "),
            ("status", "delivered"),
            ("outcome", "bogus"),
            ("from", "2026-12-01"),
            ("to", "2026-12-02"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (f, problems) = filter(&q);
        assert_eq!(f.q.as_deref(), Some("9_closedwon"));
        assert_eq!(f.status.as_deref(), Some("delivered"));
        assert_eq!(f.outcome, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            f.from.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-01T00:00:00+00:00")
        );
        // Inclusive: to the end of the 2nd.
        assert_eq!(
            f.until.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-03T00:00:00+00:00")
        );
        assert_eq!(
            query_string(&q),
            "q=9_closedwon&status=delivered&outcome=bogus&from=2026-12-01&to=2026-12-02"
        );
    }
}
