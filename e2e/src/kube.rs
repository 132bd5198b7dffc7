//! The Kubernetes part: a `kube::Client` for the loopback API server, fresh namespaces per test,
//! and waits on the state kwok's fake nodes report (pods Running and Ready, PVCs Bound).

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::env::{self, E2eEnv, Part};
use crate::{Error, Result, unique_name, wait_until};

/// Context name `./e2e/env up` writes; any other cluster is refused (see [`TestCluster::connect`]).
pub const CONTEXT: &str = "logstream-e2e";
/// Label put on every namespace made by [`TestCluster::fresh_namespace`].
pub const NAMESPACE_LABEL: &str = "logstream.dev/e2e";

/// A connection to the test cluster.
#[derive(Clone)]
pub struct TestCluster {
    client: Client,
    kubeconfig: PathBuf,
    kubectl: Option<PathBuf>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl TestCluster {
    /// Connect to the cluster of `target/e2e/env` and check that it answers. `None` (skip) or a
    /// panic under `REQUIRE_E2E=1` when it is missing. Only the context `logstream-e2e` is
    /// accepted, so tests never touch another cluster a `KUBECONFIG` happens to name; set
    /// `LOGSTREAM_E2E_ANY_CLUSTER=1` to lift that guard deliberately.
    pub async fn connect() -> Option<Self> {
        match Self::try_connect().await {
            Ok(cluster) => Some(cluster),
            Err(why) => env::unavailable(Part::Kubernetes, &why),
        }
    }

    async fn try_connect() -> std::result::Result<Self, String> {
        let env = E2eEnv::load().map_err(|e| crate::error::chain(&e))?;
        let kubeconfig = PathBuf::from(env.require("KUBECONFIG")?);
        let client = client_from(&kubeconfig)
            .await
            .map_err(|e| crate::error::chain(&e))?;
        let version = tokio::time::timeout(Duration::from_secs(10), client.apiserver_version())
            .await
            .map_err(|_| "the API server did not answer within 10s".to_owned())?
            .map_err(|e| format!("the API server did not answer: {e}"))?;
        tracing::debug!(version = %version.git_version, "connected to test cluster");
        Ok(Self {
            client,
            kubeconfig,
            kubectl: env.get("KUBECTL").map(PathBuf::from),
        })
    }

    /// The client, authenticated as a cluster admin.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Path of the kubeconfig (for kubectl, helm or a process under test).
    pub fn kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// Path of a kubectl of the server's version, if the env names one.
    pub fn kubectl(&self) -> Option<&std::path::Path> {
        self.kubectl.as_deref()
    }

    /// Create a uniquely named namespace and wait until pods can be created in it (its
    /// `default` ServiceAccount exists, made asynchronously by kube-controller-manager).
    pub async fn fresh_namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let name = unique_name(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|source| Error::KubeApi {
                op: format!("create namespace {name}"),
                source,
            })?;
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &name);
        wait_until(
            &format!("serviceaccount default in {name}"),
            Duration::from_secs(60),
            || async {
                kube_op(
                    "get serviceaccount default",
                    accounts.get_opt("default").await,
                )
                .map(|sa| sa.map(|_| ()))
            },
        )
        .await?;
        Ok(TestNamespace {
            name,
            client: self.client.clone(),
        })
    }
}

impl TestCluster {
    /// Server-side apply `crds` and wait until each is Established with its names accepted.
    /// Idempotent, so every test may call it.
    pub async fn install_crds(&self, crds: Vec<CustomResourceDefinition>) -> Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            kube_op(
                "apply crd",
                api.patch(
                    &name,
                    &PatchParams::apply("logstream-e2e").force(),
                    &Patch::Apply(&crd),
                )
                .await,
            )?;
            wait_until(
                &format!("CRD {name} established"),
                Duration::from_secs(30),
                || async {
                    let crd = kube_op("get crd", api.get(&name).await)?;
                    let conds = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                    let holds = |t: &str| conds.iter().any(|c| c.type_ == t && c.status == "True");
                    Ok((holds("Established") && holds("NamesAccepted")).then_some(()))
                },
            )
            .await?;
        }
        Ok(())
    }
}

/// Build a client from a kubeconfig file, honouring its CA data and bearer token.
pub async fn client_from(kubeconfig: &std::path::Path) -> Result<Client> {
    let path = kubeconfig.display().to_string();
    let loaded = Kubeconfig::read_from(kubeconfig).map_err(|source| Error::LoadKubeconfig {
        path: path.clone(),
        source,
    })?;
    let any_cluster = std::env::var("LOGSTREAM_E2E_ANY_CLUSTER").is_ok_and(|v| v == "1");
    if !any_cluster && loaded.current_context.as_deref() != Some(CONTEXT) {
        return Err(Error::ForeignCluster {
            path,
            context: CONTEXT,
        });
    }
    let config = Config::from_custom_kubeconfig(loaded, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::LoadKubeconfig { path, source })?;
    Client::try_from(config).map_err(Error::KubeClient)
}

/// A namespace owned by one test. It is left in place when the test fails (for inspection);
/// call [`TestNamespace::delete`] at the end of a passing test.
#[derive(Clone)]
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An `Api` for a namespaced kind in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Wait until `count` pods matching `selector` are Running with condition Ready=True.
    pub async fn wait_pods_ready(
        &self,
        selector: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Pod>> {
        let pods: Api<Pod> = self.api();
        let what = format!("{count} ready pods with {selector} in {}", self.name);
        wait_until(&what, timeout, || async {
            let list = kube_op(
                "list pods",
                pods.list(&ListParams::default().labels(selector)).await,
            )?;
            let ready: Vec<Pod> = list
                .items
                .into_iter()
                .filter(is_running_and_ready)
                .collect();
            Ok((ready.len() >= count).then_some(ready))
        })
        .await
    }

    /// Wait until the named PVC is Bound.
    pub async fn wait_pvc_bound(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<PersistentVolumeClaim> {
        let claims: Api<PersistentVolumeClaim> = self.api();
        wait_until(
            &format!("pvc {name} bound in {}", self.name),
            timeout,
            || async {
                let pvc = kube_op("get pvc", claims.get_opt(name).await)?;
                Ok(pvc.filter(|p| {
                    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
                }))
            },
        )
        .await
    }

    /// Delete the namespace (returns once deletion is accepted, not finished).
    pub async fn delete(self) -> Result<()> {
        kube_op(
            "delete namespace",
            Api::<Namespace>::all(self.client)
                .delete(&self.name, &DeleteParams::default())
                .await,
        )
        .map(|_| ())
    }
}

/// Phase Running and condition Ready=True, as kwok reports for a pod on a fake node.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    status.phase.as_deref() == Some("Running") && ready
}

fn kube_op<T>(op: &str, result: kube::Result<T>) -> Result<T> {
    result.map_err(|source| Error::KubeApi {
        op: op.to_owned(),
        source,
    })
}
