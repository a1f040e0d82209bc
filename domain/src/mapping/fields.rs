//! The impact.com conversion fields a mapping may target, with their kinds
//! and limits (see docs/src/reference/impact.md).

/// How a field's value is normalised and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text of at most this many characters.
    Text(usize),
    /// ISO-8601 date-time, sent in UTC.
    Date,
    /// A plain decimal number.
    Decimal,
    /// A money amount: a plain decimal with at most 2 decimals (requires `CurrencyCode`).
    Money,
    /// An integer.
    Integer,
    /// An e-mail address, sent as the SHA-1 hex of its trimmed, lower-cased form.
    EmailHash,
}

/// A parsed mapping target: an order-level field, or a per-line-item field (`ItemSku{i}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// An order-level field, by its canonical (sent) name.
    Field(String),
    /// A line-item field, by its name without index (`ItemSku`).
    Item(String),
}

/// Order-level fields: (name, kind).
const FIELDS: &[(&str, FieldKind)] = &[
    ("CampaignId", FieldKind::Integer),
    ("ActionTrackerId", FieldKind::Integer),
    ("EventTypeId", FieldKind::Integer),
    ("EventTypeCode", FieldKind::Text(64)),
    ("EventDate", FieldKind::Date),
    ("OrderId", FieldKind::Text(64)),
    ("ClickId", FieldKind::Text(64)),
    ("CustomerId", FieldKind::Text(255)),
    ("CustomProfileId", FieldKind::Text(70)),
    ("OrderPromoCode", FieldKind::Text(255)),
    ("MediaPartnerId", FieldKind::Text(255)),
    ("CurrencyCode", FieldKind::Text(3)),
    ("Amount", FieldKind::Money),
    ("OrderSubTotalPostDiscount", FieldKind::Money),
    ("OrderDiscount", FieldKind::Money),
    ("OrderShipping", FieldKind::Money),
    ("OrderTax", FieldKind::Money),
    ("PaymentType", FieldKind::Text(32)),
    ("CustomerCity", FieldKind::Text(255)),
    ("CustomerPostCode", FieldKind::Text(255)),
    ("CustomerCountry", FieldKind::Text(255)),
    ("CustomerRegion", FieldKind::Text(255)),
    ("CustomerStatus", FieldKind::Text(255)),
    ("CustomerEmail", FieldKind::EmailHash),
    ("IpAddress", FieldKind::Text(255)),
    ("UserAgent", FieldKind::Text(255)),
    ("Note", FieldKind::Text(255)),
];

/// Line-item fields (`{i}` appended): (name, kind).
const ITEM_FIELDS: &[(&str, FieldKind)] = &[
    ("ItemSku", FieldKind::Text(255)),
    ("ItemName", FieldKind::Text(255)),
    ("ItemCategory", FieldKind::Text(255)),
    ("ItemSubCategory", FieldKind::Text(255)),
    ("ItemQuantity", FieldKind::Integer),
    ("ItemPrice", FieldKind::Money),
    ("ItemSubTotal", FieldKind::Money),
    ("ItemDiscount", FieldKind::Money),
    ("ItemPromoCode", FieldKind::Text(255)),
    ("ItemBrand", FieldKind::Text(255)),
];

/// Older names accepted as targets and the names actually sent. The seed's
/// deal table maps `amount → OrderSubTotal`; impact.com's current reference
/// calls that field `OrderSubTotalPostDiscount`.
const ALIASES: &[(&str, &str)] = &[
    ("OrderSubTotal", "OrderSubTotalPostDiscount"),
    ("OrderSubtotal", "OrderSubTotalPostDiscount"),
];

/// Numbered custom fields: (prefix, highest number, kind).
const NUMBERED: &[(&str, u32, FieldKind)] = &[
    ("Text", 50, FieldKind::Text(64)),
    ("Numeric", 10, FieldKind::Decimal),
    ("Money", 3, FieldKind::Money),
    ("Date", 10, FieldKind::Date),
];

/// Fields that identify the event type (one is required).
pub const EVENT_TYPE_FIELDS: [&str; 3] = ["EventTypeCode", "ActionTrackerId", "EventTypeId"];
/// Fields that attribute the conversion to a partner (one is required).
pub const ATTRIBUTION_FIELDS: [&str; 5] = [
    "ClickId",
    "CustomerId",
    "CustomProfileId",
    "OrderPromoCode",
    "MediaPartnerId",
];
/// Order-level money fields that must not be sent together with item amounts.
pub const ORDER_AMOUNT_FIELDS: [&str; 2] = ["Amount", "OrderSubTotalPostDiscount"];
/// Item money fields.
pub const ITEM_AMOUNT_FIELDS: [&str; 2] = ["ItemPrice", "ItemSubTotal"];

