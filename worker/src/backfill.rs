//! `worker backfill`: after an outage longer than HubSpot's 24-hour webhook
//! retry window, re-scan HubSpot (search by last-modified date) and turn
//! what the portal's triggers would have fired into conversions. Conversions
//! already delivered (same idempotency key) are skipped, never sent again.
//! HubSpot's search reaches 10,000 results per query: bigger windows are
//! split ([`scan`]), so nothing is skipped.

mod scan;

use anyhow::Context as _;
use clap::Args;
use domain::{
    events::{HubSpotEvent, PortalId},
    object_type::ObjectType,
    triggers::ObjectTriggers,
};
use shared::hubspot::{CrmObject, SEARCH_RESULT_CAP};

use crate::{
    Worker,
    dlq::ops::parse_time,
    pipeline::{
        Batching, EventResult,
        fetch::{prefetched::Prefetched, tokens::hubspot_token},
        process_event,
    },
};

/// `worker backfill` options.
#[derive(Debug, Clone, Args)]
pub struct BackfillArgs {
    /// HubSpot portal id.
    #[arg(long)]
    pub portal: u64,
    /// Records modified at or after (RFC 3339, YYYY-MM-DD, or an age like 3d).
    #[arg(long)]
    pub since: String,
    /// Records modified at or before (default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this object type (contacts, companies, deals).
    #[arg(long)]
    pub object_type: Option<String>,
    /// Most results one search query reaches: HubSpot's 10,000 (not an
    /// option; tests set it as they set the fake's).
    #[arg(skip = SEARCH_RESULT_CAP)]
    pub search_result_cap: u64,
}

/// Counts of a backfill.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackfillReport {
    /// Records found.
    pub objects: usize,
    /// Conversions delivered now.
    pub delivered: usize,
    /// Conversions delivered before: skipped.
    pub already_delivered: usize,
    /// Events no trigger fired for, duplicates, skipped portals.
    pub nothing: usize,
    /// Permanent failures (now in the dead-letter store).
    pub failed: usize,
}

/// Scans and converts; stops at the first transient failure (run it again:
/// what was done is recognised).
pub async fn backfill(w: &Worker, args: &BackfillArgs) -> anyhow::Result<BackfillReport> {
    let now = chrono::Utc::now();
    let since = parse_time(&args.since, now)?;
    let until = match &args.until {
        Some(u) => parse_time(u, now)?,
        None => now,
    };
    let portal_id = PortalId(args.portal);
    let portal = w
        .portals
        .get(&w.pool, &w.cipher, portal_id)
        .await?
        .with_context(|| format!("portal {portal_id} does not exist"))?;
    let config = portal
        .config
        .clone()
        .with_context(|| format!("portal {portal_id} is not configured"))?;
    let only = match &args.object_type {
        Some(t) => Some(ObjectType::parse(t).with_context(|| format!("unknown object type {t}"))?),
        None => None,
    };
    let token = hubspot_token(w, portal_id, &portal).await?;
    let mut report = BackfillReport::default();
    for (ty, triggers) in &config.triggers {
        if only.is_some_and(|o| o != *ty) {
            continue;
        }
        let properties = watched(*ty, triggers);
        let window = (since.timestamp_millis(), until.timestamp_millis());
        let mut scan = scan::Scan::new(
            &w.hubspot,
            &token,
            *ty,
            &properties,
            window,
            args.search_result_cap,
        );
        while let Some(page) = scan.next_page().await? {
            for object in &page {
                report.objects += 1;
                for event in events_for(portal_id, *ty, triggers, object) {
                    let result =
                        process_event(w, &event, None, &Prefetched::none(), Batching::Alone)
                            .await
                            .map_err(|f| anyhow::anyhow!("{f} (run the backfill again later)"))?;
                    match result {
                        EventResult::Delivered { .. } => report.delivered += 1,
                        EventResult::AlreadyDelivered { .. } => report.already_delivered += 1,
                        EventResult::Failed(_) => report.failed += 1,
                        _ => report.nothing += 1,
                    }
                }
            }
        }
    }
    Ok(report)
}

/// The properties a backfill reads: dates and the watched ones.
fn watched(ty: ObjectType, t: &ObjectTriggers) -> Vec<String> {
    let mut p = vec![
        "createdate".to_owned(),
        shared::hubspot::last_modified_property(ty).to_owned(),
    ];
    p.extend(t.on_change.iter().map(|c| c.property.clone()));
    p
}

fn epoch_ms(value: Option<&str>) -> Option<u64> {
    let v = value?.trim();
    v.parse::<u64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
    })
}

/// The events HubSpot would have sent for `object`: its creation (when the
/// creation trigger is on) and a change of each watched property to its
/// current value (the trigger's value conditions then decide).
pub fn events_for(
    portal: PortalId,
    ty: ObjectType,
    t: &ObjectTriggers,
    object: &CrmObject,
) -> Vec<HubSpotEvent> {
    let Ok(object_id) = object.id.parse::<u64>() else {
        return Vec::new();
    };
    let prop = |name: &str| object.properties.get(name).and_then(|v| v.as_deref());
    let kind = match ty {
        ObjectType::Contacts => "contact",
        ObjectType::Companies => "company",
        ObjectType::Deals => "deal",
    };
    let modified = epoch_ms(prop(shared::hubspot::last_modified_property(ty))).unwrap_or(0);
    let base = |subscription: &str, occurred_at: u64| HubSpotEvent {
        event_id: None,
        subscription_id: None,
        portal_id: portal,
        app_id: None,
        occurred_at,
        subscription_type: format!("{kind}.{subscription}"),
        attempt_number: None,
        object_id,
        property_name: None,
        property_value: None,
        change_source: Some("BACKFILL".into()),
        change_flag: None,
        source_id: None,
        extra: serde_json::Map::new(),
    };
    let mut events = Vec::new();
    if t.on_create {
        events.push(base(
            "creation",
            epoch_ms(prop("createdate")).unwrap_or(modified),
        ));
    }
    for c in &t.on_change {
        if let Some(value) = prop(&c.property).filter(|v| !v.is_empty()) {
            let mut e = base("propertyChange", modified);
            e.property_name = Some(c.property.clone());
            e.property_value = Some(value.to_owned());
            events.push(e);
        }
    }
    events
}
