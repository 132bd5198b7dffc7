//! The pods: a StatefulSet per role (or one for the embedded install) and the agent DaemonSet
//! with the least privilege it needs.
//!
//! StatefulSets rather than Deployments for every role: stable pod names are the ingest
//! replicas' Kafka transactional ids (a restarted replica fences its predecessor) and the
//! processors' manifest owners, and the embedded install keeps its write-ahead log on a claim.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, HostPathVolumeSource, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SecretEnvSource, SecurityContext, ServiceAccount, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use logstream_crds::logstream::{EmbeddedBus, RoleSpec};

use super::{Ctx, config_hash};
use crate::names::{CONFIG_DIR, CONFIG_FILE, CONFIG_HASH_ANNOTATION, Component};

/// Where the embedded install keeps its write-ahead log and local files.
pub const DATA_DIR: &str = "/var/lib/logstream";
/// Where the agent keeps its checkpoints on the node (one directory per LogStream).
const AGENT_STATE_DIR: &str = "/var/lib/logstream-agent";
/// Non-root user of every LogStream container (the image's `logstream` user).
const RUN_AS_USER: i64 = 10001;

/// The StatefulSet of a Kafka-bus role.
pub(super) fn role(
    ctx: &Ctx<'_>,
    component: Component,
    role: &RoleSpec,
    restart_basis: &str,
) -> StatefulSet {
    let names = ctx.names;
    let mut container = container(
        ctx,
        component,
        rendered_args(component),
        role.resources.clone(),
    );
    container.volume_mounts = Some(vec![config_mount()]);
    let mut pod = pod_spec(container, vec![config_volume(&names.workload(component))]);
    if component == Component::Processor {
        // Time to flush what it holds to object storage and commit, on a rolling update.
        pod.termination_grace_period_seconds = Some(120);
    }
    StatefulSet {
        metadata: ctx.meta(component, names.workload(component)),
        spec: Some(StatefulSetSpec {
            // Under an autoscaler the HPA owns the count: leaving it out of the applied fields
            // means the operator and the HPA never fight over it.
            replicas: if role.autoscaling.is_some() {
                None
            } else {
                Some(role.replicas.unwrap_or(1))
            },
            service_name: Some(names.headless(component)),
            // No role depends on its siblings starting in order.
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(names.selector(component)),
                ..LabelSelector::default()
            },
            template: template(ctx, component, restart_basis, pod),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The single StatefulSet of an embedded-bus install: `logstream standalone` with its data
/// directory (the write-ahead log) on a volume claim.
pub(super) fn standalone(ctx: &Ctx<'_>, bus: &EmbeddedBus, restart_basis: &str) -> StatefulSet {
    let names = ctx.names;
    let component = Component::Standalone;
    let spec = &ctx.ls.spec;
    let args = vec![
        "standalone".to_owned(),
        format!("--data-dir={DATA_DIR}"),
        format!("--listen=0.0.0.0:{}", component.port()),
        format!("--storage={}", spec.storage.url),
        format!("--retention-days={}", spec.retention.default_days.max(1)),
        format!("--pipelines-config={CONFIG_DIR}/{CONFIG_FILE}"),
    ];
    let resources = spec.ingest.resources.clone();
    let mut container = container(ctx, component, args, resources);
    // `standalone` takes no config file: object_store options become the environment
    // variables object_store reads (aws_endpoint -> AWS_ENDPOINT).
    let env = container.env.get_or_insert_with(Vec::new);
    env.extend(spec.storage.options.iter().map(|(k, v)| EnvVar {
        name: k.to_uppercase(),
        value: Some(v.clone()),
        ..EnvVar::default()
    }));
    container.volume_mounts = Some(vec![
        config_mount(),
        VolumeMount {
            name: "data".into(),
            mount_path: DATA_DIR.into(),
            ..VolumeMount::default()
        },
    ]);
    let mut pod = pod_spec(container, vec![config_volume(&names.workload(component))]);
    pod.termination_grace_period_seconds = Some(120);
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(names.labels(component)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: bus.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    bus.volume_size.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: ctx.meta(component, names.workload(component)),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(names.headless(component)),
            selector: LabelSelector {
                match_labels: Some(names.selector(component)),
                ..LabelSelector::default()
            },
            template: template(ctx, component, restart_basis, pod),
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The agent DaemonSet: one pod per selected node reading the pod logs kubelet writes.
pub(super) fn agent(ctx: &Ctx<'_>, restart_basis: &str) -> DaemonSet {
    let names = ctx.names;
    let component = Component::Agent;
    let spec = &ctx.ls.spec.agent;
    let args = rendered_args(component);
    let mut container = container(ctx, component, args, spec.resources.clone());
    container.env.get_or_insert_with(Vec::new).push(EnvVar {
        name: "NODE_NAME".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "spec.nodeName".into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    });
    // The agent needs no storage credentials.
    container.env_from = None;
    container.volume_mounts = Some(vec![
        config_mount(),
        VolumeMount {
            name: "pod-logs".into(),
            mount_path: spec.host_log_path.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "state".into(),
            mount_path: AGENT_STATE_DIR.into(),
            ..VolumeMount::default()
        },
    ]);
    let volumes = vec![
        config_volume(&names.workload(component)),
        host_path("pod-logs", &spec.host_log_path, "Directory"),
        host_path(
            "state",
            &format!("{AGENT_STATE_DIR}/{}-{}", names.namespace, names.instance),
            "DirectoryOrCreate",
        ),
    ];
    let mut pod = pod_spec(container, volumes);
    // kubelet writes the logs as root with mode 0640: reading them takes root (read-only).
    pod.security_context = Some(PodSecurityContext {
        run_as_user: Some(0),
        run_as_non_root: Some(false),
        ..PodSecurityContext::default()
    });
    pod.service_account_name = Some(names.workload(component));
    pod.automount_service_account_token = Some(true);
    pod.node_selector = (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone());
    pod.tolerations = (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone());
    DaemonSet {
        metadata: ctx.meta(component, names.workload(component)),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(names.selector(component)),
                ..LabelSelector::default()
            },
            template: template(ctx, component, restart_basis, pod),
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    // Checkpoints make a restart lossless; roll a tenth of the nodes at a time.
                    max_unavailable: Some(IntOrString::String("10%".into())),
                    ..RollingUpdateDaemonSet::default()
                }),
            }),
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    }
}