/// Every target a mapping may name, as written in a document: order-level
/// fields, numbered custom fields (`Text1`..) and line-item fields (`ItemSku{i}`).
pub fn target_names() -> Vec<String> {
    let mut out: Vec<String> = FIELDS.iter().map(|(n, _)| (*n).to_owned()).collect();
    for (prefix, max, _) in NUMBERED {
        out.extend((1..=*max).map(|i| format!("{prefix}{i}")));
    }
    out.extend(ITEM_FIELDS.iter().map(|(n, _)| format!("{n}{{i}}")));
    out
}

impl Target {
    /// Parses a target as written in a document (`EventTypeCode`, `ItemSku{i}`),
    /// or explains why it is not an impact.com field.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(base) = text.strip_suffix("{i}") {
            return match ITEM_FIELDS.iter().find(|(n, _)| *n == base) {
                Some((n, _)) => Ok(Self::Item((*n).to_owned())),
                None => Err(unknown(text)),
            };
        }
        if ITEM_FIELDS.iter().any(|(n, _)| text.starts_with(n)) {
            return Err(format!(
                "{text:?} is a line-item field: write it with {{i}} (e.g. \"ItemSku{{i}}\") \
                 and map it from a line_item{{i}}.<property> source"
            ));
        }
        if let Some((_, sent)) = ALIASES.iter().find(|(a, _)| *a == text) {
            return Ok(Self::Field((*sent).to_owned()));
        }
        if kind_of_field(text).is_some() {
            return Ok(Self::Field(text.to_owned()));
        }
        Err(unknown(text))
    }

    /// The document form (`ItemSku{i}` for items).
    pub fn display(&self) -> String {
        match self {
            Self::Field(n) => n.clone(),
            Self::Item(n) => format!("{n}{{i}}"),
        }
    }

    /// The field's kind.
    pub fn kind(&self) -> FieldKind {
        match self {
            Self::Field(n) => kind_of_field(n).unwrap_or(FieldKind::Text(255)),
            Self::Item(n) => ITEM_FIELDS
                .iter()
                .find(|(f, _)| f == n)
                .map_or(FieldKind::Text(255), |(_, k)| *k),
        }
    }
}

/// The kind of an order-level field name (canonical names only).
fn kind_of_field(name: &str) -> Option<FieldKind> {
    if let Some((_, k)) = FIELDS.iter().find(|(n, _)| *n == name) {
        return Some(*k);
    }
    NUMBERED.iter().find_map(|(prefix, max, kind)| {
        let n: u32 = name.strip_prefix(prefix)?.parse().ok()?;
        let digits = name.len() - prefix.len();
        (n >= 1 && n <= *max && digits == n.to_string().len()).then_some(*kind)
    })
}

fn unknown(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let all = FIELDS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .chain(ALIASES.iter().map(|(a, _)| (*a).to_owned()))
        .chain(ITEM_FIELDS.iter().map(|(n, _)| format!("{n}{{i}}")))
        .chain(NUMBERED.iter().map(|(p, _, _)| format!("{p}1")));
    for name in all {
        if name.to_ascii_lowercase() == lower {
            return format!("unknown impact.com field {text:?} (did you mean {name:?}?)");
        }
    }
    format!(
        "unknown impact.com field {text:?}; expected e.g. EventTypeCode, EventDate, OrderId, \
         CustomerId, ClickId, Text1..Text50, Date1..Date10, ItemSku{{i}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_targets() {
        assert_eq!(
            Target::parse("EventTypeCode"),
            Ok(Target::Field("EventTypeCode".into()))
        );
        assert_eq!(
            Target::parse("ItemSku{i}"),
            Ok(Target::Item("ItemSku".into()))
        );
        assert_eq!(
            Target::parse("OrderSubTotal"),
            Ok(Target::Field("OrderSubTotalPostDiscount".into()))
        );
        assert_eq!(
            Target::parse("Text50").map(|t| t.kind()),
            Ok(FieldKind::Text(64))
        );
        assert_eq!(
            Target::parse("Date3").map(|t| t.kind()),
            Ok(FieldKind::Date)
        );
        assert!(Target::parse("Text51").is_err());
        assert!(Target::parse("Text01").is_err());
        assert!(Target::parse("Text0").is_err());
    }

    #[test]
    fn explains_mistakes() {
        let e = Target::parse("eventtypecode").expect_err("case");
        assert!(e.contains("did you mean \"EventTypeCode\""), "{e}");
        let e = Target::parse("ItemSku1").expect_err("indexed");
        assert!(e.contains("{i}"), "{e}");
        let e = Target::parse("Whatever").expect_err("unknown");
        assert!(e.contains("unknown impact.com field"), "{e}");
    }
}
