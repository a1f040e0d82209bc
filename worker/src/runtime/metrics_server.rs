//! A minimal HTTP endpoint serving `GET /metrics` (Prometheus text format),
//! so the worker needs no web framework.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use tokio_util::sync::CancellationToken;

/// Binds `addr` and serves until `shutdown`.
pub async fn serve(addr: SocketAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    // Installs the recorder now, so nothing counted before the first scrape is lost.
    let handle = shared::telemetry::metrics();
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, "serving /metrics");
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(s) => s,
                    Err(_) => continue,
                },
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = if head.starts_with("GET /metrics ") {
                    ("200 OK", handle.render())
                } else {
                    ("404 Not Found", "GET /metrics\n".to_owned())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_prometheus_text() {
        let shutdown = CancellationToken::new();
        let addr = serve("127.0.0.1:0".parse().expect("valid"), shutdown.clone())
            .await
            .expect("binds");
        metrics::counter!("worker_events_total", "outcome" => "delivered", "reason" => "")
            .increment(1);
        let body = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("answers")
            .text()
            .await
            .expect("text");
        assert!(body.contains("worker_events_total"), "{body}");
        let missing = reqwest::get(format!("http://{addr}/other"))
            .await
            .expect("answers");
        assert_eq!(missing.status().as_u16(), 404);
        shutdown.cancel();
    }
}
