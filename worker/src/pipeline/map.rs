//! The map step: the portal's mappings turn the fetched object into the
//! conversion's parameters; a failure to fetch or map ends the event here.

use domain::{
    events::HubSpotEvent,
    failure::{Failure, FailureReason},
    mapping::{self, Context, Conversion, FieldMapping},
    object_type::ObjectType,
    portal::PortalConfig,
    status::EventStatus,
};

use crate::pipeline::{dead_letter, record::EventRecord, result::EventResult};

/// The mappings of `object_type` in `config`.
pub fn mappings(config: &PortalConfig, object_type: ObjectType) -> &[FieldMapping] {
    config
        .mappings
        .get(&object_type)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Maps the fetched object; the object as fetched comes back with the
/// result (the dead-letter store keeps it with a failure).
pub fn map(
    rows: &[FieldMapping],
    fetched: Result<Context, Failure>,
) -> (Result<Conversion, Failure>, Option<Context>) {
    match fetched {
        Ok(ctx) => {
            let built = mapping::build(rows, &ctx)
                .map_err(|e| Failure::permanent(e.reason(), e.to_string()));
            (built, Some(ctx))
        }
        Err(f) => (Err(f), None),
    }
}

/// The object as fetched (only the properties the mapping read: the fetch
/// asks for no others) and the source of each mapped impact.com field,
/// kept with the conversion for the website's conversion page. Compact:
/// `{"object": {..}, "sources": {..}}`, plus `line_items` and `trigger`
/// only when there are some.
pub fn story(
    rows: &[FieldMapping],
    ctx: Option<&Context>,
) -> Option<(serde_json::Value, serde_json::Value)> {
    use serde_json::{Map, Value};
    let ctx = ctx?;
    let mut sources = Map::new();
    for m in rows {
        let from = match (&m.source, m.source.display_from()) {
            (mapping::Source::Const(v), _) => format!("constant {v:?}"),
            (_, Some(from)) => from,
            (_, None) => continue,
        };
        let from = if m.value_map.is_some() {
            format!("{from} (value map)")
        } else {
            from
        };
        sources.insert(m.target.display(), Value::String(from));
    }
    let mut out = Map::new();
    out.insert("object".into(), serde_json::json!(ctx.properties));
    if !ctx.line_items.is_empty() {
        out.insert("line_items".into(), serde_json::json!(ctx.line_items));
    }
    if let Some(t) = &ctx.trigger {
        out.insert("trigger".into(), serde_json::json!(t));
    }
    Some((Value::Object(out), Value::Object(sources)))
}

/// Logs what the mapping noted (fallbacks, omitted fields).
pub fn log_notes(event: &HubSpotEvent, conversion: &Conversion) {
    for note in &conversion.notes {
        tracing::debug!(portal = %event.portal_id, order_id = %conversion.order_id, "{note}");
    }
}

/// How an event ends when fetching or mapping failed: a transient failure
/// is returned (the message is retried); the refresh finding the app
/// uninstalled skips the event (the portal is paused now); anything else
/// is dead-lettered with the object as fetched and recorded `failed`.
pub async fn give_up(
    rec: &EventRecord<'_>,
    object_type: ObjectType,
    f: Failure,
    fetched: Option<&Context>,
) -> Result<EventResult, Failure> {
    if f.is_transient() {
        return Err(f);
    }
    if f.reason == FailureReason::HubspotUninstalled {
        rec.outcome(EventStatus::Skipped, "portal_uninstalled", Some(f.detail))
            .await?;
        return Ok(EventResult::Skipped("portal_uninstalled"));
    }
    let fetched = fetched.map(dead_letter::context_json);
    dead_letter::permanent(rec.w, rec.event, Some(object_type), &f, fetched, None).await?;
    rec.outcome(
        EventStatus::Failed,
        f.reason.as_str(),
        Some(f.detail.clone()),
    )
    .await?;
    Ok(EventResult::Failed(f))
}
