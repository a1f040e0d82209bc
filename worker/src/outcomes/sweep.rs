//! Deciding conversions in bulk: the actions of a program updated in the
//! last grace period (`GET /Advertisers/{SID}/Actions`, 20,000 a page) show
//! which of its recently delivered conversions impact.com credited; those
//! are `complete` without a read of their own. One listing per program and
//! interval, leased to one worker; its pages are paid from the same budget
//! as single reads. What it cannot decide (no action yet) waits for the
//! next listing, then, after the grace period, for its own read.

use std::collections::HashMap;

use chrono::Utc;
use domain::{
    events::PortalId,
    outcome::credited::{self, EventRef, ListedAction, Pending},
};
use shared::{
    db::outcome_sweeps::{self, SweepCandidate},
    impact::{
        ImpactCredentials, ImpactError,
        actions::{ACTIONS_PAGE_SIZE, ActionsQuery},
    },
};

use super::{PassReport, PollConfig, secs};
use crate::Worker;

/// Clock difference tolerated between impact.com and us: actions updated
/// this much before the window are listed too, and an action created this
/// much before its conversion was recorded still counts as its own.
const SLACK: chrono::Duration = chrono::Duration::minutes(5);

/// Undecided conversions considered per pass.
const CANDIDATES: i64 = 50_000;

/// impact.com refuses a listing of more than ten pages.
const MAX_PAGES: usize = 10;

/// How long a program's listing rests after impact.com refused it (a token
/// without the right to read actions, a result over ten pages): its
/// conversions are read one by one meanwhile.
const REFUSED_REST_SECS: f64 = 3600.0;

/// One program's undecided conversions, with the credentials to list it.
struct Group {
    creds: ImpactCredentials,
    pending: Vec<Pending>,
    uris: HashMap<i64, String>,
}

/// Lists the actions of every program with recent undecided conversions
/// (when this worker holds the program's lease) and stores `complete` for
/// those credited.
pub(super) async fn sweep(
    w: &Worker,
    cfg: &PollConfig,
    report: &mut PassReport,
) -> Result<(), sqlx::Error> {
    if cfg.grace.is_zero() {
        return Ok(());
    }
    let rows = outcome_sweeps::candidates(&w.pool, secs(cfg.grace), CANDIDATES).await?;
    if rows.is_empty() {
        return Ok(());
    }
    // A lease slightly shorter than the interval, so that this worker's
    // next pass is not shut out by its own timing.
    let lease = cfg.interval.as_secs_f64() * 0.9;
    for ((sid, campaign), group) in groups(w, rows).await {
        if !outcome_sweeps::claim(&w.pool, &sid, &campaign, lease).await? {
            continue;
        }
        let Some(actions) = list(w, cfg, &group.creds, &campaign, report).await? else {
            continue;
        };
        let credited = credited::credited(&group.pending, &actions, SLACK);
        let pairs: Vec<(i64, String)> = credited
            .iter()
            .filter_map(|id| group.uris.get(id).map(|u| (*id, u.clone())))
            .collect();
        let stored = outcome_sweeps::decide_credited(&w.pool, &pairs).await?;
        if !stored.is_empty() {
            metrics::counter!("worker_submissions_total", "outcome" => "complete", "reason" => "none")
                .increment(stored.len() as u64);
            tracing::debug!(account = %sid, campaign = %campaign, credited = stored.len(), "conversions credited");
        }
        report.decided += stored.len();
        report.credited += stored.len();
    }
    Ok(())
}

