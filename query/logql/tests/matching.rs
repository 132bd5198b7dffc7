//! What matchers and line filters accept.

mod common;

use common::*;
use logstream_bus::Labels;
use logstream_logql::{FilterOp, MatchOp, Matcher, matches_labels, parse, parse_selector};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .expect("unique names")
}

#[test]
fn each_match_operator_compares_the_value() {
    // (op, matcher value, label value, matches)
    let cases = [
        (MatchOp::Eq, "api", "api", true),
        (MatchOp::Eq, "api", "API", false),
        (MatchOp::Eq, "api", "api2", false),
        (MatchOp::Neq, "api", "api", false),
        (MatchOp::Neq, "api", "web", true),
        (MatchOp::Re, "api|web", "web", true),
        (MatchOp::Re, "api-\\d+", "api-12", true),
        (MatchOp::Re, "api-\\d+", "api-", false),
        (MatchOp::Nre, "api|web", "web", false),
        (MatchOp::Nre, "api|web", "db", true),
        (MatchOp::Re, "(?i)API", "api", true),
    ];
    for (op, value, label, want) in cases {
        let m = matcher("a", op, value);
        assert_eq!(m.matches(label), want, "{m} against {label:?}");
    }
}

#[test]
fn regex_matchers_are_anchored_at_both_ends() {
    let fo = matcher("a", MatchOp::Re, "fo");
    assert!(fo.matches("fo"));
    assert!(!fo.matches("foo"));
    assert!(!fo.matches("xfo"));
    // The alternation stays inside the anchors.
    let alt = matcher("a", MatchOp::Re, "fo|bar");
    assert!(alt.matches("bar"));
    assert!(!alt.matches("foobar"));
    assert!(!alt.matches("barx"));
    // Like Prometheus, `.` matches newlines in label values.
    assert!(matcher("a", MatchOp::Re, ".+").matches("a\nb"));
    assert!(matcher("a", MatchOp::Nre, "fo").matches("foo"));
}

#[test]
fn a_pattern_cannot_escape_the_anchoring_group() {
    assert!(Matcher::new("a", MatchOp::Re, "a)|(b").is_err());
    assert!(Matcher::new("a", MatchOp::Re, "(").is_err());
    assert!(Matcher::new("a", MatchOp::Eq, "(").is_ok());
}

