//! Assembling the mapping context of one object from HubSpot: the object
//! (only the properties the mappings need), a deal's line items in a stable
//! order, its associated contact, its stage's label, and the portal's
//! company currency when amounts need a currency the object does not have.
//! The website's preview calls it as it is; the worker's fetch can pass what
//! its batch prefetch already read ([`Known`]), its cached stage labels and
//! its cached company currencies.

use std::collections::BTreeSet;

use domain::{
    mapping::{self, Context, FieldMapping},
    merges::MERGED_IDS_PROPERTY,
    object_type::ObjectType,
    triggers::Firing,
};
use secrecy::SecretString;

use super::{Association, CrmObject, HubSpotClient, HubSpotError, Pipeline};

/// Line-item property giving their order on the deal (then by id).
const POSITION: &str = "hs_position_on_quote";
/// A deal's currency.
const DEAL_CURRENCY: &str = "deal_currency_code";
/// A line item's currency (HubSpot's line items carry their deal's).
const ITEM_CURRENCY: &str = "hs_line_item_currency_code";

/// One object to assemble.
pub struct ObjectRequest<'a> {
    /// The portal's HubSpot token.
    pub token: &'a SecretString,
    /// Object type.
    pub object_type: ObjectType,
    /// Object id.
    pub object_id: u64,
    /// The mappings of the object type.
    pub mappings: &'a [FieldMapping],
    /// What the mappings read (`mapping::needs(mappings)`, computed once
    /// per request: the assembly asks several times).
    pub needs: mapping::Needs,
    /// The triggering property and its value, when a property change fired.
    pub trigger: Option<(String, Option<String>)>,
    /// The portal's Program ID.
    pub program_id: &'a str,
    /// The event's moment (epoch milliseconds).
    pub occurred_at_ms: u64,
}

/// The triggering property and its value (from the event, as of its
/// moment) of what fired; `None`: a creation.
pub fn trigger_of(firing: &Firing) -> Option<(String, Option<String>)> {
    match firing {
        Firing::PropertyChange { property, value } => Some((property.clone(), value.clone())),
        Firing::Creation => None,
    }
}

/// The property whose change fired; `None`: a creation.
pub fn firing_property(firing: &Firing) -> Option<&str> {
    match firing {
        Firing::PropertyChange { property, .. } => Some(property),
        Firing::Creation => None,
    }
}

impl ObjectRequest<'_> {
    /// The object properties this request reads: the mapped ones, the
    /// triggering property, a deal's currency and the ids merged into it.
    pub fn properties(&self) -> Vec<String> {
        let trigger = self.trigger.as_ref().map(|(p, _)| p.as_str());
        properties_of(self.object_type, &self.needs, trigger)
    }
}

/// What the caller has read already (e.g. a batch prefetch); `None`: fetch it.
#[derive(Debug, Default)]
pub struct Known {
    /// The object's properties (read with at least
    /// [`ObjectRequest::properties`]).
    pub object: Option<mapping::Properties>,
    /// A deal's line items, ordered ([`order_line_items`]), read with at
    /// least the line-item properties the mappings need.
    pub line_items: Option<Vec<mapping::Properties>>,
    /// A deal's associated contact ([`primary_contact`]).
    pub contact: Option<Option<u64>>,
}

/// Where deal stage labels come from (a cache, or HubSpot every time).
pub trait StageLabels {
    /// The label of `stage` (in `pipeline` when known); `None`: unknown stage.
    fn label(
        &self,
        client: &HubSpotClient,
        token: &SecretString,
        pipeline: Option<&str>,
        stage: &str,
    ) -> impl Future<Output = Result<Option<String>, HubSpotError>> + Send;
}

/// Where a portal's company currency comes from (a cache, or HubSpot every
/// time); `None`: HubSpot reports none.
pub trait CompanyCurrency {
    /// The company currency of the portal `token` belongs to.
    fn company_currency(
        &self,
        client: &HubSpotClient,
        token: &SecretString,
    ) -> impl Future<Output = Result<Option<String>, HubSpotError>> + Send;
}

