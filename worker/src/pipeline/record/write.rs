//! The statements of a batch of outcomes, in one transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use domain::{
    events::HubSpotEvent, mapping::Conversion, object_type::ObjectType, status::EventStatus,
};
use shared::db::{
    self,
    conversions::{ConvertedItem, RecordedConversion},
    delivery_lease::NewLease,
    events::{EventKey, EventOutcome},
};
use sqlx::{PgConnection, PgPool};

/// What to record.
pub(super) enum Item {
    Converted {
        object_type: ObjectType,
        conversion: Conversion,
        key: EventKey,
        event: HubSpotEvent,
        received_at: Option<DateTime<Utc>>,
        fetched: Option<serde_json::Value>,
        sources_id: Option<i64>,
    },
    Outcome {
        key: EventKey,
        event: HubSpotEvent,
        received_at: Option<DateTime<Utc>>,
        status: EventStatus,
        reason: Option<&'static str>,
        error: Option<String>,
    },
}

impl Item {
    pub(super) fn key(&self) -> &EventKey {
        match self {
            Self::Converted { key, .. } | Self::Outcome { key, .. } => key,
        }
    }
}

/// What was recorded, in the item's kind.
pub(super) enum Recorded {
    /// The conversion row, and whether this event was recorded first.
    Converted((RecordedConversion, bool)),
    /// Whether this event was recorded first.
    Outcome(bool),
}

/// One transaction: `items`' outcomes, in their order. The first item of
/// each event (and of each conversion key) is written with one statement
/// per kind; a repeat (a duplicate event in the batch) one by one after
/// them, as it would have been alone.
/// The conversion rows created are leased with `lease` for their delivery.
pub(super) async fn write(
    pool: &PgPool,
    items: &[Item],
    lease: &NewLease,
) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (converted, outcomes, repeats) = classify(items);
    let mut out: Vec<Option<Recorded>> = items.iter().map(|_| None).collect();
    write_converted(&mut tx, items, &converted, &mut out, lease).await?;
    write_outcomes(&mut tx, items, &outcomes, &mut out).await?;
    for i in repeats {
        out[i] = Some(write_one(&mut tx, &items[i], lease).await?);
    }
    tx.commit().await?;
    out.into_iter()
        .map(|r| r.ok_or(sqlx::Error::RowNotFound))
        .collect()
}

/// Indexes of the conversions and outcomes written together, and of the
/// repeats written one by one.
fn classify(items: &[Item]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let mut identities = HashSet::new();
    let mut conversion_keys = HashSet::new();
    let (mut converted, mut outcomes, mut repeats) = (Vec::new(), Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        let new_event = identities.insert(item.key());
        match item {
            Item::Converted {
                key, conversion, ..
            } => {
                let new_key = conversion_keys.insert((
                    key.portal_id,
                    conversion.event_type.as_str(),
                    conversion.order_id.as_str(),
                ));
                if new_event && new_key {
                    converted.push(i);
                } else {
                    repeats.push(i);
                }
            }
            Item::Outcome { .. } if new_event => outcomes.push(i),
            Item::Outcome { .. } => repeats.push(i),
        }
    }
    (converted, outcomes, repeats)
}

async fn write_converted(
    tx: &mut PgConnection,
    items: &[Item],
    which: &[usize],
    out: &mut [Option<Recorded>],
    lease: &NewLease,
) -> Result<(), sqlx::Error> {
    let rows: Vec<ConvertedItem<'_>> = which
        .iter()
        .filter_map(|i| match &items[*i] {
            Item::Converted {
                object_type,
                conversion,
                key,
                event,
                received_at,
                fetched,
                sources_id,
            } => Some(ConvertedItem {
                object_type: *object_type,
                conversion,
                key,
                event,
                received_at: *received_at,
                fetched: fetched.as_ref(),
                sources_id: *sources_id,
            }),
            Item::Outcome { .. } => None,
        })
        .collect();
    let recorded = db::conversions::record_converted_many(&mut *tx, &rows, lease).await?;
    for (i, r) in which.iter().zip(recorded) {
        out[*i] = Some(Recorded::Converted(r));
    }
    Ok(())
}

async fn write_outcomes(
    tx: &mut PgConnection,
    items: &[Item],
    which: &[usize],
    out: &mut [Option<Recorded>],
) -> Result<(), sqlx::Error> {
    let rows: Vec<_> = which
        .iter()
        .filter_map(|i| match &items[*i] {
            Item::Outcome {
                key,
                event,
                received_at,
                status,
                reason,
                error,
            } => Some((
                key,
                event,
                *received_at,
                EventOutcome {
                    status: *status,
                    reason: *reason,
                    error: error.as_deref(),
                    conversion_id: None,
                },
            )),
            Item::Converted { .. } => None,
        })
        .collect();
    let recorded = db::events::record_many(&mut *tx, &rows).await?;
    for (i, first) in which.iter().zip(recorded) {
        out[*i] = Some(Recorded::Outcome(first));
    }
    Ok(())
}

async fn write_one(
    tx: &mut PgConnection,
    item: &Item,
    lease: &NewLease,
) -> Result<Recorded, sqlx::Error> {
    Ok(match item {
        Item::Converted {
            object_type,
            conversion,
            key,
            event,
            received_at,
            fetched,
            sources_id,
        } => Recorded::Converted(
            db::conversions::record_converted(
                &mut *tx,
                *object_type,
                conversion,
                key,
                event,
                *received_at,
                (fetched.as_ref(), *sources_id),
                lease,
            )
            .await?,
        ),
        Item::Outcome {
            key,
            event,
            received_at,
            status,
            reason,
            error,
        } => {
            let outcome = EventOutcome {
                status: *status,
                reason: *reason,
                error: error.as_deref(),
                conversion_id: None,
            };
            Recorded::Outcome(
                db::events::record(&mut *tx, key, event, *received_at, &outcome).await?,
            )
        }
    })
}
