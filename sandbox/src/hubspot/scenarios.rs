//! Webhook scenarios (bulk imports, deal stage streams, redeliveries) and the
//! handle's view of the delivery engine.

use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::model::ObjectType;
use super::webhooks::{DeliveryOptions, Timing, WebhookEvent, WebhookStats};
use super::{FakeHubSpot, Props, Source, props, schema, seed};
use crate::{WebhookTarget, lock};

impl FakeHubSpot {
    fn next_scenario(&self) -> u64 {
        let mut seq = lock(&self.state.scenario_seq);
        *seq += 1;
        *seq
    }

    /// An import of `n` contacts: creates them and emits `n`
    /// `contact.creation` events (`changeSource: IMPORT`), delivered in
    /// batches of at most `batch_size`. Returns the new ids.
    pub fn import_contacts(&self, portal: u64, n: usize) -> anyhow::Result<Vec<u64>> {
        let import = self.next_scenario();
        let source = Source {
            change_source: "IMPORT",
            source_id: Some(format!("import-{import}")),
        };
        let mut rng = StdRng::seed_from_u64(import ^ portal);
        let mut ids = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        for i in 0..n {
            let p = props([
                ("email", format!("import{import}.{}@example.com", i + 1)),
                ("firstname", "Imported".to_string()),
                ("lastname", format!("Contact {}", i + 1)),
                ("lifecyclestage", "lead".to_string()),
                ("hs_lead_status", "NEW".to_string()),
                (schema::CUSTOM_CONTACT_CLICK_ID, seed::click_id(&mut rng)),
            ]);
            let (id, event) = self.create_quiet(portal, ObjectType::Contacts, p, &[], &source)?;
            ids.push(id);
            events.extend(event);
        }
        self.emit(events);
        Ok(ids)
    }

    /// A stream of deal stage changes: creates `deals` deals (each with one
    /// line item and a new contact), then moves every deal through `stages`
    /// in order. Emits one `deal.creation` per deal and one
    /// `deal.propertyChange` (`propertyName: dealstage`) per deal and stage,
    /// all as one bulk emission with strictly increasing `occurredAt`.
    /// Returns the deal ids.
    pub fn deal_stage_stream(
        &self,
        portal: u64,
        deals: usize,
        stages: &[&str],
    ) -> anyhow::Result<Vec<u64>> {
        let run = self.next_scenario();
        let source = Source::crm();
        let mut events = Vec::new();
        let mut ids = Vec::with_capacity(deals);
        for i in 0..deals {
            let (contact, ev) = self.create_quiet(
                portal,
                ObjectType::Contacts,
                props([
                    ("email", format!("stream{run}.{}@example.com", i + 1)),
                    ("lifecyclestage", "opportunity".to_string()),
                ]),
                &[],
                &source,
            )?;
            events.extend(ev);
            let item: Props = props([
                ("name", "Anvil"),
                ("hs_sku", "SKU-ANVIL"),
                ("price", "10.00"),
                ("quantity", "2"),
                ("hs_line_item_currency_code", "USD"),
            ]);
            let (deal, ev) = self.create_deal_quiet(
                portal,
                props([("dealname", format!("Stream {run} deal {}", i + 1))]),
                vec![item],
                Some(contact),
                &source,
            )?;
            events.extend(ev);
            ids.push(deal);
        }
        let start = Utc::now();
        let mut tick = 0i64;
        for stage in stages {
            for deal in &ids {
                tick += 1;
                let at = start + ChronoDuration::milliseconds(tick);
                events.push(self.set_quiet(
                    portal,
                    (ObjectType::Deals, *deal),
                    "dealstage",
                    stage,
                    &source,
                    at,
                )?);
            }
        }
        self.emit(events);
        Ok(ids)
    }

    /// Delivers these events again as they are (same `eventId`,
    /// `occurredAt`...): a duplicate delivery on request.
    pub fn redeliver(&self, events: Vec<WebhookEvent>) {
        self.state.webhooks.enqueue(events);
    }

    /// Duplicate and out-of-order options for events emitted from now on.
    pub fn set_delivery_options(&self, options: DeliveryOptions) {
        self.state.webhooks.set_options(options);
    }

    /// Sets or clears where webhooks go (tests usually learn the URL after
    /// the sandbox has started).
    pub fn set_webhook_target(&self, target: Option<WebhookTarget>) {
        self.state.webhooks.set_target(target);
    }

    /// The current webhook target.
    pub fn webhook_target(&self) -> Option<WebhookTarget> {
        self.state.webhooks.target()
    }

    /// Per-request timeout and the delays before each retry (one retry per
    /// entry; HubSpot's is 5 s and about 10 retries).
    pub fn set_webhook_timing(&self, timeout: Duration, retry_delays: Vec<Duration>) {
        self.state.webhooks.set_timing(Timing {
            timeout,
            retry_delays,
        });
    }

    /// Waits until every webhook delivery is done (delivered or given up).
    pub async fn wait_idle(&self) {
        self.state.webhooks.wait_idle().await;
    }

    /// Events acknowledged with a 2xx, in acknowledgement order (duplicates
    /// included; `attemptNumber` as in the successful attempt).
    pub fn delivered_events(&self) -> Vec<WebhookEvent> {
        self.state.webhooks.delivered()
    }

    /// Every event changes produced, in the order they happened.
    pub fn emitted_events(&self) -> Vec<WebhookEvent> {
        self.state.webhooks.emitted()
    }

    /// Events given up on after the last retry.
    pub fn failed_events(&self) -> Vec<WebhookEvent> {
        self.state.webhooks.gave_up()
    }

    /// Delivery counters.
    pub fn webhook_stats(&self) -> WebhookStats {
        self.state.webhooks.stats()
    }
}
