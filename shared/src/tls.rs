//! TLS for HTTPS (HubSpot, impact.com): rustls with the `ring` crypto
//! provider, which builds much faster than rustls' default (`aws-lc-rs`, a
//! large C library). reqwest is built without a provider of its own and
//! takes the process's default, so one must be installed before the first
//! HTTP client is built: [`install_crypto_provider`] does, and this crate
//! calls it wherever a process starts (loading the settings, logging,
//! metrics), so binaries get it without doing anything.

/// Installs `ring` as the process's default rustls crypto provider. Safe to
/// call any number of times, from any thread; an already installed default
/// (whichever) is kept.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing it is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_https_client_can_be_built_once_installed() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        assert!(reqwest::Client::builder().build().is_ok());
    }
}
