//! The node agent: a DaemonSet that tails the pod logs kubelet writes on each node and pushes
//! the lines LogPipelines select to ingest.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Where and how the agent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Run the agent DaemonSet. `false` when logs arrive only through the push API (or another
    /// shipper); LogPipelines then collect nothing. Default `true`.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Run the agent only on nodes with these labels, as a pod's `nodeSelector`. Default:
    /// every node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the agent tolerates, as a pod's `tolerations`: add the control plane's or
    /// dedicated nodes' taints to collect their logs too. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Directory on each node where kubelet writes pod logs, mounted read-only into the agent.
    /// An absolute path. Default `/var/log/pods`.
    #[serde(default = "default_host_log_path")]
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = ("self.startsWith('/')", "spec.agent.hostLogPath must be an absolute path"))]
    pub host_log_path: String,
    /// CPU and memory requests and limits of each agent pod. Unset: the operator's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            enabled: enabled_by_default(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            host_log_path: default_host_log_path(),
            resources: None,
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

fn default_host_log_path() -> String {
    "/var/log/pods".to_owned()
}
