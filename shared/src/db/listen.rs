//! Following configuration changes from a background task: the `NOTIFY`
//! every portal change sends on [`super::CONFIG_CHANNEL`] (payload: the
//! portal id), over a small pool of its own.

use std::time::Duration;

use domain::events::PortalId;
pub use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

/// A pool of at most `max` connections, opened on first use (so a database
/// that is down does not stop its owner from starting).
pub fn lazy_pool(url: &str, max: u32, acquire_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .connect_lazy(url)
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// This portal's configuration.
    Portal(PortalId),
    /// Unknown (an unexpected payload, or notifications lost while the
    /// connection was down): read everything again.
    Everything,
}

/// A connection listening for configuration changes (it holds one of the
/// pool's connections).
pub struct ConfigListener(PgListener);

impl ConfigListener {
    /// Connects and listens.
    pub async fn connect(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(super::CONFIG_CHANNEL).await?;
        Ok(Self(listener))
    }

    /// The next change (cancel-safe). After [`Change::Everything`] for a
    /// dropped connection, the next call reconnects (or fails).
    pub async fn next(&mut self) -> Result<Change, sqlx::Error> {
        Ok(match self.0.try_recv().await? {
            Some(n) => n
                .payload()
                .parse::<u64>()
                .map_or(Change::Everything, |id| Change::Portal(PortalId(id))),
            None => Change::Everything,
        })
    }
}
