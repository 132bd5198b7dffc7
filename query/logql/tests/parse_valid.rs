//! Queries that parse, and the trees they parse to.

mod common;

use common::*;
use logstream_logql::{
    AggOp, Expr, FilterOp, LogExpr, MatchOp, MetricExpr, RangeFunc, parse, parse_selector,
};

fn check(cases: Vec<(&str, Expr)>) {
    for (query, want) in cases {
        match parse(query) {
            Ok(got) => assert_eq!(got, want, "{query}"),
            Err(err) => panic!("{query}: {err}"),
        }
    }
}

fn log_query(l: LogExpr) -> Expr {
    Expr::Log(l)
}

#[test]
fn stream_selectors_parse_every_match_operator() {
    check(vec![
        (
            r#"{app="api"}"#,
            log_query(log(vec![eq("app", "api")], vec![])),
        ),
        (
            r#"{app="api", env!="dev", pod=~"api-.*", ns!~"kube-.*"}"#,
            log_query(log(
                vec![
                    eq("app", "api"),
                    matcher("env", MatchOp::Neq, "dev"),
                    matcher("pod", MatchOp::Re, "api-.*"),
                    matcher("ns", MatchOp::Nre, "kube-.*"),
                ],
                vec![],
            )),
        ),
        (
            r#"{a!=""}"#,
            log_query(log(vec![matcher("a", MatchOp::Neq, "")], vec![])),
        ),
        (
            r#"{a=~".+", b=""}"#,
            log_query(log(
                vec![matcher("a", MatchOp::Re, ".+"), eq("b", "")],
                vec![],
            )),
        ),
        (
            r#"{_x1="v", A_b="w"}"#,
            log_query(log(vec![eq("_x1", "v"), eq("A_b", "w")], vec![])),
        ),
    ]);
}

#[test]
fn whitespace_newlines_and_comments_are_ignored() {
    let want = log_query(log(
        vec![eq("app", "api"), eq("env", "prod")],
        vec![filter(FilterOp::Contains, "x")],
    ));
    check(vec![
        (
            "{\n  app = \"api\" ,\n\tenv=\"prod\"\n}\n|=\"x\"\n",
            want.clone(),
        ),
        (
            "{app=\"api\", # the service\n env=\"prod\"} |= \"x\" # done",
            want,
        ),
    ]);
}

#[test]
fn strings_unescape_go_style_and_backticks_are_raw() {
    check(vec![
        (
            r#"{a="q\"b\\s\n\t\u00e9"}"#,
            log_query(log(vec![eq("a", "q\"b\\s\n\té")], vec![])),
        ),
        (
            r"{a=~`api-\d+`} |~ `\w+ \[x\]`",
            log_query(log(
                vec![matcher("a", MatchOp::Re, r"api-\d+")],
                vec![filter(FilterOp::Match, r"\w+ \[x\]")],
            )),
        ),
        (
            r#"{app="日本語 😀"}"#,
            log_query(log(vec![eq("app", "日本語 😀")], vec![])),
        ),
    ]);
}

#[test]
fn keywords_are_plain_label_names_inside_selectors() {
    check(vec![(
        r#"{by="x", offset="y", sum="z", or="w"}"#,
        log_query(log(
            vec![
                eq("by", "x"),
                eq("offset", "y"),
                eq("sum", "z"),
                eq("or", "w"),
            ],
            vec![],
        )),
    )]);
}

#[test]
fn line_filters_chain_in_order() {
    check(vec![
        (
            r#"{a="b"} |= "error" != "timeout" |~ "status=5\\d\\d" !~ "(?i)debug""#,
            log_query(log(
                vec![eq("a", "b")],
                vec![
                    filter(FilterOp::Contains, "error"),
                    filter(FilterOp::NotContains, "timeout"),
                    filter(FilterOp::Match, r"status=5\d\d"),
                    filter(FilterOp::NotMatch, "(?i)debug"),
                ],
            )),
        ),
        (
            r#"{a="b"}|=""|="x""#,
            log_query(log(
                vec![eq("a", "b")],
                vec![
                    filter(FilterOp::Contains, ""),
                    filter(FilterOp::Contains, "x"),
                ],
            )),
        ),
    ]);
}

#[test]
fn range_aggregations_parse_with_range_and_offset() {
    let filtered = log(vec![eq("a", "b")], vec![filter(FilterOp::Contains, "x")]);
    check(vec![
        (
            r#"count_over_time({a="b"}[5m])"#,
            metric(range(RangeFunc::CountOverTime, ab(), 5 * MINUTE)),
        ),
        (
            r#"rate({a="b"} |= "x" [1h30m])"#,
            metric(range(RangeFunc::Rate, filtered.clone(), 90 * MINUTE)),
        ),
        (
            r#"bytes_over_time({a="b"}[500ms])"#,
            metric(range(RangeFunc::BytesOverTime, ab(), SECOND / 2)),
        ),
        (
            r#"bytes_rate({a="b"}[1d])"#,
            metric(range(RangeFunc::BytesRate, ab(), 24 * HOUR)),
        ),
        (
            r#"count_over_time({a="b"}[5m] offset 1h)"#,
            metric(MetricExpr::Range {
                func: RangeFunc::CountOverTime,
                log: ab(),
                range_ns: 5 * MINUTE,
                offset_ns: HOUR,
            }),
        ),
        (
            r#"rate( { a = "b" } [ 10s ] )"#,
            metric(range(RangeFunc::Rate, ab(), 10 * SECOND)),
        ),
    ]);
}

