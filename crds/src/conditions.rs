//! The condition types and reasons the operator writes to `status.conditions` of both
//! resources, so the operator, tests and anyone reading them share one spelling.
//!
//! Each resource carries one condition of each type. `Ready` answers "does it work now",
//! `Progressing` "is a change being rolled out", `Degraded` "is something wrong that needs a
//! person" (a spec the operator cannot apply, pods that do not come up).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Condition type: the resource does what its spec asks (every role's pods available; for a
/// LogPipeline, the agent collects with its current spec).
pub const READY: &str = "Ready";
/// Condition type: the operator is rolling out a change (status `True` until pods of the
/// new generation are available).
pub const PROGRESSING: &str = "Progressing";
/// Condition type: something needs attention; the reason says what.
pub const DEGRADED: &str = "Degraded";

/// Every condition type, in the order the operator writes them.
pub const TYPES: [&str; 3] = [READY, PROGRESSING, DEGRADED];

/// Condition status values (`metav1.ConditionStatus`).
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// The operator cannot tell (yet).
    pub const UNKNOWN: &str = "Unknown";
}

/// Condition reasons: CamelCase words saying why a condition has its status.
pub mod reasons {
    /// Everything the spec asks for exists and is available.
    pub const RECONCILED: &str = "Reconciled";
    /// Workloads are being created or updated to the current generation.
    pub const ROLLING_OUT: &str = "RollingOut";
    /// A role (or the agent) has fewer available pods than it should.
    pub const REPLICAS_UNAVAILABLE: &str = "ReplicasUnavailable";
    /// The spec passed the API server's checks but not the operator's (e.g. a regex that does
    /// not compile); the message says which field. Nothing changes until the spec does.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Applying a child object failed at the API server; retried with backoff.
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// LogStream: `spec.storage.credentialsSecretRef` names a Secret that does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// LogStream: the Kafka topic could not be created or checked; retried with backoff.
    pub const BUS_UNAVAILABLE: &str = "BusUnavailable";
    /// LogStream: the bucket's lifecycle rules (retention) could not be applied; retried.
    pub const STORAGE_UNAVAILABLE: &str = "StorageUnavailable";
    /// LogPipeline: the LogStream it names does not exist.
    pub const LOG_STREAM_NOT_FOUND: &str = "LogStreamNotFound";
    /// LogPipeline: the LogStream it names exists but is not ready.
    pub const LOG_STREAM_NOT_READY: &str = "LogStreamNotReady";
    /// LogPipeline: `spec.retention.days` is above the LogStream's `spec.retention.maximumDays`.
    pub const RETENTION_ABOVE_MAXIMUM: &str = "RetentionAboveMaximum";
}

/// The condition of type `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of type `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == status::TRUE)
}

#[cfg(test)]
mod tests {
    use super::{DEGRADED, READY, find, is_true, status};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "Test".into(),
            message: String::new(),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    #[test]
    fn is_true_needs_the_type_present_with_status_true() {
        let conditions = [
            condition(READY, status::TRUE),
            condition(DEGRADED, status::FALSE),
        ];
        assert!(is_true(&conditions, READY));
        assert!(!is_true(&conditions, DEGRADED));
        assert!(!is_true(&conditions, "Progressing"));
        assert_eq!(
            find(&conditions, DEGRADED).map(|c| c.status.as_str()),
            Some("False")
        );
    }
}
