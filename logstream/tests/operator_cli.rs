//! `logstream operator` as a user starts it, twice, against the test cluster of `./e2e/env`:
//! both serve /healthz, /readyz and /metrics, exactly one leads (holds the Lease), and when the
//! leader is stopped the other takes over. Skips without the cluster, fails under
//! `REQUIRE_E2E=1`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use logstream_e2e::kube::TestCluster;

struct Operator {
    name: &'static str,
    url: String,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Operator {
    fn start(cluster: &TestCluster, namespace: &str, name: &'static str) -> Self {
        let port = common::free_port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_logstream"))
            .args(["operator", "--listen", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("POD_NAMESPACE", namespace)
            .env("POD_NAME", name)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .expect("spawn logstream operator");
        Self {
            name,
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let resp = reqwest::get(format!("{}{path}", self.url)).await.ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    /// `logstream_operator_leader` from /metrics.
    async fn leads(&self) -> Option<bool> {
        let (_, body) = self.get("/metrics").await?;
        let line = body
            .lines()
            .find(|l| l.starts_with("logstream_operator_leader "))?;
        Some(line.ends_with(" 1"))
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("send SIGTERM");
        self.child.wait().expect("wait for exit")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- operator {} log ---\n{}", self.name, self.log_text());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `check` gives `Some`, polling every 200 ms.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_operators_one_leader_and_a_handover() {
    let Some(cluster) = TestCluster::connect().await else {
        return;
    };
    cluster
        .install_crds(logstream_crds::crds())
        .await
        .expect("install the CRDs");
    let ns = cluster.fresh_namespace("op-cli").await.expect("namespace");
    let a = Operator::start(&cluster, ns.name(), "operator-a");
    eventually("operator-a ready", Duration::from_secs(30), || async {
        a.get("/readyz").await.filter(|(s, _)| *s == 200)
    })
    .await;
    assert_eq!(a.get("/healthz").await.map(|(s, _)| s), Some(200));
    eventually("operator-a leads", Duration::from_secs(30), || async {
        a.leads().await.filter(|l| *l)
    })
    .await;
    let b = Operator::start(&cluster, ns.name(), "operator-b");
    eventually("operator-b ready", Duration::from_secs(30), || async {
        b.get("/readyz").await.filter(|(s, _)| *s == 200)
    })
    .await;
    // The standby is ready (it serves its endpoints) but does not lead.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(b.leads().await, Some(false), "two leaders at once");
    assert_eq!(a.leads().await, Some(true));
    let leases: kube::Api<Lease> = ns.api();
    let holder = |lease: Lease| lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(
        holder(leases.get("logstream-operator").await.expect("lease")).as_deref(),
        Some("operator-a")
    );

    // A clean stop releases the lease, so the standby takes over at its next try (every 5 s)
    // instead of waiting the 15 s lease out.
    let stopped_at = Instant::now();
    let status = a.terminate();
    assert!(status.success(), "operator-a exited with {status}");
    eventually("operator-b leads", Duration::from_secs(20), || async {
        b.leads().await.filter(|l| *l)
    })
    .await;
    let handover = stopped_at.elapsed();
    println!(
        "MEASURE leader handover after a clean stop: {:.1} s",
        handover.as_secs_f64()
    );
    assert!(
        handover < Duration::from_secs(12),
        "handover took {handover:?}"
    );
    assert_eq!(
        holder(leases.get("logstream-operator").await.expect("lease")).as_deref(),
        Some("operator-b")
    );
    assert!(b.terminate().success());
    ns.delete().await.expect("delete namespace");
}
