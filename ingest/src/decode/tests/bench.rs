//! A micro-benchmark of decode throughput on 100k synthetic entries of ~150-byte lines. Run it
//! in release: `cargo test -p logstream-ingest --release -- --ignored --nocapture throughput`.

use super::support::{NOW, pb_entry, pb_request, pb_stream, snappy};
use crate::decode::{Limits, decode_loki_push, decode_ndjson};
use std::time::{Duration, Instant};

const ENTRIES: usize = 100_000;
const STREAMS: usize = 10;
const ROUNDS: usize = 5;

/// A ~150-byte log line, different per entry.
fn line(i: usize) -> String {
    format!(
        "2023-11-14T22:13:20.{:06}Z level=info caller=handler.go:{} msg=\"request served\" method=GET path=/api/v1/items/{i} status=200 dur_ms={}",
        i % 1_000_000,
        i % 500,
        i % 977
    )
}

fn ts(i: usize) -> i64 {
    1_700_000_000_000_000_000 + i as i64
}

fn loki_json_body() -> Vec<u8> {
    let mut body = String::from(r#"{"streams":["#);
    for s in 0..STREAMS {
        let sep = if s == 0 { "" } else { "," };
        body.push_str(&format!(
            r#"{sep}{{"stream":{{"app":"app{s}","env":"prod"}},"values":["#
        ));
        for i in (s..ENTRIES).step_by(STREAMS) {
            let sep = if i == s { "" } else { "," };
            body.push_str(&format!(
                r#"{sep}["{}",{}]"#,
                ts(i),
                serde_json::Value::from(line(i))
            ));
        }
        body.push_str("]}");
    }
    body.push_str("]}");
    body.into_bytes()
}

fn protobuf_body() -> Vec<u8> {
    let streams = (0..STREAMS)
        .map(|s| {
            let entries = (s..ENTRIES)
                .step_by(STREAMS)
                .map(|i| pb_entry(ts(i), &line(i), &[]))
                .collect();
            pb_stream(&format!(r#"{{app="app{s}", env="prod"}}"#), entries)
        })
        .collect();
    snappy(&pb_request(streams))
}

fn ndjson_body() -> Vec<u8> {
    let mut body = String::new();
    for i in 0..ENTRIES {
        let row = serde_json::json!({"ts": ts(i).to_string(), "msg": line(i), "labels": {"app": format!("app{}", i % STREAMS), "env": "prod"}});
        body.push_str(&format!("{row}\n"));
    }
    body.into_bytes()
}

/// The best of a few timed runs of `decode`, which must return `ENTRIES` entries.
fn best(mut decode: impl FnMut() -> usize) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(decode(), ENTRIES);
            start.elapsed()
        })
        .min()
        .unwrap()
}

fn report(name: &str, body_len: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{name:<22} {:>6.2} M events/s  {:>7.1} MB/s body  ({:.1} ms per {ENTRIES})",
        ENTRIES as f64 / secs / 1e6,
        body_len as f64 / secs / 1e6,
        secs * 1e3
    );
}

#[test]
#[ignore = "micro-benchmark; run in release with --ignored --nocapture"]
fn decode_throughput_micro_benchmark() {
    let limits = Limits::default();
    let count = |streams: Vec<logstream_bus::Stream>| streams.iter().map(|s| s.entries.len()).sum();
    let json = loki_json_body();
    let elapsed = best(|| {
        count(decode_loki_push(Some("application/json"), None, &json, &limits, NOW).unwrap())
    });
    report("loki json", json.len(), elapsed);
    let pb = protobuf_body();
    let elapsed = best(|| count(decode_loki_push(None, None, &pb, &limits, NOW).unwrap()));
    report("loki protobuf+snappy", pb.len(), elapsed);
    let ndjson = ndjson_body();
    let elapsed = best(|| count(decode_ndjson(None, &ndjson, &limits, NOW).unwrap()));
    report("ndjson", ndjson.len(), elapsed);
}
