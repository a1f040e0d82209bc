//! Deterministic portal contents from a size and a seed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::model::{ObjectType, Portal, iso};
use super::schema::{self, PIPELINES};
use crate::PortalSeed;

const FIRST: [&str; 12] = [
    "Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "John",
    "Radia", "Edsger",
];
const LAST: [&str; 12] = [
    "Lovelace", "Hopper", "Turing", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie",
    "Allen", "Backus", "Perlman", "Dijkstra",
];
const WORDS: [&str; 10] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
];
const SUFFIX: [&str; 4] = ["Corp", "Labs", "Industries", "GmbH"];
const PLACES: [(&str, &str, &str); 6] = [
    ("Berlin", "Germany", "10115"),
    ("Paris", "France", "75001"),
    ("Austin", "United States", "73301"),
    ("Toronto", "Canada", "M5H 2N2"),
    ("Sydney", "Australia", "2000"),
    ("Osaka", "Japan", "530-0001"),
];
const PRODUCTS: [(&str, &str, u32); 6] = [
    ("Anvil", "SKU-ANVIL", 1000),
    ("Rocket Skates", "SKU-SKATES", 4999),
    ("Giant Magnet", "SKU-MAGNET", 2550),
    ("Bird Seed", "SKU-SEED", 199),
    ("Portable Hole", "SKU-HOLE", 9900),
    ("Tornado Kit", "SKU-TORNADO", 15000),
];

