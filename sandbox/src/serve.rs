//! A small HTTP server loop for the fakes: an axum router behind hyper, with a
//! way for a handler to make the server drop the connection without answering
//! (fault injection), and a clean stop.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Put this in a response's extensions to close the connection instead of
/// sending that response: the client sees a connection reset / incomplete
/// message, as with a real network drop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// The error hyper receives when a handler asked for a dropped connection.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose by the sandbox")
    }
}

impl std::error::Error for Dropped {}

/// A running server: its bound address and the means to stop it.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves `router` until stopped.
    pub(crate) async fn start(addr: SocketAddr, router: Router) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, router, cancel.clone()));
        Ok(Server { addr, cancel, task })
    }

    /// Stops accepting and aborts open connections.
    pub(crate) async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, router: Router, cancel: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished connections so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let router = router.clone();
                async move {
                    let resp = match router.oneshot(req.map(Body::new)).await {
                        Ok(resp) => resp,
                        Err(never) => match never {},
                    };
                    if resp.extensions().get::<DropConnection>().is_some() {
                        return Err(Dropped);
                    }
                    Ok::<_, Dropped>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
    conns.shutdown().await;
}
