//! What every request handler shares.

use std::sync::Arc;

use domain::signature::Verifier;
use shared::{
    broker::{Publisher, Topology},
    config::{ConfigError, Settings},
};

use crate::{
    body::BodyBudget,
    secrets::{WebhookSecrets, file},
};

/// Shared, cheaply cloned handler state.
#[derive(Clone)]
pub struct AppState {
    /// Publishes verified events to RabbitMQ.
    pub publisher: Publisher,
    /// The keys signatures are checked with (default and per portal).
    pub secrets: Arc<WebhookSecrets>,
    /// Public base URL HubSpot calls (no trailing slash), if configured.
    pub public_url: Option<Arc<str>>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// The webhook bytes in hand at once (`CONNECTOR_MAX_BODY_BYTES_IN_FLIGHT`).
    pub body_budget: BodyBudget,
    /// Largest number of events in one request.
    pub max_batch_events: usize,
    /// How long to wait for broker confirms.
    pub publish_timeout: std::time::Duration,
    /// The events exchange.
    pub exchange: Arc<str>,
    /// The dead queue (events ingest cannot read go there, as `invalid`).
    pub dead_queue: Arc<str>,
    /// Fingerprint of the secrets file as loaded (the watcher's baseline).
    pub(crate) secrets_file: Option<u64>,
}

impl AppState {
    /// Builds the state (the publisher connects lazily) with the default
    /// secret and the secrets file, if configured; the database's secrets
    /// are added by [`crate::run`].
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        s.validate_ingest()?;
        let mut template = Verifier::new("", s.signature_max_age_secs);
        template.accept_v1 = s.accept_signature_v1;
        template.accept_v2 = s.accept_signature_v2;
        let secrets = Arc::new(WebhookSecrets::new(
            s.hubspot_client_secret.as_ref(),
            template,
        ));
        let secrets_file = match s.webhook_secrets_path() {
            Some(path) => Some(
                file::load_into(std::path::Path::new(path), &secrets).map_err(|problem| {
                    ConfigError::Invalid {
                        name: "CONNECTOR_WEBHOOK_SECRETS_FILE",
                        problem,
                    }
                })?,
            ),
            None => None,
        };
        let publisher = publisher_from(s)?;
        Ok(Self {
            exchange: publisher.topology().events_exchange().into(),
            dead_queue: publisher.topology().dead_queue().into(),
            publisher,
            secrets,
            public_url: s
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').into()),
            max_body_bytes: s.max_body_bytes,
            body_budget: BodyBudget::new(s.edge.max_body_bytes_in_flight),
            max_batch_events: s.max_batch_events,
            publish_timeout: s.publish_timeout(),
            secrets_file,
        })
    }
}

/// The publisher ingest uses, with the topology from settings.
pub(crate) fn publisher_from(s: &Settings) -> Result<Publisher, ConfigError> {
    let topology = Topology::from_settings(s)?;
    Ok(Publisher::new(
        &s.amqp_url,
        "connector-ingest",
        topology,
        s.publisher_channels,
    ))
}
