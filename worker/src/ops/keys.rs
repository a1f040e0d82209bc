//! `worker keys status|rotate`: which key sealed each stored secret, and
//! re-encryption under the current key without downtime.

use domain::events::PortalId;
use shared::{crypto::SecretCipher, db::portals::secret_context};
use sqlx::{AssertSqlSafe, PgPool, Row};

/// The encrypted columns of `portals`.
pub const SECRET_COLUMNS: [&str; 4] = [
    "hubspot_private_token",
    "hubspot_access_token",
    "hubspot_refresh_token",
    "impact_auth_token",
];

/// Stored secrets per key id.
pub async fn status(pool: &PgPool) -> anyhow::Result<std::collections::BTreeMap<u8, u64>> {
    let mut counts = std::collections::BTreeMap::new();
    for column in SECRET_COLUMNS {
        // Safe: `column` comes from the fixed list above.
        let sql = format!("SELECT {column} AS v FROM portals WHERE {column} IS NOT NULL");
        for row in sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await? {
            let v: Vec<u8> = row.try_get("v")?;
            if let Some(id) = SecretCipher::stored_key_id(&v) {
                *counts.entry(id).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}

/// Re-encrypts every secret not sealed with the current key. Each value is
/// swapped only if it is still the one read (a concurrent write already uses
/// the current key), so processes keep running throughout. Returns how many
/// values were re-encrypted.
pub async fn rotate(pool: &PgPool, cipher: &SecretCipher) -> anyhow::Result<u64> {
    let mut rotated = 0;
    for column in SECRET_COLUMNS {
        let select =
            format!("SELECT portal_id, {column} AS v FROM portals WHERE {column} IS NOT NULL");
        let update =
            format!("UPDATE portals SET {column} = $1 WHERE portal_id = $2 AND {column} = $3");
        for row in sqlx::query(AssertSqlSafe(select)).fetch_all(pool).await? {
            let portal: i64 = row.try_get("portal_id")?;
            let old: Vec<u8> = row.try_get("v")?;
            if SecretCipher::stored_key_id(&old) == Some(cipher.key_id()) {
                continue;
            }
            let context = secret_context(PortalId(portal as u64), column);
            let plain = cipher.decrypt(&old, &context)?;
            let new = cipher.encrypt(secrecy::ExposeSecret::expose_secret(&plain), &context);
            let done = sqlx::query(AssertSqlSafe(update.clone()))
                .bind(new)
                .bind(portal)
                .bind(old)
                .execute(pool)
                .await?;
            rotated += done.rows_affected();
        }
    }
    Ok(rotated)
}

/// Start-up check: the configured keys open the secrets already stored (one
/// value per column is enough to catch a wrong or replaced key). A key that
/// cannot is a clear configuration error, not a failure per event later.
pub async fn check_decrypts(pool: &PgPool, cipher: &SecretCipher) -> anyhow::Result<()> {
    for column in SECRET_COLUMNS {
        // Safe: `column` comes from the fixed list above.
        let sql = format!(
            "SELECT portal_id, {column} AS v FROM portals WHERE {column} IS NOT NULL ORDER BY portal_id LIMIT 1"
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql)).fetch_optional(pool).await? else {
            continue;
        };
        let portal: i64 = row.try_get("portal_id")?;
        let sealed: Vec<u8> = row.try_get("v")?;
        if cipher
            .decrypt(&sealed, &secret_context(PortalId(portal as u64), column))
            .is_err()
        {
            let key_id = SecretCipher::stored_key_id(&sealed).unwrap_or(0);
            anyhow::bail!(
                "CONNECTOR_ENCRYPTION_KEY cannot decrypt the stored secrets (portal {portal}, {column}, sealed with key id {key_id}): \
                 the key is wrong or was replaced; set the key they were sealed with, or list it in CONNECTOR_ENCRYPTION_OLD_KEYS"
            );
        }
    }
    Ok(())
}