/// The company currency read from HubSpot's account information on every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct UncachedCurrency;

impl CompanyCurrency for UncachedCurrency {
    async fn company_currency(
        &self,
        client: &HubSpotClient,
        token: &SecretString,
    ) -> Result<Option<String>, HubSpotError> {
        client.company_currency(token).await
    }
}

/// Stage labels read from HubSpot's pipelines API on every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct UncachedStages;

impl StageLabels for UncachedStages {
    async fn label(
        &self,
        client: &HubSpotClient,
        token: &SecretString,
        pipeline: Option<&str>,
        stage: &str,
    ) -> Result<Option<String>, HubSpotError> {
        Ok(find_stage_label(
            &client.deal_pipelines(token).await?,
            pipeline,
            stage,
        ))
    }
}

/// The label of `stage`, looked for in `pipeline` first, then in any.
pub fn find_stage_label(
    pipelines: &[Pipeline],
    pipeline: Option<&str>,
    stage: &str,
) -> Option<String> {
    let in_pipeline = pipelines
        .iter()
        .filter(|p| pipeline.is_none_or(|id| p.id == id))
        .flat_map(|p| &p.stages)
        .find(|s| s.id == stage);
    in_pipeline
        .or_else(|| {
            pipelines
                .iter()
                .flat_map(|p| &p.stages)
                .find(|s| s.id == stage)
        })
        .map(|s| s.label.clone())
        .filter(|l| !l.is_empty())
}

/// The object properties to read for `mappings` and the triggering property.
pub fn object_properties(
    object_type: ObjectType,
    mappings: &[FieldMapping],
    trigger_property: Option<&str>,
) -> Vec<String> {
    properties_of(object_type, &mapping::needs(mappings), trigger_property)
}

/// [`object_properties`] of what the mappings read (`needs`).
pub fn properties_of(
    object_type: ObjectType,
    needs: &mapping::Needs,
    trigger_property: Option<&str>,
) -> Vec<String> {
    let mut properties: Vec<String> = needs.properties.iter().cloned().collect();
    if let Some(property) = trigger_property
        && !properties.iter().any(|p| p == property)
    {
        properties.push(property.to_owned());
    }
    if object_type == ObjectType::Deals && !properties.iter().any(|p| p == DEAL_CURRENCY) {
        properties.push(DEAL_CURRENCY.into());
    }
    // What was merged into the record: its conversions may be this one's.
    if !properties.iter().any(|p| p == MERGED_IDS_PROPERTY) {
        properties.push(MERGED_IDS_PROPERTY.into());
    }
    properties
}

/// The line-item properties to read for `wanted` (plus position and currency).
pub fn line_item_properties(wanted: &BTreeSet<String>) -> Vec<String> {
    let mut props: Vec<String> = wanted.iter().cloned().collect();
    props.push(POSITION.into());
    props.push(ITEM_CURRENCY.into());
    props
}

/// Line items in a stable order: their position on the deal, then id.
pub fn order_line_items(mut items: Vec<CrmObject>) -> Vec<mapping::Properties> {
    let key = |o: &CrmObject| {
        let pos = o
            .properties
            .get(POSITION)
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(i64::MAX);
        (pos, o.id.parse::<u64>().unwrap_or(u64::MAX))
    };
    items.sort_by_key(key);
    items.into_iter().map(|o| o.properties).collect()
}

/// The primary contact among a deal's contacts, else the lowest id.
pub fn primary_contact(assoc: &[Association]) -> Option<u64> {
    let primary = assoc
        .iter()
        .filter(|a| a.labels.iter().any(|l| l.eq_ignore_ascii_case("primary")))
        .map(|a| a.to_object_id)
        .min();
    primary.or_else(|| assoc.iter().map(|a| a.to_object_id).min())
}

