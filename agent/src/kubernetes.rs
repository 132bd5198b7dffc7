//! In a cluster: which files to ship, for which tenant, with which labels.
//!
//! The agent watches the pods of its own node (field selector `spec.nodeName`) into a cache
//! (kube-runtime's reflector), so a file's pod is looked up in memory and the cache keeps
//! serving while the API server is briefly away (the watch retries with backoff). A file is
//! shipped when its pod is in the cache with the same uid, does not opt out with the annotation
//! `logstream.dev/exclude: "true"`, and a LogPipeline of its namespace selects it. The tenant
//! is the namespace (a LogPipeline only ever selects pods of its own namespace). The operator
//! renders the valid LogPipelines into the agent's configuration, so they change with a
//! rollout of the DaemonSet, not through a watch.

use crate::discover::PodFile;
use crate::format::MultilineConfig;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeMap;

/// Pods carrying this annotation with the value `"true"` are never shipped.
pub const EXCLUDE_ANNOTATION: &str = "logstream.dev/exclude";

/// One LogPipeline as the agent applies it.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub namespace: String,
    pub name: String,
    pub selector: Selector,
    /// Static labels added to every stream it selects.
    pub labels: BTreeMap<String, String>,
    /// How lines of the files it selects are joined into events.
    pub multiline: Option<MultilineRule>,
}

/// A pipeline's multiline settings; equal when their settings are (for comparing decisions).
#[derive(Debug, Clone)]
pub struct MultilineRule(pub MultilineConfig);

impl PartialEq for MultilineRule {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.first_line.as_str() == b.first_line.as_str()
            && a.max_bytes == b.max_bytes
            && a.max_lines == b.max_lines
            && a.timeout == b.timeout
    }
}

impl Eq for MultilineRule {}

impl Pipeline {
    /// From a LogPipeline's namespace, name, selector and labels; fails on a selector the API
    /// server would refuse (the operator only renders valid ones).
    pub fn new(
        namespace: &str,
        name: &str,
        selector: LabelSelector,
        labels: BTreeMap<String, String>,
        multiline: Option<MultilineConfig>,
    ) -> Result<Self, String> {
        let selector = Selector::try_from(selector)
            .map_err(|e| format!("LogPipeline {namespace}/{name}: invalid selector: {e}"))?;
        Ok(Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            selector,
            labels,
            multiline: multiline.map(MultilineRule),
        })
    }
}

/// What to do with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Ship it as `tenant` with these labels (besides `stream`).
    Ship {
        tenant: String,
        labels: Vec<(String, String)>,
        multiline: Option<MultilineRule>,
    },
    /// Not for us: no LogPipeline selects its pod, or the pod opted out.
    Skip,
    /// Its pod is not (yet) in the cache: decide again at the next scan.
    Unknown,
}

/// The stream label naming the LogPipeline that selected the pod.
pub const PIPELINE_LABEL: &str = "logpipeline";

/// The decision for `file` of `pod` (the cached pod of the file's namespace and name, if any).
pub fn decide(file: &PodFile, pod: Option<&Pod>, pipelines: &[Pipeline], node: &str) -> Decision {
    let Some(pod) = pod else {
        return Decision::Unknown;
    };
    // A pod of the same name recreated: its files carry the new uid, old files the old one.
    if pod.metadata.uid.as_deref() != Some(file.uid.as_str()) {
        return Decision::Unknown;
    }
    let empty = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    if annotations.get(EXCLUDE_ANNOTATION).map(String::as_str) == Some("true") {
        return Decision::Skip;
    }
    let pod_labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    // Several pipelines may select a pod: the first by name decides, so the choice is stable.
    let Some(pipeline) = pipelines
        .iter()
        .filter(|p| p.namespace == file.namespace && p.selector.matches(pod_labels))
        .min_by(|a, b| a.name.cmp(&b.name))
    else {
        return Decision::Skip;
    };
    let mut labels: BTreeMap<String, String> = pipeline.labels.clone();
    if let Some(app) = pod_labels
        .get("app.kubernetes.io/name")
        .or_else(|| pod_labels.get("app"))
    {
        labels.insert("app".into(), app.clone());
    }
    // The identity labels win over a pipeline's static label of the same name.
    labels.insert("namespace".into(), file.namespace.clone());
    labels.insert("pod".into(), file.pod.clone());
    labels.insert("container".into(), file.container.clone());
    labels.insert("node".into(), node.to_string());
    // Tells the processors which pipeline's rules apply to the stream.
    labels.insert(PIPELINE_LABEL.into(), pipeline.name.clone());
    labels.remove("stream");
    Decision::Ship {
        tenant: file.namespace.clone(),
        labels: labels.into_iter().collect(),
        multiline: pipeline.multiline.clone(),
    }
}

