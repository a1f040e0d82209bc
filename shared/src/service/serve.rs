//! Serving a router on a listener within limits: what `axum::serve` does,
//! plus the timeouts and caps a public listener needs (`axum::serve` runs
//! hyper without a timer, so none of hyper's timeouts fire).
//!
//! - **Header timeout**: a connection must deliver a request's headers
//!   within `header_timeout` of its start or of the previous answer, or
//!   it is closed. This ends idle and slowly dripping (slowloris)
//!   connections, and idle kept-alive ones.
//! - **Body timeout**: a gap longer than `body_timeout` between two pieces
//!   of a request body fails the read (ingest answers 408).
//! - **Request deadline**: a request not answered within
//!   `request_timeout` is answered 503 with `Retry-After`.
//! - **Keep-alive age**: a connection older than `keep_alive_max` is
//!   closed after its current answer.
//! - **Connections**: at most `max_connections` are held; past that the
//!   listener stops accepting, so new connections wait in the kernel's
//!   backlog until one closes (every held one is bounded by the timeouts
//!   above), rather than being refused.
//! - **Requests**: at most `max_requests` are worked on at once; more are
//!   answered 503 with `Retry-After` at once (HubSpot retries those).
//! - Request heads are capped at [`MAX_HEADER_BYTES`]; HTTP/1.1 only.
//!
//! Every request carries the peer's address as axum's
//! `ConnectInfo<SocketAddr>` (the console counts failed operator-token
//! attempts per client).

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode},
    response::{IntoResponse, Response},
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tower_http::timeout::{TimeoutBody, TimeoutError};

use crate::{config::EdgeSettings, http::ApiError};

/// Largest request head (request line and headers), in bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Largest read or write buffer of a connection, in bytes.
const MAX_BUF_BYTES: usize = 64 * 1024;
/// File descriptors kept for everything but the listener's connections.
const RESERVED_FDS: u64 = 256;

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to receive a request's headers (and to keep an idle connection).
    pub header_timeout: Duration,
    /// Longest gap between two pieces of a request body.
    pub body_timeout: Duration,
    /// Deadline of a request, from its headers to its answer.
    pub request_timeout: Duration,
    /// Age after which a connection is closed after its current answer.
    pub keep_alive_max: Duration,
    /// Connections held open at once.
    pub max_connections: usize,
    /// Requests worked on at once.
    pub max_requests: usize,
}

impl Limits {
    /// The limits the settings name (`CONNECTOR_HTTP_*`).
    pub fn from_settings(s: &EdgeSettings) -> Self {
        Self {
            header_timeout: Duration::from_secs(s.http_header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(s.http_body_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(s.http_request_timeout_secs.max(1)),
            keep_alive_max: Duration::from_secs(s.http_keep_alive_max_secs.max(1)),
            max_connections: s.http_max_connections.max(1),
            max_requests: s.http_max_requests.max(1),
        }
    }
}

/// Whether a body read failed because the body timeout passed (anywhere
/// in the error's chain of causes).
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// What every connection of a listener shares.
struct Shared {
    name: &'static str,
    router: Router,
    limits: Limits,
    requests: Arc<Semaphore>,
    http: http1::Builder,
    /// Fired when the drain after `shutdown` is over: drop what is left.
    kill: CancellationToken,
}

/// Serves `router` on `listener` (called `name` in logs and metrics)
/// within `limits` until `shutdown`; then stops accepting, lets requests
/// in hand finish for at most `grace`, and drops what is left.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    describe_metrics();
    let cap = fit_descriptor_limit(name, limits.max_connections);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_BUF_BYTES);
    let shared = Arc::new(Shared {
        name,
        router,
        limits: limits.clone(),
        requests: Arc::new(Semaphore::new(limits.max_requests)),
        http,
        kill: CancellationToken::new(),
    });
    let connections = Arc::new(Semaphore::new(cap));
    accept_until(&listener, &connections, &shared, &shutdown).await;
    drop(listener);
    // Every connection holds a permit until it ends: all back means drained.
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    tokio::select! {
        _ = connections.acquire_many(all) => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(listener = name, "shutdown grace period over; dropping remaining connections");
            shared.kill.cancel();
        }
    }
    Ok(())
}

