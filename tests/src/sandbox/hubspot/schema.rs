//! Property definitions and deal pipelines of the fake portals.

use serde_json::{Value, json};

use super::model::ObjectType;

/// One property definition, as the properties API lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDef {
    /// Internal name.
    pub name: String,
    /// Display label.
    pub label: String,
    /// `string`, `number`, `datetime`, `enumeration`, `bool`.
    pub kind: &'static str,
    /// `text`, `number`, `date`, `select`, `calculation_equation`...
    pub field_type: &'static str,
    /// The property group.
    pub group_name: &'static str,
    /// Options for enumerations: (value, label).
    pub options: Vec<(String, String)>,
    /// HubSpot's own properties; custom ones are `false`.
    pub hubspot_defined: bool,
    /// Computed by HubSpot (read-only).
    pub calculated: bool,
}

impl PropertyDef {
    fn std(
        name: &str,
        label: &str,
        kind: &'static str,
        field_type: &'static str,
        group: &'static str,
    ) -> Self {
        PropertyDef {
            name: name.into(),
            label: label.into(),
            kind,
            field_type,
            group_name: group,
            options: Vec::new(),
            hubspot_defined: true,
            calculated: false,
        }
    }

    fn with_options(mut self, options: &[(&str, &str)]) -> Self {
        self.options = options
            .iter()
            .map(|(v, l)| (v.to_string(), l.to_string()))
            .collect();
        self
    }

    fn custom(mut self) -> Self {
        self.hubspot_defined = false;
        self
    }

    /// A custom single-line text property (defined on the fly for unknown names).
    pub(crate) fn custom_text(object_type: ObjectType, name: &str) -> Self {
        PropertyDef::std(name, name, "string", "text", group(object_type)).custom()
    }

    /// The JSON shape of `GET /crm/v3/properties/{type}`.
    pub fn to_json(&self, display_order: usize) -> Value {
        let options: Vec<Value> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, (v, l))| json!({"label": l, "value": v, "displayOrder": i, "hidden": false}))
            .collect();
        let mut v = json!({
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "fieldType": self.field_type,
            "description": "",
            "groupName": self.group_name,
            "options": options,
            "displayOrder": display_order,
            "calculated": self.calculated,
            "externalOptions": false,
            "hasUniqueValue": self.name == "hs_object_id",
            "hidden": false,
            "formField": !self.calculated,
            "createdAt": "2020-01-01T00:00:00.000Z",
            "updatedAt": "2020-01-01T00:00:00.000Z",
            "archived": false,
        });
        // HubSpot only sends the flag on its own properties.
        if self.hubspot_defined {
            v["hubspotDefined"] = json!(true);
        }
        v
    }
}

fn group(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "contactinformation",
        ObjectType::Companies => "companyinformation",
        ObjectType::Deals => "dealinformation",
        ObjectType::LineItems => "lineiteminformation",
    }
}

/// The custom property each type carries besides HubSpot's.
pub const CUSTOM_CONTACT_CLICK_ID: &str = "custom_impact_click_id";
/// Custom deal property holding the associated contact's id (the seed's
/// "custom Deal ID property").
pub const CUSTOM_DEAL_CONTACT_ID: &str = "deal_contact_id";
/// Custom company property.
pub const CUSTOM_COMPANY_PARTNER_ID: &str = "impact_partner_id";

/// Lifecycle stages, internal values.
pub const LIFECYCLE_STAGES: [&str; 8] = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];

/// Lead statuses, internal values.
pub const LEAD_STATUSES: [&str; 8] = [
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
];

