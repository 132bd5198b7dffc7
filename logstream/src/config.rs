//! The configuration of the distributed roles (`logstream ingest|processor|query`): a TOML file
//! (what the operator renders into a ConfigMap) with a few flags and environment variables on
//! top for what differs per pod or per environment. Everything is validated at start, and
//! every error names the setting and where it came from.
//!
//! ```toml
//! [kafka]
//! bootstrap = "kafka-0.kafka:9092,kafka-1.kafka:9092"
//! topic = "logstream"
//! partitions = 12
//!
//! [storage]
//! url = "s3://logs/prod"
//! options = { aws_region = "eu-west-1" }
//!
//! [processor]
//! flush_interval = "30s"
//!
//! [retention]
//! default_days = 30
//! rules = [{ tenant = "audit", class = "default", days = 365 }]
//! ```

use logstream_bus::kafka::KafkaConfig;
use logstream_store::retention::RetentionPolicy;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole file. Unknown keys are errors, so a typo does not silently fall back to a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub ingest: IngestSection,
    #[serde(default)]
    pub processor: ProcessorSection,
    #[serde(default)]
    pub query: QuerySection,
    #[serde(default)]
    pub retention: RetentionPolicy,
    #[serde(default)]
    pub agent: AgentSection,
    /// The tenants' LogPipelines the operator merged in (valid ones only), each with its
    /// namespace (its tenant) and generation. The processor and the agent read them.
    #[serde(default)]
    pub pipelines: Vec<PipelineConfig>,
}

/// `[agent]`: where the node agent reads pod logs and where it ships them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// The ingest API the agent pushes to, e.g. `http://main-ingest.logging.svc:3100`.
    pub ingest_url: String,
    /// Directory kubelet writes pod logs to.
    pub pods_dir: PathBuf,
    /// Where the agent keeps its checkpoints (a hostPath in the DaemonSet).
    pub state_dir: PathBuf,
    /// Serves /metrics, /healthz and /readyz.
    pub listen: SocketAddr,
    /// Ship only the pods LogPipelines select (needs the Kubernetes API); the operator sets it.
    pub kubernetes: bool,
}

impl Default for AgentSection {
    fn default() -> Self {
        Self {
            ingest_url: "http://127.0.0.1:3100".into(),
            pods_dir: "/var/log/pods".into(),
            state_dir: "/var/lib/logstream-agent".into(),
            listen: ([0, 0, 0, 0], 3103).into(),
            kubernetes: false,
        }
    }
}

/// One `[[pipelines]]` entry: a LogPipeline as its tenant wrote it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The LogPipeline's namespace, which is also the tenant its logs belong to.
    pub namespace: String,
    pub name: String,
    /// `metadata.generation` of the LogPipeline this entry was rendered from.
    #[serde(default)]
    pub generation: i64,
    pub spec: logstream_crds::LogPipelineSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `s3://bucket/prefix`, `gs://...`, `az://...`, `file:///dir` or a directory.
    #[serde(default)]
    pub url: String,
    /// object_store options (`aws_endpoint`, `aws_region`, ...); see docs/storage.md.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    pub listen: SocketAddr,
    pub default_tenant: String,
    pub max_body_bytes: usize,
    /// This replica's name: its Kafka transactional id. Defaults to `$HOSTNAME` (the pod name
    /// in a StatefulSet, stable across restarts, which is what fences a restarted replica's
    /// predecessor).
    pub instance: Option<String>,
}

impl Default for IngestSection {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 3100).into(),
            default_tenant: "default".into(),
            max_body_bytes: 16 * 1024 * 1024,
            instance: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorSection {
    /// Serves /metrics, /healthz and /readyz.
    pub listen: SocketAddr,
    /// Kafka consumer group of the processors.
    pub group: String,
    #[serde(with = "human_duration")]
    pub flush_interval: Duration,
    pub flush_line_bytes: u64,
    /// Retention class files are written under.
    pub class: String,
}

impl Default for ProcessorSection {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 3101).into(),
            group: "logstream-processors".into(),
            flush_interval: Duration::from_secs(30),
            flush_line_bytes: 64 * 1024 * 1024,
            class: "default".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySection {
    pub listen: SocketAddr,
    pub default_tenant: String,
}

impl Default for QuerySection {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 3102).into(),
            default_tenant: "default".into(),
        }
    }
}

