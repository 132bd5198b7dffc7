//! `LogPipeline` (`logstream.dev/v1alpha1`, namespaced): a tenant's request to collect the logs
//! of some pods in its own namespace into a LogStream, with parsing, static labels and a
//! retention within what the LogStream allows.
//!
//! The tenant is the LogPipeline's namespace, so a selector can only ever reach pods there.
//! What the pipeline does with a line lives under `parsers` and `labels`, and alert rules can
//! join them later as a sibling field without changing either.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a LogPipeline.
#[allow(
    clippy::duplicated_attributes,
    reason = "each printcolumn(...) repeats type_ = ..., which is not one attribute given twice"
)]
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "logstream.dev",
    version = "v1alpha1",
    kind = "LogPipeline",
    plural = "logpipelines",
    namespaced,
    status = "LogPipelineStatus",
    derive = "PartialEq",
    shortname = "lpl",
    doc = "A LogPipeline: which pods of its namespace to collect logs from, how to parse \
           them, which labels to add and how long to keep them, and the LogStream they go to. \
           The logs belong to the tenant named after the namespace.",
    printcolumn(
        name = "LogStream",
        type_ = "string",
        description = "Name of the LogStream the logs go to",
        json_path = ".spec.logStreamRef.name"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the pipeline is collecting",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Applied",
        type_ = "integer",
        description = "The generation every running processor applies",
        json_path = ".status.appliedGeneration"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        description = "Why the pipeline is or is not ready",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct LogPipelineSpec {
    /// The LogStream that receives the logs. Required.
    pub log_stream_ref: LogStreamRef,
    /// Pods of this LogPipeline's namespace whose container logs are collected, by label.
    /// Required; `{}` selects every pod in the namespace. Pods of other namespaces are never
    /// selected.
    pub selector: LabelSelector,
    /// Which streams pushed straight to the ingest API (not by the node agent) this pipeline
    /// processes: a LogQL stream selector such as `{app="web", env=~"prod|staging"}` over the
    /// stream's labels. Streams the agent ships for a pod this pipeline selects carry a
    /// `logpipeline` label naming it and need no `match`. Unset: every stream of the
    /// namespace's tenant. When several pipelines of a tenant could process a stream, the
    /// first by name does.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 4096))]
    pub match_streams: Option<String>,
    /// Parsers applied to each line in this order (up to 32). Each adds the fields it extracts
    /// to the event's attributes, which LogQL label filters (`| status >= 500`) and `by (...)`
    /// read; a later parser's field replaces an earlier one of the same name. A line a parser
    /// cannot read passes to the next one unchanged; a line no parser could read is stored as
    /// it is with the attribute `__error__` (and `__error_details__` saying why). Each entry
    /// sets exactly one of `json`, `logfmt`, `regex` or `pattern`. Default: none, lines are
    /// stored as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub parsers: Vec<Parser>,
    /// Take the event's time from a parsed field. A value that does not fit the format keeps
    /// the time the event arrived with (the stored column `time_parsed` says which was used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampRule>,
    /// Where the event's severity comes from, normalised to trace, debug, info, warn, error
    /// or fatal (LogQL: `detected_level`). Unset: the first of the parsed fields `level`,
    /// `severity`, `lvl`, `loglevel`, `log_level` that is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LevelRule>,
    /// Parsed fields copied into stream labels (up to 8), each with a bound on its distinct
    /// values so a tenant cannot create unbounded streams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub field_labels: Vec<FieldLabel>,
    /// Parsed fields not stored (up to 64 names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub drop_fields: Vec<String>,
    /// Replacements applied to the line before it is parsed or stored (up to 16), in order:
    /// secrets and personal data never reach storage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub redact: Vec<Redaction>,
    /// Events dropped, or sampled, before they are stored (up to 32 rules; the first rule
    /// whose conditions all hold decides).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub drop: Vec<DropRule>,
    /// Events stored under another retention class (up to 16 rules; the first rule whose
    /// conditions all hold decides; other events keep `retention`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub routes: Vec<RouteRule>,
    /// Labels added to every line's stream, besides `namespace`, `pod` and `container` (up to
    /// 32). Names are Prometheus-style: a letter or `_`, then letters, digits or `_`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    #[x_kube(validation = (
        "self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$'))",
        "spec.labels names must start with a letter or _ and hold only letters, digits and _"
    ))]
    pub labels: BTreeMap<String, String>,
    /// How long these logs are kept. Unset: the LogStream's `spec.retention.defaultDays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<PipelineRetention>,
    /// Joins an event written over several lines (a stack trace) into one line before it is
    /// shipped. Applied by the node agent to each container's stdout and stderr separately.
    /// Unset: every line is its own event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiline: Option<Multiline>,
}

