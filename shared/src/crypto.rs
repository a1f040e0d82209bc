//! Secrets at rest: AES-256-GCM with a random 96-bit nonce per value.
//!
//! Stored layout: `key_id (1 byte) || nonce (12 bytes) || ciphertext+tag`.
//! The key id says which key sealed a value, so keys rotate without
//! downtime: deploy the new key (`CONNECTOR_ENCRYPTION_KEY`, with a new
//! `CONNECTOR_ENCRYPTION_KEY_ID`) with the old one kept for reading
//! (`CONNECTOR_ENCRYPTION_OLD_KEYS=1:<base64>`), re-encrypt what is stored
//! (`worker keys rotate`), then drop the old key.
//! Each value is bound to where it is stored (associated data such as
//! `portal:62515:impact_auth_token`), so a ciphertext copied into another
//! portal's row does not decrypt.

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// Id of the key when `CONNECTOR_ENCRYPTION_KEY_ID` is not set.
pub const CURRENT_KEY_ID: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why a key could not be loaded or a value not decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// `CONNECTOR_ENCRYPTION_KEY` is unset.
    #[error(
        "CONNECTOR_ENCRYPTION_KEY is not set: it must be the base64 of 32 random bytes \
         (e.g. `openssl rand -base64 32`)"
    )]
    MissingKey,
    /// The key is not base64 of 32 bytes.
    #[error("CONNECTOR_ENCRYPTION_KEY is malformed: {0}; expected the base64 of 32 random bytes")]
    BadKey(String),
    /// A stored value is truncated, was encrypted with another key, or was
    /// moved from another row.
    #[error("a stored secret could not be decrypted ({0}): wrong CONNECTOR_ENCRYPTION_KEY?")]
    Decrypt(&'static str),
}

/// Encrypts and decrypts stored secrets. Cheap to clone.
#[derive(Clone)]
pub struct SecretCipher {
    key_id: u8,
    cipher: Aes256Gcm,
    /// Earlier keys, kept to read values sealed before a rotation.
    previous: Vec<(u8, Aes256Gcm)>,
    /// Key of [`SecretCipher::keyed_hash`], derived from the current key.
    hash_key: [u8; 32],
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCipher")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SecretCipher {
    /// Builds the cipher from the setting (`None` = not configured).
    pub fn from_setting(key: Option<&SecretString>) -> Result<Self, CryptoError> {
        match key.map(|k| k.expose_secret().trim()) {
            None | Some("") => Err(CryptoError::MissingKey),
            Some(k) => Self::from_base64(k),
        }
    }

