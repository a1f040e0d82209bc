//! The mapping engine: arbitrary mapping rows (source text → target text)
//! over arbitrary property values; parsing, `needs`, `build` and
//! `normalize` never panic, and a built conversion always has an OrderId.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use domain::mapping::{
    Context, FieldKind, FieldMapping, Properties, Source, Target, build, needs, normalize,
};
use domain::object_type::ObjectType;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let object_type = ObjectType::ALL[usize::from(data.first().copied().unwrap_or(0)) % 3];
    // Lines "from=>to" are rows; "name=value" lines are properties.
    let mut rows = Vec::new();
    let mut props: Properties = BTreeMap::new();
    let mut raw_values = Vec::new();
    for line in lines.by_ref().take(64) {
        if let Some((from, to)) = line.split_once("=>") {
            let (Ok(source), Ok(target)) = (Source::parse_from(from, object_type), Target::parse(to))
            else {
                continue;
            };
            rows.push(FieldMapping {
                source,
                target,
                value_map: None,
            });
        } else if let Some((k, v)) = line.split_once('=') {
            props.insert(k.to_owned(), (!v.is_empty()).then(|| v.to_owned()));
            raw_values.push(v.to_owned());
        }
    }
    let _ = needs(&rows);
    let ctx = Context {
        properties: props.clone(),
        trigger: props.iter().next().map(|(k, v)| (k.clone(), v.clone())),
        line_items: vec![props.clone(), props],
        associated_contact_id: Some(7),
        stage_label: Some("Closed won".into()),
        program_id: "1000".into(),
        occurred_at_ms: 1_700_000_000_000,
        currency: None,
        company_currency: None,
    };
    if let Ok(conv) = build(&rows, &ctx) {
        assert!(!conv.order_id.is_empty(), "a conversion without an OrderId");
    }
    for raw in raw_values {
        for kind in [
            FieldKind::Text(64),
            FieldKind::Date,
            FieldKind::Decimal,
            FieldKind::Money,
            FieldKind::Integer,
            FieldKind::EmailHash,
        ] {
            let _ = normalize(kind, &raw);
        }
    }
});
