//! `logstream bench` as a smoke test: a short run must finish, report every figure, and its
//! own check (count_over_time equals the acknowledged events) must hold.

use std::process::Command;

#[test]
fn a_short_benchmark_runs_and_reports_every_figure() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");
    let out = Command::new(env!("CARGO_BIN_EXE_logstream"))
        .args([
            "bench",
            "--events",
            "20000",
            "--batch",
            "500",
            "--concurrency",
            "4",
        ])
        .args(["--samples", samples])
        .output()
        .expect("run logstream bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    for figure in [
        "acknowledged durably",
        "ratio to the sink",
        "ack latency p50 / p99",
        "ack→visible p50 / p99",
        "(20 probes)",
        "stored: lines → Parquet",
        "needle query",
        "count_over_time",
    ] {
        assert!(stdout.contains(figure), "missing {figure:?} in:\n{stdout}");
    }
}

/// `bench --distributed` as docs/benchmarks.md shows it, short: the same load through
/// ingest, Kafka, two processors, S3 and query, side by side with standalone.
#[test]
fn a_short_distributed_benchmark_runs_on_kafka_and_s3() {
    let vars = [
        "KAFKA_BOOTSTRAP",
        "S3_ENDPOINT",
        "S3_REGION",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
    ];
    let env = match logstream_e2e::env::E2eEnv::load() {
        Ok(env) if vars.iter().all(|k| env.get(k).is_some()) => env,
        _ => {
            let _: Option<()> = logstream_e2e::env::unavailable(
                logstream_e2e::env::Part::Kafka,
                "target/e2e/env lacks the Kafka and S3 settings",
            );
            return;
        }
    };
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");
    let out = Command::new(env!("CARGO_BIN_EXE_logstream"))
        .args(["bench", "--events", "20000", "--distributed"])
        .args(["--samples", samples])
        .envs(vars.iter().map(|k| (*k, env.get(k).expect("checked"))))
        .output()
        .expect("run logstream bench --distributed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    for figure in [
        "standalone",
        "distributed",
        "acknowledged durably",
        "count_over_time",
    ] {
        assert!(stdout.contains(figure), "missing {figure:?} in:\n{stdout}");
    }
}

#[test]
fn a_short_agent_benchmark_runs_and_counts_every_line_back() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");
    let out = Command::new(env!("CARGO_BIN_EXE_logstream"))
        .args([
            "bench",
            "--agent",
            "--agent-lines",
            "30000",
            "--agent-files",
            "3",
        ])
        .args(["--samples", samples])
        .output()
        .expect("run logstream bench --agent");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    for figure in [
        "Agent benchmark: 30000 log lines",
        "| logstream agent → local sink | 30000 |",
        "| logstream agent → standalone ingest | 30000 |",
        "lines per CPU s",
        "checked: the standalone server holds exactly 30000 lines",
    ] {
        assert!(stdout.contains(figure), "missing {figure:?} in:\n{stdout}");
    }
}

#[test]
fn a_short_pipelines_benchmark_runs_every_case_over_every_event() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");
    let out = Command::new(env!("CARGO_BIN_EXE_logstream"))
        .args(["bench", "--pipelines", "--pipeline-events", "20000"])
        .args(["--samples", samples])
        .output()
        .expect("run logstream bench --pipelines");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    // Every case made a row per event (the mixed case drops 90% of the image requests).
    for row in [
        "| text | no pipeline | 20000 |",
        "| text | regex (combined log, 8 fields) | 20000 |",
        "| text | pattern (same fields) | 20000 |",
        "| json | no pipeline | 20000 |",
        "| json | json (9 fields, one nested object) | 20000 |",
        "| text | mixed: redact, pattern, time, drop, route, field label |",
    ] {
        assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
    }
}
