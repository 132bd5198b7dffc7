//! The CRDs against the real kube-apiserver of `./e2e/env`: they install and become
//! Established under their short names, the API server fills in the schema defaults, refuses
//! invalid specs with the CEL messages a user reads, and takes the examples of docs/crds.md.
//!
//! Each test installs the CRDs itself (server-side apply, idempotent) and works in a fresh
//! namespace, so the tests run in parallel and in any order. Without the cluster they skip, or
//! fail under `REQUIRE_E2E=1`.

use kube::api::{Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use logstream_crds::conditions::{self, reasons, status};
use logstream_crds::{LogPipeline, LogPipelineSpec, LogStream, LogStreamSpec, crds};
use logstream_e2e::kube::{TestCluster, TestNamespace};
use serde_json::{Value, json};

const FIELD_MANAGER: &str = "logstream-crds-test";

async fn setup(prefix: &str) -> anyhow::Result<Option<TestNamespace>> {
    let Some(cluster) = TestCluster::connect().await else {
        return Ok(None);
    };
    cluster.install_crds(crds()).await?;
    Ok(Some(cluster.fresh_namespace(prefix).await?))
}

/// Server-side apply `spec` as the object `name` of kind `K`: what `kubectl apply
/// --server-side` sends, so the API server sees exactly these fields and defaults the rest.
async fn apply<K>(ns: &TestNamespace, name: &str, spec: Value) -> kube::Result<K>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": name},
        "spec": spec,
    });
    ns.api::<K>()
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&body),
        )
        .await
}

/// The message of the API server's refusal, failing the test when it accepted.
fn refusal<K: std::fmt::Debug>(result: kube::Result<K>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        other => panic!("expected the API server to refuse the object, got {other:?}"),
    }
}

fn kafka() -> Value {
    json!({"kafka": {"bootstrapServers": ["kafka:9092"]}})
}

