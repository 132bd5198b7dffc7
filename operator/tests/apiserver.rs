//! The operator against the real control plane of `./e2e/env` (kube-apiserver, etcd,
//! kube-controller-manager with its garbage collector, kube-scheduler, kwok fake nodes), the
//! real Kafka broker and the S3 endpoint.
//!
//! The operator runs in this process (the same controllers `logstream operator` runs) and
//! watches the whole cluster, so the LogStream scenario is one test walking through the life of
//! an install in order; the lease test runs beside it (it starts no controllers). Without the
//! parts the tests skip, or fail under `REQUIRE_E2E=1`.
//!
//! The figures (apply → Ready, reconciles per change) are printed as `MEASURE` lines;
//! docs/benchmarks.md records them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, ResourceExt};
use logstream_crds::conditions::{self, DEGRADED, READY, reasons};
use logstream_crds::{LogPipeline, LogStream, crds};
use logstream_e2e::kafka::TestKafka;
use logstream_e2e::kube::{TestCluster, TestNamespace};
use logstream_e2e::s3::TestS3;
use logstream_operator::{Context, LeaseLock, Metrics};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const USER: &str = "e2e-admin";
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The operator's controllers, running until dropped.
struct Operator {
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Operator {
    fn start(client: Client) -> Self {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let reporter = Reporter {
            controller: "logstream-operator".into(),
            instance: Some("e2e".into()),
        };
        let ctx = Arc::new(Context::new(
            client.clone(),
            "logstream:e2e".into(),
            Recorder::new(client, reporter),
            metrics.clone(),
        ));
        let stop = CancellationToken::new();
        let task = tokio::spawn(logstream_operator::run_controllers(ctx, stop.clone()));
        Self {
            metrics,
            stop,
            task: Some(task),
        }
    }

    fn reconciles(&self) -> u64 {
        self.metrics.reconciles("LogStream")
    }

    /// Waits until no reconcile happened for `quiet`, then returns the count.
    async fn settled(&self, quiet: Duration) -> u64 {
        let mut last = self.reconciles();
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.reconciles();
            if now == last {
                return now;
            }
            last = now;
        }
    }

    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// [`logstream_e2e::wait_until`] for checks made of kube calls: an API error fails the wait, a
/// transport error (a pooled connection the server closed) is polled again.
async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> logstream_e2e::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<Option<T>>>,
{
    logstream_e2e::wait_until(what, timeout, || {
        let attempt = check();
        async move {
            match attempt.await {
                Ok(found) => Ok(found),
                Err(kube::Error::Api(status)) => Err(logstream_e2e::Error::KubeApi {
                    op: what.to_owned(),
                    source: kube::Error::Api(status),
                }),
                Err(e) => {
                    eprintln!("{what}: {e}; polling again");
                    Ok(None)
                }
            }
        }
    })
    .await
}

/// Server-side apply of a whole object (what `kubectl apply --server-side` sends).
async fn apply<K>(api: &Api<K>, name: &str, body: Value) -> kube::Result<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    api.patch(
        name,
        &PatchParams::apply(USER).force(),
        &Patch::Apply(&body),
    )
    .await
}

fn log_stream(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "logstream.dev/v1alpha1",
        "kind": "LogStream",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// Waits until the LogStream's status describes its current generation with `Ready` in
/// `status`, and returns it.
async fn wait_ready(
    api: &Api<LogStream>,
    name: &str,
    status: &str,
    timeout: Duration,
) -> anyhow::Result<LogStream> {
    let ls = wait_for(
        &format!("LogStream {name} Ready={status}"),
        timeout,
        || async {
            let ls = api.get(name).await?;
            let current =
                ls.status.as_ref().and_then(|s| s.observed_generation) == ls.metadata.generation;
            let conds = ls
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            let matches = conditions::find(&conds, READY).is_some_and(|c| c.status == status);
            Ok((current && matches).then_some(ls))
        },
    )
    .await?;
    Ok(ls)
}

fn condition<'a>(
    ls: &'a LogStream,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let conds = &ls.status.as_ref().expect("status").conditions;
    conditions::find(conds, type_).unwrap_or_else(|| panic!("no {type_} condition in {conds:?}"))
}

async fn names<K>(api: &Api<K>, selector: &str) -> kube::Result<Vec<String>>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let mut names: Vec<String> = api
        .list_metadata(&ListParams::default().labels(selector))
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    Ok(names)
}

