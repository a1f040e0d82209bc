//! The assembly's pure parts: what is read, in which order, which contact
//! and which stage label.

use super::*;
use crate::hubspot::Stage;

fn pipeline(id: &str, stages: &[(&str, &str)]) -> Pipeline {
    Pipeline {
        id: id.into(),
        label: id.into(),
        stages: stages
            .iter()
            .map(|(id, label)| Stage {
                id: (*id).into(),
                label: (*label).into(),
            })
            .collect(),
    }
}

#[test]
fn a_stage_is_looked_for_in_its_pipeline_first_then_in_any() {
    let pipelines = [
        pipeline("default", &[("won", "Closed Won"), ("blank", "")]),
        pipeline("other", &[("won", "Won (other)"), ("late", "Late")]),
    ];
    let find = |p, s| find_stage_label(&pipelines, p, s);
    assert_eq!(find(Some("other"), "won").as_deref(), Some("Won (other)"));
    assert_eq!(find(None, "won").as_deref(), Some("Closed Won"));
    assert_eq!(find(Some("default"), "late").as_deref(), Some("Late"));
    assert_eq!(find(None, "blank"), None, "an empty label is no label");
    assert_eq!(find(None, "missing"), None);
}

#[test]
fn line_items_are_ordered_by_position_then_id() {
    let item = |id: &str, pos: Option<&str>| CrmObject {
        id: id.into(),
        properties: [(POSITION.to_owned(), pos.map(str::to_owned))].into(),
    };
    let items = vec![
        item("9", None),
        item("3", Some("2")),
        item("5", Some("1")),
        item("1", None),
    ];
    let order: Vec<_> = order_line_items(items)
        .iter()
        .map(|p| p[POSITION].clone())
        .collect();
    let expected = [Some("1"), Some("2"), None, None].map(|p| p.map(str::to_owned));
    assert_eq!(order, expected);
}

#[test]
fn the_primary_contact_wins_else_the_lowest_id() {
    let assoc = |id, primary: bool| Association {
        to_object_id: id,
        labels: if primary {
            vec!["Primary".into()]
        } else {
            vec![]
        },
    };
    assert_eq!(primary_contact(&[assoc(7, false), assoc(9, true)]), Some(9));
    assert_eq!(
        primary_contact(&[assoc(7, false), assoc(4, false)]),
        Some(4)
    );
    assert_eq!(primary_contact(&[]), None);
}

#[test]
fn the_trigger_property_and_a_deals_currency_are_read() {
    let firing = Firing::PropertyChange {
        property: "dealstage".into(),
        value: Some("won".into()),
    };
    let props = object_properties(ObjectType::Deals, &[], firing_property(&firing));
    assert_eq!(
        props,
        [
            "hs_object_id",
            "dealstage",
            DEAL_CURRENCY,
            MERGED_IDS_PROPERTY
        ]
    );
    let trigger = trigger_of(&firing);
    assert_eq!(trigger, Some(("dealstage".into(), Some("won".into()))));
    assert_eq!(
        object_properties(ObjectType::Contacts, &[], None),
        ["hs_object_id", MERGED_IDS_PROPERTY]
    );
    assert_eq!(trigger_of(&Firing::Creation), None);
    assert_eq!(
        line_item_properties(&BTreeSet::new()),
        [POSITION, ITEM_CURRENCY]
    );
}
