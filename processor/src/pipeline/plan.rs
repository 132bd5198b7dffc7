//! Tenants' LogPipelines compiled once into what the processor runs on every event.
//!
//! [`Plans`] holds every tenant's compiled pipelines at one version. A processor reads events
//! from the bus in chunks and processes a whole chunk with the one `Plans` it holds when the
//! chunk starts: a new version takes over at a chunk boundary, which is a bus offset
//! boundary, so each event is processed by exactly one version, and the stored row names it
//! (`pipeline` column, `<name>@<generation>`).
//!
//! Which pipeline processes a stream: the one named by the stream's `logpipeline` label (the
//! node agent sets it to the pipeline that selected the pod), else the first of the tenant's
//! pipelines, by name, whose `match` selector (none: every stream) selects the stream's
//! labels. At most one pipeline processes a stream, so two pipelines never fight over an
//! event.
//!
//! What a pipeline does with an event, in this order: redact the line; run the parsers (each
//! adds the fields it reads; a line none could read keeps `__error__`/`__error_details__`);
//! drop fields; take the time and the level from fields; apply the first drop rule that
//! selects the event (sampling by a hash of the event, so a replay decides the same way);
//! choose the retention class from the first route that selects it; copy fields into labels
//! within each label's bound of distinct values.
//!
//! Cost bounds (how one tenant's rules cannot stall another's events): Rust's `regex` runs in
//! time linear in the line (no catastrophic backtracking) and every regex is compiled with a
//! size limit ([`REGEX_SIZE_LIMIT`]); at most 32 parsers, 16 redactions, 32 drop and 16 route
//! rules run per event; and each tenant's share of a chunk has a time budget
//! ([`Budget`], checked before each event and between parsers): once spent, the tenant's
//! remaining events of the chunk are stored unparsed (but redacted: redaction always runs)
//! with `__error__ = PipelineBudgetExceeded` and counted, so a chunk's other tenants wait at
//! most the budget plus one parser's run on one line, per tenant ahead of them.

use super::level::{self, Level, Numeric};
use super::parse::{Fields, Parser};
use super::time::TimeFormat;
use logstream_bus::Labels;
use logstream_crds::logpipeline::{
    DropRule, LevelRule, LogPipelineSpec, NumericLevels, Parser as ParserSpec, RouteRule,
};
use logstream_logql::Matcher;
use regex::Regex;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest compiled size of a tenant's regular expression.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The stream label by which the node agent names the pipeline that selected a pod.
pub const PIPELINE_LABEL: &str = "logpipeline";
/// The retention class of events no route selects.
pub const DEFAULT_CLASS: &str = "default";
/// Field names read for the level when a pipeline does not name one.
const LEVEL_FIELDS: [&str; 5] = ["level", "severity", "lvl", "loglevel", "log_level"];
/// Stored for a field-label value past the label's bound.
pub const OVERFLOW_VALUE: &str = "__overflow__";
pub const ERROR: &str = "__error__";
pub const ERROR_DETAILS: &str = "__error_details__";
/// `__error__` of an event stored unparsed because its tenant's budget was spent.
pub const BUDGET_EXCEEDED: &str = "PipelineBudgetExceeded";

/// A pipeline as the tenant declared it, with where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSource {
    /// Namespace: the tenant.
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub spec: LogPipelineSpec,
}

/// Why a pipeline does not compile: the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LogPipeline {namespace}/{name}: {field}: {message}")]
pub struct PlanError {
    pub namespace: String,
    pub name: String,
    /// The spec path, e.g. `spec.parsers[1].regex.pattern`.
    pub field: String,
    pub message: String,
}

/// Every tenant's compiled pipelines at one version.
#[derive(Debug, Default)]
pub struct Plans {
    tenants: HashMap<String, TenantPlan>,
}

