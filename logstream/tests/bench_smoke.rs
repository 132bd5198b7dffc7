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
