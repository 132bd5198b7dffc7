//! The builders: what a LogStream turns into, kind by kind.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use logstream_crds::logpipeline::{LogPipelineSpec, Parser};
use logstream_crds::logstream::{Autoscaling, BusSpec, KafkaBus, ScalingMetric, SecretRef};
use logstream_crds::{LogStream, LogStreamSpec};

use super::*;

/// A LogStream as the API server returns it: namespaced, with a uid and a generation.
struct Fixture(LogStream);

impl Fixture {
    fn embedded() -> Self {
        let mut ls = LogStream::new("main", LogStreamSpec::new("s3://logs/prod"));
        ls.metadata.namespace = Some("logging".into());
        ls.metadata.uid = Some("0d7e-uid".into());
        ls.metadata.generation = Some(1);
        Self(ls)
    }

    fn kafka() -> Self {
        let mut f = Self::embedded();
        f.0.spec.bus = BusSpec {
            kafka: Some(KafkaBus::new(["kafka-0.kafka:9092", "kafka-1.kafka:9092"])),
            embedded: None,
        };
        f
    }

    fn with(mut self, edit: impl FnOnce(&mut LogStreamSpec)) -> Self {
        edit(&mut self.0.spec);
        self
    }

    fn build(&self) -> Desired {
        self.build_with(&[])
    }

    fn build_with(&self, pipelines: &[PipelineEntry]) -> Desired {
        desired(&BuildInput {
            ls: &self.0,
            pipelines,
            default_image: "logstream:test",
        })
        .expect("build")
    }
}

fn names<K: kube::Resource>(objects: &[K]) -> Vec<String> {
    objects.iter().map(ResourceExt::name_any).collect()
}

fn sts<'a>(d: &'a Desired, name: &str) -> &'a StatefulSet {
    d.stateful_sets
        .iter()
        .find(|s| s.name_any() == name)
        .unwrap_or_else(|| panic!("no statefulset {name} in {:?}", names(&d.stateful_sets)))
}

fn container(sts: &StatefulSet) -> &Container {
    &sts.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
}

fn config_of<'a>(d: &'a Desired, name: &str) -> &'a str {
    let cm = d
        .config_maps
        .iter()
        .find(|c| c.name_any() == name)
        .unwrap_or_else(|| panic!("no configmap {name}"));
    &cm.data.as_ref().unwrap()["config.toml"]
}

#[test]
fn a_kafka_install_has_three_roles_each_with_config_services_and_budget() {
    let d = Fixture::kafka().build();
    assert_eq!(
        names(&d.stateful_sets),
        ["main-ingest", "main-processor", "main-query"]
    );
    assert_eq!(
        names(&d.config_maps),
        ["main-ingest", "main-processor", "main-query", "main-agent"]
    );
    assert_eq!(
        names(&d.services),
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
        names(&d.disruption_budgets),
        ["main-ingest", "main-processor", "main-query"]
    );
    assert!(d.autoscalers.is_empty(), "no autoscaling asked for");
    assert_eq!(names(&d.daemon_sets), ["main-agent"]);
    assert_eq!(names(&d.cluster_roles), ["logstream-logging-main-agent"]);
    // Every namespaced object is owned by the LogStream (garbage collection on delete).
    for sts in &d.stateful_sets {
        let owners = sts.owner_references();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (
                owners[0].kind.as_str(),
                owners[0].uid.as_str(),
                owners[0].controller
            ),
            ("LogStream", "0d7e-uid", Some(true))
        );
    }
    // A namespaced owner on a cluster-scoped object would be invalid.
    assert!(d.cluster_roles[0].metadata.owner_references.is_none());
}

#[test]
fn role_pods_run_their_subcommand_with_the_rendered_config_and_probes() {
    let d = Fixture::kafka().build();
    let processor = sts(&d, "main-processor");
    let spec = processor.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.service_name.as_deref(),
        Some("main-processor-headless")
    );
    let c = container(processor);
    assert_eq!(c.image.as_deref(), Some("logstream:test"));
    assert_eq!(
        c.args.as_deref().unwrap(),
        ["processor", "--config=/etc/logstream/config.toml"]
    );
    assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 3101);
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(path(&c.readiness_probe), "/readyz");
    assert_eq!(path(&c.liveness_probe), "/healthz");
    assert!(
        spec.volume_claim_templates.is_none(),
        "Kafka-bus roles keep no local state"
    );
    let config = config_of(&d, "main-processor");
    assert!(
        config.contains("bootstrap = \"kafka-0.kafka:9092,kafka-1.kafka:9092\""),
        "{config}"
    );
    assert!(
        config.contains("group = \"logstream-logging-main\""),
        "{config}"
    );
    assert!(config.contains("url = \"s3://logs/prod\""), "{config}");
    assert!(config.contains("default_days = 7"), "{config}");
    let ingest = config_of(&d, "main-ingest");
    assert!(
        !ingest.contains("[storage]"),
        "ingest never touches storage: {ingest}"
    );
}

