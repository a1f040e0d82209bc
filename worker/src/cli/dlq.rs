//! `worker dlq list|show|replay|replays|discard`.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use shared::{
    config::Settings,
    db::{
        audit,
        dead_letters::{self as store, DeadLetter, DeadLetterId, Filter, ReasonClass},
    },
};
use std::io::IsTerminal as _;

use super::common::actor;
use crate::{
    Worker,
    dlq::{
        ops,
        replay::{ReplayMode, ReplayReport, replay_many},
    },
};

/// `dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters (open and replaying ones unless --state says otherwise).
    List {
        /// Which ones.
        #[command(flatten)]
        filter: FilterArgs,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter in full (JSON).
    Show {
        /// The dead letter's id.
        id: i64,
    },
    /// Replay one dead letter (by id) or every open one matching a filter
    /// (one another replay holds is refused: "already being replayed").
    Replay {
        /// The dead letter's id (or use the filter options).
        id: Option<i64>,
        /// Which ones, when no id is given.
        #[command(flatten)]
        filter: FilterArgs,
        /// Show what would be sent; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Resend the stored payload instead of re-evaluating with the
        /// current configuration and a fresh object.
        #[arg(long)]
        as_sent: bool,
        /// Send even a conversion that was delivered already.
        #[arg(long)]
        force: bool,
        /// Replays per second (default CONNECTOR_REPLAY_RATE_PER_SEC).
        #[arg(long)]
        rate: Option<u32>,
    },
    /// Replay requests from the console (JSON): the latest, or one by id.
    Replays {
        /// The request's id.
        id: Option<uuid::Uuid>,
    },
    /// Discard a dead letter, with a reason.
    Discard {
        /// The dead letter's id.
        id: i64,
        /// Why (kept in the dead letter and the audit log).
        #[arg(long)]
        reason: String,
    },
}

/// Dead-letter filters.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// HubSpot portal id.
    #[arg(long)]
    pub portal: Option<i64>,
    /// contacts, companies or deals.
    #[arg(long)]
    pub object_type: Option<String>,
    /// permanent, exhausted, poison, malformed or invalid.
    #[arg(long)]
    pub reason_class: Option<ReasonClass>,
    /// Stored at or after (RFC 3339, YYYY-MM-DD, or an age like 2h).
    #[arg(long)]
    pub since: Option<String>,
    /// Stored before (same forms).
    #[arg(long)]
    pub until: Option<String>,
    /// Text in the error or reason code.
    #[arg(long)]
    pub text: Option<String>,
    /// open, replaying, replayed, discarded or all (default: open and
    /// replaying; a bulk replay: open).
    #[arg(long)]
    pub state: Option<String>,
    /// Most dead letters (default 100).
    #[arg(long)]
    pub limit: Option<i64>,
}

impl FilterArgs {
    /// The store's filter.
    pub fn to_filter(&self, id: Option<i64>) -> anyhow::Result<Filter> {
        Ok(ops::filter(
            id,
            self.portal,
            self.object_type.clone(),
            self.reason_class,
            self.since.as_deref(),
            self.until.as_deref(),
            self.text.clone(),
            self.state.clone(),
            self.limit,
        )?)
    }
}

/// Runs a `dlq` command; output goes to `out`, progress to stderr.
pub async fn run(
    settings: &Settings,
    cmd: DlqCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let w = Worker::connect(settings).await.context("connecting")?;
    match cmd {
        DlqCommand::List { filter, json } => list(&w, &filter, json, out).await?,
        DlqCommand::Show { id } => show(&w, id, out).await?,
        DlqCommand::Replay {
            id,
            filter,
            dry_run,
            as_sent,
            force,
            rate,
        } => {
            let mode = ReplayMode {
                dry_run,
                as_sent,
                force,
            };
            let ids: Vec<DeadLetterId> = match id {
                Some(id) => vec![DeadLetterId(id)],
                None => store::list(&w.pool, &replayable(&filter)?)
                    .await?
                    .into_iter()
                    .map(|d| d.id)
                    .collect(),
            };
            // Progress on a terminal's stderr, one line rewritten in place
            // (stdout keeps only the reports, for scripts).
            let total = ids.len();
            let show = total > 1 && std::io::stderr().is_terminal();
            let mut done = 0;
            let rate = rate.unwrap_or(settings.replay_rate_per_sec);
            let reports = replay_many(&w, &ids, mode, &actor(), rate, |r| {
                done += 1;
                if show {
                    eprint!(
                        "\rreplayed {done}/{total} (last: {:<20})",
                        r.outcome.as_str()
                    );
                }
            })
            .await?;
            if show {
                eprintln!();
            }
            print_reports(&reports, dry_run, out)?;
        }
        DlqCommand::Replays { id } => {
            let rows = match id {
                Some(id) => shared::db::replays::get(&w.pool, id)
                    .await?
                    .into_iter()
                    .collect(),
                None => shared::db::replays::list(&w.pool, None, 50).await?,
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        }
        DlqCommand::Discard { id, reason } => discard(&w, id, &reason, out).await?,
    }
    Ok(())
}

/// `dlq list`: the table (or JSON); the read is audited as the
/// operating-system user (a person reading personal data).
async fn list(
    w: &Worker,
    filter: &FilterArgs,
    json: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let rows = store::list(&w.pool, &filter.to_filter(None)?).await?;
    let detail = serde_json::json!({
        "filter": { "portal": filter.portal, "state": filter.state, "text": filter.text.is_some() },
        "dead_letters": audit::id_list(rows.iter().map(|d| serde_json::json!(d.id))),
    });
    let portal = audit::one_portal(filter.portal, rows.iter().map(|d| d.portal_id));
    let route = "worker dlq list";
    audit::record_read(&w.pool, portal, &actor(), "dead_letter.list", route, detail).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        print_table(&rows, out)?;
    }
    Ok(())
}

