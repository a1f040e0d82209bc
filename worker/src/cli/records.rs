//! `worker conversions list` (delivery status and submission outcome) and
//! `worker privacy erase`.

use anyhow::Context as _;
use clap::Subcommand;
use domain::status::DeliveryStatus;
use shared::{
    config::Settings,
    crypto::SecretCipher,
    db::{
        audit,
        outcomes::{self, LIST_STATUSES, ListFilter},
    },
};

use crate::privacy::{self, Trigger};

/// `conversions` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConversionsCommand {
    /// List conversions, newest first, with their submission outcome.
    List {
        /// HubSpot portal id.
        #[arg(long)]
        portal: Option<i64>,
        /// pending, delivered, failed (delivery); queued (delivered, outcome
        /// not known yet); complete, rejected, duplicate_resend, unknown (outcome).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Only this HubSpot record's conversions, those recorded under ids
        /// merged into it included.
        #[arg(long)]
        object: Option<i64>,
        /// Only this object type (contacts, companies, deals).
        #[arg(long)]
        object_type: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `privacy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Erase what is held about a contact (idempotent); prints what was erased.
    Erase {
        /// HubSpot portal id.
        #[arg(long)]
        portal: i64,
        /// The contact's HubSpot id.
        #[arg(long)]
        contact: i64,
    },
}

/// A person at the database reads personal data: audited as the
/// operating-system user.
async fn audit_read(
    pool: &sqlx::PgPool,
    filter: &ListFilter,
    rows: &[outcomes::ConversionSummary],
) -> Result<(), sqlx::Error> {
    let detail = serde_json::json!({
        "filter": {
            "portal": filter.portal, "status": filter.status, "limit": filter.limit,
            "object_type": filter.object_type, "object_id": filter.object_id,
        },
        "conversions": audit::id_list(rows.iter().map(|r| serde_json::json!(r.id))),
    });
    let portal = audit::one_portal(filter.portal, rows.iter().map(|r| Some(r.portal_id)));
    let actor = super::common::actor();
    let route = "worker conversions list";
    audit::record_read(pool, portal, &actor, "conversion.list", route, detail).await
}

/// `worker conversions ...`.
pub async fn conversions(
    settings: &Settings,
    cmd: ConversionsCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let ConversionsCommand::List {
        portal,
        status,
        limit,
        object,
        object_type,
        json,
    } = cmd;
    if let Some(t) = object_type.as_deref()
        && domain::object_type::ObjectType::parse(t).is_none()
    {
        anyhow::bail!("--object-type {t:?} is not one of contacts, companies, deals");
    }
    if let Some(s) = status.as_deref()
        && !LIST_STATUSES.contains(&s)
    {
        anyhow::bail!("--status {s:?} is not one of {}", LIST_STATUSES.join(", "));
    }
    let pool = super::common::pool(settings).await?;
    let filter = ListFilter {
        portal,
        status,
        limit,
        object_id: object,
        object_type,
    };
    let rows = outcomes::list(&pool, &filter).await?;
    audit_read(&pool, &filter, &rows).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<8} {:<10} {:<18} {:<24} {:<24} {:<10} {:<16} {:<16} REASON",
        "ID", "PORTAL", "OBJECT", "EVENT TYPE", "ORDER ID", "STATUS", "OUTCOME", "ERROR TYPE"
    )?;
    for r in rows {
        let reason = r
            .error_reason
            .clone()
            .or(r.failure_reason.clone())
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<8} {:<10} {:<18} {:<24} {:<24} {:<10} {:<16} {:<16} {}",
            r.id,
            r.portal_id,
            object_label(&r.object_type, r.object_id, r.merged_into),
            r.event_type,
            r.order_id,
            r.status,
            r.outcome
                .as_deref()
                .unwrap_or(if r.status == DeliveryStatus::Delivered.as_str() {
                    "queued"
                } else {
                    "-"
                }),
            r.error_type.as_deref().unwrap_or("-"),
            reason,
        )?;
    }
    Ok(())
}

/// `c:101`, or `c:101>205` for a record merged into 205 in HubSpot.
fn object_label(object_type: &str, id: i64, merged_into: Option<i64>) -> String {
    let kind = object_type.chars().next().unwrap_or('?');
    match merged_into {
        Some(survivor) => format!("{kind}:{id}>{survivor}"),
        None => format!("{kind}:{id}"),
    }
}

/// `worker privacy ...`.
pub async fn privacy(
    settings: &Settings,
    cmd: PrivacyCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let PrivacyCommand::Erase { portal, contact } = cmd;
    anyhow::ensure!(portal > 0, "--portal must be a HubSpot portal id");
    anyhow::ensure!(contact > 0, "--contact must be a HubSpot contact id");
    let cipher = SecretCipher::from_settings(settings)
        .context("CONNECTOR_ENCRYPTION_KEY keys the hash of erased identifiers")?;
    let pool = super::common::pool(settings).await?;
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let erased = privacy::erase(&pool, &cipher, portal, contact, Trigger::Request, &actor).await?;
    writeln!(out, "contact {contact} of portal {portal} erased")?;
    for (what, n) in [
        ("conversions", erased.conversions),
        ("attributed_conversions", erased.attributed_conversions),
        ("webhook_events", erased.webhook_events),
        ("dead_letters", erased.dead_letters),
        ("audit_log", erased.audit_log),
        ("other_texts", erased.other_texts),
    ] {
        writeln!(out, "{what}: {n}")?;
    }
    Ok(())
}
