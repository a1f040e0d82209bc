//! What the operators' pages read: every portal's health, the audit log.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};

/// One portal's health, as the portals page shows it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct PortalHealth {
    /// Portal id.
    pub portal_id: i64,
    /// `active`, `paused` or `uninstalled`.
    pub status: String,
    /// `oauth` or `private_app`.
    pub hubspot_auth: String,
    /// Whether the impact.com settings are saved.
    pub configured: bool,
    /// impact.com credentials: `unknown`, `ok` or `failing`.
    pub credentials_status: String,
    /// Why impact.com refused them (when `failing`).
    pub credentials_error: Option<String>,
    /// When the last webhook event of the portal was processed.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Conversions delivered in the last 24 hours.
    pub delivered_24h: i64,
    /// Failures in the last 24 hours: dead letters stored.
    pub failed_24h: i64,
    /// Dead letters waiting for an operator (`open` or `replaying`).
    pub open_dead_letters: i64,
}

/// Every portal's health, by portal id.
pub async fn portals(pool: &PgPool) -> Result<Vec<PortalHealth>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.portal_id, p.status, p.hubspot_auth_kind AS hubspot_auth,
                (p.impact_account_sid IS NOT NULL) AS configured,
                p.credentials_status, p.credentials_error,
                (SELECT max(e.processed_at) FROM webhook_events e WHERE e.portal_id = p.portal_id)
                    AS last_event_at,
                (SELECT count(*) FROM conversions c WHERE c.portal_id = p.portal_id
                    AND c.status = 'delivered' AND c.delivered_at > now() - interval '24 hours')
                    AS delivered_24h,
                (SELECT count(*) FROM dead_letters d WHERE d.portal_id = p.portal_id
                    AND d.created_at > now() - interval '24 hours') AS failed_24h,
                (SELECT count(*) FROM dead_letters d WHERE d.portal_id = p.portal_id
                    AND d.state IN ('open', 'replaying')) AS open_dead_letters
         FROM portals p ORDER BY p.portal_id",
    )
    .fetch_all(pool)
    .await
}

/// One audit log row.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct AuditRow {
    /// Row id (newest first; the page's cursor).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`admin:<name>`, `website:portal:..`, `worker`, ...).
    pub actor: String,
    /// What.
    pub action: String,
    /// Portal, if one.
    pub portal_id: Option<i64>,
    /// Outcome.
    pub outcome: Option<String>,
    /// Details (JSON).
    pub detail: Option<serde_json::Value>,
}

/// Which audit rows to show.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Actor contains (case-insensitive).
    pub actor: Option<String>,
    /// Action starts with (`replay`, `dead_letter.list`, ...).
    pub action: Option<String>,
    /// One portal.
    pub portal: Option<i64>,
    /// Rows older than this id (the next page).
    pub before: Option<i64>,
    /// Rows per page.
    pub limit: i64,
}

fn like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The newest audit rows matching `f`.
pub async fn audit(pool: &PgPool, f: &AuditFilter) -> Result<Vec<AuditRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT id, at, actor, action, portal_id, outcome, detail FROM audit_log WHERE true",
    );
    if let Some(a) = &f.actor {
        q.push(" AND actor ILIKE ")
            .push_bind(format!("%{}%", like(a)));
    }
    if let Some(a) = &f.action {
        q.push(" AND action LIKE ")
            .push_bind(format!("{}%", like(a)));
    }
    if let Some(p) = f.portal {
        q.push(" AND portal_id = ").push_bind(p);
    }
    if let Some(b) = f.before {
        q.push(" AND id < ").push_bind(b);
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(f.limit.clamp(1, 500));
    q.build_query_as().fetch_all(pool).await
}
