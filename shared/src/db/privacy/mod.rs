//! Privacy: erasing what we hold about a contact. The worker runs it on
//! HubSpot's events, the console on an operator's request.
//!
//! Triggered by `contact.privacyDeletion` (always), `contact.deletion` (when
//! `CONNECTOR_PRIVACY_ERASE_ON_DELETION` is on), or an operator
//! (`worker privacy erase`, `POST /admin/api/privacy/erase`). One
//! transaction scrubs, for the portal:
//!
//! - the contact's conversions: every payload field but those that identify
//!   no one (`domain::privacy::is_kept`), the last error; an OrderId carrying one of
//!   the person's values becomes a keyed hash (`erased-…`), so it still
//!   deduplicates without identifying anyone;
//! - conversions of other objects attributed to the contact (`CustomerId`
//!   or `CustomProfileId` = the contact id, as `associated_contact_id` maps
//!   it: the only value the mapping engine takes from a deal's contact):
//!   the customer fields (`CustomerEmail`, `ClickId`, location, IP, user agent);
//! - the contact's webhook events (the changed value) and dead letters
//!   (the fetched object, payload, error, the contact's events in multi-event
//!   letters);
//! - any of the person's values (collected from the above, with the
//!   e-mail's SHA-1/SHA-256) left in free text: errors, resolutions, the
//!   audit log.
//!
//! Ids, event types, dates and statuses stay (deduplication, audit). The
//! erasure is recorded in `privacy_erasures` and `audit_log` (ids and counts
//! only); later events of the contact are skipped (`contact_erased`).

use domain::privacy as scrub;
mod tables;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Row, Transaction, postgres::PgRow};

use crate::crypto::SecretCipher;

pub use scrub::ERASED;
use scrub::PersonalValues;
use tables::{
    contact_events, conversions, is_contact_letter, params_of, scrub_audit, scrub_free_texts,
    scrub_letter,
};

/// What started an erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `contact.privacyDeletion`.
    PrivacyDeletion,
    /// `contact.deletion` with erasure on deletion configured.
    Deletion,
    /// An operator's request.
    Request,
}

impl Trigger {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrivacyDeletion => "privacy_deletion",
            Self::Deletion => "deletion",
            Self::Request => "request",
        }
    }
}

/// Rows scrubbed by one erasure pass, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// The contact's own conversions.
    pub conversions: u64,
    /// Other objects' conversions attributed to the contact.
    pub attributed_conversions: u64,
    /// `webhook_events` rows.
    pub webhook_events: u64,
    /// `dead_letters` rows.
    pub dead_letters: u64,
    /// `audit_log` rows.
    pub audit_log: u64,
    /// Other rows where one of the person's values was found in free text.
    pub other_texts: u64,
}

/// Erases what is held about `contact` in `portal` (idempotent: a second
/// pass finds nothing left and reports zeros). A contact merged in HubSpot
/// is one person under several ids: the record it is part of now and
/// every id merged into that record are erased with it (`object_merges`).
pub async fn erase(
    pool: &PgPool,
    cipher: &SecretCipher,
    portal: i64,
    contact: i64,
    trigger: Trigger,
    actor: &str,
) -> Result<Erased, sqlx::Error> {
    use crate::db::merges;
    let ty = domain::object_type::ObjectType::Contacts;
    let survivor = merges::resolve(pool, portal, ty, contact).await?;
    let mut ids = vec![contact];
    for id in
        std::iter::once(survivor).chain(merges::merged_into(pool, portal, ty, survivor).await?)
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut out = Erased::default();
    for id in ids {
        let one = erase_one(pool, cipher, portal, id, trigger, actor).await?;
        out.conversions += one.conversions;
        out.attributed_conversions += one.attributed_conversions;
        out.webhook_events += one.webhook_events;
        out.dead_letters += one.dead_letters;
        out.audit_log += one.audit_log;
        out.other_texts += one.other_texts;
    }
    Ok(out)
}

