//! The config file of each workload, rendered from the LogStream and its valid LogPipelines in
//! the TOML format `logstream ingest|processor|query|agent --config` reads (logstream's
//! `config.rs`; a test there parses what this renders, so the two cannot drift apart).
//!
//! Each component gets only the sections it reads. The processor, query and standalone
//! components read their `[[pipelines]]` again while they run (a ConfigMap volume changes under
//! a running pod), so a LogPipeline change restarts none of them: [`restart_basis`] leaves the
//! pipelines out of the hash that rolls pods. The agent gets only what it uses of a pipeline
//! (selector, static labels, multiline), so a parser change does not restart it either; a
//! selector change does.

use std::collections::BTreeMap;

use logstream_crds::logpipeline::LogPipelineSpec;
use logstream_crds::logstream::{Bus, LogStreamSpec};
use serde::Serialize;

use crate::names::{Component, Names};

/// A LogPipeline as the components see it: where it lives (its namespace is its tenant), which
/// generation, and its spec as the tenant wrote it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineEntry {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub spec: LogPipelineSpec,
}

#[derive(Debug, Serialize)]
struct File<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka: Option<KafkaSection<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<StorageSection<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processor: Option<ProcessorSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<RetentionSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<AgentSection>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pipelines: &'a [PipelineEntry],
}

#[derive(Debug, Serialize)]
struct KafkaSection<'a> {
    bootstrap: String,
    topic: &'a str,
    partitions: i32,
    replication_factor: i32,
}

#[derive(Debug, Serialize)]
struct StorageSection<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    options: &'a BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct ProcessorSection {
    group: String,
}

/// The store's retention policy (logstream_store::RetentionPolicy).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionSection {
    pub default_days: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RetentionRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionRule {
    pub tenant: String,
    pub class: String,
    pub days: u32,
}

#[derive(Debug, Serialize)]
struct AgentSection {
    ingest_url: String,
    pods_dir: String,
    /// Select pods through LogPipelines and the pod watch (the agent's cluster mode).
    kubernetes: bool,
}

/// The retention policy of a LogStream with these pipelines.
///
/// Object stores expire by key prefix and apply the *shortest* of overlapping rules, so the
/// default rule (on every tenant) must be at least as long as any tenant's own. Hence: every
/// tenant with a LogPipeline gets the longest retention among its pipelines (a pipeline without
/// one counts as `defaultDays`); the default becomes the longest of `defaultDays` and those; a
/// tenant whose days differ from that default gets its own rule. A tenant that only pushes
/// through the API therefore keeps its logs for that default, which is longer than
/// `defaultDays` when some pipeline asks for more. A class a pipeline routes events to
/// (`spec.routes[].class`) is kept the longest `days` the tenant's routes give it, and takes
/// part in the default like a tenant.
pub fn retention(spec: &LogStreamSpec, pipelines: &[PipelineEntry]) -> RetentionSection {
    let default_days = positive(spec.retention.default_days);
    let mut per_tenant: BTreeMap<&str, u32> = BTreeMap::new();
    for p in pipelines {
        let days = p
            .spec
            .retention
            .as_ref()
            .map_or(default_days, |r| positive(r.days));
        let entry = per_tenant.entry(&p.namespace).or_insert(days);
        *entry = (*entry).max(days);
    }
    // Classes pipelines route events to: the longest days any route of the tenant asks.
    let mut routed: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for p in pipelines {
        for r in &p.spec.routes {
            let entry = routed
                .entry((p.namespace.as_str(), r.class.as_str()))
                .or_insert(positive(r.days));
            *entry = (*entry).max(positive(r.days));
        }
    }
    let longest = per_tenant
        .values()
        .chain(routed.values())
        .copied()
        .fold(default_days, u32::max);
    let mut rules: Vec<RetentionRule> = per_tenant
        .into_iter()
        .filter(|&(_, days)| days != longest)
        .map(|(tenant, days)| RetentionRule {
            tenant: tenant.to_owned(),
            class: "default".to_owned(),
            days,
        })
        .collect();
    rules.extend(routed.into_iter().filter(|&(_, days)| days != longest).map(
        |((tenant, class), days)| RetentionRule {
            tenant: tenant.to_owned(),
            class: class.to_owned(),
            days,
        },
    ));
    RetentionSection {
        default_days: longest,
        rules,
    }
}

fn positive(days: i32) -> u32 {
    u32::try_from(days.max(1)).unwrap_or(1)
}

/// The config file of `component`. The embedded install's single pod takes its settings as
/// flags and reads only the `[[pipelines]]` of its file (`--pipelines-config`).
pub fn render(
    names: &Names,
    spec: &LogStreamSpec,
    pipelines: &[PipelineEntry],
    component: Component,
) -> Result<String, toml::ser::Error> {
    render_with(names, spec, pipelines, component, true)
}

/// What decides whether `component`'s pods restart (hashed into their template): its config,
/// without the `[[pipelines]]` when the component reads them again while it runs.
pub fn restart_basis(
    names: &Names,
    spec: &LogStreamSpec,
    pipelines: &[PipelineEntry],
    component: Component,
) -> Result<String, toml::ser::Error> {
    let reloads = matches!(
        component,
        Component::Processor | Component::Query | Component::Standalone
    );
    render_with(names, spec, pipelines, component, !reloads)
}

