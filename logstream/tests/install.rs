//! Installing LogStream the way a cluster admin does, checked on the real parts of
//! `./e2e/env` (helm, kubernetes-validate, kubectl and the API server with kwok nodes):
//!
//! - the chart lints strictly and renders, with default values and with every option on,
//!   manifests that validate offline against the Kubernetes 1.34 schemas;
//! - the chart's CRDs are the generated ones, and `manifests/` is what the chart renders;
//! - the examples (and the chart's optional LogStream) pass the API server's dry run;
//! - `helm install` gives the operator Deployment the values asked for; the operator, run as a
//!   local process under a token of the chart's ServiceAccount, brings a LogStream and two
//!   tenants' LogPipelines to Ready and deletes the LogStream again without a request refused
//!   (so the chart's RBAC is enough); `helm uninstall` removes the chart's objects, not the CRDs;
//! - `kubectl kustomize manifests/` gives the same objects, and an overlay installs them under
//!   another namespace and name prefix.
//!
//! Without a part a test skips, or fails under `REQUIRE_E2E=1`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Resource};
use logstream_crds::conditions::{self, READY};
use logstream_crds::{LogPipeline, LogStream};
use logstream_e2e::env::{Part, unavailable};
use logstream_e2e::kube::{TestCluster, TestNamespace};
use logstream_e2e::tools::Tools;
use logstream_e2e::unique_name;
use serde_json::{Value, json};

/// The schemas the rendered manifests are validated against.
const KUBE_SCHEMA_VERSION: &str = "1.34.0";
/// The API the chart's ServiceMonitor needs.
const SERVICE_MONITOR_API: &str = "monitoring.coreos.com/v1/ServiceMonitor";
/// Time a LogStream on the kwok nodes gets to become Ready (it takes a few seconds).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const CRD_NAMES: [&str; 2] = ["logpipelines.logstream.dev", "logstreams.logstream.dev"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn chart() -> PathBuf {
    repo().join("charts/logstream")
}

fn all_features_values() -> PathBuf {
    chart().join("ci/all-features-values.yaml")
}

/// Runs `cmd` and returns its stdout; its stderr is in the error when it fails.
fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The documents of a YAML stream, empty ones left out.
fn documents(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("parse YAML documents")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// `Kind/namespace/name` of a document.
fn key(doc: &Value) -> String {
    let meta = &doc["metadata"];
    format!(
        "{}/{}/{}",
        doc["kind"].as_str().unwrap_or_default(),
        meta["namespace"].as_str().unwrap_or_default(),
        meta["name"].as_str().unwrap_or_default()
    )
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .filter_map(|d| d["kind"].as_str().map(str::to_owned))
        .collect()
}

/// Documents by [`key`], numbers normalised (YAML writers differ on `1.0` versus `1`).
fn by_key(docs: Vec<Value>) -> BTreeMap<String, Value> {
    docs.into_iter()
        .map(|d| (key(&d), normalize_numbers(d)))
        .collect()
}

fn normalize_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => json!(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalize_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Files of `dir` ending in `.yaml`, by name, with their content.
fn yaml_files(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            out.insert(name.into_owned(), std::fs::read_to_string(&path)?);
        }
    }
    Ok(out)
}

/// Names present in only one of the two sets of files, or with different content.
fn differing(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .cloned()
        .collect()
}

/// Polls `check` every 250 ms until it gives `Some`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The chart on its own: lint, offline validation, drift checks.

#[test]
fn chart_crds_are_the_generated_ones() -> anyhow::Result<()> {
    let generated = yaml_files(&repo().join("crds/yaml"))?;
    let copied = yaml_files(&chart().join("crds"))?;
    let stale = differing(&generated, &copied);
    assert!(
        stale.is_empty(),
        "charts/logstream/crds/ differs from crds/yaml/, the CRDs `logstream crd` generates \
         (files: {stale:?}): run `manifests/generate.sh`, which copies them into the chart and \
         renders manifests/, review the diff and commit it"
    );
    Ok(())
}

