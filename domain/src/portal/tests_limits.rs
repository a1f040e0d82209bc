//! Document limits, and the explicit switch of the HubSpot authentication.

use super::{
    HubSpotAuthKind, PortalDocument, StoredCredentials,
    limits::{
        MAX_DOCUMENT_BYTES, MAX_MAPPINGS_PER_OBJECT, MAX_TRIGGER_PROPERTIES_PER_OBJECT,
        MAX_TRIGGER_VALUES,
    },
};
use serde_json::json;

fn doc(triggers: serde_json::Value, mappings: serde_json::Value) -> PortalDocument {
    let v = json!({
        "portal_id": 7,
        "impact": { "account_sid": "IRa", "program_id": "1000" },
        "triggers": triggers,
        "mappings": mappings
    });
    serde_json::from_value(v).expect("a document")
}

fn errors(d: PortalDocument) -> Vec<String> {
    d.validate().err().map(|e| e.0).unwrap_or_default()
}

#[test]
fn too_many_mappings_per_object_type_are_refused_by_path() {
    let rows: Vec<_> = (0..=MAX_MAPPINGS_PER_OBJECT)
        .map(|i| json!({ "const": "x", "to": format!("Text{i}") }))
        .collect();
    let e = errors(doc(json!({}), json!({ "deals": rows })));
    assert!(
        e.iter()
            .any(|e| e.starts_with("mappings.deals: 201 mappings; at most 200")),
        "{e:?}"
    );
}

#[test]
fn too_many_trigger_properties_and_values_are_refused() {
    let props: Vec<_> = (0..=MAX_TRIGGER_PROPERTIES_PER_OBJECT)
        .map(|i| json!(format!("prop_{i}")))
        .collect();
    let values: Vec<_> = (0..=MAX_TRIGGER_VALUES).map(|i| i.to_string()).collect();
    let e = errors(doc(
        json!({
            "contacts": { "on_change": props },
            "deals": { "on_change": [{ "property": "dealstage", "values": values }] }
        }),
        json!({}),
    ));
    assert!(
        e.iter()
            .any(|e| e
                .starts_with("triggers.contacts.on_change: 101 property triggers; at most 100")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("triggers.deals.on_change[0].values: 201 values")),
        "{e:?}"
    );
}

#[test]
fn a_document_over_256_kib_is_refused_and_its_text_before_parsing() {
    // Within the counts, over the size: 100 value maps of 400 long entries.
    let big: serde_json::Map<_, _> = (0..400)
        .map(|i| (format!("value-{i}-{}", "v".repeat(20)), json!("y")))
        .collect();
    let rows: Vec<_> = (0..100)
        .map(|i| json!({ "from": "dealname", "to": format!("Text{i}"), "value_map": big }))
        .collect();
    let e = errors(doc(json!({}), json!({ "deals": rows })));
    assert!(
        e.iter()
            .any(|e| e.starts_with("document:") && e.ends_with("at most 256 KiB")),
        "{e:?}"
    );
    let text = format!(
        r#"{{"portal_id": 7, "padding": "{}"}}"#,
        "x".repeat(2 * MAX_DOCUMENT_BYTES)
    );
    let e = PortalDocument::parse(&text).expect_err("refused").0;
    assert!(e[0].starts_with("document: "), "{e:?}");
}

#[test]
fn switching_the_hubspot_authentication_is_explicit() {
    let validated = |auth: serde_json::Value| {
        let mut d = doc(json!({}), json!({}));
        d.hubspot = serde_json::from_value(auth).expect("hubspot section");
        d.validate().expect("valid")
    };
    let logged_in = StoredCredentials {
        hubspot: HubSpotAuthKind::PrivateApp,
        impact_token: true,
        private_token: true,
        oauth_tokens: true,
    };
    let private_app_with_login = Some(logged_in);
    // Unsaid: the stored kind stays (an OAuth login stored tokens, but
    // the portal stays on its private app).
    assert_eq!(
        validated(json!({})).credentials_over(private_app_with_login),
        Ok(HubSpotAuthKind::PrivateApp)
    );
    assert_eq!(
        validated(json!({ "auth_kind": "oauth" })).credentials_over(private_app_with_login),
        Ok(HubSpotAuthKind::Oauth)
    );
    let never_logged_in = Some(StoredCredentials {
        oauth_tokens: false,
        ..logged_in
    });
    let e = validated(json!({ "auth_kind": "oauth" }))
        .credentials_over(never_logged_in)
        .expect_err("no tokens to switch to");
    assert!(e.starts_with("hubspot.auth_kind"), "{e}");
    let e = validated(json!({ "auth_kind": "oauth", "private_app_token": "pat-1" }))
        .credentials_over(never_logged_in)
        .expect_err("contradiction");
    assert!(e.contains("contradict"), "{e}");
}
