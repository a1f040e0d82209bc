//! Secrets at rest: AES-256-GCM with a random 96-bit nonce per value.
//!
//! Stored layout: `key_id (1 byte) || nonce (12 bytes) || ciphertext+tag`.
//! The key id lets a later key rotation decrypt old values with the old key.
//! Each value is bound to where it is stored (associated data such as
//! `portal:62515:impact_auth_token`), so a ciphertext copied into another
//! portal's row does not decrypt.

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// Id of the only key version so far.
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
        })
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
        if key_id != self.key_id {
            return Err(CryptoError::Decrypt("unknown key id"));
        }
        if rest.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Decrypt("truncated value"));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let plain = self
            .cipher
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
