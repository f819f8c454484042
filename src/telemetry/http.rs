//! `/metrics` (Prometheus text format), `/healthz` (the process is alive) and `/readyz`
//! (partitions assigned, the sink answering, not paused for backpressure).
//!
//! The listener bounds what a client can hold (F10 of the security review of 2026-12):
//! at most [`Limits::max_connections`] connections at once (more are closed on arrival),
//! a request's headers must arrive within [`Limits::header_read_timeout`] (an idle
//! keep-alive connection is closed after it too), and no connection lives longer than
//! [`MAX_CONNECTION_LIFETIME`]. It has no authentication: beyond loopback, a network
//! policy must decide who reaches it.

use super::Metrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::Encoder;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Connections served at once by default (a Prometheus or two, a probe, a person).
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// Default wait for a request's headers, in milliseconds.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 5_000;

/// The longest any connection is kept, whatever it does (a backstop for a client that
/// sends its headers and then reads the answer slowly).
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What one client may hold of the listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; one more is closed as it arrives.
    pub max_connections: usize,
    /// Longest wait for a request's headers.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
        }
    }
}

/// What `/readyz` answers from, kept current by the stream loop.
#[derive(Debug, Default)]
pub struct Health {
    /// Partitions assigned to this instance.
    pub assigned: AtomicUsize,
    /// Paused for backpressure (the sink refuses writes).
    pub paused: AtomicBool,
    /// The last sink write succeeded.
    pub sink_ok: AtomicBool,
}

impl Health {
    /// `None` when ready, else why not.
    pub fn not_ready(&self) -> Option<&'static str> {
        if self.assigned.load(Ordering::Relaxed) == 0 {
            Some("no partition assigned")
        } else if self.paused.load(Ordering::Relaxed) {
            Some("paused: the sink refuses writes")
        } else if !self.sink_ok.load(Ordering::Relaxed) {
            Some("the sink has not answered yet")
        } else {
            None
        }
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The router (tests call it without a socket).
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Shared { metrics, health })
}

async fn metrics_text(State(s): State<Shared>) -> impl IntoResponse {
    let encoder = prometheus::TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&s.metrics.registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_owned())],
            e.to_string().into_bytes(),
        ),
    }
}

async fn ready(State(s): State<Shared>) -> impl IntoResponse {
    match s.health.not_ready() {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Binds `addr` now (so a taken port fails at start) and serves in the background on the
/// current runtime, within `limits`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    limits: Limits,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(metrics, health);
    tokio::spawn(accept_loop(listener, app, limits));
    Ok(local)
}

/// Accepts connections while a slot is free, each served by hyper with the header-read
/// timeout, within [`MAX_CONNECTION_LIFETIME`].
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, limits: Limits) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, usually: wait instead of spinning.
                tracing::warn!(error = %e, "the metrics listener could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(
                max = limits.max_connections,
                "metrics listener full: connection closed"
            );
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // Errors here are a client's (a timeout, a reset): nothing to report.
            let _ = tokio::time::timeout(MAX_CONNECTION_LIFETIME, conn).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_metrics_health_and_readiness() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let metrics = Arc::new(Metrics::new());
        metrics.documents.inc();
        let health = Arc::new(Health::default());
        let addr = rt
            .block_on(serve(
                "127.0.0.1:0".parse().unwrap(),
                Arc::clone(&metrics),
                Arc::clone(&health),
                Limits::default(),
            ))
            .unwrap();
        let m = get(addr, "/metrics");
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        assert!(m.contains("mfa_audit_documents_total 1"), "{m}");
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));
        let r = get(addr, "/readyz");
        assert!(
            r.starts_with("HTTP/1.1 503") && r.contains("no partition assigned"),
            "{r}"
        );
        health.assigned.store(3, Ordering::Relaxed);
        health.sink_ok.store(true, Ordering::Relaxed);
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 200"));
        health.paused.store(true, Ordering::Relaxed);
        assert!(get(addr, "/readyz").contains("paused"));
        assert!(get(addr, "/nothing").starts_with("HTTP/1.1 404"));
    }

    /// F10 of the security review of 2026-12: connections that never finish their
    /// headers were held forever, and their number had no cap.
    #[test]
    fn idle_connections_are_capped_and_timed_out() {
        use std::time::Instant;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let limits = Limits {
            max_connections: 4,
            header_read_timeout: Duration::from_millis(500),
        };
        let addr = rt
            .block_on(serve(
                "127.0.0.1:0".parse().unwrap(),
                Arc::new(Metrics::new()),
                Arc::new(Health::default()),
                limits,
            ))
            .unwrap();
        // Four clients send half a request and stop, as in the review.
        let started = Instant::now();
        let mut idle: Vec<_> = (0..4)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        // A fifth is closed at once: the cap holds.
        let mut fifth = std::net::TcpStream::connect(addr).unwrap();
        fifth
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut buf = String::new();
        let n = fifth.read_to_string(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "over the cap, yet answered: {buf}");
        // The idle four are closed by the header-read timeout, well before 5 s.
        for s in &mut idle {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "idle connections held {took:?}"
        );
        // Their slots are free again.
        std::thread::sleep(Duration::from_millis(100));
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));
    }
}
