//! Size limits of a portal document: far above what a real portal uses
//! (a few dozen mappings, a handful of trigger properties), low enough that
//! one tenant cannot make every save, load and worker cache of its portal
//! expensive for everyone. Enforced by [`PortalDocument::validate`], hence
//! by every way a document is applied: `worker portal apply`, the JSON API
//! and the website.

use super::PortalDocument;

/// The largest document, as JSON without secrets (256 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Mapping rows per object type.
pub const MAX_MAPPINGS_PER_OBJECT: usize = 200;
/// Property triggers (`on_change`) per object type.
pub const MAX_TRIGGER_PROPERTIES_PER_OBJECT: usize = 100;
/// Values of one property trigger's `values` condition.
pub const MAX_TRIGGER_VALUES: usize = 200;
/// Entries of one mapping's `value_map`.
pub const MAX_VALUE_MAP_ENTRIES: usize = 500;

/// Every limit `doc` exceeds, one message each (path first).
pub(super) fn check(doc: &PortalDocument, errors: &mut Vec<String>) {
    for (ty, t) in &doc.triggers {
        let n = t.on_change.len();
        if n > MAX_TRIGGER_PROPERTIES_PER_OBJECT {
            errors.push(format!(
                "triggers.{ty}.on_change: {n} property triggers; at most \
                 {MAX_TRIGGER_PROPERTIES_PER_OBJECT} per object type"
            ));
        }
        for (i, p) in t.on_change.iter().enumerate() {
            let n = p.only_values.as_ref().map_or(0, Vec::len);
            if n > MAX_TRIGGER_VALUES {
                errors.push(format!(
                    "triggers.{ty}.on_change[{i}].values: {n} values; at most {MAX_TRIGGER_VALUES}"
                ));
            }
        }
    }
    for (ty, rows) in &doc.mappings {
        let n = rows.len();
        if n > MAX_MAPPINGS_PER_OBJECT {
            errors.push(format!(
                "mappings.{ty}: {n} mappings; at most {MAX_MAPPINGS_PER_OBJECT} per object type"
            ));
        }
        for (i, row) in rows.iter().enumerate() {
            let n = row.value_map.as_ref().map_or(0, |m| m.len());
            if n > MAX_VALUE_MAP_ENTRIES {
                errors.push(format!(
                    "mappings.{ty}[{i}].value_map: {n} entries; at most {MAX_VALUE_MAP_ENTRIES}"
                ));
            }
        }
    }
    // Secrets are not serialised: the size is the configuration's.
    let bytes = serde_json::to_vec(doc).map_or(usize::MAX, |v| v.len());
    if bytes > MAX_DOCUMENT_BYTES {
        errors.push(format!(
            "document: {} KiB; at most {} KiB",
            bytes.div_ceil(1024),
            MAX_DOCUMENT_BYTES / 1024
        ));
    }
}

/// The text of a document is refused before parsing when it is larger than
/// a document may be (with room for secrets and formatting).
pub(super) fn check_text(text: &str) -> Result<(), String> {
    if text.len() > 2 * MAX_DOCUMENT_BYTES {
        return Err(format!(
            "document: {} KiB of text; a document is at most {} KiB",
            text.len().div_ceil(1024),
            MAX_DOCUMENT_BYTES / 1024
        ));
    }
    Ok(())
}
