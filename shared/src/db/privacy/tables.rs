//! The erasure's reads and writes, table by table.

use serde_json::{Value, json};
use sqlx::{Postgres, Row, Transaction};

use domain::privacy::{self as scrub, ERASED, PersonalValues};

pub(super) struct Conv {
    pub(super) id: i64,
    pub(super) own: bool,
    pub(super) order_id: String,
    pub(super) params: Vec<(String, String)>,
    pub(super) last_error: Option<String>,
}

pub(super) fn params_of(v: &Value) -> Vec<(String, String)> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// The contact's conversions, and other objects' attributed to it.
pub(super) async fn conversions(
    tx: &mut Transaction<'_, Postgres>,
    portal: i64,
    contact: i64,
) -> Result<Vec<Conv>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, object_type = 'contacts' AND object_id = $2 AS own, order_id, payload, last_error
         FROM conversions
         WHERE portal_id = $1 AND ((object_type = 'contacts' AND object_id = $2)
            OR (object_type <> 'contacts' AND EXISTS (
                SELECT 1 FROM json_array_elements(payload) p
                WHERE p->>0 IN ('CustomerId', 'CustomProfileId') AND p->>1 = $2::text)))
         ORDER BY id FOR UPDATE",
    )
    .bind(portal)
    .bind(contact)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Conv {
            id: r.get("id"),
            own: r.get("own"),
            order_id: r.get("order_id"),
            params: params_of(&r.get::<Value, _>("payload")),
            last_error: r.get("last_error"),
        })
        .collect())
}

pub(super) fn is_contact_letter(l: &sqlx::postgres::PgRow, contact: i64) -> bool {
    l.get::<Option<String>, _>("object_type").as_deref() == Some("contacts")
        && l.get::<Option<i64>, _>("object_id") == Some(contact)
}

pub(super) fn is_contact_event(e: &Value, contact: i64) -> bool {
    e.get("objectId").and_then(Value::as_i64) == Some(contact)
        && e.get("subscriptionType")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("contact."))
}

pub(super) fn contact_events(events: &Value, contact: i64) -> Vec<&Value> {
    events
        .as_array()
        .map(|a| a.iter().filter(|e| is_contact_event(e, contact)).collect())
        .unwrap_or_default()
}

pub(super) async fn scrub_letter(
    tx: &mut Transaction<'_, Postgres>,
    l: &sqlx::postgres::PgRow,
    contact: i64,
    pv: &PersonalValues,
) -> Result<bool, sqlx::Error> {
    let own = is_contact_letter(l, contact);
    let events: Value = l.get("events");
    let mut new_events = match &events {
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|e| {
                    if is_contact_event(e, contact) {
                        scrub::scrub_event(e)
                    } else {
                        e.clone()
                    }
                })
                .collect(),
        ),
        other => other.clone(),
    };
    if let Some(s) = pv.scrub_json(&new_events) {
        new_events = s;
    }
    let fetched: Option<Value> = l.get("fetched_object");
    let new_fetched = if own {
        fetched.as_ref().map(|_| json!({ "erased": true }))
    } else {
        fetched
            .as_ref()
            .map(|f| pv.scrub_json(f).unwrap_or_else(|| f.clone()))
    };
    let payload: Option<Value> = l.get("payload");
    let new_payload = payload
        .as_ref()
        .map(|p| json!(scrub::scrub_payload(&params_of(p), own, pv)));
    let text = |col: &str, all: bool| {
        let v: Option<String> = l.get(col);
        let new = v.as_ref().map(|t| {
            if all {
                ERASED.to_owned()
            } else {
                pv.scrub(t).unwrap_or_else(|| t.clone())
            }
        });
        (v, new)
    };
    let (err, new_err) = text("last_error", own);
    let (res, new_res) = text("resolution", false);
    let changed = new_events != events
        || new_fetched != fetched
        || new_payload != payload
        || new_err != err
        || new_res != res;
    if changed {
        sqlx::query(
            "UPDATE dead_letters SET events = $2, fetched_object = $3, payload = $4, last_error = $5,
                 resolution = CASE WHEN $7 AND state = 'open' THEN 'contact erased (privacy)' ELSE $6 END,
                 resolved_by = CASE WHEN $7 AND state = 'open' THEN 'privacy' ELSE resolved_by END,
                 resolved_at = CASE WHEN $7 AND state = 'open' THEN now() ELSE resolved_at END,
                 -- Nothing left to replay: the contact's open letters are closed.
                 state = CASE WHEN $7 AND state = 'open' THEN 'discarded' ELSE state END,
                 updated_at = now() WHERE id = $1",
        )
        .bind(l.get::<i64, _>("id"))
        .bind(&new_events)
        .bind(&new_fetched)
        .bind(&new_payload)
        .bind(&new_err)
        .bind(&new_res)
        .bind(own)
        .execute(&mut **tx)
        .await?;
    }
    Ok(changed)
}

/// `ILIKE` patterns of the person's values.
fn like_patterns(pv: &PersonalValues) -> Vec<String> {
    pv.iter()
        .map(|v| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
        .collect()
}

pub(super) async fn scrub_audit(
    tx: &mut Transaction<'_, Postgres>,
    portal: i64,
    pv: &PersonalValues,
) -> Result<u64, sqlx::Error> {
    if pv.is_empty() {
        return Ok(0);
    }
    let rows = sqlx::query(
        "SELECT id, detail FROM audit_log
         WHERE portal_id = $1 AND detail::text ILIKE ANY($2) FOR UPDATE",
    )
    .bind(portal)
    .bind(like_patterns(pv))
    .fetch_all(&mut **tx)
    .await?;
    let mut n = 0;
    for r in rows {
        let detail: Option<Value> = r.get("detail");
        if let Some(new) = detail.as_ref().and_then(|d| pv.scrub_json(d)) {
            sqlx::query("UPDATE audit_log SET detail = $2 WHERE id = $1")
                .bind(r.get::<i64, _>("id"))
                .bind(new)
                .execute(&mut **tx)
                .await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The portal's free-text columns (errors, resolutions) of other rows.
pub(super) async fn scrub_free_texts(
    tx: &mut Transaction<'_, Postgres>,
    portal: i64,
    pv: &PersonalValues,
) -> Result<u64, sqlx::Error> {
    if pv.is_empty() {
        return Ok(0);
    }
    let patterns = like_patterns(pv);
    let mut n = 0;
    for (table, col) in [
        ("conversions", "last_error"),
        ("webhook_events", "error"),
        ("dead_letters", "last_error"),
        ("dead_letters", "resolution"),
    ] {
        let sql = format!(
            "SELECT id, {col} AS text FROM {table} WHERE portal_id = $1 AND {col} ILIKE ANY($2) FOR UPDATE"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(portal)
            .bind(&patterns)
            .fetch_all(&mut **tx)
            .await?;
        for r in rows {
            let text: Option<String> = r.get("text");
            if let Some(new) = text.as_deref().and_then(|t| pv.scrub(t)) {
                let sql = format!("UPDATE {table} SET {col} = $2 WHERE id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(r.get::<i64, _>("id"))
                    .bind(new)
                    .execute(&mut **tx)
                    .await?;
                n += 1;
            }
        }
    }
    Ok(n)
}