/// [`erase`] of one contact id.
async fn erase_one(
    pool: &PgPool,
    cipher: &SecretCipher,
    portal: i64,
    contact: i64,
    trigger: Trigger,
    actor: &str,
) -> Result<Erased, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Serialises erasures of one contact; marks it erased for the pipeline.
    sqlx::query(
        "INSERT INTO privacy_erasures (portal_id, contact_id, trigger, actor) VALUES ($1, $2, $3, $4)
         ON CONFLICT (portal_id, contact_id) DO UPDATE SET erased_at = now(),
             passes = privacy_erasures.passes + 1, trigger = EXCLUDED.trigger, actor = EXCLUDED.actor",
    )
    .bind(portal)
    .bind(contact)
    .bind(trigger.as_str())
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    let held = Held::load(&mut tx, portal, contact).await?;
    let pv = held.personal_values(contact);
    let mut out = Erased::default();
    scrub_conversions(&mut tx, cipher, &held.convs, &pv, &mut out).await?;
    out.webhook_events = scrub_events(&mut tx, &held.events, &pv).await?;
    for l in &held.letters {
        if scrub_letter(&mut tx, l, contact, &pv).await? {
            out.dead_letters += 1;
        }
    }
    out.audit_log = scrub_audit(&mut tx, portal, &pv).await?;
    out.other_texts = scrub_free_texts(&mut tx, portal, &pv).await?;

    let counts = json!(out);
    sqlx::query("UPDATE privacy_erasures SET counts = $3 WHERE portal_id = $1 AND contact_id = $2")
        .bind(portal)
        .bind(contact)
        .bind(&counts)
        .execute(&mut *tx)
        .await?;
    crate::db::audit::record(
        &mut *tx,
        Some(portal),
        actor,
        "privacy.erase",
        &json!({ "contact_id": contact, "trigger": trigger.as_str(), "erased": counts }),
        "erased",
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("worker_privacy_erasures_total", "trigger" => trigger.as_str()).increment(1);
    tracing::info!(portal, contact, trigger = trigger.as_str(), erased = ?out, "contact's personal data erased");
    Ok(out)
}

/// What is held about the contact, locked for the erasure.
struct Held {
    convs: Vec<tables::Conv>,
    events: Vec<PgRow>,
    letters: Vec<PgRow>,
}

impl Held {
    async fn load(
        tx: &mut Transaction<'_, Postgres>,
        portal: i64,
        contact: i64,
    ) -> Result<Self, sqlx::Error> {
        let convs = conversions(tx, portal, contact).await?;
        let events = sqlx::query(
            "SELECT id, coalesce(event::jsonb, 'null'::jsonb) AS event, error FROM webhook_events
             WHERE portal_id = $1 AND object_id = $2 AND subscription_type LIKE 'contact.%' FOR UPDATE",
        )
        .bind(portal)
        .bind(contact)
        .fetch_all(&mut **tx)
        .await?;
        let conv_ids: Vec<i64> = convs.iter().map(|c| c.id).collect();
        let letters = sqlx::query(
            "SELECT id, object_type, object_id, events, fetched_object, payload, last_error, resolution
             FROM dead_letters
             WHERE portal_id = $1 AND ((object_type = 'contacts' AND object_id = $2)
                OR conversion_id = ANY($3)
                OR EXISTS (SELECT 1 FROM jsonb_array_elements(
                       CASE WHEN jsonb_typeof(events) = 'array' THEN events ELSE '[]'::jsonb END) e
                     WHERE e->>'objectId' = $2::text AND e->>'subscriptionType' LIKE 'contact.%'))
             FOR UPDATE",
        )
        .bind(portal)
        .bind(contact)
        .bind(&conv_ids)
        .fetch_all(&mut **tx)
        .await?;
        Ok(Self {
            convs,
            events,
            letters,
        })
    }

