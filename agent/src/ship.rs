//! Sending requests to ingest until they are acknowledged.
//!
//! Wire format: Loki's push protobuf, snappy-compressed, to `POST /loki/api/v1/push`. It is
//! what ingest decodes fastest (no JSON escaping; snappy costs little CPU on either side for
//! the ~4x it saves on log text), and any Loki-compatible server takes it, so the agent can
//! ship to Loki itself. Each request carries `X-LogStream-Origin: <end offset> <node>/<file
//! fingerprint>`, by which the processors store a replayed request once.
//!
//! 2xx is an acknowledgement. 429, 5xx, timeouts and connection failures are retried with
//! exponential backoff and full jitter (honouring `Retry-After`), for as long as it takes: the
//! file is the buffer, and the reader stops reading while requests wait. Any other 4xx means
//! ingest will never take the request as it is (a line over its size limit, say): it is logged,
//! its lines counted as rejected, and the file goes on after it.

use crate::format::{LogLine, StreamKind};
use logstream_ingest::decode::loki_proto::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
use prost::Message;
use rand::Rng;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The stream labels of a file (without `stream`, which each line adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLabels(pub Vec<(String, String)>);

/// One request ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub tenant: Option<String>,
    /// `<node>/<fingerprint>`.
    pub source: String,
    /// The offset the request ends at.
    pub seq: u64,
    /// Snappy-compressed protobuf; shared, not copied, by each attempt.
    pub body: bytes::Bytes,
    pub lines: u64,
    pub bytes: u64,
}

/// Builds the request of `lines` of one file: one stream per output stream, lines in order.
pub fn encode(labels: &FileLabels, lines: &[LogLine]) -> Vec<u8> {
    let mut streams: Vec<StreamAdapter> = Vec::with_capacity(2);
    for kind in [StreamKind::Stdout, StreamKind::Stderr] {
        let entries: Vec<EntryAdapter> = lines
            .iter()
            .filter(|l| l.stream == kind)
            .map(|l| EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: l.ts_ns.div_euclid(1_000_000_000),
                    nanos: l.ts_ns.rem_euclid(1_000_000_000) as i32,
                }),
                line: l.text.as_bytes().to_vec(),
                structured_metadata: Vec::new(),
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        streams.push(StreamAdapter {
            labels: selector(labels, kind),
            entries,
            hash: 0,
        });
    }
    let proto = PushRequest { streams }.encode_to_vec();
    // Snappy block format, as Loki's clients send it; compressing a valid buffer cannot fail.
    snap::raw::Encoder::new()
        .compress_vec(&proto)
        .unwrap_or_default()
}

/// `{container="c", namespace="n", ..., stream="stdout"}`, values escaped like Go strings.
fn selector(labels: &FileLabels, kind: StreamKind) -> String {
    let mut pairs: Vec<(&str, &str)> = labels
        .0
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("stream", kind.as_str()));
    pairs.sort();
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    /// Refused for good (4xx other than 429): status and ingest's message.
    Rejected(u16, String),
    /// The agent is stopping; the request may or may not have arrived.
    Cancelled,
}

/// Sends requests to one ingest endpoint.
#[derive(Debug, Clone)]
pub struct Shipper {
    client: reqwest::Client,
    url: String,
    /// Called with each retry (status or error kind) for metrics.
    retries: prometheus_client::metrics::family::Family<
        crate::metrics::RetryLabels,
        prometheus_client::metrics::counter::Counter,
    >,
}

impl Shipper {
    /// `ingest` is the base URL (`http://host:3100`).
    pub fn new(
        ingest: &str,
        timeout: Duration,
        retries: prometheus_client::metrics::family::Family<
            crate::metrics::RetryLabels,
            prometheus_client::metrics::counter::Counter,
        >,
    ) -> Result<Self, String> {
        let base = ingest.trim_end_matches('/');
        let url = format!("{base}/loki/api/v1/push");
        reqwest::Url::parse(&url).map_err(|e| format!("invalid ingest URL {ingest:?}: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            client,
            url,
            retries,
        })
    }

