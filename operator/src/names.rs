//! Names and labels of the objects a LogStream owns, in one place so the builders, the pruning
//! of objects no longer wanted and the status reader agree on them.

use std::collections::BTreeMap;

use kube::ResourceExt;
use logstream_crds::LogStream;

/// The field manager of every server-side apply the operator sends.
pub const FIELD_MANAGER: &str = "logstream-operator";
/// The finalizer that holds a LogStream until its topic and lifecycle rules are removed.
pub const FINALIZER: &str = "logstream.dev/cleanup";
/// Pod-template annotation carrying a hash of the rendered config: a config change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "logstream.dev/config-hash";
/// Where the rendered config is mounted in every pod.
pub const CONFIG_DIR: &str = "/etc/logstream";
/// File name of the rendered config inside its ConfigMap and mount.
pub const CONFIG_FILE: &str = "config.toml";

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Cluster-scoped objects (the agent's ClusterRole and binding) cannot be owned by a namespaced
/// LogStream, so they carry its namespace in this label and are deleted by the finalizer.
pub const LABEL_OWNER_NAMESPACE: &str = "logstream.dev/owner-namespace";

/// A workload of a LogStream: the three data-plane roles, the single pod of an embedded-bus
/// install that runs them all, and the node agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    Ingest,
    Processor,
    Query,
    /// `logstream standalone`: every role on the embedded write-ahead log.
    Standalone,
    Agent,
}

impl Component {
    /// The three roles of a Kafka-bus install.
    pub const ROLES: [Component; 3] = [Component::Ingest, Component::Processor, Component::Query];

    /// The component whose `as_str` (its `app.kubernetes.io/component` label) is `label`.
    pub fn from_label(label: &str) -> Option<Component> {
        [
            Component::Ingest,
            Component::Processor,
            Component::Query,
            Component::Standalone,
            Component::Agent,
        ]
        .into_iter()
        .find(|c| c.as_str() == label)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Ingest => "ingest",
            Component::Processor => "processor",
            Component::Query => "query",
            Component::Standalone => "standalone",
            Component::Agent => "agent",
        }
    }

    /// The port its HTTP server (API, /metrics, /healthz, /readyz) listens on: the defaults of
    /// logstream's config, so a rendered config need not set them.
    pub fn port(self) -> i32 {
        match self {
            Component::Ingest | Component::Standalone => 3100,
            Component::Processor => 3101,
            Component::Query => 3102,
            Component::Agent => 3103,
        }
    }
}

/// Names of one LogStream's objects.
#[derive(Debug, Clone)]
pub struct Names {
    pub instance: String,
    pub namespace: String,
}

impl Names {
    pub fn of(ls: &LogStream) -> Self {
        Self {
            instance: ls.name_any(),
            namespace: ls.namespace().unwrap_or_default(),
        }
    }

    /// StatefulSet, ConfigMap, client Service, HPA and PDB of `component`; the embedded install's
    /// single StatefulSet is named after the LogStream itself.
    pub fn workload(&self, component: Component) -> String {
        match component {
            Component::Standalone => self.instance.clone(),
            other => format!("{}-{}", self.instance, other.as_str()),
        }
    }

    /// The headless Service giving each pod of `component` a stable DNS name.
    pub fn headless(&self, component: Component) -> String {
        format!("{}-headless", self.workload(component))
    }

    /// The agent's ClusterRole and ClusterRoleBinding (cluster-wide, so the namespace is in it).
    pub fn agent_cluster_role(&self) -> String {
        format!("logstream-{}-{}-agent", self.namespace, self.instance)
    }

    /// The processors' Kafka consumer group: one per LogStream, so two installs on one Kafka
    /// cluster never share partitions.
    pub fn consumer_group(&self) -> String {
        format!("logstream-{}-{}", self.namespace, self.instance)
    }

    /// The in-cluster URL of the ingest API, which the agent pushes to.
    pub fn ingest_url(&self) -> String {
        format!(
            "http://{}.{}.svc:{}",
            self.workload(Component::Ingest),
            self.namespace,
            Component::Ingest.port()
        )
    }

    /// Labels selecting the pods of `component` (never change: a StatefulSet's selector is
    /// immutable).
    pub fn selector(&self, component: Component) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_NAME.to_owned(), "logstream".to_owned()),
            (LABEL_INSTANCE.to_owned(), self.instance.clone()),
            (LABEL_COMPONENT.to_owned(), component.as_str().to_owned()),
        ])
    }

    /// Labels of every object of `component`: the selector and who manages it.
    pub fn labels(&self, component: Component) -> BTreeMap<String, String> {
        let mut labels = self.selector(component);
        labels.insert(LABEL_MANAGED_BY.to_owned(), FIELD_MANAGER.to_owned());
        labels
    }

    /// Label selector (as a string) matching every namespaced object this LogStream owns.
    pub fn owned_selector(&self) -> String {
        format!(
            "{LABEL_NAME}=logstream,{LABEL_INSTANCE}={},{LABEL_MANAGED_BY}={FIELD_MANAGER}",
            self.instance
        )
    }

    /// Label selector matching this LogStream's cluster-scoped objects.
    pub fn cluster_scoped_selector(&self) -> String {
        format!(
            "{},{LABEL_OWNER_NAMESPACE}={}",
            self.owned_selector(),
            self.namespace
        )
    }
}
