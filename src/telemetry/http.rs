//! `/metrics` (Prometheus text format), `/healthz` (the process is alive) and `/readyz`
//! (partitions assigned, the sink answering, not paused for backpressure).

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
/// current runtime.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(metrics, health);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(local)
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
}
