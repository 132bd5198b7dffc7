//! `LogStream` (`logstream.dev/v1alpha1`, namespaced): one installation of the platform, the
//! ingest, processor and query roles, the bus between them, the object store behind them, the
//! node agent and what tenants are granted.
//!
//! Rules that span sections (the embedded bus allows one pod per role; processors beyond the
//! Kafka partitions would idle) sit on the spec itself; rules within a section sit on it.

mod agent;
mod bus;
mod roles;
mod storage;
mod tenancy;
#[cfg(test)]
mod tests;

pub use agent::AgentSpec;
pub use bus::{Bus, BusSpec, EmbeddedBus, KafkaBus};
pub use roles::{Autoscaling, RoleSpec, RoleStatus, ScalingMetric};
pub use storage::{SecretRef, StorageSpec};
pub use tenancy::{LimitsSpec, RetentionSpec, TenantLimits, TenantLimitsOverride};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::Rule;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a LogStream installation. Only `storage.url` is required: the rest
/// defaults to a single pod per role on the embedded bus.
#[allow(
    clippy::duplicated_attributes,
    reason = "each printcolumn(...) repeats type_ = ..., which is not one attribute given twice"
)]
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "logstream.dev",
    version = "v1alpha1",
    kind = "LogStream",
    plural = "logstreams",
    namespaced,
    status = "LogStreamStatus",
    derive = "PartialEq",
    shortname = "lst",
    doc = "A LogStream installation: ingest, processor and query pods, the bus between them \
           (Kafka or the embedded write-ahead log), the object store holding the Parquet \
           files, the node agent, and the retention and limits its tenants get.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether every role is available",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Ingest",
        type_ = "integer",
        description = "Ready ingest pods",
        json_path = ".status.ingest.readyReplicas"
    ),
    printcolumn(
        name = "Processor",
        type_ = "integer",
        description = "Ready processor pods",
        json_path = ".status.processor.readyReplicas"
    ),
    printcolumn(
        name = "Query",
        type_ = "integer",
        description = "Ready query pods",
        json_path = ".status.query.readyReplicas"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        description = "Why the LogStream is or is not ready",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = embedded_single_replica_rule("ingest"),
    validation = embedded_single_replica_rule("processor"),
    validation = embedded_single_replica_rule("query"),
    // Each Kafka partition has one consumer at a time: processors beyond the count idle.
    validation = (
        "!has(self.bus.kafka) || !has(self.processor.autoscaling) || \
         self.processor.autoscaling.maxReplicas <= self.bus.kafka.partitions",
        "spec.processor.autoscaling.maxReplicas must be <= spec.bus.kafka.partitions: \
         a processor without a partition sits idle"
    ),
    validation = (
        "!has(self.bus.kafka) || !has(self.processor.replicas) || \
         self.processor.replicas <= self.bus.kafka.partitions",
        "spec.processor.replicas must be <= spec.bus.kafka.partitions: \
         a processor without a partition sits idle"
    )
)]
pub struct LogStreamSpec {
    /// Container image of every role and the agent (one image, a subcommand per role), e.g.
    /// `registry.example.com/logstream:0.1.0`. Unset: the image the operator itself runs,
    /// so the operator and the data plane stay on one version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub image: Option<String>,
    /// The ingest role: the Loki push and NDJSON endpoints, which validate, apply tenant
    /// limits and produce to the bus. Default: 1 pod.
    #[serde(default)]
    #[x_kube(
        validation = roles::min_le_max_rule("ingest"),
        validation = roles::replicas_in_range_rule("ingest"),
        validation = roles::no_kafka_lag_rule("ingest")
    )]
    pub ingest: RoleSpec,
    /// The processor role: consumes the bus and writes Parquet files to object storage,
    /// exactly once. The only role that may scale on `kafkaConsumerLag`. Default: 1 pod.
    #[serde(default)]
    #[x_kube(
        validation = roles::min_le_max_rule("processor"),
        validation = roles::replicas_in_range_rule("processor")
    )]
    pub processor: RoleSpec,
    /// The query role: the Loki query API (LogQL) over object storage and the bus's recent
    /// events. Default: 1 pod.
    #[serde(default)]
    #[x_kube(
        validation = roles::min_le_max_rule("query"),
        validation = roles::replicas_in_range_rule("query"),
        validation = roles::no_kafka_lag_rule("query")
    )]
    pub query: RoleSpec,
    /// Object storage for the Parquet files and manifests. Required.
    pub storage: StorageSpec,
    /// The bus between ingest and the processors: exactly one of `kafka` or `embedded`.
    /// Default `{embedded: {}}`.
    #[serde(default)]
    pub bus: BusSpec,
    /// How long logs are kept, in days: a default and the most a LogPipeline may ask for.
    /// Default 7 and 30 days.
    #[serde(default)]
    pub retention: RetentionSpec,
    /// Ingest rate and query concurrency per tenant: defaults for all, overrides for some.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// The node agent (a DaemonSet) that collects pod logs for LogPipelines. Default: on,
    /// on every node, reading `/var/log/pods`.
    #[serde(default)]
    pub agent: AgentSpec,
}

impl LogStreamSpec {
    /// A spec with storage at `storage_url` and every other field at its default: what the API
    /// server makes of a LogStream that sets only `spec.storage.url`.
    pub fn new(storage_url: impl Into<String>) -> Self {
        Self {
            image: None,
            ingest: RoleSpec::default(),
            processor: RoleSpec::default(),
            query: RoleSpec::default(),
            storage: StorageSpec::new(storage_url),
            bus: BusSpec::default(),
            retention: RetentionSpec::default(),
            limits: LimitsSpec::default(),
            agent: AgentSpec::default(),
        }
    }
}

/// Observed state of a LogStream, written by the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogStreamStatus {
    /// The `metadata.generation` the operator last reconciled; conditions describe that
    /// generation. Behind `metadata.generation` while a change is being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (every role has its pods available), `Progressing` (a change is rolling out)
    /// and `Degraded` (the spec cannot be applied or a role lacks pods), one entry per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Pods of the ingest role.
    #[serde(default)]
    pub ingest: RoleStatus,
    /// Pods of the processor role.
    #[serde(default)]
    pub processor: RoleStatus,
    /// Pods of the query role.
    #[serde(default)]
    pub query: RoleStatus,
}

/// With the embedded bus one pod runs every role, so `role` cannot scale.
fn embedded_single_replica_rule(role: &str) -> Rule {
    crate::rule(
        format!(
            "!has(self.bus.embedded) || \
             ((!has(self.{role}.replicas) || self.{role}.replicas == 1) && !has(self.{role}.autoscaling))"
        ),
        format!(
            "spec.{role} must run 1 replica without autoscaling when spec.bus.embedded is set; \
             use spec.bus.kafka to scale out"
        ),
    )
}
