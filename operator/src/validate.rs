//! What the API server's schema cannot check: regexes that compile, label selectors the API
//! would accept, retention within what the LogStream allows. Pure functions; the message of
//! each finding names the field and says what to do.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use logstream_crds::conditions::reasons;
use logstream_crds::logpipeline::{LogPipelineSpec, Parser};
use logstream_crds::logstream::LogStreamSpec;
use logstream_processor::pipeline::plan::PipelineSource;

/// Why a spec cannot be used: a condition reason and a message for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

impl Invalid {
    fn spec(message: String) -> Self {
        Self {
            reason: reasons::INVALID_SPEC,
            message,
        }
    }
}

/// Checks a LogPipeline on its own and against the LogStream it names.
pub fn pipeline(spec: &LogPipelineSpec, log_stream: &LogStreamSpec) -> Result<(), Invalid> {
    for (i, parser) in spec.parsers.iter().enumerate() {
        if let Parser::Regex(regex) = parser {
            let compiled = regex::Regex::new(&regex.pattern).map_err(|e| {
                Invalid::spec(format!(
                    "spec.parsers[{i}].regex.pattern does not compile: {}",
                    one_line(&e.to_string())
                ))
            })?;
            if compiled.capture_names().flatten().next().is_none() {
                return Err(Invalid::spec(format!(
                    "spec.parsers[{i}].regex.pattern has no named capture group: name the parts \
                     to keep, e.g. (?P<level>[A-Z]+)"
                )));
            }
        }
    }
    if let Some(m) = &spec.multiline {
        regex::Regex::new(&m.first_line).map_err(|e| {
            Invalid::spec(format!(
                "spec.multiline.firstLine does not compile: {}",
                one_line(&e.to_string())
            ))
        })?;
    }
    selector(&spec.selector, "spec.selector").map_err(Invalid::spec)?;
    // Everything else the processors will compile, compiled the same way here, so a
    // pipeline the operator accepts is one they can run.
    logstream_processor::pipeline::plan::Pipeline::compile(&PipelineSource {
        namespace: String::new(),
        name: String::new(),
        generation: 0,
        spec: spec.clone(),
    })
    .map_err(|e| Invalid::spec(format!("{}: {}", e.field, one_line(&e.message))))?;
    for (i, route) in spec.routes.iter().enumerate() {
        let maximum = log_stream.retention.maximum_days;
        if route.days > maximum {
            return Err(Invalid {
                reason: reasons::RETENTION_ABOVE_MAXIMUM,
                message: format!(
                    "spec.routes[{i}].days is {} but the LogStream keeps logs at most {maximum} \
                     days (its spec.retention.maximumDays): lower it, or ask the LogStream's admin",
                    route.days
                ),
            });
        }
    }
    if let Some(retention) = &spec.retention {
        let maximum = log_stream.retention.maximum_days;
        if retention.days > maximum {
            return Err(Invalid {
                reason: reasons::RETENTION_ABOVE_MAXIMUM,
                message: format!(
                    "spec.retention.days is {} but the LogStream keeps logs at most {maximum} days \
                     (its spec.retention.maximumDays): lower it, or ask the LogStream's admin",
                    retention.days
                ),
            });
        }
    }
    Ok(())
}

/// A label selector as the API server validates one (metav1 `ValidateLabelSelector`).
pub fn selector(selector: &LabelSelector, field: &str) -> Result<(), String> {
    for (key, value) in selector.match_labels.iter().flatten() {
        label_key(key).map_err(|e| format!("{field}.matchLabels key {key:?}: {e}"))?;
        label_value(value)
            .map_err(|e| format!("{field}.matchLabels[{key:?}] value {value:?}: {e}"))?;
    }
    for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        label_key(&expr.key).map_err(|e| format!("{at}.key {:?}: {e}", expr.key))?;
        let values = expr.values.as_deref().unwrap_or_default();
        match expr.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "{at}: operator {} needs at least one value",
                    expr.operator
                ));
            }
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!("{at}: operator {} takes no values", expr.operator));
            }
            "Exists" | "DoesNotExist" => {}
            other => {
                return Err(format!(
                    "{at}.operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                ));
            }
        }
        for value in values {
            label_value(value).map_err(|e| format!("{at} value {value:?}: {e}"))?;
        }
    }
    Ok(())
}

/// `[prefix/]name`: prefix a DNS subdomain, name up to 63 of alphanumerics, `-`, `_`, `.`,
/// starting and ending alphanumeric.
fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let dns_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(dns_label) {
            return Err(format!(
                "prefix {prefix:?} must be a DNS subdomain (lowercase, e.g. example.com)"
            ));
        }
    }
    if name.is_empty() {
        return Err("the name part must not be empty".into());
    }
    label_value(name)
}