/// Multiline joining: which line starts an event, and bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Multiline {
    /// Regular expression (Rust `regex` syntax, as RE2) that matches the first line of an event;
    /// a line that does not match continues the event before it. E.g. `^\d{4}-\d{2}-\d{2}` when
    /// each event starts with a date and its stack trace lines do not.
    #[schemars(length(min = 1, max = 1024))]
    pub first_line: String,
    /// Most lines one event holds; a line past it starts a new event. Default 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 100000))]
    pub max_lines: Option<u32>,
    /// Most bytes one event holds; a line that would pass it starts a new event. Default 262144.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 4194304))]
    pub max_bytes: Option<u32>,
    /// An event ends when no line continued it for this long, in milliseconds. Default 3000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 60000))]
    pub timeout_millis: Option<u32>,
}

impl Multiline {
    pub const DEFAULT_MAX_LINES: u32 = 500;
    pub const DEFAULT_MAX_BYTES: u32 = 256 * 1024;
    pub const DEFAULT_TIMEOUT_MILLIS: u32 = 3000;
}

impl LogPipelineSpec {
    /// Collect every pod of the namespace into the LogStream `name` in the same namespace,
    /// unparsed, with no extra labels and the LogStream's default retention.
    pub fn new(log_stream: impl Into<String>) -> Self {
        Self {
            log_stream_ref: LogStreamRef {
                name: log_stream.into(),
                namespace: None,
            },
            selector: LabelSelector::default(),
            match_streams: None,
            parsers: Vec::new(),
            timestamp: None,
            level: None,
            field_labels: Vec::new(),
            drop_fields: Vec::new(),
            redact: Vec::new(),
            drop: Vec::new(),
            routes: Vec::new(),
            labels: BTreeMap::new(),
            retention: None,
            multiline: None,
        }
    }
}

/// Names a LogStream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogStreamRef {
    /// Name of the LogStream.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the LogStream. Unset: the LogPipeline's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// One way of reading a log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
// The schema's oneOf already allows one member only, but its message names no field.
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.json) ? 1 : 0) + (has(self.logfmt) ? 1 : 0) + (has(self.regex) ? 1 : 0) + (has(self.pattern) ? 1 : 0) == 1",
    "message": "each spec.parsers[] entry must set exactly one of json, logfmt, regex or pattern",
}]))]
pub enum Parser {
    /// Read the line as a JSON object: each field becomes a field of the event, nested
    /// objects flattened (`{"http":{"status":200}}` gives `http_status`). Written `json: {}`.
    Json(JsonParser),
    /// Read the line as logfmt (`level=info msg="GET /" status=200`): each key becomes a
    /// field. Written `logfmt: {}`.
    Logfmt(LogfmtParser),
    /// Match the line against a regular expression: each named capture group becomes a field.
    Regex(RegexParser),
    /// Match the line against a pattern of literal text and `<field>` captures, e.g.
    /// `<ts> <level> [<component>] <_>`: faster than a regex for the common case.
    Pattern(PatternParser),
}

/// Options of the JSON parser.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JsonParser {
    /// Joins the keys of nested objects. Default `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 8))]
    pub separator: Option<String>,
}

/// Options of the logfmt parser (none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogfmtParser {}

/// The regular expression parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegexParser {
    /// The expression, in the syntax of Rust's `regex` crate (RE2-like, no look-around or
    /// back-references), matched anywhere in the line unless anchored with `^`/`$`. Named
    /// groups, `(?P<name>...)` or `(?<name>...)`, become fields; at least one is required.
    /// Example: `^(?P<level>[A-Z]+) (?P<msg>.*)$`. At most 4096 characters.
    #[schemars(length(max = 4096))]
    #[x_kube(
        validation = ("self.size() > 0", "spec.parsers[].regex.pattern must not be empty"),
        validation = (
            "self.size() == 0 || self.contains('(?P<') || self.contains('(?<')",
            "spec.parsers[].regex.pattern must have a named capture group, e.g. (?P<level>[A-Z]+)"
        )
    )]
    pub pattern: String,
}

