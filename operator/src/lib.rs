//! The LogStream operator (`logstream operator`): turns `LogStream` resources into the
//! workloads, Services, autoscalers and configuration that run LogStream, plus the Kafka topic
//! and the bucket lifecycle rules; checks tenants' `LogPipeline`s and merges the valid ones into
//! the rendered configuration. Status tells the truth about both.
//!
//! - [`build`]: pure functions from a LogStream to its objects,
//! - [`validate`]: the checks the schema cannot make,
//! - [`status`]: conditions from what the workloads report,
//! - [`controller`] and [`pipelines`]: the two reconcilers,
//! - [`leader`]: a Lease, so only one replica reconciles.

pub mod build;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod pipelines;
pub mod status;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use logstream_crds::{LogPipeline, LogStream};
use tokio_util::sync::CancellationToken;

pub use controller::Context;
pub use leader::LeaseLock;
pub use metrics::Metrics;

/// The image workloads run when a LogStream names none: this build's release image.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/logstream/logstream:", env!("CARGO_PKG_VERSION"));

/// Flags of `logstream operator`.
#[derive(Debug, Clone, clap::Args)]
pub struct OperatorArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "LOGSTREAM_OPERATOR_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: std::net::SocketAddr,
    /// Image of the workloads of LogStreams that set no spec.image (normally the operator's own).
    #[arg(long, env = "LOGSTREAM_IMAGE", default_value = DEFAULT_IMAGE)]
    pub default_image: String,
    /// Namespace of the leader-election Lease (the operator's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "logstream-operator")]
    pub lease_name: String,
    /// This replica's name in the Lease and in Events (the pod name). Default: the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Run without leader election (a single replica, or a test).
    #[arg(long)]
    pub no_leader_election: bool,
}

/// How long stopping waits for the controllers' reconciles in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a lease holds without renewal.
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// Runs the operator until `shutdown`: waits to lead (unless leader election is off), then runs
/// both controllers. Losing the lease is an error: the process exits and a fresh start
/// competes again, rather than risking two leaders.
pub async fn run(
    args: &OperatorArgs,
    client: Client,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    check_crds(&client).await?;
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("logstream-operator-{}", std::process::id()));
    let reporter = Reporter {
        controller: names::FIELD_MANAGER.into(),
        instance: Some(identity.clone()),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        args.default_image.clone(),
        Recorder::new(client.clone(), reporter),
        metrics.clone(),
    ));
    if args.no_leader_election {
        metrics.leader.set(1);
        run_controllers(ctx, shutdown).await;
        return Ok(());
    }
    let lease = LeaseLock::new(
        client,
        &args.lease_namespace,
        &args.lease_name,
        &identity,
        LEASE_DURATION,
    );
    tracing::info!(lease = %args.lease_name, namespace = %args.lease_namespace, %identity, "waiting to lead");
    loop {
        match lease.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "leader election: could not read or write the lease")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(lease.renew_every()) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
    tracing::info!(%identity, "leading: starting the controllers");
    metrics.leader.set(1);
    let controllers = shutdown.child_token();
    let lost = CancellationToken::new();
    let renewer = {
        let (lease, controllers, lost) = (lease.clone(), controllers.clone(), lost.clone());
        tokio::spawn(async move {
            let mut last_renewal = Instant::now();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(lease.renew_every()) => {}
                    () = controllers.cancelled() => return,
                }
                match lease.try_acquire_or_renew().await {
                    Ok(true) => last_renewal = Instant::now(),
                    Ok(false) => break,
                    Err(e) if last_renewal.elapsed() < LEASE_DURATION => {
                        tracing::warn!(error = %e, "could not renew the lease; retrying");
                    }
                    Err(_) => break,
                }
            }
            lost.cancel();
            controllers.cancel();
        })
    };
    run_controllers(ctx, controllers.clone()).await;
    controllers.cancel();
    let _ = renewer.await;
    metrics.leader.set(0);
    if lost.is_cancelled() {
        anyhow::bail!(
            "lost the leader lease {}/{}: exiting so that only one replica reconciles",
            args.lease_namespace,
            args.lease_name
        );
    }
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "could not release the lease; a standby takes over once it lapses");
    }
    Ok(())
}

/// Runs the LogStream and LogPipeline controllers until `shutdown`.
pub async fn run_controllers(ctx: Arc<Context>, shutdown: CancellationToken) {
    let client = ctx.client.clone();
    // Children are watched by our label only: the operator does not cache every ConfigMap of
    // the cluster.
    let children = watcher::Config::default().labels(&format!(
        "{}={}",
        names::LABEL_MANAGED_BY,
        names::FIELD_MANAGER
    ));
    let log_streams = Controller::new(
        Api::<LogStream>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<StatefulSet>::all(client.clone()), children.clone())
    .owns(Api::<DaemonSet>::all(client.clone()), children.clone())
    .owns(Api::<ConfigMap>::all(client.clone()), children.clone())
    .owns(Api::<Service>::all(client.clone()), children.clone())
    .owns(Api::<ServiceAccount>::all(client.clone()), children.clone())
    .owns(
        Api::<HorizontalPodAutoscaler>::all(client.clone()),
        children.clone(),
    )
    .owns(Api::<PodDisruptionBudget>::all(client.clone()), children)
    .watches(
        Api::<LogPipeline>::all(client.clone()),
        watcher::Config::default(),
        |p| Some(controller::log_stream_of(&p)),
    )
    .graceful_shutdown_on(shutdown.clone().cancelled_owned())
    .run(controller::reconcile, controller::error_policy, ctx.clone())
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "LogStream controller");
        }
    });
    let pipelines = Controller::new(
        Api::<LogPipeline>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = pipelines.store();
    let pipelines = pipelines
        .watches(
            Api::<LogStream>::all(client),
            watcher::Config::default(),
            move |ls| {
                let names = names::Names::of(&ls);
                store
                    .state()
                    .into_iter()
                    .filter(|p| controller::refers_to(p, &names))
                    .map(|p| ObjectRef::from_obj(p.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(pipelines::reconcile, pipelines::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "LogPipeline controller");
            }
        });
    let both = async {
        futures::join!(log_streams, pipelines);
    };
    // Stopping waits for reconciles in flight, but not forever: a watch in backoff (the API
    // server away) must not keep the process from exiting.
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = both => {}
        () = grace => tracing::warn!(
            "the controllers did not stop within {}s; exiting with reconciles in flight",
            SHUTDOWN_GRACE.as_secs()
        ),
    }
}

/// Checks that the CRDs are installed (the controllers would otherwise retry forever), with
/// the command that installs them in the error.
pub async fn check_crds(client: &Client) -> anyhow::Result<()> {
    let lp = kube::api::ListParams::default().limit(1);
    let missing = |kind: &str, e: kube::Error| match e {
        kube::Error::Api(status) if status.code == 404 => anyhow::anyhow!(
            "the {kind} CustomResourceDefinition is not installed in this cluster: install both \
             with `logstream crd | kubectl apply --server-side -f -`"
        ),
        other => anyhow::Error::new(other).context(format!("list {kind} resources")),
    };
    Api::<LogStream>::all(client.clone())
        .list_metadata(&lp)
        .await
        .map_err(|e| missing("LogStream", e))?;
    Api::<LogPipeline>::all(client.clone())
        .list_metadata(&lp)
        .await
        .map_err(|e| missing("LogPipeline", e))?;
    Ok(())
}
