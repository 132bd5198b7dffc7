//! Label filters and `sum by (<metadata key>)` end to end: lines pushed with structured
//! metadata through Loki's JSON push API into a real `logstream standalone`, then queried
//! through `/loki/api/v1/query_range`.

mod common;

use common::{Server, get, lines, now_ns, post};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const SEC: i64 = 1_000_000_000;

/// A Loki JSON push of one stream; each value may carry a structured metadata object.
fn push_body(stream: Value, values: &[(i64, &str, Value)]) -> Vec<u8> {
    let values: Vec<Value> = values
        .iter()
        .map(|(t, line, meta)| match meta {
            Value::Null => json!([t.to_string(), line]),
            meta => json!([t.to_string(), line, meta]),
        })
        .collect();
    serde_json::to_vec(&json!({"streams": [{"stream": stream, "values": values}]})).unwrap()
}

/// The series of a `query_range` metric query at one step: metric labels to value.
async fn matrix_at(base: &str, query: &str, at: i64) -> BTreeMap<String, String> {
    let params = [
        ("query", query.to_string()),
        ("start", at.to_string()),
        ("end", at.to_string()),
        ("step", "60".to_string()),
    ];
    let (status, body) = get(base, "/loki/api/v1/query_range", &params, None).await;
    assert_eq!(status, 200, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["data"]["resultType"], "matrix", "{body}");
    v["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|s| {
            let values = s["values"].as_array().expect("values");
            assert_eq!(values.len(), 1, "{body}");
            (
                s["metric"].to_string(),
                values[0][1].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

/// Expected series: metric labels as compact JSON, and the value.
fn series(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(metric, value)| (metric.to_string(), value.to_string()))
        .collect()
}

#[tokio::test]
async fn label_filters_and_grouping_read_pushed_structured_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let push = format!("{}/loki/api/v1/push", server.url);
    let t0 = now_ns() - 120 * SEC;
    let bodies = [
        push_body(
            json!({"app": "web", "env": "prod"}),
            &[
                (t0, "GET /a 500", json!({"status": "500", "trace_id": "a1"})),
                (t0 + SEC, "GET /b 200", json!({"status": "200"})),
                (t0 + 2 * SEC, "GET /c 503", json!({"status": "503"})),
                (t0 + 3 * SEC, "GET /d", Value::Null),
            ],
        ),
        // A JSON number is stored in its JSON spelling, and compares as one.
        push_body(
            json!({"app": "web", "env": "dev"}),
            &[(t0 + 4 * SEC, "dev 502", json!({"status": 502}))],
        ),
        push_body(
            json!({"app": "api"}),
            &[(t0 + 5 * SEC, "api 500", json!({"status": "500"}))],
        ),
    ];
    for body in bodies {
        let (s, b) = post(&push, "application/json", &[], body).await;
        assert_eq!(s, 204, "{b}");
    }
    let (start, end) = (t0 - SEC, now_ns());
    let url = server.url.clone();

    let got = lines(
        &url,
        r#"{app="web"} | status >= 500"#,
        start,
        end,
        100,
        false,
        None,
    )
    .await;
    let got: Vec<(Value, &str)> = got
        .iter()
        .map(|(l, _, line)| (l.clone(), line.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (json!({"app": "web", "env": "dev"}), "dev 502"),
            (json!({"app": "web", "env": "prod"}), "GET /c 503"),
            (json!({"app": "web", "env": "prod"}), "GET /a 500"),
        ],
        "newest first, stream labels as stored (no metadata added)"
    );

    let text = |rows: Vec<(Value, i64, String)>| -> Vec<String> {
        rows.into_iter().map(|(_, _, line)| line).collect()
    };
    assert_eq!(
        text(
            lines(
                &url,
                r#"{app="web"} | status="""#,
                start,
                end,
                100,
                true,
                None
            )
            .await
        ),
        ["GET /d"]
    );
    assert_eq!(
        text(
            lines(
                &url,
                r#"{app=~".+"} |= "500" | status="500", env!="dev""#,
                start,
                end,
                100,
                true,
                None
            )
            .await
        ),
        ["GET /a 500", "api 500"]
    );
    assert_eq!(
        text(
            lines(
                &url,
                r#"{app=~".+"} | trace_id=~"a.*" or status=~"20.""#,
                start,
                end,
                100,
                true,
                None
            )
            .await
        ),
        ["GET /a 500", "GET /b 200"]
    );

    let at = t0 + 10 * SEC;
    assert_eq!(
        matrix_at(
            &url,
            r#"sum by (status) (count_over_time({app=~".+"}[10m]))"#,
            at
        )
        .await,
        series(&[
            (r#"{"status":"200"}"#, "1"),
            (r#"{"status":"500"}"#, "2"),
            (r#"{"status":"502"}"#, "1"),
            (r#"{"status":"503"}"#, "1"),
            ("{}", "1"),
        ])
    );
    assert_eq!(
        matrix_at(
            &url,
            r#"sum by (env, status) (count_over_time({app="web"} | status >= 500 [10m]))"#,
            at
        )
        .await,
        series(&[
            (r#"{"env":"dev","status":"502"}"#, "1"),
            (r#"{"env":"prod","status":"500"}"#, "1"),
            (r#"{"env":"prod","status":"503"}"#, "1"),
        ])
    );
    assert_eq!(
        matrix_at(
            &url,
            r#"sum without (app, env, trace_id) (count_over_time({app="web"}[10m]))"#,
            at
        )
        .await,
        series(&[
            (r#"{"status":"200"}"#, "1"),
            (r#"{"status":"500"}"#, "1"),
            (r#"{"status":"502"}"#, "1"),
            (r#"{"status":"503"}"#, "1"),
            ("{}", "1"),
        ])
    );

    let (status, body) = get(
        &url,
        "/loki/api/v1/query_range",
        &[("query", r#"{app="web"} | status >= "500""#.to_string())],
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(r#"col 25: syntax error: unexpected STRING "500", expecting NUMBER"#),
        "{body}"
    );
}
