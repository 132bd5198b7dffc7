//! Logs, metrics and health endpoints every long-running role serves.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Starts `tracing` output; `RUST_LOG` overrides `default_filter`.
pub fn init_logging(default_filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Whether the process is ready to serve: set once start-up (recovery) has finished and
/// cleared when shutdown begins, so load balancers stop sending work first.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A liveness check beyond "the process answers" (the agent: its reader thread turns).
pub type Liveness = Arc<dyn Fn() -> bool + Send + Sync>;

struct Ops {
    registry: Registry,
    ready: Readiness,
    alive: Option<Liveness>,
    started: Option<Liveness>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops").field("ready", &self.ready).finish()
    }
}

/// `/metrics` (OpenMetrics text), `/healthz` (the process answers) and `/readyz`.
pub fn ops_router(registry: Registry, ready: Readiness) -> Router {
    ops_router_with(registry, ready, None, None)
}

/// [`ops_router`] whose `/healthz` also asks `alive` and `/readyz` also `started`.
pub fn ops_router_with(
    registry: Registry,
    ready: Readiness,
    alive: Option<Liveness>,
    started: Option<Liveness>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(Ops {
            registry,
            ready,
            alive,
            started,
        }))
}

async fn healthz(State(ops): State<Arc<Ops>>) -> impl IntoResponse {
    if ops.alive.as_ref().is_none_or(|alive| alive()) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stalled\n")
    }
}

async fn metrics(State(ops): State<Arc<Ops>>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &ops.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encode metrics: {e}\n"),
        ),
    }
}

async fn readyz(State(ops): State<Arc<Ops>>) -> impl IntoResponse {
    if ops.ready.is_ready() && ops.started.as_ref().is_none_or(|started| started()) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
