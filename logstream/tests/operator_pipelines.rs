//! A tenant's LogPipeline from `kubectl apply` to parsed, queryable events and back to its
//! status, on real parts: the real API server, Kafka and S3 of `./e2e/env`. The operator runs
//! as a local process (kwok pods run nothing); the distributed ingest, processor and query
//! roles run as local processes from the ConfigMaps the operator rendered, written to disk as
//! the kubelet mounts them. A changed LogPipeline then reaches the running processors and the
//! query tail without a restart, and its status says which generation they apply.
//!
//! Fails (never skips) under `REQUIRE_E2E=1` when a part is missing.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use cluster::RoleProc;
use common::{all_lines_as, now_ns, post};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use logstream_crds::{LogPipeline, LogStream};
use logstream_e2e::kafka::TestKafka;
use logstream_e2e::kube::TestCluster;
use logstream_e2e::s3::TestS3;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

// Long enough for the operator to notice a processor that stopped (it looks every 60 s).
const TIMEOUT: Duration = Duration::from_secs(120);

/// `logstream operator`, one replica, without leader election.
struct Operator {
    child: Child,
    log: std::path::PathBuf,
}

impl Operator {
    fn start(cluster: &TestCluster, dir: &Path) -> Self {
        let log = dir.join("operator.log");
        let child = Command::new(env!("CARGO_BIN_EXE_logstream"))
            .args(["operator", "--no-leader-election", "--listen"])
            .arg(format!("127.0.0.1:{}", common::free_port()))
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("RUST_LOG", "info,logstream_operator=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("operator log"))
            .spawn()
            .expect("spawn logstream operator");
        Self { child, log }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- operator log ---\n{text}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 200 ms until it gives a value, or panics naming `what`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The config file of ConfigMap `name` once it contains `needle`.
async fn rendered(api: &Api<ConfigMap>, name: &str, needle: &str) -> String {
    eventually(&format!("ConfigMap {name} with {needle:?}"), || async {
        let cm = api.get_opt(name).await.ok()??;
        let text = cm.data?.remove("config.toml")?;
        text.contains(needle).then_some(text)
    })
    .await
}

/// `(appliedGeneration, updatedProcessors, processors)` of the LogPipeline.
async fn applied(api: &Api<LogPipeline>, name: &str) -> Option<(i64, i32, i32)> {
    let status = api.get(name).await.ok()?.status?;
    Some((
        status.applied_generation?,
        status.updated_processors?,
        status.processors?,
    ))
}

async fn push(url: &str, tenant: &str, lines: &[String]) {
    let t0 = now_ns();
    let values: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| json!([(t0 + i as i64).to_string(), l]))
        .collect();
    let body = json!({"streams": [{"stream": {"app": "web"}, "values": values}]});
    let (status, text) = post(
        &format!("{url}/loki/api/v1/push"),
        "application/json",
        &[("X-Scope-OrgID", tenant)],
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(status, 204, "push refused: {text}");
}

/// Lines of `query` for `tenant` in the last hour, sorted.
async fn query(url: &str, tenant: &str, q: &str) -> Vec<String> {
    let now = now_ns();
    let mut lines: Vec<String> = all_lines_as(
        url,
        q,
        now - 3_600_000_000_000,
        now + 60_000_000_000,
        tenant,
    )
    .await
    .into_iter()
    .map(|(_, l)| l)
    .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_log_pipeline_reaches_running_processors_and_its_status_says_so() {
    let Some(cluster) = TestCluster::connect().await else {
        return;
    };
    let (Some(kafka), Some(s3)) = (TestKafka::connect().await, TestS3::connect().await) else {
        return;
    };
    cluster
        .install_crds(logstream_crds::crds())
        .await
        .expect("install CRDs");
    let ns = cluster.fresh_namespace("plop").await.expect("namespace");
    let tenant_ns = cluster
        .fresh_namespace("plop-shop")
        .await
        .expect("namespace");
    let tenant = tenant_ns.name().to_string();
    let bucket = s3.fresh_bucket("plop").await.expect("bucket");
    let topic = logstream_e2e::unique_name("plop");
    let env = s3.env().clone();
    let dir = tempfile::tempdir().unwrap();

    let secrets: Api<Secret> = ns.api();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "s3"},
                "stringData": {
                    "AWS_ACCESS_KEY_ID": env.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": env.secret_access_key,
                },
            }))
            .unwrap(),
        )
        .await
        .expect("create the Secret");
    let _operator = Operator::start(&cluster, dir.path());
    let streams: Api<LogStream> = ns.api();
    let apply = PatchParams::apply("e2e").force();
    streams
        .patch(
            "main",
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "logstream.dev/v1alpha1",
                "kind": "LogStream",
                "metadata": {"name": "main"},
                "spec": {
                    "bus": {"kafka": {
                        "bootstrapServers": [kafka.bootstrap()],
                        "topic": topic,
                        "partitions": 2,
                        "replicationFactor": 1,
                    }},
                    "storage": {
                        "url": format!("s3://{}/logs", bucket.name()),
                        "credentialsSecretRef": {"name": "s3"},
                        "options": {
                            "aws_endpoint": env.endpoint,
                            "aws_region": env.region,
                            "aws_allow_http": "true",
                        },
                    },
                    "processor": {"replicas": 2},
                },
            })),
        )
        .await
        .expect("apply the LogStream");
    let pipelines: Api<LogPipeline> = tenant_ns.api();
    let pipeline = |parsers: serde_json::Value| {
        json!({
            "apiVersion": "logstream.dev/v1alpha1",
            "kind": "LogPipeline",
            "metadata": {"name": "web"},
            "spec": {
                "logStreamRef": {"name": "main", "namespace": ns.name()},
                "selector": {},
                "parsers": parsers,
            },
        })
    };
    pipelines
        .patch(
            "web",
            &apply,
            &Patch::Apply(pipeline(json!([{"logfmt": {}}]))),
        )
        .await
        .expect("apply the LogPipeline");

    // The roles start from what the operator rendered, as their pods would.
    let maps: Api<ConfigMap> = ns.api();
    let write = |role: &str, text: &str| {
        let path = dir.path().join(format!("{role}.toml"));
        // Like the kubelet's volume update: the new file appears whole.
        let tmp = dir.path().join(format!(".{role}.toml.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    };
    let processor_cfg = rendered(&maps, "main-processor", "generation = 1").await;
    let query_cfg = rendered(&maps, "main-query", "generation = 1").await;
    let ingest_cfg = rendered(&maps, "main-ingest", "[kafka]").await;
    let creds = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), env.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            env.secret_access_key.clone(),
        ),
    ];
    let spawn = |role: &'static str, name: &str, config: &Path| {
        RoleProc::spawn_with_env(role, name, config, dir.path(), creds.clone())
    };
    let mut ingest = spawn("ingest", "main-ingest-0", &write("ingest", &ingest_cfg));
    let processor_file = write("processor", &processor_cfg);
    let mut processors = vec![
        spawn("processor", "main-processor-0", &processor_file),
        spawn("processor", "main-processor-1", &processor_file),
    ];
    let query_file = write("query", &query_cfg);
    let mut query_role = spawn("query", "main-query-0", &query_file);
    ingest.wait_ready().await;
    for p in &mut processors {
        p.wait_ready().await;
    }
    query_role.wait_ready().await;

    // Both processors report generation 1; the status says so.
    eventually("appliedGeneration 1 by 2 of 2", || async {
        applied(&pipelines, "web").await.filter(|a| *a == (1, 2, 2))
    })
    .await;

    let v1: Vec<String> = (0..50)
        .map(|i| format!("level=info user=alice id={i} msg=\"v1 event {i}\""))
        .collect();
    push(&ingest.url(), &tenant, &v1).await;
    let by_alice = eventually("generation 1 parsed the first events", || async {
        let got = query(&query_role.url(), &tenant, r#"{app="web"} | user="alice""#).await;
        (got.len() == v1.len()).then_some(got)
    })
    .await;
    let mut want = v1.clone();
    want.sort();
    assert_eq!(by_alice, want, "logfmt fields are attributes: user=alice");

    // The tenant changes the pipeline: a regex instead of logfmt.
    let sts_hash = |sts: StatefulSet| {
        sts.spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()["logstream.dev/config-hash"]
            .clone()
    };
    let sts: Api<StatefulSet> = ns.api();
    let hash_before = sts_hash(sts.get("main-processor").await.expect("processor sts"));
    pipelines
        .patch(
            "web",
            &apply,
            &Patch::Apply(pipeline(
                json!([{"regex": {"pattern": "seq=(?P<seq>\\d+)"}}]),
            )),
        )
        .await
        .expect("change the LogPipeline");
    let processor_cfg = rendered(&maps, "main-processor", "generation = 2").await;
    let query_cfg = rendered(&maps, "main-query", "generation = 2").await;
    assert_eq!(
        sts_hash(sts.get("main-processor").await.expect("processor sts")),
        hash_before,
        "a rule change must not restart the processors"
    );
    // Until the kubelet updates the files, the processors still apply generation 1.
    eventually("appliedGeneration 1 by 2, none updated", || async {
        applied(&pipelines, "web").await.filter(|a| *a == (1, 0, 2))
    })
    .await;
    write("processor", &processor_cfg);
    write("query", &query_cfg);
    let files_updated = std::time::Instant::now();
    eventually("appliedGeneration 2 by 2 of 2", || async {
        applied(&pipelines, "web").await.filter(|a| *a == (2, 2, 2))
    })
    .await;
    println!(
        "MEASURE config file updated -> status appliedGeneration 2 by 2/2 processors: {:.1} s",
        files_updated.elapsed().as_secs_f64()
    );

    let v2: Vec<String> = (0..30)
        .map(|i| format!("level=warn user=bob seq={i} msg=\"v2 event {i}\""))
        .collect();
    push(&ingest.url(), &tenant, &v2).await;
    let with_seq = eventually("generation 2 parsed the new events", || async {
        let got = query(&query_role.url(), &tenant, r#"{app="web"} | seq=~".+""#).await;
        (got.len() == v2.len()).then_some(got)
    })
    .await;
    let mut want = v2.clone();
    want.sort();
    assert_eq!(with_seq, want, "only generation 2 extracted seq");
    assert!(
        query(&query_role.url(), &tenant, r#"{app="web"} | user="bob""#)
            .await
            .is_empty(),
        "generation 2 does not parse logfmt"
    );
    assert_eq!(
        query(&query_role.url(), &tenant, r#"{app="web"} | user="alice""#)
            .await
            .len(),
        v1.len(),
        "events of generation 1 keep what it extracted"
    );
    for p in processors.iter().chain([&query_role]) {
        assert_eq!(
            p.metric_sum("logstream_pipelines_reloads_total").await,
            1.0,
            "{} took the change once, without a restart",
            p.name
        );
        assert_eq!(
            p.metric_sum("logstream_pipelines_reload_errors_total")
                .await,
            0.0
        );
    }

    // A processor that stops cleanly takes its report with it: the status counts one.
    assert!(processors.pop().unwrap().terminate(), "clean stop");
    eventually("1 running processor", || async {
        applied(&pipelines, "web").await.filter(|a| *a == (2, 1, 1))
    })
    .await;

    // Leave the shared cluster as found: the operator lets the LogStream go once it removed
    // the topic and the lifecycle rules.
    drop(processors);
    drop(query_role);
    drop(ingest);
    let delete = kube::api::DeleteParams::default();
    pipelines
        .delete("web", &delete)
        .await
        .expect("delete the LogPipeline");
    streams
        .delete("main", &delete)
        .await
        .expect("delete the LogStream");
    eventually("the LogStream gone", || async {
        streams.get_opt("main").await.ok()?.is_none().then_some(())
    })
    .await;
    tenant_ns
        .delete()
        .await
        .expect("delete the tenant namespace");
    ns.delete().await.expect("delete the namespace");
}
