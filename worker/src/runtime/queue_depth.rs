//! Queue depths as Prometheus gauges (`broker_queue_messages{queue}`), read
//! with passive declares on a connection of its own, so an operator sees a
//! backlog or growing dead letters without the management UI.

use std::time::Duration;

use lapin::{options::QueueDeclareOptions, types::FieldTable};
use shared::broker::Topology;
use tokio_util::sync::CancellationToken;

/// Reads the depth of every queue of `topology` each `every` until `shutdown`.
pub fn spawn(
    amqp_url: String,
    topology: Topology,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let queues = topology.queue_names();
        let Ok(nodes) = shared::broker::BrokerNodes::parse(&amqp_url) else {
            return;
        };
        let mut channel = None;
        loop {
            if channel.is_none() {
                channel = open(&nodes).await;
            }
            if let Some((_, ch)) = &channel {
                for q in &queues {
                    let opts = QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    };
                    match ch
                        .queue_declare(q.as_str().into(), opts, FieldTable::default())
                        .await
                    {
                        Ok(info) => {
                            metrics::gauge!("broker_queue_messages", "queue" => q.clone())
                                .set(f64::from(info.message_count()));
                        }
                        Err(_) => {
                            // A passive declare of a missing queue closes the
                            // channel; start again next time.
                            channel = None;
                            break;
                        }
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
    })
}

async fn open(nodes: &shared::broker::BrokerNodes) -> Option<(lapin::Connection, lapin::Channel)> {
    let conn = nodes.connect("connector-worker-metrics").await.ok()?;
    let ch = conn.create_channel().await.ok()?;
    Some((conn, ch))
}