#[test]
fn chart_app_version_is_the_workspace_version() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(chart().join("Chart.yaml"))?;
    let chart: Value = serde_saphyr::from_str(&text)?;
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion must be the workspace version of Cargo.toml (the default image tag)"
    );
    Ok(())
}

/// `helm template` of the chart into `namespace` with `args`, as documents.
fn render(tools: &Tools, namespace: &str, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let out = run(Command::new(tools.helm())
        .args(["template", "logstream"])
        .arg(chart())
        .args([
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_SCHEMA_VERSION,
        ])
        .args(args))?;
    documents(&out)
}

/// Validates `docs` offline (strict: unknown fields fail). Custom kinds have no schema there;
/// `unknown` lists those expected, every other document must have passed.
fn validate_offline(tools: &Tools, docs: &[Value], unknown: &[&str]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("rendered.yaml");
    let text: Vec<String> = docs.iter().map(Value::to_string).collect();
    // JSON is YAML: one JSON document per `---`.
    std::fs::write(&path, text.join("\n---\n"))?;
    let out = run(Command::new(tools.kubernetes_validate())
        .args(["-k", KUBE_SCHEMA_VERSION, "--strict"])
        .arg(&path))?;
    let passed = out.matches("passed for resource").count();
    let no_schema: BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.split("Couldn't find schema for kind ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(
        no_schema,
        unknown.iter().copied().collect::<BTreeSet<_>>(),
        "{out}"
    );
    assert_eq!(passed + unknown.len(), docs.len(), "{out}");
    Ok(())
}

#[test]
fn chart_lints_strictly_and_renders_manifests_valid_for_kubernetes_1_34() -> anyhow::Result<()> {
    let Some(tools) = Tools::find() else {
        return Ok(());
    };
    let values = all_features_values();
    run(Command::new(tools.helm())
        .args(["lint", "--strict"])
        .arg(chart()))?;
    run(Command::new(tools.helm())
        .args(["lint", "--strict"])
        .arg(chart())
        .arg("-f")
        .arg(&values))?;

    let defaults = render(&tools, "logstream", &["--include-crds"])?;
    let values = values.to_string_lossy();
    let all = render(
        &tools,
        "logstream",
        &["-f", &values, "--api-versions", SERVICE_MONITOR_API],
    )?;

    let base = [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ];
    let mut expected: BTreeSet<String> = base.iter().map(|s| s.to_string()).collect();
    expected.insert("CustomResourceDefinition".into());
    assert_eq!(kinds(&defaults), expected);
    expected.remove("CustomResourceDefinition");
    expected.extend(["LogStream".into(), "ServiceMonitor".into()]);
    assert_eq!(kinds(&all), expected);
    validate_offline(&tools, &defaults, &[])?;
    // The API server checks the LogStream (examples_pass_the_api_servers_dry_run); the
    // ServiceMonitor's CRD is not in the test cluster, so only its fields are checked here.
    validate_offline(&tools, &all, &["LogStream", "ServiceMonitor"])?;
    let monitor = all.iter().find(|d| d["kind"] == "ServiceMonitor").unwrap();
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");

    // Enabled on a cluster without the Prometheus Operator: no ServiceMonitor, no failure.
    let without_api = render(
        &tools,
        "logstream",
        &["--set", "serviceMonitor.enabled=true"],
    )?;
    assert!(!kinds(&without_api).contains("ServiceMonitor"));
    Ok(())
}