/// A cache of this node's pods, kept current by a watch.
#[derive(Debug, Clone)]
pub struct PodCache {
    store: Store<Pod>,
}

impl PodCache {
    /// Starts watching the pods of `node`. The returned future drives the watch and must be
    /// spawned; it retries with backoff for as long as it runs.
    pub fn watch(
        client: kube::Client,
        node: &str,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        use futures::StreamExt;
        let api: kube::Api<Pod> = kube::Api::all(client);
        let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let (store, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api, config))
            .default_backoff()
            .touched_objects();
        let drive = async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    tracing::warn!(error = %e, "pod watch failed; retrying (the cache keeps serving)");
                }
            }
        };
        (Self { store }, drive)
    }

    /// Waits until the first list is in.
    pub async fn ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<Pod>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};
    use std::path::Path;

    fn file(ns: &str, pod: &str, uid: &str) -> PodFile {
        let root = Path::new("/var/log/pods");
        PodFile::parse(root, &root.join(format!("{ns}_{pod}_{uid}/app/0.log"))).unwrap()
    }

    fn pod(ns: &str, name: &str, uid: &str, labels: &[(&str, &str)], exclude: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                uid: Some(uid.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                annotations: exclude.then(|| {
                    BTreeMap::from([(EXCLUDE_ANNOTATION.to_string(), "true".to_string())])
                }),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn pipeline(ns: &str, name: &str, app_in: &[&str], labels: &[(&str, &str)]) -> Pipeline {
        let selector = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "In".into(),
                values: Some(app_in.iter().map(|s| s.to_string()).collect()),
            }]),
            ..LabelSelector::default()
        };
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Pipeline::new(ns, name, selector, labels, None).unwrap()
    }

    #[test]
    fn selected_pods_ship_to_their_namespace_with_pipeline_and_app_labels() {
        let pipelines = [
            pipeline(
                "shop",
                "web",
                &["api", "web"],
                &[("team", "checkout"), ("pod", "x")],
            ),
            pipeline("shop", "all-api", &["api"], &[("team", "other")]),
            pipeline("bank", "api", &["api"], &[]),
        ];
        let p = pod("shop", "api-1", "u1", &[("app", "api")], false);
        let got = decide(&file("shop", "api-1", "u1"), Some(&p), &pipelines, "node-a");
        assert_eq!(
            got,
            Decision::Ship {
                tenant: "shop".into(),
                labels: vec![
                    ("app".into(), "api".into()),
                    ("container".into(), "app".into()),
                    ("logpipeline".into(), "all-api".into()),
                    ("namespace".into(), "shop".into()),
                    ("node".into(), "node-a".into()),
                    ("pod".into(), "api-1".into()),
                    ("team".into(), "other".into()),
                ],
                multiline: None,
            },
            "the first pipeline by name (all-api) decides; identity labels win"
        );
        // Not selected by any pipeline of its namespace (bank's pipeline does not count).
        let p = pod("shop", "db-0", "u2", &[("app", "db")], false);
        assert_eq!(
            decide(&file("shop", "db-0", "u2"), Some(&p), &pipelines, "n"),
            Decision::Skip
        );
        // Opted out.
        let p = pod("shop", "api-2", "u3", &[("app", "api")], true);
        assert_eq!(
            decide(&file("shop", "api-2", "u3"), Some(&p), &pipelines, "n"),
            Decision::Skip
        );
        // Not cached yet, or the cached pod is a newer one of the same name.
        assert_eq!(
            decide(&file("shop", "api-1", "u1"), None, &pipelines, "n"),
            Decision::Unknown
        );
        let p = pod("shop", "api-1", "u9", &[("app", "api")], false);
        assert_eq!(
            decide(&file("shop", "api-1", "u1"), Some(&p), &pipelines, "n"),
            Decision::Unknown
        );
    }

    #[test]
    fn an_invalid_selector_is_refused_with_the_pipeline_named() {
        let selector = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "Sometimes".into(),
                values: None,
            }]),
            ..LabelSelector::default()
        };
        let e = Pipeline::new("shop", "web", selector, BTreeMap::new(), None).unwrap_err();
        assert!(
            e.starts_with("LogPipeline shop/web: invalid selector"),
            "{e}"
        );
    }
}
