//! The push endpoints: Loki's `POST /loki/api/v1/push` and the native NDJSON
//! `POST /ingest/v1/ndjson`. A request is decoded and validated whole, appended to the bus as
//! one record, and answered 2xx only once that record is durable.
//!
//! A sender that re-sends requests after a crash (the node agent) numbers them with the header
//! `X-LogStream-Origin: <seq> <source>`: `seq` a number that grows with each new request of
//! `source` (the agent sends the file offset the request ends at), `source` a name without
//! spaces of up to 256 visible ASCII characters. The request is appended as usual and the
//! processors store it once however often it comes (see [`logstream_bus::Origin`]).

use crate::decode::{self, DecodeError, Limits};
use crate::metrics::{IngestMetrics, TenantLabels};
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use logstream_bus::{Batch, Origin, Producer};
use std::sync::Arc;
use std::time::Instant;

/// Settings of the push endpoints.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Tenant of requests without `X-Scope-OrgID`.
    pub default_tenant: String,
    /// Largest request body accepted, before decompression.
    pub max_body_bytes: usize,
    pub limits: Limits,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            default_tenant: "default".into(),
            max_body_bytes: 16 * 1024 * 1024,
            limits: Limits::default(),
        }
    }
}

#[derive(Debug)]
pub struct IngestState {
    /// The embedded WAL or Kafka.
    pub bus: Arc<dyn Producer>,
    pub config: IngestConfig,
    pub metrics: IngestMetrics,
}

/// The push routes, for merging into a server's router.
pub fn router(state: Arc<IngestState>) -> Router {
    Router::new()
        .route("/loki/api/v1/push", post(loki_push))
        .route("/api/prom/push", post(loki_push))
        .route("/ingest/v1/ndjson", post(ndjson_push))
        .with_state(state)
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Loki,
    Ndjson,
}

async fn loki_push(State(s): State<Arc<IngestState>>, headers: HeaderMap, body: Body) -> Response {
    push(&s, Format::Loki, &headers, body).await
}

async fn ndjson_push(
    State(s): State<Arc<IngestState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    push(&s, Format::Ndjson, &headers, body).await
}

async fn push(s: &IngestState, format: Format, headers: &HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let tenant = match tenant_of(s, headers) {
        Ok(t) => t,
        Err(e) => return reject(s, "-", e.reason(), e.status(), &e.to_string()),
    };
    let body = match to_bytes(body, s.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            let msg = format!(
                "request body is larger than the limit of {} bytes",
                s.config.max_body_bytes
            );
            return reject(s, &tenant, "too_large", 413, &msg);
        }
    };
    let origin = match origin_of(headers) {
        Ok(o) => o,
        Err(msg) => return reject(s, &tenant, "bad_origin", 400, &msg),
    };
    let header = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let encoding = header(header::CONTENT_ENCODING);
    let now = now_ns();
    let decoded = match format {
        Format::Loki => decode::decode_loki_push(
            header(header::CONTENT_TYPE),
            encoding,
            &body,
            &s.config.limits,
            now,
        ),
        Format::Ndjson => decode::decode_ndjson(encoding, &body, &s.config.limits, now),
    };
    let streams = match decoded {
        Ok(streams) => streams,
        Err(e) => return reject(s, &tenant, e.reason(), e.status(), &e.to_string()),
    };
    let batch = Batch {
        tenant,
        streams,
        origin,
    };
    let (events, bytes) = (batch.event_count(), batch.line_bytes());
    if events > 0
        && let Err(e) = s.bus.append(&batch).await
    {
        return bus_error(s, &batch.tenant, &e);
    }
    let labels = TenantLabels {
        tenant: batch.tenant,
    };
    s.metrics
        .events
        .get_or_create(&labels)
        .inc_by(events as u64);
    s.metrics
        .line_bytes
        .get_or_create(&labels)
        .inc_by(bytes as u64);
    s.metrics
        .ack_seconds
        .observe(started.elapsed().as_secs_f64());
    match format {
        Format::Loki => StatusCode::NO_CONTENT.into_response(),
        Format::Ndjson => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"accepted\":{events}}}\n"),
        )
            .into_response(),
    }
}

fn tenant_of(s: &IngestState, headers: &HeaderMap) -> Result<String, DecodeError> {
    match headers.get("x-scope-orgid").map(|v| v.to_str()) {
        None => Ok(s.config.default_tenant.clone()),
        Some(Ok(id)) => {
            let id = id.trim();
            decode::validate_tenant(id)?;
            Ok(id.to_string())
        }
        Some(Err(_)) => Err(DecodeError::Tenant {
            id: String::from_utf8_lossy(headers["x-scope-orgid"].as_bytes()).into_owned(),
            problem: decode::TenantProblem::InvalidChar(char::REPLACEMENT_CHARACTER),
        }),
    }
}

/// The header a replaying sender numbers its requests with (see the module docs).
pub const ORIGIN_HEADER: &str = "x-logstream-origin";

fn origin_of(headers: &HeaderMap) -> Result<Option<Origin>, String> {
    let Some(value) = headers.get(ORIGIN_HEADER) else {
        return Ok(None);
    };
    let usage = "X-LogStream-Origin must be `<seq> <source>`: a number, one space, and a name of 1 to 256 visible ASCII characters without spaces";
    let text = value
        .to_str()
        .map_err(|_| format!("{usage}; it is not ASCII"))?;
    let (seq, source) = text
        .split_once(' ')
        .ok_or_else(|| format!("{usage}; got {text:?}"))?;
    let seq: u64 = seq
        .parse()
        .map_err(|_| format!("{usage}; {seq:?} is not a number"))?;
    if source.is_empty() || source.len() > 256 || !source.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{usage}; got source {source:?}"));
    }
    Ok(Some(Origin {
        source: source.to_string(),
        seq,
        part: 0,
    }))
}

fn bus_error(s: &IngestState, tenant: &str, e: &logstream_bus::Error) -> Response {
    use logstream_bus::Error as B;
    let (reason, status, retry_after) = match e {
        B::Full { .. } => ("bus_full", 429, "1"),
        B::DiskFull => ("disk_full", 503, "5"),
        B::Rejected(_) => ("bus_rejected", 500, "60"),
        _ => ("bus_unavailable", 503, "2"),
    };
    tracing::warn!(tenant, error = %e, "push refused by the bus");
    let mut resp = reject(s, tenant, reason, status, &e.to_string());
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
    resp
}

fn reject(s: &IngestState, tenant: &str, reason: &'static str, status: u16, msg: &str) -> Response {
    s.metrics.reject(tenant, reason);
    tracing::debug!(tenant, reason, status, error = msg, "push rejected");
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN_HEADER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn origin_header_is_read_or_refused_with_what_is_wrong() {
        assert_eq!(origin_of(&HeaderMap::new()), Ok(None));
        assert_eq!(
            origin_of(&with("4096 node-1/9f2c")),
            Ok(Some(Origin {
                source: "node-1/9f2c".into(),
                seq: 4096,
                part: 0
            }))
        );
        for (bad, names) in [
            ("4096", "got \"4096\""),
            ("x12 node/a", "\"x12\" is not a number"),
            ("12 ", "got source \"\""),
            ("12 a b", "got source \"a b\""),
        ] {
            let err = origin_of(&with(bad)).unwrap_err();
            assert!(err.starts_with("X-LogStream-Origin must be"), "{err}");
            assert!(err.contains(names), "{bad}: {err}");
        }
        let long = format!("1 {}", "a".repeat(257));
        assert!(origin_of(&with(&long)).is_err());
    }
}