#[test]
fn manifests_are_what_the_chart_renders() -> anyhow::Result<()> {
    let Some(tools) = Tools::find() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    run(Command::new(repo().join("manifests/generate.sh"))
        .arg("--out")
        .arg(dir.path())
        .env("HELM", tools.helm()))?;
    let rendered = yaml_files(dir.path())?;
    let mut committed = yaml_files(&repo().join("manifests"))?;
    committed.remove("kustomization.yaml");
    let stale = differing(&rendered, &committed);
    assert!(
        stale.is_empty(),
        "manifests/ differs from what charts/logstream renders (files: {stale:?}): run \
         `manifests/generate.sh` (HELM=/path/to/helm when helm is not on PATH), review the diff \
         and commit it"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Against the API server.

/// kubectl, helm and the cluster; `None` (skip, or a failure under `REQUIRE_E2E=1`) without them.
struct Parts {
    cluster: TestCluster,
    kubectl: PathBuf,
    tools: Tools,
}

impl Parts {
    async fn find() -> Option<Self> {
        let tools = Tools::find()?;
        let cluster = TestCluster::connect().await?;
        let Some(kubectl) = cluster.kubectl().map(Path::to_path_buf) else {
            return unavailable(Part::Kubernetes, "KUBECTL is not set in target/e2e/env");
        };
        Some(Self {
            cluster,
            kubectl,
            tools,
        })
    }

    fn kubectl(&self) -> Command {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(self.cluster.kubeconfig());
        cmd
    }

    fn helm(&self) -> Command {
        let mut cmd = Command::new(self.tools.helm());
        cmd.arg("--kubeconfig").arg(self.cluster.kubeconfig());
        cmd
    }

    /// `kubectl <args> -f <docs>`, the documents passed as one List.
    fn kubectl_with(&self, args: &[&str], docs: &[Value]) -> anyhow::Result<String> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("objects.json");
        let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
        std::fs::write(&path, list.to_string())?;
        run(self.kubectl().args(args).arg("-f").arg(&path))
    }

    /// The chart's CRDs, applied as an admin applies them, and Established.
    fn install_chart_crds(&self) -> anyhow::Result<()> {
        run(self
            .kubectl()
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(chart().join("crds")))?;
        for name in CRD_NAMES {
            run(self.kubectl().args([
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                &format!("crd/{name}"),
            ]))?;
        }
        Ok(())
    }
}

/// An example's documents with their namespaces (and LogPipelines' `logStreamRef.namespace`)
/// mapped through `namespaces`, so each test runs in namespaces of its own.
fn example(name: &str, namespaces: &BTreeMap<&str, String>) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(repo().join("manifests/examples").join(name))?;
    let mut docs = documents(&text)?;
    for doc in &mut docs {
        relocate(doc, namespaces);
    }
    Ok(docs)
}

fn relocate(doc: &mut Value, namespaces: &BTreeMap<&str, String>) {
    for pointer in ["/metadata/namespace", "/spec/logStreamRef/namespace"] {
        let Some(field) = doc.pointer_mut(pointer) else {
            continue;
        };
        if let Some(to) = field.as_str().and_then(|ns| namespaces.get(ns)) {
            *field = Value::String(to.clone());
        }
    }
}

/// Fresh namespaces standing in for the examples' `logstream`, `shop` and `payments`.
async fn example_namespaces(
    cluster: &TestCluster,
) -> anyhow::Result<(Vec<TestNamespace>, BTreeMap<&'static str, String>)> {
    let mut made = Vec::new();
    let mut map = BTreeMap::new();
    for ns in ["logstream", "shop", "payments"] {
        let fresh = cluster.fresh_namespace(&format!("install-{ns}")).await?;
        map.insert(ns, fresh.name().to_owned());
        made.push(fresh);
    }
    Ok((made, map))
}

