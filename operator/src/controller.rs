//! The LogStream reconciler: validate → build the desired objects → server-side apply them
//! with one field manager (and delete what is no longer wanted) → the Kafka topic and the
//! bucket's lifecycle rules → status.
//!
//! Everything applied is owned by the LogStream, so deleting it garbage-collects the children.
//! The finalizer exists for what Kubernetes cannot collect: the topic, the lifecycle rules and
//! the agent's cluster-scoped RBAC.
//!
//! A change costs a bounded number of reconciles: applying unchanged objects is a no-op for the
//! API server (no new resourceVersion, no watch event), and the status is written only when it
//! differs from what is stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Client, Resource, ResourceExt};
use logstream_bus::kafka::KafkaConfig;
use logstream_crds::conditions::{self, READY, reasons};
use logstream_crds::logstream::Bus;
use logstream_crds::{LogPipeline, LogStream, LogStreamStatus};
use logstream_processor::pipeline::report::AppliedReport;
use logstream_store::{BucketAdmin, RetentionPolicy, RetentionRule};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::{self, BuildInput, Desired, PipelineEntry};
use crate::metrics::Metrics;
use crate::names::{Component, FIELD_MANAGER, FINALIZER, Names};
use crate::status::{self, Observed, WorkloadState};
use crate::validate;

/// How often a healthy LogStream is looked at without any event (drift the watches missed).
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a LogStream whose spec cannot work (missing Secret, bus down) is looked at again.
const RETRY_PROBLEM: Duration = Duration::from_secs(30);
/// How soon a failed reconcile is retried.
const RETRY_ERROR: Duration = Duration::from_secs(15);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// The image of workloads whose LogStream names none: the operator's own.
    pub default_image: String,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Per LogStream, a fingerprint of the topic and lifecycle settings last put in place, so
    /// Kafka and the bucket are contacted when they change, not on every reconcile.
    external: Mutex<HashMap<String, u64>>,
    /// Per LogStream, the processors' pipeline reports last read and when, so its
    /// LogPipelines share one read of the bucket (see `pipelines::REPORTS_FRESH`).
    reports: Mutex<HashMap<String, ReadReports>>,
}

/// Reports read from a bucket, and when.
type ReadReports = (Instant, Arc<Vec<AppliedReport>>);

impl Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("default_image", &self.default_image)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        client: Client,
        default_image: String,
        recorder: Recorder,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            default_image,
            recorder,
            metrics,
            external: Mutex::new(HashMap::new()),
            reports: Mutex::new(HashMap::new()),
        }
    }

    /// The reports of LogStream `key` read less than `fresh` ago.
    pub(crate) fn cached_reports(
        &self,
        key: &str,
        fresh: Duration,
    ) -> Option<Arc<Vec<AppliedReport>>> {
        let cache = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < fresh)
            .map(|(_, r)| r.clone())
    }

    pub(crate) fn cache_reports(&self, key: String, reports: Arc<Vec<AppliedReport>>) {
        let mut cache = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(key, (Instant::now(), reports));
    }

    fn external(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.external.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: {source}")]
    Kube {
        op: String,
        #[source]
        source: kube::Error,
    },
    #[error("build the desired objects: {0}")]
    Build(#[from] build::BuildError),
    #[error("Kafka topic {topic}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: logstream_bus::error::Error,
    },
    #[error("lifecycle rules of {url}: {source}")]
    Lifecycle {
        url: String,
        #[source]
        source: logstream_store::Error,
    },
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// The `category` label of the error counter.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube_api",
            Error::Build(_) => "build",
            Error::Kafka { .. } => "kafka",
            Error::Lifecycle { .. } => "object_store",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.category(),
                _ => "kube_api",
            },
        }
    }
}

fn kube_err(op: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let op = op.into();
    move |source| Error::Kube { op, source }
}