    /// Sends `req` until ingest acknowledges or refuses it, or `cancel` fires.
    pub async fn send(&self, req: &Request, cancel: &CancellationToken) -> Outcome {
        let mut attempt: u32 = 0;
        loop {
            let (wait, reason) = match self.try_once(req).await {
                Ok(()) => return Outcome::Acked,
                Err(Failure::Rejected(status, msg)) => return Outcome::Rejected(status, msg),
                Err(Failure::Retry {
                    reason,
                    retry_after,
                }) => (retry_after, reason),
            };
            attempt = attempt.saturating_add(1);
            self.retries
                .get_or_create(&crate::metrics::RetryLabels {
                    reason: reason.clone(),
                })
                .inc();
            let delay = wait.unwrap_or_else(|| backoff(attempt));
            tracing::debug!(source = %req.source, seq = req.seq, %reason, ?delay, "push failed; retrying");
            if attempt == 5 {
                tracing::warn!(source = %req.source, %reason, "ingest keeps failing; retrying with backoff, reading paused");
            }
            tokio::select! {
                () = cancel.cancelled() => return Outcome::Cancelled,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn try_once(&self, req: &Request) -> Result<(), Failure> {
        let mut r = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .header(
                logstream_ingest::http::ORIGIN_HEADER,
                format!("{} {}", req.seq, req.source),
            )
            .body(req.body.clone());
        // (`Bytes` clones share the buffer: a retried request costs no copy.)
        if let Some(t) = &req.tenant {
            r = r.header("x-scope-orgid", t);
        }
        let resp = match r.send().await {
            Ok(resp) => resp,
            Err(e) => {
                let reason = if e.is_connect() {
                    "connect"
                } else if e.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                return Err(Failure::Retry {
                    reason: reason.into(),
                    retry_after: None,
                });
            }
        };
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(60)));
        let text = resp.text().await.unwrap_or_default();
        if status == 429 || status >= 500 || status == 408 {
            return Err(Failure::Retry {
                reason: status.to_string(),
                retry_after,
            });
        }
        Err(Failure::Rejected(status, text.trim().to_string()))
    }
}

enum Failure {
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Rejected(u16, String),
}

/// Exponential backoff from 100 ms to 10 s with full jitter: agents on many nodes that lost
/// ingest together do not come back in step.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (100u64 << attempt.min(7)).min(10_000);
    Duration::from_millis(rand::rng().random_range(cap_ms / 2..=cap_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstream_ingest::decode::{Limits, decode_loki_push};

    fn line(ts_ns: i64, stream: StreamKind, text: &str) -> LogLine {
        LogLine {
            ts_ns,
            stream,
            text: text.into(),
            end: 0,
        }
    }

    #[test]
    fn requests_decode_in_ingest_as_one_stream_per_output_stream() {
        let labels = FileLabels(vec![
            ("namespace".into(), "shop".into()),
            ("pod".into(), "api-1".into()),
            ("container".into(), "srv \"x\"".into()),
        ]);
        let lines = [
            line(1_700_000_000_123_456_789, StreamKind::Stdout, "a"),
            line(1_700_000_000_123_456_790, StreamKind::Stderr, "oops"),
            line(1_700_000_000_123_456_791, StreamKind::Stdout, "b"),
        ];
        let body = encode(&labels, &lines);
        let streams = decode_loki_push(
            Some("application/x-protobuf"),
            Some("snappy"),
            &body,
            &Limits::default(),
            1_700_000_000_000_000_000,
        )
        .unwrap();
        let got: Vec<(String, Vec<(i64, String)>)> = streams
            .iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.entries
                        .iter()
                        .map(|e| (e.ts_ns, e.line.clone()))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    r#"{container="srv \"x\"", namespace="shop", pod="api-1", stream="stdout"}"#
                        .to_string(),
                    vec![
                        (1_700_000_000_123_456_789, "a".to_string()),
                        (1_700_000_000_123_456_791, "b".to_string())
                    ]
                ),
                (
                    r#"{container="srv \"x\"", namespace="shop", pod="api-1", stream="stderr"}"#
                        .to_string(),
                    vec![(1_700_000_000_123_456_790, "oops".to_string())]
                ),
            ]
        );
    }

    #[test]
    fn backoff_grows_to_ten_seconds_with_jitter() {
        for _ in 0..100 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
            let late = backoff(30);
            assert!(late >= Duration::from_secs(5) && late <= Duration::from_secs(10));
        }
    }
}
