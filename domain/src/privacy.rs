//! Pure rules of erasure: which conversion fields carry personal data,
//! which values are the person's, and how text is scrubbed of them.

use std::collections::BTreeSet;

use serde_json::Value;
use sha1::Digest as _;

/// What an erased value is replaced with.
pub const ERASED: &str = "[erased]";

/// Conversion parameters that identify no one, kept after erasure (unless a
/// value carries one of the person's values): what deduplication, the audit
/// and impact.com's reconciliation need.
const KEPT: &[&str] = &[
    "CampaignId",
    "ActionTrackerId",
    "EventTypeId",
    "EventTypeCode",
    "EventDate",
    "OrderId",
    "CustomerId",
    "CustomProfileId",
    "MediaPartnerId",
    "CurrencyCode",
    "Amount",
    "OrderSubTotalPostDiscount",
    "OrderSubtotal",
    "OrderDiscount",
    "OrderShipping",
    "OrderTax",
    "OrderPromoCode",
    "PaymentType",
];

/// Item fields (`ItemSku1`...): product data, kept.
const KEPT_ITEM_PREFIXES: &[&str] = &[
    "ItemSku",
    "ItemName",
    "ItemCategory",
    "ItemSubCategory",
    "ItemQuantity",
    "ItemPrice",
    "ItemSubTotal",
    "ItemDiscount",
    "ItemPromoCode",
    "ItemBrand",
];

/// Fields describing the customer: erased from a conversion attributed to
/// the person even when it is another object's (a deal's) conversion.
const CUSTOMER_FIELDS: &[&str] = &[
    "CustomerEmail",
    "ClickId",
    "CustomerCity",
    "CustomerPostCode",
    "CustomerCountry",
    "CustomerRegion",
    "CustomerStatus",
    "IpAddress",
    "UserAgent",
];

/// HubSpot contact properties whose values describe the record, not the
/// person (not collected as personal values).
const NOT_PERSONAL_PROPERTIES: &[&str] = &[
    "hs_object_id",
    "lifecyclestage",
    "hs_lead_status",
    "createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
    "hs_createdate",
];