#[test]
fn autoscaled_roles_get_an_hpa_and_leave_replicas_to_it() {
    let d = Fixture::kafka()
        .with(|s| {
            s.processor.autoscaling = Some(Autoscaling {
                metric: ScalingMetric::KafkaConsumerLag(50_000),
                ..Autoscaling::new(2, 12)
            });
            s.query.replicas = Some(3);
            s.query.autoscaling = Some(Autoscaling::new(2, 4));
        })
        .build();
    assert_eq!(names(&d.autoscalers), ["main-processor", "main-query"]);
    assert_eq!(
        sts(&d, "main-processor").spec.as_ref().unwrap().replicas,
        None
    );
    assert_eq!(
        sts(&d, "main-ingest").spec.as_ref().unwrap().replicas,
        Some(1)
    );
    let hpa = d.autoscalers[0].spec.as_ref().unwrap();
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 12));
    assert_eq!(hpa.scale_target_ref.name, "main-processor");
    let metric = &hpa.metrics.as_ref().unwrap()[0];
    assert_eq!(metric.type_, "External");
    let external = metric.external.as_ref().unwrap();
    assert_eq!(external.metric.name, "kafka_consumergroup_lag");
    assert_eq!(
        external
            .metric
            .selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["consumergroup"],
        "logstream-logging-main"
    );
    let query = d.autoscalers[1].spec.as_ref().unwrap();
    let cpu = query.metrics.as_ref().unwrap()[0]
        .resource
        .as_ref()
        .unwrap();
    assert_eq!(
        (cpu.name.as_str(), cpu.target.average_utilization),
        ("cpu", Some(80))
    );
}

#[test]
fn an_embedded_install_is_one_standalone_pod_with_its_wal_on_a_claim() {
    let d = Fixture::embedded()
        .with(|s| {
            s.storage
                .options
                .insert("aws_endpoint".into(), "http://minio:9000".into());
            s.storage.credentials_secret_ref = Some(SecretRef {
                name: "s3-creds".into(),
            });
        })
        .build();
    assert_eq!(names(&d.stateful_sets), ["main"]);
    assert_eq!(
        names(&d.services),
        ["main-ingest", "main-query", "main-headless"]
    );
    assert!(d.autoscalers.is_empty() && d.disruption_budgets.is_empty());
    let main = sts(&d, "main");
    let c = container(main);
    let args = c.args.as_deref().unwrap();
    assert_eq!(args[0], "standalone");
    assert!(
        args.contains(&"--storage=s3://logs/prod".to_owned()),
        "{args:?}"
    );
    assert!(args.contains(&"--retention-days=7".to_owned()), "{args:?}");
    let env = c.env.as_ref().unwrap();
    assert!(
        env.iter()
            .any(|e| e.name == "AWS_ENDPOINT" && e.value.as_deref() == Some("http://minio:9000"))
    );
    let secret = c.env_from.as_ref().unwrap()[0].secret_ref.as_ref().unwrap();
    assert_eq!(secret.name, "s3-creds");
    let claims = main
        .spec
        .as_ref()
        .unwrap()
        .volume_claim_templates
        .as_ref()
        .unwrap();
    let size = &claims[0]
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()["storage"];
    assert_eq!(size.0, "10Gi");
    // Both client Services reach the single pod.
    for svc in &d.services[..2] {
        let selector = svc.spec.as_ref().unwrap().selector.as_ref().unwrap();
        assert_eq!(selector["app.kubernetes.io/component"], "standalone");
    }
}

#[test]
fn the_agent_reads_host_logs_read_only_with_least_privilege() {
    let d = Fixture::kafka()
        .with(|s| {
            s.agent.node_selector.insert("logs".into(), "yes".into());
        })
        .build();
    let ds = &d.daemon_sets[0];
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.node_selector.as_ref().unwrap()["logs"], "yes");
    assert_eq!(pod.service_account_name.as_deref(), Some("main-agent"));
    let mounts = pod.containers[0].volume_mounts.as_ref().unwrap();
    let logs = mounts.iter().find(|m| m.name == "pod-logs").unwrap();
    assert_eq!(
        (logs.mount_path.as_str(), logs.read_only),
        ("/var/log/pods", Some(true))
    );
    let rules = d.cluster_roles[0].rules.as_ref().unwrap();
    for rule in rules {
        assert_eq!(rule.verbs, ["get", "list", "watch"], "read-only");
    }
    let resources: Vec<_> = rules
        .iter()
        .flat_map(|r| r.resources.clone().unwrap())
        .collect();
    assert_eq!(resources, ["pods", "logpipelines"]);
    let binding = &d.cluster_role_bindings[0];
    assert_eq!(
        binding.subjects.as_ref().unwrap()[0].namespace.as_deref(),
        Some("logging")
    );
    let agent_cfg = config_of(&d, "main-agent");
    assert!(
        agent_cfg.contains("ingest_url = \"http://main-ingest.logging.svc:3100\""),
        "{agent_cfg}"
    );
    let off = Fixture::kafka().with(|s| s.agent.enabled = false).build();
    assert!(
        off.daemon_sets.is_empty()
            && off.cluster_roles.is_empty()
            && off.service_accounts.is_empty()
    );
}

