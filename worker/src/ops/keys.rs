//! `worker keys status|rotate`: which key sealed each stored secret, and
//! re-encryption under the current key without downtime.

use domain::events::PortalId;
pub use shared::db::secrets::SECRET_COLUMNS;
use shared::{
    crypto::SecretCipher,
    db::{portals::secret_context, secrets},
};
use sqlx::PgPool;

/// Stored secrets per key id.
pub async fn status(pool: &PgPool) -> anyhow::Result<std::collections::BTreeMap<u8, u64>> {
    let mut counts = std::collections::BTreeMap::new();
    for column in SECRET_COLUMNS {
        for (_, v) in secrets::sealed(pool, column).await? {
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
        for (portal, old) in secrets::sealed(pool, column).await? {
            if SecretCipher::stored_key_id(&old) == Some(cipher.key_id()) {
                continue;
            }
            let context = secret_context(PortalId(portal as u64), column);
            let plain = cipher.decrypt(&old, &context)?;
            let new = cipher.encrypt(secrecy::ExposeSecret::expose_secret(&plain), &context);
            rotated += secrets::swap_sealed(pool, column, portal, &old, &new).await?;
        }
    }
    Ok(rotated)
}

/// Start-up check: the configured keys open the secrets already stored (one
/// value per column is enough to catch a wrong or replaced key). A key that
/// cannot is a clear configuration error, not a failure per event later.
pub async fn check_decrypts(pool: &PgPool, cipher: &SecretCipher) -> anyhow::Result<()> {
    for column in SECRET_COLUMNS {
        let Some((portal, sealed)) = secrets::first_sealed(pool, column).await? else {
            continue;
        };
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