/// Whether a conversion parameter is kept (identifies no one).
pub fn is_kept(name: &str) -> bool {
    KEPT.contains(&name)
        || KEPT_ITEM_PREFIXES.iter().any(|p| {
            name.strip_prefix(p)
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Whether a property's values are the person's.
pub fn is_personal_property(name: &str) -> bool {
    !NOT_PERSONAL_PROPERTIES.contains(&name)
}

/// The person's values found so far (lower-cased, distinct).
#[derive(Debug, Default, Clone)]
pub struct PersonalValues {
    values: BTreeSet<String>,
}

impl PersonalValues {
    /// Adds a value (too short or purely numeric short ones are not
    /// distinctive enough to search for). An e-mail address also adds the
    /// SHA-1 and SHA-256 hashes impact.com would have received.
    pub fn add(&mut self, value: &str) {
        let v = value.trim();
        let numeric = v
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
        if v.chars().count() < 3 || (numeric && v.len() < 6) || v == ERASED {
            return;
        }
        if v.contains('@') {
            let norm = v.to_lowercase();
            self.values
                .insert(hex::encode(sha1::Sha1::digest(norm.as_bytes())));
            self.values
                .insert(hex::encode(sha2::Sha256::digest(norm.as_bytes())));
        }
        self.values.insert(v.to_lowercase());
    }

    /// Adds every string value of a JSON document (objects, arrays).
    pub fn add_json(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.add(s),
            Value::Array(a) => a.iter().for_each(|x| self.add_json(x)),
            Value::Object(m) => m.values().for_each(|x| self.add_json(x)),
            _ => {}
        }
    }

    /// No value known.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values (lower-cased).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str)
    }

    /// Whether `text` contains one of the values (case-insensitively).
    pub fn found_in(&self, text: &str) -> bool {
        let lower = text.to_lowercase();
        self.values.iter().any(|v| lower.contains(v.as_str()))
    }

    /// `text` with every occurrence of a value replaced by [`ERASED`]
    /// (ASCII case-insensitive); `None` when nothing was found.
    pub fn scrub(&self, text: &str) -> Option<String> {
        let mut out = text.to_owned();
        let mut changed = false;
        for v in &self.values {
            loop {
                let hay = out.to_ascii_lowercase();
                let Some(at) = hay.find(&v.to_ascii_lowercase()) else {
                    break;
                };
                // Lengths match: ASCII lower-casing keeps byte offsets.
                out.replace_range(at..at + v.len(), ERASED);
                changed = true;
            }
        }
        changed.then_some(out)
    }

    /// Every string inside a JSON document scrubbed; `None` when unchanged.
    pub fn scrub_json(&self, v: &Value) -> Option<Value> {
        let mut copy = v.clone();
        self.scrub_json_in(&mut copy).then_some(copy)
    }

    fn scrub_json_in(&self, v: &mut Value) -> bool {
        match v {
            Value::String(s) => match self.scrub(s) {
                Some(n) => {
                    *s = n;
                    true
                }
                None => false,
            },
            Value::Array(a) => a.iter_mut().fold(false, |c, x| self.scrub_json_in(x) | c),
            Value::Object(m) => m.values_mut().fold(false, |c, x| self.scrub_json_in(x) | c),
            _ => false,
        }
    }

    /// Collects the values of a conversion payload's personal fields.
    pub fn add_payload(&mut self, params: &[(String, String)]) {
        for (k, v) in params {
            if !is_kept(k) {
                self.add(v);
            }
        }
    }
}

/// The payload with personal fields erased: of the person's own
/// conversion (`own`), everything not kept; of another object's conversion
/// attributed to the person, the customer fields. Kept fields carrying a
/// personal value are erased too, except `OrderId` (see [`super`]).
pub fn scrub_payload(
    params: &[(String, String)],
    own: bool,
    personal: &PersonalValues,
) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| {
            let erase = if own {
                !is_kept(k)
            } else {
                CUSTOMER_FIELDS.contains(&k.as_str())
            };
            let carries = k != "OrderId" && personal.found_in(v);
            if (erase || carries) && v != ERASED {
                (k.clone(), ERASED.to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// An event as HubSpot sent it, without the changed property's value.
pub fn scrub_event(event: &Value) -> Value {
    let mut e = event.clone();
    if let Some(m) = e.as_object_mut()
        && m.get("propertyValue").is_some_and(|v| !v.is_null())
    {
        m.insert("propertyValue".into(), Value::String(ERASED.into()));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn own_payload_keeps_only_what_identifies_no_one() {
        let mut pv = PersonalValues::default();
        pv.add("Jane.Doe@Example.com");
        pv.add("Jane");
        let payload = p(&[
            ("CampaignId", "1000"),
            ("OrderId", "501_NEW"),
            ("CustomerEmail", "abc"),
            ("ClickId", "CLICK-XYZ"),
            ("Text1", "Jane"),
            ("ItemSku1", "SKU-1"),
            ("CustomerId", "jane.doe@example.com"),
        ]);
        let out = scrub_payload(&payload, true, &pv);
        let get = |k: &str| out.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CampaignId"), Some("1000"));
        assert_eq!(get("OrderId"), Some("501_NEW"));
        assert_eq!(get("ItemSku1"), Some("SKU-1"));
        for k in ["CustomerEmail", "ClickId", "Text1", "CustomerId"] {
            assert_eq!(get(k), Some(ERASED), "{k}");
        }
        let other = scrub_payload(&payload, false, &pv);
        assert!(
            other.contains(&("Text1".into(), ERASED.into())),
            "carries a value"
        );
        assert!(other.contains(&("ClickId".into(), ERASED.into())));
    }

    #[test]
    fn email_hashes_are_personal_values_and_text_is_scrubbed() {
        let mut pv = PersonalValues::default();
        pv.add(" Jane@Example.com ");
        let sha1 = hex::encode(sha1::Sha1::digest(b"jane@example.com"));
        assert!(pv.found_in(&format!("CustomerEmail={sha1}")));
        assert_eq!(
            pv.scrub("bad value 'JANE@example.com' for X").as_deref(),
            Some("bad value '[erased]' for X")
        );
        assert_eq!(pv.scrub("nothing here"), None);
        pv.add("12");
        pv.add("1500");
        assert!(
            !pv.found_in("1500.00 12"),
            "short numbers are not searched for"
        );
    }

    #[test]
    fn item_fields_are_kept_by_index() {
        assert!(is_kept("ItemPrice12"));
        assert!(!is_kept("ItemPrice"));
        assert!(!is_kept("Text3"));
    }
}
