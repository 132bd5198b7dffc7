//! NDJSON: timestamp forms, message and metadata rules, grouping, and located errors.

use super::support::{NOW, assert_error, gzip, summary};
use crate::decode::{DecodeError, Limits, decode_ndjson};
use logstream_bus::Stream;

fn decode(body: &str) -> Result<Vec<Stream>, DecodeError> {
    decode_ndjson(None, body.as_bytes(), &Limits::default(), NOW)
}

fn only_entry(line: &str) -> logstream_bus::Entry {
    let mut streams = decode(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(streams.len(), 1, "{line}");
    assert_eq!(streams[0].entries.len(), 1, "{line}");
    streams.remove(0).entries.remove(0)
}

#[test]
fn every_timestamp_form_gives_exact_nanoseconds() {
    let cases = [
        (
            r#"{"timestamp":"2023-11-14T22:13:20Z","msg":"m"}"#,
            1_700_000_000_000_000_000,
        ),
        (
            r#"{"ts":"2023-11-14T22:13:20.123456789Z","msg":"m"}"#,
            1_700_000_000_123_456_789,
        ),
        (
            r#"{"time":"2023-11-14T23:13:20.5+01:00","msg":"m"}"#,
            1_700_000_000_500_000_000,
        ),
        (
            r#"{"@timestamp":"2023-11-14T22:13:20.001Z","message":"m"}"#,
            1_700_000_000_001_000_000,
        ),
        (r#"{"ts":1700000000,"msg":"m"}"#, 1_700_000_000_000_000_000),
        (
            r#"{"ts":1700000000.25,"msg":"m"}"#,
            1_700_000_000_250_000_000,
        ),
        (
            r#"{"ts":1700000000123,"msg":"m"}"#,
            1_700_000_000_123_000_000,
        ),
        (
            r#"{"ts":1700000000123456,"msg":"m"}"#,
            1_700_000_000_123_456_000,
        ),
        (
            r#"{"ts":1700000000123456789,"msg":"m"}"#,
            1_700_000_000_123_456_789,
        ),
        (
            r#"{"ts":"1700000000.123456789","msg":"m"}"#,
            1_700_000_000_123_456_789,
        ),
        (
            r#"{"ts":"1700000000123","msg":"m"}"#,
            1_700_000_000_123_000_000,
        ),
        (
            r#"{"ts":null,"time":"1700000000","msg":"m"}"#,
            1_700_000_000_000_000_000,
        ),
        (
            r#"{"time":1,"ts":1700000000,"msg":"m"}"#,
            1_700_000_000_000_000_000,
        ),
        (r#"{"msg":"no timestamp"}"#, NOW),
    ];
    for (line, want) in cases {
        assert_eq!(only_entry(line).ts_ns, want, "{line}");
    }
}

#[test]
fn message_priority_and_metadata_follow_field_order() {
    let entry = only_entry(
        r#"{"level":"info","msg":"lower","message":"chosen","log":{"file":"a.go"},"n":5,"f":1.5,"ok":true,"gone":null,"list":[1,"two"],"esc":"a\"b","time":"1700000000"}"#,
    );
    assert_eq!(entry.line, "chosen");
    let want = [
        ("level", "info"),
        ("msg", "lower"),
        ("log", r#"{"file":"a.go"}"#),
        ("n", "5"),
        ("f", "1.5"),
        ("ok", "true"),
        ("list", r#"[1,"two"]"#),
        ("esc", "a\"b"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(entry.metadata, want);
    assert_eq!(only_entry(r#"{"line":"l","log":"g"}"#).line, "g");
    assert_eq!(only_entry(r#"{"line":"l"}"#).line, "l");
}

#[test]
fn lines_group_by_label_set_keeping_order() {
    let body = concat!(
        r#"{"ts":1,"msg":"a1","labels":{"app":"a","env":"p"}}"#,
        "\r\n",
        "\n",
        r#"{"ts":2,"msg":"b1","labels":{"app":"b"}}"#,
        "\n",
        "   \r\n",
        r#"{"ts":3,"msg":"n1"}"#,
        "\n",
        r#"{"ts":4,"msg":"a2","labels":{"env":"p","app":"a"}}"#,
        "\n",
        r#"{"ts":5,"msg":"a3","labels":{"env":"p","app":"a","x":""}}"#,
        "\n",
        r#"{"ts":6,"msg":"n2","labels":null}"#,
        "\n",
        r#"{"ts":7,"msg":"b2","labels":{"app":"b"}}"#,
    );
    let got: Vec<(String, Vec<String>)> = summary(&decode(body).unwrap())
        .into_iter()
        .map(|(labels, entries)| (labels, entries.into_iter().map(|e| e.1).collect()))
        .collect();
    let want = [
        (r#"{app="a", env="p"}"#, vec!["a1", "a2", "a3"]),
        (r#"{app="b"}"#, vec!["b1", "b2"]),
        ("{}", vec!["n1", "n2"]),
    ];
    let want: Vec<(String, Vec<String>)> = want
        .iter()
        .map(|(l, e)| (l.to_string(), e.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn empty_bodies_yield_nothing() {
    for body in ["", "\n\n", " \r\n \t\n"] {
        assert_eq!(decode(body).unwrap(), vec![], "{body:?}");
    }
}

#[test]
fn invalid_lines_are_located() {
    let ok = r#"{"ts":1,"msg":"m"}"#;
    let long = format!(r#"{{"msg":"{}"}}"#, "x".repeat(262_145));
    let cases = [
        (
            format!("{ok}\n\n{ok}\n{ok}\n{ok}\n\n{{\"ts\":1}}"),
            "line 7: no message field (expected one of message, msg, log, line)",
        ),
        (
            r#"{"msg":5}"#.into(),
            r#"line 1: message field "msg" must be a string"#,
        ),
        (r#"{"msg":null}"#.into(), "line 1: no message field"),
        (
            format!("{ok}\n{{\"msg\": }}"),
            "line 2: invalid JSON at column 9: expected value",
        ),
        (
            r#"[1]"#.into(),
            "line 1: invalid JSON at column 0: invalid type: sequence, expected a JSON object",
        ),
        (
            r#"{"msg":"m"} {"msg":"n"}"#.into(),
            "line 1: invalid JSON at column 13: trailing characters",
        ),
        (
            r#"{"msg":"m","labels":"app"}"#.into(),
            r#"line 1: invalid JSON at column 25: invalid type: string "app", expected "labels" to be an object"#,
        ),
        (
            r#"{"msg":"m","labels":{"app":1}}"#.into(),
            "line 1: invalid JSON at column 28: invalid type: integer `1`, expected a string",
        ),
        (
            r#"{"msg":"m","labels":{"1abc":"x"}}"#.into(),
            r#"line 1: label name "1abc" is invalid (must match [a-zA-Z_][a-zA-Z0-9_]*)"#,
        ),
        (
            r#"{"msg":"m","labels":{"a":"1","a":"2"}}"#.into(),
            r#"line 1: duplicate label name "a""#,
        ),
        (
            r#"{"msg":"m","ts":"soon"}"#.into(),
            r#"line 1: timestamp "soon" is neither RFC 3339 nor a number"#,
        ),
        (
            r#"{"msg":"m","ts":true}"#.into(),
            r#"line 1: timestamp field "ts" must be a string or a number"#,
        ),
        (
            r#"{"msg":"m","ts":0}"#.into(),
            "line 1: timestamp 0 is not after the unix epoch",
        ),
        (
            r#"{"msg":"m","ts":"2027-01-15T08:20:00Z"}"#.into(),
            "line 1: timestamp 2027-01-15T08:20:00Z is more than 10m in the future",
        ),
        (
            long,
            "line 1: line is 262145 bytes, over the limit of 262144",
        ),
        (
            r#"{"msg":"m","":"v"}"#.into(),
            "line 1: structured metadata has an empty name",
        ),
    ];
    for (body, want) in cases {
        assert_error(decode(&body), 400, want);
    }
}

#[test]
fn invalid_utf8_names_its_line() {
    let body = b"{\"msg\":\"ok\"}\n\n{\"msg\":\"bad \xff\"}\n{\"msg\":\"ok\"}";
    let got = decode_ndjson(None, body, &Limits::default(), NOW);
    assert_error(
        got,
        400,
        "line 3: line is not valid UTF-8 (invalid utf-8 sequence of 1 bytes from index 12)",
    );
}

#[test]
fn encodings_and_limits_apply() {
    let body = "{\"msg\":\"m\",\"ts\":1}\n".repeat(1000);
    let limits = Limits {
        max_decompressed_bytes: 8 << 10,
        ..Limits::default()
    };
    let got = decode_ndjson(
        Some("gzip"),
        &gzip(body.as_bytes()),
        &Limits::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(got[0].entries.len(), 1000);
    assert_error(
        decode_ndjson(Some("gzip"), &gzip(body.as_bytes()), &limits, NOW),
        413,
        "body decompresses to more than 8192 bytes (limit)",
    );
    assert_error(
        decode_ndjson(Some("lz4"), body.as_bytes(), &limits, NOW),
        415,
        r#"unsupported content encoding "lz4""#,
    );
    assert_error(
        decode_ndjson(Some("deflate"), b"junk", &limits, NOW),
        400,
        "invalid deflate data: ",
    );
}
