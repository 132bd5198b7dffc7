//! The LogStream types and their schema without a cluster: defaults (serde and schema agree),
//! round trips, the CEL rules and printer columns. tests/apiserver.rs checks them for real.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;

const MINIMAL: &str = "
apiVersion: logstream.dev/v1alpha1
kind: LogStream
metadata:
  name: main
spec:
  storage:
    url: s3://logs/prod
";

fn full_spec() -> LogStreamSpec {
    let mut spec = LogStreamSpec::new("gs://logs/eu");
    spec.image = Some("registry.example.com/logstream:0.1.0".into());
    spec.bus = BusSpec {
        kafka: Some(KafkaBus::new(["kafka-0:9092", "[fd00::1]:9092"])),
        embedded: None,
    };
    spec.ingest.autoscaling = Some(Autoscaling::new(2, 6));
    spec.ingest.resources = Some(ResourceRequirements {
        requests: Some(BTreeMap::from([("cpu".into(), Quantity("500m".into()))])),
        ..ResourceRequirements::default()
    });
    spec.processor.replicas = Some(3);
    spec.processor.autoscaling = Some(Autoscaling {
        metric: ScalingMetric::KafkaConsumerLag(100_000),
        ..Autoscaling::new(2, 12)
    });
    spec.query.autoscaling = Some(Autoscaling {
        metric: ScalingMetric::MemoryUtilizationPercent(75),
        ..Autoscaling::new(1, 3)
    });
    spec.storage.credentials_secret_ref = Some(SecretRef {
        name: "logstream-gcs".into(),
    });
    spec.storage.options = BTreeMap::from([("google_bucket".into(), "logs".into())]);
    spec.retention = RetentionSpec {
        default_days: 14,
        maximum_days: 90,
    };
    spec.limits.overrides.push(TenantLimitsOverride {
        tenant: "payments".into(),
        ingest_rate_bytes_per_second: Some(32 << 20),
        ingest_burst_bytes: None,
        query_concurrency: Some(16),
    });
    spec.agent.node_selector = BTreeMap::from([("pool".into(), "apps".into())]);
    spec.agent.tolerations.push(Toleration {
        key: Some("dedicated".into()),
        operator: Some("Exists".into()),
        ..Toleration::default()
    });
    spec
}