/// The candidates by (account, program), with their portal's credentials
/// (a portal without them, or a row without the parameters to match, is
/// left to its own read).
async fn groups(w: &Worker, rows: Vec<SweepCandidate>) -> HashMap<(String, String), Group> {
    let mut creds_of: HashMap<i64, Option<ImpactCredentials>> = HashMap::new();
    let mut out: HashMap<(String, String), Group> = HashMap::new();
    for r in rows {
        let creds = match creds_of.get(&r.portal_id) {
            Some(c) => c.clone(),
            None => {
                let c = portal_credentials(w, r.portal_id).await;
                creds_of.insert(r.portal_id, c.clone());
                c
            }
        };
        let Some(creds) = creds else {
            continue;
        };
        let (Some(campaign), Some(event)) = (
            r.campaign_id
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty()),
            r.event.and_then(|e| EventRef::of(&[e])),
        ) else {
            continue;
        };
        let key = (creds.account_sid.clone(), campaign.to_owned());
        let g = out.entry(key).or_insert_with(|| Group {
            creds: creds.clone(),
            pending: vec![],
            uris: HashMap::new(),
        });
        g.uris.insert(r.id, r.queued_uri);
        g.pending.push(Pending {
            id: r.id,
            campaign_id: campaign.to_owned(),
            order_id: r.order_id,
            event,
            recorded_at: r.created_at,
        });
    }
    out
}

/// The portal's impact.com credentials, when it has them.
async fn portal_credentials(w: &Worker, portal_id: i64) -> Option<ImpactCredentials> {
    let portal = PortalId(u64::try_from(portal_id).unwrap_or_default());
    match w.portals.get(&w.pool, &w.cipher, portal).await {
        Ok(p) => p
            .as_deref()
            .and_then(crate::pipeline::deliver::impact_credentials),
        Err(e) => {
            tracing::warn!(%portal, error = %e, "cannot load the portal to list its actions");
            None
        }
    }
}

/// The program's actions updated within the grace period (and the slack
/// on both sides),
/// page by page while the budget allows; what was read so far when it stops
/// (every listed action is a fact, a partial list decides fewer). `None`
/// when nothing could be listed.
async fn list(
    w: &Worker,
    cfg: &PollConfig,
    creds: &ImpactCredentials,
    campaign: &str,
    report: &mut PassReport,
) -> Result<Option<Vec<ListedAction>>, sqlx::Error> {
    let now = Utc::now();
    let grace = chrono::Duration::from_std(cfg.grace).unwrap_or(chrono::Duration::days(1));
    let query = ActionsQuery {
        campaign_id: campaign.to_owned(),
        start: now - grace - SLACK,
        // Dates go in whole seconds, and impact.com's clock may be ahead.
        end: now + SLACK,
    };
    let mut path = query.first_page(&creds.account_sid);
    let mut actions: Vec<ListedAction> = Vec::new();
    for page in 0..MAX_PAGES {
        if let Err(_wait) =
            w.impact
                .budget()
                .may_poll(&creds.account_sid, cfg.reserve_percent, cfg.interval)
        {
            metrics::counter!("worker_submission_polls_deferred_total", "reason" => "budget")
                .increment(1);
            break;
        }
        metrics::counter!("worker_submission_polls_total", "kind" => "actions").increment(1);
        report.listings += 1;
        match w.impact.list_actions(creds, &path).await {
            Ok(p) => {
                actions.extend(p.actions);
                match p.next {
                    Some(next) => path = next,
                    None => break,
                }
            }
            Err(e) => {
                refused(w, creds, campaign, page, &e).await?;
                break;
            }
        }
    }
    Ok((!actions.is_empty()).then_some(actions))
}

/// A listing failed: logged; refused ones (credentials or scopes, a result
/// too large) rest for an hour, the rest is tried again next interval.
async fn refused(
    w: &Worker,
    creds: &ImpactCredentials,
    campaign: &str,
    page: usize,
    e: &ImpactError,
) -> Result<(), sqlx::Error> {
    let f = e.failure();
    let rest = matches!(e, ImpactError::Auth { .. } | ImpactError::Rejected { .. });
    tracing::warn!(
        account = %creds.account_sid, campaign, page, reason = f.reason.as_str(), status = ?f.status,
        page_size = ACTIONS_PAGE_SIZE, resting = rest,
        "could not list a program's actions; its conversions are read one by one"
    );
    if rest {
        outcome_sweeps::postpone(&w.pool, &creds.account_sid, campaign, REFUSED_REST_SECS).await?;
    }
    Ok(())
}