impl Plans {
    /// Compiles every pipeline; the first that does not compile is the error.
    pub fn compile(sources: &[PipelineSource]) -> Result<Self, PlanError> {
        let mut tenants: HashMap<String, TenantPlan> = HashMap::new();
        for s in sources {
            let p = Pipeline::compile(s)?;
            tenants
                .entry(s.namespace.clone())
                .or_default()
                .pipelines
                .push(p);
        }
        for t in tenants.values_mut() {
            t.pipelines.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(Self { tenants })
    }

    /// The pipelines of `tenant`, if it has any.
    pub fn tenant(&self, tenant: &str) -> Option<&TenantPlan> {
        self.tenants.get(tenant)
    }

    /// `(tenant, pipeline, generation)` of every compiled pipeline.
    pub fn generations(&self) -> Vec<(String, String, i64)> {
        let mut out: Vec<_> = self
            .tenants
            .iter()
            .flat_map(|(t, plan)| {
                plan.pipelines
                    .iter()
                    .map(move |p| (t.clone(), p.name.clone(), p.generation))
            })
            .collect();
        out.sort();
        out
    }
}

/// One tenant's pipelines, by name.
#[derive(Debug, Default)]
pub struct TenantPlan {
    pipelines: Vec<Pipeline>,
}

impl TenantPlan {
    /// The pipeline that processes the stream with `labels`, if any.
    pub fn for_stream(&self, labels: &Labels) -> Option<StreamPlan<'_>> {
        let pipeline = match labels.get(PIPELINE_LABEL) {
            Some(name) => self.pipelines.iter().find(|p| p.name == name)?,
            None => self.pipelines.iter().find(|p| {
                p.matchers
                    .as_ref()
                    .is_none_or(|m| logstream_logql::matches_labels(m, labels))
            })?,
        };
        Some(StreamPlan {
            drops: pipeline
                .drops
                .iter()
                .map(|d| d.when.selects_stream(labels))
                .collect(),
            routes: pipeline
                .routes
                .iter()
                .map(|r| r.when.selects_stream(labels))
                .collect(),
            pipeline,
        })
    }
}

/// A pipeline with what its rules decide from a stream's labels alone.
#[derive(Debug)]
pub struct StreamPlan<'p> {
    pub pipeline: &'p Pipeline,
    drops: Vec<bool>,
    routes: Vec<bool>,
}

/// One compiled LogPipeline.
#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    pub generation: i64,
    /// `<name>@<generation>`, as stored in each row.
    pub tag: String,
    matchers: Option<Vec<Matcher>>,
    redact: Vec<(Regex, String)>,
    parsers: Vec<(Parser, &'static str)>,
    drop_fields: HashSet<String>,
    timestamp: Option<(String, TimeFormat)>,
    level: LevelSource,
    drops: Vec<Drop>,
    routes: Vec<Route>,
    field_labels: Vec<FieldLabel>,
    /// Static labels added to streams pushed through the API (the agent adds them itself).
    labels: BTreeMap<String, String>,
}

#[derive(Debug)]
enum LevelSource {
    Auto,
    Field(String, Numeric),
}

#[derive(Debug)]
struct Conditions {
    matchers: Option<Vec<Matcher>>,
    line: Option<Regex>,
    fields: Vec<(String, Regex)>,
}

impl Conditions {
    fn selects_stream(&self, labels: &Labels) -> bool {
        self.matchers
            .as_ref()
            .is_none_or(|m| logstream_logql::matches_labels(m, labels))
    }

    fn selects_event(&self, line: &str, fields: &Fields<'_>) -> bool {
        self.line.as_ref().is_none_or(|r| r.is_match(line))
            && self
                .fields
                .iter()
                .all(|(name, r)| r.is_match(field(fields, name).unwrap_or("")))
    }
}

#[derive(Debug)]
struct Drop {
    when: Conditions,
    /// Events kept out of 2^32, by their hash.
    keep_below: u64,
}

#[derive(Debug)]
struct Route {
    when: Conditions,
    class: String,
}

#[derive(Debug)]
struct FieldLabel {
    field: String,
    label: String,
    max_values: usize,
    /// Values admitted so far (shared by every chunk this plan processes).
    seen: Mutex<HashSet<String>>,
}

/// The value of the last field named `name` (a later parser's field replaces an earlier one).
fn field<'f>(fields: &'f Fields<'_>, name: &str) -> Option<&'f str> {
    fields
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_ref())
}