#[tokio::test]
async fn minimal_logstream_gets_the_schema_defaults() -> anyhow::Result<()> {
    let Some(ns) = setup("crd-defaults").await? else {
        return Ok(());
    };
    let created: LogStream = apply(
        &ns,
        "minimal",
        json!({"storage": {"url": "s3://logs/prod"}}),
    )
    .await?;
    assert_eq!(created.spec, LogStreamSpec::new("s3://logs/prod"));

    let kafka: LogStream = apply(
        &ns,
        "kafka",
        json!({"storage": {"url": "gs://logs"}, "bus": kafka(),
               "processor": {"autoscaling": {"maxReplicas": 4, "metric": {"kafkaConsumerLag": 50000}}}}),
    )
    .await?;
    let bus = kafka.spec.bus.kafka.as_ref().expect("kafka bus");
    assert_eq!(
        (bus.topic.as_str(), bus.partitions, bus.replication_factor),
        ("logstream", 12, 3)
    );
    let autoscaling = kafka.spec.processor.autoscaling.expect("autoscaling");
    assert_eq!(autoscaling.min_replicas, 1);
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
async fn invalid_logstreams_are_refused_with_the_rule_message() -> anyhow::Result<()> {
    let Some(ns) = setup("crd-invalid-ls").await? else {
        return Ok(());
    };
    let s3 = json!({"url": "s3://logs"});
    let cases = [
        (
            json!({"storage": s3, "bus": kafka(), "ingest": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}),
            "spec.ingest.autoscaling.minReplicas must be <= maxReplicas",
        ),
        (
            json!({"storage": s3, "bus": kafka(), "query": {"replicas": 9, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}}}),
            "spec.query.replicas must be within autoscaling.minReplicas..maxReplicas",
        ),
        (
            json!({"storage": s3, "retention": {"defaultDays": 60}}),
            "spec.retention.defaultDays must be <= maximumDays",
        ),
        (
            json!({"storage": s3, "bus": {"kafka": {"bootstrapServers": ["kafka:9092"]}, "embedded": {}}}),
            "spec.bus must set exactly one of kafka or embedded",
        ),
        (
            json!({"storage": s3, "bus": {}}),
            "spec.bus must set exactly one of kafka or embedded",
        ),
        (
            json!({"storage": s3, "processor": {"replicas": 3}}),
            "spec.processor must run 1 replica without autoscaling when spec.bus.embedded is set",
        ),
        (
            json!({"storage": s3, "bus": kafka(), "query": {"autoscaling": {"maxReplicas": 3,
                   "metric": {"cpuUtilizationPercent": 70, "memoryUtilizationPercent": 70}}}}),
            "autoscaling.metric must set exactly one of cpuUtilizationPercent, memoryUtilizationPercent or kafkaConsumerLag",
        ),
        (
            json!({"storage": s3, "bus": kafka(), "ingest": {"autoscaling": {"maxReplicas": 3, "metric": {"kafkaConsumerLag": 10}}}}),
            "spec.ingest.autoscaling.metric.kafkaConsumerLag is only for spec.processor",
        ),
        (
            json!({"storage": s3, "bus": {"kafka": {"bootstrapServers": ["kafka:9092"], "partitions": 4}},
                   "processor": {"autoscaling": {"maxReplicas": 8}}}),
            "spec.processor.autoscaling.maxReplicas must be <= spec.bus.kafka.partitions",
        ),
        (
            json!({"storage": s3, "bus": {"kafka": {"bootstrapServers": ["kafka"]}}}),
            "spec.bus.kafka.bootstrapServers entries must be host:port",
        ),
        (
            json!({"storage": {"url": "https://bucket.example.com"}}),
            "spec.storage.url must be an object-store URL",
        ),
        (
            json!({"storage": {"url": "s3://logs", "options": {"aws_secret_access_key": "x"}}}),
            "spec.storage.options must not hold credentials",
        ),
        (
            json!({"storage": s3, "limits": {"overrides": [{"tenant": "..", "queryConcurrency": 2}]}}),
            "spec.limits.overrides[].tenant must be 1-150 characters",
        ),
        (
            json!({"storage": s3, "agent": {"hostLogPath": "var/log/pods"}}),
            "spec.agent.hostLogPath must be an absolute path",
        ),
    ];
    for (i, (spec, message)) in cases.into_iter().enumerate() {
        let refused = refusal(apply::<LogStream>(&ns, &format!("bad-{i}"), spec.clone()).await);
        assert!(
            refused.contains(message),
            "spec {spec}: expected {message:?} in {refused:?}"
        );
    }
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
async fn kafka_partitions_cannot_shrink() -> anyhow::Result<()> {
    let Some(ns) = setup("crd-partitions").await? else {
        return Ok(());
    };
    let with_partitions = |n: i32| {
        json!({"storage": {"url": "s3://logs"},
               "bus": {"kafka": {"bootstrapServers": ["kafka:9092"], "partitions": n}}})
    };
    apply::<LogStream>(&ns, "grow", with_partitions(12)).await?;
    apply::<LogStream>(&ns, "grow", with_partitions(24)).await?;
    let refused = refusal(apply::<LogStream>(&ns, "grow", with_partitions(6)).await);
    assert!(
        refused.contains("spec.bus.kafka.partitions cannot decrease"),
        "{refused}"
    );
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
async fn logpipelines_are_checked_and_defaulted() -> anyhow::Result<()> {
    let Some(ns) = setup("crd-pipeline").await? else {
        return Ok(());
    };
    let minimal: LogPipeline = apply(
        &ns,
        "all-pods",
        json!({"logStreamRef": {"name": "main"}, "selector": {}}),
    )
    .await?;
    assert_eq!(minimal.spec, LogPipelineSpec::new("main"));

    let cases = [
        (
            json!([{"regex": {"pattern": ""}}]),
            "spec.parsers[].regex.pattern must not be empty",
        ),
        (
            json!([{"json": {}}, {"regex": {"pattern": "^[A-Z]+ .*$"}}]),
            "spec.parsers[].regex.pattern must have a named capture group",
        ),
        (
            json!([{"json": {}, "logfmt": {}}]),
            "each spec.parsers[] entry must set exactly one of json, logfmt, regex or pattern",
        ),
        // An empty entry fails the schema's oneOf first, and the API server then skips the
        // CEL rules; its own message names the entry.
        (
            json!([{}]),
            "\"spec.parsers[0]\" must validate one and only one schema",
        ),
    ];
    for (i, (parsers, message)) in cases.into_iter().enumerate() {
        let spec = json!({"logStreamRef": {"name": "main"}, "selector": {}, "parsers": parsers});
        let refused = refusal(apply::<LogPipeline>(&ns, &format!("bad-{i}"), spec).await);
        assert!(
            refused.contains(message),
            "expected {message:?} in {refused:?}"
        );
    }
    let refused = refusal(
        apply::<LogPipeline>(
            &ns,
            "bad-labels",
            json!({"logStreamRef": {"name": "main"}, "selector": {}, "labels": {"team-name": "a"}}),
        )
        .await,
    );
    assert!(
        refused.contains("spec.labels names must start with a letter or _"),
        "{refused}"
    );
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
async fn status_subresource_takes_conditions_and_replicas() -> anyhow::Result<()> {
    let Some(ns) = setup("crd-status").await? else {
        return Ok(());
    };
    apply::<LogStream>(&ns, "main", json!({"storage": {"url": "s3://logs"}})).await?;
    let status = json!({
        "apiVersion": "logstream.dev/v1alpha1",
        "kind": "LogStream",
        "status": {
            "observedGeneration": 1,
            "conditions": [{
                "type": conditions::READY, "status": status::TRUE, "reason": reasons::RECONCILED,
                "message": "all roles available", "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1
            }],
            "ingest": {"replicas": 1, "readyReplicas": 1},
            "processor": {"replicas": 1, "readyReplicas": 1},
            "query": {"replicas": 1, "readyReplicas": 0}
        }
    });
    let api = ns.api::<LogStream>();
    api.patch_status(
        "main",
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&status),
    )
    .await?;
    let read = api.get("main").await?;
    let status = read.status.expect("status");
    assert!(conditions::is_true(&status.conditions, conditions::READY));
    assert_eq!(
        (status.ingest.ready_replicas, status.query.ready_replicas),
        (1, 0)
    );
    ns.delete().await?;
    Ok(())
}

/// Every YAML example in docs/crds.md is a valid object the API server accepts.
#[tokio::test]
async fn docs_examples_are_accepted() -> anyhow::Result<()> {
    let Some(ns) = setup("crd-docs").await? else {
        return Ok(());
    };
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/crds.md"))?;
    let examples = yaml_blocks(&docs);
    assert!(examples.len() >= 2, "docs/crds.md has no examples");
    for example in examples {
        let object: Value = serde_saphyr::from_str(&example)?;
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        match object["kind"].as_str() {
            Some("LogStream") => {
                apply::<LogStream>(&ns, &name, object["spec"].clone()).await?;
            }
            Some("LogPipeline") => {
                apply::<LogPipeline>(&ns, &name, object["spec"].clone()).await?;
            }
            other => panic!("unexpected kind {other:?} in docs/crds.md"),
        }
    }
    ns.delete().await?;
    Ok(())
}

/// The bodies of the ```yaml fenced blocks of a Markdown text.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_start() == "```yaml" => current = Some(String::new()),
            Some(_) if line.trim_start() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}