pub(super) fn agent_account(ctx: &Ctx<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: ctx.meta(Component::Agent, ctx.names.workload(Component::Agent)),
        ..ServiceAccount::default()
    }
}

/// Read-only access to what the agent enriches and selects with: pods (a watch of its own
/// node's) and LogPipelines. Nothing else, nothing written.
pub(super) fn agent_cluster_role(ctx: &Ctx<'_>) -> ClusterRole {
    let read = || vec!["get".into(), "list".into(), "watch".into()];
    ClusterRole {
        metadata: ctx.cluster_meta(Component::Agent, ctx.names.agent_cluster_role()),
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["pods".into()]),
                verbs: read(),
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(vec![logstream_crds::GROUP.into()]),
                resources: Some(vec!["logpipelines".into()]),
                verbs: read(),
                ..PolicyRule::default()
            },
        ]),
        ..ClusterRole::default()
    }
}

pub(super) fn agent_cluster_role_binding(ctx: &Ctx<'_>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ctx.cluster_meta(Component::Agent, ctx.names.agent_cluster_role()),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: ctx.names.agent_cluster_role(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: ctx.names.workload(Component::Agent),
            namespace: Some(ctx.names.namespace.clone()),
            ..Subject::default()
        }]),
    }
}

/// `logstream <role> --config /etc/logstream/config.toml`.
fn rendered_args(component: Component) -> Vec<String> {
    vec![
        component.as_str().to_owned(),
        format!("--config={CONFIG_DIR}/{CONFIG_FILE}"),
    ]
}

fn container(
    ctx: &Ctx<'_>,
    component: Component,
    args: Vec<String>,
    resources: Option<ResourceRequirements>,
) -> Container {
    let port = component.port();
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    };
    let env_from = ctx
        .ls
        .spec
        .storage
        .credentials_secret_ref
        .as_ref()
        .map(|secret| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: secret.name.clone(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]
        });
    Container {
        name: "logstream".into(),
        image: Some(ctx.image.to_owned()),
        args: Some(args),
        env: Some(vec![
            // The pod name: the instance (Kafka transactional id, manifest owner) of the replica.
            EnvVar {
                name: "LOGSTREAM_INSTANCE".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
            EnvVar {
                name: "LOGSTREAM_LOG_JSON".into(),
                value: Some("true".into()),
                ..EnvVar::default()
            },
        ]),
        env_from,
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(probe("/readyz", 5, 3)),
        liveness_probe: Some(probe("/healthz", 10, 6)),
        resources: Some(resources.unwrap_or_else(|| default_resources(component))),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// Requests sized for a small install; limits only on memory (CPU limits throttle latency).
fn default_resources(component: Component) -> ResourceRequirements {
    let (cpu, memory) = match component {
        Component::Ingest => ("250m", "256Mi"),
        Component::Processor => ("500m", "1Gi"),
        Component::Query => ("500m", "1Gi"),
        Component::Standalone => ("500m", "1Gi"),
        Component::Agent => ("100m", "128Mi"),
    };
    let q = |s: &str| Quantity(s.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), q(cpu)),
            ("memory".to_owned(), q(memory)),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), q(memory))])),
        ..ResourceRequirements::default()
    }
}

/// A pod of `container` with `volumes`, plus a writable `/tmp` (the root filesystem is
/// read-only; query spills and temp files go there).
fn pod_spec(mut container: Container, mut volumes: Vec<Volume>) -> PodSpec {
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        });
    volumes.push(Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        // The data-plane roles never call the Kubernetes API.
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            fs_group: Some(RUN_AS_USER),
            ..PodSecurityContext::default()
        }),
        ..PodSpec::default()
    }
}

fn template(
    ctx: &Ctx<'_>,
    component: Component,
    restart_basis: &str,
    pod: PodSpec,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(ctx.names.labels(component)),
            annotations: Some(BTreeMap::from([(
                CONFIG_HASH_ANNOTATION.to_owned(),
                config_hash(restart_basis),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(pod),
    }
}

fn config_mount() -> VolumeMount {
    VolumeMount {
        name: "config".into(),
        mount_path: CONFIG_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn config_volume(config_map: &str) -> Volume {
    Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn host_path(name: &str, path: &str, type_: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some(type_.into()),
        }),
        ..Volume::default()
    }
}