fn template_hash(d: &Desired, name: &str) -> String {
    let annotations = |meta: Option<&ObjectMeta>| {
        meta.and_then(|m| m.annotations.as_ref()).unwrap()[crate::names::CONFIG_HASH_ANNOTATION]
            .clone()
    };
    if let Some(s) = d
        .stateful_sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
    {
        return annotations(s.spec.as_ref().unwrap().template.metadata.as_ref());
    }
    let ds = d
        .daemon_sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no workload {name}"));
    annotations(ds.spec.as_ref().unwrap().template.metadata.as_ref())
}

#[test]
fn pipelines_reach_processor_query_and_agent_and_a_rule_change_restarts_nothing() {
    let f = Fixture::kafka();
    let before = f.build();
    let mut spec = LogPipelineSpec::new("main");
    spec.parsers = vec![Parser::regex("^(?P<level>[A-Z]+) ")];
    spec.labels.insert("team".into(), "payments".into());
    let entry = PipelineEntry {
        namespace: "shop".into(),
        name: "checkout".into(),
        generation: 4,
        spec,
    };
    let after = f.build_with(std::slice::from_ref(&entry));
    for name in ["main-processor", "main-query"] {
        let cfg = config_of(&after, name);
        assert!(cfg.contains("[[pipelines]]"), "{cfg}");
        assert!(cfg.contains("namespace = \"shop\""), "{cfg}");
        assert!(cfg.contains("pattern = \"^(?P<level>[A-Z]+) \""), "{cfg}");
    }
    // The agent gets what it uses: the pods and their labels, not the parsers.
    let agent = config_of(&after, "main-agent");
    assert!(agent.contains("name = \"checkout\""), "{agent}");
    assert!(agent.contains("team = \"payments\""), "{agent}");
    assert!(!agent.contains("regex"), "{agent}");
    assert!(!config_of(&after, "main-ingest").contains("pipelines"));
    // Processor and query read their pipelines again while they run; a new pipeline's rules
    // restart no pod. The agent restarts: it now collects more pods.
    for name in ["main-processor", "main-query", "main-ingest"] {
        assert_eq!(
            template_hash(&before, name),
            template_hash(&after, name),
            "{name}"
        );
    }
    assert_ne!(
        template_hash(&before, "main-agent"),
        template_hash(&after, "main-agent")
    );
    // A parser change restarts nothing, the agent included.
    let mut changed = entry.clone();
    changed.generation = 5;
    changed.spec.parsers = vec![Parser::regex("^(?P<lvl>[a-z]+) ")];
    let after_change = f.build_with(std::slice::from_ref(&changed));
    for name in ["main-processor", "main-query", "main-ingest", "main-agent"] {
        assert_eq!(
            template_hash(&after, name),
            template_hash(&after_change, name),
            "{name}"
        );
    }
    assert!(config_of(&after_change, "main-processor").contains("generation = 5"));
    // A retention change is read at start only: it rolls the roles that enforce it.
    let mut kept = changed.clone();
    kept.spec.retention = Some(logstream_crds::logpipeline::PipelineRetention { days: 3 });
    let after_retention = f.build_with(std::slice::from_ref(&kept));
    assert_ne!(
        template_hash(&after_change, "main-processor"),
        template_hash(&after_retention, "main-processor")
    );
}

#[test]
fn the_embedded_install_reads_its_pipelines_from_its_config_file() {
    let d = Fixture::embedded().build();
    let args = container(sts(&d, "main")).args.clone().unwrap();
    assert!(
        args.contains(&"--pipelines-config=/etc/logstream/config.toml".to_string()),
        "{args:?}"
    );
}

#[test]
fn the_image_defaults_to_the_operators_and_a_spec_image_wins() {
    let d = Fixture::kafka()
        .with(|s| s.image = Some("registry.example.com/ls:1".into()))
        .build();
    for sts in &d.stateful_sets {
        assert_eq!(
            container(sts).image.as_deref(),
            Some("registry.example.com/ls:1")
        );
    }
}