fn regex(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// A regex that must match a whole value.
fn anchored(pattern: &str) -> Result<Regex, String> {
    regex(&format!("^(?:{pattern})$"))
}

impl Pipeline {
    /// Compiles one pipeline; errors name the spec field.
    pub fn compile(s: &PipelineSource) -> Result<Self, PlanError> {
        let err = |field: String, message: String| PlanError {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            field,
            message,
        };
        let selector = |field: String, text: &Option<String>| -> Result<_, PlanError> {
            text.as_deref()
                .map(|t| {
                    logstream_logql::parse_selector(t)
                        .map_err(|e| err(field.clone(), format!("not a stream selector: {e}")))
                })
                .transpose()
        };
        let spec = &s.spec;
        let matchers = selector("spec.match".into(), &spec.match_streams)?;
        let mut redact = Vec::new();
        for (i, r) in spec.redact.iter().enumerate() {
            let re = regex(&r.pattern).map_err(|e| err(format!("spec.redact[{i}].pattern"), e))?;
            redact.push((
                re,
                r.replacement.clone().unwrap_or_else(|| "<redacted>".into()),
            ));
        }
        let mut parsers = Vec::new();
        for (i, p) in spec.parsers.iter().enumerate() {
            let compiled = match p {
                ParserSpec::Json(j) => Ok((
                    Parser::json(j.separator.as_deref().unwrap_or("_")),
                    "JSONParserErr",
                )),
                ParserSpec::Logfmt(_) => Ok((Parser::logfmt(), "LogfmtParserErr")),
                ParserSpec::Regex(r) => Parser::regex(&r.pattern)
                    .map(|p| (p, "RegexpParserErr"))
                    .map_err(|e| err(format!("spec.parsers[{i}].regex.pattern"), e.to_string())),
                ParserSpec::Pattern(r) => Parser::pattern(&r.pattern)
                    .map(|p| (p, "PatternParserErr"))
                    .map_err(|e| err(format!("spec.parsers[{i}].pattern.pattern"), e.to_string())),
            }?;
            parsers.push(compiled);
        }
        let timestamp = spec
            .timestamp
            .as_ref()
            .map(|t| {
                TimeFormat::parse_spec(&t.format)
                    .map(|f| (t.field.clone(), f))
                    .map_err(|e| err("spec.timestamp.format".into(), e.to_string()))
            })
            .transpose()?;
        let level = match &spec.level {
            None => LevelSource::Auto,
            Some(LevelRule { field, numeric }) => LevelSource::Field(
                field.clone(),
                match numeric {
                    Some(NumericLevels::Otel) => Numeric::Otel,
                    _ => Numeric::Syslog,
                },
            ),
        };
        let conditions = |path: String,
                          matches: &Option<String>,
                          line: &Option<String>,
                          fields: &BTreeMap<String, String>|
         -> Result<Conditions, PlanError> {
            let matchers = selector(format!("{path}.match"), matches)?;
            let line = line
                .as_deref()
                .map(|l| regex(l).map_err(|e| err(format!("{path}.lineMatches"), e)))
                .transpose()?;
            let mut compiled = Vec::new();
            for (name, pattern) in fields {
                let re = anchored(pattern).map_err(|e| err(format!("{path}.fields.{name}"), e))?;
                compiled.push((name.clone(), re));
            }
            Ok(Conditions {
                matchers,
                line,
                fields: compiled,
            })
        };
        let mut drops = Vec::new();
        for (i, d) in spec.drop.iter().enumerate() {
            let DropRule {
                match_streams,
                line_matches,
                fields,
                keep_ratio,
            } = d;
            let ratio = keep_ratio.unwrap_or(0.0);
            if !(0.0..=1.0).contains(&ratio) {
                return Err(err(
                    format!("spec.drop[{i}].keepRatio"),
                    format!("must be between 0 and 1, not {ratio}"),
                ));
            }
            drops.push(Drop {
                when: conditions(
                    format!("spec.drop[{i}]"),
                    match_streams,
                    line_matches,
                    fields,
                )?,
                keep_below: (ratio * f64::from(u32::MAX) + ratio) as u64,
            });
        }
        let mut routes = Vec::new();
        for (i, r) in spec.routes.iter().enumerate() {
            let RouteRule {
                match_streams,
                line_matches,
                fields,
                class,
                days: _,
            } = r;
            if class == DEFAULT_CLASS {
                return Err(err(
                    format!("spec.routes[{i}].class"),
                    "`default` is the class of events no route selects; name another".into(),
                ));
            }
            routes.push(Route {
                when: conditions(
                    format!("spec.routes[{i}]"),
                    match_streams,
                    line_matches,
                    fields,
                )?,
                class: class.clone(),
            });
        }
        let field_labels = spec
            .field_labels
            .iter()
            .map(|f| FieldLabel {
                field: f.field.clone(),
                label: f.label.clone().unwrap_or_else(|| f.field.clone()),
                max_values: f
                    .max_values
                    .unwrap_or(logstream_crds::logpipeline::FieldLabel::DEFAULT_MAX_VALUES)
                    as usize,
                seen: Mutex::new(HashSet::new()),
            })
            .collect();
        Ok(Self {
            name: s.name.clone(),
            generation: s.generation,
            tag: format!("{}@{}", s.name, s.generation),
            matchers,
            redact,
            parsers,
            drop_fields: spec.drop_fields.iter().cloned().collect(),
            timestamp,
            level,
            drops,
            routes,
            field_labels,
            labels: spec.labels.clone(),
        })
    }

    /// Static labels this pipeline adds to a stream that lacks them.
    pub fn static_labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }
}