#[tokio::test]
async fn examples_pass_the_api_servers_dry_run() -> anyhow::Result<()> {
    let Some(parts) = Parts::find().await else {
        return Ok(());
    };
    parts.install_chart_crds()?;
    let (namespaces, map) = example_namespaces(&parts.cluster).await?;
    for name in [
        "minimal.yaml",
        "production.yaml",
        "tenant-shop.yaml",
        "tenant-payments.yaml",
    ] {
        let docs = example(name, &map)?;
        assert!(!docs.is_empty(), "{name} holds no object");
        parts
            .kubectl_with(&["apply", "--dry-run=server"], &docs)
            .with_context(|| format!("manifests/examples/{name}"))?;
    }
    // The chart's optional LogStream, as the all-features values make it.
    let values = all_features_values();
    let mut rendered = render(
        &parts.tools,
        &map["logstream"],
        &["-f", &values.to_string_lossy()],
    )?;
    rendered.retain(|d| d["kind"] == "LogStream");
    assert_eq!(rendered.len(), 1);
    parts.kubectl_with(&["apply", "--dry-run=server"], &rendered)?;
    for ns in namespaces {
        ns.delete().await?;
    }
    Ok(())
}

/// `logstream operator` running as a local process with a kubeconfig of its own.
struct Operator {
    child: Child,
    log: tempfile::NamedTempFile,
    url: String,
}

impl Operator {
    fn start(kubeconfig: &Path, namespace: &str, lease: &str) -> anyhow::Result<Self> {
        let port = common::free_port();
        let log = tempfile::NamedTempFile::new()?;
        let child = Command::new(env!("CARGO_BIN_EXE_logstream"))
            .args(["operator", "--listen", &format!("127.0.0.1:{port}")])
            .arg(format!("--lease-name={lease}"))
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", namespace)
            .env("POD_NAME", "local-operator")
            .env(
                "LOGSTREAM_IMAGE",
                "ghcr.io/logstream/logstream:install-test",
            )
            // The controllers log failed watches and reconciles at debug.
            .env("RUST_LOG", "info,logstream_operator=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log.reopen()?)
            .spawn()
            .context("spawn logstream operator")?;
        Ok(Self {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn leads(&self) -> bool {
        let Ok(resp) = reqwest::get(format!("{}/metrics", self.url)).await else {
            return false;
        };
        let body = resp.text().await.unwrap_or_default();
        body.lines().any(|l| l == "logstream_operator_leader 1")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// SIGTERM, then whether it exited cleanly.
    fn stop(&mut self) -> anyhow::Result<bool> {
        run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        Ok(self.child.wait()?.success())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- operator log ---\n{}", self.log_text());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kubeconfig for the same API server that authenticates with a token of the ServiceAccount
/// `namespace/name` (TokenRequest, as a pod's projected token).
fn service_account_kubeconfig(
    parts: &Parts,
    namespace: &str,
    name: &str,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let token =
        run(parts
            .kubectl()
            .args(["create", "token", name, "-n", namespace, "--duration=1h"]))?;
    let admin = run(parts.kubectl().args([
        "config",
        "view",
        "--raw",
        "--minify",
        "--flatten",
        "-o",
        "json",
    ]))?;
    let mut config: Value = serde_json::from_str(&admin)?;
    config["users"][0]["user"] = json!({"token": token.trim()});
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, config.to_string())?;
    // Proof of the identity every request of the operator carries.
    let whoami = run(Command::new(&parts.kubectl)
        .arg("--kubeconfig")
        .arg(&path)
        .args(["auth", "whoami", "-o", "json"]))?;
    let whoami: Value = serde_json::from_str(&whoami)?;
    assert_eq!(
        whoami["status"]["userInfo"]["username"],
        format!("system:serviceaccount:{namespace}:{name}")
    );
    Ok(path)
}

const INSTALL_VALUES: &str = "\
replicas: 2
image:
  tag: 0.0.0-install-test
  pullPolicy: Never
resources:
  requests: {cpu: 20m, memory: 32Mi}
  limits: {memory: 96Mi}
nodeSelector:
  kubernetes.io/os: linux
tolerations:
  - {key: example.com/dedicated, operator: Exists, effect: NoSchedule}
";

/// The operator Deployment carries what the values asked for, and the defaults that matter.
fn check_deployment(deploy: &Deployment, sa: &str) {
    let spec = deploy.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(sa));
    assert_eq!(
        pod.node_selector.as_ref().unwrap()["kubernetes.io/os"],
        "linux"
    );
    assert_eq!(pod.tolerations.as_ref().unwrap().len(), 1);
    let pod_security = pod.security_context.as_ref().unwrap();
    assert_eq!(pod_security.run_as_user, Some(10001));
    assert_eq!(pod_security.run_as_non_root, Some(true));
    let c = &pod.containers[0];
    let image = "ghcr.io/logstream/logstream:0.0.0-install-test";
    assert_eq!(c.image.as_deref(), Some(image));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Never"));
    let args = c.args.clone().unwrap_or_default();
    assert_eq!(args[0], "operator");
    assert!(args.contains(&format!("--lease-name={sa}")), "{args:?}");
    let env: BTreeMap<&str, &_> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e))
        .collect();
    assert_eq!(env["LOGSTREAM_IMAGE"].value.as_deref(), Some(image));
    for (var, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let from = env[var]
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref());
        assert_eq!(from.map(|f| f.field_path.as_str()), Some(field), "{var}");
    }
    let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["memory"].0, "96Mi");
    let security = c.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(
        security.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let probe = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.path.as_deref(), Some("/readyz"));
}

/// A refusal of the API server in the operator's log or in a status condition, as an error:
/// the chart's RBAC lacks a permission.
fn refused(operator: &Operator, conds: &[Condition]) -> anyhow::Result<()> {
    let log = operator.log_text();
    anyhow::ensure!(
        !log.to_lowercase().contains("forbidden"),
        "the API server refused the operator a request: the chart's RBAC lacks a \
         permission. Operator log:\n{log}"
    );
    if let Some(c) = conds
        .iter()
        .find(|c| c.message.to_lowercase().contains("forbidden"))
    {
        anyhow::bail!(
            "the API server refused the operator a request: the chart's RBAC lacks a \
             permission. Condition {} ({}): {}",
            c.type_,
            c.reason,
            c.message
        );
    }
    Ok(())
}

/// Waits until `Ready` is True for the current generation of the object `name`; fails at once
/// when the operator was refused a request.
async fn wait_ready<K, F>(
    api: &Api<K>,
    name: &str,
    operator: &Operator,
    conditions_of: F,
) -> anyhow::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> Option<(i64, Vec<Condition>)>,
{
    eventually(&format!("{name} Ready"), READY_TIMEOUT, || async {
        let Some(obj) = api.get_opt(name).await? else {
            return Ok(None);
        };
        let generation = obj.meta().generation.unwrap_or(0);
        let (observed, conds) = conditions_of(&obj).unwrap_or_default();
        refused(operator, &conds)?;
        let ready = observed == generation
            && conditions::find(&conds, READY).is_some_and(|c| c.status == "True");
        Ok(ready.then_some(()))
    })
    .await
}

async fn gone<K>(api: &Api<K>, name: &str, timeout: Duration) -> anyhow::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} gone"), timeout, || async {
        Ok(api.get_opt(name).await?.is_none().then_some(()))
    })
    .await
}

