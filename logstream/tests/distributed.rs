//! Distributed mode against the real Apache Kafka and S3 endpoint from `./e2e/env up`:
//! `logstream ingest`, `processor` and `query` as separate processes, killed with SIGKILL
//! mid-stream, with the broker and the storage endpoint taken away for a while. At the end every
//! acknowledged event must be queryable exactly once, with its content intact.
//!
//! The tests freeze shared parts (SIGSTOP on the broker or S3 server), so they run one at a
//! time.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use cluster::{
    Cluster, ClusterSpec, Ledger, exactly_once_problems, push_events, read_events, signal_part,
    wait_exactly_once,
};
use std::time::{Duration, Instant};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn spec() -> ClusterSpec {
    ClusterSpec {
        ingest: 2,
        processors: 3,
        queries: 1,
        partitions: 6,
        flush_interval: "2s",
        flush_line_bytes: 256 * 1024,
    }
}

fn merge(into: &mut Ledger, more: Ledger) {
    into.acked.extend(more.acked);
    into.unknown.extend(more.unknown);
    for (k, v) in more.failures {
        *into.failures.entry(k).or_default() += v;
    }
}

/// Pushes `events` events through 2 ingest and 3 processors while killing a processor and an
/// ingest with SIGKILL several times, then checks exactly-once through two query replicas, and
/// once more from Parquet alone after the processors stopped.
async fn kill9_exactly_once(events: u64, rounds: usize) {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(spec()).await else {
        return;
    };
    let t0 = common::now_ns() - 3_600_000_000_000;
    // Four pushers in parallel, each every fourth id, paced to last through the kill rounds.
    // Interleaved (not one block each) so that time follows push order: a Parquet file then
    // covers a narrow time range and the verifying queries' pages each read a few files.
    let pushers = 4u64;
    let per = events / pushers;
    let batch = 250;
    let requests = per / batch as u64;
    let push_for = Duration::from_secs(4 * rounds as u64 + 4);
    let pause = push_for / requests.max(1) as u32;
    let started = Instant::now();
    let tasks: Vec<_> = (0..pushers)
        .map(|p| {
            let urls = c.ingest_urls();
            let ids = (0..per).map(move |k| k * pushers + p);
            tokio::spawn(push_events(urls, ids, batch, t0, pause))
        })
        .collect();
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pi = round % c.processors.len();
        let ii = round % c.ingest.len();
        c.processors[pi].kill9();
        c.ingest[ii].kill9();
        tokio::time::sleep(Duration::from_millis(700)).await;
        c.ingest[ii].restart().await;
        c.processors[pi].restart().await;
    }
    let mut ledger = Ledger::default();
    for t in tasks {
        merge(&mut ledger, t.await.expect("pusher"));
    }
    let pushed_in = started.elapsed();
    eprintln!(
        "pushed {} events: {} acknowledged, {} unknown in {pushed_in:?}; failures {:?}",
        events,
        ledger.acked.len(),
        ledger.unknown.len(),
        ledger.failures
    );
    assert!(
        ledger.acked.len() as u64 >= events / 2,
        "too few pushes succeeded: {ledger:?}"
    );

    // Every acknowledged event exactly once, through two query replicas with the same answer.
    let max_id = pushers * per;
    let q0 = c.queries[0].url();
    let seen = wait_exactly_once(&q0, &ledger, t0, max_id, Duration::from_secs(90)).await;
    let q1 = c.add_query(1).await.url();
    let seen1 = wait_exactly_once(&q1, &ledger, t0, max_id, Duration::from_secs(30)).await;
    assert_eq!(seen, seen1, "two query replicas disagree");

    // A processor stores only what it owns, and a processor killed with -9 keeps its partitions
    // until its session times out (10 s): wait until the group owns every partition again.
    let partitions = f64::from(spec().partitions);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut owned = 0.0;
        for p in &c.processors {
            owned += p.metric_sum("logstream_kafka_assigned_partitions").await;
        }
        if owned >= partitions {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the processors own {owned} of {partitions} partitions after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Stop the processors cleanly (they store what they hold), then read through a fresh query
    // replica. All but the first go first: the first takes their partitions over and catches
    // up, then stops alone. (Stopping all at once races: one that leaves hands its partitions
    // to one still flushing, which stops without reading them; nothing is lost, it just stays
    // in Kafka, but the files would not hold everything.)
    let (first, rest) = c.processors.split_first_mut().expect("processors");
    for p in rest.iter() {
        p.send_term();
    }
    for p in rest.iter_mut() {
        assert!(p.wait_exit(), "{} did not exit 0", p.name);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let owned = first
            .metric_sum("logstream_kafka_assigned_partitions")
            .await;
        let lag = first.metric_sum("logstream_processor_lag_records").await;
        if owned >= partitions && lag == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} owns {owned} of {partitions} partitions with lag {lag} after 60 s",
            first.name
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    first.send_term();
    assert!(first.wait_exit(), "{} did not exit 0", first.name);
    let q2 = c.add_query(2).await;
    let hot = q2.metric_sum("logstream_processor_hot_line_bytes").await;
    let q2url = q2.url();
    let from_files = read_events(&q2url, t0, max_id).await;
    if let Some(p) = exactly_once_problems(&ledger, &from_files) {
        panic!("from Parquet alone (tail holds {hot} bytes): {p}");
    }
    // Each processor stored what it held when it stopped, and manifests never went back (a
    // deposed owner's late write is fenced off): the files hold everything.
    assert_eq!(
        hot, 0.0,
        "after the processors stopped, a fresh query replica still serves {hot} bytes from the Kafka tail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_event_is_stored_exactly_once_through_kill9() {
    kill9_exactly_once(40_000, 3).await;
}

/// The long variant: `cargo test -p logstream --test distributed -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: one million events"]
async fn one_million_events_exactly_once_through_kill9() {
    kill9_exactly_once(1_000_000, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_gone_means_503_with_retry_after_and_nothing_lost() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(ClusterSpec {
        ingest: 1,
        processors: 1,
        ..spec()
    })
    .await
    else {
        return;
    };
    let t0 = common::now_ns() - 3_600_000_000_000;
    let pusher = tokio::spawn(push_events(
        c.ingest_urls(),
        0..6_000,
        100,
        t0,
        Duration::from_millis(250),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal_part("kafka", "STOP");
    tokio::time::sleep(Duration::from_secs(12)).await;
    signal_part("kafka", "CONT");
    let ledger = pusher.await.expect("pusher");
    eprintln!(
        "acknowledged {}, unknown {}, failures {:?}",
        ledger.acked.len(),
        ledger.unknown.len(),
        ledger.failures
    );
    let with_retry: usize = ledger
        .failures
        .iter()
        .filter(|(k, _)| k.starts_with("503 +Retry-After"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        with_retry > 0,
        "no 503 with Retry-After while Kafka was gone: {:?}",
        ledger.failures
    );
    let other: Vec<_> = ledger
        .failures
        .keys()
        .filter(|k| !k.starts_with("503 +Retry-After"))
        .collect();
    assert!(other.is_empty(), "unexpected failures: {other:?}");
    // It recovered: the pushes after the broker came back were acknowledged.
    assert!(
        ledger.acked.iter().any(|id| *id >= 5_000),
        "nothing was acknowledged after Kafka came back"
    );
    wait_exactly_once(
        &c.queries[0].url(),
        &ledger,
        t0,
        6_000,
        Duration::from_secs(90),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storage_down_for_30s_delays_but_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(ClusterSpec {
        ingest: 1,
        processors: 2,
        ..spec()
    })
    .await
    else {
        return;
    };
    let t0 = common::now_ns() - 3_600_000_000_000;
    let pusher = tokio::spawn(push_events(
        c.ingest_urls(),
        0..20_000,
        200,
        t0,
        Duration::from_millis(300),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let committed_before = c.processors[0]
        .metric_sum("logstream_processor_flushes_total")
        .await
        + c.processors[1]
            .metric_sum("logstream_processor_flushes_total")
            .await;
    signal_part("s3", "STOP");
    tokio::time::sleep(Duration::from_secs(30)).await;
    // While storage was gone, processors kept reading (their in-memory lag grew).
    let mut hot = 0.0;
    for p in &c.processors {
        hot += p.metric_sum("logstream_processor_hot_line_bytes").await;
    }
    signal_part("s3", "CONT");
    let ledger = pusher.await.expect("pusher");
    assert!(
        ledger.failures.is_empty(),
        "pushes must not fail while only storage is down: {:?}",
        ledger.failures
    );
    assert!(
        hot > 0.0,
        "processors held nothing in memory while storage was down"
    );
    wait_exactly_once(
        &c.queries[0].url(),
        &ledger,
        t0,
        20_000,
        Duration::from_secs(120),
    )
    .await;
    // And the backlog drained into storage.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut hot = 0.0;
        let mut flushes = 0.0;
        for p in &c.processors {
            hot += p.metric_sum("logstream_processor_hot_line_bytes").await;
            flushes += p.metric_sum("logstream_processor_flushes_total").await;
        }
        if hot == 0.0 && flushes > committed_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backlog did not drain: {hot} bytes still in memory"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A push body of events `ids` over 8 streams (so it spreads over partitions).
fn body_of(ids: std::ops::Range<u64>, t0: i64) -> Vec<u8> {
    let mut streams: std::collections::BTreeMap<u64, Vec<serde_json::Value>> =
        std::collections::BTreeMap::new();
    for id in ids {
        streams.entry(id % 8).or_default().push(serde_json::json!([
            (t0 + id as i64 * 1000).to_string(),
            cluster::line_of(id)
        ]));
    }
    let streams: Vec<_> = streams
        .into_iter()
        .map(|(s, values)| {
            serde_json::json!({"stream": {"job": "dist", "shard": format!("s{s}")}, "values": values})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replayed_requests_are_stored_once_across_replicas_restarts_and_partitions() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(ClusterSpec {
        ingest: 2,
        processors: 2,
        ..spec()
    })
    .await
    else {
        return;
    };
    let t0 = common::now_ns() - 3_600_000_000_000;
    let ingest = c.ingest_urls();
    let push = |i: usize, body: Vec<u8>, origin: &'static str| {
        let url = format!("{}/loki/api/v1/push", ingest[i]);
        async move {
            common::post(
                &url,
                "application/json",
                &[("X-Scope-OrgID", "dist"), ("X-LogStream-Origin", origin)],
                body,
            )
            .await
        }
    };
    let a = || body_of(0..400, t0);
    let b = || body_of(400..800, t0);
    // The same request through both ingest replicas, then a later one, then a late replay.
    for (i, body, origin) in [
        (0, a(), "1000 node-a/00aa"),
        (1, a(), "1000 node-a/00aa"),
        (0, a(), "1000 node-a/00aa"),
        (1, b(), "2000 node-a/00aa"),
        (0, a(), "1000 node-a/00aa"),
        // Another sender with the same number is its own.
        (1, body_of(800..1200, t0), "1000 node-b/00aa"),
    ] {
        let (status, text) = push(i, body, origin).await;
        assert_eq!(status, 204, "{text}");
    }
    let (status, text) = push(0, a(), "many words here").await;
    assert_eq!(status, 400);
    assert!(
        text.contains("X-LogStream-Origin must be `<seq> <source>`")
            && text.contains("not a number"),
        "{text}"
    );

    let ledger = Ledger {
        acked: (0..1200).collect(),
        ..Ledger::default()
    };
    let q = c.queries[0].url();
    wait_exactly_once(&q, &ledger, t0, 1200, Duration::from_secs(60)).await;

    // Stop the processors cleanly (they commit, marks into the manifests), start them again,
    // and replay both requests of node-a: the marks come back from storage.
    for p in &c.processors {
        p.send_term();
    }
    for p in &mut c.processors {
        assert!(p.wait_exit(), "{} did not exit 0", p.name);
    }
    for p in &mut c.processors {
        p.restart().await;
    }
    for (i, body, origin) in [(1, a(), "1000 node-a/00aa"), (0, b(), "2000 node-a/00aa")] {
        let (status, text) = push(i, body, origin).await;
        assert_eq!(status, 204, "{text}");
    }
    // Read through a fresh replica once the processors took the replays in.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut dropped = 0.0;
    while Instant::now() < deadline {
        dropped = 0.0;
        for p in &c.processors {
            dropped += p
                .metric_sum("logstream_processor_replayed_records_dropped_total")
                .await;
        }
        if dropped >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        dropped >= 2.0,
        "replays dropped after the restart: {dropped}"
    );
    let q = c.add_query(1).await.url();
    let seen = cluster::read_events(&q, t0, 1200).await;
    if let Some(p) = exactly_once_problems(&ledger, &seen) {
        panic!("after the processors restarted and the requests were replayed: {p}");
    }
}
