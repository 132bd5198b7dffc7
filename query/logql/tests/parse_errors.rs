//! Queries that must not parse: where the error points and what it says.

use logstream_logql::{ParseError, parse, parse_selector};

/// Each case: query, expected (line, col), a substring of the message.
fn check(cases: &[(&str, (usize, usize), &str)]) {
    for (query, (line, col), message) in cases {
        match parse(query) {
            Ok(expr) => panic!("{query:?} parsed as {expr}"),
            Err(err) => {
                assert_eq!((err.line, err.col), (*line, *col), "{query:?}: {err}");
                assert!(err.message.contains(message), "{query:?}: {err}");
            }
        }
    }
}

#[test]
fn display_uses_loki_wording() {
    let err = parse("{}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "parse error at line 1, col 2: syntax error: unexpected }, expecting label name"
    );
    let source: &dyn std::error::Error = &err;
    assert!(source.source().is_none());
}

#[test]
fn selector_syntax_errors_name_found_and_expected() {
    check(&[
        (
            "",
            (1, 1),
            "unexpected end of input, expecting {, ( or a function name",
        ),
        ("{}", (1, 2), "unexpected }, expecting label name"),
        (
            r#"{a="b""#,
            (1, 7),
            "unexpected end of input, expecting , or }",
        ),
        (r#"{a="b",}"#, (1, 8), "unexpected }, expecting label name"),
        ("{a}", (1, 3), "unexpected }, expecting =, !=, =~ or !~"),
        (
            "{a=b}",
            (1, 4),
            r#"unexpected IDENTIFIER "b", expecting STRING"#,
        ),
        (
            r#"{a=="b"}"#,
            (1, 3),
            "unexpected ==, expecting =, !=, =~ or !~",
        ),
        (
            r#"{"a"="b"}"#,
            (1, 2),
            r#"unexpected STRING "a", expecting label name"#,
        ),
        (
            r#"{1a="b"}"#,
            (1, 2),
            r#"unexpected NUMBER "1a", expecting label name"#,
        ),
        (
            r#"{a="b" c="d"}"#,
            (1, 8),
            r#"unexpected IDENTIFIER "c", expecting , or }"#,
        ),
        (r#"{a="b"} @"#, (1, 9), "unexpected character '@'"),
        (r#"{a="\q"}"#, (1, 5), r"invalid escape sequence `\q`"),
        (r#"{a="b}"#, (1, 4), "unterminated string"),
    ]);
}

#[test]
fn selectors_need_a_matcher_that_rejects_empty() {
    let message = "queries require at least one regexp or equality matcher that does not have \
                   an empty-compatible value. For instance, app=~\".*\" does not meet this \
                   requirement, but app=~\".+\" will";
    check(&[
        (r#"{a=""}"#, (1, 1), message),
        (r#"{a=~".*"}"#, (1, 1), message),
        (r#"{a!~".+"}"#, (1, 1), message),
        (r#"{a!="x", b=~"x*"}"#, (1, 1), message),
        (r#"sum(rate( {a=""}[5m]))"#, (1, 11), message),
    ]);
}

#[test]
fn invalid_regexes_point_at_the_string() {
    check(&[
        (
            r#"{a=~"("}"#,
            (1, 5),
            r#"invalid regular expression "(": unclosed group"#,
        ),
        (
            r#"{a="b", c!~"[z-a]"}"#,
            (1, 12),
            "invalid regular expression",
        ),
        (
            r#"{a="b"} |~ "x" |~ "a{2""#,
            (1, 19),
            r#"invalid regular expression "a{2""#,
        ),
        (
            r#"{a="b"} !~ "*""#,
            (1, 12),
            "repetition operator missing expression",
        ),
    ]);
}

#[test]
fn pipeline_stages_are_refused_by_name() {
    check(&[
        (r#"{a="b"} | json"#, (1, 9), "`| json` is not supported yet"),
        (
            r#"{a="b"} |= "x" | logfmt"#,
            (1, 16),
            "`| logfmt` is not supported yet",
        ),
        (
            r#"{a="b"} | regexp "(?P<x>.)""#,
            (1, 9),
            "`| regexp` is not supported yet",
        ),
        (
            r#"{a="b"} | pattern "<_> x""#,
            (1, 9),
            "`| pattern` is not supported yet",
        ),
        (
            r#"{a="b"} | line_format "{{.x}}""#,
            (1, 9),
            "`| line_format` is not supported yet",
        ),
        (
            r#"{a="b"} | label_format a=b"#,
            (1, 9),
            "`| label_format` is not supported yet",
        ),
        (
            r#"sum_over_time({a="b"} | unwrap x [1m])"#,
            (1, 1),
            "`sum_over_time` is not supported",
        ),
        (
            r#"rate({a="b"} | unwrap x [1m])"#,
            (1, 14),
            "`| unwrap` is not supported yet",
        ),
        (
            r#"rate({a="b"}[1m] | json)"#,
            (1, 18),
            "`| json` is not supported yet",
        ),
        (
            r#"{a="b"} | "x""#,
            (1, 11),
            r#"unexpected STRING "x", expecting a pipeline stage"#,
        ),
        (
            r#"{a="b"} |> "<_> x""#,
            (1, 9),
            "pattern line filters (`|>`) are not supported yet",
        ),
        (
            r#"{a="b"} !> "<_> x""#,
            (1, 9),
            "pattern line filters (`!>`) are not supported yet",
        ),
        (
            r#"{a="b"} |= "x" or "y""#,
            (1, 16),
            "`or` between line filters is not supported yet",
        ),
        (
            r#"{a="b"} |= ip("1.2.3.4")"#,
            (1, 12),
            "`ip(...)` line filters are not supported yet",
        ),
        (
            r#"{a="b"} |= x"#,
            (1, 12),
            r#"unexpected IDENTIFIER "x", expecting STRING"#,
        ),
    ]);
}

#[test]
fn binary_operations_are_refused_at_the_operator() {
    let rate = r#"rate({a="b"}[5m])"#;
    let cases: Vec<(String, (usize, usize), &str)> = [
        "+", "-", "*", "/", "%", "^", "==", "!=", ">", ">=", "<", "<=", "and", "or", "unless",
    ]
    .iter()
    .map(|op| {
        (
            format!("{rate} {op} 1"),
            (1, 19),
            "binary operations are not supported yet",
        )
    })
    .collect();
    let cases: Vec<_> = cases.iter().map(|(q, p, m)| (q.as_str(), *p, *m)).collect();
    check(&cases);
    check(&[
        (
            r#"sum(rate({a="b"}[5m]) * 2)"#,
            (1, 23),
            "binary operations are not supported yet",
        ),
        (
            r#"(rate({a="b"}[5m])) > 1"#,
            (1, 21),
            "binary operations are not supported yet",
        ),
        (
            r#"{a="b"} or {c="d"}"#,
            (1, 9),
            "binary operations are not supported yet",
        ),
        ("1 + 1", (1, 1), "number literals are not supported yet"),
        (
            r#"-rate({a="b"}[5m])"#,
            (1, 1),
            "unary operations are not supported yet",
        ),
    ]);
}

#[test]
fn other_functions_are_refused_by_name() {
    check(&[
        (
            r#"topk(5, rate({a="b"}[5m]))"#,
            (1, 1),
            "function `topk` is not supported yet",
        ),
        (
            r#"sum(bottomk(5, rate({a="b"}[5m])))"#,
            (1, 5),
            "function `bottomk` is not supported yet",
        ),
        (
            r#"quantile_over_time(0.9, {a="b"} | unwrap x [5m])"#,
            (1, 1),
            "function `quantile_over_time` is not supported yet",
        ),
        (r#"foo({a="b"})"#, (1, 1), "unknown function foo"),
        (
            "foo",
            (1, 1),
            r#"syntax error: unexpected IDENTIFIER "foo", expecting {, ( or a function name"#,
        ),
        (
            r#"{a="b"} foo"#,
            (1, 9),
            r#"unexpected IDENTIFIER "foo", expecting end of input"#,
        ),
    ]);
}

#[test]
fn range_errors_point_at_the_range() {
    check(&[
        (
            r#"count_over_time({a="b"})"#,
            (1, 24),
            "unexpected ), expecting [",
        ),
        (
            r#"count_over_time({a="b"}[0s])"#,
            (1, 25),
            "duration must be greater than zero",
        ),
        (
            r#"count_over_time({a="b"}[0])"#,
            (1, 25),
            "duration must be greater than zero",
        ),
        (
            r#"count_over_time({a="b"}[-5m])"#,
            (1, 25),
            "invalid range: duration must not be negative",
        ),
        (
            r#"count_over_time({a="b"}[5x])"#,
            (1, 25),
            r#"invalid range: unknown unit "x""#,
        ),
        (
            r#"count_over_time({a="b"}[5])"#,
            (1, 25),
            "invalid range: missing unit",
        ),
        (r#"count_over_time({a="b"}[300y])"#, (1, 25), "out of range"),
        (
            r#"count_over_time({a="b"}[])"#,
            (1, 25),
            "unexpected ], expecting duration",
        ),
        (
            r#"count_over_time({a="b"}[5m)"#,
            (1, 27),
            "unexpected ), expecting ]",
        ),
        (
            r#"count_over_time({a="b"}[5m] offset)"#,
            (1, 35),
            "unexpected ), expecting duration",
        ),
        (
            r#"count_over_time({a="b"}[5m] offset -1h)"#,
            (1, 36),
            "invalid offset: duration must not be negative",
        ),
        (
            r#"count_over_time({a="b"}[5m] 1h)"#,
            (1, 29),
            r#"unexpected NUMBER "1h", expecting )"#,
        ),
        (
            r#"count_over_time({a="b"} |= "x" [5m] |= "y")"#,
            (1, 37),
            "unexpected |=, expecting )",
        ),
        (
            r#"count_over_time({a="b"}[5m] |= "x" offset 1h)"#,
            (1, 36),
            r#"unexpected IDENTIFIER "offset", expecting )"#,
        ),
        (
            r#"count_over_time(({a="b"}[5m]) offset 1h)"#,
            (1, 31),
            r#"unexpected IDENTIFIER "offset", expecting )"#,
        ),
        (
            r#"count_over_time(({a="b"}) |= "x" [5m])"#,
            (1, 27),
            "unexpected |=, expecting [",
        ),
        (
            r#"count_over_time({a="b"}[5m]) by (a)"#,
            (1, 30),
            "grouping is not allowed for count_over_time",
        ),
        (
            r#"{a="b"}[5m]"#,
            (1, 8),
            "a log range such as [5m] is only valid inside a range aggregation",
        ),
        (
            r#"count_over_time(rate({a="b"}[5m]))"#,
            (1, 17),
            r#"unexpected IDENTIFIER "rate", expecting {"#,
        ),
    ]);
}

#[test]
fn aggregation_errors_name_the_problem() {
    check(&[
        (
            r#"sum({a="b"})"#,
            (1, 5),
            "sum needs a metric query, not a log query",
        ),
        (
            r#"sum(({a="b"} |= "x"))"#,
            (1, 5),
            "sum needs a metric query",
        ),
        (
            "sum",
            (1, 4),
            "unexpected end of input, expecting by, without or (",
        ),
        (
            r#"sum by (a) rate({a="b"}[5m])"#,
            (1, 12),
            r#"unexpected IDENTIFIER "rate", expecting ("#,
        ),
        (
            r#"sum by a (rate({a="b"}[5m]))"#,
            (1, 8),
            r#"unexpected IDENTIFIER "a", expecting ("#,
        ),
        (
            r#"sum by (a (rate({a="b"}[5m]))"#,
            (1, 11),
            "unexpected (, expecting , or )",
        ),
        (
            r#"sum by ("a") (rate({a="b"}[5m]))"#,
            (1, 9),
            "expecting label name or )",
        ),
        (
            r#"sum by (a) (rate({a="b"}[5m])) by (b)"#,
            (1, 32),
            r#"unexpected IDENTIFIER "by", expecting end of input"#,
        ),
        (
            r#"sum(rate({a="b"}[5m])"#,
            (1, 22),
            "unexpected end of input, expecting )",
        ),
        (
            r#"sum(rate({a="b"}[5m]), 1)"#,
            (1, 22),
            "unexpected ,, expecting )",
        ),
    ]);
}

#[test]
fn positions_count_lines_and_characters() {
    check(&[
        (
            "{app=\"ü\",\n  env=\"é\"}\n  | json",
            (3, 3),
            "`| json` is not supported yet",
        ),
        (
            r#"{app="日本"} |~ "(""#,
            (1, 15),
            "invalid regular expression",
        ),
        (
            "sum(\n\trate({a=\"b\"}[5m])\n) by (a) +",
            (3, 10),
            "binary operations",
        ),
        (
            "{a=\"b\"}\r\n|= \"x\" |",
            (2, 9),
            "unexpected end of input, expecting a pipeline stage",
        ),
        (
            "{a=\"b\"} # comment |= \"x\"\n}",
            (2, 1),
            "unexpected }, expecting end of input",
        ),
    ]);
}

#[test]
fn trailing_garbage_is_refused_at_its_position() {
    check(&[
        (
            r#"{a="b"} }"#,
            (1, 9),
            "unexpected }, expecting end of input",
        ),
        (
            r#"{a="b"} "x""#,
            (1, 9),
            r#"unexpected STRING "x", expecting end of input"#,
        ),
        (
            r#"rate({a="b"}[5m]))"#,
            (1, 18),
            "unexpected ), expecting end of input",
        ),
        (
            r#"({a="b"}"#,
            (1, 9),
            "unexpected end of input, expecting )",
        ),
    ]);
}

#[test]
fn parse_selector_refuses_anything_but_a_selector() {
    let cases: [(&str, (usize, usize), &str); 5] = [
        (
            r#"{a="b"} |= "x""#,
            (1, 9),
            "unexpected |=, expecting end of input",
        ),
        (
            r#"rate({a="b"}[5m])"#,
            (1, 1),
            r#"unexpected IDENTIFIER "rate", expecting {"#,
        ),
        ("{}", (1, 2), "expecting label name"),
        (r#"{a=~".*"}"#, (1, 1), "empty-compatible"),
        ("", (1, 1), "unexpected end of input, expecting {"),
    ];
    for (input, (line, col), message) in cases {
        let err: ParseError = parse_selector(input).unwrap_err();
        assert_eq!((err.line, err.col), (line, col), "{input}: {err}");
        assert!(err.message.contains(message), "{input}: {err}");
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let parens = "(".repeat(100_000);
    assert!(
        parse(&parens)
            .unwrap_err()
            .message
            .contains("nested too deeply")
    );
    let sums = "sum(".repeat(10_000);
    assert!(
        parse(&sums)
            .unwrap_err()
            .message
            .contains("nested too deeply")
    );
    let logs = format!("rate({}{{a=\"b\"}}", "(".repeat(10_000));
    assert!(
        parse(&logs)
            .unwrap_err()
            .message
            .contains("nested too deeply")
    );
}

#[test]
fn label_filter_syntax_errors_name_found_and_expected() {
    check(&[
        (
            r#"{a="b"} | level"#,
            (1, 16),
            "unexpected end of input, expecting =, !=, =~, !~, ==, >, >=, < or <=",
        ),
        (
            r#"{a="b"} | level "error""#,
            (1, 17),
            r#"unexpected STRING "error", expecting =, !=, =~, !~, ==, >, >=, < or <="#,
        ),
        (
            r#"{a="b"} | level="#,
            (1, 17),
            "unexpected end of input, expecting STRING or NUMBER",
        ),
        (
            r#"{a="b"} | level=error"#,
            (1, 17),
            r#"unexpected IDENTIFIER "error", expecting STRING or NUMBER"#,
        ),
        (
            r#"{a="b"} | status >= "500""#,
            (1, 21),
            r#"unexpected STRING "500", expecting NUMBER"#,
        ),
        (
            r#"{a="b"} | status == "500""#,
            (1, 21),
            r#"unexpected STRING "500", expecting NUMBER"#,
        ),
        (
            r#"{a="b"} | status =~ 500"#,
            (1, 21),
            r#"unexpected NUMBER "500", expecting STRING"#,
        ),
        (
            r#"{a="b"} | status > - x"#,
            (1, 22),
            r#"unexpected IDENTIFIER "x", expecting NUMBER"#,
        ),
        (
            r#"{a="b"} | "x""#,
            (1, 11),
            r#"unexpected STRING "x", expecting a pipeline stage or a label filter"#,
        ),
        (
            r#"{a="b"} | 5 < x"#,
            (1, 11),
            r#"unexpected NUMBER "5", expecting a pipeline stage or a label filter"#,
        ),
        (
            r#"{a="b"} | x="1" and"#,
            (1, 20),
            "unexpected end of input, expecting label name or (",
        ),
        (
            r#"{a="b"} | x="1" or "y""#,
            (1, 20),
            r#"unexpected STRING "y", expecting label name or ("#,
        ),
        (
            r#"{a="b"} | x="1","#,
            (1, 17),
            "unexpected end of input, expecting label name or (",
        ),
        (
            r#"{a="b"} | (x="1" or y="2""#,
            (1, 26),
            "unexpected end of input, expecting and, or or )",
        ),
        (
            r#"{a="b"} | ()"#,
            (1, 12),
            "unexpected ), expecting label name or (",
        ),
        (
            r#"{a="b"} | x="1")"#,
            (1, 16),
            "unexpected ), expecting end of input",
        ),
    ]);
}

#[test]
fn label_filter_values_are_checked_where_written() {
    check(&[
        (
            r#"{a="b"} | x=~"(""#,
            (1, 14),
            r#"invalid regular expression "(": unclosed group"#,
        ),
        (
            r#"{a="b"} | y="1" or x!~"a)|(b""#,
            (1, 23),
            "invalid regular expression",
        ),
        (
            r#"{a="b"} | status > 5xx"#,
            (1, 20),
            r#"invalid number "5xx""#,
        ),
        (
            r#"{a="b"} | status > 1.2.3"#,
            (1, 20),
            r#"invalid number "1.2.3""#,
        ),
        (
            "{a=\"b\"} | x > 1e999",
            (1, 15),
            "number 1e999 is out of range",
        ),
    ]);
}

#[test]
fn label_filter_forms_we_do_not_run_yet_are_refused_by_name() {
    check(&[
        (
            r#"{a="b"} | duration > 10s"#,
            (1, 22),
            "duration comparisons such as `10s` are not supported yet",
        ),
        (
            r#"{a="b"} | latency <= 1h30m"#,
            (1, 22),
            "duration comparisons such as `1h30m` are not supported yet",
        ),
        (
            r#"{a="b"} | size > 20MB"#,
            (1, 18),
            "bytes comparisons such as `20MB` are not supported yet",
        ),
        (
            r#"{a="b"} | size < 1.5KiB"#,
            (1, 18),
            "bytes comparisons such as `1.5KiB` are not supported yet",
        ),
        (
            r#"{a="b"} | addr = ip("10.0.0.0/8")"#,
            (1, 18),
            "`ip(...)` label filters are not supported yet",
        ),
        (
            r#"{a="b"} | x="1" y="2""#,
            (1, 17),
            "label filter conditions side by side are not supported yet: join them with \
             `and`, `,` or `or`",
        ),
        (
            r#"{a="b"} | x="1", y="2" or z="3""#,
            (1, 16),
            "`,` and `or` on the same level of a label filter are ambiguous",
        ),
        (
            r#"{a="b"} | x="1" or y="2", z="3""#,
            (1, 25),
            "`,` and `or` on the same level of a label filter are ambiguous",
        ),
        (
            r#"{a="b"} | x="1" | json"#,
            (1, 17),
            "`| json` is not supported yet",
        ),
        (
            r#"{a="b"} | x="1" unless {c="d"}"#,
            (1, 17),
            "binary operations are not supported yet",
        ),
    ]);
    // Parentheses make the grouping explicit, so a `,` next to them is fine.
    assert!(parse(r#"{a="b"} | (x="1", y="2") or z="3""#).is_ok());
    assert!(parse(r#"{a="b"} | x="1", (y="2" or z="3")"#).is_ok());
}
