//! The status a LogStream reports, computed from what its workloads report. Pure: the reconciler
//! reads the StatefulSets and the DaemonSet, this turns them into conditions.

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use logstream_crds::conditions::{DEGRADED, PROGRESSING, READY, reasons, status};
use logstream_crds::logstream::{LogStreamStatus, RoleStatus};

use crate::names::Component;

/// How far one workload is: pods wanted, pods ready, and whether the controller behind it has
/// caught up with its latest spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkloadState {
    pub desired: i32,
    pub ready: i32,
    /// Pods running the latest template.
    pub updated: i32,
    /// The workload controller has seen the latest spec of the workload.
    pub observed: bool,
}

impl WorkloadState {
    pub fn of_stateful_set(sts: &StatefulSet) -> Self {
        let generation = sts.metadata.generation.unwrap_or(0);
        let status = sts.status.clone().unwrap_or_default();
        let desired = sts
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(status.replicas);
        let same_revision = status.update_revision.is_none()
            || status.current_revision.is_none()
            || status.update_revision == status.current_revision;
        Self {
            desired,
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            observed: status.observed_generation.unwrap_or(0) >= generation
                && (same_revision || status.updated_replicas.unwrap_or(0) >= desired),
        }
    }

    pub fn of_daemon_set(ds: &DaemonSet) -> Self {
        let generation = ds.metadata.generation.unwrap_or(0);
        let status = ds.status.clone().unwrap_or_default();
        Self {
            desired: status.desired_number_scheduled,
            ready: status.number_available.unwrap_or(0),
            updated: status.updated_number_scheduled.unwrap_or(0),
            observed: status.observed_generation.unwrap_or(0) >= generation,
        }
    }

    fn rolling(&self) -> bool {
        !self.observed || self.updated < self.desired
    }

    fn short(&self) -> bool {
        self.ready < self.desired
    }
}

/// What the reconciler found.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub generation: i64,
    /// Each workload with its state; `None` for one that does not exist (yet).
    pub workloads: Vec<(Component, Option<WorkloadState>)>,
    /// Why the spec cannot be applied as it stands (reason, message), if it cannot.
    pub problem: Option<(&'static str, String)>,
}

/// The status for `observed`, keeping the transition times of conditions that did not change.
pub fn compute(
    observed: &Observed,
    previous: Option<&LogStreamStatus>,
    now: Time,
) -> LogStreamStatus {
    let generation = observed.generation;
    let role_status = |component: Component| {
        let state = observed
            .workloads
            .iter()
            .find(|(c, _)| *c == component || *c == Component::Standalone)
            .and_then(|(_, s)| *s)
            .unwrap_or_default();
        RoleStatus {
            replicas: state.desired,
            ready_replicas: state.ready,
        }
    };
    let (ready, progressing, degraded) = match &observed.problem {
        Some((reason, message)) => (
            (status::FALSE, *reason, message.clone()),
            (
                status::FALSE,
                *reason,
                "nothing is rolled out until the problem is fixed".to_owned(),
            ),
            (status::TRUE, *reason, message.clone()),
        ),
        None => workload_conditions(observed),
    };
    let previous_conditions = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let conditions = conditions(
        previous_conditions,
        generation,
        &now,
        [ready, progressing, degraded],
    );
    LogStreamStatus {
        observed_generation: Some(generation),
        conditions,
        ingest: role_status(Component::Ingest),
        processor: role_status(Component::Processor),
        query: role_status(Component::Query),
    }
}

/// Status, reason and message of one condition.
pub type ConditionParts = (&'static str, &'static str, String);

/// The `Ready`, `Progressing` and `Degraded` conditions from their parts, each keeping the
/// transition time it had in `previous` when its status did not change.
pub fn conditions(
    previous: &[Condition],
    generation: i64,
    now: &Time,
    [ready, progressing, degraded]: [ConditionParts; 3],
) -> Vec<Condition> {
    let condition = |type_: &str, (st, reason, message): ConditionParts| {
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == st)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_owned(),
            status: st.to_owned(),
            reason: reason.to_owned(),
            message,
            last_transition_time,
            observed_generation: Some(generation),
        }
    };
    vec![
        condition(READY, ready),
        condition(PROGRESSING, progressing),
        condition(DEGRADED, degraded),
    ]
}

