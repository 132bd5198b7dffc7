//! Loki JSON push: accepted shapes and every located error.

use super::support::{NOW, Summary, assert_error, deflate, gzip, snappy, summary};
use crate::decode::{Limits, decode_loki_push};
use logstream_bus::Stream;

const JSON: Option<&str> = Some("application/json");

fn decode(body: &str) -> Result<Vec<Stream>, crate::decode::DecodeError> {
    decode_loki_push(JSON, None, body.as_bytes(), &Limits::default(), NOW)
}

fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn streams_with_unknown_keys_and_metadata_decode() {
    let body = r#"{
        "streams": [
            {"stream": {"app": "api", "env": "prod"}, "extra": [1, {"x": 2}],
             "values": [["1700000000000000001", "first"],
                        [1700000000000000002, "second", {"trace_id": "abc", "n": 5, "ok": true, "f": 1.5}],
                        ["1700000000000000003", "third", null, "ignored", 4]]},
            {"values": [["1700000000000000004", "b\"q\n\u00e9"]], "stream": {"app": "web"}}
        ],
        "unknown": {"nested": [true]}
    }"#;
    let want: Summary = vec![
        (
            r#"{app="api", env="prod"}"#.into(),
            vec![
                (1_700_000_000_000_000_001, "first".into(), vec![]),
                (
                    1_700_000_000_000_000_002,
                    "second".into(),
                    meta(&[
                        ("trace_id", "abc"),
                        ("n", "5"),
                        ("ok", "true"),
                        ("f", "1.5"),
                    ]),
                ),
                (1_700_000_000_000_000_003, "third".into(), vec![]),
            ],
        ),
        (
            r#"{app="web"}"#.into(),
            vec![(1_700_000_000_000_000_004, "b\"q\né".into(), vec![])],
        ),
    ];
    assert_eq!(summary(&decode(body).unwrap()), want);
}

#[test]
fn empty_requests_and_empty_streams_yield_nothing() {
    let bodies = [
        "",
        "{}",
        r#"{"streams": []}"#,
        r#"{"streams": null}"#,
        r#"{"streams": [{"stream": {"app": "x"}, "values": []}]}"#,
        r#"{"streams": [{"stream": {"1bad": "x"}}]}"#,
    ];
    for body in bodies {
        assert_eq!(decode(body).unwrap(), vec![], "{body}");
    }
}

#[test]
fn equal_label_sets_merge_in_order() {
    let body = r#"{"streams": [
        {"stream": {"a": "1", "b": "2"}, "values": [["1", "x"]]},
        {"stream": {"c": "3"}, "values": [["2", "y"]]},
        {"stream": {"b": "2", "a": "1", "e": ""}, "values": [["3", "z"]]}]}"#;
    let streams = decode(body).unwrap();
    let lines: Vec<(String, Vec<&str>)> = streams
        .iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.entries.iter().map(|e| e.line.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (r#"{a="1", b="2"}"#.into(), vec!["x", "z"]),
            (r#"{c="3"}"#.into(), vec!["y"])
        ]
    );
}

#[test]
fn content_type_and_encoding_variants_decode_the_same() {
    let body = r#"{"streams":[{"stream":{"app":"x"},"values":[["1700000000000000000","hi"]]}]}"#;
    let want = decode(body).unwrap();
    let cases = [
        (
            "application/json; charset=utf-8",
            None,
            body.as_bytes().to_vec(),
        ),
        (
            "Application/JSON",
            Some("identity"),
            body.as_bytes().to_vec(),
        ),
        ("application/json", Some("gzip"), gzip(body.as_bytes())),
        (
            "application/json",
            Some("deflate"),
            deflate(body.as_bytes()),
        ),
        ("application/json", Some("snappy"), snappy(body.as_bytes())),
    ];
    for (content_type, encoding, bytes) in cases {
        let got = decode_loki_push(
            Some(content_type),
            encoding,
            &bytes,
            &Limits::default(),
            NOW,
        );
        assert_eq!(got.unwrap(), want, "{content_type} {encoding:?}");
    }
}