/// Partitions of `topic` on the broker, `None` when it does not exist.
async fn topic_partitions(kafka: &TestKafka, topic: &str) -> anyhow::Result<Option<usize>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let config = kafka.client_config();
    let topic = topic.to_owned();
    let found = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let t = &metadata.topics()[0];
        Ok::<_, rdkafka::error::KafkaError>(t.error().is_none().then(|| t.partitions().len()))
    })
    .await??;
    Ok(found)
}

fn rendered(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("config.toml"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_stream_from_apply_to_delete() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("logstream_operator=debug,kube_runtime::controller=debug,warn")
        .try_init();
    let Some(cluster) = TestCluster::connect().await else {
        return Ok(());
    };
    let (Some(kafka), Some(s3)) = (TestKafka::connect().await, TestS3::connect().await) else {
        return Ok(());
    };
    cluster.install_crds(crds()).await?;
    let client = cluster.client();
    let ns = cluster.fresh_namespace("op").await?;
    let tenant = cluster.fresh_namespace("op-tenant").await?;
    let bucket = s3.fresh_bucket("op").await?;
    let topic = logstream_e2e::unique_name("op");
    let env = s3.env();

    // The object store's keys in a Secret, as an admin would keep them.
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
            }))?,
        )
        .await?;

    let operator = Operator::start(client.clone());
    let streams: Api<LogStream> = ns.api();
    let spec = json!({
        "bus": {"kafka": {
            "bootstrapServers": [kafka.bootstrap()],
            "topic": topic,
            "partitions": 3,
            "replicationFactor": 1,
        }},
        "storage": {
            "url": format!("s3://{}/prod", bucket.name()),
            "credentialsSecretRef": {"name": "s3"},
            "options": {
                "aws_endpoint": env.endpoint,
                "aws_region": env.region,
                "aws_allow_http": "true",
            },
        },
        "processor": {"replicas": 2},
        "query": {"autoscaling": {"minReplicas": 1, "maxReplicas": 3}},
    });

    // 1. Apply → every child, pods running on the kwok nodes, Ready.
    let started = Instant::now();
    apply(&streams, "main", log_stream("main", spec.clone())).await?;
    let ls = wait_ready(&streams, "main", "True", READY_TIMEOUT).await?;
    let apply_to_ready = started.elapsed();
    println!(
        "MEASURE apply->Ready (3 roles, 4 role pods, agent on every kwok node): {:.1} s",
        apply_to_ready.as_secs_f64()
    );
    let status = ls.status.clone().expect("status");
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        (status.processor.replicas, status.processor.ready_replicas),
        (2, 2)
    );
    assert_eq!(
        (status.ingest.ready_replicas, status.query.ready_replicas),
        (1, 1)
    );
    assert!(
        condition(&ls, READY)
            .message
            .starts_with("all pods ready: ingest 1/1, processor 2/2, query 1/1, agent "),
        "{}",
        condition(&ls, READY).message
    );
    assert_eq!(condition(&ls, DEGRADED).status, "False");
    assert!(ls.finalizers().iter().any(|f| f == "logstream.dev/cleanup"));

    let owned = "app.kubernetes.io/instance=main,app.kubernetes.io/managed-by=logstream-operator";
    assert_eq!(
        names(&ns.api::<StatefulSet>(), owned).await?,
        ["main-ingest", "main-processor", "main-query"]
    );
    assert_eq!(
        names(&ns.api::<Service>(), owned).await?,
        [
            "main-ingest",
            "main-ingest-headless",
            "main-processor",
            "main-processor-headless",
            "main-query",
            "main-query-headless"
        ]
    );
    assert_eq!(
        names(&ns.api::<ConfigMap>(), owned).await?,
        ["main-agent", "main-ingest", "main-processor", "main-query"]
    );
    assert_eq!(
        names(&ns.api::<HorizontalPodAutoscaler>(), owned).await?,
        ["main-query"]
    );
    assert_eq!(
        names(&ns.api::<PodDisruptionBudget>(), owned).await?,
        ["main-ingest", "main-processor", "main-query"]
    );
    assert_eq!(names(&ns.api::<DaemonSet>(), owned).await?, ["main-agent"]);
    let cluster_role = format!("logstream-{}-main-agent", ns.name());
    Api::<ClusterRole>::all(client.clone())
        .get(&cluster_role)
        .await?;
    ns.wait_pods_ready(
        "app.kubernetes.io/component=processor",
        2,
        Duration::from_secs(30),
    )
    .await?;
    let processor: StatefulSet = ns.api().get("main-processor").await?;
    let container = &processor
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(container.image.as_deref(), Some("logstream:e2e"));
    assert_eq!(
        container.args.as_deref().unwrap(),
        ["processor", "--config=/etc/logstream/config.toml"]
    );
    // Outside Kubernetes: the topic with its partitions, our lifecycle rules in the bucket.
    assert_eq!(topic_partitions(&kafka, &topic).await?, Some(3));
    let lifecycle = s3
        .admin()
        .get_lifecycle(bucket.name())
        .await?
        .expect("lifecycle rules");
    let expire_days: Vec<_> = lifecycle
        .rules
        .iter()
        .filter_map(|r| r.expiration.as_ref().map(|e| e.days))
        .collect();
    assert_eq!(expire_days, [7], "the default retention: {lifecycle:?}");
    let events: Api<Event> = ns.api();
    let ready_events = events
        .list(&ListParams::default().fields("involvedObject.name=main,reason=Ready"))
        .await?;
    assert_eq!(
        ready_events.items.len(),
        1,
        "one Ready event: {:?}",
        ready_events.items
    );

    // 2. Scale the processors: the StatefulSet follows, in a bounded number of reconciles.
    let before = operator.settled(Duration::from_secs(3)).await;
    let started = Instant::now();
    let mut scaled = spec.clone();
    scaled["processor"]["replicas"] = json!(3);
    apply(&streams, "main", log_stream("main", scaled.clone())).await?;
    let ls = wait_ready(&streams, "main", "True", READY_TIMEOUT).await?;
    let scale_to_ready = started.elapsed();
    let status = ls.status.clone().unwrap();
    assert_eq!(
        (status.observed_generation, status.processor.ready_replicas),
        (Some(2), 3)
    );
    let sts: StatefulSet = ns.api().get("main-processor").await?;
    assert_eq!(sts.spec.unwrap().replicas, Some(3));
    let per_change = operator.settled(Duration::from_secs(3)).await - before;
    println!(
        "MEASURE processor 2->3 replicas: Ready again after {:.1} s, {per_change} reconciles",
        scale_to_ready.as_secs_f64()
    );
    assert!(
        per_change <= 15,
        "{per_change} reconciles for one change: a hot loop?"
    );
    // And then it stays quiet. What still arrives are the children's own status updates (the
    // HPA controller's sync, a PDB recounting pods): a few, not a loop.
    // A hot loop would make hundreds; each of these follows a real change of a child.
    let idle = operator.settled(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let idle_reconciles = operator.reconciles() - idle;
    println!("MEASURE idle: {idle_reconciles} reconciles in 30 s with nothing changing");
    assert!(
        idle_reconciles <= 10,
        "{idle_reconciles} reconciles in 30 s of nothing changing: a loop?"
    );

    // 3. Drift: a deleted child comes back, an edited one is put back.
    let sts_api: Api<StatefulSet> = ns.api();
    let old_uid = sts_api.get("main-ingest").await?.uid();
    sts_api
        .delete("main-ingest", &DeleteParams::default())
        .await?;
    wait_for("main-ingest recreated", Duration::from_secs(30), || async {
        let sts = sts_api.get_opt("main-ingest").await?;
        Ok(sts
            .filter(|s| s.uid() != old_uid && s.metadata.deletion_timestamp.is_none())
            .map(|_| ()))
    })
    .await?;
    let cms: Api<ConfigMap> = ns.api();
    let want = rendered(&cms.get("main-processor").await?);
    cms.patch(
        "main-processor",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"config.toml": "# edited by hand\n"}})),
    )
    .await?;
    wait_for(
        "main-processor config restored",
        Duration::from_secs(30),
        || async {
            let cm = cms.get("main-processor").await?;
            Ok((rendered(&cm) == want).then_some(()))
        },
    )
    .await?;

    // 4. A spec the schema refuses never reaches the operator; the user reads why.
    let mut invalid = spec.clone();
    invalid["processor"] = json!({"autoscaling": {"minReplicas": 3, "maxReplicas": 2}});
    let err = apply(&streams, "main", log_stream("main", invalid))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .contains("spec.processor.autoscaling.minReplicas must be <= maxReplicas"),
        "{}",
        status.message
    );

    // 5. Tenants' LogPipelines: a valid one is merged and Ready, broken ones say why and are
    //    left out without breaking the valid one.
    let pipelines: Api<LogPipeline> = tenant.api();
    let pipeline = |name: &str, extra: Value| {
        let mut spec = json!({
            "logStreamRef": {"name": "main", "namespace": ns.name()},
            "selector": {"matchLabels": {"app": "web"}},
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"apiVersion": "logstream.dev/v1alpha1", "kind": "LogPipeline", "metadata": {"name": name}, "spec": spec})
    };
    apply(&pipelines, "web", pipeline("web", json!({"parsers": [{"regex": {"pattern": "^(?P<level>[A-Z]+) "}}], "retention": {"days": 14}}))).await?;
    apply(
        &pipelines,
        "broken",
        pipeline(
            "broken",
            json!({"parsers": [{"regex": {"pattern": "(?P<level>[A-Z+"}}]}),
        ),
    )
    .await?;
    apply(
        &pipelines,
        "hoarder",
        pipeline("hoarder", json!({"retention": {"days": 365}})),
    )
    .await?;
    // Wait until the pipeline's status describes its generation with `Ready` of `reason` (the
    // valid one waits for the rollout its own config change started).
    let pipeline_status = |name: &'static str, reason: &'static str| {
        let pipelines = pipelines.clone();
        async move {
            wait_for(
                &format!("LogPipeline {name} Ready with reason {reason}"),
                READY_TIMEOUT,
                || async {
                    let p = pipelines.get(name).await?;
                    let current = p.status.as_ref().and_then(|s| s.observed_generation)
                        == p.metadata.generation;
                    let ready =
                        conditions::find(&p.status.unwrap_or_default().conditions, READY).cloned();
                    Ok(ready.filter(|c| current && c.reason == reason))
                },
            )
            .await
        }
    };
    let web = pipeline_status("web", reasons::RECONCILED).await?;
    assert_eq!(web.status, "True", "{web:?}");
    assert_eq!(
        web.message,
        format!("merged into the config of LogStream {}/main", ns.name())
    );
    let broken = pipeline_status("broken", reasons::INVALID_SPEC).await?;
    assert_eq!(broken.status, "False");
    assert!(
        broken
            .message
            .starts_with("spec.parsers[0].regex.pattern does not compile"),
        "{}",
        broken.message
    );
    let hoarder = pipeline_status("hoarder", reasons::RETENTION_ABOVE_MAXIMUM).await?;
    assert_eq!(hoarder.status, "False");
    assert!(
        hoarder
            .message
            .contains("spec.retention.days is 365 but the LogStream keeps logs at most 30 days"),
        "{}",
        hoarder.message
    );
    let tenant_name = tenant.name().to_owned();
    let config = wait_for(
        "the processor config lists the valid pipeline",
        Duration::from_secs(30),
        || async {
            let cm = cms.get("main-processor").await?;
            let text = rendered(&cm);
            Ok(text.contains("name = \"web\"").then_some(text))
        },
    )
    .await?;
    assert!(
        config.contains(&format!("namespace = \"{tenant_name}\"")),
        "{config}"
    );
    assert!(
        !config.contains("broken") && !config.contains("hoarder"),
        "{config}"
    );
    // The pipeline's 14 days exceed the default 7: the default rises, other tenants are
    // unknown (see build::config::retention).
    assert!(config.contains("default_days = 14"), "{config}");
    let agent_config = rendered(&cms.get("main-agent").await?);
    assert!(agent_config.contains("name = \"web\""), "{agent_config}");
    logstream_e2e::wait_until(
        "lifecycle rules follow the pipeline's retention",
        Duration::from_secs(30),
        || async {
            let rules = s3
                .admin()
                .get_lifecycle(bucket.name())
                .await?
                .map(|c| c.rules)
                .unwrap_or_default();
            let days: Vec<_> = rules
                .iter()
                .filter_map(|r| r.expiration.as_ref().map(|e| e.days))
                .collect();
            Ok((days == [14]).then_some(()))
        },
    )
    .await?;

    // 6. A spec that passes the schema but cannot work: Degraded with a reason, then it
    //    recovers once the admin fixes it.
    let mut embedded = json!({
        "storage": {
            "url": format!("s3://{}/other", bucket.name()),
            "credentialsSecretRef": {"name": "later"},
            "options": {"aws_endpoint": env.endpoint, "aws_region": env.region, "aws_allow_http": "true"},
        },
    });
    embedded["agent"] = json!({"enabled": false});
    apply(&streams, "small", log_stream("small", embedded)).await?;
    let small = wait_ready(&streams, "small", "False", Duration::from_secs(30)).await?;
    let degraded = condition(&small, DEGRADED);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", reasons::SECRET_NOT_FOUND)
    );
    assert!(
        degraded
            .message
            .contains(&format!("Secret {}/later, which does not exist", ns.name())),
        "{}",
        degraded.message
    );
    let mut later: Secret = secrets.get("s3").await?;
    later.metadata = kube::api::ObjectMeta {
        name: Some("later".into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &later).await?;
    let small = wait_ready(&streams, "small", "True", Duration::from_secs(90)).await?;
    assert_eq!(condition(&small, DEGRADED).status, "False");
    assert_eq!(
        names(&sts_api, "app.kubernetes.io/instance=small").await?,
        ["small"]
    );
    ns.wait_pvc_bound("data-small-0", Duration::from_secs(30))
        .await?;

    // 7. Delete: children garbage-collected, RBAC, topic and lifecycle rules removed, the
    //    finalizer lets go.
    streams.delete("main", &DeleteParams::default()).await?;
    wait_for("LogStream main gone", Duration::from_secs(60), || async {
        let ls = streams.get_opt("main").await?;
        Ok(ls.is_none().then_some(()))
    })
    .await?;
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .get_opt(&cluster_role)
            .await?
            .is_none()
    );
    assert_eq!(
        topic_partitions(&kafka, &topic).await?,
        None,
        "topic deleted"
    );
    let lifecycle = s3
        .admin()
        .get_lifecycle(bucket.name())
        .await?
        .map(|c| c.rules)
        .unwrap_or_default();
    assert!(
        lifecycle.iter().all(|r| !r
            .filter
            .prefix
            .as_deref()
            .unwrap_or_default()
            .starts_with("prod/")),
        "main's rules removed, small's kept: {lifecycle:?}"
    );
    wait_for(
        "main's children garbage-collected",
        Duration::from_secs(60),
        || async {
            let left = names(&sts_api, owned).await?;
            let cms_left = names(&cms, owned).await?;
            Ok((left.is_empty() && cms_left.is_empty()).then_some(()))
        },
    )
    .await?;
    // The pipeline now names a LogStream that is gone, and says so.
    wait_for(
        "LogPipeline web reports its LogStream missing",
        Duration::from_secs(30),
        || async {
            let p = pipelines.get("web").await?;
            let ready = conditions::find(&p.status.unwrap_or_default().conditions, READY).cloned();
            Ok(ready
                .filter(|c| c.reason == reasons::LOG_STREAM_NOT_FOUND)
                .map(|_| ()))
        },
    )
    .await?;

    streams.delete("small", &DeleteParams::default()).await?;
    wait_for("LogStream small gone", Duration::from_secs(60), || async {
        let ls = streams.get_opt("small").await?;
        Ok(ls.is_none().then_some(()))
    })
    .await?;
    operator.stop().await;
    ns.delete().await?;
    tenant.delete().await?;
    Ok(())
}

/// Two candidates for one Lease: one leads, the other waits; the leader's release hands over.
#[tokio::test]
async fn one_of_two_operators_leads() -> anyhow::Result<()> {
    let Some(cluster) = TestCluster::connect().await else {
        return Ok(());
    };
    let ns: TestNamespace = cluster.fresh_namespace("op-lease").await?;
    let lock = |who: &str| {
        LeaseLock::new(
            cluster.client(),
            ns.name(),
            "logstream-operator",
            who,
            Duration::from_secs(15),
        )
    };
    let (a, b) = (lock("a"), lock("b"));
    assert!(
        a.try_acquire_or_renew().await?,
        "the first candidate takes a free lease"
    );
    assert!(
        !b.try_acquire_or_renew().await?,
        "the second waits while it is held"
    );
    assert!(a.try_acquire_or_renew().await?, "the holder renews");
    assert!(!b.try_acquire_or_renew().await?);
    a.release().await?;
    assert!(
        b.try_acquire_or_renew().await?,
        "a released lease is taken at once"
    );
    assert!(!a.try_acquire_or_renew().await?);
    ns.delete().await?;
    Ok(())
}