/// The pattern parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatternParser {
    /// Literal text and captures: `<name>` takes the text up to the next literal (the last
    /// one to the end of the line), `<_>` skips it. Two captures need a literal between them.
    /// Example: `<ip> - - [<ts>] "<method> <path> <_>" <status> <size>`.
    #[schemars(length(min = 3, max = 4096))]
    pub pattern: String,
}

/// Which field holds the event's time, and how it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimestampRule {
    /// The parsed field, e.g. `ts`.
    #[schemars(length(min = 1, max = 256))]
    pub field: String,
    /// `rfc3339`, `unix` (seconds, with a fraction or not), `unix_ms`, `unix_us`, `unix_ns`, or
    /// a strftime pattern such as `%d/%b/%Y:%H:%M:%S %z` (Apache) or `%b %e %H:%M:%S`
    /// (syslog: without a year, the year that puts the time closest to its arrival). A
    /// pattern without a zone is UTC.
    #[schemars(length(min = 1, max = 128))]
    pub format: String,
}

/// Where the severity comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LevelRule {
    /// The parsed field, e.g. `severity`.
    #[schemars(length(min = 1, max = 256))]
    pub field: String,
    /// How a number reads: `syslog` (0 emergency .. 7 debug, the default) or `otel`
    /// (OpenTelemetry SeverityNumber, 1 trace .. 24 fatal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericLevels>,
}

/// How numeric severities read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NumericLevels {
    Syslog,
    Otel,
}

/// A parsed field copied into a stream label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldLabel {
    /// The parsed field.
    #[schemars(length(min = 1, max = 256))]
    pub field: String,
    /// The label's name. Default: the field's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = (
        "self.matches('^[a-zA-Z_][a-zA-Z0-9_]*$')",
        "spec.fieldLabels[].label must start with a letter or _ and hold only letters, digits and _"
    ))]
    pub label: Option<String>,
    /// Distinct values each processor admits for this label (default 20, at most 1000);
    /// later new values are stored as `__overflow__` and counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_values: Option<u32>,
}

impl FieldLabel {
    pub const DEFAULT_MAX_VALUES: u32 = 20;
}

/// A replacement applied to lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redaction {
    /// Regular expression (Rust `regex` syntax) of what to hide, e.g. `(?i)bearer [a-z0-9._-]+`.
    #[schemars(length(min = 1, max = 4096))]
    pub pattern: String,
    /// What replaces each match (`$1`, `${name}` refer to groups). Default `<redacted>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub replacement: Option<String>,
}

/// Drops (or samples) the events its conditions select. The conditions set must all hold;
/// none set selects every event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DropRule {
    /// LogQL stream selector over the stream's labels, e.g. `{container="sidecar"}`.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 4096))]
    pub match_streams: Option<String>,
    /// Regular expression found somewhere in the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub line_matches: Option<String>,
    /// Parsed fields, each with a regular expression its value must match in full (a
    /// missing field reads as ""), e.g. `{level: "debug|trace"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub fields: BTreeMap<String, String>,
    /// Fraction of the selected events kept, from 0 (drop all, the default) to 1. Which
    /// events are kept depends only on the event (its time and line), so a replay decides
    /// the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub keep_ratio: Option<f64>,
}

/// Stores the events its conditions select under a retention class of their own. The
/// conditions set must all hold; none set selects every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// LogQL stream selector over the stream's labels.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 4096))]
    pub match_streams: Option<String>,
    /// Regular expression found somewhere in the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub line_matches: Option<String>,
    /// Parsed fields, each with a regular expression its value must match in full.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub fields: BTreeMap<String, String>,
    /// The retention class: lower-case letters, digits and `-`, e.g. `audit`.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = (
        "self.matches('^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$')",
        "spec.routes[].class must be 1-32 lower-case letters, digits or -, not starting or ending with -"
    ))]
    pub class: String,
    /// Days the class's events are kept; at most the LogStream's `spec.retention.maximumDays`.
    #[schemars(range(min = 1, max = 36500))]
    pub days: i32,
}