fn stream(labels: &str, values: &str) -> String {
    format!(r#"{{"stream": {labels}, "values": [{values}]}}"#)
}

fn request(streams: &[String]) -> String {
    format!(r#"{{"streams": [{}]}}"#, streams.join(","))
}

#[test]
fn invalid_entries_are_located() {
    let ok = stream(r#"{"app":"x"}"#, r#"["1700000000000000000","l"]"#);
    let five_ok = r#"["1","a"],["2","b"],["3","c"],["4","d"],["5","e"]"#;
    let long = "x".repeat(300_000);
    let cases = [
        (
            request(&[
                ok.clone(),
                ok.clone(),
                stream(r#"{"app":"x"}"#, &format!(r#"{five_ok},["abc","f"]"#)),
            ]),
            r#"streams[2].values[5]: timestamp "abc" is not an integer number of nanoseconds"#,
        ),
        (
            request(&[stream(r#"{"1abc":"x"}"#, r#"["1","l"]"#)]),
            r#"streams[0]: label name "1abc" is invalid (must match [a-zA-Z_][a-zA-Z0-9_]*)"#,
        ),
        (
            request(&[stream(
                r#"{"app":"x"}"#,
                &format!(r#"["1","a"],["2","b"],["3","c"],["4","{long}"]"#),
            )]),
            "streams[0].values[3]: line is 300000 bytes, over the limit of 262144",
        ),
        (
            request(&[
                ok.clone(),
                stream(r#"{"app":"x"}"#, r#"["1800000600000000001","l"]"#),
            ]),
            "streams[1].values[0]: timestamp 2027-01-15T08:10:00.000000001Z is more than 10m in the future",
        ),
        (
            request(&[stream(r#"{"app":"x"}"#, r#"["0","l"]"#)]),
            "streams[0].values[0]: timestamp 0 is not after the unix epoch",
        ),
        (
            request(&[stream(r#"{"app":"x"}"#, r#"[1.5,"l"]"#)]),
            "streams[0].values[0]: timestamp 1.5 is not an integer",
        ),
        (
            request(&[stream("{}", r#"["1","l"]"#)]),
            "streams[0]: stream has no labels",
        ),
        (
            request(&[stream(r#"{"a":""}"#, r#"["1","l"]"#)]),
            "streams[0]: stream has no labels",
        ),
        (
            r#"{"streams":[{"values":[["1","l"]]}]}"#.into(),
            "streams[0]: stream has no labels",
        ),
        (
            request(&[stream(r#"{"a":"1","a":"2"}"#, r#"["1","l"]"#)]),
            r#"streams[0]: duplicate label name "a""#,
        ),
        (
            request(&[stream(r#"{"app":"x"}"#, r#"["1"]"#)]),
            "streams[0].values[0]: expected [timestamp, line] or [timestamp, line, metadata], found 1 element(s)",
        ),
        (
            request(&[stream(r#"{"app":"x"}"#, "[]")]),
            "streams[0].values[0]: expected [timestamp, line] or [timestamp, line, metadata], found 0 element(s)",
        ),
        (
            request(&[stream(
                r#"{"app":"x"}"#,
                r#"["1","l"],["2","l",{"k":{"a":1}}]"#,
            )]),
            r#"streams[0].values[1]: structured metadata "k" must be a string, number or boolean"#,
        ),
        (
            request(&[stream(r#"{"app":"x"}"#, r#"["1","l",{"":"v"}]"#)]),
            "streams[0].values[0]: structured metadata has an empty name",
        ),
    ];
    for (body, want) in cases {
        assert_error(decode(&body), 400, want);
    }
}

#[test]
fn too_many_labels_and_old_timestamps_are_refused() {
    let labels: Vec<String> = (0..16).map(|i| format!(r#""l{i}":"v""#)).collect();
    let body = request(&[stream(&format!("{{{}}}", labels.join(",")), r#"["1","l"]"#)]);
    assert_error(
        decode(&body),
        400,
        "streams[0]: stream has 16 labels, over the limit of 15",
    );
    let limits = Limits {
        max_age_ns: Some(3_600_000_000_000),
        ..Limits::default()
    };
    let body = request(&[stream(r#"{"a":"1"}"#, r#"["1700000000000000000","l"]"#)]);
    let got = decode_loki_push(JSON, None, body.as_bytes(), &limits, NOW);
    assert_error(
        got,
        400,
        "streams[0].values[0]: timestamp 2023-11-14T22:13:20Z is more than 1h old",
    );
}

#[test]
fn malformed_json_names_line_and_column() {
    let cases = [
        (
            r#"{"streams": ["#,
            "invalid JSON at line 1 column 13: EOF while parsing a list",
        ),
        (
            "{\n\"streams\": [}",
            "invalid JSON at line 2 column 13: expected value",
        ),
        (
            r#"{"streams": {}}"#,
            "invalid JSON at line 1 column 14: invalid type: map, expected an array of streams",
        ),
        (
            r#"[1]"#,
            "invalid JSON at line 1 column 0: invalid type: sequence, expected a push request object",
        ),
        (
            r#"{"streams":[{"stream":{"a":1}}]}"#,
            "invalid type: integer `1`, expected a string",
        ),
        (
            r#"{"streams":[{"stream":{"a":"1"},"values":[["1",5]]}]}"#,
            "invalid type: integer `5`, expected a string",
        ),
        (
            r#"{"streams":[{"values":[],"values":[]}]}"#,
            "duplicate field `values`",
        ),
        (
            r#"{} x"#,
            "invalid JSON at line 1 column 4: trailing characters",
        ),
        (
            "{\"streams\":[{\"stream\":{\"a\":\"\u{1}\"}}]}",
            "control character",
        ),
    ];
    for (body, want) in cases {
        assert_error(decode(body), 400, want);
    }
}

#[test]
fn encoding_errors_have_their_statuses() {
    let body = br#"{"streams":[]}"#;
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    assert_error(
        decode_loki_push(JSON, Some("br"), body, &limits, NOW),
        415,
        r#"unsupported content encoding "br""#,
    );
    assert_error(
        decode_loki_push(JSON, Some("gzip"), body, &limits, NOW),
        400,
        "invalid gzip data: ",
    );
    let bomb = gzip(&vec![b' '; 4 << 20]);
    let got = decode_loki_push(JSON, Some("gzip"), &bomb, &limits, NOW);
    assert_error(
        got,
        413,
        "body decompresses to more than 1048576 bytes (limit)",
    );
    let big = vec![b' '; (1 << 20) + 1];
    assert_error(
        decode_loki_push(JSON, None, &big, &limits, NOW),
        413,
        "body is 1048577 bytes, over the limit of 1048576",
    );
}