#[test]
fn range_aggregations_accept_loki_operand_forms() {
    let filtered = log(vec![eq("a", "b")], vec![filter(FilterOp::Contains, "x")]);
    check(vec![
        (
            r#"rate({a="b"}[5m] |= "x")"#,
            metric(range(RangeFunc::Rate, filtered.clone(), 5 * MINUTE)),
        ),
        (
            r#"rate(({a="b"} |= "x")[5m])"#,
            metric(range(RangeFunc::Rate, filtered.clone(), 5 * MINUTE)),
        ),
        (
            r#"rate(({a="b"}[5m]))"#,
            metric(range(RangeFunc::Rate, ab(), 5 * MINUTE)),
        ),
        (
            r#"rate(((({a="b"} |= "x")[5m])))"#,
            metric(range(RangeFunc::Rate, filtered.clone(), 5 * MINUTE)),
        ),
        (
            r#"rate((({a="b"}))[5m] offset 0s)"#,
            metric(range(RangeFunc::Rate, ab(), 5 * MINUTE)),
        ),
        (
            r#"rate({a="b"}[5m] offset 2m |= "x")"#,
            metric(MetricExpr::Range {
                func: RangeFunc::Rate,
                log: filtered,
                range_ns: 5 * MINUTE,
                offset_ns: 2 * MINUTE,
            }),
        ),
    ]);
}

#[test]
fn vector_aggregations_take_grouping_before_or_after() {
    let rate = || range(RangeFunc::Rate, ab(), 5 * MINUTE);
    check(vec![
        (
            r#"sum(rate({a="b"}[5m]))"#,
            metric(agg(AggOp::Sum, None, rate())),
        ),
        (
            r#"sum by (a, b) (rate({a="b"}[5m]))"#,
            metric(agg(AggOp::Sum, by(&["a", "b"]), rate())),
        ),
        (
            r#"sum(rate({a="b"}[5m])) by (a)"#,
            metric(agg(AggOp::Sum, by(&["a"]), rate())),
        ),
        (
            r#"avg without (pod) (rate({a="b"}[5m]))"#,
            metric(agg(AggOp::Avg, without(&["pod"]), rate())),
        ),
        (
            r#"min(rate({a="b"}[5m])) without (x,)"#,
            metric(agg(AggOp::Min, without(&["x"]), rate())),
        ),
        (
            r#"count by () (rate({a="b"}[5m]))"#,
            metric(agg(AggOp::Count, by(&[]), rate())),
        ),
        (
            r#"max by(a)(rate({a="b"}[5m]))"#,
            metric(agg(AggOp::Max, by(&["a"]), rate())),
        ),
    ]);
}

#[test]
fn aggregations_nest() {
    let count = range(RangeFunc::CountOverTime, ab(), MINUTE);
    check(vec![
        (
            r#"sum(count_over_time({a="b"}[1m]))"#,
            metric(agg(AggOp::Sum, None, count.clone())),
        ),
        (
            r#"max by (a) (sum by (a,b) (count_over_time({a="b"}[1m])))"#,
            metric(agg(
                AggOp::Max,
                by(&["a"]),
                agg(AggOp::Sum, by(&["a", "b"]), count.clone()),
            )),
        ),
        (
            r#"avg(min(count(count_over_time({a="b"}[1m]))))"#,
            metric(agg(
                AggOp::Avg,
                None,
                agg(AggOp::Min, None, agg(AggOp::Count, None, count)),
            )),
        ),
    ]);
}

#[test]
fn parentheses_wrap_whole_expressions() {
    let rate = || range(RangeFunc::Rate, ab(), 5 * MINUTE);
    check(vec![
        (r#"({a="b"})"#, log_query(ab())),
        (r#"(rate({a="b"}[5m]))"#, metric(rate())),
        (
            r#"sum((rate({a="b"}[5m])))"#,
            metric(agg(AggOp::Sum, None, rate())),
        ),
        (
            r#"((sum(rate({a="b"}[5m]))))"#,
            metric(agg(AggOp::Sum, None, rate())),
        ),
    ]);
}

#[test]
fn parse_selector_reads_a_lone_selector() {
    assert_eq!(
        parse_selector(r#"{app="x", env="prod"}"#),
        Ok(vec![eq("app", "x"), eq("env", "prod")])
    );
    assert_eq!(
        parse_selector(r#" { job =~ "a|b" } "#),
        Ok(vec![matcher("job", MatchOp::Re, "a|b")])
    );
}

#[test]
fn metric_expr_exposes_its_log_query() {
    let Ok(Expr::Metric(m)) = parse(r#"sum(max(rate({a="b"} |= "x" [1m])))"#) else {
        panic!("not a metric query");
    };
    assert_eq!(m.log_expr().filters, vec![filter(FilterOp::Contains, "x")]);
}