/// The standard and custom properties of a type.
pub fn properties(t: ObjectType) -> Vec<PropertyDef> {
    let g = group(t);
    let mut defs = vec![
        PropertyDef {
            calculated: true,
            ..PropertyDef::std("hs_object_id", "Record ID", "number", "number", g)
        },
        PropertyDef::std("createdate", "Create Date", "datetime", "date", g),
        PropertyDef::std(
            t.last_modified_property(),
            "Last Modified Date",
            "datetime",
            "date",
            g,
        ),
    ];
    let s = |n: &str, l: &str| PropertyDef::std(n, l, "string", "text", g);
    match t {
        ObjectType::Contacts => {
            let stages: Vec<(&str, &str)> = LIFECYCLE_STAGES.iter().map(|s| (*s, *s)).collect();
            let statuses: Vec<(&str, &str)> = LEAD_STATUSES.iter().map(|s| (*s, *s)).collect();
            defs.extend([
                s("email", "Email"),
                s("firstname", "First Name"),
                s("lastname", "Last Name"),
                s("company", "Company Name"),
                s("city", "City"),
                s("country", "Country/Region"),
                s("zip", "Postal Code"),
                PropertyDef::std(
                    "lifecyclestage",
                    "Lifecycle Stage",
                    "enumeration",
                    "radio",
                    g,
                )
                .with_options(&stages),
                PropertyDef::std("hs_lead_status", "Lead Status", "enumeration", "radio", g)
                    .with_options(&statuses),
                s(CUSTOM_CONTACT_CLICK_ID, "Impact Click ID").custom(),
            ]);
        }
        ObjectType::Companies => defs.extend([
            s("name", "Company name"),
            s("domain", "Company Domain Name"),
            s("city", "City"),
            s("country", "Country/Region"),
            s(CUSTOM_COMPANY_PARTNER_ID, "Impact Partner ID").custom(),
        ]),
        ObjectType::Deals => {
            let stages: Vec<(&str, &str)> = PIPELINES
                .iter()
                .flat_map(|p| p.stages.iter().map(|s| (s.id, s.label)))
                .collect();
            defs.extend([
                s("dealname", "Deal Name"),
                PropertyDef::std("dealstage", "Deal Stage", "enumeration", "radio", g)
                    .with_options(&stages),
                PropertyDef::std("pipeline", "Pipeline", "enumeration", "select", g).with_options(
                    &PIPELINES
                        .iter()
                        .map(|p| (p.id, p.label))
                        .collect::<Vec<_>>(),
                ),
                PropertyDef::std("amount", "Amount", "number", "number", g),
                PropertyDef::std("closedate", "Close Date", "datetime", "date", g),
                PropertyDef {
                    calculated: true,
                    ..PropertyDef::std(
                        "hs_deal_stage_probability",
                        "Deal Stage Probability",
                        "number",
                        "number",
                        g,
                    )
                },
                PropertyDef::std("dealtype", "Deal Type", "enumeration", "radio", g).with_options(
                    &[
                        ("newbusiness", "New Business"),
                        ("existingbusiness", "Existing Business"),
                    ],
                ),
                s(CUSTOM_DEAL_CONTACT_ID, "Deal Contact ID").custom(),
            ]);
        }
        ObjectType::LineItems => defs.extend([
            s("name", "Name"),
            s("hs_sku", "SKU"),
            PropertyDef::std("price", "Unit price", "number", "number", g),
            PropertyDef::std("quantity", "Quantity", "number", "number", g),
            PropertyDef {
                calculated: true,
                ..PropertyDef::std("amount", "Net price", "number", "number", g)
            },
            s("currency", "Currency"),
            s("description", "Description"),
        ]),
    }
    defs
}

/// A deal pipeline stage.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    /// Internal id (`closedwon`, or numeric in custom pipelines).
    pub id: &'static str,
    /// Display label.
    pub label: &'static str,
    /// Win probability.
    pub probability: f64,
    /// Whether the stage closes the deal.
    pub closed: bool,
}

/// A deal pipeline.
#[derive(Debug)]
pub struct Pipeline {
    /// Internal id.
    pub id: &'static str,
    /// Display label.
    pub label: &'static str,
    /// Stages in display order.
    pub stages: &'static [Stage],
}

const fn stage(id: &'static str, label: &'static str, probability: f64, closed: bool) -> Stage {
    Stage {
        id,
        label,
        probability,
        closed,
    }
}

/// HubSpot's default sales pipeline plus one custom pipeline with numeric ids.
pub static PIPELINES: [Pipeline; 2] = [
    Pipeline {
        id: "default",
        label: "Sales Pipeline",
        stages: &[
            stage("appointmentscheduled", "Appointment Scheduled", 0.2, false),
            stage("qualifiedtobuy", "Qualified To Buy", 0.4, false),
            stage(
                "presentationscheduled",
                "Presentation Scheduled",
                0.6,
                false,
            ),
            stage(
                "decisionmakerboughtin",
                "Decision Maker Bought-In",
                0.8,
                false,
            ),
            stage("contractsent", "Contract Sent", 0.9, false),
            stage("closedwon", "Closed Won", 1.0, true),
            stage("closedlost", "Closed Lost", 0.0, true),
        ],
    },
    Pipeline {
        id: "75431234",
        label: "Partner Pipeline",
        stages: &[
            stage("75431235", "Partner Referral", 0.1, false),
            stage("75431236", "Partner Qualified", 0.5, false),
            stage("75431237", "Partner Won", 1.0, true),
            stage("75431238", "Partner Lost", 0.0, true),
        ],
    },
];

/// The pipeline a stage belongs to.
pub fn pipeline_of(stage_id: &str) -> Option<&'static Pipeline> {
    PIPELINES
        .iter()
        .find(|p| p.stages.iter().any(|s| s.id == stage_id))
}

/// The probability HubSpot sets when a deal enters a stage.
pub fn stage_probability(stage_id: &str) -> Option<f64> {
    PIPELINES
        .iter()
        .flat_map(|p| p.stages.iter())
        .find(|s| s.id == stage_id)
        .map(|s| s.probability)
}

/// The JSON shape of one pipeline in `GET /crm/v3/pipelines/deals`.
pub fn pipeline_json(p: &Pipeline, display_order: usize) -> Value {
    let stages: Vec<Value> = p
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| stage_json(s, i))
        .collect();
    json!({
        "id": p.id,
        "label": p.label,
        "displayOrder": display_order,
        "stages": stages,
        "createdAt": "2020-01-01T00:00:00.000Z",
        "updatedAt": "2020-01-01T00:00:00.000Z",
        "archived": false,
    })
}

/// The JSON shape of one stage.
pub fn stage_json(s: &Stage, display_order: usize) -> Value {
    json!({
        "id": s.id,
        "label": s.label,
        "displayOrder": display_order,
        "metadata": {"isClosed": s.closed.to_string(), "probability": format!("{:?}", s.probability)},
        "createdAt": "2020-01-01T00:00:00.000Z",
        "updatedAt": "2020-01-01T00:00:00.000Z",
        "archived": false,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    })
}
