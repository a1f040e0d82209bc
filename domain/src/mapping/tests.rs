use proptest::prelude::*;

use super::*;

fn row(ty: ObjectType, from: &str, to: &str) -> FieldMapping {
    FieldMapping {
        source: Source::parse_from(from, ty).expect("valid source"),
        target: Target::parse(to).expect("valid target"),
        value_map: None,
    }
}

fn props(pairs: &[(&str, &str)]) -> Properties {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
        .collect()
}

fn names(c: &Conversion) -> Vec<&str> {
    c.params.iter().map(|(n, _)| n.as_str()).collect()
}

fn contact_rows() -> Vec<FieldMapping> {
    let c = ObjectType::Contacts;
    vec![
        row(c, "lifecyclestage", "EventTypeCode"),
        row(c, "hs_object_id", "CustomerId"),
        row(c, "contact_[lead_status]_id", "OrderId"),
        row(c, "lastmodifieddate", "EventDate"),
        row(c, "company", "Text3"),
        row(c, "city", "CustomerCity"),
        row(c, "country", "CustomerCountry"),
        row(c, "zip", "CustomerPostCode"),
        row(c, "custom_impact_click_id", "ClickId"),
    ]
}

#[test]
fn seed_contacts_table() {
    let ctx = Context {
        properties: props(&[
            ("hs_object_id", "501"),
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "OPEN"),
            ("lastmodifieddate", "2026-08-01T23:55:24.500Z"),
            ("company", "Acme"),
            ("city", "Berlin"),
            ("country", "Germany"),
            ("zip", "10115"),
            ("custom_impact_click_id", "SKhRQaSXwxyOUQ"),
        ]),
        trigger: Some(("lifecyclestage".into(), Some("salesqualifiedlead".into()))),
        program_id: "1000".into(),
        ..Context::default()
    };
    let c = build(&contact_rows(), &ctx).expect("maps");
    let expected: Vec<(String, String)> = [
        ("CampaignId", "1000"),
        ("EventTypeCode", "salesqualifiedlead"),
        ("CustomerId", "501"),
        ("OrderId", "501_OPEN"),
        ("EventDate", "2026-08-01T23:55:24Z"),
        ("Text3", "Acme"),
        ("CustomerCity", "Berlin"),
        ("CustomerCountry", "Germany"),
        ("CustomerPostCode", "10115"),
        ("ClickId", "SKhRQaSXwxyOUQ"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(c.params, expected);
    assert_eq!(c.event_type, "salesqualifiedlead");
    assert_eq!(c.order_id, "501_OPEN");
}

fn deal_rows() -> Vec<FieldMapping> {
    let d = ObjectType::Deals;
    vec![
        row(d, "deal_[deal stage]", "EventTypeCode"),
        row(d, "deal_contact_id", "CustomerId"),
        row(d, "deal_[stage]_id", "OrderId"),
        row(d, "hs_lastmodifieddate", "EventDate"),
        row(d, "closedate", "Text3"),
        row(d, "hs_deal_stage_probability", "Text2"),
        row(d, "amount", "OrderSubTotal"),
    ]
}

fn deal_ctx() -> Context {
    Context {
        properties: props(&[
            ("hs_object_id", "9001"),
            ("dealstage", "presentationscheduled"),
            ("pipeline", "default"),
            ("deal_contact_id", "501"),
            ("hs_lastmodifieddate", "1785628524000"),
            ("closedate", "2026-08-01T23:55:24.000Z"),
            ("hs_deal_stage_probability", "1.0"),
            ("amount", "1500.00"),
        ]),
        trigger: Some(("dealstage".into(), Some("closedwon".into()))),
        stage_label: Some("Closed Won".into()),
        program_id: "1000".into(),
        currency: Some("usd".into()),
        ..Context::default()
    }
}

#[test]
fn seed_deals_table_judges_the_events_moment() {
    let c = build(&deal_rows(), &deal_ctx()).expect("maps");
    assert_eq!(c.get("EventTypeCode"), Some("Closed Won"));
    assert_eq!(c.get("OrderId"), Some("9001_closedwon"));
    assert_eq!(c.get("CustomerId"), Some("501"));
    assert_eq!(c.get("EventDate"), Some("2026-08-01T23:55:24Z"));
    assert_eq!(c.get("Text3"), Some("2026-08-01T23:55:24.000Z"));
    assert_eq!(c.get("Text2"), Some("1.0"));
    assert_eq!(c.get("OrderSubTotalPostDiscount"), Some("1500.00"));
    assert_eq!(
        names(&c),
        [
            "CampaignId",
            "EventTypeCode",
            "CustomerId",
            "OrderId",
            "EventDate",
            "Text3",
            "Text2",
            "OrderSubTotalPostDiscount",
            "CurrencyCode"
        ]
    );
}

#[test]
fn stage_label_falls_back_to_the_internal_id() {
    let mut ctx = deal_ctx();
    ctx.stage_label = None;
    let c = build(&deal_rows(), &ctx).expect("maps");
    assert_eq!(c.get("EventTypeCode"), Some("closedwon"));
}

#[test]
fn seed_line_items_expand_from_one_and_replace_the_order_amount() {
    let d = ObjectType::Deals;
    let mut rows = deal_rows();
    rows.extend([
        row(d, "line_item{i}.hs_sku", "ItemSku{i}"),
        row(d, "line_item{i}.name", "ItemName{i}"),
        row(d, "line_item{i}.price", "ItemPrice{i}"),
        row(d, "line_item{i}.quantity", "ItemQuantity{i}"),
        row(d, "line_item{i}.category", "ItemCategory{i}"),
    ]);
    let mut ctx = deal_ctx();
    ctx.line_items = vec![
        props(&[
            ("hs_sku", "SKU-1"),
            ("name", "Anvil"),
            ("price", "10"),
            ("quantity", "2"),
            ("category", "Hardware"),
        ]),
        props(&[
            ("hs_sku", "SKU-2"),
            ("name", "Rope"),
            ("price", "2.50"),
            ("quantity", "1.0"),
            ("category", "Hardware"),
        ]),
    ];
    let c = build(&rows, &ctx).expect("maps");
    let tail: Vec<(&str, &str)> = c
        .params
        .iter()
        .skip_while(|(n, _)| !n.starts_with("Item"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tail,
        [
            ("ItemSku1", "SKU-1"),
            ("ItemName1", "Anvil"),
            ("ItemPrice1", "10"),
            ("ItemQuantity1", "2"),
            ("ItemCategory1", "Hardware"),
            ("ItemSku2", "SKU-2"),
            ("ItemName2", "Rope"),
            ("ItemPrice2", "2.50"),
            ("ItemQuantity2", "1"),
            ("ItemCategory2", "Hardware"),
        ]
    );
    assert_eq!(c.get("OrderSubTotalPostDiscount"), None);
    assert_eq!(c.get("CurrencyCode"), Some("USD"));
    assert_eq!(c.notes.len(), 2);

    ctx.currency = None;
    let e = build(&rows, &ctx).expect_err("amounts need a currency");
    assert!(e.to_string().contains("CurrencyCode"), "{e}");
}

#[test]
fn a_deal_without_line_items_keeps_its_amount() {
    let d = ObjectType::Deals;
    let mut rows = deal_rows();
    rows.push(row(d, "line_item{i}.price", "ItemPrice{i}"));
    let c = build(&rows, &deal_ctx()).expect("maps");
    assert_eq!(c.get("OrderSubTotalPostDiscount"), Some("1500.00"));
    assert!(!names(&c).iter().any(|n| n.starts_with("Item")));
}

#[test]
fn seed_companies_mapping() {
    let co = ObjectType::Companies;
    let rows = vec![
        row(co, "lifecyclestage", "EventTypeCode"),
        row(co, "hs_object_id", "CustomerId"),
        row(co, "hs_object_id", "OrderId"),
        row(co, "hs_lastmodifieddate", "EventDate"),
        row(co, "name", "Text1"),
        row(co, "domain", "Text2"),
    ];
    let ctx = Context {
        properties: props(&[
            ("hs_object_id", "77"),
            ("lifecyclestage", "customer"),
            ("hs_lastmodifieddate", "2026-08-01T10:00:00Z"),
            ("name", "Acme"),
            ("domain", "acme.test"),
        ]),
        program_id: "1000".into(),
        ..Context::default()
    };
    let c = build(&rows, &ctx).expect("maps");
    assert_eq!(c.order_id, "77");
    assert_eq!(c.get("Text2"), Some("acme.test"));
}

#[test]
fn value_maps_constants_and_hashing() {
    let c = ObjectType::Contacts;
    let mut rows = contact_rows();
    rows[0].value_map = Some(
        [("salesqualifiedlead".to_owned(), "SQL".to_owned())]
            .into_iter()
            .collect(),
    );
    rows.push(FieldMapping {
        source: Source::Const("USD".into()),
        target: Target::parse("CurrencyCode").expect("valid"),
        value_map: None,
    });
    rows.push(row(c, "email", "CustomerEmail"));
    let ctx = Context {
        properties: props(&[
            ("hs_object_id", "501"),
            ("hs_lead_status", "NEW"),
            ("lastmodifieddate", "1785628524000"),
            ("email", " Jane@Example.com"),
        ]),
        trigger: Some(("lifecyclestage".into(), Some("salesqualifiedlead".into()))),
        program_id: "1000".into(),
        ..Context::default()
    };
    let conv = build(&rows, &ctx).expect("maps");
    assert_eq!(conv.get("EventTypeCode"), Some("SQL"));
    assert_eq!(conv.event_type, "SQL");
    assert_eq!(conv.get("CurrencyCode"), Some("USD"));
    use sha1::Digest;
    let hash = hex::encode(sha1::Sha1::digest(b"jane@example.com"));
    assert_eq!(conv.get("CustomerEmail"), Some(hash.as_str()));
}

#[test]
fn missing_fields_are_named() {
    let mut ctx = deal_ctx();
    ctx.properties.insert("deal_contact_id".into(), None);
    let e = build(&deal_rows(), &ctx).expect_err("no attribution");
    assert_eq!(e.reason(), "mapping_incomplete");
    assert!(e.to_string().contains("CustomerId"), "{e}");
    assert!(e.to_string().contains("deal_contact_id"), "{e}");

    let rows: Vec<FieldMapping> = deal_rows()
        .into_iter()
        .filter(|r| r.target != Target::Field("EventDate".into()))
        .collect();
    let e = build(&rows, &deal_ctx()).expect_err("no date");
    assert!(
        e.to_string().contains("EventDate") && e.to_string().contains("no mapping"),
        "{e}"
    );

    let mut ctx = deal_ctx();
    ctx.program_id = String::new();
    let e = build(&deal_rows(), &ctx).expect_err("no campaign");
    assert!(e.to_string().contains("CampaignId"), "{e}");
}

#[test]
fn limits_are_enforced() {
    let mut ctx = deal_ctx();
    ctx.properties
        .insert("hs_object_id".into(), Some("9".repeat(70)));
    let e = build(&deal_rows(), &ctx).expect_err("too long");
    assert!(e.to_string().contains("OrderId"), "{e}");
    assert_eq!(e.reason(), "mapping_invalid");
}

#[test]
fn needs_lists_what_to_fetch() {
    let d = ObjectType::Deals;
    let mut rows = deal_rows();
    rows.push(row(d, "line_item{i}.hs_sku", "ItemSku{i}"));
    rows.push(row(d, "associated_contact_id", "CustomProfileId"));
    let n = needs(&rows);
    for p in [
        "hs_object_id",
        "dealstage",
        "pipeline",
        "amount",
        "closedate",
    ] {
        assert!(n.properties.contains(p), "{p}");
    }
    assert!(n.line_item_properties.contains("hs_sku"));
    assert!(n.associated_contact && n.stage_label);
}

proptest! {
    /// Item indexes start at 1 and have no gaps, whatever items are empty.
    #[test]
    fn item_indexes_are_dense(items in proptest::collection::vec(proptest::option::of("[A-Z0-9-]{1,8}"), 0..12)) {
        let d = ObjectType::Deals;
        let mut rows = deal_rows();
        rows.push(row(d, "line_item{i}.hs_sku", "ItemSku{i}"));
        rows.push(FieldMapping {
            source: Source::Const("Hardware".into()),
            target: Target::Item("ItemCategory".into()),
            value_map: None,
        });
        let mut ctx = deal_ctx();
        ctx.line_items = items.iter().map(|s| {
            [("hs_sku".to_owned(), s.clone()), ("quantity".to_owned(), Some("1".to_owned()))].into_iter().collect()
        }).collect();
        let c = build(&rows, &ctx).expect("maps");
        let skus: Vec<&str> = c.params.iter().filter(|(n, _)| n.starts_with("ItemSku")).map(|(n, _)| n.as_str()).collect();
        let expected: Vec<String> = (1..=items.iter().flatten().count()).map(|i| format!("ItemSku{i}")).collect();
        prop_assert_eq!(skus, expected.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Any conversion that builds has the impact.com minimum, CampaignId first,
    /// and no parameter twice.
    #[test]
    fn built_conversions_have_the_minimum(
        status in proptest::option::of("[A-Z_]{1,20}"),
        stage in proptest::option::of("[a-z]{1,20}"),
        click in proptest::option::of("[A-Za-z0-9]{1,80}"),
    ) {
        let ctx = Context {
            properties: [
                ("hs_object_id".to_owned(), Some("501".to_owned())),
                ("hs_lead_status".to_owned(), status),
                ("lastmodifieddate".to_owned(), Some("1785628524000".to_owned())),
                ("custom_impact_click_id".to_owned(), click),
            ].into_iter().collect(),
            trigger: Some(("lifecyclestage".into(), stage)),
            program_id: "1000".into(),
            ..Context::default()
        };
        if let Ok(c) = build(&contact_rows(), &ctx) {
            prop_assert_eq!(c.params[0].0.as_str(), "CampaignId");
            for f in ["EventTypeCode", "EventDate", "OrderId", "CustomerId"] {
                prop_assert!(c.get(f).is_some());
            }
            prop_assert!(c.order_id.chars().count() <= 64);
            let mut seen = std::collections::BTreeSet::new();
            for (n, _) in &c.params { prop_assert!(seen.insert(n.clone())); }
        }
    }
}
