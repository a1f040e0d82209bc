//! Exchange and queue names and arguments.

use std::time::Duration;

use super::BrokerNodes;
use crate::config::{ConfigError, Settings};
use domain::retry::delay_label;
use lapin::{
    Channel, Connection, ExchangeKind,
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
    /// `x-quorum-initial-group-size` of every queue when it is created
    /// (replicas on that many nodes); `None`: the broker's default (every
    /// node of the cluster). A creation-time argument: see
    /// [`Topology::declare`] for queues that exist already.
    pub quorum_initial_group_size: Option<u32>,
}

impl Topology {
    /// The topology `settings` describe; checks `CONNECTOR_AMQP_URL` too.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let nodes =
            BrokerNodes::parse(&settings.amqp_url).map_err(|problem| ConfigError::Invalid {
                name: "CONNECTOR_AMQP_URL",
                problem,
            })?;
        Ok(Self {
            prefix: settings.queue_prefix.clone(),
            retry_delays: settings.retry_delays()?,
            delivery_limit: settings.delivery_limit,
            quorum_initial_group_size: group_size(settings.quorum_initial_group_size, nodes.len()),
        })
    }

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

    /// Where a worker defers a message of a portal it holds enough of
    /// already, e.g. `hubspot.events.deferred.10s`: the message waits there
    /// for the first retry delay, then returns to the work queue, unless a
    /// worker with room pulls it back sooner. Named after its delay, like
    /// the retry queues, so that a changed schedule declares a new queue
    /// instead of clashing with the old one's arguments. `None` without a
    /// retry schedule (nothing is deferred then).
    pub fn deferred_queue(&self) -> Option<String> {
        let delay = self.retry_delays.first()?;
        Some(format!(
            "{}hubspot.events.deferred.{}",
            self.prefix,
            delay_label(*delay)
        ))
    }

    /// Every queue's name, for depth gauges and clean-up.
    pub fn queue_names(&self) -> Vec<String> {
        self.queues().into_iter().map(|(name, _)| name).collect()
    }

    /// Declares everything on channels of its own (a refused declare closes
    /// its channel); safe to run any number of times, from any process, on
    /// any node of a cluster.
    ///
    /// `x-quorum-initial-group-size` only matters when a queue is created,
    /// but RabbitMQ still refuses (406) a declare whose value differs from
    /// the existing queue's, including set against unset. Such a queue is
    /// declared again without it (a queue created before the cluster), and
    /// failing that passively (created with another size): it keeps its
    /// replicas, which `rabbitmq-queues grow` / `add_member` change. Every
    /// other argument must still match.
    pub async fn declare(&self, conn: &Connection) -> lapin::Result<()> {
        let ch = conn.create_channel().await?;
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
        let mut ch = ch;
        for (name, args) in self.queues() {
            ch = self.declare_queue(conn, ch, &name, args).await?;
        }
        ch.queue_bind(
            self.work_queue().as_str().into(),
            self.events_exchange().as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let _ = ch.close(200, "declared".into()).await;
        Ok(())
    }

    /// Every queue with its arguments (without the group size).
    fn queues(&self) -> Vec<(String, FieldTable)> {
        let mut queues = vec![
            (self.dead_queue(), quorum()),
            (self.replay_queue(), quorum()),
        ];
        let mut work = quorum();
        // Poison messages (crash or panic mid-processing) are redelivered at
        // most this many times, then dead-lettered instead of looping forever.
        work.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(self.delivery_limit.into()),
        );
        dead_letter_to(&mut work, &self.dead_queue());
        queues.push((self.work_queue(), work));
        for (step, delay) in self.retry_delays.iter().enumerate() {
            let name = self.retry_queue(step).expect("step is in range");
            let mut args = quorum();
            // Messages wait out their delay here, then return to the work
            // queue. One queue per delay, because expired messages only
            // leave a queue from its head.
            let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
            dead_letter_to(&mut args, &self.work_queue());
            queues.push((name, args));
        }
        if let (Some(name), Some(delay)) = (self.deferred_queue(), self.retry_delays.first()) {
            let mut args = quorum();
            let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
            // A message pulled back from here that keeps crashing its worker
            // goes on to the work queue, whose own limit dead-letters it.
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(self.delivery_limit.into()),
            );
            dead_letter_to(&mut args, &self.work_queue());
            queues.push((name, args));
        }
        queues
    }

    /// Declares one queue; returns a live channel (a new one when the
    /// broker closed `ch` over the group size).
    async fn declare_queue(
        &self,
        conn: &Connection,
        ch: Channel,
        name: &str,
        args: FieldTable,
    ) -> lapin::Result<Channel> {
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut sized = args.clone();
        if let Some(n) = self.quorum_initial_group_size {
            sized.insert(
                GROUP_SIZE_ARG.into(),
                AMQPValue::LongInt(i32::try_from(n).unwrap_or(i32::MAX)),
            );
        }
        let first = ch.queue_declare(name.into(), opts, sized).await;
        let mut e = match first {
            Ok(_) => return Ok(ch),
            Err(e) if group_size_differs(&e) => e,
            Err(e) => return Err(e),
        };
        if self.quorum_initial_group_size.is_some() {
            let ch = conn.create_channel().await?;
            match ch.queue_declare(name.into(), opts, args).await {
                Ok(_) => {
                    tracing::info!(
                        queue = name,
                        "queue created without an initial group size; kept as it is"
                    );
                    return Ok(ch);
                }
                Err(again) if group_size_differs(&again) => e = again,
                Err(again) => return Err(again),
            }
        }
        tracing::info!(queue = name, reason = %e, "queue created with another initial group size; kept as it is");
        let ch = conn.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..opts
        };
        ch.queue_declare(name.into(), passive, FieldTable::default())
            .await?;
        Ok(ch)
    }
}