/// `dlq discard ID --reason`: refused while a replay holds it.
async fn discard(
    w: &Worker,
    id: i64,
    reason: &str,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match ops::discard(&w.pool, DeadLetterId(id), &actor(), reason).await? {
        ops::Discarded::Discarded => writeln!(out, "dead letter {id} discarded")?,
        ops::Discarded::NotFound => anyhow::bail!("dead letter {id} does not exist"),
        ops::Discarded::NotOpen { state } => {
            anyhow::bail!("dead letter {id} is not open (it is {state})")
        }
        ops::Discarded::Replaying { holder, until } => anyhow::bail!(
            "dead letter {id} is being replayed (by {holder} until {until}); try again once that replay ends"
        ),
    }
    Ok(())
}

/// `dlq show ID` (audited).
async fn show(w: &Worker, id: i64, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let row = store::get(&w.pool, DeadLetterId(id))
        .await?
        .with_context(|| format!("dead letter {id} does not exist"))?;
    let detail = serde_json::json!({ "dead_letter": id });
    let route = "worker dlq show";
    audit::record_read(
        &w.pool,
        row.portal_id,
        &actor(),
        "dead_letter.show",
        route,
        detail,
    )
    .await?;
    writeln!(out, "{}", serde_json::to_string_pretty(&row)?)?;
    Ok(())
}

/// The filter of a bulk replay: open dead letters only, unless `--state`
/// says otherwise (those being replayed would only be refused).
fn replayable(filter: &FilterArgs) -> anyhow::Result<Filter> {
    let mut f = filter.to_filter(None)?;
    f.state.get_or_insert_with(|| "open".into());
    Ok(f)
}

fn print_table(rows: &[DeadLetter], out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<8} {:<20} {:<10} {:<10} {:<12} {:<10} {:<22} {:<6} {:>3} {:<9} ERROR",
        "ID", "CREATED", "PORTAL", "TYPE", "OBJECT", "CLASS", "REASON", "STATUS", "TRY", "STATE"
    )?;
    for d in rows {
        let dash = || "-".to_owned();
        let error = d.last_error.as_deref().unwrap_or("").replace('\n', " ");
        writeln!(
            out,
            "{:<8} {:<20} {:<10} {:<10} {:<12} {:<10} {:<22} {:<6} {:>3} {:<9} {}",
            d.id,
            d.created_at.format("%Y-%m-%d %H:%M:%S"),
            d.portal_id.map_or_else(dash, |p| p.to_string()),
            d.object_type.clone().unwrap_or_else(dash),
            d.object_id.map_or_else(dash, |p| p.to_string()),
            d.reason_class,
            d.reason,
            d.last_status.map_or_else(dash, |s| s.to_string()),
            d.attempts,
            d.state,
            domain::failure::truncate(&error, 80),
        )?;
    }
    writeln!(out, "{} dead letter(s)", rows.len())
}

fn print_reports(
    reports: &[ReplayReport],
    dry_run: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    for r in reports {
        writeln!(out, "{} {} {}", r.id, r.outcome.as_str(), r.detail)?;
        if let Some(p) = &r.preview {
            writeln!(out, "{}", serde_json::to_string_pretty(p)?)?;
        }
    }
    let sent = reports.iter().filter(|r| r.outcome.sent()).count();
    if !dry_run {
        writeln!(out, "{} replayed, {sent} delivered", reports.len())?;
    }
    Ok(())
}
