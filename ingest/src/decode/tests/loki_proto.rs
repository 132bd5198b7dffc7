//! Loki protobuf push: framing variants round-trip, and every located error.

use super::support::{
    NOW, Summary, assert_error, deflate, gzip, pb_entry, pb_request, pb_stream, snappy,
    snappy_framed, summary,
};
use crate::decode::loki_proto::{EntryAdapter, Timestamp};
use crate::decode::{DecodeError, Limits, decode_loki_push};
use logstream_bus::Stream;

const PROTOBUF: Option<&str> = Some("application/x-protobuf");

fn decode(encoding: Option<&str>, body: &[u8]) -> Result<Vec<Stream>, DecodeError> {
    decode_loki_push(PROTOBUF, encoding, body, &Limits::default(), NOW)
}

fn sample_request() -> Vec<u8> {
    pb_request(vec![
        pb_stream(
            r#"{app="api", env="prod"}"#,
            vec![
                pb_entry(1_700_000_000_000_000_001, "first", &[]),
                pb_entry(
                    1_700_000_000_000_000_002,
                    "second",
                    &[("trace_id", "abc"), ("user", "u1")],
                ),
            ],
        ),
        pb_stream(
            "{job=`raw\\path`, app=\"web\\t\"}",
            vec![pb_entry(1_700_000_000_123_456_789, "é 😀", &[])],
        ),
        pb_stream(
            r#"{env="prod", app="api"}"#,
            vec![pb_entry(1_700_000_000_000_000_003, "third", &[])],
        ),
        pb_stream(r#"{app="empty"}"#, vec![]),
    ])
}

fn sample_summary() -> Summary {
    let meta = vec![
        ("trace_id".to_string(), "abc".to_string()),
        ("user".to_string(), "u1".to_string()),
    ];
    vec![
        (
            r#"{app="api", env="prod"}"#.into(),
            vec![
                (1_700_000_000_000_000_001, "first".into(), vec![]),
                (1_700_000_000_000_000_002, "second".into(), meta),
                (1_700_000_000_000_000_003, "third".into(), vec![]),
            ],
        ),
        (
            r#"{app="web\t", job="raw\\path"}"#.into(),
            vec![(1_700_000_000_123_456_789, "é 😀".into(), vec![])],
        ),
    ]
}

#[test]
fn every_framing_round_trips() {
    let pb = sample_request();
    let cases: Vec<(Option<&str>, Option<&str>, Vec<u8>)> = vec![
        (PROTOBUF, None, snappy(&pb)),
        (None, None, snappy(&pb)),
        (Some("text/plain"), None, snappy(&pb)),
        (PROTOBUF, Some("snappy"), snappy(&pb)),
        (PROTOBUF, Some("snappy"), snappy_framed(&pb)),
        (PROTOBUF, Some("gzip"), gzip(&snappy(&pb))),
        (PROTOBUF, Some("gzip"), gzip(&pb)),
        (PROTOBUF, Some("deflate"), deflate(&pb)),
        (PROTOBUF, Some("deflate"), deflate(&snappy(&pb))),
    ];
    for (content_type, encoding, body) in cases {
        let got = decode_loki_push(content_type, encoding, &body, &Limits::default(), NOW);
        let got = got.unwrap_or_else(|e| panic!("{content_type:?} {encoding:?}: {e}"));
        assert_eq!(
            summary(&got),
            sample_summary(),
            "{content_type:?} {encoding:?}"
        );
    }
}

#[test]
fn empty_requests_yield_nothing() {
    let empty_pb = pb_request(vec![]);
    for (encoding, body) in [
        (None, vec![]),
        (None, snappy(&empty_pb)),
        (Some("gzip"), gzip(&[])),
        (Some("gzip"), gzip(&snappy(&empty_pb))),
    ] {
        assert_eq!(
            decode(encoding, &body).unwrap(),
            vec![],
            "{encoding:?} {body:?}"
        );
    }
}

fn one_entry(labels: &str, entry: EntryAdapter) -> Vec<u8> {
    snappy(&pb_request(vec![pb_stream(labels, vec![entry])]))
}

#[test]
fn invalid_streams_and_entries_are_located() {
    let ok = || pb_entry(1_700_000_000_000_000_000, "l", &[]);
    let no_ts = EntryAdapter {
        timestamp: None,
        ..ok()
    };
    let bad_nanos = EntryAdapter {
        timestamp: Some(Timestamp {
            seconds: 1,
            nanos: -1,
        }),
        ..ok()
    };
    let not_utf8 = EntryAdapter {
        line: vec![b'a', 0xff],
        ..ok()
    };
    let cases = [
        (
            one_entry("{app=x}", ok()),
            r#"streams[0]: cannot parse labels "{app=x}": expected a quoted label value at byte 5"#,
        ),
        (
            one_entry(r#"{app!="x"}"#, ok()),
            r#"only equality matchers (=) are allowed, found "!=" at byte 4"#,
        ),
        (
            one_entry(r#"{1abc="x"}"#, ok()),
            r#"streams[0]: label name "1abc" is invalid (must match [a-zA-Z_][a-zA-Z0-9_]*)"#,
        ),
        (one_entry("{}", ok()), "streams[0]: stream has no labels"),
        (
            one_entry(r#"{a="1", a="2"}"#, ok()),
            r#"streams[0]: duplicate label name "a""#,
        ),
        (
            one_entry(r#"{a="1"}"#, no_ts),
            "streams[0].entries[0]: timestamp is missing",
        ),
        (
            one_entry(r#"{a="1"}"#, bad_nanos),
            "streams[0].entries[0]: timestamp seconds=1 nanos=-1 is out of range",
        ),
        (
            one_entry(r#"{a="1"}"#, not_utf8),
            "streams[0].entries[0]: line is not valid UTF-8",
        ),
        (
            one_entry(r#"{a="1"}"#, pb_entry(1, &"x".repeat(262_145), &[])),
            "streams[0].entries[0]: line is 262145 bytes, over the limit of 262144",
        ),
        (
            one_entry(r#"{a="1"}"#, pb_entry(NOW + 700_000_000_000, "l", &[])),
            "streams[0].entries[0]: timestamp 2027-01-15T08:11:40Z is more than 10m in the future",
        ),
        (
            one_entry(r#"{a="1"}"#, pb_entry(1, "l", &[("", "v")])),
            "streams[0].entries[0]: structured metadata has an empty name",
        ),
        (
            snappy(&pb_request(vec![
                pb_stream(r#"{a="1"}"#, vec![ok()]),
                pb_stream(r#"{a="2"}"#, vec![ok(), ok(), pb_entry(0, "l", &[])]),
            ])),
            "streams[1].entries[2]: timestamp 0 is not after the unix epoch",
        ),
    ];
    for (body, want) in cases {
        assert_error(decode(None, &body), 400, want);
    }
}

#[test]
fn streams_without_entries_are_dropped_unread() {
    let body = snappy(&pb_request(vec![
        pb_stream("not a selector", vec![]),
        pb_stream(r#"{a="1"}"#, vec![pb_entry(1, "l", &[])]),
    ]));
    assert_eq!(decode(None, &body).unwrap().len(), 1);
}

#[test]
fn corrupt_and_oversized_bodies_are_refused() {
    let pb = sample_request();
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    let zeros = vec![0u8; 4 << 20];
    let bomb = |encoding, body: Vec<u8>| decode_loki_push(PROTOBUF, encoding, &body, &limits, NOW);
    assert_error(decode(None, &pb), 400, "invalid snappy data: ");
    assert_error(
        decode(Some("snappy"), b"\xff\xff\xff"),
        400,
        "invalid snappy data: ",
    );
    assert_error(
        decode(None, &snappy(b"\x0a\x05abc")),
        400,
        "invalid protobuf: ",
    );
    assert_error(
        decode(Some("gzip"), &gzip(b"\x0a\x05abc")),
        400,
        "invalid protobuf: ",
    );
    assert_error(decode(Some("gzip"), &pb), 400, "invalid gzip data: ");
    assert_error(
        bomb(None, snappy(&zeros)),
        413,
        "body decompresses to more than 1048576 bytes (limit)",
    );
    assert_error(
        bomb(Some("snappy"), snappy_framed(&zeros)),
        413,
        "body decompresses to more than 1048576 bytes (limit)",
    );
    assert_error(
        bomb(Some("gzip"), gzip(&zeros)),
        413,
        "body decompresses to more than 1048576 bytes (limit)",
    );
    assert_error(
        bomb(Some("gzip"), gzip(&snappy(&zeros))),
        413,
        "body decompresses to more than 1048576 bytes (limit)",
    );
    assert_error(
        bomb(Some("zstd"), snappy(&pb)),
        415,
        r#"unsupported content encoding "zstd""#,
    );
}
