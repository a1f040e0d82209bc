//! `object_merges`: the ids HubSpot merged into another record, and the
//! record each is part of now (migration `20261204000005_object_merges.sql`).
//! Chains stay flat: recording a merge points the ids merged into any
//! record of the merge at the new survivor, and a survivor already merged
//! away itself is followed first, so one look-up resolves any id.

use domain::{merges::Merge, object_type::ObjectType};
use sqlx::{PgExecutor, PgPool, Row};

/// A conversion recorded before, under another id of a merged record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierConversion {
    /// Row id.
    pub id: i64,
    /// The id it was recorded under.
    pub object_id: i64,
    /// Its event type.
    pub event_type: String,
    /// Its OrderId.
    pub order_id: String,
    /// Its parameters, as recorded.
    pub params: Vec<(String, String)>,
}

fn db_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(-1)
}

/// Records `merge` (idempotent; a merge recorded later keeps its survivor).
pub async fn record(
    pool: &PgPool,
    portal: i64,
    ty: ObjectType,
    merge: &Merge,
    occurred_at: u64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Serialises merges of one portal and type: chains are flattened
    // against a settled table.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('object_merges'), hashtext($1 || ':' || $2))",
    )
    .bind(portal.to_string())
    .bind(ty.as_str())
    .execute(&mut *tx)
    .await?;
    let survivor = resolve(&mut *tx, portal, ty, db_id(merge.survivor)).await?;
    let merged: Vec<i64> = merge
        .merged
        .iter()
        .map(|id| db_id(*id))
        .filter(|id| *id != survivor)
        .collect();
    let at = i64::try_from(occurred_at).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO object_merges (portal_id, object_type, merged_id, survivor_id, occurred_at)
         SELECT $1, $2, m, $4, $5 FROM unnest($3::bigint[]) AS m
         ON CONFLICT (portal_id, object_type, merged_id) DO UPDATE
             SET survivor_id = EXCLUDED.survivor_id, occurred_at = EXCLUDED.occurred_at
             WHERE object_merges.occurred_at <= EXCLUDED.occurred_at",
    )
    .bind(portal)
    .bind(ty.as_str())
    .bind(&merged)
    .bind(survivor)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    // Ids merged into one of these before now belong to the survivor.
    sqlx::query(
        "UPDATE object_merges SET survivor_id = $4
         WHERE portal_id = $1 AND object_type = $2 AND survivor_id = ANY($3) AND merged_id <> $4",
    )
    .bind(portal)
    .bind(ty.as_str())
    .bind(&merged)
    .bind(survivor)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The record `id` is part of now (`id` itself when it was not merged away).
pub async fn resolve<'e>(
    db: impl PgExecutor<'e>,
    portal: i64,
    ty: ObjectType,
    id: i64,
) -> Result<i64, sqlx::Error> {
    let survivor: Option<i64> = sqlx::query_scalar(
        "SELECT survivor_id FROM object_merges
         WHERE portal_id = $1 AND object_type = $2 AND merged_id = $3",
    )
    .bind(portal)
    .bind(ty.as_str())
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(survivor.unwrap_or(id))
}

/// The ids merged into `survivor`, ascending.
pub async fn merged_into<'e>(
    db: impl PgExecutor<'e>,
    portal: i64,
    ty: ObjectType,
    survivor: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT merged_id FROM object_merges
         WHERE portal_id = $1 AND object_type = $2 AND survivor_id = $3 ORDER BY merged_id",
    )
    .bind(portal)
    .bind(ty.as_str())
    .bind(survivor)
    .fetch_all(db)
    .await
}

/// What a merged record's new conversion is compared with.
#[derive(Debug, Clone, Copy)]
pub struct SameConversion<'a> {
    /// The ids merged into the record.
    pub ids: &'a [i64],
    /// The new conversion's event type.
    pub event_type: &'a str,
    /// What fired it (`creation`, `<property>=<value>`).
    pub fired_by: &'a str,
    /// The keys (event type, OrderId) the conversion has when built for
    /// each merged id instead of the record's own.
    pub keys: &'a [(String, String)],
}

/// The earliest conversion the merged ids already have that is the same as
/// the new one: one of theirs with the same event type that the same
/// firing made, or that has the key the new one has when built for that
/// id (the same stage, converted under the old id).
pub async fn converted_before<'e>(
    db: impl PgExecutor<'e>,
    portal: i64,
    ty: ObjectType,
    same: &SameConversion<'_>,
) -> Result<Option<EarlierConversion>, sqlx::Error> {
    let (types, orders): (Vec<&str>, Vec<&str>) = same
        .keys
        .iter()
        .map(|(t, o)| (t.as_str(), o.as_str()))
        .unzip();
    let row = sqlx::query(
        "SELECT id, object_id, event_type, order_id, payload FROM conversions
         WHERE portal_id = $1 AND object_type = $2
           AND ((object_id = ANY($3) AND event_type = $4 AND fired_by = $5)
             OR (event_type, order_id) IN (SELECT * FROM unnest($6::text[], $7::text[])))
         ORDER BY id LIMIT 1",
    )
    .bind(portal)
    .bind(ty.as_str())
    .bind(same.ids)
    .bind(same.event_type)
    .bind(same.fired_by)
    .bind(&types)
    .bind(&orders)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| EarlierConversion {
        id: r.get("id"),
        object_id: r.get("object_id"),
        event_type: r.get("event_type"),
        order_id: r.get("order_id"),
        params: serde_json::from_value(r.get("payload")).unwrap_or_default(),
    }))
}
