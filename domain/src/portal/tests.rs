use secrecy::ExposeSecret;

use super::*;
use crate::object_type::ObjectType;

const ISSUE_EXAMPLE: &str = r#"{
  "portal_id": 62515,
  "hubspot": { "private_app_token": "pat-na1-xyz" },
  "impact": { "account_sid": "IRabc", "auth_token": "tok", "program_id": "1000" },
  "triggers": {
    "contacts": { "on_create": true, "on_change": ["lifecyclestage"] },
    "deals": { "on_create": false, "on_change": ["dealstage"] }
  },
  "mappings": {
    "contacts": [ { "from": "lifecyclestage", "to": "EventTypeCode" },
                  { "from": "hs_object_id", "to": "CustomerId" } ],
    "deals": [ { "from": "line_item{i}.hs_sku", "to": "ItemSku{i}" } ]
  }
}"#;

fn errors(text: &str) -> Vec<String> {
    let doc = match PortalDocument::parse(text) {
        Ok(d) => d,
        Err(e) => return e.0,
    };
    doc.validate().expect_err("invalid").0
}

#[test]
fn the_issue_example_is_valid() {
    let v = PortalDocument::parse(ISSUE_EXAMPLE)
        .expect("parses")
        .validate()
        .expect("valid");
    assert_eq!(v.config.portal_id.0, 62515);
    assert_eq!(v.config.status, PortalStatus::Active);
    assert_eq!(v.config.mappings[&ObjectType::Contacts].len(), 2);
    assert_eq!(
        v.secrets
            .impact_auth_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .as_deref(),
        Some("tok")
    );
    // Incomplete mappings are allowed, but the operator is warned.
    assert!(v.warnings.iter().any(|w| w.contains("mappings.contacts")));
}

#[test]
fn export_round_trips_without_secrets() {
    let v = PortalDocument::parse(ISSUE_EXAMPLE)
        .expect("parses")
        .validate()
        .expect("valid");
    let doc = PortalDocument::export(&v.config, HubSpotAuthKind::PrivateApp);
    let text = serde_json::to_string_pretty(&doc).expect("serialises");
    assert!(
        !text.contains("pat-na1-xyz") && !text.contains("\"tok\""),
        "{text}"
    );
    assert!(!text.contains("auth_token"), "{text}");
    let again = PortalDocument::parse(&text)
        .expect("parses")
        .validate()
        .expect("valid");
    assert_eq!(again.config, v.config);
    assert!(again.secrets.impact_auth_token.is_none());
}