/// What happened to one event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub matched: u64,
    pub parsed: u64,
    pub failed: u64,
    pub dropped: u64,
    pub redacted: u64,
    pub over_budget: u64,
    pub overflowed_labels: u64,
}

/// An event as its pipeline left it, to be stored.
#[derive(Debug)]
pub struct Processed<'a> {
    pub line: Cow<'a, str>,
    pub ts_ns: i64,
    pub time_parsed: bool,
    pub attributes: Fields<'a>,
    pub level: Option<Level>,
    pub class: &'a str,
    /// Labels copied from fields, `(label, value)`, in the pipeline's order.
    pub labels: Vec<(&'a str, String)>,
}

/// A time budget for one tenant's share of a chunk.
#[derive(Debug)]
pub struct Budget {
    started: Instant,
    limit: Duration,
    spent: bool,
}

impl Budget {
    /// How long one tenant's events of a chunk may take in its pipelines.
    pub const DEFAULT: Duration = Duration::from_millis(200);

    pub fn new(limit: Duration) -> Self {
        Self {
            started: Instant::now(),
            limit,
            spent: false,
        }
    }

    fn spent(&mut self) -> bool {
        if !self.spent && self.started.elapsed() > self.limit {
            self.spent = true;
        }
        self.spent
    }
}

