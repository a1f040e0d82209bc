//! What impact.com requires of line items (`ItemSku`, `ItemCategory`,
//! `ItemQuantity` for every item), the quantity taken from the line item,
//! and the currency fallback to the portal's company currency.

use super::*;

fn row(from: &str, to: &str) -> FieldMapping {
    FieldMapping {
        source: Source::parse_from(from, ObjectType::Deals).expect("valid source"),
        target: Target::parse(to).expect("valid target"),
        value_map: None,
    }
}

fn constant(value: &str, to: &str) -> FieldMapping {
    FieldMapping {
        source: Source::Const(value.into()),
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

/// The minimum and the seed's line-item rows (sku, name, price), which map
/// no quantity and no category.
fn seed_rows() -> Vec<FieldMapping> {
    vec![
        row("deal_[stage]_id", "OrderId"),
        row("deal_contact_id", "CustomerId"),
        constant("ClosedWon", "EventTypeCode"),
        row("hs_lastmodifieddate", "EventDate"),
        row("line_item{i}.hs_sku", "ItemSku{i}"),
        row("line_item{i}.name", "ItemName{i}"),
        row("line_item{i}.price", "ItemPrice{i}"),
    ]
}

fn ctx(items: Vec<Properties>) -> Context {
    Context {
        properties: props(&[
            ("hs_object_id", "9001"),
            ("dealstage", "closedwon"),
            ("deal_contact_id", "501"),
            ("hs_lastmodifieddate", "1785628524000"),
        ]),
        line_items: items,
        program_id: "1000".into(),
        currency: Some("USD".into()),
        ..Context::default()
    }
}

fn anvil(quantity: Option<&str>) -> Properties {
    let mut p = props(&[
        ("hs_object_id", "301"),
        ("hs_sku", "SKU-1"),
        ("name", "Anvil"),
    ]);
    p.insert("price".into(), Some("10.00".into()));
    p.insert("quantity".into(), quantity.map(str::to_owned));
    p
}

fn items(c: &Conversion) -> Vec<(&str, &str)> {
    c.params
        .iter()
        .filter(|(n, _)| n.starts_with("Item"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[test]
fn the_quantity_comes_from_the_line_item_unless_mapped() {
    let mut rows = seed_rows();
    rows.push(constant("Hardware", "ItemCategory{i}"));
    let mut rope = anvil(Some("2.0"));
    rope.insert("hs_sku".into(), Some("SKU-2".into()));
    let c = build(&rows, &ctx(vec![anvil(Some("3")), rope])).expect("maps");
    assert_eq!(
        items(&c),
        [
            ("ItemSku1", "SKU-1"),
            ("ItemName1", "Anvil"),
            ("ItemPrice1", "10.00"),
            ("ItemCategory1", "Hardware"),
            ("ItemQuantity1", "3"),
            ("ItemSku2", "SKU-2"),
            ("ItemName2", "Anvil"),
            ("ItemPrice2", "10.00"),
            ("ItemCategory2", "Hardware"),
            ("ItemQuantity2", "2"),
        ]
    );
    assert!(needs(&rows).line_item_properties.contains("quantity"));

    // Mapped otherwise: the mapping wins.
    rows.push(constant("1", "ItemQuantity{i}"));
    let c = build(&rows, &ctx(vec![anvil(Some("3"))])).expect("maps");
    assert_eq!(c.get("ItemQuantity1"), Some("1"));
    assert!(!needs(&rows).line_item_properties.contains("quantity"));
}

#[test]
fn an_item_without_a_whole_quantity_is_not_sent() {
    let mut rows = seed_rows();
    rows.push(constant("Hardware", "ItemCategory{i}"));
    let e = build(&rows, &ctx(vec![anvil(None)])).expect_err("no quantity");
    assert_eq!(e.reason(), "mapping_incomplete");
    let text = e.to_string();
    assert!(text.contains("ItemQuantity1"), "{text}");
    assert!(text.contains("HubSpot line item 301"), "{text}");
    assert!(text.contains("has no quantity"), "{text}");

    let e = build(&rows, &ctx(vec![anvil(Some("1.5"))])).expect_err("fraction");
    assert_eq!(e.reason(), "mapping_invalid");
    assert!(e.to_string().contains("whole units"), "{e}");
    let e = build(&rows, &ctx(vec![anvil(Some("-2"))])).expect_err("negative");
    assert_eq!(e.reason(), "mapping_invalid");
}

#[test]
fn items_without_sku_or_category_are_named_with_a_source() {
    // The seed's own rows map no category: the conversion is refused
    // before it reaches impact.com, naming the field and how to map it.
    let e = build(&seed_rows(), &ctx(vec![anvil(Some("1"))])).expect_err("no category");
    assert_eq!(e.reason(), "mapping_incomplete");
    let text = e.to_string();
    assert!(text.contains("ItemCategory1"), "{text}");
    assert!(text.contains(r#""to": "ItemCategory{i}""#), "{text}");

    // Mapped, but this line item has no SKU.
    let mut rows = seed_rows();
    rows.push(constant("Hardware", "ItemCategory{i}"));
    let mut no_sku = anvil(Some("1"));
    no_sku.insert("hs_sku".into(), None);
    let e = build(&rows, &ctx(vec![anvil(Some("1")), no_sku])).expect_err("no sku");
    let text = e.to_string();
    assert!(text.contains("ItemSku2"), "{text}");
    assert!(text.contains("hs_sku is empty"), "{text}");

    // A deal without line items still sends its order-level fields.
    assert!(build(&seed_rows(), &ctx(vec![])).is_ok());
}

#[test]
fn constants_alone_do_not_make_an_item() {
    let mut rows = seed_rows();
    rows.push(constant("Hardware", "ItemCategory{i}"));
    let empty = props(&[("hs_object_id", "302")]);
    let c = build(&rows, &ctx(vec![empty, anvil(Some("1"))])).expect("maps");
    assert_eq!(c.get("ItemSku1"), Some("SKU-1"));
    assert_eq!(c.get("ItemCategory2"), None);
}

#[test]
fn the_company_currency_is_the_fallback() {
    let mut rows = seed_rows();
    rows.push(constant("Hardware", "ItemCategory{i}"));
    assert!(
        needs(&rows).currency,
        "amounts without a mapped CurrencyCode"
    );
    let mut c = ctx(vec![anvil(Some("1"))]);
    c.currency = None;
    c.company_currency = Some("eur".into());
    let conv = build(&rows, &c).expect("maps");
    assert_eq!(conv.get("CurrencyCode"), Some("EUR"));
    assert!(
        conv.notes.iter().any(|n| n.contains("company currency")),
        "{:?}",
        conv.notes
    );

    // The object's own currency comes first.
    c.currency = Some("GBP".into());
    assert_eq!(
        build(&rows, &c).expect("maps").get("CurrencyCode"),
        Some("GBP")
    );

    // Neither: a permanent, named failure.
    c.currency = None;
    c.company_currency = None;
    let e = build(&rows, &c).expect_err("no currency at all");
    assert_eq!(e.reason(), "mapping_incomplete");
    assert!(e.to_string().contains("company currency"), "{e}");

    // A mapped CurrencyCode needs neither.
    rows.push(constant("USD", "CurrencyCode"));
    assert!(!needs(&rows).currency);
}

#[test]
fn field_limits_follow_impact_com() {
    for (field, max) in [
        ("EventTypeCode", 64),
        ("CustomProfileId", 70),
        ("PaymentType", 32),
    ] {
        let with = |len: usize| {
            let mut rows = seed_rows();
            rows.retain(|r| {
                !matches!(r.target, Target::Item(_)) && r.target != Target::Field(field.into())
            });
            rows.push(constant(&"x".repeat(len), field));
            build(&rows, &ctx(vec![])).map(|_| ())
        };
        assert!(with(max).is_ok(), "{field} {max}");
        let e = with(max + 1).expect_err("too long");
        assert_eq!(e.reason(), "mapping_invalid");
        assert!(e.to_string().contains(field), "{e}");
    }
}