impl Parser {
    /// A regex parser with `pattern`.
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self::Regex(RegexParser {
            pattern: pattern.into(),
        })
    }
}

/// Retention of a LogPipeline's logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRetention {
    /// Days the logs are kept. At most the LogStream's `spec.retention.maximumDays`: the
    /// operator checks that (the LogStream may live in another namespace) and reports a
    /// larger value in the `Ready` condition with reason `RetentionAboveMaximum`.
    #[schemars(range(min = 1, max = 36500))]
    pub days: i32,
}

/// Observed state of a LogPipeline, written by the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogPipelineStatus {
    /// The `metadata.generation` the operator last reconciled; conditions describe that
    /// generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the agent collects with this spec), `Progressing` and `Degraded` (the
    /// LogStream is missing, or the spec exceeds what it allows), one entry per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The generation of this spec that every running processor applies (the oldest when
    /// they differ during a change); absent while some running processor applies none. Each
    /// processor reports what it applies through the LogStream's object storage every 30
    /// seconds and when it changes; one silent for 90 seconds counts as gone. Unknown (absent)
    /// when that storage is a local path the operator cannot read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_generation: Option<i64>,
    /// Running processors that apply `metadata.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_processors: Option<i32>,
    /// Running processors (those that reported in the last 90 seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processors: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_yaml_selects_every_pod_without_parsing() {
        let yaml = "
apiVersion: logstream.dev/v1alpha1
kind: LogPipeline
metadata: {name: all, namespace: shop}
spec:
  logStreamRef: {name: main}
  selector: {}
";
        let pipeline: LogPipeline = serde_saphyr::from_str(yaml).expect("parse");
        assert_eq!(pipeline.spec, LogPipelineSpec::new("main"));
    }

    #[test]
    fn parsers_are_one_key_each_in_list_order() {
        let yaml = "
- json: {}
- logfmt: {}
- regex:
    pattern: '^(?P<level>[A-Z]+) (?P<msg>.*)$'
";
        let parsers: Vec<Parser> = serde_saphyr::from_str(yaml).expect("parse");
        assert_eq!(
            parsers,
            [
                Parser::Json(JsonParser::default()),
                Parser::Logfmt(LogfmtParser {}),
                Parser::regex("^(?P<level>[A-Z]+) (?P<msg>.*)$"),
            ]
        );
    }

    #[test]
    fn full_spec_round_trips_through_json_and_yaml() {
        let mut spec = LogPipelineSpec::new("main");
        spec.log_stream_ref.namespace = Some("logstream-system".into());
        spec.selector.match_labels = Some([("app".into(), "checkout".into())].into());
        spec.parsers = vec![
            Parser::Json(JsonParser::default()),
            Parser::regex("(?<code>[0-9]+)"),
        ];
        spec.labels = [("team".into(), "payments".into())].into();
        spec.retention = Some(PipelineRetention { days: 30 });
        let pipeline = LogPipeline::new("checkout", spec);
        let json = serde_json::to_value(&pipeline).expect("to JSON");
        assert_eq!(json["spec"]["parsers"][0], serde_json::json!({"json": {}}));
        assert_eq!(
            serde_json::from_value::<LogPipeline>(json).expect("from JSON"),
            pipeline
        );
        let yaml = serde_saphyr::to_string(&pipeline).expect("to YAML");
        assert_eq!(
            serde_saphyr::from_str::<LogPipeline>(&yaml).expect("from YAML"),
            pipeline
        );
    }

    #[test]
    fn schema_carries_the_cel_rules_with_their_messages() {
        let rules = crate::cel_rules(&crate::crds()[1]);
        let messages: Vec<&str> = rules.iter().map(|(_, m)| m.as_str()).collect();
        for expected in [
            "spec.parsers[].regex.pattern must not be empty",
            "spec.parsers[].regex.pattern must have a named capture group, e.g. (?P<level>[A-Z]+)",
            "each spec.parsers[] entry must set exactly one of json, logfmt, regex or pattern",
            "spec.labels names must start with a letter or _ and hold only letters, digits and _",
        ] {
            assert!(
                messages.contains(&expected),
                "missing {expected:?} in {messages:#?}"
            );
        }
        let crd = &crate::crds()[1];
        let columns: Vec<_> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["LogStream", "Ready", "Applied", "Reason", "Age"]);
    }
}