/// Accepts connections (while fewer than the cap are open) until `shutdown`.
async fn accept_until(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
) {
    loop {
        // At the cap, wait for a connection to end; the kernel holds new
        // ones in the listen backlog meanwhile.
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = shutdown.cancelled() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(
                    stream,
                    peer,
                    permit,
                    shared.clone(),
                    shutdown.clone(),
                ));
            }
            // The peer left before it was accepted: nothing to do.
            Err(e) if is_connection_error(&e) => {}
            // Out of descriptors (or the like): wait for some to free up.
            Err(e) => {
                tracing::warn!(listener = shared.name, error = %e, "accepting a connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serves one connection until it ends, the keep-alive age passes (then
/// after its current answer), `shutdown` (likewise) or the drain is over.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let name = shared.name;
    metrics::gauge!("http_connections_open", "listener" => name).increment(1.0);
    let svc = {
        let shared = shared.clone();
        hyper::service::service_fn(move |req| handle(shared.clone(), peer, req))
    };
    let conn = shared.http.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let done = tokio::select! {
        _ = conn.as_mut() => true,
        () = tokio::time::sleep(shared.limits.keep_alive_max) => false,
        () = shutdown.cancelled() => false,
        () = shared.kill.cancelled() => true,
    };
    if !done {
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = conn.as_mut() => {}
            () = shared.kill.cancelled() => {}
        }
    }
    metrics::gauge!("http_connections_open", "listener" => name).decrement(1.0);
    drop(permit);
}

/// One request: within the request cap, its body under the body timeout,
/// its answer under the deadline.
async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response, Infallible> {
    req.extensions_mut().insert(ConnectInfo(peer));
    let Ok(_permit) = shared.requests.clone().try_acquire_owned() else {
        metrics::counter!("http_requests_shed_total", "listener" => shared.name, "reason" => "requests")
            .increment(1);
        return Ok(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests at once; retry later",
        )
        .into_response());
    };
    let body_timeout = shared.limits.body_timeout;
    let req = req.map(|b| Body::new(TimeoutBody::new(body_timeout, b)));
    let deadline = shared.limits.request_timeout;
    match tokio::time::timeout(deadline, shared.router.clone().oneshot(req)).await {
        Ok(answered) => answered,
        Err(_) => {
            metrics::counter!("http_requests_shed_total", "listener" => shared.name, "reason" => "deadline")
                .increment(1);
            Ok(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "the request was not answered within {} s; retry later",
                    deadline.as_secs()
                ),
            )
            .into_response())
        }
    }
}

/// The connection cap that the file-descriptor limit allows: the soft
/// limit is raised towards the hard one when the cap needs it; a cap the
/// hard limit cannot hold is lowered (with a warning).
pub fn fit_descriptor_limit(name: &str, wanted: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let needed = wanted as u64 + RESERVED_FDS;
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    let available = if current >= needed {
        current
    } else {
        let raised = limit.maximum.map_or(needed, |max| max.min(needed));
        let new = Rlimit {
            current: Some(raised),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, new) {
            Ok(()) => raised,
            Err(_) => current,
        }
    };
    let cap = usize::try_from(available.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .clamp(1, wanted);
    if cap < wanted {
        tracing::warn!(
            listener = name,
            wanted,
            cap,
            "the file-descriptor limit (ulimit -n) is too low for CONNECTOR_HTTP_MAX_CONNECTIONS; \
             holding fewer connections"
        );
    }
    cap
}

fn describe_metrics() {
    metrics::describe_gauge!(
        "http_connections_open",
        "Connections a listener holds open, by listener"
    );
    metrics::describe_counter!(
        "http_requests_shed_total",
        "Requests answered 503 by the listener's limits, by listener and reason (requests: too many at once; deadline: not answered in time)"
    );
}
