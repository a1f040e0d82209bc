//! Property definitions and deal pipelines of the fake portals.

use serde_json::{Value, json};

use super::object_type::ObjectType;
pub use super::pipelines::{
    PIPELINES, Pipeline, Stage, pipeline_json, pipeline_of, stage_json, stage_probability,
};

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
            s("hs_line_item_currency_code", "Currency"),
            s("description", "Description"),
        ]),
    }
    defs
}