#[test]
fn missing_labels_match_as_empty() {
    let stream = labels(&[("app", "api"), ("env", "prod")]);
    let cases = [
        (r#"{app="api"}"#, true),
        (r#"{app="api", env="prod"}"#, true),
        (r#"{app="api", env="dev"}"#, false),
        (r#"{app="api", team=""}"#, true),
        (r#"{app="api", team!="x"}"#, true),
        (r#"{app="api", team=~".*"}"#, true),
        (r#"{app="api", team=~".+"}"#, false),
        (r#"{app="api", team!~".+"}"#, true),
        (r#"{app=~"a.*", env!~"dev|test"}"#, true),
        (r#"{app="web", env!="x"}"#, false),
    ];
    for (selector, want) in cases {
        let matchers = parse_selector(selector).expect("valid selector");
        assert_eq!(matches_labels(&matchers, &stream), want, "{selector}");
    }
    assert!(matches_labels(&[], &stream));
}

#[test]
fn line_filters_test_substrings_and_unanchored_regexes() {
    // (op, filter value, line, passes)
    let cases = [
        (FilterOp::Contains, "error", "an error occurred", true),
        (FilterOp::Contains, "error", "an ERROR occurred", false),
        (FilterOp::Contains, "", "anything", true),
        (FilterOp::Contains, "a.b", "axb", false),
        (FilterOp::Contains, "a.b", "xa.by", true),
        (FilterOp::NotContains, "debug", "level=debug", false),
        (FilterOp::NotContains, "debug", "level=info", true),
        (FilterOp::Match, "err", "an error", true),
        (FilterOp::Match, "^err", "an error", false),
        (
            FilterOp::Match,
            "status=5\\d\\d",
            "GET / status=503 1ms",
            true,
        ),
        (FilterOp::Match, "(?i)error", "ERROR", true),
        (FilterOp::NotMatch, "5\\d\\d", "status=200", true),
        (FilterOp::NotMatch, "5\\d\\d", "status=502", false),
    ];
    for (op, value, line, want) in cases {
        let f = filter(op, value);
        assert_eq!(f.matches(line), want, "{f} against {line:?}");
    }
}

#[test]
fn a_log_query_passes_lines_that_pass_every_filter() {
    let Ok(logstream_logql::Expr::Log(query)) =
        parse(r#"{a="b"} |= "error" != "timeout" |~ "code=\\d+""#)
    else {
        panic!("not a log query");
    };
    assert!(query.matches_line("error code=42"));
    assert!(!query.matches_line("error timeout code=42"));
    assert!(!query.matches_line("error code=x"));
    assert!(!query.matches_line("info code=42"));
}

#[test]
fn equality_ignores_the_compiled_regex() {
    assert_eq!(
        matcher("a", MatchOp::Re, "x+"),
        matcher("a", MatchOp::Re, "x+")
    );
    assert_ne!(
        matcher("a", MatchOp::Re, "x+"),
        matcher("a", MatchOp::Nre, "x+")
    );
    assert_ne!(
        matcher("a", MatchOp::Re, "x+"),
        matcher("b", MatchOp::Re, "x+")
    );
    assert_eq!(filter(FilterOp::Match, "x"), filter(FilterOp::Match, "x"));
    assert_ne!(
        filter(FilterOp::Match, "x"),
        filter(FilterOp::Contains, "x")
    );
}

/// The label filter stages of a log query.
fn label_filters(query: &str) -> Vec<logstream_logql::LabelFilter> {
    let Ok(logstream_logql::Expr::Log(log)) = parse(query) else {
        panic!("not a log query: {query}");
    };
    log.label_filters().cloned().collect()
}

/// Whether a row with these names passes every label filter stage of `query`.
fn row_passes(query: &str, row: &[(&str, &str)]) -> bool {
    let get = |name: &str| row.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    label_filters(query).iter().all(|f| f.matches(&get))
}

#[test]
fn label_filters_treat_missing_names_as_empty() {
    let with = [("app", "web"), ("trace_id", "abc")];
    let without = [("app", "web")];
    let cases = [
        (r#"{a="b"} | trace_id="""#, false, true),
        (r#"{a="b"} | trace_id!="""#, true, false),
        (r#"{a="b"} | trace_id="abc""#, true, false),
        (r#"{a="b"} | trace_id!="abc""#, false, true),
        (r#"{a="b"} | trace_id=~".*""#, true, true),
        (r#"{a="b"} | trace_id=~".+""#, true, false),
        (r#"{a="b"} | trace_id!~"a.*""#, false, true),
    ];
    for (query, want_with, want_without) in cases {
        assert_eq!(row_passes(query, &with), want_with, "{query} with");
        assert_eq!(row_passes(query, &without), want_without, "{query} without");
    }
}

#[test]
fn label_filter_regexes_match_the_whole_value() {
    let row = [("path", "/api/users")];
    assert!(row_passes(r#"{a="b"} | path=~"/api/.*""#, &row));
    assert!(!row_passes(r#"{a="b"} | path=~"/api""#, &row));
    assert!(!row_passes(r#"{a="b"} | path=~"users""#, &row));
    assert!(row_passes(r#"{a="b"} | path=~"/x|/api/users""#, &row));
    assert!(!row_passes(
        r#"{a="b"} | path=~"/api/users|x$""#,
        &[("path", "/api/usersx")]
    ));
    assert!(row_passes(r#"{a="b"} | path!~"/api""#, &row));
}

#[test]
fn numeric_label_filters_need_a_number() {
    let cases = [
        ("500", true),
        ("503", true),
        ("499.9", false),
        ("5e2", true),
        (" 500 ", true),
        ("5xx", false),
        ("", false),
    ];
    for (value, want) in cases {
        assert_eq!(
            row_passes(r#"{a="b"} | status >= 500"#, &[("status", value)]),
            want,
            "{value:?}"
        );
    }
    assert!(!row_passes(r#"{a="b"} | status >= 500"#, &[]));
    assert!(!row_passes(r#"{a="b"} | status != 500"#, &[]));
    assert!(!row_passes(
        r#"{a="b"} | status != 500"#,
        &[("status", "oops")]
    ));
    assert!(row_passes(
        r#"{a="b"} | status != 500"#,
        &[("status", "404")]
    ));
    assert!(row_passes(
        r#"{a="b"} | t > -1 | t < 0.5 | t == 0"#,
        &[("t", "-0")]
    ));
}

#[test]
fn and_binds_tighter_than_or_and_stages_all_apply() {
    let q = r#"{a="b"} | level="error" or level="warn" and status>=500"#;
    assert!(row_passes(q, &[("level", "error")]));
    assert!(!row_passes(q, &[("level", "warn"), ("status", "200")]));
    assert!(row_passes(q, &[("level", "warn"), ("status", "502")]));
    let q = r#"{a="b"} | (level="error" or level="warn") | status>=500"#;
    assert!(!row_passes(q, &[("level", "error")]));
    assert!(row_passes(q, &[("level", "error"), ("status", "500")]));
    assert!(!row_passes(q, &[("level", "info"), ("status", "500")]));
}
