//! The fault suite's verdict: the counts as a table and as `RESULT` lines.

use std::path::PathBuf;

use sqlx::{PgPool, Row};

use super::{failover::Failover, partition::Partition, reconcile::Reconciliation};
use sandbox::WebhookStats;

/// Faults the run injected, and how the processes went.
#[derive(Debug, Clone, Default)]
pub struct FaultCounts {
    /// Workers killed with SIGKILL.
    pub sigkills: u32,
    /// RabbitMQ stops and starts.
    pub rabbit_restarts: u32,
    /// PostgreSQL crashes (immediate stop) and starts.
    pub postgres_crashes: u32,
    /// Graceful stops asked for (stdin closed).
    pub graceful_stops: u32,
    /// Of those, processes that did not exit 0 within their grace.
    pub unclean_stops: u32,
    /// Worker process starts (first starts included).
    pub worker_starts: u32,
    /// RabbitMQ nodes of the run (a cluster when more than one).
    pub cluster_nodes: usize,
    /// SIGKILLs of the cluster node leading the work queue.
    pub leader_kills: u32,
    /// The last leader kill's recovery.
    pub failover: Option<Failover>,
    /// The partition phase's figures, when the run had one.
    pub partition: Option<Partition>,
}

/// Everything a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Expected against delivered.
    pub recon: Reconciliation,
    /// Dead letters by reason class and reason.
    pub dead_letters: Vec<(String, String, i64)>,
    /// The fake HubSpot's delivery counters.
    pub webhooks: WebhookStats,
    /// Faults injected.
    pub faults: FaultCounts,
    /// Wall time of the run.
    pub seconds: f64,
    /// Logs of the child processes.
    pub work_dir: PathBuf,
}

impl Report {
    /// Nothing lost, nothing doubled, nothing made up, every graceful stop
    /// clean; in a cluster run, the pipeline recovered from the leader's loss
    /// and, when the run had one, from the partition.
    pub fn passed(&self) -> bool {
        let f = &self.faults;
        let recovered = f.leader_kills == 0
            || f.failover
                .is_some_and(|fo| fo.new_event_conversion.is_some());
        let partition_healed = f
            .partition
            .as_ref()
            .is_none_or(|p| p.recovery.new_event_conversion.is_some());
        self.recon.passed() && f.unclean_stops == 0 && recovered && partition_healed
    }

    /// The table and the `RESULT key=value` lines.
    pub fn render(&self) -> String {
        let r = &self.recon;
        let f = &self.faults;
        let dead: i64 = self.dead_letters.iter().map(|d| d.2).sum();
        let rows: Vec<(&str, String)> = vec![
            ("events_sent", r.events_sent.to_string()),
            ("webhook_requests", self.webhooks.requests.to_string()),
            (
                "webhook_failed_attempts",
                self.webhooks.failed_attempts.to_string(),
            ),
            ("webhook_gave_up", self.webhooks.gave_up_events.to_string()),
            ("conversions_expected", r.expected.to_string()),
            ("delivered", r.delivered.to_string()),
            ("duplicates", r.duplicates.to_string()),
            ("lost", r.lost.to_string()),
            ("unexpected", r.unexpected.to_string()),
            ("resends", r.resends.to_string()),
            ("faulted_posts", r.faulted_posts.to_string()),
            ("dead_lettered", dead.to_string()),
            ("sigkills", f.sigkills.to_string()),
            ("rabbitmq_restarts", f.rabbit_restarts.to_string()),
            ("postgres_crashes", f.postgres_crashes.to_string()),
            ("graceful_stops", f.graceful_stops.to_string()),
            ("unclean_stops", f.unclean_stops.to_string()),
            ("worker_starts", f.worker_starts.to_string()),
            ("seconds", format!("{:.0}", self.seconds)),
        ];
        let mut rows = rows;
        if f.cluster_nodes > 1 {
            let secs = |d: Option<std::time::Duration>| {
                d.map_or("none".to_owned(), |d| format!("{:.1}", d.as_secs_f64()))
            };
            let fo = f.failover.unwrap_or_default();
            rows.extend([
                ("cluster_nodes", f.cluster_nodes.to_string()),
                ("leader_kills", f.leader_kills.to_string()),
                ("failover_seconds", secs(fo.new_event_conversion)),
                (
                    "failover_first_conversion_seconds",
                    secs(fo.first_conversion),
                ),
                ("failover_webhook_failures", fo.webhook_failures.to_string()),
            ]);
            if let Some(p) = &f.partition {
                rows.extend([
                    ("partitions", "1".to_owned()),
                    (
                        "partition_node_clients",
                        p.cut_node_clients.len().to_string(),
                    ),
                    ("partition_hold_seconds", secs(Some(p.held))),
                    ("partition_pause_seconds", secs(p.paused)),
                    (
                        "partition_clients_reconnected",
                        p.clients_reconnected.to_string(),
                    ),
                    ("partition_clients_moved_seconds", secs(p.clients_moved)),
                    ("partition_seconds", secs(p.recovery.new_event_conversion)),
                    (
                        "partition_first_conversion_seconds",
                        secs(p.recovery.first_conversion),
                    ),
                    (
                        "partition_webhook_failures",
                        p.recovery.webhook_failures.to_string(),
                    ),
                    ("partition_rejoin_seconds", secs(p.rejoined)),
                    (
                        "partition_node_restarts",
                        u32::from(p.restarted).to_string(),
                    ),
                ]);
            }
        }
        let mut out = String::from("\n| count | value |\n| --- | ---: |\n");
        for (k, v) in &rows {
            out.push_str(&format!("| {k} | {v} |\n"));
        }
        for (class, reason, n) in &self.dead_letters {
            out.push_str(&format!("dead-lettered {n}: {class}: {reason}\n"));
        }
        if !r.lost_examples.is_empty() {
            out.push_str(&format!("lost (first 10): {:?}\n", r.lost_examples));
        }
        if !r.duplicate_examples.is_empty() {
            out.push_str(&format!("doubled (first 10): {:?}\n", r.duplicate_examples));
        }
        out.push('\n');
        for (k, v) in &rows {
            out.push_str(&format!("RESULT {k}={v}\n"));
        }
        for (class, reason, n) in &self.dead_letters {
            let reason: String = reason.split_whitespace().collect::<Vec<_>>().join("_");
            out.push_str(&format!(
                "RESULT dead_letter class={class} reason={reason} count={n}\n"
            ));
        }
        out.push_str(&format!(
            "RESULT verdict={}\n",
            if self.passed() { "pass" } else { "fail" }
        ));
        out
    }
}

/// Dead letters grouped by class and reason.
pub(super) async fn dead_letters(pool: &PgPool) -> anyhow::Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query(
        "SELECT reason_class, left(reason, 120), count(*) FROM dead_letters GROUP BY 1, 2 ORDER BY 3 DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}