    /// Builds the cipher from the base64 of a 32-byte key.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| CryptoError::BadKey(format!("not base64 ({e})")))?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey(format!(
                "decodes to {} bytes, not 32",
                bytes.len()
            )));
        }
        let key = Key::<Aes256Gcm>::from_slice(&bytes);
        Ok(Self {
            key_id: CURRENT_KEY_ID,
            cipher: Aes256Gcm::new(key),
            previous: Vec::new(),
            hash_key: hmac_sha256(&bytes, b"connector keyed hash v1"),
        })
    }

    /// The cipher the settings describe: the current key and its id, plus
    /// the old keys that may still have sealed stored values.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Self, CryptoError> {
        let mut c = Self::from_setting(settings.encryption_key.as_ref())?;
        if settings.encryption_key_id == 0 {
            return Err(CryptoError::BadKey(
                "CONNECTOR_ENCRYPTION_KEY_ID must be 1 to 255".into(),
            ));
        }
        c.key_id = settings.encryption_key_id;
        if let Some(old) = &settings.encryption_old_keys {
            for entry in old
                .expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                let (id, key) = entry.split_once(':').ok_or_else(|| {
                    CryptoError::BadKey(
                        "CONNECTOR_ENCRYPTION_OLD_KEYS entries are `id:base64key`".into(),
                    )
                })?;
                let id: u8 = id.trim().parse().ok().filter(|i| *i > 0).ok_or_else(|| {
                    CryptoError::BadKey(
                        "CONNECTOR_ENCRYPTION_OLD_KEYS: key ids are 1 to 255".into(),
                    )
                })?;
                if id == c.key_id {
                    return Err(CryptoError::BadKey(format!(
                        "CONNECTOR_ENCRYPTION_OLD_KEYS reuses the current key id {id}"
                    )));
                }
                c.previous.push((id, Self::from_base64(key)?.cipher));
            }
        }
        Ok(c)
    }

    /// A keyed hash (HMAC-SHA256, hex) of `value` for `purpose`: the same
    /// input gives the same output under the same key, and without the key
    /// the output says nothing about the input (erased identifiers that
    /// deduplication still needs).
    pub fn keyed_hash(&self, purpose: &str, value: &str) -> String {
        let mut msg = Vec::with_capacity(purpose.len() + 1 + value.len());
        msg.extend_from_slice(purpose.as_bytes());
        msg.push(0);
        msg.extend_from_slice(value.as_bytes());
        hex::encode(hmac_sha256(&self.hash_key, &msg))
    }

    /// The id new values are sealed with.
    pub fn key_id(&self) -> u8 {
        self.key_id
    }

    /// The key id a stored value was sealed with.
    pub fn stored_key_id(stored: &[u8]) -> Option<u8> {
        stored.first().copied()
    }

    /// Encrypts `plain`, bound to `context` (where the value is stored).
    pub fn encrypt(&self, plain: &str, context: &str) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from_slice(&nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory value cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(self.key_id);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value produced by [`SecretCipher::encrypt`] with the same `context`.
    pub fn decrypt(&self, stored: &[u8], context: &str) -> Result<SecretString, CryptoError> {
        let (&key_id, rest) = stored
            .split_first()
            .ok_or(CryptoError::Decrypt("empty value"))?;
        let cipher = if key_id == self.key_id {
            &self.cipher
        } else {
            self.previous
                .iter()
                .find(|(id, _)| *id == key_id)
                .map(|(_, c)| c)
                .ok_or(CryptoError::Decrypt("sealed with a key id that is neither current nor in CONNECTOR_ENCRYPTION_OLD_KEYS"))?
        };
        if rest.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Decrypt("truncated value"));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Decrypt("authentication failed"))?;
        let text = String::from_utf8(plain).map_err(|_| CryptoError::Decrypt("not UTF-8"))?;
        Ok(SecretString::from(text))
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn round_trip_with_fresh_nonces() {
        let c = SecretCipher::from_base64(KEY).expect("valid key");
        let a = c.encrypt("pat-na1-secret", "portal:1:token");
        let b = c.encrypt("pat-na1-secret", "portal:1:token");
        assert_ne!(a, b, "nonces differ");
        assert_eq!(a[0], CURRENT_KEY_ID);
        let back = c.decrypt(&a, "portal:1:token").expect("decrypts");
        assert_eq!(back.expose_secret(), "pat-na1-secret");
    }

    #[test]
    fn bound_to_its_context_and_key() {
        let c = SecretCipher::from_base64(KEY).expect("valid key");
        let a = c.encrypt("s", "portal:1:token");
        assert!(c.decrypt(&a, "portal:2:token").is_err());
        let other = SecretCipher::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .expect("valid key");
        assert!(other.decrypt(&a, "portal:1:token").is_err());
        assert!(c.decrypt(&a[..10], "portal:1:token").is_err());
    }

    #[test]
    fn old_keys_still_read_after_a_rotation() {
        let mut settings = crate::config::Settings::defaults();
        settings.encryption_key = Some(SecretString::from(KEY));
        let before = SecretCipher::from_settings(&settings).expect("valid");
        let sealed = before.encrypt("tok", "portal:1:token");
        assert_eq!(SecretCipher::stored_key_id(&sealed), Some(1));

        let new_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        settings.encryption_key = Some(SecretString::from(new_key));
        settings.encryption_key_id = 2;
        let without_old = SecretCipher::from_settings(&settings).expect("valid");
        let e = without_old
            .decrypt(&sealed, "portal:1:token")
            .expect_err("old key missing");
        assert!(e.to_string().contains("OLD_KEYS"), "{e}");
        settings.encryption_old_keys = Some(SecretString::from(format!("1:{KEY}")));
        let after = SecretCipher::from_settings(&settings).expect("valid");
        assert_eq!(
            after
                .decrypt(&sealed, "portal:1:token")
                .expect("reads")
                .expose_secret(),
            "tok"
        );
        let resealed = after.encrypt("tok", "portal:1:token");
        assert_eq!(SecretCipher::stored_key_id(&resealed), Some(2));
        settings.encryption_old_keys = Some(SecretString::from(format!("2:{KEY}")));
        assert!(
            SecretCipher::from_settings(&settings).is_err(),
            "id reuse refused"
        );
        settings.encryption_old_keys = Some(SecretString::from("nonsense"));
        assert!(SecretCipher::from_settings(&settings).is_err());
    }

    #[test]
    fn bad_keys_are_explained() {
        assert!(matches!(
            SecretCipher::from_setting(None),
            Err(CryptoError::MissingKey)
        ));
        let e = SecretCipher::from_base64("c2hvcnQ=").expect_err("short");
        assert!(e.to_string().contains("not 32"), "{e}");
        let e = SecretCipher::from_base64("%%%").expect_err("not base64");
        assert!(e.to_string().contains("base64"), "{e}");
    }
}
