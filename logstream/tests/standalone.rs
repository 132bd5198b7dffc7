//! The standalone binary end to end: push in every format, query every way Loki answers,
//! restart, and refuse bad input without storing any of it.

mod common;

use common::{Server, all_lines, get, instant_value, lines, now_ns, post};
use logstream_ingest::decode::loki_proto::{
    EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp,
};
use prost::Message;
use serde_json::{Value, json};

const SEC: i64 = 1_000_000_000;

fn loki_json(stream: Value, values: &[(i64, &str)]) -> Vec<u8> {
    let values: Vec<Value> = values
        .iter()
        .map(|(t, l)| json!([t.to_string(), l]))
        .collect();
    serde_json::to_vec(&json!({"streams": [{"stream": stream, "values": values}]})).unwrap()
}

fn loki_proto(labels: &str, values: &[(i64, &str)]) -> Vec<u8> {
    let req = PushRequest {
        streams: vec![StreamAdapter {
            labels: labels.into(),
            entries: values
                .iter()
                .map(|(t, l)| EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: t / SEC,
                        nanos: (t % SEC) as i32,
                    }),
                    line: l.as_bytes().to_vec(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "trace_id".into(),
                        value: "t1".into(),
                    }],
                })
                .collect(),
            hash: 0,
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

#[tokio::test]
async fn pushed_lines_are_queryable_in_every_loki_shape_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let push = format!("{}/loki/api/v1/push", server.url);
    let t0 = now_ns() - 120 * SEC;

    let (s, b) = post(
        &push,
        "application/json",
        &[],
        loki_json(
            json!({"app": "api", "env": "prod"}),
            &[(t0, "GET /users 200"), (t0 + SEC, "GET /users 500 error")],
        ),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = post(
        &push,
        "application/x-protobuf",
        &[],
        loki_proto(
            r#"{app="web", env="prod"}"#,
            &[
                (t0 + 2 * SEC, "render home"),
                (t0 + 3 * SEC, "render error page"),
            ],
        ),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let nd = format!(
        "{{\"ts\": {}, \"msg\": \"job done\", \"labels\": {{\"app\": \"batch\"}}, \"duration_ms\": 12}}\n",
        (t0 + 4 * SEC) / 1_000_000
    );
    let (s, b) = post(
        &format!("{}/ingest/v1/ndjson", server.url),
        "application/x-ndjson",
        &[],
        nd.into_bytes(),
    )
    .await;
    assert_eq!((s, b.trim()), (200, r#"{"accepted":1}"#));
    // Another tenant's line must never show up in the default tenant's answers.
    let (s, _) = post(
        &push,
        "application/json",
        &[("X-Scope-OrgID", "other")],
        loki_json(json!({"app": "api"}), &[(t0, "secret of other")]),
    )
    .await;
    assert_eq!(s, 204);

    let end = now_ns();
    let check = |server_url: String| async move {
        let all = lines(
            &server_url,
            r#"{env="prod"}"#,
            t0 - SEC,
            end,
            100,
            false,
            None,
        )
        .await;
        let got: Vec<&str> = all.iter().map(|(_, _, l)| l.as_str()).collect();
        assert_eq!(
            got,
            [
                "render error page",
                "render home",
                "GET /users 500 error",
                "GET /users 200"
            ],
            "backward = newest first"
        );

        let fwd = lines(&server_url, r#"{env="prod"}"#, t0 - SEC, end, 2, true, None).await;
        let got: Vec<(i64, &str)> = fwd.iter().map(|(_, t, l)| (*t, l.as_str())).collect();
        assert_eq!(
            got,
            [(t0, "GET /users 200"), (t0 + SEC, "GET /users 500 error")],
            "forward with limit 2"
        );
        assert_eq!(fwd[0].0, json!({"app": "api", "env": "prod"}));

        let errors = lines(
            &server_url,
            r#"{app=~"api|web"} |= "error" != "page""#,
            t0 - SEC,
            end,
            100,
            false,
            None,
        )
        .await;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].2, "GET /users 500 error");
        let re = lines(
            &server_url,
            r#"{app!="api", env="prod"} |~ "render (home|nothing)""#,
            t0 - SEC,
            end,
            100,
            false,
            None,
        )
        .await;
        assert_eq!(
            re.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
            ["render home"]
        );
        let batch = lines(
            &server_url,
            r#"{app="batch"}"#,
            t0 - SEC,
            end,
            100,
            false,
            None,
        )
        .await;
        assert_eq!(
            (batch[0].1, batch[0].2.as_str()),
            ((t0 + 4 * SEC) / 1_000_000 * 1_000_000, "job done"),
            "NDJSON epoch milliseconds"
        );

        let other = lines(
            &server_url,
            r#"{app="api"}"#,
            t0 - SEC,
            end,
            100,
            false,
            Some("other"),
        )
        .await;
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].2, "secret of other");

        // Metric queries: a matrix per stream, summed by a label, and an instant vector.
        let params = [
            (
                "query",
                r#"sum by (app) (count_over_time({env="prod"}[10m]))"#.to_string(),
            ),
            ("start", (t0 + 5 * SEC).to_string()),
            ("end", (t0 + 5 * SEC).to_string()),
            ("step", "60".to_string()),
        ];
        let (s, body) = get(&server_url, "/loki/api/v1/query_range", &params, None).await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["resultType"], "matrix");
        let result = v["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 2);
        assert_eq!(result[0]["metric"], json!({"app": "api"}));
        assert_eq!(result[0]["values"][0][1], "2");
        assert_eq!(result[1]["metric"], json!({"app": "web"}));
        assert_eq!(
            instant_value(&server_url, r#"sum(count_over_time({env=~".+"}[1h]))"#).await,
            4.0
        );
        assert_eq!(
            instant_value(&server_url, r#"sum(rate({app="api"}[1h]))"#).await,
            2.0 / 3600.0
        );

        let (s, body) = get(
            &server_url,
            "/loki/api/v1/labels",
            &[("start", (t0 - SEC).to_string())],
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["data"],
            json!(["app", "env"])
        );
        let (_, body) = get(
            &server_url,
            "/loki/api/v1/label/app/values",
            &[("start", (t0 - SEC).to_string())],
            None,
        )
        .await;
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["data"],
            json!(["api", "batch", "web"])
        );
        let (_, body) = get(
            &server_url,
            "/loki/api/v1/series",
            &[
                ("match[]", r#"{app="web"}"#.to_string()),
                ("start", (t0 - SEC).to_string()),
            ],
            None,
        )
        .await;
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["data"],
            json!([{"app": "web", "env": "prod"}])
        );
    };
    check(server.url.clone()).await;

    // SIGTERM flushes everything to Parquet and exits 0; the answers stay the same.
    assert!(server.terminate().success(), "graceful stop must exit 0");
    let parquet = walk(&dir.path().join("store/data"))
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .count();
    assert!(
        parquet >= 2,
        "expected Parquet files for both tenants, found {parquet}"
    );
    let server = Server::start(dir.path(), &[]).await;
    check(server.url.clone()).await;
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-body-bytes", "1000"]).await;
    let push = format!("{}/loki/api/v1/push", server.url);
    let now = now_ns();

    // (content type, body, headers, expected status, expected message part)
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "application/json",
            b"{\"streams\": [".to_vec(),
            vec![],
            400,
            "invalid JSON",
        ),
        (
            "application/x-protobuf",
            b"not snappy at all".to_vec(),
            vec![],
            400,
            "snappy",
        ),
        (
            "application/json",
            b"hello".to_vec(),
            vec![("content-encoding", "gzip")],
            400,
            "gzip",
        ),
        (
            "application/json",
            b"{}".to_vec(),
            vec![("content-encoding", "br")],
            415,
            "br",
        ),
        (
            "application/json",
            vec![b' '; 2000],
            vec![],
            413,
            "limit of 1000 bytes",
        ),
        // One good line and one with an absurd timestamp: the whole request is refused.
        (
            "application/json",
            loki_json(
                json!({"app": "x"}),
                &[(now, "good"), (now + 3600 * SEC, "from the future")],
            ),
            vec![],
            400,
            "values[1]",
        ),
        (
            "application/json",
            loki_json(json!({"1app": "x"}), &[(now, "bad label")]),
            vec![],
            400,
            "1app",
        ),
        (
            "application/json",
            loki_json(json!({"app": "x"}), &[(now, "tenant")]),
            vec![("X-Scope-OrgID", "a|b")],
            400,
            "a|b",
        ),
    ];
    for (ct, body, headers, want_status, want_msg) in cases {
        let (status, msg) = post(&push, ct, &headers, body).await;
        assert_eq!(status, want_status, "{msg}");
        assert!(msg.contains(want_msg), "expected {want_msg:?} in {msg:?}");
    }
    let (status, msg) = post(
        &format!("{}/ingest/v1/ndjson", server.url),
        "application/x-ndjson",
        &[],
        b"{\"msg\": \"ok\"}\n{\"level\": \"no message\"}\n".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(msg.contains("line 2"), "{msg}");

    let q = |query: &str| [("query", query.to_string())];
    let (status, msg) = get(
        &server.url,
        "/loki/api/v1/query_range",
        &q(r#"{app="x"} |= "a" | json"#),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        msg.contains("parse error at line 1, col 18") && msg.contains("json"),
        "{msg}"
    );
    let (status, msg) = get(
        &server.url,
        "/loki/api/v1/query_range",
        &q(r#"{app="x""#),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(msg.starts_with("parse error at line 1"), "{msg}");
    let (status, msg) = get(
        &server.url,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app="x"}"#.into()),
            ("start", "tomorrow".into()),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(msg.contains("invalid start"), "{msg}");
    let (status, msg) = get(&server.url, "/loki/api/v1/nothing", &[], None).await;
    assert_eq!(
        (status, msg.trim()),
        (404, "unknown endpoint: GET /loki/api/v1/nothing")
    );

    assert_eq!(
        instant_value(&server.url, r#"sum(count_over_time({app=~".+"}[1h]))"#).await,
        0.0,
        "nothing may be stored"
    );
    let good = loki_json(json!({"app": "x"}), &[(now, "finally good")]);
    assert_eq!(post(&push, "application/json", &[], good).await.0, 204);
    assert_eq!(
        all_lines(&server.url, r#"{app="x"}"#, now - SEC, now_ns()).await,
        [(now, "finally good".to_string())]
    );
}

#[tokio::test]
async fn a_third_party_loki_client_can_push() {
    // tracing-loki sends snappy-compressed protobuf with `Content-Encoding: snappy`.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let start = now_ns();
    let (layer, task) = tracing_loki::builder()
        .label("app", "tracing-client")
        .unwrap()
        .build_url(url::Url::parse(&server.url).unwrap())
        .unwrap();
    let handle = tokio::spawn(task);
    let subscriber =
        tracing_subscriber::layer::SubscriberExt::with(tracing_subscriber::registry(), layer);
    // The layer must outlive the sending: its background task stops once the layer is dropped.
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::info!(user = "ada", "hello from tracing-loki");
    tracing::warn!("second line");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = lines(
            &server.url,
            r##"{app="tracing-client"} |= "\"_target\":\"standalone\"""##,
            start - SEC,
            now_ns() + SEC,
            100,
            true,
            None,
        )
        .await;
        if got.len() == 2 {
            assert!(got[0].2.contains("hello from tracing-loki"), "{:?}", got[0]);
            assert!(got[1].2.contains("second line"), "{:?}", got[1]);
            assert_eq!(got[0].0["level"], "info");
            break;
        }
        if std::time::Instant::now() > deadline {
            let (_, metrics) = get(&server.url, "/metrics", &[], None).await;
            let ingest: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("logstream_ingest"))
                .collect();
            panic!("tracing-loki lines did not arrive: {got:?}; ingest metrics: {ingest:#?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    handle.abort();
}
