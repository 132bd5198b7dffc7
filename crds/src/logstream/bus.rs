//! The bus between ingest and the processors: Apache Kafka for a scaled-out install, or the
//! embedded write-ahead log for a single-replica one.
//!
//! The choice is a struct with two optional members and a CEL rule ("exactly one"), the
//! Kubernetes way of writing a union: the API server then explains a wrong spec in words, and
//! new bus kinds can be added as members later. [`BusSpec::selected`] gives the Rust view.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Where ingest hands events to the processors. Exactly one of `kafka` or `embedded`.
/// Default: `{embedded: {}}`, one pod per role on a write-ahead log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = ("has(self.kafka) != has(self.embedded)", "spec.bus must set exactly one of kafka or embedded"))]
pub struct BusSpec {
    /// Apache Kafka: ingest produces to one topic in transactions, the processors consume it
    /// as one consumer group. Needed for more than one replica of any role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaBus>,
    /// The embedded write-ahead log on a PersistentVolume: one pod runs every role, so every
    /// role must run exactly 1 replica without autoscaling. For small installs and trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedBus>,
}

impl Default for BusSpec {
    fn default() -> Self {
        Self {
            kafka: None,
            embedded: Some(EmbeddedBus::default()),
        }
    }
}

/// The bus a [`BusSpec`] selects, when it selects exactly one (the CRD enforces that).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bus<'a> {
    /// Apache Kafka.
    Kafka(&'a KafkaBus),
    /// The embedded write-ahead log.
    Embedded(&'a EmbeddedBus),
}

impl BusSpec {
    /// The selected bus; `None` when both or neither member is set (which the API server
    /// refuses, but a client may still build).
    pub fn selected(&self) -> Option<Bus<'_>> {
        match (&self.kafka, &self.embedded) {
            (Some(kafka), None) => Some(Bus::Kafka(kafka)),
            (None, Some(embedded)) => Some(Bus::Embedded(embedded)),
            _ => None,
        }
    }
}

/// An Apache Kafka cluster the install uses (it does not deploy Kafka).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaBus {
    /// Brokers to bootstrap from, each `host:port` (e.g. `kafka-0.kafka:9092`, `[fd00::1]:9092`).
    /// 1 to 64 entries.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 261)))]
    #[x_kube(validation = (
        r#"self.all(s, s.matches(r'^(\[[0-9a-fA-F:.]+\]|[^:,/ \[\]]+):[0-9]{1,5}$'))"#,
        "spec.bus.kafka.bootstrapServers entries must be host:port, e.g. kafka:9092"
    ))]
    pub bootstrap_servers: Vec<String>,
    /// Topic the events go through. Created by the operator when missing. Default `logstream`.
    #[serde(default = "default_topic")]
    #[schemars(length(min = 1, max = 249))]
    pub topic: String,
    /// Partitions of the topic: the most processors that can consume at once. Default 12.
    /// Can grow but never shrink (Kafka cannot remove partitions).
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1))]
    #[x_kube(validation = ("self >= oldSelf", "spec.bus.kafka.partitions cannot decrease: Kafka cannot remove partitions"))]
    pub partitions: i32,
    /// Copies of each partition kept by the brokers. Default 3; use 1 for a single broker.
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1))]
    pub replication_factor: i32,
}

impl KafkaBus {
    /// Kafka at `bootstrap_servers`, with the default topic, partitions and replication.
    pub fn new(bootstrap_servers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into_iter().map(Into::into).collect(),
            topic: default_topic(),
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
        }
    }
}

/// The embedded write-ahead log's volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedBus {
    /// Size of the PersistentVolumeClaim holding the write-ahead log, as a Kubernetes
    /// quantity (e.g. `10Gi`). It holds events until they are written to object storage.
    /// Default `10Gi`.
    #[serde(default = "default_volume_size")]
    pub volume_size: Quantity,
    /// StorageClass of that claim. Unset: the cluster's default StorageClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

impl Default for EmbeddedBus {
    fn default() -> Self {
        Self {
            volume_size: default_volume_size(),
            storage_class_name: None,
        }
    }
}

fn default_topic() -> String {
    "logstream".to_owned()
}

fn default_partitions() -> i32 {
    12
}

fn default_replication_factor() -> i32 {
    3
}

fn default_volume_size() -> Quantity {
    Quantity("10Gi".to_owned())
}