#[test]
fn syntax_errors_name_the_position() {
    let e = errors("{\"portal_id\": 1,,}");
    assert!(e[0].contains("line 1"), "{e:?}");
    let e = errors(
        r#"{"portal_id": 1, "impact": {"account_sid": "a", "program_id": "1"}, "trigers": {}}"#,
    );
    assert!(e[0].contains("unknown field `trigers`"), "{e:?}");
    let e = errors(
        r#"{"portal_id": 1, "impact": {"account_sid": "a", "program_id": "1"}, "triggers": {"contact": {}}}"#,
    );
    assert!(e[0].contains("unknown variant `contact`"), "{e:?}");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let e = errors(
        r#"{
        "portal_id": 0,
        "impact": {"account_sid": "", "program_id": "abc"},
        "triggers": {"deals": {"on_change": ["dealstage", "dealstage", "deal stage"]}},
        "mappings": {
            "contacts": [
                {"from": "deal_[stage]_id", "to": "OrderId"},
                {"from": "email", "to": "eventtypecode"},
                {"from": "line_item{i}.hs_sku", "to": "ItemSku{i}"},
                {"to": "Text1"},
                {"from": "a", "const": "b", "to": "Text2"}
            ],
            "deals": [
                {"from": "line_item{i}.price", "to": "Amount"},
                {"from": "amount", "to": "ItemPrice{i}"},
                {"from": "x", "to": "OrderId"},
                {"from": "y", "to": "OrderId"},
                {"const": "USD", "to": "CurrencyCode", "value_map": {"a": "b"}}
            ]
        }
    }"#,
    );
    let want = [
        "portal_id:",
        "impact.account_sid:",
        "impact.program_id:",
        "triggers.deals.on_change[1]: \"dealstage\" is listed twice",
        "triggers.deals.on_change[2]:",
        "mappings.contacts[0].from: \"deal_[stage]_id\" is only available for deals",
        "mappings.contacts[1].to: unknown impact.com field \"eventtypecode\" (did you mean \"EventTypeCode\"?)",
        "mappings.contacts[2].from:",
        "mappings.contacts[3]: needs a source",
        "mappings.contacts[4]: give either",
        "mappings.deals[0].to: line-item sources",
        "mappings.deals[1].from:",
        "mappings.deals[3].to: OrderId is already mapped",
        "mappings.deals[4]: value_map only applies",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn uninstalled_is_not_for_operators() {
    let e = errors(
        r#"{"portal_id": 1, "status": "uninstalled", "impact": {"account_sid": "a", "program_id": 1}}"#,
    );
    assert!(e[0].starts_with("status:"), "{e:?}");
}

#[test]
fn credentials_a_document_needs_depend_on_what_is_stored() {
    let full = PortalDocument::parse(ISSUE_EXAMPLE)
        .expect("parses")
        .validate()
        .expect("valid");
    let bare = PortalDocument::parse(
        &ISSUE_EXAMPLE
            .replace(r#""private_app_token": "pat-na1-xyz""#, "")
            .replace(r#", "auth_token": "tok""#, ""),
    )
    .expect("parses")
    .validate()
    .expect("valid");
    let oauth = StoredCredentials {
        hubspot: HubSpotAuthKind::Oauth,
        impact_token: true,
        private_token: false,
        oauth_tokens: true,
    };
    // A new portal: both secrets from the document.
    assert_eq!(full.credentials_over(None), Ok(HubSpotAuthKind::PrivateApp));
    let missing = bare.credentials_over(None).expect_err("refused");
    assert!(missing.starts_with("impact.auth_token"), "{missing}");
    // Installed with OAuth and configured before: secrets may be left out.
    assert_eq!(
        bare.credentials_over(Some(oauth)),
        Ok(HubSpotAuthKind::Oauth)
    );
    // A private-app token in the document replaces the OAuth install.
    assert_eq!(
        full.credentials_over(Some(oauth)),
        Ok(HubSpotAuthKind::PrivateApp)
    );
    let no_impact = StoredCredentials {
        impact_token: false,
        ..oauth
    };
    assert!(bare.credentials_over(Some(no_impact)).is_err());
}

fn deal_doc(rows: &str) -> String {
    format!(
        r#"{{"portal_id": 7, "impact": {{"account_sid": "IRa", "program_id": "1000"}},
            "triggers": {{"deals": {{"on_change": ["dealstage"]}}}},
            "mappings": {{"deals": [
                {{"from": "deal_[deal stage]", "to": "EventTypeCode"}},
                {{"from": "deal_[stage]_id", "to": "OrderId"}},
                {{"from": "hs_lastmodifieddate", "to": "EventDate"}},
                {{"from": "deal_contact_id", "to": "CustomerId"}}{rows}]}}}}"#
    )
}

#[test]
fn a_webhook_secret_is_set_kept_or_removed_and_never_exported() {
    let with = |secret: &str| {
        PortalDocument::parse(&ISSUE_EXAMPLE.replace(
            r#""private_app_token": "pat-na1-xyz""#,
            &format!(r#""private_app_token": "pat-na1-xyz", "webhook_secret": {secret}"#),
        ))
        .expect("parses")
        .validate()
    };
    let set = with(r#"" wh-secret-0123456789 ""#).expect("valid");
    match &set.secrets.hubspot_webhook_secret {
        SecretUpdate::Set(s) => assert_eq!(s.expose_secret(), "wh-secret-0123456789", "trimmed"),
        other => panic!("expected Set, got {other:?}"),
    }
    assert!(
        !format!("{set:?}").contains("wh-secret-0123456789"),
        "redacted in Debug"
    );
    let cleared = with("null").expect("valid");
    assert!(matches!(
        cleared.secrets.hubspot_webhook_secret,
        SecretUpdate::Clear
    ));
    let kept = PortalDocument::parse(ISSUE_EXAMPLE)
        .expect("parses")
        .validate()
        .expect("valid");
    assert!(matches!(
        kept.secrets.hubspot_webhook_secret,
        SecretUpdate::Keep
    ));
    for weak in [r#""  ""#, r#""wh-secret""#] {
        let e = with(weak).expect_err("empty or short").0;
        assert!(e[0].starts_with("hubspot.webhook_secret"), "{e:?}");
        assert!(
            !e[0].contains("wh-secret\""),
            "the value is not echoed: {e:?}"
        );
    }

    let mut doc = PortalDocument::export(&set.config, HubSpotAuthKind::PrivateApp);
    doc.hubspot.webhook_secret_set = Some(true);
    let text = serde_json::to_string(&doc).expect("serialises");
    assert!(!text.contains("wh-secret-0123456789"), "{text}");
    assert!(text.contains(r#""webhook_secret_set":true"#), "{text}");
    // The export applies again: the flag is ignored, the secret kept.
    let again = PortalDocument::parse(&text)
        .expect("parses")
        .validate()
        .expect("valid");
    assert!(matches!(
        again.secrets.hubspot_webhook_secret,
        SecretUpdate::Keep
    ));
}

#[test]
fn a_webhook_secret_is_for_private_apps_only() {
    let doc = PortalDocument::parse(&ISSUE_EXAMPLE.replace(
        r#""private_app_token": "pat-na1-xyz""#,
        r#""webhook_secret": "wh-secret-0123456789""#,
    ))
    .expect("parses")
    .validate()
    .expect("valid");
    let oauth = StoredCredentials {
        hubspot: HubSpotAuthKind::Oauth,
        impact_token: true,
        private_token: true,
        oauth_tokens: true,
    };
    let e = doc.credentials_over(Some(oauth)).expect_err("refused");
    assert!(e.starts_with("hubspot.webhook_secret"), "{e}");
    let private = StoredCredentials {
        hubspot: HubSpotAuthKind::PrivateApp,
        ..oauth
    };
    assert_eq!(
        doc.credentials_over(Some(private)),
        Ok(HubSpotAuthKind::PrivateApp)
    );
    // Nor with an explicit switch of a private-app portal to OAuth.
    let switch = PortalDocument::parse(&ISSUE_EXAMPLE.replace(
        r#""private_app_token": "pat-na1-xyz""#,
        r#""webhook_secret": "wh-secret-0123456789", "auth_kind": "oauth""#,
    ))
    .expect("parses")
    .validate()
    .expect("valid");
    let e = switch.credentials_over(Some(private)).expect_err("refused");
    assert!(e.starts_with("hubspot.webhook_secret"), "{e}");
}

#[test]
fn item_fields_impact_com_requires_are_named_with_a_source() {
    // The seed's line-item rows: sku, name, price; no category.
    let seed = r#",
        {"from": "line_item{i}.hs_sku", "to": "ItemSku{i}"},
        {"from": "line_item{i}.name", "to": "ItemName{i}"},
        {"from": "line_item{i}.price", "to": "ItemPrice{i}"}"#;
    let v = PortalDocument::parse(&deal_doc(seed))
        .expect("parses")
        .validate()
        .expect("a warning, not a refusal: stored documents keep applying");
    let w = v.warnings.join("\n");
    assert!(w.contains("nothing maps ItemCategory{i}"), "{w}");
    assert!(w.contains(r#""to": "ItemCategory{i}""#), "{w}");
    assert!(!w.contains("ItemQuantity"), "the quantity defaults: {w}");
    let unmapped = unmapped_required(&v.config.mappings[&ObjectType::Deals]);
    assert_eq!(
        unmapped,
        ["ItemCategory{i} (e.g. a constant category, or a line-item property holding it)"]
    );

    // Without a SKU either, both are named.
    let v = PortalDocument::parse(&deal_doc(
        r#", {"from": "line_item{i}.price", "to": "ItemPrice{i}"}"#,
    ))
    .expect("parses")
    .validate()
    .expect("valid");
    let unmapped = unmapped_required(&v.config.mappings[&ObjectType::Deals]);
    assert!(unmapped[0].starts_with("ItemSku{i} (e.g. from line_item{i}.hs_sku)"));
    assert_eq!(unmapped.len(), 2, "{unmapped:?}");

    // A constant category, the same for every item, completes them.
    let complete = format!(r#"{seed}, {{"const": "Hardware", "to": "ItemCategory{{i}}"}}"#);
    let v = PortalDocument::parse(&deal_doc(&complete))
        .expect("parses")
        .validate()
        .expect("valid");
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    let doc = PortalDocument::export(&v.config, HubSpotAuthKind::PrivateApp);
    let rows = &doc.mappings[&ObjectType::Deals];
    assert_eq!(
        rows.last().and_then(|r| r.constant.as_deref()),
        Some("Hardware")
    );
    assert_eq!(rows.last().map(|r| r.to.as_str()), Some("ItemCategory{i}"));

    // Without line-item fields, nothing about items is said.
    let v = PortalDocument::parse(&deal_doc(""))
        .expect("parses")
        .validate()
        .expect("valid");
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn constants_and_value_maps_must_fit_their_field() {
    let long = "x".repeat(65);
    let e = errors(&deal_doc(&format!(
        r#", {{"const": "{long}", "to": "Text1"}},
           {{"const": "ab", "to": "PaymentType"}},
           {{"const": "{long}", "to": "CustomProfileId"}},
           {{"const": "CASH", "to": "Numeric1"}},
           {{"from": "dealtype", "to": "Text2", "value_map": {{"newbusiness": "{long}"}}}}"#
    )));
    let want = [
        "mappings.deals[4].const: not a valid Text1: 65 characters, at most 64 allowed",
        "mappings.deals[7].const: not a valid Numeric1",
        "mappings.deals[8].value_map.newbusiness: not a valid Text2",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
    let e = errors(&deal_doc(&format!(
        r#", {{"const": "{}", "to": "PaymentType"}}"#,
        "p".repeat(33)
    )));
    assert!(e[0].contains("at most 32"), "{e:?}");
}

#[test]
fn the_demo_portal_sends_complete_items() {
    let v = PortalDocument::parse(include_str!("../../../examples/demo-portal.json"))
        .expect("parses")
        .validate()
        .expect("valid");
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    assert!(unmapped_required(&v.config.mappings[&ObjectType::Deals]).is_empty());
}