fn render_with(
    names: &Names,
    spec: &LogStreamSpec,
    pipelines: &[PipelineEntry],
    component: Component,
    with_pipelines: bool,
) -> Result<String, toml::ser::Error> {
    let kafka = match spec.bus.selected() {
        Some(Bus::Kafka(k)) => Some(KafkaSection {
            bootstrap: k.bootstrap_servers.join(","),
            topic: &k.topic,
            partitions: k.partitions,
            replication_factor: k.replication_factor,
        }),
        _ => None,
    };
    let storage = StorageSection {
        url: &spec.storage.url,
        options: &spec.storage.options,
    };
    // What the agent uses of a pipeline: which pods, their static labels, multiline joining.
    let agent_view: Vec<PipelineEntry> = pipelines
        .iter()
        .map(|p| {
            let mut spec = LogPipelineSpec::new(p.spec.log_stream_ref.name.clone());
            spec.log_stream_ref = p.spec.log_stream_ref.clone();
            spec.selector = p.spec.selector.clone();
            spec.labels = p.spec.labels.clone();
            spec.multiline = p.spec.multiline.clone();
            PipelineEntry {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                // Not used by the agent; left out so a new generation does not restart it.
                generation: 0,
                spec,
            }
        })
        .collect();
    let no_pipelines: &[PipelineEntry] = &[];
    let (pipelines_in, agent_pipelines) = if with_pipelines {
        (pipelines, agent_view.as_slice())
    } else {
        (no_pipelines, no_pipelines)
    };
    let file = match component {
        Component::Ingest => File {
            kafka,
            storage: None,
            processor: None,
            retention: None,
            agent: None,
            pipelines: no_pipelines,
        },
        Component::Processor => File {
            kafka,
            storage: Some(storage),
            processor: Some(ProcessorSection {
                group: names.consumer_group(),
            }),
            retention: Some(retention(spec, pipelines)),
            agent: None,
            pipelines: pipelines_in,
        },
        Component::Query => File {
            kafka,
            storage: Some(storage),
            processor: None,
            retention: Some(retention(spec, pipelines)),
            agent: None,
            pipelines: pipelines_in,
        },
        Component::Standalone => File {
            kafka: None,
            storage: Some(storage),
            processor: None,
            retention: Some(retention(spec, pipelines)),
            agent: None,
            pipelines: pipelines_in,
        },
        Component::Agent => File {
            kafka: None,
            storage: None,
            processor: None,
            retention: None,
            agent: Some(AgentSection {
                ingest_url: names.ingest_url(),
                pods_dir: spec.agent.host_log_path.clone(),
                kubernetes: true,
            }),
            pipelines: agent_pipelines,
        },
    };
    let header = format!(
        "# Rendered by logstream-operator from LogStream {}/{} for the {} component. Do not\n\
         # edit: the operator puts it back. Change the LogStream (or a LogPipeline) instead.\n",
        names.namespace,
        names.instance,
        component.as_str()
    );
    Ok(header + &toml::to_string(&file)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstream_crds::logpipeline::PipelineRetention;

    fn pipeline(namespace: &str, name: &str, days: Option<i32>) -> PipelineEntry {
        let mut spec = LogPipelineSpec::new("main");
        spec.retention = days.map(|days| PipelineRetention { days });
        PipelineEntry {
            namespace: namespace.into(),
            name: name.into(),
            generation: 1,
            spec,
        }
    }

    fn rule(tenant: &str, days: u32) -> RetentionRule {
        RetentionRule {
            tenant: tenant.into(),
            class: "default".into(),
            days,
        }
    }

    #[test]
    fn retention_without_pipelines_is_the_default() {
        let spec = LogStreamSpec::new("s3://logs");
        assert_eq!(
            retention(&spec, &[]),
            RetentionSection {
                default_days: 7,
                rules: vec![]
            }
        );
    }

    #[test]
    fn a_longer_pipeline_raises_the_default_and_pins_the_other_tenants() {
        let spec = LogStreamSpec::new("s3://logs");
        let pipelines = [
            pipeline("audit", "all", Some(30)),
            pipeline("shop", "web", None),
            pipeline("shop", "db", Some(3)),
            pipeline("ci", "jobs", Some(2)),
        ];
        // shop: longest of 7 (no retention) and 3; ci: 2; audit: 30 is the new default.
        assert_eq!(
            retention(&spec, &pipelines),
            RetentionSection {
                default_days: 30,
                rules: vec![rule("ci", 2), rule("shop", 7)]
            }
        );
    }

    #[test]
    fn routed_classes_get_their_own_rules_with_the_longest_days() {
        use logstream_crds::logpipeline::RouteRule;
        let spec = LogStreamSpec::new("s3://logs");
        let route = |class: &str, days: i32| RouteRule {
            match_streams: None,
            line_matches: None,
            fields: Default::default(),
            class: class.into(),
            days,
        };
        let mut a = pipeline("shop", "a", None);
        a.spec.routes = vec![route("errors", 3), route("audit", 20)];
        let mut b = pipeline("shop", "b", None);
        b.spec.routes = vec![route("errors", 5)];
        // audit's 20 days raise the default; shop's default class keeps 7, errors 5.
        assert_eq!(
            retention(&spec, &[a, b]),
            RetentionSection {
                default_days: 20,
                rules: vec![
                    rule("shop", 7),
                    RetentionRule {
                        tenant: "shop".into(),
                        class: "errors".into(),
                        days: 5
                    }
                ]
            }
        );
    }

    #[test]
    fn shorter_pipelines_get_rules_under_the_default() {
        let spec = LogStreamSpec::new("s3://logs");
        let pipelines = [pipeline("ci", "jobs", Some(1))];
        assert_eq!(
            retention(&spec, &pipelines),
            RetentionSection {
                default_days: 7,
                rules: vec![rule("ci", 1)]
            }
        );
    }
}
