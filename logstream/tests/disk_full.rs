//! A full disk: ingest refuses with 503 + Retry-After and a message saying so, nothing
//! acknowledged is lost, and once space returns pushes succeed again with no corruption.
//! Needs root to mount a small tmpfs; CI runs as root and fails the test if it cannot.

mod common;

use common::{Server, all_lines, now_ns};
use serde_json::json;
use std::process::Command;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?.keep();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_full_disk_refuses_pushes_and_recovers_when_space_returns() {
    let Some(fs) = Tmpfs::mount("4m") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "cannot mount a tmpfs (needs root); CI must run this test"
        );
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = fs.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Leave about 1 MiB free.
    std::fs::write(fs.0.join("filler"), vec![7u8; 3 * 1024 * 1024]).unwrap();
    let server = Server::start(&data, &["--flush-interval-ms", "3600000"]).await;
    let client = reqwest::Client::new();
    let push = format!("{}/loki/api/v1/push", server.url);
    let start = now_ns();
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let line = format!("event {i} {}", "x".repeat(20_000));
        let body = json!({"streams": [{"stream": {"app": "full"}, "values": [[(start + i).to_string(), line]]}]});
        let resp = client.post(&push).json(&body).send().await.unwrap();
        match resp.status().as_u16() {
            204 => acked.push(i),
            503 => {
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                refused = Some((retry, resp.text().await.unwrap()));
                break;
            }
            other => panic!("unexpected status {other}: {}", resp.text().await.unwrap()),
        }
    }
    let (retry, msg) = refused.expect("the disk never filled up");
    assert!(retry.is_some(), "503 must carry Retry-After");
    assert!(msg.contains("disk") && msg.contains("full"), "{msg}");
    assert!(!acked.is_empty());

    std::fs::remove_file(fs.0.join("filler")).unwrap();
    let body = json!({"streams": [{"stream": {"app": "full"}, "values": [[(start + 1000).to_string(), "after space returned"]]}]});
    let resp = client.post(&push).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());

    let rows = all_lines(&server.url, r#"{app="full"}"#, start, now_ns()).await;
    assert_eq!(
        rows.len(),
        acked.len() + 1,
        "every acknowledged event, nothing else"
    );
    assert_eq!(rows.last().unwrap().1, "after space returned");
    // And the WAL reads back whole after a crash.
    let server = server.restart_after_kill9().await;
    assert_eq!(
        all_lines(&server.url, r#"{app="full"}"#, start, now_ns())
            .await
            .len(),
        acked.len() + 1
    );
}
