//! The Kubernetes part is real: workloads applied to the loopback API server get pods scheduled
//! onto kwok's fake nodes, reported Running and Ready, and StatefulSet claims get bound volumes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{ListParams, PostParams};
use logstream_e2e::kube::{TestCluster, TestNamespace};
use serde_json::json;

const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn pod_template(app: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": "registry.invalid/logstream:dev"}]}
    })
}

fn assert_on_kwok_nodes(pods: &[k8s_openapi::api::core::v1::Pod]) {
    for pod in pods {
        let spec = pod.spec.as_ref().expect("pod spec");
        let node = spec.node_name.as_deref().unwrap_or_default();
        assert!(node.starts_with("kwok-node-"), "pod scheduled on {node:?}");
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
        assert!(ip.is_some(), "kwok gives running pods an IP");
    }
}

async fn kwok_node_count(cluster: &TestCluster) -> anyhow::Result<usize> {
    let nodes = Api::<Node>::all(cluster.client())
        .list(&ListParams::default().labels("type=kwok"))
        .await?;
    Ok(nodes.items.len())
}

#[tokio::test]
async fn deployment_pods_run_on_kwok_nodes() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::connect().await else {
        return Ok(());
    };
    let ns: TestNamespace = cluster.fresh_namespace("deploy").await?;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template("web")}
    }))?;
    ns.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await?;

    let pods = ns.wait_pods_ready("app=web", 3, READY_TIMEOUT).await?;

    assert_eq!(pods.len(), 3);
    assert_on_kwok_nodes(&pods);
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
async fn daemonset_runs_one_pod_per_kwok_node() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::connect().await else {
        return Ok(());
    };
    let nodes = kwok_node_count(&cluster).await?;
    assert!(
        nodes >= 3,
        "e2e/env up registers 3 kwok nodes, found {nodes}"
    );
    let ns = cluster.fresh_namespace("daemonset").await?;
    let daemonset: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template("agent")}
    }))?;
    ns.api::<DaemonSet>()
        .create(&PostParams::default(), &daemonset)
        .await?;

    let pods = ns
        .wait_pods_ready("app=agent", nodes, READY_TIMEOUT)
        .await?;

    assert_on_kwok_nodes(&pods);
    let mut on: Vec<_> = pods
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    on.sort();
    on.dedup();
    assert_eq!(on.len(), nodes, "one pod per node");
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
async fn statefulset_claims_bind_and_pods_run() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::connect().await else {
        return Ok(());
    };
    let ns = cluster.fresh_namespace("statefulset").await?;
    let statefulset: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "store"},
        "spec": {
            "replicas": 2,
            "serviceName": "store",
            "selector": {"matchLabels": {"app": "store"}},
            "template": pod_template("store"),
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    }))?;
    ns.api::<StatefulSet>()
        .create(&PostParams::default(), &statefulset)
        .await?;

    let pvc = ns.wait_pvc_bound("data-store-0", READY_TIMEOUT).await?;
    let pods = ns.wait_pods_ready("app=store", 2, READY_TIMEOUT).await?;

    let class = pvc
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref());
    assert_eq!(
        class,
        Some("standard"),
        "the default StorageClass is filled in"
    );
    ns.wait_pvc_bound("data-store-1", READY_TIMEOUT).await?;
    assert_on_kwok_nodes(&pods);
    ns.delete().await?;
    Ok(())
}
