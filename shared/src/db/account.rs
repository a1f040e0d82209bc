//! Deleting an account: everything of the portal, in one transaction, and
//! an audit row saying who deleted it (no personal data).
//!
//! Tables that are written only for a portal that exists cascade from
//! `portals` (foreign keys `ON DELETE CASCADE`): [`CASCADING`]. The others
//! have no foreign key on purpose (written on the per-event path, where a
//! key check locked the portal's row, or for events of portals the
//! connector does not know) and are deleted here by portal id:
//! [`BY_PORTAL_ID`]. What a worker wrote for the portal while the deletion
//! ran (its transaction still saw the portal) is deleted by the retention
//! job ([`prune_deleted`]). `outcome_sweeps` is keyed by the impact.com
//! account and program: its row goes when no other portal uses them;
//! `hubspot_rate_windows` by a hash of the access token: the windows of the
//! portal's current tokens go (older ones hold only send times and expire
//! within a day).
//!
//! `tests/tests/console/account_deletion.rs` lists every table of the
//! schema (`information_schema`): a new table that holds per-portal data
//! must be named in one of these lists, or the test fails.

use secrecy::ExposeSecret;
use serde_json::json;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::{
    crypto::SecretCipher,
    db::{portals::secret_context, rate_windows::account_key},
};
use domain::events::PortalId;

/// Tables whose rows of a portal cascade from its `portals` row.
pub const CASCADING: &[&str] = &[
    "triggers",
    "trigger_properties",
    "mappings",
    "adjustment_rules",
    "adjustments",
    "object_merges",
    "replay_requests",
    "website_sessions",
    "mapping_sources",
];

/// Tables with a `portal_id` and no foreign key, deleted by portal id
/// (`audit_log`: all but the deletion's own row).
pub const BY_PORTAL_ID: &[&str] = &[
    "dead_letters",
    "conversions",
    "webhook_events",
    "privacy_erasures",
    "audit_log",
];

/// Tables whose rows cascade from a conversion (deleted with the portal's
/// `conversions`).
pub const CASCADING_FROM_CONVERSIONS: &[&str] = &["delivery_attempts"];

/// Tables keyed by something else of the portal, deleted here too.
pub const BY_OTHER_KEY: &[&str] = &["outcome_sweeps", "hubspot_rate_windows"];

/// Deletes portal `portal` and everything of it, as the module says.
/// False: no such portal.
pub async fn delete(
    pool: &PgPool,
    cipher: &SecretCipher,
    portal: PortalId,
    actor: &str,
) -> Result<bool, sqlx::Error> {
    let id = portal.db_key();
    let mut tx = pool.begin().await?;
    let Some(row) = sqlx::query(
        "DELETE FROM portals WHERE portal_id = $1
         RETURNING impact_account_sid, impact_program_id, hubspot_private_token, hubspot_access_token",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let mut counts = serde_json::Map::new();
    let letters: Vec<i64> =
        sqlx::query_scalar("DELETE FROM dead_letters WHERE portal_id = $1 RETURNING id")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    counts.insert("dead_letters".into(), json!(letters.len()));
    operator_replays(&mut tx, &letters).await?;
    for table in [
        "conversions",
        "webhook_events",
        "privacy_erasures",
        "audit_log",
    ] {
        let sql = format!("DELETE FROM {table} WHERE portal_id = $1");
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        counts.insert(table.into(), json!(n));
    }
    sqlx::query(
        "DELETE FROM outcome_sweeps s WHERE s.account_sid = $1 AND s.campaign_id = $2
           AND NOT EXISTS (SELECT 1 FROM portals p
                           WHERE p.impact_account_sid = $1 AND p.impact_program_id = $2)",
    )
    .bind(row.get::<Option<String>, _>("impact_account_sid"))
    .bind(row.get::<Option<String>, _>("impact_program_id"))
    .execute(&mut *tx)
    .await?;
    let windows = rate_window_keys(cipher, portal, &row);
    sqlx::query("DELETE FROM hubspot_rate_windows WHERE account = ANY($1)")
        .bind(&windows)
        .execute(&mut *tx)
        .await?;
    crate::db::audit::record(
        &mut *tx,
        Some(id),
        &without_email(actor),
        "portal.delete",
        &json!({ "deleted": counts }),
        "deleted",
    )
    .await?;
    super::portals::notify(&mut tx, portal).await?;
    tx.commit().await?;
    Ok(true)
}

/// The deletion's actor without an e-mail address: the row that outlives
/// the account names the HubSpot user by id only
/// (`website:portal:1001:user:77:jane@example.com` → `website:portal:1001:user:77`).
fn without_email(actor: &str) -> String {
    actor
        .split(':')
        .filter(|part| !part.contains('@'))
        .collect::<Vec<_>>()
        .join(":")
}

/// Operators' replay requests (no portal of their own) of the deleted dead
/// letters: those of nothing else go; the others lose those letters and
/// their results.
async fn operator_replays(
    tx: &mut Transaction<'_, Postgres>,
    letters: &[i64],
) -> Result<(), sqlx::Error> {
    if letters.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM replay_requests WHERE portal_id IS NULL AND dead_letter_ids <@ $1")
        .bind(letters)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE replay_requests SET
             dead_letter_ids = ARRAY(SELECT d FROM unnest(dead_letter_ids) d WHERE d <> ALL($1)),
             results = COALESCE((SELECT jsonb_agg(r) FROM jsonb_array_elements(results) r
                                 WHERE NOT ((r->>'id')::bigint = ANY($1))), '[]'::jsonb)
         WHERE portal_id IS NULL AND dead_letter_ids && $1",
    )
    .bind(letters)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The `hubspot_rate_windows` keys of the portal's stored tokens.
fn rate_window_keys(
    cipher: &SecretCipher,
    portal: PortalId,
    row: &sqlx::postgres::PgRow,
) -> Vec<Vec<u8>> {
    ["hubspot_private_token", "hubspot_access_token"]
        .iter()
        .filter_map(|column| {
            let sealed: Option<Vec<u8>> = row.get(column);
            let token = cipher
                .decrypt(&sealed?, &secret_context(portal, column))
                .ok()?;
            Some(account_key(token.expose_secret()).to_vec())
        })
        .collect()
}

/// Deletes the rows a worker wrote for deleted portals after (or while)
/// they were deleted: every [`BY_PORTAL_ID`] table's rows of a portal whose
/// deletion is audited and that does not exist now. Rows deleted.
pub async fn prune_deleted(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    for table in BY_PORTAL_ID {
        let keep = if *table == "audit_log" {
            "AND t.action <> 'portal.delete'"
        } else {
            ""
        };
        let sql = format!(
            "WITH deleted AS (
                 SELECT DISTINCT a.portal_id FROM audit_log a
                 WHERE a.action = 'portal.delete' AND a.portal_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM portals p WHERE p.portal_id = a.portal_id)
             )
             DELETE FROM {table} t WHERE t.portal_id IN (SELECT portal_id FROM deleted) {keep}"
        );
        total += sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_deletions_actor_keeps_no_email() {
        assert_eq!(
            super::without_email("website:portal:1001:user:77:jane@example.com"),
            "website:portal:1001:user:77"
        );
        assert_eq!(super::without_email("admin:alice"), "admin:alice");
    }
}