impl StreamPlan<'_> {
    /// Runs the pipeline on one event: `None` when a drop rule drops it.
    pub fn process<'a>(
        &'a self,
        line: &'a str,
        ts_ns: i64,
        budget: &mut Budget,
        counts: &mut Counts,
    ) -> Option<Processed<'a>> {
        let p = self.pipeline;
        counts.matched += 1;
        // Redact first, and always (over budget too): nothing below, stored or parsed, sees
        // what was hidden.
        let mut text: Cow<'a, str> = Cow::Borrowed(line);
        for (re, with) in &p.redact {
            if let Cow::Owned(changed) = re.replace_all(&text, with.as_str()) {
                text = Cow::Owned(changed);
            }
        }
        if matches!(text, Cow::Owned(_)) {
            counts.redacted += 1;
        }
        let over_budget = |line: Cow<'a, str>, counts: &mut Counts| {
            counts.over_budget += 1;
            Some(Processed {
                line,
                ts_ns,
                time_parsed: false,
                attributes: vec![(Cow::Borrowed(ERROR), Cow::Borrowed(BUDGET_EXCEEDED))],
                level: None,
                class: DEFAULT_CLASS,
                labels: Vec::new(),
            })
        };
        if budget.spent() {
            return over_budget(text, counts);
        }
        let mut out = Processed {
            line: text,
            ts_ns,
            time_parsed: false,
            attributes: Vec::new(),
            level: None,
            class: DEFAULT_CLASS,
            labels: Vec::new(),
        };
        // Parsing borrows from the line; a redacted line is owned by `out`, so parse a copy
        // of the borrow's lifetime only when the line was not redacted.
        let source: &'a str = match &out.line {
            Cow::Borrowed(b) => b,
            Cow::Owned(_) => "",
        };
        let mut fields: Fields<'a> = Vec::new();
        if !p.parsers.is_empty() {
            let mut first_error: Option<(&'static str, String)> = None;
            let mut any = false;
            for (parser, kind) in &p.parsers {
                // Checked between parsers too: one event's overrun is one parser's run.
                if budget.spent() {
                    return over_budget(out.line, counts);
                }
                let result = match &out.line {
                    Cow::Borrowed(_) => parser.parse(source, &mut fields),
                    Cow::Owned(owned) => {
                        let mut owned_fields: Fields<'_> = Vec::new();
                        let r = parser.parse(owned, &mut owned_fields);
                        fields.extend(owned_fields.into_iter().map(|(k, v)| {
                            (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned()))
                        }));
                        r
                    }
                };
                match result {
                    Ok(()) => any = true,
                    Err(e) if first_error.is_none() => first_error = Some((kind, e.to_string())),
                    Err(_) => {}
                }
            }
            if any {
                counts.parsed += 1;
            } else if let Some((kind, details)) = first_error {
                counts.failed += 1;
                fields.push((Cow::Borrowed(ERROR), Cow::Borrowed(kind)));
                fields.push((Cow::Borrowed(ERROR_DETAILS), Cow::Owned(details)));
            }
        }
        if !p.drop_fields.is_empty() {
            fields.retain(|(k, _)| !p.drop_fields.contains(k.as_ref()));
        }
        if let Some((name, format)) = &p.timestamp
            && let Some(ts) = field(&fields, name).and_then(|v| format.parse(v, ts_ns))
        {
            out.ts_ns = ts;
            out.time_parsed = true;
        }
        out.level = match &p.level {
            LevelSource::Field(name, numeric) => {
                field(&fields, name).and_then(|v| level::normalize(v, *numeric))
            }
            LevelSource::Auto => LEVEL_FIELDS
                .iter()
                .find_map(|n| field(&fields, n))
                .and_then(|v| level::normalize(v, Numeric::Syslog)),
        };
        let line_now: &str = &out.line;
        for (i, d) in p.drops.iter().enumerate() {
            if self.drops[i] && d.when.selects_event(line_now, &fields) {
                if sample(out.ts_ns, line_now) >= d.keep_below {
                    counts.dropped += 1;
                    return None;
                }
                break;
            }
        }
        for (i, r) in p.routes.iter().enumerate() {
            if self.routes[i] && r.when.selects_event(line_now, &fields) {
                out.class = &r.class;
                break;
            }
        }
        for f in &p.field_labels {
            let Some(value) = field(&fields, &f.field) else {
                continue;
            };
            let mut seen = crate::lock(&f.seen);
            let value = if seen.contains(value) {
                value.to_string()
            } else if seen.len() < f.max_values {
                seen.insert(value.to_string());
                value.to_string()
            } else {
                counts.overflowed_labels += 1;
                OVERFLOW_VALUE.to_string()
            };
            out.labels.push((&f.label, value));
        }
        out.attributes = fields;
        Some(out)
    }
}

