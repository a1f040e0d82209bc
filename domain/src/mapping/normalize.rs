//! Value normalisation for impact.com: dates to ISO-8601 UTC, plain decimal
//! numbers, integers, hashed e-mail addresses, bounded text.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use sha1::{Digest, Sha1};

use super::FieldKind;

/// Normalises a raw HubSpot value for a field of `kind`, or says why it cannot.
pub fn normalize(kind: FieldKind, raw: &str) -> Result<String, String> {
    let value = raw.trim();
    match kind {
        FieldKind::Text(max) => {
            let len = value.chars().count();
            if len > max {
                Err(format!("{len} characters, at most {max} allowed"))
            } else {
                Ok(value.to_owned())
            }
        }
        FieldKind::Date => parse_date(value)
            .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
            .ok_or_else(|| {
                format!("{value:?} is not a date (epoch milliseconds or ISO-8601 expected)")
            }),
        FieldKind::Decimal => decimal(value).ok_or_else(|| format!("{value:?} is not a number")),
        FieldKind::Money => money(value).ok_or_else(|| format!("{value:?} is not an amount")),
        FieldKind::Integer => integer(value).ok_or_else(|| format!("{value:?} is not an integer")),
        FieldKind::EmailHash => Ok(email_hash(value)),
    }
}

/// Epoch milliseconds, RFC 3339, ISO without offset (UTC) or a plain date.
fn parse_date(value: &str) -> Option<DateTime<Utc>> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = value.parse().ok()?;
        return DateTime::from_timestamp_millis(ms);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(value) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(value, fmt) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// A plain decimal (`-12.50`): kept as written; other numeric forms
/// (`1.5E3`, `+7`) rewritten plainly.
fn decimal(value: &str) -> Option<String> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let plain = match digits.split_once('.') {
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && !frac.is_empty()
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
    };
    if plain {
        return Some(value.to_owned());
    }
    let f: f64 = value.parse().ok()?;
    f.is_finite().then(|| format_f64(f))
}

/// An amount: a plain decimal with at most 2 decimals (rounded beyond).
fn money(value: &str) -> Option<String> {
    let d = decimal(value)?;
    match d.split_once('.') {
        Some((_, frac)) if frac.len() > 2 => {
            let f: f64 = d.parse().ok()?;
            Some(format!("{f:.2}"))
        }
        _ => Some(d),
    }
}

fn format_f64(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// An integer; `2.0` is accepted as `2`.
fn integer(value: &str) -> Option<String> {
    if let Ok(i) = value.parse::<i64>() {
        return Some(i.to_string());
    }
    let f: f64 = value.parse().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9e15).then(|| format!("{}", f as i64))
}

/// SHA-1 hex of the trimmed, lower-cased address; a value that already is a
/// SHA-1 or SHA-256 hex digest is kept (lower-cased).
fn email_hash(value: &str) -> String {
    let lower = value.to_lowercase();
    let is_hex = lower.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex && matches!(lower.len(), 40 | 64) {
        return lower;
    }
    hex::encode(Sha1::digest(lower.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_iso_utc() {
        let d = |v| normalize(FieldKind::Date, v);
        assert_eq!(d("1564113600000").as_deref(), Ok("2019-07-26T04:00:00Z"));
        assert_eq!(
            d("2026-08-01T23:55:24.123Z").as_deref(),
            Ok("2026-08-01T23:55:24Z")
        );
        assert_eq!(
            d("2026-05-01T10:30:01-07:00").as_deref(),
            Ok("2026-05-01T17:30:01Z")
        );
        assert_eq!(d("2026-05-01").as_deref(), Ok("2026-05-01T00:00:00Z"));
        assert_eq!(
            d("2026-05-01T10:30:01").as_deref(),
            Ok("2026-05-01T10:30:01Z")
        );
        assert!(d("yesterday").is_err());
    }

    #[test]
    fn numbers() {
        let n = |v| normalize(FieldKind::Decimal, v);
        assert_eq!(n("1500.00").as_deref(), Ok("1500.00"));
        assert_eq!(n(" 10 ").as_deref(), Ok("10"));
        assert_eq!(n("1.5E3").as_deref(), Ok("1500"));
        assert_eq!(n("-0.25").as_deref(), Ok("-0.25"));
        assert!(n("12abc").is_err());
        assert!(n("").is_err());
        let i = |v| normalize(FieldKind::Integer, v);
        assert_eq!(i("2").as_deref(), Ok("2"));
        assert_eq!(i("2.0").as_deref(), Ok("2"));
        assert!(i("1.5").is_err());
        let m = |v| normalize(FieldKind::Money, v);
        assert_eq!(m("1500.00").as_deref(), Ok("1500.00"));
        assert_eq!(m("19.999").as_deref(), Ok("20.00"));
        assert_eq!(m("7").as_deref(), Ok("7"));
    }

    #[test]
    fn emails_are_hashed_once() {
        let h = normalize(FieldKind::EmailHash, "  Jane.Doe@Example.COM ").expect("hash");
        assert_eq!(h, hex::encode(Sha1::digest(b"jane.doe@example.com")));
        assert_eq!(
            normalize(FieldKind::EmailHash, &h).as_deref(),
            Ok(h.as_str())
        );
    }

    #[test]
    fn text_limits() {
        assert!(normalize(FieldKind::Text(3), "abcd").is_err());
        assert_eq!(normalize(FieldKind::Text(3), " ab ").as_deref(), Ok("ab"));
    }
}