#[tokio::test]
async fn helm_install_gives_the_operator_just_the_rights_it_needs() -> anyhow::Result<()> {
    let Some(parts) = Parts::find().await else {
        return Ok(());
    };
    let started = Instant::now();
    let client = parts.cluster.client();
    let (namespaces, map) = example_namespaces(&parts.cluster).await?;
    let ns = map["logstream"].clone();
    let release = unique_name("rel");
    let fullname = format!("{release}-logstream-operator");
    let dir = tempfile::tempdir()?;
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, INSTALL_VALUES)?;

    // 1. Install: the CRDs come from the chart's crds/ (skipped by Helm when present).
    run(parts
        .helm()
        .args(["install", &release])
        .arg(chart())
        .args(["--namespace", &ns, "--wait", "--timeout", "90s", "-f"])
        .arg(&values))?;
    let deploy = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await?;
    check_deployment(&deploy, &fullname);
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in CRD_NAMES {
        assert!(crds.get_opt(crd).await?.is_some(), "{crd} not installed");
    }

    // 2. The operator, as the chart's ServiceAccount.
    let kubeconfig = service_account_kubeconfig(&parts, &ns, &fullname, dir.path())?;
    let mut operator = Operator::start(&kubeconfig, &ns, &fullname)?;
    eventually("the operator leads", Duration::from_secs(30), || async {
        Ok(operator.leads().await.then_some(()))
    })
    .await?;
    let lease = Api::<Lease>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await?;
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("local-operator"));

    // 3. A LogStream and two tenants' LogPipelines, from the examples, become Ready.
    let applied = Instant::now();
    parts.kubectl_with(&["apply"], &example("minimal.yaml", &map)?)?;
    let streams = Api::<LogStream>::namespaced(client.clone(), &ns);
    wait_ready(&streams, "main", &operator, |ls| {
        let s = ls.status.as_ref()?;
        Some((s.observed_generation?, s.conditions.clone()))
    })
    .await?;
    println!(
        "MEASURE minimal example apply->Ready under the chart's RBAC: {:.1} s",
        applied.elapsed().as_secs_f64()
    );
    for (file, tenant, name) in [
        ("tenant-shop.yaml", "shop", "storefront"),
        ("tenant-payments.yaml", "payments", "payment-services"),
    ] {
        parts.kubectl_with(&["apply"], &example(file, &map)?)?;
        let pipelines = Api::<LogPipeline>::namespaced(client.clone(), &map[tenant]);
        wait_ready(&pipelines, name, &operator, |p| {
            let s = p.status.as_ref()?;
            Some((s.observed_generation?, s.conditions.clone()))
        })
        .await?;
    }
    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().fields("involvedObject.name=main,reason=Ready"))
        .await?;
    assert!(!events.items.is_empty(), "no Ready event on the LogStream");

    // 4. An upgrade as charts/logstream/README.md says: the CRDs first (Helm leaves them), then
    //    `helm upgrade`; the changed value reaches the Deployment and the LogStream stays Ready.
    run(parts
        .kubectl()
        .args(["apply", "--server-side", "-f"])
        .arg(chart().join("crds")))?;
    run(parts
        .helm()
        .args(["upgrade", &release])
        .arg(chart())
        .args(["--namespace", &ns, "--wait", "--timeout", "90s", "-f"])
        .arg(&values)
        .args(["--set", "replicas=3"]))?;
    let upgraded = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await?;
    assert_eq!(upgraded.spec.and_then(|s| s.replicas), Some(3));
    let revision = run(parts
        .helm()
        .args(["status", &release, "--namespace", &ns, "-o", "json"]))?;
    let revision: Value = serde_json::from_str(&revision)?;
    assert_eq!(revision["version"], 2, "{revision}");
    let ls = streams.get("main").await?;
    assert!(
        ls.status.as_ref().is_some_and(|s| s
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")),
        "the LogStream is not Ready after the upgrade: {:?}",
        ls.status
    );

    // 5. Deleting it runs the finalizer: the agent's cluster-scoped RBAC goes too.
    streams.delete("main", &DeleteParams::default()).await?;
    gone(&streams, "main", Duration::from_secs(60)).await?;
    let agent_rbac = ListParams::default().labels(&format!("logstream.dev/owner-namespace={ns}"));
    let roles = Api::<ClusterRole>::all(client.clone());
    assert!(roles.list_metadata(&agent_rbac).await?.items.is_empty());

    assert!(operator.stop()?, "the operator did not exit cleanly");
    refused(&operator, &[])?;

    // 6. Uninstall: the chart's objects go, the CRDs stay.
    run(parts
        .helm()
        .args(["uninstall", &release, "--namespace", &ns, "--wait"]))?;
    check_uninstalled(&client, &ns, &fullname).await?;
    for crd in CRD_NAMES {
        assert!(
            crds.get_opt(crd).await?.is_some(),
            "uninstall deleted {crd}"
        );
    }
    for ns in namespaces {
        ns.delete().await?;
    }
    println!(
        "MEASURE helm install -> operator as its ServiceAccount -> Ready -> uninstall: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn check_uninstalled(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(30);
    gone(
        &Api::<Deployment>::namespaced(client.clone(), ns),
        name,
        timeout,
    )
    .await?;
    gone(
        &Api::<ServiceAccount>::namespaced(client.clone(), ns),
        name,
        timeout,
    )
    .await?;
    gone(
        &Api::<Service>::namespaced(client.clone(), ns),
        name,
        timeout,
    )
    .await?;
    gone(&Api::<Role>::namespaced(client.clone(), ns), name, timeout).await?;
    gone(
        &Api::<RoleBinding>::namespaced(client.clone(), ns),
        name,
        timeout,
    )
    .await?;
    gone(&Api::<ClusterRole>::all(client.clone()), name, timeout).await?;
    gone(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        name,
        timeout,
    )
    .await
}

#[tokio::test]
async fn kustomize_gives_the_charts_objects_and_an_overlay_installs_them() -> anyhow::Result<()> {
    let Some(parts) = Parts::find().await else {
        return Ok(());
    };
    let manifests = repo().join("manifests");
    // The kustomization holds exactly the rendered files.
    let built = documents(&run(parts.kubectl().arg("kustomize").arg(&manifests))?)?;
    let mut files = Vec::new();
    for file in ["namespace.yaml", "crds.yaml", "operator.yaml"] {
        files.extend(documents(&std::fs::read_to_string(manifests.join(file))?)?);
    }
    let (built, files) = (by_key(built), by_key(files));
    let keys: BTreeSet<&String> = built.keys().chain(files.keys()).collect();
    let differ: Vec<_> = keys
        .into_iter()
        .filter(|k| built.get(*k) != files.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "`kubectl kustomize manifests/` differs from the files: {differ:?}"
    );

    // An overlay: another namespace, a name prefix and an image tag.
    parts.install_chart_crds()?;
    let ns = parts.cluster.fresh_namespace("install-kustomize").await?;
    let prefix = format!("{}-", unique_name("k"));
    // kustomize takes bases by relative path only: the overlay lives in target/.
    let overlays = repo().join("target/install-tests");
    std::fs::create_dir_all(&overlays)?;
    let dir = tempfile::tempdir_in(&overlays)?;
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources: [../../../manifests]\nnamespace: {}\nnamePrefix: {prefix}\n\
             images: [{{name: ghcr.io/logstream/logstream, newTag: overlay-test}}]\n",
            ns.name()
        ),
    )?;
    let mut docs = documents(&run(parts.kubectl().arg("kustomize").arg(dir.path()))?)?;
    let crds: BTreeSet<String> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .map(key)
        .collect();
    assert_eq!(crds.len(), 2, "CRD names keep no prefix: {crds:?}");
    // The CRDs are installed already (and shared by every test); the namespace is the test's.
    docs.retain(|d| d["kind"] != "CustomResourceDefinition" && d["kind"] != "Namespace");
    parts.kubectl_with(&["apply", "--server-side"], &docs)?;

    let client = parts.cluster.client();
    let name = format!("{prefix}logstream-operator");
    let deploy = Api::<Deployment>::namespaced(client.clone(), ns.name())
        .get(&name)
        .await?;
    let pod = deploy.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(name.as_str()));
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("ghcr.io/logstream/logstream:overlay-test")
    );
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&name)
        .await?;
    assert_eq!(binding.role_ref.name, name);
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        (name.as_str(), Some(ns.name()))
    );
    ns.wait_pods_ready(
        "app.kubernetes.io/component=operator",
        1,
        Duration::from_secs(60),
    )
    .await?;

    parts.kubectl_with(&["delete", "--wait"], &docs)?;
    ns.delete().await?;
    Ok(())
}
