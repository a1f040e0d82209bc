//! Deserialisers of settings given as text (environment) or natively (TOML).

use serde::Deserialize;

/// Accepts a value either in its native form (TOML, defaults) or as text
/// (environment variables are always text).
pub(super) fn lenient<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + std::str::FromStr,
    T::Err: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Native(T),
        Text(String),
    }
    match Either::<T>::deserialize(de)? {
        Either::Native(v) => Ok(v),
        Either::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// An optional value given as text or as a number (TOML), kept as text.
pub(super) fn text_or_number<'de, D>(de: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    Ok(Option::<Either>::deserialize(de)?.map(|v| match v {
        Either::Number(n) => n.to_string(),
        Either::Text(t) => t,
    }))
}
