//! The dashboard, the page after login: is HubSpot sending events, what
//! happened to the conversions of the last 7 days, what needs attention.

use domain::triggers::TriggerSet;
use shared::db::website::dashboard::{self as db, Outcomes, WebhookType};

use super::*;

/// One subscription type's line on the dashboard.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct WebhookLine {
    subscription_type: String,
    /// The triggers subscribe to it.
    subscribed: bool,
    last_at: Option<String>,
    count: i64,
    /// Why it looks silent (`None`: it does not).
    warning: Option<String>,
}

/// A silence is worth a warning when it lasts 3 times the usual gap
/// between events, and at least an hour.
const SILENCE_FACTOR: i64 = 3;
const MIN_SILENCE_SECS: i64 = 3600;

fn singular(ty: ObjectType) -> &'static str {
    match ty {
        ObjectType::Contacts => "contact",
        ObjectType::Companies => "company",
        ObjectType::Deals => "deal",
    }
}

/// The subscription types the triggers need (`contact.creation`,
/// `deal.propertyChange`, ...).
pub(crate) fn subscribed(triggers: &TriggerSet) -> Vec<String> {
    let mut out = Vec::new();
    for (ty, t) in triggers {
        if t.on_create {
            out.push(format!("{}.creation", singular(*ty)));
        }
        if !t.on_change.is_empty() {
            out.push(format!("{}.propertyChange", singular(*ty)));
        }
    }
    out
}

/// Every subscribed type and every type seen in 7 days, with a warning on
/// a subscribed type silent longer than usual.
pub(crate) fn webhook_lines(subscribed: &[String], seen: &[WebhookType]) -> Vec<WebhookLine> {
    let mut names: Vec<&str> = subscribed.iter().map(String::as_str).collect();
    names.extend(seen.iter().map(|w| w.subscription_type.as_str()));
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let is_subscribed = subscribed.iter().any(|s| s == name);
            let w = seen.iter().find(|w| w.subscription_type == name);
            let warning = match (is_subscribed, w) {
                (false, _) => None,
                (true, None) => Some("no event in the last 7 days".to_owned()),
                (true, Some(w)) => match (w.usual_gap_secs, w.silent_secs) {
                    (Some(gap), Some(silent))
                        if silent > (gap * SILENCE_FACTOR).max(MIN_SILENCE_SECS) =>
                    {
                        Some(format!(
                            "silent for {} (usually one every {})",
                            duration(silent),
                            duration(gap.max(1))
                        ))
                    }
                    _ => None,
                },
            };
            WebhookLine {
                subscription_type: name.to_owned(),
                subscribed: is_subscribed,
                last_at: w.and_then(|w| w.last_at.clone()),
                count: w.map_or(0, |w| w.count),
                warning,
            }
        })
        .collect()
}