fn workload_conditions(observed: &Observed) -> (ConditionParts, ConditionParts, ConditionParts) {
    let mut summary = Vec::new();
    let mut missing = Vec::new();
    let mut short = Vec::new();
    let mut rolling = Vec::new();
    for (component, state) in &observed.workloads {
        let name = component.as_str();
        match state {
            None => missing.push(name),
            Some(s) => {
                summary.push(format!("{name} {}/{}", s.ready, s.desired));
                if s.short() {
                    short.push(format!("{name} {}/{}", s.ready, s.desired));
                }
                if s.rolling() {
                    rolling.push(format!("{name} {}/{} updated", s.updated, s.desired));
                }
            }
        }
    }
    let ready = if !missing.is_empty() {
        (
            status::FALSE,
            reasons::ROLLING_OUT,
            format!("creating {}", missing.join(", ")),
        )
    } else if !short.is_empty() {
        (
            status::FALSE,
            reasons::REPLICAS_UNAVAILABLE,
            format!(
                "pods not ready: {} (kubectl get pods -l app.kubernetes.io/instance=<name> shows why)",
                short.join(", ")
            ),
        )
    } else {
        (
            status::TRUE,
            reasons::RECONCILED,
            format!("all pods ready: {}", summary.join(", ")),
        )
    };
    let progressing = if missing.is_empty() && rolling.is_empty() && short.is_empty() {
        (
            status::FALSE,
            reasons::RECONCILED,
            format!("generation {} is rolled out", observed.generation),
        )
    } else {
        let mut what: Vec<String> = missing.iter().map(|m| format!("creating {m}")).collect();
        what.extend(rolling);
        what.extend(short.iter().map(|s| format!("{s} ready")));
        (
            status::TRUE,
            reasons::ROLLING_OUT,
            format!(
                "rolling out generation {}: {}",
                observed.generation,
                what.join(", ")
            ),
        )
    };
    let degraded = (status::FALSE, reasons::RECONCILED, String::new());
    (ready, progressing, degraded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstream_crds::conditions::find;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn state(desired: i32, ready: i32) -> Option<WorkloadState> {
        Some(WorkloadState {
            desired,
            ready,
            updated: desired,
            observed: true,
        })
    }

    fn observed(workloads: Vec<(Component, Option<WorkloadState>)>) -> Observed {
        Observed {
            generation: 3,
            workloads,
            problem: None,
        }
    }

    #[test]
    fn every_pod_ready_is_ready_and_not_progressing() {
        let o = observed(vec![
            (Component::Ingest, state(2, 2)),
            (Component::Processor, state(3, 3)),
            (Component::Query, state(1, 1)),
            (Component::Agent, state(4, 4)),
        ]);
        let s = compute(&o, None, at(10));
        assert_eq!(s.observed_generation, Some(3));
        let ready = find(&s.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Reconciled")
        );
        assert_eq!(
            ready.message,
            "all pods ready: ingest 2/2, processor 3/3, query 1/1, agent 4/4"
        );
        assert_eq!(find(&s.conditions, PROGRESSING).unwrap().status, "False");
        assert_eq!(find(&s.conditions, DEGRADED).unwrap().status, "False");
        assert_eq!(
            s.processor,
            RoleStatus {
                replicas: 3,
                ready_replicas: 3
            }
        );
    }

    #[test]
    fn missing_pods_are_named_and_progressing() {
        let o = observed(vec![
            (Component::Ingest, state(2, 2)),
            (Component::Processor, state(3, 1)),
            (Component::Query, None),
        ]);
        let s = compute(&o, None, at(10));
        let ready = find(&s.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "RollingOut")
        );
        assert_eq!(ready.message, "creating query");
        let progressing = find(&s.conditions, PROGRESSING).unwrap();
        assert_eq!(progressing.status, "True");
        assert_eq!(
            progressing.message,
            "rolling out generation 3: creating query, processor 1/3 ready"
        );
        let o = observed(vec![(Component::Processor, state(3, 1))]);
        let ready = compute(&o, None, at(10)).conditions.remove(0);
        assert_eq!(ready.reason, "ReplicasUnavailable");
        assert!(
            ready.message.starts_with("pods not ready: processor 1/3"),
            "{}",
            ready.message
        );
    }

    #[test]
    fn a_problem_is_degraded_with_its_reason() {
        let o = Observed {
            generation: 2,
            workloads: vec![],
            problem: Some(("SecretNotFound", "secret s3 is missing".into())),
        };
        let s = compute(&o, None, at(10));
        let degraded = find(&s.conditions, DEGRADED).unwrap();
        assert_eq!(
            (
                degraded.status.as_str(),
                degraded.reason.as_str(),
                degraded.message.as_str()
            ),
            ("True", "SecretNotFound", "secret s3 is missing")
        );
        assert_eq!(find(&s.conditions, READY).unwrap().status, "False");
    }

    #[test]
    fn transition_times_move_only_when_the_status_does() {
        let o = observed(vec![(Component::Standalone, state(1, 0))]);
        let first = compute(&o, None, at(10));
        let again = compute(&o, Some(&first), at(20));
        assert_eq!(
            again, first,
            "same observation, same status: no write, no reconcile loop"
        );
        let o = observed(vec![(Component::Standalone, state(1, 1))]);
        let later = compute(&o, Some(&again), at(30));
        let ready = find(&later.conditions, READY).unwrap();
        assert_eq!(ready.last_transition_time, at(30));
        assert_eq!(
            find(&later.conditions, DEGRADED)
                .unwrap()
                .last_transition_time,
            at(10)
        );
        // The embedded pod stands for every role.
        assert_eq!(
            later.query,
            RoleStatus {
                replicas: 1,
                ready_replicas: 1
            }
        );
    }
}