/// The instant all seeded timestamps are relative to.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Formats cents as a HubSpot amount string (`"1500.00"`).
pub fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A click id like impact.com's: 22 case-sensitive alphanumerics.
pub fn click_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..22)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn props<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Builds a portal's records. The same `(seed, PortalSeed)` always gives the
/// same ids, values and timestamps.
pub(crate) fn seed_portal(seed: u64, spec: &PortalSeed) -> Portal {
    let mut portal = Portal::new(spec.portal_id, spec.private_app_token.clone());
    let mut rng = StdRng::seed_from_u64(seed ^ spec.portal_id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let start = epoch();
    let when = |rng: &mut StdRng| start + Duration::minutes(rng.random_range(0..60 * 24 * 90));

    let mut companies = Vec::new();
    for i in 0..spec.companies {
        let word = WORDS[i % WORDS.len()];
        let name = format!(
            "{word} {} {}",
            SUFFIX.choose(&mut rng).copied().unwrap_or("Corp"),
            i + 1
        );
        let (city, country, _) = *PLACES.choose(&mut rng).unwrap_or(&PLACES[0]);
        let p = props([
            ("name", name),
            (
                "domain",
                format!("{}{}.example.com", word.to_lowercase(), i + 1),
            ),
            ("city", city.to_string()),
            ("country", country.to_string()),
            (
                schema::CUSTOM_COMPANY_PARTNER_ID,
                format!("P{:05}", rng.random_range(1..100_000)),
            ),
        ]);
        let at = when(&mut rng);
        let id = portal.insert(ObjectType::Companies, p, at);
        touch(
            &mut portal,
            ObjectType::Companies,
            id,
            at + Duration::minutes(rng.random_range(0..60 * 24)),
        );
        companies.push(id);
    }

    let mut contacts = Vec::new();
    for i in 0..spec.contacts {
        let first = FIRST.choose(&mut rng).copied().unwrap_or("Ada");
        let last = LAST.choose(&mut rng).copied().unwrap_or("Lovelace");
        let (city, country, zip) = *PLACES.choose(&mut rng).unwrap_or(&PLACES[0]);
        let company = companies.choose(&mut rng).copied();
        let company_name = company
            .and_then(|c| portal.get(ObjectType::Companies, c))
            .and_then(|c| c.properties.get("name").cloned())
            .unwrap_or_default();
        let mut p = props([
            (
                "email",
                format!(
                    "{}.{}{}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    i + 1
                ),
            ),
            ("firstname", first.to_string()),
            ("lastname", last.to_string()),
            ("company", company_name),
            ("city", city.to_string()),
            ("country", country.to_string()),
            ("zip", zip.to_string()),
            (
                "lifecyclestage",
                schema::LIFECYCLE_STAGES[rng.random_range(0..6)].to_string(),
            ),
            (
                "hs_lead_status",
                schema::LEAD_STATUSES
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("NEW")
                    .to_string(),
            ),
        ]);
        // Four contacts in five came through an impact.com link.
        if rng.random_bool(0.8) {
            p.insert(schema::CUSTOM_CONTACT_CLICK_ID.into(), click_id(&mut rng));
        }
        let at = when(&mut rng);
        let id = portal.insert(ObjectType::Contacts, p, at);
        touch(
            &mut portal,
            ObjectType::Contacts,
            id,
            at + Duration::minutes(rng.random_range(0..60 * 24)),
        );
        if let Some(c) = company {
            portal.associate((ObjectType::Contacts, id), (ObjectType::Companies, c));
        }
        contacts.push(id);
    }

    for i in 0..spec.deals {
        let pipeline = if rng.random_bool(0.8) {
            &PIPELINES[0]
        } else {
            &PIPELINES[1]
        };
        let stage = pipeline
            .stages
            .choose(&mut rng)
            .unwrap_or(&pipeline.stages[0]);
        let contact = contacts.choose(&mut rng).copied();
        let at = when(&mut rng);
        let n_items = rng.random_range(1..=3);
        let mut items = Vec::new();
        let mut total = 0u64;
        for _ in 0..n_items {
            let (name, sku, price) = *PRODUCTS.choose(&mut rng).unwrap_or(&PRODUCTS[0]);
            let qty: u64 = rng.random_range(1..=5);
            total += u64::from(price) * qty;
            items.push(props([
                ("name", name.to_string()),
                ("hs_sku", sku.to_string()),
                ("price", money(u64::from(price))),
                ("quantity", qty.to_string()),
                ("amount", money(u64::from(price) * qty)),
                ("hs_line_item_currency_code", "USD".to_string()),
                ("description", format!("{name}, as seen on TV")),
            ]));
        }
        let mut p = props([
            (
                "dealname",
                format!("{} deal {}", WORDS[i % WORDS.len()], i + 1),
            ),
            ("pipeline", pipeline.id.to_string()),
            ("dealstage", stage.id.to_string()),
            ("amount", money(total)),
            (
                "closedate",
                iso(at + Duration::days(rng.random_range(1..60))),
            ),
            (
                "hs_deal_stage_probability",
                format!("{:?}", stage.probability),
            ),
            (
                "dealtype",
                if rng.random_bool(0.7) {
                    "newbusiness"
                } else {
                    "existingbusiness"
                }
                .to_string(),
            ),
        ]);
        if let Some(c) = contact {
            p.insert(schema::CUSTOM_DEAL_CONTACT_ID.into(), c.to_string());
        }
        let deal = portal.insert(ObjectType::Deals, p, at);
        touch(
            &mut portal,
            ObjectType::Deals,
            deal,
            at + Duration::minutes(rng.random_range(0..60 * 24)),
        );
        for item in items {
            let li = portal.insert(ObjectType::LineItems, item, at);
            portal.associate((ObjectType::Deals, deal), (ObjectType::LineItems, li));
        }
        if let Some(c) = contact {
            portal.associate((ObjectType::Deals, deal), (ObjectType::Contacts, c));
            for company in portal.associated((ObjectType::Contacts, c), ObjectType::Companies) {
                portal.associate((ObjectType::Deals, deal), (ObjectType::Companies, company));
            }
        }
    }
    portal
}

/// Moves a seeded record's last-modified time (no webhook: seeding is history).
fn touch(portal: &mut Portal, t: ObjectType, id: u64, at: DateTime<Utc>) {
    if let Some(o) = portal.get_mut(t, id) {
        o.updated_at = at;
        o.properties
            .insert(t.last_modified_property().into(), iso(at));
    }
}
