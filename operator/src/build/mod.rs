//! Desired state: pure functions from a LogStream (and its valid LogPipelines) to the
//! Kubernetes objects that run it. No API calls here, so every choice is unit-tested.
//!
//! A Kafka-bus install is three StatefulSets (ingest, processor, query), each with its
//! ConfigMap, a client and a headless Service, a PodDisruptionBudget and, when autoscaled, a
//! HorizontalPodAutoscaler. An embedded-bus install is one StatefulSet running `logstream
//! standalone` with its write-ahead log on a volume claim, reachable through the same `-ingest`
//! and `-query` Services. Either way the agent DaemonSet, its ServiceAccount and its
//! ClusterRole and binding come on top when the agent is enabled.

pub mod config;
mod scaling;
mod services;
mod workloads;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use logstream_crds::LogStream;
use logstream_crds::logstream::Bus;

pub use config::PipelineEntry;

use crate::names::{Component, LABEL_OWNER_NAMESPACE, Names};

/// Every object a LogStream should have, grouped by kind.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub config_maps: Vec<ConfigMap>,
    pub services: Vec<Service>,
    pub service_accounts: Vec<ServiceAccount>,
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub stateful_sets: Vec<StatefulSet>,
    pub daemon_sets: Vec<DaemonSet>,
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    pub disruption_budgets: Vec<PodDisruptionBudget>,
}

/// Something in the spec the builders cannot turn into objects. The API server's schema
/// refuses these, so meeting one means a client bypassed it (or an older schema).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// What the builders need besides the LogStream.
#[derive(Debug, Clone)]
pub struct BuildInput<'a> {
    pub ls: &'a LogStream,
    /// Valid LogPipelines naming this LogStream, sorted by namespace and name.
    pub pipelines: &'a [PipelineEntry],
    /// Image used when the LogStream sets none: the operator's own.
    pub default_image: &'a str,
}

/// The objects `input.ls` should have.
pub fn desired(input: &BuildInput<'_>) -> Result<Desired, BuildError> {
    let ls = input.ls;
    let names = Names::of(ls);
    let owner = ls
        .controller_owner_ref(&())
        .ok_or_else(|| BuildError("the LogStream has no uid yet".into()))?;
    let ctx = Ctx {
        names: &names,
        owner: &owner,
        ls,
        image: ls.spec.image.as_deref().unwrap_or(input.default_image),
    };
    let mut out = Desired::default();
    let err = |component: Component| {
        move |e: toml::ser::Error| {
            BuildError(format!("render the {} config: {e}", component.as_str()))
        }
    };
    // The config file, and what of it restarts the pods when it changes.
    let render = |component| -> Result<(String, String), BuildError> {
        let text =
            config::render(&names, &ls.spec, input.pipelines, component).map_err(err(component))?;
        let basis = config::restart_basis(&names, &ls.spec, input.pipelines, component)
            .map_err(err(component))?;
        Ok((text, basis))
    };
    match ls.spec.bus.selected() {
        Some(Bus::Kafka(_)) => {
            for component in Component::ROLES {
                let role = role_spec(ls, component);
                let (rendered, basis) = render(component)?;
                out.config_maps.push(ctx.config_map(component, &rendered));
                out.services
                    .push(services::client(&ctx, component, component));
                out.services.push(services::headless(&ctx, component));
                out.stateful_sets
                    .push(workloads::role(&ctx, component, role, &basis));
                out.disruption_budgets
                    .push(scaling::disruption_budget(&ctx, component));
                if let Some(autoscaling) = &role.autoscaling {
                    out.autoscalers
                        .push(scaling::autoscaler(&ctx, component, autoscaling));
                }
            }
        }
        Some(Bus::Embedded(embedded)) => {
            let (rendered, basis) = render(Component::Standalone)?;
            out.config_maps
                .push(ctx.config_map(Component::Standalone, &rendered));
            // Clients address ingest and query the same way whichever bus is used.
            for alias in [Component::Ingest, Component::Query] {
                out.services
                    .push(services::client(&ctx, alias, Component::Standalone));
            }
            out.services
                .push(services::headless(&ctx, Component::Standalone));
            out.stateful_sets
                .push(workloads::standalone(&ctx, embedded, &basis));
        }
        None => {
            return Err(BuildError(
                "spec.bus must set exactly one of kafka or embedded".into(),
            ));
        }
    }
    if ls.spec.agent.enabled {
        let (rendered, basis) = render(Component::Agent)?;
        out.config_maps
            .push(ctx.config_map(Component::Agent, &rendered));
        out.service_accounts.push(workloads::agent_account(&ctx));
        out.cluster_roles.push(workloads::agent_cluster_role(&ctx));
        out.cluster_role_bindings
            .push(workloads::agent_cluster_role_binding(&ctx));
        out.daemon_sets.push(workloads::agent(&ctx, &basis));
    }
    Ok(out)
}

/// The role section of the spec for `component`.
fn role_spec(ls: &LogStream, component: Component) -> &logstream_crds::logstream::RoleSpec {
    match component {
        Component::Processor => &ls.spec.processor,
        Component::Query => &ls.spec.query,
        _ => &ls.spec.ingest,
    }
}

/// Shared by the builders of one LogStream.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub names: &'a Names,
    pub owner: &'a OwnerReference,
    pub ls: &'a LogStream,
    pub image: &'a str,
}

impl Ctx<'_> {
    /// Metadata of a namespaced object of `component` named `name`, owned by the LogStream.
    pub fn meta(&self, component: Component, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.names.namespace.clone()),
            labels: Some(self.names.labels(component)),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    /// Metadata of a cluster-scoped object: no owner (a namespaced owner would be invalid), a
    /// label naming the LogStream's namespace for the finalizer to find it by.
    pub fn cluster_meta(&self, component: Component, name: String) -> ObjectMeta {
        let mut labels = self.names.labels(component);
        labels.insert(
            LABEL_OWNER_NAMESPACE.to_owned(),
            self.names.namespace.clone(),
        );
        ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            ..ObjectMeta::default()
        }
    }

    fn config_map(&self, component: Component, rendered: &str) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(component, self.names.workload(component)),
            data: Some(BTreeMap::from([(
                crate::names::CONFIG_FILE.to_owned(),
                rendered.to_owned(),
            )])),
            ..ConfigMap::default()
        }
    }
}

/// Hash of what of a config the pods read only at start ([`config::restart_basis`]), as hex: a
/// pod-template annotation, so such a change rolls the pods.
pub(crate) fn config_hash(basis: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(basis.as_bytes()))
}

#[cfg(test)]
mod tests;
