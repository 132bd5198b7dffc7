//! The three scalable roles of a LogStream (ingest, processor, query): how many pods each runs,
//! when it autoscales and on which signal, and what each pod may use; and their observed state.
//!
//! The rules that relate a role's fields (min ≤ max, replicas inside the range) are attached
//! where [`LogStreamSpec`](super::LogStreamSpec) names the role, so each message can say which
//! role is wrong: one shared `Autoscaling` type could only say "minReplicas".

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::core::Rule;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pods of one role: a fixed count, or a range the operator's HorizontalPodAutoscaler moves in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleSpec {
    /// Number of pods. Without `autoscaling` this is the fixed count (1 when unset). With
    /// `autoscaling` it is the count to start from and must lie within
    /// `autoscaling.minReplicas..maxReplicas` (`minReplicas` when unset). Must be 1 (or unset)
    /// when the embedded bus is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Scale the role between `minReplicas` and `maxReplicas` on one signal. Unset: the role
    /// runs `replicas` pods. Not allowed with the embedded bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// CPU and memory requests and limits of each pod of the role, as in a container's
    /// `resources` (e.g. `requests: {cpu: 500m, memory: 1Gi}`). Utilization signals are
    /// measured against the requests, so set them when autoscaling on CPU or memory. Unset:
    /// the operator's defaults for the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// The range a role scales in and the signal it scales on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    /// Fewest pods the role scales down to. Default 1; at most `maxReplicas`.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Most pods the role scales up to. Required; at least `minReplicas`. For the processor,
    /// at most the Kafka topic's `partitions` (a processor without a partition sits idle).
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// The signal to scale on and its target value, one of `cpuUtilizationPercent`,
    /// `memoryUtilizationPercent` or (processor only) `kafkaConsumerLag`. Default
    /// `{cpuUtilizationPercent: 80}`.
    #[serde(default = "default_metric")]
    pub metric: ScalingMetric,
}

impl Autoscaling {
    /// Scale between `min_replicas` and `max_replicas` on the default signal (80 % CPU).
    pub fn new(min_replicas: i32, max_replicas: i32) -> Self {
        Self {
            min_replicas,
            max_replicas,
            metric: default_metric(),
        }
    }
}

/// What the autoscaler keeps at its target: exactly one signal with its target value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
// The schema's oneOf already allows one member only, but its message names no field.
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.cpuUtilizationPercent) ? 1 : 0) + (has(self.memoryUtilizationPercent) ? 1 : 0) \
             + (has(self.kafkaConsumerLag) ? 1 : 0) == 1",
    "message": "autoscaling.metric must set exactly one of cpuUtilizationPercent, \
                memoryUtilizationPercent or kafkaConsumerLag",
}]))]
pub enum ScalingMetric {
    /// Target average CPU use of the role's pods, in percent of their CPU request
    /// (1 or more; above 100 lets pods burst past their request before scaling out).
    CpuUtilizationPercent(#[schemars(range(min = 1))] i32),
    /// Target average memory use of the role's pods, in percent of their memory request
    /// (1 or more).
    MemoryUtilizationPercent(#[schemars(range(min = 1))] i32),
    /// Processor only: target number of Kafka messages not yet consumed, per processor pod,
    /// summed over the topic's partitions (1 or more). Scales on how far the processors are
    /// behind ingest rather than on how busy they are.
    KafkaConsumerLag(#[schemars(range(min = 1))] i64),
}

/// Observed pods of one role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// Pods the role should run now (what autoscaling or `replicas` asks for).
    #[serde(default)]
    pub replicas: i32,
    /// Pods of the role that pass their readiness probe.
    #[serde(default)]
    pub ready_replicas: i32,
}

fn default_min_replicas() -> i32 {
    1
}

fn default_metric() -> ScalingMetric {
    ScalingMetric::CpuUtilizationPercent(80)
}

/// CEL rule on the role `role` (self is the role's object): the range is not empty.
pub(super) fn min_le_max_rule(role: &str) -> Rule {
    crate::rule(
        "!has(self.autoscaling) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
        format!("spec.{role}.autoscaling.minReplicas must be <= maxReplicas"),
    )
}

/// CEL rule on the role `role`: a starting count given with autoscaling lies in its range.
pub(super) fn replicas_in_range_rule(role: &str) -> Rule {
    crate::rule(
        "!has(self.autoscaling) || !has(self.replicas) || \
         (self.replicas >= self.autoscaling.minReplicas && self.replicas <= self.autoscaling.maxReplicas)",
        format!("spec.{role}.replicas must be within autoscaling.minReplicas..maxReplicas"),
    )
}

/// CEL rule keeping Kafka lag, which only processors have, off the role `role`.
pub(super) fn no_kafka_lag_rule(role: &str) -> Rule {
    crate::rule(
        "!has(self.autoscaling) || !has(self.autoscaling.metric.kafkaConsumerLag)",
        format!(
            "spec.{role}.autoscaling.metric.kafkaConsumerLag is only for spec.processor; \
             scale {role} on cpuUtilizationPercent or memoryUtilizationPercent"
        ),
    )
}