/// Flags and environment variables every distributed role takes; they override the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RoleArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "LOGSTREAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address this role's HTTP server listens on.
    #[arg(long, env = "LOGSTREAM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Kafka bootstrap servers (host:port,...).
    #[arg(long, env = "LOGSTREAM_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: Option<String>,
    /// Kafka topic of the bus.
    #[arg(long, env = "LOGSTREAM_KAFKA_TOPIC")]
    pub kafka_topic: Option<String>,
    /// Object storage URL for Parquet files.
    #[arg(long, env = "LOGSTREAM_STORAGE")]
    pub storage: Option<String>,
    /// This replica's name (ingest: the Kafka transactional id). Defaults to $HOSTNAME.
    #[arg(long, env = "LOGSTREAM_INSTANCE")]
    pub instance: Option<String>,
    /// Processor: flush at the latest this long after the oldest unflushed event (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub flush_interval: Option<Duration>,
}

/// Which role is starting, for validation messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Processor,
    Query,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Processor => "processor",
            Role::Query => "query",
        }
    }
}

impl Config {
    /// Reads and checks the configuration of `role`: file, then flags and environment.
    pub fn load(role: Role, args: &RoleArgs) -> Result<Self, String> {
        let mut cfg = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        cfg.apply(role, args);
        cfg.validate(role)?;
        Ok(cfg)
    }

    /// Parses a configuration file.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    fn apply(&mut self, role: Role, args: &RoleArgs) {
        if let Some(l) = args.listen {
            match role {
                Role::Ingest => self.ingest.listen = l,
                Role::Processor => self.processor.listen = l,
                Role::Query => self.query.listen = l,
            }
        }
        if let Some(b) = &args.kafka_bootstrap {
            self.kafka.bootstrap = b.clone();
        }
        if let Some(t) = &args.kafka_topic {
            self.kafka.topic = t.clone();
        }
        if let Some(s) = &args.storage {
            self.storage.url = s.clone();
        }
        if let Some(i) = &args.instance {
            self.ingest.instance = Some(i.clone());
        }
        if let Some(d) = args.flush_interval {
            self.processor.flush_interval = d;
        }
    }

    /// Checks what `role` needs.
    pub fn validate(&self, role: Role) -> Result<(), String> {
        let r = role.name();
        if self.kafka.bootstrap.trim().is_empty() {
            return Err(format!(
                "kafka.bootstrap is not set: `logstream {r}` needs the Kafka brokers \
                 (set [kafka] bootstrap in the config file, --kafka-bootstrap or LOGSTREAM_KAFKA_BOOTSTRAP)"
            ));
        }
        self.kafka
            .validate()
            .map_err(|e| format!("invalid [kafka] settings: {e}"))?;
        if role != Role::Ingest && self.storage.url.trim().is_empty() {
            return Err(format!(
                "storage.url is not set: `logstream {r}` needs the object storage holding the Parquet files \
                 (set [storage] url in the config file, --storage or LOGSTREAM_STORAGE; e.g. s3://bucket/prefix)"
            ));
        }
        if role == Role::Processor {
            let p = &self.processor;
            if p.flush_interval.is_zero() {
                return Err("processor.flush_interval must be more than 0".into());
            }
            if p.flush_line_bytes < 1024 {
                return Err(format!(
                    "processor.flush_line_bytes is {}: it must be at least 1024",
                    p.flush_line_bytes
                ));
            }
            if p.group.trim().is_empty() {
                return Err("processor.group must not be empty".into());
            }
            self.retention
                .validate()
                .map_err(|e| format!("invalid [retention] settings: {e}"))?;
        }
        if role == Role::Ingest && self.ingest.max_body_bytes < 1024 {
            return Err(format!(
                "ingest.max_body_bytes is {}: it must be at least 1024",
                self.ingest.max_body_bytes
            ));
        }
        Ok(())
    }

    /// The ingest replica's name (its transactional id).
    pub fn instance(&self) -> Result<String, String> {
        self.ingest
            .instance
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                "ingest.instance is not set and $HOSTNAME is empty: give each ingest replica a stable, \
                 unique name (--instance or LOGSTREAM_INSTANCE; the pod name in Kubernetes)"
                    .to_string()
            })
    }
}