/// The creation-time replica count of a quorum queue.
const GROUP_SIZE_ARG: &str = "x-quorum-initial-group-size";

/// Whether the broker refused a declare over the group size alone.
fn group_size_differs(e: &lapin::Error) -> bool {
    format!("{e:?}").contains("inequivalent arg 'x-quorum-initial-group-size'")
}

/// Arguments of a quorum queue: replicated, durable.
fn quorum() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    t
}

/// The replicas of each queue at its creation: `setting` when not 0, else
/// 3 when the list names three nodes or more (a majority survives one lost
/// node), else `None` (the broker's default: every node of the cluster).
fn group_size(setting: u32, nodes: usize) -> Option<u32> {
    if setting > 0 {
        Some(setting)
    } else {
        (nodes >= 3).then_some(3)
    }
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
            quorum_initial_group_size: None,
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
        assert_eq!(
            t.deferred_queue().as_deref(),
            Some("t1.hubspot.events.deferred.10s")
        );
        assert_eq!(
            t.queue_names(),
            [
                "t1.hubspot.dead",
                "t1.hubspot.replays",
                "t1.hubspot.events.work",
                "t1.hubspot.events.retry.10s",
                "t1.hubspot.events.retry.1h",
                "t1.hubspot.events.deferred.10s",
            ]
        );
        let none = Topology {
            retry_delays: Vec::new(),
            ..t
        };
        assert_eq!(none.deferred_queue(), None, "no schedule, no deferral");
    }

    #[test]
    fn three_nodes_or_more_get_three_replicas_unless_set() {
        assert_eq!(group_size(0, 1), None);
        assert_eq!(group_size(0, 2), None);
        assert_eq!(group_size(0, 3), Some(3));
        assert_eq!(group_size(0, 5), Some(3));
        assert_eq!(group_size(5, 5), Some(5));
        assert_eq!(group_size(1, 3), Some(1));
    }

    #[test]
    fn settings_derive_the_group_size_from_the_url_list() {
        let mut s = Settings::defaults();
        assert_eq!(
            Topology::from_settings(&s)
                .expect("valid")
                .quorum_initial_group_size,
            None
        );
        s.amqp_url = "amqp://a:5672/%2f, amqp://b:5672/%2f ,amqp://c:5672/%2f".into();
        assert_eq!(
            Topology::from_settings(&s)
                .expect("valid")
                .quorum_initial_group_size,
            Some(3)
        );
        s.amqp_url = "amqp://a:5672/%2f,mysql://b/".into();
        let e = Topology::from_settings(&s)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("CONNECTOR_AMQP_URL") && e.contains("entry 2"),
            "{e}"
        );
    }

    /// On the shared local broker, under a prefix of its own.
    #[tokio::test]
    async fn declaring_again_with_another_group_size_keeps_the_queues() {
        let conn = crate::broker::connect("amqp://guest:guest@127.0.0.1:5672/%2f", "topology-test")
            .await
            .expect("the local broker");
        let mut t = Topology {
            prefix: format!("gs{}.", uuid::Uuid::new_v4().simple()),
            retry_delays: vec![Duration::from_secs(1)],
            delivery_limit: 5,
            quorum_initial_group_size: None,
        };
        // Created without a size (a broker before its cluster), then with
        // 3, 1 and none again: each declare is accepted.
        for size in [None, Some(3), Some(1), None, Some(3)] {
            t.quorum_initial_group_size = size;
            t.declare(&conn)
                .await
                .unwrap_or_else(|e| panic!("{size:?}: {e}"));
        }
        // Another size at creation is kept as well.
        let other = Topology {
            prefix: format!("gs{}.", uuid::Uuid::new_v4().simple()),
            quorum_initial_group_size: Some(3),
            ..t.clone()
        };
        other.declare(&conn).await.expect("created with 3");
        for size in [Some(1), None, Some(3)] {
            let again = Topology {
                quorum_initial_group_size: size,
                ..other.clone()
            };
            again
                .declare(&conn)
                .await
                .unwrap_or_else(|e| panic!("{size:?}: {e}"));
        }
        // Any other difference is still refused.
        let changed = Topology {
            delivery_limit: 9,
            ..t.clone()
        };
        let e = changed
            .declare(&conn)
            .await
            .expect_err("another delivery limit");
        assert!(format!("{e:?}").contains("x-delivery-limit"), "{e:?}");
        let ch = conn.create_channel().await.expect("valid");
        for topo in [&t, &other] {
            for (name, _) in topo.queues() {
                let _ = ch
                    .queue_delete(name.as_str().into(), Default::default())
                    .await;
            }
            let _ = ch
                .exchange_delete(topo.events_exchange().as_str().into(), Default::default())
                .await;
        }
        let _ = conn.close(200, "done".into()).await;
    }
}
