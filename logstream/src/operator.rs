//! `logstream operator`: the Kubernetes operator (crate logstream-operator) with the same
//! /metrics, /healthz and /readyz server as every other role.

use std::sync::Arc;

use anyhow::Context;
use logstream_operator::{Metrics, OperatorArgs};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::telemetry::{Readiness, ops_router};

/// Runs the operator until `shutdown`. Ready once it reached the API server; standby replicas
/// (waiting for the lease) are ready too, so a rollout does not wait on leadership.
pub async fn run(args: OperatorArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await.context(
        "connect to the Kubernetes API (the pod's service account in a cluster, else KUBECONFIG or ~/.kube/config)",
    )?;
    let version = client
        .apiserver_version()
        .await
        .context("reach the Kubernetes API server")?;
    tracing::info!(server = %version.git_version, "connected to the Kubernetes API");
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let ready = Readiness::default();
    let http_stop = CancellationToken::new();
    let http = tokio::spawn(crate::distributed::serve(
        args.listen,
        ops_router(registry, ready.clone()),
        ready,
        http_stop.clone(),
    ));
    let result = logstream_operator::run(&args, client, metrics, shutdown).await;
    http_stop.cancel();
    http.await??;
    result
}
