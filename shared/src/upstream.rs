//! Calls to HubSpot and impact.com: HTTP clients that follow no redirect,
//! and answers read with a size cap.
//!
//! A redirect is never followed: HubSpot and impact.com do not redirect
//! their API calls, and following one would send the bearer token or the
//! Basic credentials' request (and its body) wherever the `Location` says.
//! The 3xx answer itself comes back and is reported as an error naming it.
//!
//! An answer is read chunk by chunk and refused as soon as it passes its
//! cap (a declared `Content-Length` over the cap is refused before any
//! byte is read), so a misbehaving or hostile upstream cannot make a
//! process buffer gigabytes.

use bytes::{Bytes, BytesMut};

/// Cap of the large answers: HubSpot batch reads (100 records with their
/// properties), association pages, searches, impact.com listings.
pub const LARGE_ANSWER: usize = 10 * 1024 * 1024;

/// Cap of every other answer: tokens, introspection, a submission's
/// answer, error answers.
pub const SMALL_ANSWER: usize = 1024 * 1024;

/// A client builder for HubSpot and impact.com: no redirect is followed.
/// Every process builds its upstream clients from this.
pub fn client_builder() -> reqwest::ClientBuilder {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())
}

/// Why an answer's body could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The body is larger than the cap (declared or as read).
    #[error("answer larger than {cap} bytes: not read")]
    TooLarge {
        /// The cap, in bytes.
        cap: usize,
    },
    /// The connection failed while reading.
    #[error("reading the answer failed: {0}")]
    Transport(String),
}

/// Reads `resp`'s body, at most `cap` bytes.
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Bytes, ReadError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooLarge { cap });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ReadError::Transport(causes(&e.without_url())))?
    {
        if body.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// An error with its causes.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Reads an error answer's text for a message: at most [`SMALL_ANSWER`]
/// bytes; a larger or unreadable one is described instead.
pub async fn error_text(resp: reqwest::Response) -> String {
    match read_capped(resp, SMALL_ANSWER).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => format!("({e})"),
    }
}

/// The message of a 3xx answer: where it pointed, and that it was not followed.
pub fn redirect_message(service: &str, resp: &reqwest::Response) -> String {
    let to = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nowhere");
    format!(
        "{service} answered with a redirect ({} to {to}); redirects are not followed: check the configured API URL",
        resp.status().as_u16()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    /// A server answering every connection with `answer(n)` (n: the
    /// connection's number), counting connections.
    async fn server(
        answer: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(&answer(n)).await;
                let _ = s.shutdown().await;
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn a_redirect_is_returned_not_followed() {
        let (url, hits) = server(|_| {
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec()
        })
        .await;
        let client = client_builder().build().expect("client");
        let resp = client.get(&url).send().await.expect("answer");
        assert_eq!(resp.status().as_u16(), 302);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the Location was not requested"
        );
        assert!(redirect_message("HubSpot", &resp).contains("302 to /elsewhere"));
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused_declared_or_not() {
        let (url, _) = server(|n| {
            let body = vec![b'x'; 2048];
            let head = if n == 0 {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                // No length: read until the connection closes.
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_owned()
            };
            [head.into_bytes(), body].concat()
        })
        .await;
        let client = client_builder().build().expect("client");
        for _ in 0..2 {
            let resp = client.get(&url).send().await.expect("answer");
            assert_eq!(
                read_capped(resp, 1024).await,
                Err(ReadError::TooLarge { cap: 1024 })
            );
        }
        let resp = client.get(&url).send().await.expect("answer");
        assert_eq!(read_capped(resp, 4096).await.map(|b| b.len()), Ok(2048));
    }
}