    /// The person's values: from their own conversions' personal fields,
    /// the changed values of their events, their fetched objects.
    fn personal_values(&self, contact: i64) -> PersonalValues {
        let mut pv = PersonalValues::default();
        for c in self.convs.iter().filter(|c| c.own) {
            pv.add_payload(&c.params);
        }
        let add_changed_value = |ev: &Value, pv: &mut PersonalValues| {
            let prop = ev.get("propertyName").and_then(Value::as_str).unwrap_or("");
            if let Some(v) = ev.get("propertyValue").and_then(Value::as_str)
                && scrub::is_personal_property(prop)
            {
                pv.add(v);
            }
        };
        for e in &self.events {
            add_changed_value(&e.get::<Value, _>("event"), &mut pv);
        }
        for l in &self.letters {
            if is_contact_letter(l, contact) {
                if let Some(Value::Object(props)) = l
                    .get::<Option<Value>, _>("fetched_object")
                    .as_ref()
                    .and_then(|f| f.get("properties"))
                {
                    for (k, v) in props {
                        if scrub::is_personal_property(k) {
                            pv.add_json(v);
                        }
                    }
                }
                if let Some(p) = l.get::<Option<Value>, _>("payload") {
                    pv.add_payload(&params_of(&p));
                }
            }
            for ev in contact_events(&l.get::<Value, _>("events"), contact) {
                add_changed_value(ev, &mut pv);
            }
        }
        pv
    }
}

async fn scrub_conversions(
    tx: &mut Transaction<'_, Postgres>,
    cipher: &SecretCipher,
    convs: &[tables::Conv],
    pv: &PersonalValues,
    out: &mut Erased,
) -> Result<(), sqlx::Error> {
    for c in convs {
        let params = scrub::scrub_payload(&c.params, c.own, pv);
        let order_id = if pv.found_in(&c.order_id) && !c.order_id.starts_with("erased-") {
            let h = cipher.keyed_hash("order_id", &c.order_id);
            format!("erased-{}", &h[..40])
        } else {
            c.order_id.clone()
        };
        let last_error = c.last_error.as_ref().map(|e| {
            if c.own {
                ERASED.to_owned()
            } else {
                pv.scrub(e).unwrap_or_else(|| e.clone())
            }
        });
        let changed = params != c.params || order_id != c.order_id || last_error != c.last_error;
        if !changed {
            continue;
        }
        sqlx::query(
            "UPDATE conversions SET payload = $2, order_id = $3, last_error = $4, updated_at = now(),
                 -- Never sent now: its payload no longer says anything.
                 status = CASE WHEN $5 AND status = 'pending' THEN 'failed' ELSE status END,
                 failure_reason = CASE WHEN $5 AND status = 'pending' THEN 'contact_erased' ELSE failure_reason END
             WHERE id = $1",
        )
        .bind(c.id)
        .bind(json!(params))
        .bind(&order_id)
        .bind(&last_error)
        .bind(c.own)
        .execute(&mut **tx)
        .await?;
        if c.own {
            out.conversions += 1;
        } else {
            out.attributed_conversions += 1;
        }
    }
    // The conversion page's story: the object as fetched and impact.com's
    // error texts may hold the person's values; they go entirely.
    let ids: Vec<i64> = convs.iter().map(|c| c.id).collect();
    sqlx::query(
        "WITH a AS (UPDATE delivery_attempts SET error = NULL
                    WHERE conversion_id = ANY($1) AND error IS NOT NULL)
         UPDATE conversions SET fetched = NULL WHERE id = ANY($1) AND fetched IS NOT NULL",
    )
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn scrub_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[PgRow],
    pv: &PersonalValues,
) -> Result<u64, sqlx::Error> {
    let mut n = 0;
    for e in events {
        let ev: Value = e.get("event");
        let scrubbed = scrub::scrub_event(&ev);
        let scrubbed = pv.scrub_json(&scrubbed).unwrap_or(scrubbed);
        let error: Option<String> = e.get("error");
        let new_error = error.as_ref().map(|_| ERASED.to_owned());
        if scrubbed != ev || new_error != error {
            sqlx::query("UPDATE webhook_events SET event = $2, error = $3 WHERE id = $1")
                .bind(e.get::<i64, _>("id"))
                .bind(&scrubbed)
                .bind(&new_error)
                .execute(&mut **tx)
                .await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Whether `contact` of `portal` was erased (its later events are skipped).
pub async fn is_erased(pool: &PgPool, portal: i64, contact: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM privacy_erasures WHERE portal_id = $1 AND contact_id = $2)",
    )
    .bind(portal)
    .bind(contact)
    .fetch_one(pool)
    .await
}