/// A number in `0..2^32` that depends only on the event.
fn sample(ts_ns: i64, line: &str) -> u64 {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(line.as_bytes(), ts_ns as u64);
    h >> 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstream_crds::logpipeline::{
        FieldLabel as FieldLabelSpec, JsonParser, LogfmtParser, PatternParser, Redaction,
        TimestampRule,
    };

    fn source(name: &str, spec: LogPipelineSpec) -> PipelineSource {
        PipelineSource {
            namespace: "shop".into(),
            name: name.into(),
            generation: 3,
            spec,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn run<'a>(sp: &'a StreamPlan<'_>, line: &'a str) -> Option<Processed<'a>> {
        sp.process(
            line,
            1_700_000_000_000_000_000,
            &mut Budget::new(Duration::from_secs(60)),
            &mut Counts::default(),
        )
    }

    fn attrs(p: &Processed<'_>) -> Vec<(String, String)> {
        p.attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_agents_label_names_the_pipeline_else_the_first_match_by_name() {
        let mut web = LogPipelineSpec::new("main");
        web.match_streams = Some(r#"{app="web"}"#.into());
        let mut all = LogPipelineSpec::new("main");
        all.match_streams = None;
        let plans = Plans::compile(&[source("web", web), source("zz-all", all)]).unwrap();
        let t = plans.tenant("shop").unwrap();
        let name = |l: &Labels| t.for_stream(l).map(|s| s.pipeline.name.clone());
        assert_eq!(name(&labels(&[("app", "web")])).as_deref(), Some("web"));
        assert_eq!(name(&labels(&[("app", "db")])).as_deref(), Some("zz-all"));
        assert_eq!(
            name(&labels(&[("app", "web"), ("logpipeline", "zz-all")])).as_deref(),
            Some("zz-all"),
            "the agent's choice wins over match"
        );
        assert_eq!(
            name(&labels(&[("app", "web"), ("logpipeline", "gone")])),
            None,
            "a pipeline that no longer exists processes nothing"
        );
        assert!(plans.tenant("bank").is_none());
        assert_eq!(
            plans.generations(),
            [
                ("shop".to_string(), "web".to_string(), 3),
                ("shop".to_string(), "zz-all".to_string(), 3)
            ]
        );
    }

    #[test]
    fn parse_redact_drop_fields_time_and_level_in_order() {
        let mut spec = LogPipelineSpec::new("main");
        spec.redact = vec![Redaction {
            pattern: r"token=\w+".into(),
            replacement: Some("token=<redacted>".into()),
        }];
        spec.parsers = vec![ParserSpec::Logfmt(LogfmtParser {})];
        spec.drop_fields = vec!["secret".into()];
        spec.timestamp = Some(TimestampRule {
            field: "ts".into(),
            format: "rfc3339".into(),
        });
        let plans = Plans::compile(&[source("p", spec)]).unwrap();
        let sp = plans
            .tenant("shop")
            .unwrap()
            .for_stream(&labels(&[("a", "b")]))
            .unwrap();
        let mut counts = Counts::default();
        let line = "ts=2024-05-01T10:00:00.5Z level=WARNING msg=hi secret=x token=abc";
        let p = sp
            .process(
                line,
                7,
                &mut Budget::new(Duration::from_secs(60)),
                &mut counts,
            )
            .unwrap();
        assert_eq!(
            p.line,
            "ts=2024-05-01T10:00:00.5Z level=WARNING msg=hi secret=x token=<redacted>"
        );
        assert_eq!(
            attrs(&p),
            [
                ("ts".to_string(), "2024-05-01T10:00:00.5Z".to_string()),
                ("level".into(), "WARNING".into()),
                ("msg".into(), "hi".into()),
                ("token".into(), "<redacted>".into()),
            ]
        );
        assert_eq!(p.ts_ns, 1_714_557_600_500_000_000);
        assert!(p.time_parsed);
        assert_eq!(p.level, Some(Level::Warn));
        assert_eq!(p.class, DEFAULT_CLASS);
        assert_eq!(
            counts,
            Counts {
                matched: 1,
                parsed: 1,
                redacted: 1,
                ..Counts::default()
            }
        );
        // A time that does not fit keeps the arrival time, flagged.
        let p = sp
            .process(
                "ts=yesterday",
                7,
                &mut Budget::new(Duration::from_secs(60)),
                &mut counts,
            )
            .unwrap();
        assert_eq!((p.ts_ns, p.time_parsed), (7, false));
    }

    #[test]
    fn a_line_no_parser_reads_is_kept_with_the_error() {
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![
            ParserSpec::Json(JsonParser::default()),
            ParserSpec::Pattern(PatternParser {
                pattern: "<level>: <msg>".into(),
            }),
        ];
        let plans = Plans::compile(&[source("p", spec)]).unwrap();
        let sp = plans
            .tenant("shop")
            .unwrap()
            .for_stream(&labels(&[("a", "b")]))
            .unwrap();
        // The second parser reads it: no error.
        let p = run(&sp, "INFO: started").unwrap();
        assert_eq!(
            attrs(&p),
            [
                ("level".to_string(), "INFO".to_string()),
                ("msg".into(), "started".into())
            ]
        );
        let p = run(&sp, "just text").unwrap();
        assert_eq!(p.line, "just text");
        let a = attrs(&p);
        assert_eq!(a[0], (ERROR.to_string(), "JSONParserErr".to_string()));
        assert_eq!(a[1].0, ERROR_DETAILS);
        assert!(!a[1].1.is_empty());
        assert_eq!(p.level, None);
    }

    #[test]
    fn drop_rules_sample_the_same_events_every_time_and_routes_pick_a_class() {
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![ParserSpec::Logfmt(LogfmtParser {})];
        spec.drop = vec![
            DropRule {
                fields: [("level".to_string(), "debug".to_string())].into(),
                ..DropRule::default()
            },
            DropRule {
                line_matches: Some("healthz".into()),
                keep_ratio: Some(0.25),
                ..DropRule::default()
            },
        ];
        spec.routes = vec![RouteRule {
            match_streams: None,
            line_matches: None,
            fields: [("user".to_string(), ".+".to_string())].into(),
            class: "audit".into(),
            days: 400,
        }];
        let plans = Plans::compile(&[source("p", spec)]).unwrap();
        let sp = plans
            .tenant("shop")
            .unwrap()
            .for_stream(&labels(&[("a", "b")]))
            .unwrap();
        assert!(run(&sp, "level=debug x=1").is_none());
        assert!(
            run(&sp, "level=debugging").is_some(),
            "fields match in full"
        );
        assert_eq!(run(&sp, "level=info user=ann").unwrap().class, "audit");
        assert_eq!(run(&sp, "level=info user=").unwrap().class, DEFAULT_CLASS);
        let lines: Vec<String> = (0..4000).map(|i| format!("GET /healthz {i}")).collect();
        let kept = |lines: &[String]| -> Vec<usize> {
            lines
                .iter()
                .enumerate()
                .filter(|(_, l)| run(&sp, l).is_some())
                .map(|(i, _)| i)
                .collect()
        };
        let first = kept(&lines);
        assert!(
            (800..1200).contains(&first.len()),
            "kept {} of 4000",
            first.len()
        );
        assert_eq!(kept(&lines), first, "a replay keeps the same events");
    }

    #[test]
    fn field_labels_are_bounded_per_label() {
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![ParserSpec::Logfmt(LogfmtParser {})];
        spec.field_labels = vec![FieldLabelSpec {
            field: "status".into(),
            label: Some("code".into()),
            max_values: Some(2),
        }];
        let plans = Plans::compile(&[source("p", spec)]).unwrap();
        let sp = plans
            .tenant("shop")
            .unwrap()
            .for_stream(&labels(&[("a", "b")]))
            .unwrap();
        let mut counts = Counts::default();
        let mut got = Vec::new();
        for line in [
            "status=200",
            "status=500",
            "status=404",
            "status=200",
            "other=1",
        ] {
            let p = sp
                .process(
                    line,
                    0,
                    &mut Budget::new(Duration::from_secs(60)),
                    &mut counts,
                )
                .unwrap();
            got.push(
                p.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            got,
            [
                vec!["code=200".to_string()],
                vec!["code=500".into()],
                vec!["code=__overflow__".into()],
                vec!["code=200".into()],
                vec![],
            ]
        );
        assert_eq!(counts.overflowed_labels, 1);
    }

    #[test]
    fn a_spent_budget_stores_the_rest_unparsed_and_counts_it() {
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![ParserSpec::Logfmt(LogfmtParser {})];
        let plans = Plans::compile(&[source("p", spec)]).unwrap();
        let sp = plans
            .tenant("shop")
            .unwrap()
            .for_stream(&labels(&[("a", "b")]))
            .unwrap();
        let mut budget = Budget::new(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        let mut counts = Counts::default();
        let p = sp.process("a=1", 5, &mut budget, &mut counts).unwrap();
        assert_eq!(p.line, "a=1");
        assert_eq!(
            attrs(&p),
            [(ERROR.to_string(), "PipelineBudgetExceeded".to_string())]
        );
        assert_eq!(counts.over_budget, 1);
    }

    #[test]
    fn compile_errors_name_the_field() {
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![
            ParserSpec::Logfmt(LogfmtParser {}),
            ParserSpec::regex("(?P<a>["),
        ];
        let e = Plans::compile(&[source("p", spec)]).unwrap_err();
        assert_eq!(e.field, "spec.parsers[1].regex.pattern");
        assert!(
            e.to_string()
                .starts_with("LogPipeline shop/p: spec.parsers[1].regex.pattern: "),
            "{e}"
        );
        let mut spec = LogPipelineSpec::new("main");
        spec.match_streams = Some("app=web".into());
        let e = Plans::compile(&[source("p", spec)]).unwrap_err();
        assert_eq!(e.field, "spec.match");
        let mut spec = LogPipelineSpec::new("main");
        spec.timestamp = Some(TimestampRule {
            field: "t".into(),
            format: "".into(),
        });
        assert_eq!(
            Plans::compile(&[source("p", spec)]).unwrap_err().field,
            "spec.timestamp.format"
        );
        let mut spec = LogPipelineSpec::new("main");
        spec.routes = vec![RouteRule {
            match_streams: None,
            line_matches: Some("(".into()),
            fields: BTreeMap::new(),
            class: "audit".into(),
            days: 1,
        }];
        assert_eq!(
            Plans::compile(&[source("p", spec)]).unwrap_err().field,
            "spec.routes[0].lineMatches"
        );
    }
}
