//! The broker's nodes: `CONNECTOR_AMQP_URL` is one URL or a comma-separated
//! list of them (the nodes of one cluster). Connections start at a random
//! node, so processes spread over the cluster, and each new connection
//! starts at the node after the one used last, so a lost node is tried last.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use lapin::{Connection, ConnectionProperties, uri::AMQPUri};

/// Longest wait for one node (TCP and the AMQP handshake) before the next
/// one is tried: a node that drops packets must not hold up the others.
pub const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The nodes of `CONNECTOR_AMQP_URL` and where the next connection starts.
/// Clones share the position.
#[derive(Debug, Clone)]
pub struct BrokerNodes {
    urls: Arc<[String]>,
    next: Arc<AtomicUsize>,
}

impl BrokerNodes {
    /// Parses a comma-separated list of AMQP URLs (blanks around commas and
    /// empty entries ignored); the first connection starts at a random one.
    pub fn parse(list: &str) -> Result<Self, String> {
        let urls = split(list)?;
        let start = rand::random_range(0..urls.len());
        Ok(Self::with_start(urls, start))
    }

    fn with_start(urls: Vec<String>, start: usize) -> Self {
        Self {
            urls: urls.into(),
            next: Arc::new(AtomicUsize::new(start)),
        }
    }

    /// How many nodes the list names.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Never true (a list names at least one node).
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The order the next connection tries the nodes in (indexes).
    fn order(&self) -> Vec<usize> {
        let start = self.next.load(Ordering::Relaxed) % self.urls.len();
        (0..self.urls.len())
            .map(|i| (start + i) % self.urls.len())
            .collect()
    }

    /// Opens a connection to the first node that answers, in [`Self::order`];
    /// the next connection starts after it. The error is the last node's.
    pub async fn connect(&self, name: &str) -> lapin::Result<Connection> {
        let mut last = None;
        for i in self.order() {
            let url = &self.urls[i];
            let props = ConnectionProperties::default().with_connection_name(name.into());
            let attempt =
                tokio::time::timeout(NODE_CONNECT_TIMEOUT, Connection::connect(url, props)).await;
            match attempt {
                Ok(Ok(conn)) => {
                    self.next.store(i + 1, Ordering::Relaxed);
                    if self.urls.len() > 1 {
                        tracing::info!(connection = name, node = %display_node(url), "connected to broker node");
                    }
                    return Ok(conn);
                }
                Ok(Err(e)) => {
                    tracing::debug!(connection = name, node = %display_node(url), error = %e, "broker node refused");
                    last = Some(e);
                }
                Err(_) => {
                    tracing::debug!(connection = name, node = %display_node(url), "broker node did not answer");
                    last = Some(lapin::Error::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "{} did not answer within {NODE_CONNECT_TIMEOUT:?}",
                            display_node(url)
                        ),
                    )));
                }
            }
        }
        Err(last.expect("a list names at least one node"))
    }
}

/// The entries of a list, each checked to be an AMQP URL.
fn split(list: &str) -> Result<Vec<String>, String> {
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err(
            "no URL given; expected amqp://user:password@host:5672/%2f, \
                    or several separated by commas (the nodes of a cluster)"
                .into(),
        );
    }
    for (i, url) in urls.iter().enumerate() {
        url.parse::<AMQPUri>().map_err(|e| {
            format!(
                "entry {} is not an AMQP URL ({e}); expected amqp://user:password@host:5672/%2f",
                i + 1
            )
        })?;
    }
    Ok(urls)
}

/// `host:port` of a URL, for logs (never the credentials).
pub fn display_node(url: &str) -> String {
    match url.parse::<AMQPUri>() {
        Ok(u) => format!("{}:{}", u.authority.host, u.authority.port),
        Err(_) => "(unparsable URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "amqp://u:p@10.0.0.1:5672/%2f";
    const B: &str = "amqp://u:p@10.0.0.2:5672/%2f";
    const C: &str = "amqp://u:p@10.0.0.3:5673/%2f";

    #[test]
    fn a_single_url_is_a_list_of_one() {
        let n = BrokerNodes::parse(A).expect("valid");
        assert_eq!(n.len(), 1);
        assert_eq!(n.order(), vec![0]);
    }

    #[test]
    fn lists_split_on_commas_ignoring_blanks() {
        let n = BrokerNodes::parse(&format!(" {A} ,{B},, {C} ,")).expect("valid");
        assert_eq!(&*n.urls, &[A.to_owned(), B.to_owned(), C.to_owned()]);
    }

    #[test]
    fn bad_entries_are_named_by_position_without_their_text() {
        let e = BrokerNodes::parse(&format!("{A},http://secret@x/")).expect_err("refused");
        assert!(e.contains("entry 2"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        assert!(
            BrokerNodes::parse(" , ")
                .expect_err("refused")
                .contains("no URL")
        );
    }

    #[test]
    fn the_order_is_a_rotation_from_the_start() {
        let n = BrokerNodes::with_start(vec![A.into(), B.into(), C.into()], 1);
        assert_eq!(n.order(), vec![1, 2, 0]);
        // After a connection to node 2, the next one starts at node 0: the
        // node just used (and maybe lost) comes last.
        n.next.store(3, Ordering::Relaxed);
        assert_eq!(n.order(), vec![0, 1, 2]);
    }

    #[test]
    fn random_starts_spread_over_the_nodes() {
        let mut seen = [false; 3];
        for _ in 0..200 {
            let n = BrokerNodes::parse(&format!("{A},{B},{C}")).expect("valid");
            seen[n.order()[0]] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn logs_show_the_node_not_the_credentials() {
        assert_eq!(display_node(C), "10.0.0.3:5673");
    }

    #[tokio::test]
    async fn a_dead_node_is_skipped_and_the_next_connection_starts_after_the_live_one() {
        // Port 1 refuses at once; the live broker is the shared local one.
        let dead = "amqp://guest:guest@127.0.0.1:1/%2f".to_owned();
        let live = "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned();
        let n = BrokerNodes::with_start(vec![dead.clone(), live, dead], 0);
        let conn = n.connect("nodes-test").await.expect("the live node");
        assert_eq!(n.order(), vec![2, 0, 1]);
        let _ = conn.close(200, "done".into()).await;
        let all_dead = BrokerNodes::with_start(vec!["amqp://127.0.0.1:1/%2f".into()], 0);
        assert!(all_dead.connect("nodes-test").await.is_err());
    }
}