/// Durations written as "30s", "5m", "1h 30m".
mod human_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let cfg = Config::parse(
            r#"
            [kafka]
            bootstrap = "k1:9092,k2:9092"
            topic = "logs"
            partitions = 6

            [storage]
            url = "s3://bucket/prefix"
            options = { aws_region = "eu-west-1" }

            [processor]
            flush_interval = "1m 30s"
            group = "g"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.kafka.bootstrap, "k1:9092,k2:9092");
        assert_eq!(cfg.kafka.partitions, 6);
        assert_eq!(cfg.storage.options["aws_region"], "eu-west-1");
        assert_eq!(cfg.processor.flush_interval, Duration::from_secs(90));
        assert_eq!(cfg.processor.group, "g");
        assert_eq!(cfg.query.listen.port(), 3102);
        cfg.validate(Role::Processor).unwrap();
    }

    #[test]
    fn a_typo_is_an_error_naming_the_key() {
        let err = Config::parse("[processor]\nflush_intervall = \"30s\"\n").unwrap_err();
        assert!(err.contains("flush_intervall"), "{err}");
        let err = Config::parse("[processor]\nflush_interval = \"soon\"\n").unwrap_err();
        assert!(err.contains("invalid duration \"soon\""), "{err}");
    }

    #[test]
    fn missing_settings_are_named_with_how_to_set_them() {
        let err = Config::load(Role::Ingest, &RoleArgs::default()).unwrap_err();
        assert!(err.contains("kafka.bootstrap is not set"), "{err}");
        assert!(err.contains("LOGSTREAM_KAFKA_BOOTSTRAP"), "{err}");
        let args = RoleArgs {
            kafka_bootstrap: Some("127.0.0.1:9092".into()),
            ..RoleArgs::default()
        };
        Config::load(Role::Ingest, &args).unwrap();
        let err = Config::load(Role::Query, &args).unwrap_err();
        assert!(err.contains("storage.url is not set"), "{err}");
    }

    /// What the operator renders is what the roles read: every component's file parses and
    /// passes its role's checks, pipelines included.
    #[test]
    fn configs_rendered_by_the_operator_parse() {
        use logstream_crds::logpipeline::{LogPipelineSpec, Parser, PipelineRetention};
        use logstream_crds::logstream::{BusSpec, KafkaBus};
        use logstream_operator::build::config::{PipelineEntry, render};
        use logstream_operator::names::{Component, Names};

        let mut spec = logstream_crds::LogStreamSpec::new("s3://logs/prod");
        spec.bus = BusSpec {
            kafka: Some(KafkaBus::new(["kafka:9092"])),
            embedded: None,
        };
        spec.storage
            .options
            .insert("aws_region".into(), "eu-west-1".into());
        let mut pipeline = LogPipelineSpec::new("main");
        pipeline.parsers = vec![Parser::regex("^(?P<level>[A-Z]+)")];
        pipeline.retention = Some(PipelineRetention { days: 14 });
        pipeline.selector.match_labels = Some([("app".into(), "web".into())].into());
        let pipelines = [PipelineEntry {
            namespace: "shop".into(),
            name: "web".into(),
            generation: 3,
            spec: pipeline.clone(),
        }];
        let names = Names {
            instance: "main".into(),
            namespace: "logging".into(),
        };
        for (component, role) in [
            (Component::Ingest, Some(Role::Ingest)),
            (Component::Processor, Some(Role::Processor)),
            (Component::Query, Some(Role::Query)),
            (Component::Agent, None),
        ] {
            let text = render(&names, &spec, &pipelines, component).unwrap();
            let cfg = Config::parse(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
            if let Some(role) = role {
                cfg.validate(role).unwrap_or_else(|e| panic!("{text}\n{e}"));
            }
            match component {
                Component::Query => {
                    assert_eq!(cfg.pipelines.len(), 1, "the tail applies them too");
                    assert_eq!(cfg.pipelines[0].spec, pipeline);
                }
                Component::Processor => {
                    assert_eq!(cfg.processor.group, "logstream-logging-main");
                    assert_eq!(cfg.retention.default_days, Some(14));
                    assert_eq!(cfg.storage.options["aws_region"], "eu-west-1");
                    assert_eq!(
                        cfg.pipelines,
                        [PipelineConfig {
                            namespace: "shop".into(),
                            name: "web".into(),
                            generation: 3,
                            spec: pipeline.clone(),
                        }]
                    );
                }
                Component::Agent => {
                    assert_eq!(cfg.agent.ingest_url, "http://main-ingest.logging.svc:3100");
                    assert!(
                        cfg.agent.kubernetes,
                        "the DaemonSet's agent selects pods through LogPipelines"
                    );
                    assert_eq!(cfg.pipelines.len(), 1);
                    assert!(
                        cfg.pipelines[0].spec.parsers.is_empty(),
                        "the agent gets the selector and labels, not the rules"
                    );
                }
                _ => assert!(cfg.pipelines.is_empty()),
            }
        }
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[kafka]\nbootstrap = \"a:1\"\n[storage]\nurl = \"/tmp/x\"\n[processor]\nflush_interval = \"30s\"\n",
        )
        .unwrap();
        let args = RoleArgs {
            config: Some(path),
            kafka_bootstrap: Some("b:2".into()),
            listen: Some("127.0.0.1:9999".parse().unwrap()),
            flush_interval: Some(Duration::from_secs(5)),
            ..RoleArgs::default()
        };
        let cfg = Config::load(Role::Processor, &args).unwrap();
        assert_eq!(cfg.kafka.bootstrap, "b:2");
        assert_eq!(cfg.processor.listen.port(), 9999);
        assert_eq!(cfg.processor.flush_interval, Duration::from_secs(5));
        assert_eq!(cfg.storage.url, "/tmp/x");
    }
}