/// The `spec` schema of the LogStream CRD, as JSON.
fn spec_schema() -> serde_json::Value {
    let crd = serde_json::to_value(&crate::crds()[0]).expect("CRD to JSON");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

#[test]
fn minimal_yaml_deserializes_to_the_defaults() {
    let ls: LogStream = serde_saphyr::from_str(MINIMAL).expect("parse minimal LogStream");
    assert_eq!(ls.spec, LogStreamSpec::new("s3://logs/prod"));
    let spec = ls.spec;
    let Some(Bus::Embedded(wal)) = spec.bus.selected() else {
        panic!("the default bus is embedded: {:?}", spec.bus);
    };
    assert_eq!(wal.volume_size, Quantity("10Gi".into()));
    assert_eq!(
        (spec.retention.default_days, spec.retention.maximum_days),
        (7, 30)
    );
    let limits = &spec.limits.defaults;
    assert_eq!(limits.ingest_rate_bytes_per_second, 4 * 1024 * 1024);
    assert_eq!(limits.ingest_burst_bytes, 16 * 1024 * 1024);
    assert_eq!(limits.query_concurrency, 8);
    assert!(spec.agent.enabled);
    assert_eq!(spec.agent.host_log_path, "/var/log/pods");
    assert_eq!(spec.ingest, RoleSpec::default());
}

/// The API server applies the schema's defaults, serde applies the Rust ones: they must agree,
/// or the operator would see another spec than `kubectl get -o yaml` shows.
#[test]
fn schema_defaults_are_the_rust_defaults() {
    let rust = serde_json::to_value(LogStreamSpec::new("s3://x")).expect("spec to JSON");
    let schema = spec_schema();
    let mut checked = 0;
    for (field, property) in schema["properties"].as_object().expect("properties") {
        if let Some(default) = property.get("default") {
            let mut defaulted = default.clone();
            fill_defaults(&mut defaulted, property);
            assert_eq!(defaulted, rust[field], "default of spec.{field}");
            checked += 1;
        }
    }
    assert_eq!(
        checked, 7,
        "ingest, processor, query, bus, retention, limits, agent"
    );
}

/// Apply nested schema defaults to `value`, as the API server does after a parent default.
fn fill_defaults(value: &mut serde_json::Value, schema: &serde_json::Value) {
    let (Some(object), Some(properties)) =
        (value.as_object_mut(), schema["properties"].as_object())
    else {
        return;
    };
    for (name, property) in properties {
        if let Some(default) = property.get("default") {
            object.entry(name).or_insert_with(|| default.clone());
        }
        if let Some(child) = object.get_mut(name) {
            fill_defaults(child, property);
        }
    }
}

#[test]
fn full_spec_round_trips_through_json_and_yaml() {
    let ls = LogStream::new("main", full_spec());
    let json = serde_json::to_value(&ls).expect("to JSON");
    assert_eq!(
        serde_json::from_value::<LogStream>(json).expect("from JSON"),
        ls
    );
    let yaml = serde_saphyr::to_string(&ls).expect("to YAML");
    assert_eq!(
        serde_saphyr::from_str::<LogStream>(&yaml).expect("from YAML"),
        ls
    );
}

#[test]
fn scaling_metric_is_one_key_with_its_target() {
    let metric: ScalingMetric = serde_saphyr::from_str("kafkaConsumerLag: 50000").expect("parse");
    assert_eq!(metric, ScalingMetric::KafkaConsumerLag(50_000));
    let json = serde_json::to_value(ScalingMetric::CpuUtilizationPercent(70)).expect("to JSON");
    assert_eq!(json, serde_json::json!({"cpuUtilizationPercent": 70}));
    let autoscaling: Autoscaling = serde_saphyr::from_str("maxReplicas: 4").expect("parse");
    assert_eq!(autoscaling, Autoscaling::new(1, 4));
}

#[test]
fn bus_selects_only_with_exactly_one_member() {
    let kafka = KafkaBus::new(["kafka:9092"]);
    let both = BusSpec {
        kafka: Some(kafka.clone()),
        embedded: Some(EmbeddedBus::default()),
    };
    assert_eq!(both.selected(), None);
    let neither = BusSpec {
        kafka: None,
        embedded: None,
    };
    assert_eq!(neither.selected(), None);
    let one = BusSpec {
        kafka: Some(kafka.clone()),
        embedded: None,
    };
    assert_eq!(one.selected(), Some(Bus::Kafka(&kafka)));
    assert_eq!(
        (
            kafka.topic.as_str(),
            kafka.partitions,
            kafka.replication_factor
        ),
        ("logstream", 12, 3)
    );
}

#[test]
fn tenant_limits_fall_back_to_the_defaults_field_by_field() {
    let limits = full_spec().limits;
    let payments = limits.for_tenant("payments");
    assert_eq!(payments.ingest_rate_bytes_per_second, 32 << 20);
    assert_eq!(
        payments.ingest_burst_bytes,
        limits.defaults.ingest_burst_bytes
    );
    assert_eq!(payments.query_concurrency, 16);
    assert_eq!(limits.for_tenant("other"), limits.defaults);
}

#[test]
fn schema_carries_the_cel_rules_with_their_messages() {
    let messages: Vec<String> = crate::cel_rules(&crate::crds()[0])
        .into_iter()
        .map(|(_, message)| message)
        .collect();
    let expected = [
        "spec.ingest.autoscaling.minReplicas must be <= maxReplicas",
        "spec.processor.autoscaling.minReplicas must be <= maxReplicas",
        "spec.query.autoscaling.minReplicas must be <= maxReplicas",
        "spec.ingest.replicas must be within autoscaling.minReplicas..maxReplicas",
        "spec.retention.defaultDays must be <= maximumDays",
        "spec.bus must set exactly one of kafka or embedded",
        "spec.query must run 1 replica without autoscaling when spec.bus.embedded is set; \
         use spec.bus.kafka to scale out",
        "spec.processor.replicas must be <= spec.bus.kafka.partitions: a processor without a \
         partition sits idle",
        "spec.bus.kafka.partitions cannot decrease: Kafka cannot remove partitions",
    ];
    for message in expected {
        assert!(
            messages.iter().any(|m| m == message),
            "missing {message:?} in {messages:#?}"
        );
    }
    let lag = "spec.ingest.autoscaling.metric.kafkaConsumerLag is only for spec.processor";
    assert!(messages.iter().any(|m| m.starts_with(lag)));
    assert!(
        !messages
            .iter()
            .any(|m| m.starts_with("spec.processor.autoscaling.metric.kafka"))
    );
}

#[test]
fn crd_has_status_subresource_and_printer_columns() {
    let crd = &crate::crds()[0];
    let version = &crd.spec.versions[0];
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        ["Ready", "Ingest", "Processor", "Query", "Reason", "Age"]
    );
}