/// "3 h", "2 days", "5 min", "40 s".
fn duration(secs: i64) -> String {
    match secs {
        s if s < 90 => format!("{s} s"),
        s if s < 90 * 60 => format!("{} min", s / 60),
        s if s < 36 * 3600 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

/// The chart's hours summed per UTC day, newest first (the table under
/// the chart, for small screens and screen readers).
pub(crate) fn per_day(hours: &[db::HourCounts]) -> Vec<db::HourCounts> {
    let mut days: Vec<db::HourCounts> = Vec::new();
    for h in hours {
        let day = h.hour.get(..10).unwrap_or(&h.hour);
        match days.last_mut() {
            Some(d) if d.hour == day => {
                d.delivered += h.delivered;
                d.rejected += h.rejected;
                d.dead_lettered += h.dead_lettered;
            }
            _ => days.push(db::HourCounts {
                hour: day.to_owned(),
                ..h.clone()
            }),
        }
    }
    days.reverse();
    days
}

/// The outcome rates as the page prints them (whole per cents).
fn rates(o: &Outcomes) -> Value {
    let total = o.total();
    let pct = |n: i64| {
        if total == 0 {
            0
        } else {
            (n * 100 + total / 2) / total
        }
    };
    context! {
        total => total,
        complete => o.complete, complete_pct => pct(o.complete),
        rejected => o.rejected, rejected_pct => pct(o.rejected),
        unknown => o.unknown, unknown_pct => pct(o.unknown),
        pending => o.pending, pending_pct => pct(o.pending),
    }
}

/// `GET /dashboard`.
pub async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    let id = i64::try_from(portal.0).unwrap_or(-1);
    let view = match ops::view(&site, portal).await {
        Ok(v) => v,
        Err(e) => return page_error(e.status(), &e.to_string()),
    };
    let read = async {
        let seen = db::webhook_types(&site.pool, id).await?;
        let hours = db::hourly(&site.pool, id).await?;
        let outcomes = db::outcomes(&site.pool, id).await?;
        let dead = db::open_dead_letters(&site.pool, id).await?;
        let creds = db::credentials(&site.pool, id).await?;
        Ok::<_, sqlx::Error>((seen, hours, outcomes, dead, creds))
    };
    let (seen, hours, outcomes, dead, creds) = match read.await {
        Ok(r) => r,
        Err(e) => return internal_error("dashboard", e),
    };
    let lines = webhook_lines(&subscribed(&view.triggers), &seen);
    let week = hours.iter().fold((0, 0, 0), |(d, r, x), h| {
        (d + h.delivered, r + h.rejected, x + h.dead_lettered)
    });
    let (cred_status, cred_error) = creds.unwrap_or(("unknown".into(), None));
    let extra = context! {
        webhooks => Value::from_serialize(&lines),
        silent => lines.iter().filter(|l| l.warning.is_some()).count(),
        chart => Value::from_safe_string(super::super::chart::svg(&hours)),
        days => Value::from_serialize(per_day(&hours)),
        week => context! { delivered => week.0, rejected => week.1, dead_lettered => week.2 },
        outcomes => rates(&outcomes),
        open_dead_letters => dead,
        credentials => context! { status => cred_status, error => cred_error },
    };
    render(
        &site,
        portal,
        &csrf,
        "dashboard.html",
        Outcome::default(),
        extra,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, gap: Option<i64>, silent: i64) -> WebhookType {
        WebhookType {
            subscription_type: name.into(),
            last_at: Some("2026-12-05T00:00:00.000Z".into()),
            count: 10,
            usual_gap_secs: gap,
            silent_secs: Some(silent),
        }
    }

    #[test]
    fn a_subscribed_type_silent_three_times_longer_than_usual_is_flagged() {
        let subscribed = vec![
            "contact.creation".to_owned(),
            "deal.propertyChange".to_owned(),
        ];
        let lines = webhook_lines(
            &subscribed,
            &[
                // Every 10 min, silent 5 h: flagged.
                seen("contact.creation", Some(600), 5 * 3600),
                // Every 10 min, silent 20 min: fine.
                seen("deal.propertyChange", Some(600), 1200),
                // Not subscribed (any more): never flagged.
                seen("company.creation", Some(60), 99_999),
            ],
        );
        let warn = |n: &str| {
            lines
                .iter()
                .find(|l| l.subscription_type == n)
                .and_then(|l| l.warning.clone())
        };
        assert_eq!(
            warn("contact.creation").as_deref(),
            Some("silent for 5 h (usually one every 10 min)")
        );
        assert_eq!(warn("deal.propertyChange"), None);
        assert_eq!(warn("company.creation"), None);
        // Every 10 min but silent only 45 min: under the hour's floor.
        let l = webhook_lines(
            &subscribed[..1],
            &[seen("contact.creation", Some(600), 2700)],
        );
        assert_eq!(l[0].warning, None);
    }

    #[test]
    fn hours_add_up_per_day_newest_first() {
        let h = |hour: &str, d| db::HourCounts {
            hour: hour.into(),
            delivered: d,
            rejected: 1,
            dead_lettered: 0,
        };
        let days = per_day(&[
            h("2026-12-04T22:00:00.000Z", 1),
            h("2026-12-04T23:00:00.000Z", 2),
            h("2026-12-05T00:00:00.000Z", 5),
        ]);
        let got: Vec<_> = days
            .iter()
            .map(|d| (d.hour.as_str(), d.delivered, d.rejected))
            .collect();
        assert_eq!(got, [("2026-12-05", 5, 1), ("2026-12-04", 3, 2)]);
    }

    #[test]
    fn a_subscribed_type_never_seen_in_a_week_is_flagged() {
        let lines = webhook_lines(&["deal.creation".to_owned()], &[]);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0].warning.as_deref(),
            Some("no event in the last 7 days")
        );
    }
}
