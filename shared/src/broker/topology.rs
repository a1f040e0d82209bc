//! Exchange and queue names and arguments.

use std::time::Duration;

use domain::retry::delay_label;
use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};

/// Names and shape of the broker objects, all under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Delays of the retry ladder, one queue each.
    pub retry_delays: Vec<Duration>,
    /// Redeliveries after which the work queue dead-letters a message.
    pub delivery_limit: u32,
}

impl Topology {
    /// The topic exchange ingest publishes to.
    pub fn events_exchange(&self) -> String {
        format!("{}hubspot.events", self.prefix)
    }

    /// The quorum queue workers consume.
    pub fn work_queue(&self) -> String {
        format!("{}hubspot.events.work", self.prefix)
    }

    /// Where poison messages and exhausted retries end up.
    pub fn dead_queue(&self) -> String {
        format!("{}hubspot.dead", self.prefix)
    }

    /// The queue of replay requests (the console publishes, workers consume).
    pub fn replay_queue(&self) -> String {
        format!("{}hubspot.replays", self.prefix)
    }

    /// The queue of retry step `step` (0-based), e.g. `hubspot.events.retry.10s`.
    pub fn retry_queue(&self, step: usize) -> Option<String> {
        let delay = self.retry_delays.get(step)?;
        Some(format!(
            "{}hubspot.events.retry.{}",
            self.prefix,
            delay_label(*delay)
        ))
    }

    /// Declares everything; safe to run any number of times, from any process.
    pub async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        // Durable: survives a broker restart.
        let exchange_opts = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(
            self.events_exchange().as_str().into(),
            ExchangeKind::Topic,
            exchange_opts,
            FieldTable::default(),
        )
        .await?;

        let queue_opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };

        ch.queue_declare(self.dead_queue().as_str().into(), queue_opts, quorum())
            .await?;
        ch.queue_declare(self.replay_queue().as_str().into(), queue_opts, quorum())
            .await?;

        let mut work = quorum();
        // Poison messages (crash or panic mid-processing) are redelivered at
        // most this many times, then dead-lettered instead of looping forever.
        work.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(self.delivery_limit.into()),
        );
        dead_letter_to(&mut work, &self.dead_queue());
        ch.queue_declare(self.work_queue().as_str().into(), queue_opts, work)
            .await?;
        ch.queue_bind(
            self.work_queue().as_str().into(),
            self.events_exchange().as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

        for (step, delay) in self.retry_delays.iter().enumerate() {
            let name = self.retry_queue(step).expect("step is in range");
            let mut args = quorum();
            // Messages wait out their delay here, then return to the work
            // queue. One queue per delay, because expired messages only
            // leave a queue from its head.
            let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
            dead_letter_to(&mut args, &self.work_queue());
            ch.queue_declare(name.as_str().into(), queue_opts, args)
                .await?;
        }
        Ok(())
    }
}

/// Arguments of a quorum queue: replicated, durable, with poison-message handling.
fn quorum() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    t
}

/// Dead-letter through the default exchange straight into `queue`, with the
/// at-least-once strategy (the broker keeps the message until the target
/// queue confirmed it), which requires `reject-publish` overflow.
fn dead_letter_to(args: &mut FieldTable, queue: &str) {
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(queue.into()),
    );
    args.insert(
        "x-dead-letter-strategy".into(),
        AMQPValue::LongString("at-least-once".into()),
    );
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_interface() {
        let t = Topology {
            prefix: "t1.".into(),
            retry_delays: vec![Duration::from_secs(10), Duration::from_secs(3600)],
            delivery_limit: 5,
        };
        assert_eq!(t.events_exchange(), "t1.hubspot.events");
        assert_eq!(t.work_queue(), "t1.hubspot.events.work");
        assert_eq!(t.dead_queue(), "t1.hubspot.dead");
        assert_eq!(t.replay_queue(), "t1.hubspot.replays");
        assert_eq!(
            t.retry_queue(0).as_deref(),
            Some("t1.hubspot.events.retry.10s")
        );
        assert_eq!(
            t.retry_queue(1).as_deref(),
            Some("t1.hubspot.events.retry.1h")
        );
        assert_eq!(t.retry_queue(2), None);
    }
}
