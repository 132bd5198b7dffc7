//! kill -9 at any instant loses no acknowledged event and duplicates none: pushers run
//! against the real binary, which is killed again and again (small flush settings make the
//! kills land in every phase: WAL append, hot buffer, flush intent, file upload, commit).

mod common;

use common::{Server, all_lines, now_ns};
use rand::Rng;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EVENTS_PER_REQUEST: usize = 20;

/// What pushers learnt: requests acknowledged, and requests whose fate is unknown.
#[derive(Default)]
struct Ledger {
    acked: BTreeSet<u64>,
    unknown: BTreeSet<u64>,
}

async fn pusher(url: String, base_ns: i64, next: Arc<Mutex<u64>>, ledger: Arc<Mutex<Ledger>>) {
    let client = reqwest::Client::new();
    loop {
        let req = {
            let mut n = next.lock().unwrap();
            *n += 1;
            *n
        };
        let values: Vec<_> = (0..EVENTS_PER_REQUEST)
            .map(|i| {
                let ts = base_ns + (req as i64) * 1000 + i as i64;
                json!([ts.to_string(), format!("req={req} item={i}")])
            })
            .collect();
        let body = json!({"streams": [{"stream": {"job": "crash", "pusher": (req % 3).to_string()}, "values": values}]});
        match client
            .post(format!("{url}/loki/api/v1/push"))
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().as_u16() == 204 => {
                ledger.lock().unwrap().acked.insert(req);
            }
            // The server died mid-request, or refused: it may or may not be stored.
            _ => {
                ledger.lock().unwrap().unknown.insert(req);
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--flush-interval-ms", "150", "--flush-line-bytes", "20000"];
    let mut server = Server::start(dir.path(), &args).await;
    let base_ns = now_ns() - 600_000_000_000;
    let next = Arc::new(Mutex::new(0u64));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = rand::rng();

    for round in 0..5 {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(pusher(
                    server.url.clone(),
                    base_ns,
                    next.clone(),
                    ledger.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
        server = server.restart_after_kill9().await;
        for t in tasks {
            t.await.unwrap();
        }
        let acked = ledger.lock().unwrap().acked.len();
        eprintln!("round {round}: {acked} requests acknowledged so far");
    }
    // Stop once more, cleanly, so the last check also covers reading back from Parquet only.
    assert!(server.terminate().success());
    let server = Server::start(dir.path(), &args).await;

    let rows = all_lines(&server.url, r#"{job="crash"}"#, base_ns, now_ns()).await;
    let mut per_request: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (_, line) in &rows {
        let req: u64 = line
            .strip_prefix("req=")
            .and_then(|r| r.split(' ').next())
            .and_then(|r| r.parse().ok())
            .expect("line format");
        per_request.entry(req).or_default().push(line.clone());
    }
    let ledger = ledger.lock().unwrap();
    assert!(
        ledger.acked.len() > 50,
        "too little load to prove anything: {}",
        ledger.acked.len()
    );
    for req in &ledger.acked {
        let got = per_request.get(req).map_or(0, Vec::len);
        assert_eq!(
            got, EVENTS_PER_REQUEST,
            "acknowledged request {req} has {got} of {EVENTS_PER_REQUEST} events"
        );
    }
    for (req, got) in &per_request {
        assert!(
            ledger.acked.contains(req) || ledger.unknown.contains(req),
            "request {req} was never sent"
        );
        let distinct: BTreeSet<_> = got.iter().collect();
        assert_eq!(
            distinct.len(),
            got.len(),
            "request {req} has duplicated events"
        );
        assert_eq!(
            got.len(),
            EVENTS_PER_REQUEST,
            "request {req} is half visible"
        );
    }
    eprintln!(
        "{} acknowledged requests, {} in doubt, {} rows, all exact",
        ledger.acked.len(),
        ledger.unknown.len(),
        rows.len()
    );
}
