//! What every request handler shares.

use std::sync::Arc;

use domain::signature::Verifier;
use secrecy::ExposeSecret;
use shared::{
    broker::{Publisher, Topology},
    config::{ConfigError, Settings},
};

/// Shared, cheaply cloned handler state.
#[derive(Clone)]
pub struct AppState {
    /// Publishes verified events to RabbitMQ.
    pub publisher: Publisher,
    /// Checks HubSpot signatures.
    pub verifier: Arc<Verifier>,
    /// Public base URL HubSpot calls (no trailing slash), if configured.
    pub public_url: Option<Arc<str>>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Largest number of events in one request.
    pub max_batch_events: usize,
    /// How long to wait for broker confirms.
    pub publish_timeout: std::time::Duration,
    /// The events exchange.
    pub exchange: Arc<str>,
}

impl AppState {
    /// Builds the state (the publisher connects lazily).
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let secret = s
            .hubspot_client_secret
            .as_ref()
            .ok_or(ConfigError::Invalid {
                name: "CONNECTOR_HUBSPOT_CLIENT_SECRET",
                problem: "required".into(),
            })?;
        let mut verifier = Verifier::new(secret.expose_secret(), s.signature_max_age_secs);
        verifier.accept_v1 = s.accept_signature_v1;
        verifier.accept_v2 = s.accept_signature_v2;
        let publisher = publisher_from(s)?;
        Ok(Self {
            exchange: publisher.topology().events_exchange().into(),
            publisher,
            verifier: Arc::new(verifier),
            public_url: s
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').into()),
            max_body_bytes: s.max_body_bytes,
            max_batch_events: s.max_batch_events,
            publish_timeout: s.publish_timeout(),
        })
    }
}

/// The publisher ingest uses, with the topology from settings.
pub(crate) fn publisher_from(s: &Settings) -> Result<Publisher, ConfigError> {
    let topology = Topology {
        prefix: s.queue_prefix.clone(),
        retry_delays: s.retry_delays()?,
        delivery_limit: s.delivery_limit,
    };
    Ok(Publisher::new(
        &s.amqp_url,
        "connector-ingest",
        topology,
        s.publisher_channels,
    ))
}
