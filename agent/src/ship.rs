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

/// Builds request bodies, reusing its buffers from one request to the next.
///
/// The protobuf is written straight from the decoded lines (no intermediate message structs
/// copying every line), then snappy-compressed into a scratch buffer of the worst-case size;
/// only the compressed bytes are copied into the body that waits for the acknowledgement. A
/// body therefore holds about a quarter of its lines' bytes, not the 1.2x that compressing
/// into a fresh `max_compress_len` buffer would keep allocated per request in flight.
pub struct Encoder {
    proto: Vec<u8>,
    packed: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("proto_capacity", &self.proto.capacity())
            .field("packed_capacity", &self.packed.capacity())
            .finish()
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            proto: Vec::new(),
            packed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }
}

/// Scratch buffers above this size are given back after use (a large replay, a huge line).
const SCRATCH_KEEP: usize = 4 << 20;

impl Encoder {
    /// The request of `lines` of one file: one stream per output stream, lines in order, as
    /// Loki's `PushRequest` protobuf, snappy block-compressed.
    pub fn encode(&mut self, labels: &FileLabels, lines: &[LogLine]) -> bytes::Bytes {
        use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
        let proto = &mut self.proto;
        proto.clear();
        for kind in [StreamKind::Stdout, StreamKind::Stderr] {
            let ours = || lines.iter().filter(move |l| l.stream == kind);
            if ours().next().is_none() {
                continue;
            }
            let selector = selector(labels, kind);
            // StreamAdapter { labels = 1, entries = 2 }; EntryAdapter { timestamp = 1,
            // line = 2 }; Timestamp { seconds = 1, nanos = 2 }, zero fields omitted.
            let mut stream_len = 1 + encoded_len_varint(selector.len() as u64) + selector.len();
            for l in ours() {
                let n = entry_len(l);
                stream_len += 1 + encoded_len_varint(n as u64) + n;
            }
            encode_key(1, WireType::LengthDelimited, proto);
            encode_varint(stream_len as u64, proto);
            encode_key(1, WireType::LengthDelimited, proto);
            encode_varint(selector.len() as u64, proto);
            proto.extend_from_slice(selector.as_bytes());
            for l in ours() {
                let (seconds, nanos) = split_ts(l.ts_ns);
                encode_key(2, WireType::LengthDelimited, proto);
                encode_varint(entry_len(l) as u64, proto);
                encode_key(1, WireType::LengthDelimited, proto);
                encode_varint(ts_len(seconds, nanos) as u64, proto);
                if seconds != 0 {
                    encode_key(1, WireType::Varint, proto);
                    encode_varint(seconds as u64, proto);
                }
                if nanos != 0 {
                    encode_key(2, WireType::Varint, proto);
                    encode_varint(nanos as u64, proto);
                }
                // proto3 leaves an empty field out.
                if !l.text.is_empty() {
                    encode_key(2, WireType::LengthDelimited, proto);
                    encode_varint(l.text.len() as u64, proto);
                    proto.extend_from_slice(l.text.as_bytes());
                }
            }
        }
        let need = snap::raw::max_compress_len(proto.len());
        if self.packed.len() < need {
            self.packed.resize(need, 0);
        }
        // Snappy block format, as Loki's clients send it; it fails only on input over 4 GiB,
        // which a request bounded by the batch size never is.
        let n = self
            .snappy
            .compress(proto, &mut self.packed)
            .expect("snappy input is bounded by the batch size");
        let body = bytes::Bytes::copy_from_slice(&self.packed[..n]);
        if self.proto.capacity() > SCRATCH_KEEP {
            self.proto = Vec::new();
        }
        if self.packed.capacity() > SCRATCH_KEEP {
            self.packed = Vec::new();
        }
        body
    }
}

fn split_ts(ts_ns: i64) -> (i64, i32) {
    (
        ts_ns.div_euclid(1_000_000_000),
        ts_ns.rem_euclid(1_000_000_000) as i32,
    )
}

fn ts_len(seconds: i64, nanos: i32) -> usize {
    use prost::encoding::encoded_len_varint;
    let mut n = 0;
    if seconds != 0 {
        n += 1 + encoded_len_varint(seconds as u64);
    }
    if nanos != 0 {
        n += 1 + encoded_len_varint(nanos as u64);
    }
    n
}

fn entry_len(l: &LogLine) -> usize {
    use prost::encoding::encoded_len_varint;
    let (seconds, nanos) = split_ts(l.ts_ns);
    let ts = ts_len(seconds, nanos);
    let text = match l.text.len() {
        0 => 0,
        n => 1 + encoded_len_varint(n as u64) + n,
    };
    1 + encoded_len_varint(ts as u64) + ts + text
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
    use rand::SeedableRng;

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
        let body = Encoder::default().encode(&labels, &lines);
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

    /// The hand-written encoding is byte for byte what prost makes of the same message, for
    /// random lines (empty, long, multi-byte, either stream, timestamps around zero).
    #[test]
    fn hand_written_protobuf_equals_prosts_encoding() {
        use logstream_ingest::decode::loki_proto::{
            EntryAdapter, PushRequest, StreamAdapter, Timestamp,
        };
        use prost::Message;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut encoder = Encoder::default();
        let labels = FileLabels(vec![("pod".into(), "p\\1".into())]);
        for round in 0..200 {
            let lines: Vec<LogLine> = (0..rng.random_range(0..40))
                .map(|_| {
                    let ts = match rng.random_range(0..4) {
                        0 => 0,
                        1 => -rng.random_range(1..5_000_000_000i64),
                        2 => rng.random_range(0..1_000_000_000i64),
                        _ => 1_700_000_000_000_000_000 + rng.random_range(0..i64::from(u32::MAX)),
                    };
                    let len = if rng.random_bool(0.05) {
                        rng.random_range(200..70_000)
                    } else {
                        rng.random_range(0..30)
                    };
                    let text: String = (0..len)
                        .map(|_| ['a', 'é', '日', ' ', '"'][rng.random_range(0..5)])
                        .collect();
                    let stream = if rng.random_bool(0.3) {
                        StreamKind::Stderr
                    } else {
                        StreamKind::Stdout
                    };
                    line(ts, stream, &text)
                })
                .collect();
            let mut streams = Vec::new();
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
                if !entries.is_empty() {
                    streams.push(StreamAdapter {
                        labels: selector(&labels, kind),
                        entries,
                        hash: 0,
                    });
                }
            }
            let want = PushRequest { streams }.encode_to_vec();
            let body = encoder.encode(&labels, &lines);
            let got = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            assert_eq!(got, want, "round {round}: {} lines", lines.len());
        }
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