/// Up to 63 of alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric (or empty).
fn label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err("longer than 63 characters".into());
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !value.chars().all(ok_char) {
        return Err("only letters, digits, '-', '_' and '.' are allowed".into());
    }
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !edge(value.chars().next()) || !edge(value.chars().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use logstream_crds::logpipeline::PipelineRetention;

    fn log_stream() -> LogStreamSpec {
        LogStreamSpec::new("s3://logs")
    }

    #[test]
    fn a_plain_pipeline_is_valid() {
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![Parser::regex("^(?P<level>[A-Z]+) (?P<msg>.*)$")];
        spec.selector.match_labels = Some([("app.kubernetes.io/name".into(), "web".into())].into());
        assert_eq!(pipeline(&spec, &log_stream()), Ok(()));
    }

    #[test]
    fn a_regex_that_does_not_compile_names_the_parser() {
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![Parser::regex("(?P<ok>a)"), Parser::regex("(?P<level>[A-Z+")];
        let err = pipeline(&spec, &log_stream()).unwrap_err();
        assert_eq!(err.reason, reasons::INVALID_SPEC);
        assert!(
            err.message
                .starts_with("spec.parsers[1].regex.pattern does not compile: "),
            "{}",
            err.message
        );
        assert!(!err.message.contains('\n'), "{}", err.message);
    }

    #[test]
    fn look_around_is_refused_with_the_regex_crates_words() {
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![Parser::regex("(?P<x>a(?=b))")];
        let err = pipeline(&spec, &log_stream()).unwrap_err();
        assert!(err.message.contains("look-around"), "{}", err.message);
    }

    #[test]
    fn a_regex_without_named_groups_is_refused() {
        // The CEL rule only looks for "(?P<" in the text; an escaped one slips through it.
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![Parser::regex(r"\(?P<x>")];
        let err = pipeline(&spec, &log_stream()).unwrap_err();
        assert!(
            err.message.contains("no named capture group"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_multiline_first_line_that_does_not_compile_is_named() {
        let mut spec = LogPipelineSpec::new("main");
        spec.multiline = Some(logstream_crds::logpipeline::Multiline {
            first_line: "^(\\d{4}".into(),
            max_lines: None,
            max_bytes: None,
            timeout_millis: None,
        });
        let e = pipeline(&spec, &log_stream()).unwrap_err();
        assert!(
            e.message
                .starts_with("spec.multiline.firstLine does not compile: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn retention_above_the_maximum_has_its_own_reason() {
        let mut spec = LogPipelineSpec::new("main");
        spec.retention = Some(PipelineRetention { days: 31 });
        let err = pipeline(&spec, &log_stream()).unwrap_err();
        assert_eq!(err.reason, reasons::RETENTION_ABOVE_MAXIMUM);
        assert!(
            err.message
                .contains("spec.retention.days is 31 but the LogStream keeps logs at most 30 days"),
            "{}",
            err.message
        );
        spec.retention = Some(PipelineRetention { days: 30 });
        assert_eq!(pipeline(&spec, &log_stream()), Ok(()));
    }

    #[test]
    fn the_processors_compiler_names_what_it_refuses_and_route_days_are_bounded() {
        use logstream_crds::logpipeline::{RouteRule, TimestampRule};
        let mut spec = LogPipelineSpec::new("main");
        spec.timestamp = Some(TimestampRule {
            field: "ts".into(),
            format: "%Q nonsense".into(),
        });
        let err = pipeline(&spec, &log_stream()).unwrap_err();
        assert_eq!(err.reason, reasons::INVALID_SPEC);
        assert!(
            err.message.starts_with("spec.timestamp.format: "),
            "{}",
            err.message
        );
        let mut spec = LogPipelineSpec::new("main");
        spec.match_streams = Some("{app=}".into());
        let err = pipeline(&spec, &log_stream()).unwrap_err();
        assert!(
            err.message.starts_with("spec.match: not a stream selector"),
            "{}",
            err.message
        );
        let mut spec = LogPipelineSpec::new("main");
        spec.routes = vec![RouteRule {
            match_streams: None,
            line_matches: Some("audit".into()),
            fields: Default::default(),
            class: "audit".into(),
            days: 31,
        }];
        let err = pipeline(&spec, &log_stream()).unwrap_err();
        assert_eq!(err.reason, reasons::RETENTION_ABOVE_MAXIMUM);
        assert!(
            err.message
                .starts_with("spec.routes[0].days is 31 but the LogStream keeps logs at most 30"),
            "{}",
            err.message
        );
        spec.routes[0].days = 30;
        assert_eq!(pipeline(&spec, &log_stream()), Ok(()));
    }

    #[test]
    fn selectors_are_checked_like_the_api_server_does() {
        let expr = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        };
        let with = |e: LabelSelectorRequirement| LabelSelector {
            match_expressions: Some(vec![e]),
            ..LabelSelector::default()
        };
        assert_eq!(
            selector(&with(expr("tier", "In", &["web", "db"])), "s"),
            Ok(())
        );
        assert_eq!(selector(&with(expr("tier", "Exists", &[])), "s"), Ok(()));
        assert_eq!(
            selector(&with(expr("tier", "In", &[])), "s").unwrap_err(),
            "s.matchExpressions[0]: operator In needs at least one value"
        );
        assert_eq!(
            selector(&with(expr("tier", "Exists", &["x"])), "s").unwrap_err(),
            "s.matchExpressions[0]: operator Exists takes no values"
        );
        assert_eq!(
            selector(&with(expr("tier", "Equals", &["x"])), "s").unwrap_err(),
            "s.matchExpressions[0].operator \"Equals\" is not one of In, NotIn, Exists, DoesNotExist"
        );
        let labels = |k: &str, v: &str| LabelSelector {
            match_labels: Some([(k.to_owned(), v.to_owned())].into()),
            ..LabelSelector::default()
        };
        assert_eq!(selector(&labels("example.com/app", "a.b-c_d"), "s"), Ok(()));
        assert_eq!(
            selector(&labels("app", "-web"), "s").unwrap_err(),
            "s.matchLabels[\"app\"] value \"-web\": must start and end with a letter or digit"
        );
        assert_eq!(
            selector(&labels("Example.com/app", "x"), "s").unwrap_err(),
            "s.matchLabels key \"Example.com/app\": prefix \"Example.com\" must be a DNS subdomain (lowercase, e.g. example.com)"
        );
        assert!(selector(&labels("app", &"x".repeat(64)), "s").is_err());
    }
}