/// Builds the mapping context of one object, reading from HubSpot what
/// `known` does not hold.
pub async fn assemble(
    client: &HubSpotClient,
    r: &ObjectRequest<'_>,
    known: Known,
    stages: &impl StageLabels,
    currency: &impl CompanyCurrency,
) -> Result<Context, HubSpotError> {
    let id = r.object_id;
    let props = match known.object {
        Some(props) => props,
        None => {
            client
                .get_object(r.token, r.object_type, id, &r.properties())
                .await?
                .properties
        }
    };
    let mut ctx = object_context(props, id, r.trigger.clone(), r.program_id, r.occurred_at_ms);
    if r.object_type == ObjectType::Deals {
        deal_parts(client, r, known.line_items, known.contact, stages, &mut ctx).await?;
    }
    // One account-information read per portal and cache period (worker).
    if r.needs.currency && ctx.currency.is_none() {
        ctx.company_currency = currency.company_currency(client, r.token).await?;
    }
    Ok(ctx)
}

/// The mapping context of object `id` from its properties, with the
/// triggering property and value, the portal's Program ID and the event's
/// moment: what a deal's parts or a company currency add comes after.
pub fn object_context(
    mut props: mapping::Properties,
    id: u64,
    trigger: Option<(String, Option<String>)>,
    program_id: &str,
    occurred_at_ms: u64,
) -> Context {
    // The object's id is known even when HubSpot omits the property.
    if props.get("hs_object_id").is_none_or(Option::is_none) {
        props.insert("hs_object_id".into(), Some(id.to_string()));
    }
    Context {
        properties: props,
        trigger,
        program_id: program_id.to_owned(),
        occurred_at_ms,
        ..Context::default()
    }
}

/// A deal's line items, currency, associated contact and stage label.
async fn deal_parts(
    client: &HubSpotClient,
    r: &ObjectRequest<'_>,
    line_items: Option<Vec<mapping::Properties>>,
    contact: Option<Option<u64>>,
    stages: &impl StageLabels,
    ctx: &mut Context,
) -> Result<(), HubSpotError> {
    let needs = &r.needs;
    let id = r.object_id;
    if !needs.line_item_properties.is_empty() {
        ctx.line_items = match line_items {
            Some(items) => items,
            None => line_items_of(client, r.token, id, &needs.line_item_properties).await?,
        };
    }
    let item_currency = ctx
        .line_items
        .iter()
        .find_map(|i| i.get(ITEM_CURRENCY).cloned().flatten())
        .filter(|c| !c.trim().is_empty());
    ctx.currency = ctx
        .property(DEAL_CURRENCY)
        .map(str::to_owned)
        .or(item_currency);
    if needs.associated_contact {
        ctx.associated_contact_id = match contact {
            Some(contact) => contact,
            None => primary_contact(
                &client
                    .associations(r.token, ObjectType::Deals, id, "contacts")
                    .await?,
            ),
        };
    }
    if needs.stage_label
        && let Some(stage) = ctx.property("dealstage")
    {
        ctx.stage_label = stages
            .label(client, r.token, ctx.property("pipeline"), stage)
            .await?;
    }
    Ok(())
}

/// The deal's line items, ordered by their position on the deal, then id.
async fn line_items_of(
    client: &HubSpotClient,
    token: &SecretString,
    deal: u64,
    wanted: &BTreeSet<String>,
) -> Result<Vec<mapping::Properties>, HubSpotError> {
    let assoc = client
        .associations(token, ObjectType::Deals, deal, "line_items")
        .await?;
    if assoc.is_empty() {
        return Ok(vec![]);
    }
    let mut ids: Vec<u64> = assoc.iter().map(|a| a.to_object_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let items = client
        .batch_read(token, "line_items", &ids, &line_item_properties(wanted))
        .await?;
    Ok(order_line_items(items))
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