/// Reconciles one LogStream (the entry point the controller calls).
pub async fn reconcile(ls: Arc<LogStream>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    // The controller's span around this names the object and why it is reconciled.
    tracing::debug!("reconciling");
    let ns = ls.namespace().unwrap_or_default();
    let api: Api<LogStream> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, ls, |event| async {
        match event {
            Finalizer::Apply(ls) => apply(&ls, &ctx).await,
            Finalizer::Cleanup(ls) => cleanup(&ls, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(
        "LogStream",
        started.elapsed(),
        result.as_ref().err().map(Error::category),
    );
    result
}

/// What the controller does after a failed reconcile.
pub fn error_policy(ls: Arc<LogStream>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(logstream = %ls.name_any(), namespace = ?ls.namespace(), %error, "reconcile failed; retrying");
    Action::requeue(RETRY_ERROR)
}

async fn apply(ls: &LogStream, ctx: &Context) -> Result<Action, Error> {
    let names = Names::of(ls);
    let client = &ctx.client;
    let credentials = match credentials(ls, client).await? {
        Ok(credentials) => credentials,
        Err(problem) => return report_problem(ls, ctx, problem).await,
    };
    let pipelines = pipelines_of(ls, client).await?;
    let desired = build::desired(&BuildInput {
        ls,
        pipelines: &pipelines,
        default_image: &ctx.default_image,
    })?;
    match apply_desired(client, &names, ls, &desired).await {
        // The API server refuses the object as built (an immutable field changed, a quota):
        // retrying the same apply cannot help, the spec has to change.
        Err(Error::Kube {
            op,
            source: kube::Error::Api(status),
        }) if status.code == 422 || status.code == 403 => {
            let message = format!("{op}: {}", status.message);
            return report_problem(ls, ctx, (reasons::APPLY_FAILED, message)).await;
        }
        other => other?,
    }
    if let Err(problem) = external(ls, ctx, &credentials, &pipelines).await {
        return report_problem(ls, ctx, problem).await;
    }
    let observed = Observed {
        generation: ls.metadata.generation.unwrap_or(0),
        workloads: observe(client, &names, &desired).await?,
        problem: None,
    };
    write_status(ls, ctx, &observed).await?;
    Ok(Action::requeue(RESYNC))
}

/// The Secret's keys as object_store options (`AWS_ACCESS_KEY_ID` → `aws_access_key_id`), or
/// the problem when the LogStream names a Secret that is not there.
pub(crate) async fn credentials(
    ls: &LogStream,
    client: &Client,
) -> Result<Result<BTreeMap<String, String>, (&'static str, String)>, Error> {
    let Some(secret_ref) = &ls.spec.storage.credentials_secret_ref else {
        return Ok(Ok(BTreeMap::new()));
    };
    let ns = ls.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = api
        .get_opt(&secret_ref.name)
        .await
        .map_err(kube_err(format!("get secret {ns}/{}", secret_ref.name)))?;
    let Some(secret) = secret else {
        return Ok(Err((
            reasons::SECRET_NOT_FOUND,
            format!(
                "spec.storage.credentialsSecretRef names Secret {ns}/{name}, which does not exist: \
                 create it with the object store's credentials, e.g. kubectl -n {ns} create secret \
                 generic {name} --from-literal=AWS_ACCESS_KEY_ID=... \
                 --from-literal=AWS_SECRET_ACCESS_KEY=...",
                name = secret_ref.name
            ),
        )));
    };
    Ok(Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_lowercase(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect()))
}

/// The valid LogPipelines naming `ls`, sorted by namespace and name. Invalid ones are left out
/// (their own status says why), so one tenant's mistake never breaks the others.
pub async fn pipelines_of(ls: &LogStream, client: &Client) -> Result<Vec<PipelineEntry>, Error> {
    let api: Api<LogPipeline> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_err("list logpipelines"))?;
    let names = Names::of(ls);
    let mut out: Vec<PipelineEntry> = list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| refers_to(p, &names))
        .filter(|p| validate::pipeline(&p.spec, &ls.spec).is_ok())
        .map(|p| PipelineEntry {
            namespace: p.namespace().unwrap_or_default(),
            name: p.name_any(),
            generation: p.metadata.generation.unwrap_or(0),
            spec: p.spec,
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(out)
}

/// Whether `p` names the LogStream `names` (its `logStreamRef.namespace` defaults to its own).
pub fn refers_to(p: &LogPipeline, names: &Names) -> bool {
    let target = log_stream_of(p);
    target.name == names.instance && target.namespace.as_deref() == Some(names.namespace.as_str())
}

/// Server-side applies every desired object, then deletes the objects of ours it no longer
/// lists (autoscaling switched off, bus switched, agent disabled).
async fn apply_desired(
    client: &Client,
    names: &Names,
    ls: &LogStream,
    d: &Desired,
) -> Result<(), Error> {
    let ns = names.namespace.as_str();
    let owned = names.owned_selector();
    let uid = ls.uid();
    let uid = uid.as_deref();
    // Order: what pods need (config, accounts, RBAC) before the pods.
    sync(
        Api::<ConfigMap>::namespaced(client.clone(), ns),
        &d.config_maps,
        &owned,
        uid,
    )
    .await?;
    sync(
        Api::<ServiceAccount>::namespaced(client.clone(), ns),
        &d.service_accounts,
        &owned,
        uid,
    )
    .await?;
    let cluster = names.cluster_scoped_selector();
    sync(
        Api::<ClusterRole>::all(client.clone()),
        &d.cluster_roles,
        &cluster,
        None,
    )
    .await?;
    sync(
        Api::<ClusterRoleBinding>::all(client.clone()),
        &d.cluster_role_bindings,
        &cluster,
        None,
    )
    .await?;
    sync(
        Api::<Service>::namespaced(client.clone(), ns),
        &d.services,
        &owned,
        uid,
    )
    .await?;
    sync(
        Api::<StatefulSet>::namespaced(client.clone(), ns),
        &d.stateful_sets,
        &owned,
        uid,
    )
    .await?;
    sync(
        Api::<DaemonSet>::namespaced(client.clone(), ns),
        &d.daemon_sets,
        &owned,
        uid,
    )
    .await?;
    sync(
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
        &d.autoscalers,
        &owned,
        uid,
    )
    .await?;
    sync(
        Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
        &d.disruption_budgets,
        &owned,
        uid,
    )
    .await?;
    Ok(())
}

/// Applies `wanted` and deletes objects matching `selector` that are not in it. With
/// `owner_uid`, only objects owned by that uid are deleted (never someone else's).
async fn sync<K>(
    api: Api<K>,
    wanted: &[K],
    selector: &str,
    owner_uid: Option<&str>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let kind = K::kind(&());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut keep = BTreeSet::new();
    for obj in wanted {
        let name = obj.name_any();
        api.patch(&name, &params, &Patch::Apply(obj))
            .await
            .map_err(kube_err(format!("apply {kind} {name}")))?;
        keep.insert(name);
    }
    let existing = api
        .list_metadata(&ListParams::default().labels(selector))
        .await
        .map_err(kube_err(format!("list {kind}")))?;
    for obj in existing.items {
        let name = obj.name_any();
        let ours = owner_uid.is_none_or(|uid| obj.owner_references().iter().any(|o| o.uid == uid));
        if keep.contains(&name) || !ours || obj.metadata.deletion_timestamp.is_some() {
            continue;
        }
        tracing::info!(%kind, %name, "deleting an object the LogStream no longer asks for");
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => return Err(kube_err(format!("delete {kind} {name}"))(source)),
        }
    }
    Ok(())
}

/// What lives outside Kubernetes: the Kafka topic and, on S3, the lifecycle rules. Done when
/// their settings changed since the last success (or the operator restarted).
async fn external(
    ls: &LogStream,
    ctx: &Context,
    credentials: &BTreeMap<String, String>,
    pipelines: &[PipelineEntry],
) -> Result<(), (&'static str, String)> {
    let key = format!("{}/{}", ls.namespace().unwrap_or_default(), ls.name_any());
    let policy = retention_policy(ls, pipelines);
    let fingerprint = {
        let text = format!(
            "{:?}|{:?}|{:?}|{:?}",
            ls.spec.bus, ls.spec.storage, policy, credentials
        );
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    };
    if ctx.external().get(&key) == Some(&fingerprint) {
        return Ok(());
    }
    if let Some(Bus::Kafka(_)) = ls.spec.bus.selected() {
        let cfg = kafka_config(ls);
        let info = logstream_bus::kafka::ensure_topic(&cfg)
            .await
            .map_err(|e| {
                (
                    reasons::BUS_UNAVAILABLE,
                    format!(
                        "Kafka topic {} on {}: {e}; retrying every {}s",
                        cfg.topic,
                        cfg.bootstrap,
                        RETRY_PROBLEM.as_secs()
                    ),
                )
            })?;
        if info.partitions != cfg.partitions {
            tracing::warn!(topic = %cfg.topic, partitions = info.partitions, "the topic keeps the partitions it has");
        }
    }
    if let Some((admin, bucket, prefix)) = bucket_admin(ls, credentials)
        .map_err(|e| (reasons::STORAGE_UNAVAILABLE, format!("spec.storage: {e}")))?
    {
        let change = logstream_store::retention::apply_lifecycle(&admin, &bucket, &prefix, &policy)
            .await
            .map_err(|e| {
                (
                    reasons::STORAGE_UNAVAILABLE,
                    format!(
                        "lifecycle rules of bucket {bucket}: {e}; retrying every {}s",
                        RETRY_PROBLEM.as_secs()
                    ),
                )
            })?;
        if change.changed() {
            publish(
                ctx,
                ls,
                EventType::Normal,
                "LifecycleRulesApplied",
                format!("bucket {bucket}: {change:?}"),
            )
            .await;
        }
    }
    ctx.external().insert(key, fingerprint);
    Ok(())
}

/// The retention the processors enforce, as the bucket's lifecycle rules must match it.
fn retention_policy(ls: &LogStream, pipelines: &[PipelineEntry]) -> RetentionPolicy {
    let section = build::config::retention(&ls.spec, pipelines);
    RetentionPolicy {
        default_days: Some(section.default_days),
        rules: section
            .rules
            .into_iter()
            .map(|r| RetentionRule {
                tenant: r.tenant,
                class: r.class,
                days: r.days,
            })
            .collect(),
    }
}

fn kafka_config(ls: &LogStream) -> KafkaConfig {
    let mut cfg = KafkaConfig::default();
    if let Some(Bus::Kafka(k)) = ls.spec.bus.selected() {
        cfg.bootstrap = k.bootstrap_servers.join(",");
        cfg.topic = k.topic.clone();
        cfg.partitions = k.partitions;
        cfg.replication_factor = k.replication_factor;
    }
    cfg
}

/// The bucket admin for an `s3://` store (other stores manage retention their own way).
fn bucket_admin(
    ls: &LogStream,
    credentials: &BTreeMap<String, String>,
) -> Result<Option<(BucketAdmin, String, String)>, logstream_store::Error> {
    let url = ls.spec.storage.url.trim();
    if !(url.starts_with("s3://") || url.starts_with("s3a://")) {
        return Ok(None);
    }
    let mut options = ls.spec.storage.options.clone();
    options.extend(credentials.iter().map(|(k, v)| (k.clone(), v.clone())));
    let (admin, location) = BucketAdmin::from_url(url, &options)?;
    Ok(Some((admin, location.bucket, location.prefix)))
}

/// The state of every workload in `desired`.
async fn observe(
    client: &Client,
    names: &Names,
    desired: &Desired,
) -> Result<Vec<(Component, Option<WorkloadState>)>, Error> {
    let ns = names.namespace.as_str();
    let mut out = Vec::new();
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    for sts in &desired.stateful_sets {
        let name = sts.name_any();
        let component = sts
            .labels()
            .get(crate::names::LABEL_COMPONENT)
            .and_then(|l| Component::from_label(l))
            .unwrap_or(Component::Ingest);
        let found = sts_api
            .get_opt(&name)
            .await
            .map_err(kube_err(format!("get statefulset {name}")))?;
        out.push((
            component,
            found.as_ref().map(WorkloadState::of_stateful_set),
        ));
    }
    let ds_api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    for ds in &desired.daemon_sets {
        let name = ds.name_any();
        let found = ds_api
            .get_opt(&name)
            .await
            .map_err(kube_err(format!("get daemonset {name}")))?;
        out.push((
            Component::Agent,
            found.as_ref().map(WorkloadState::of_daemon_set),
        ));
    }
    Ok(out)
}

/// Writes the status of a LogStream whose spec cannot be applied and looks again later.
async fn report_problem(
    ls: &LogStream,
    ctx: &Context,
    (reason, message): (&'static str, String),
) -> Result<Action, Error> {
    let observed = Observed {
        generation: ls.metadata.generation.unwrap_or(0),
        workloads: Vec::new(),
        problem: Some((reason, message)),
    };
    write_status(ls, ctx, &observed).await?;
    Ok(Action::requeue(RETRY_PROBLEM))
}

/// Patches the status when it differs from the stored one, with an Event when `Ready` or
/// `Degraded` changes.
async fn write_status(ls: &LogStream, ctx: &Context, observed: &Observed) -> Result<(), Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let previous = ls.status.as_ref();
    let new = status::compute(observed, previous, now);
    if previous == Some(&new) {
        return Ok(());
    }
    let api: Api<LogStream> =
        Api::namespaced(ctx.client.clone(), &ls.namespace().unwrap_or_default());
    let patch = serde_json::json!({ "status": new });
    api.patch_status(
        &ls.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(kube_err(format!(
        "update status of logstream {}",
        ls.name_any()
    )))?;
    announce_changes(ls, ctx, previous, &new).await;
    Ok(())
}

/// Events for what an admin wants to hear of: the LogStream became ready, something went
/// wrong (Degraded, with the reason), and it recovered.
async fn announce_changes(
    ls: &LogStream,
    ctx: &Context,
    previous: Option<&LogStreamStatus>,
    new: &LogStreamStatus,
) {
    use conditions::status::TRUE;
    let was = |t: &str| {
        previous
            .and_then(|p| conditions::find(&p.conditions, t))
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    if let Some(ready) = conditions::find(&new.conditions, READY)
        && ready.status == TRUE
        && was(READY).is_none_or(|(s, _)| s != TRUE)
    {
        publish(ctx, ls, EventType::Normal, "Ready", ready.message.clone()).await;
    }
    if let Some(degraded) = conditions::find(&new.conditions, conditions::DEGRADED) {
        let before = was(conditions::DEGRADED);
        if degraded.status == TRUE
            && before != Some((degraded.status.clone(), degraded.reason.clone()))
        {
            let note = degraded.message.clone();
            publish(ctx, ls, EventType::Warning, &degraded.reason, note).await;
        } else if degraded.status != TRUE && before.is_some_and(|(s, _)| s == TRUE) {
            let note = "the problem is gone; reconciling again".to_owned();
            publish(ctx, ls, EventType::Normal, "Recovered", note).await;
        }
    }
}

async fn publish(ctx: &Context, ls: &LogStream, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &ls.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish an event");
    }
}

/// Removes what the LogStream created outside its namespace's garbage collection: the agent's
/// cluster-scoped RBAC, the Kafka topic (and the events still in it), our lifecycle rules.
/// Parquet files in the bucket are kept: deleting a LogStream is not deleting its data.
async fn cleanup(ls: &LogStream, ctx: &Context) -> Result<Action, Error> {
    let names = Names::of(ls);
    let client = &ctx.client;
    let cluster = names.cluster_scoped_selector();
    sync::<ClusterRoleBinding>(Api::all(client.clone()), &[], &cluster, None).await?;
    sync::<ClusterRole>(Api::all(client.clone()), &[], &cluster, None).await?;
    if let Some(Bus::Kafka(_)) = ls.spec.bus.selected() {
        let cfg = kafka_config(ls);
        logstream_bus::kafka::delete_topic(&cfg)
            .await
            .map_err(|source| Error::Kafka {
                topic: cfg.topic.clone(),
                source,
            })?;
    }
    match credentials(ls, client).await? {
        Ok(credentials) => {
            if let Some((admin, bucket, prefix)) =
                bucket_admin(ls, &credentials).map_err(|source| Error::Lifecycle {
                    url: ls.spec.storage.url.clone(),
                    source,
                })?
            {
                logstream_store::retention::remove_lifecycle(&admin, &bucket, &prefix)
                    .await
                    .map_err(|source| Error::Lifecycle {
                        url: ls.spec.storage.url.clone(),
                        source,
                    })?;
            }
        }
        // Without the credentials the rules cannot be removed; holding the deletion forever
        // would not bring them back. Say so, and let go.
        Err((_, message)) => {
            publish(
                ctx,
                ls,
                EventType::Warning,
                "LifecycleRulesKept",
                format!("our lifecycle rules stay in the bucket: {message}"),
            )
            .await;
        }
    }
    ctx.external()
        .remove(&format!("{}/{}", names.namespace, names.instance));
    tracing::info!(logstream = %names.instance, namespace = %names.namespace, "cleaned up");
    Ok(Action::await_change())
}

/// Which LogStream a change of a LogPipeline concerns.
pub fn log_stream_of(p: &LogPipeline) -> kube::runtime::reflector::ObjectRef<LogStream> {
    let own = p.namespace().unwrap_or_default();
    let ns = p.spec.log_stream_ref.namespace.clone().unwrap_or(own);
    kube::runtime::reflector::ObjectRef::new(&p.spec.log_stream_ref.name).within(&ns)
}

/// The reconcile flow against a mocked API server: which requests it makes, in which order,
/// and what it writes. (tests/apiserver.rs runs it against the real one.)
#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use logstream_crds::LogStreamSpec;
    use logstream_crds::logstream::SecretRef;
    use prometheus_client::registry::Registry;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn context() -> (Arc<Context>, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let reporter = kube::runtime::events::Reporter {
            controller: FIELD_MANAGER.into(),
            instance: None,
        };
        let ctx = Context::new(
            client.clone(),
            "logstream:test".into(),
            Recorder::new(client, reporter),
            Arc::new(Metrics::register(&mut Registry::default())),
        );
        (Arc::new(ctx), handle)
    }

    fn log_stream(finalizer: bool) -> LogStream {
        let mut spec = LogStreamSpec::new("s3://logs/prod");
        spec.storage.credentials_secret_ref = Some(SecretRef { name: "s3".into() });
        let mut ls = LogStream::new("main", spec);
        ls.metadata.namespace = Some("logging".into());
        ls.metadata.uid = Some("uid-1".into());
        ls.metadata.generation = Some(4);
        ls.metadata.resource_version = Some("100".into());
        if finalizer {
            ls.metadata.finalizers = Some(vec![FINALIZER.into()]);
        }
        ls
    }

    fn json(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap()
    }

    async fn body_json(request: Request<Body>) -> serde_json::Value {
        let bytes = request.into_body().collect_bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Answers event writes (the Recorder's) with what was sent, passing anything else back.
    async fn next_non_event(
        handle: &mut Handle,
    ) -> (
        Request<Body>,
        tower_test::mock::SendResponse<Response<Body>>,
    ) {
        loop {
            let (request, send) = handle.next_request().await.expect("a request");
            if request.uri().path().starts_with("/apis/events.k8s.io/") {
                let body = body_json(request).await;
                send.send_response(json(StatusCode::CREATED, &body));
                continue;
            }
            return (request, send);
        }
    }

    #[tokio::test]
    async fn a_missing_secret_is_reported_as_degraded_and_retried_later() {
        let (ctx, mut handle) = context();
        let ls = Arc::new(log_stream(true));
        let server = tokio::spawn(async move {
            let (request, send) = next_non_event(&mut handle).await;
            assert_eq!(request.method(), Method::GET);
            assert_eq!(
                request.uri().path(),
                "/api/v1/namespaces/logging/secrets/s3"
            );
            send.send_response(json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "secrets \"s3\" not found"}),
            ));
            let (request, send) = next_non_event(&mut handle).await;
            assert_eq!(request.method(), Method::PATCH);
            assert_eq!(
                request.uri().path(),
                "/apis/logstream.dev/v1alpha1/namespaces/logging/logstreams/main/status"
            );
            let patch = body_json(request).await;
            let mut answer = serde_json::to_value(log_stream(true)).unwrap();
            answer["status"] = patch["status"].clone();
            send.send_response(json(StatusCode::OK, &answer));
            patch
        });
        let action = reconcile(ls, ctx.clone()).await.expect("reconcile");
        assert_eq!(action, Action::requeue(RETRY_PROBLEM));
        let patch = server.await.unwrap();
        let status = &patch["status"];
        assert_eq!(status["observedGeneration"], 4);
        let degraded = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Degraded")
            .unwrap();
        assert_eq!(degraded["status"], "True");
        assert_eq!(degraded["reason"], "SecretNotFound");
        assert!(
            degraded["message"].as_str().unwrap().starts_with(
                "spec.storage.credentialsSecretRef names Secret logging/s3, which does not exist"
            ),
            "{degraded}"
        );
        assert_eq!(ctx.metrics.reconciles("LogStream"), 1);
    }

    #[tokio::test]
    async fn the_finalizer_is_added_before_anything_is_created() {
        let (ctx, mut handle) = context();
        let ls = Arc::new(log_stream(false));
        let server = tokio::spawn(async move {
            let (request, send) = next_non_event(&mut handle).await;
            assert_eq!(request.method(), Method::PATCH);
            assert_eq!(
                request.uri().path(),
                "/apis/logstream.dev/v1alpha1/namespaces/logging/logstreams/main"
            );
            let patch = body_json(request).await;
            send.send_response(json(
                StatusCode::OK,
                &serde_json::to_value(log_stream(true)).unwrap(),
            ));
            patch
        });
        let action = reconcile(ls, ctx).await.expect("reconcile");
        // The finalizer's write is a change of the object: the next reconcile comes from it.
        assert_eq!(action, Action::await_change());
        let patch = server.await.unwrap().to_string();
        assert!(patch.contains(FINALIZER), "{patch}");
    }
}
