//! Queries that parse, and the trees they parse to.

mod common;

use common::*;
use logstream_logql::{
    AggOp, CmpOp, Expr, FilterOp, LogExpr, MatchOp, MetricExpr, RangeFunc, parse, parse_selector,
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
    assert_eq!(
        m.log_expr().line_filters().collect::<Vec<_>>(),
        vec![&filter(FilterOp::Contains, "x")]
    );
}

/// `{a="b"}` followed by `stages`.
fn ab_piped(stages: Vec<logstream_logql::Stage>) -> Expr {
    log_query(piped(vec![eq("a", "b")], stages))
}

#[test]
fn label_filters_compare_strings_with_every_match_operator() {
    check(vec![
        (
            r#"{a="b"} | level="error""#,
            ab_piped(vec![label(cond("level", MatchOp::Eq, "error"))]),
        ),
        (
            r#"{a="b"} | level != "debug""#,
            ab_piped(vec![label(cond("level", MatchOp::Neq, "debug"))]),
        ),
        (
            r#"{a="b"} | detected_level=~`warn|error`"#,
            ab_piped(vec![label(cond(
                "detected_level",
                MatchOp::Re,
                "warn|error",
            ))]),
        ),
        (
            r#"{a="b"} | path!~"/health.*""#,
            ab_piped(vec![label(cond("path", MatchOp::Nre, "/health.*"))]),
        ),
        (
            r#"{a="b"} | __error__="""#,
            ab_piped(vec![label(cond("__error__", MatchOp::Eq, ""))]),
        ),
        (
            // Keywords elsewhere are plain names here.
            r#"{a="b"} | by="x" | or="y" | and!="" | offset=~"z""#,
            ab_piped(vec![
                label(cond("by", MatchOp::Eq, "x")),
                label(cond("or", MatchOp::Eq, "y")),
                label(cond("and", MatchOp::Neq, "")),
                label(cond("offset", MatchOp::Re, "z")),
            ]),
        ),
    ]);
}

#[test]
fn label_filters_compare_numbers() {
    check(vec![
        (
            r#"{a="b"} | status >= 500"#,
            ab_piped(vec![label(num("status", CmpOp::Gte, 500.0))]),
        ),
        (
            r#"{a="b"} | status>500 | status<600 | status<=599"#,
            ab_piped(vec![
                label(num("status", CmpOp::Gt, 500.0)),
                label(num("status", CmpOp::Lt, 600.0)),
                label(num("status", CmpOp::Lte, 599.0)),
            ]),
        ),
        (
            r#"{a="b"} | status == 200 | status = 201 | status != 204"#,
            ab_piped(vec![
                label(num("status", CmpOp::Eq, 200.0)),
                label(num("status", CmpOp::Eq, 201.0)),
                label(num("status", CmpOp::Neq, 204.0)),
            ]),
        ),
        (
            r#"{a="b"} | t > -1.5 | t < +2 | t >= 0.25 | t <= 1e3"#,
            ab_piped(vec![
                label(num("t", CmpOp::Gt, -1.5)),
                label(num("t", CmpOp::Lt, 2.0)),
                label(num("t", CmpOp::Gte, 0.25)),
                label(num("t", CmpOp::Lte, 1000.0)),
            ]),
        ),
    ]);
}

#[test]
fn label_filter_conditions_join_with_and_comma_or_and_parentheses() {
    let (x, y, z) = (
        || cond("x", MatchOp::Eq, "1"),
        || num("y", CmpOp::Gt, 2.0),
        || cond("z", MatchOp::Re, "3"),
    );
    check(vec![
        (
            r#"{a="b"} | x="1" and y>2"#,
            ab_piped(vec![label(and(x(), y()))]),
        ),
        (
            r#"{a="b"} | x="1", y>2, z=~"3""#,
            ab_piped(vec![label(and(and(x(), y()), z()))]),
        ),
        (
            r#"{a="b"} | x="1" or y>2 and z=~"3""#,
            ab_piped(vec![label(or(x(), and(y(), z())))]),
        ),
        (
            r#"{a="b"} | x="1" and y>2 or z=~"3""#,
            ab_piped(vec![label(or(and(x(), y()), z()))]),
        ),
        (
            r#"{a="b"} | (x="1" or y>2) and z=~"3""#,
            ab_piped(vec![label(and(or(x(), y()), z()))]),
        ),
        (
            r#"{a="b"} | ((x="1")), (y>2 or z=~"3")"#,
            ab_piped(vec![label(and(x(), or(y(), z())))]),
        ),
        (
            r#"{a="b"} | x="1" or y>2 or z=~"3""#,
            ab_piped(vec![label(or(or(x(), y()), z()))]),
        ),
    ]);
}

#[test]
fn label_filters_interleave_with_line_filters_in_order() {
    check(vec![(
        r#"{a="b"} |= "GET" | status>=500 != "health" | x="1" |~ "ms$""#,
        ab_piped(vec![
            line(FilterOp::Contains, "GET"),
            label(num("status", CmpOp::Gte, 500.0)),
            line(FilterOp::NotContains, "health"),
            label(cond("x", MatchOp::Eq, "1")),
            line(FilterOp::Match, "ms$"),
        ]),
    )]);
}

#[test]
fn label_filters_go_inside_range_aggregations() {
    let filtered = piped(
        vec![eq("a", "b")],
        vec![
            line(FilterOp::Contains, "x"),
            label(num("status", CmpOp::Gte, 500.0)),
        ],
    );
    let sum_by = |inner| metric(agg(AggOp::Sum, by(&["status"]), inner));
    check(vec![
        (
            r#"sum by (status) (count_over_time({a="b"} |= "x" | status >= 500 [5m]))"#,
            sum_by(range(
                RangeFunc::CountOverTime,
                filtered.clone(),
                5 * MINUTE,
            )),
        ),
        (
            r#"sum by (status) (count_over_time({a="b"}[5m] |= "x" | status >= 500))"#,
            sum_by(range(
                RangeFunc::CountOverTime,
                filtered.clone(),
                5 * MINUTE,
            )),
        ),
        (
            r#"sum by (status) (count_over_time(({a="b"} |= "x" | status >= 500)[5m]))"#,
            sum_by(range(RangeFunc::CountOverTime, filtered, 5 * MINUTE)),
        ),
    ]);
}
