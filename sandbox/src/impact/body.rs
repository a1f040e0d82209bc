//! Request parameters in the order they arrived: form-encoded bodies (the
//! documented contract), JSON objects, and query strings.

use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;

/// A JSON object's members in document order, values rendered as strings.
struct OrderedObject(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    let v = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    out.push((k, v));
                }
                Ok(OrderedObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses a body by its content type; `Err` names what was malformed.
pub(crate) fn parse(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let is_json = content_type.is_some_and(|c| c.to_ascii_lowercase().contains("json"));
    if is_json {
        if body.is_empty() {
            return Ok(Vec::new());
        }
        return serde_json::from_slice::<OrderedObject>(body)
            .map(|o| o.0)
            .map_err(|e| format!("The JSON body could not be parsed: {e}"));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

/// Query-string parameters (some clients send DELETE parameters there).
pub(crate) fn query(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
