//! impact.com's synchronous validation of Conversions and Actions requests.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate};

use crate::ImpactAccount;

mod items;

/// One rejected field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) message: String,
}

pub(crate) fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

const FIXED: [&str; 28] = [
    "CampaignId",
    "ActionTrackerId",
    "EventTypeId",
    "EventTypeCode",
    "EventDate",
    "OrderId",
    "ClickId",
    "CustomerId",
    "CustomProfileId",
    "OrderPromoCode",
    "MediaPartnerId",
    "CurrencyCode",
    "Amount",
    "OrderSubTotalPostDiscount",
    "OrderSubtotal",
    "OrderSubTotal",
    "OrderDiscount",
    "OrderShipping",
    "OrderTax",
    "PaymentType",
    "CustomerCity",
    "CustomerPostCode",
    "CustomerCountry",
    "CustomerRegion",
    "CustomerStatus",
    "CustomerEmail",
    "IpAddress",
    "UserAgent",
];
pub(crate) const ITEM_FIELDS: [&str; 10] = [
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
/// Money fields at order level (besides `Money1..3`).
const ORDER_MONEY: [&str; 7] = [
    "Amount",
    "OrderSubTotalPostDiscount",
    "OrderSubtotal",
    "OrderSubTotal",
    "OrderDiscount",
    "OrderShipping",
    "OrderTax",
];
/// Order totals that must not come with item amounts.
pub(crate) const ORDER_TOTALS: [&str; 4] = [
    "Amount",
    "OrderSubTotalPostDiscount",
    "OrderSubtotal",
    "OrderSubTotal",
];
const ATTRIBUTION: [&str; 5] = [
    "ClickId",
    "CustomerId",
    "CustomProfileId",
    "OrderPromoCode",
    "MediaPartnerId",
];

/// `ItemSku12` → `("ItemSku", 12)`.
pub(crate) fn indexed(name: &str) -> Option<(&str, u32)> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let (prefix, n) = name.split_at(name.len() - digits);
    Some((prefix, n.parse().ok()?))
}

fn known(name: &str) -> bool {
    if FIXED.contains(&name) || name == "Note" {
        return true;
    }
    match indexed(name) {
        Some(("Text", 1..=50))
        | Some(("Numeric", 1..=10))
        | Some(("Money", 1..=3))
        | Some(("Date", 1..=10)) => true,
        Some((p, _)) => ITEM_FIELDS.contains(&p),
        None => false,
    }
}

fn is_money_field(name: &str) -> bool {
    ORDER_MONEY.contains(&name)
        || matches!(
            indexed(name),
            Some(("Money", _)) | Some(("ItemPrice" | "ItemSubTotal" | "ItemDiscount", _))
        )
}

fn decimal(v: &str, max_decimals: usize) -> bool {
    let v = v.strip_prefix('-').unwrap_or(v);
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    !int.is_empty()
        && int.len() <= 8
        && digits(int)
        && digits(frac)
        && frac.len() <= max_decimals
        && !v.ends_with('.')
}

fn iso_datetime(v: &str) -> bool {
    DateTime::parse_from_rfc3339(v).is_ok()
}

/// The conversion's event type, for duplicate detection: trackers by id,
/// codes by name.
pub(crate) fn event_type_key(params: &BTreeMap<String, String>) -> Option<String> {
    let get = |k: &str| params.get(k).filter(|v| !v.is_empty());
    get("ActionTrackerId")
        .or_else(|| get("EventTypeId"))
        .map(|id| format!("id:{id}"))
        .or_else(|| get("EventTypeCode").map(|c| format!("code:{c}")))
}

fn duplicates_and_unknown(params: &[(String, String)], check_unknown: bool) -> Vec<FieldError> {
    let mut seen = HashMap::new();
    let mut errors = Vec::new();
    for (k, _) in params {
        *seen.entry(k.as_str()).or_insert(0) += 1;
        if seen[k.as_str()] == 2 {
            errors.push(err(k, format!("{k} is given more than once")));
        }
        if check_unknown && seen[k.as_str()] == 1 && !known(k) {
            errors.push(err(k, format!("Unknown parameter {k}")));
        }
    }
    errors
}

/// Everything wrong with a conversion, in impact.com's terms; empty when valid.
pub(crate) fn conversion(params: &[(String, String)], account: &ImpactAccount) -> Vec<FieldError> {
    let mut errors = duplicates_and_unknown(params, true);
    let map: BTreeMap<String, String> = params.iter().cloned().collect();
    let get = |k: &str| map.get(k).map(String::as_str).filter(|v| !v.is_empty());

    match get("CampaignId") {
        None => errors.push(err("CampaignId", "CampaignId is required")),
        Some(c) if c.parse::<u64>().is_err() => {
            errors.push(err("CampaignId", "CampaignId must be an integer"))
        }
        Some(c)
            if !account.program_ids.is_empty() && !account.program_ids.iter().any(|p| p == c) =>
        {
            errors.push(err(
                "CampaignId",
                format!("Campaign {c} was not found for this account"),
            ))
        }
        _ => {}
    }
    if get("ActionTrackerId").is_none()
        && get("EventTypeId").is_none()
        && get("EventTypeCode").is_none()
    {
        errors.push(err(
            "EventTypeCode",
            "One of ActionTrackerId, EventTypeId or EventTypeCode is required",
        ));
    }
    for f in ["ActionTrackerId", "EventTypeId"] {
        if get(f).is_some_and(|v| v.parse::<u64>().is_err()) {
            errors.push(err(f, format!("{f} must be an integer")));
        }
    }
    match get("EventDate") {
        None => errors.push(err("EventDate", "EventDate is required")),
        Some("NOW") => {}
        Some(d) if !iso_datetime(d) => errors.push(err(
            "EventDate",
            "EventDate must be an ISO-8601 date and time with a UTC offset (e.g. 2026-05-01T10:30:01-07:00) or NOW",
        )),
        _ => {}
    }
    if get("OrderId").is_none() {
        errors.push(err("OrderId", "OrderId is required"));
    }
    if !ATTRIBUTION.iter().any(|f| get(f).is_some()) {
        errors.push(err(
            "ClickId",
            "At least one of ClickId, CustomerId, CustomProfileId, OrderPromoCode or MediaPartnerId is required",
        ));
    }
    if get("CustomerId").is_some_and(|v| v.contains('@')) {
        errors.push(err(
            "CustomerId",
            "CustomerId must not contain personally identifying information",
        ));
    }
    if let Some(e) = get("CustomerEmail") {
        let hex = e.chars().all(|c| c.is_ascii_hexdigit());
        if !hex || !(e.len() == 40 || e.len() == 64) {
            errors.push(err(
                "CustomerEmail",
                "CustomerEmail must be a SHA-1 or SHA-256 hex hash",
            ));
        }
    }
    for (k, v) in map.iter().filter(|(_, v)| !v.is_empty()) {
        let max = match (k.as_str(), indexed(k)) {
            ("OrderId" | "ClickId" | "EventTypeCode", _) | (_, Some(("Text", _))) => 64,
            ("CustomProfileId", _) => 70,
            ("PaymentType", _) => 32,
            _ => 255,
        };
        if v.chars().count() > max {
            errors.push(err(k, format!("{k} must be at most {max} characters")));
        }
        if is_money_field(k) && !decimal(v, 2) {
            errors.push(err(
                k,
                format!("{k} must be a decimal number with at most 2 decimals"),
            ));
        } else if matches!(indexed(k), Some(("Numeric", _))) && !decimal(v, 8) {
            errors.push(err(k, format!("{k} must be a number")));
        } else if matches!(indexed(k), Some(("ItemQuantity", _))) && v.parse::<u32>().is_err() {
            errors.push(err(k, format!("{k} must be a non-negative integer")));
        } else if matches!(indexed(k), Some(("Date", _)))
            && !iso_datetime(v)
            && NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err()
        {
            errors.push(err(k, format!("{k} must be an ISO-8601 date")));
        }
    }
    let has_money = map.iter().any(|(k, v)| !v.is_empty() && is_money_field(k));
    match get("CurrencyCode") {
        None if has_money => errors.push(err(
            "CurrencyCode",
            "CurrencyCode is required when amounts are sent",
        )),
        Some(c) if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) => {
            errors.push(err(
                "CurrencyCode",
                "CurrencyCode must be an ISO-4217 code such as USD",
            ))
        }
        _ => {}
    }
    errors.extend(items::check(&map));
    errors
}

/// `PUT` (update) or `DELETE` (reversal) of an action.
pub(crate) fn action(params: &[(String, String)], reversal: bool) -> Vec<FieldError> {
    let mut errors = duplicates_and_unknown(params, false);
    let map: BTreeMap<String, String> = params.iter().cloned().collect();
    let get = |k: &str| map.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("ActionId").is_none() && (get("ActionTrackerId").is_none() || get("OrderId").is_none()) {
        errors.push(err(
            "ActionId",
            "ActionId, or ActionTrackerId and OrderId, are required",
        ));
    }
    let required = if reversal {
        "DispositionCode"
    } else {
        "Reason"
    };
    if get(required).is_none() {
        errors.push(err(required, format!("{required} is required")));
    }
    if let Some(a) = get("Amount").filter(|a| !decimal(a, 2)) {
        errors.push(err(
            "Amount",
            format!("Amount must be a decimal number, was {a}"),
        ));
    }
    errors
}
