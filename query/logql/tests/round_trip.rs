//! Printing a tree gives canonical LogQL that parses back to the same tree.

mod common;

use common::*;
use logstream_logql::{
    AggOp, CmpOp, Expr, FilterOp, Grouping, LabelFilter, LineFilter, LogExpr, MatchOp, Matcher,
    MetricExpr, RangeFunc, Stage, parse,
};

const NAMES: [&str; 9] = [
    "app", "env", "_x", "a1", "by", "offset", "without", "sum", "rate",
];
const PIECES: [&str; 20] = [
    "a", "Z", "0", " ", "\"", "\\", "\n", "\t", "\r", "é", "日", "😀", "\u{0}", "\u{7f}", "`", "{",
    "}", "|=", "#", "\u{85}",
];
const REGEXES: [&str; 9] = [
    ".*",
    ".+",
    "a|b",
    "api-\\d+",
    "(?i)err",
    "[a-z]{2,3}",
    "\"quoted\"",
    "x\\\\y",
    "",
];
/// Label filter names: every selector name plus words that are keywords next to a condition.
const FILTER_NAMES: [&str; 5] = ["app", "or", "and", "__error__", "detected_level"];
const NUMBERS: [f64; 9] = [
    0.0,
    -0.0,
    500.0,
    -1.5,
    0.25,
    1e21,
    1e-7,
    12345.678,
    1.7976931348623157e308,
];
const CMP_OPS: [CmpOp; 6] = [
    CmpOp::Eq,
    CmpOp::Neq,
    CmpOp::Gt,
    CmpOp::Gte,
    CmpOp::Lt,
    CmpOp::Lte,
];
const UNITS_NS: [i64; 8] = [
    1,
    1_000,
    1_000_000,
    SECOND,
    MINUTE,
    HOUR,
    24 * HOUR,
    7 * 24 * HOUR,
];

fn text(rng: &mut Rng) -> String {
    (0..rng.below(8)).map(|_| *rng.pick(&PIECES)).collect()
}

fn random_matcher(rng: &mut Rng) -> Matcher {
    let name = *rng.pick(&NAMES);
    let op = *rng.pick(&[MatchOp::Eq, MatchOp::Neq, MatchOp::Re, MatchOp::Nre]);
    let value = match op {
        MatchOp::Eq | MatchOp::Neq => text(rng),
        MatchOp::Re | MatchOp::Nre => rng.pick(&REGEXES).to_string(),
    };
    Matcher::new(name, op, value).expect("valid matcher")
}

fn random_filter(rng: &mut Rng) -> LineFilter {
    let op = *rng.pick(&[
        FilterOp::Contains,
        FilterOp::NotContains,
        FilterOp::Match,
        FilterOp::NotMatch,
    ]);
    let value = match op {
        FilterOp::Contains | FilterOp::NotContains => text(rng),
        FilterOp::Match | FilterOp::NotMatch => rng.pick(&REGEXES).to_string(),
    };
    LineFilter::new(op, value).expect("valid filter")
}

fn random_condition(rng: &mut Rng) -> LabelFilter {
    let name = if rng.chance(50) {
        *rng.pick(&NAMES)
    } else {
        *rng.pick(&FILTER_NAMES)
    };
    if rng.chance(40) {
        return num(name, *rng.pick(&CMP_OPS), *rng.pick(&NUMBERS));
    }
    let m = random_matcher(rng);
    cond(name, m.op, &m.value)
}

fn random_label_filter(rng: &mut Rng, depth: usize) -> LabelFilter {
    if depth >= 3 || rng.chance(40) {
        return random_condition(rng);
    }
    let (l, r) = (
        random_label_filter(rng, depth + 1),
        random_label_filter(rng, depth + 1),
    );
    if rng.chance(50) { and(l, r) } else { or(l, r) }
}

fn random_stage(rng: &mut Rng) -> Stage {
    if rng.chance(50) {
        Stage::Line(random_filter(rng))
    } else {
        Stage::Label(random_label_filter(rng, 0))
    }
}

/// A log query; one `name="non-empty"` matcher keeps the selector valid.
fn random_log(rng: &mut Rng) -> LogExpr {
    let mut matchers: Vec<Matcher> = (0..rng.below(4)).map(|_| random_matcher(rng)).collect();
    let name = *rng.pick(&NAMES);
    let anchor = eq(name, &format!("v{}", text(rng)));
    matchers.insert(rng.below(matchers.len() + 1), anchor);
    let stages = (0..rng.below(5)).map(|_| random_stage(rng)).collect();
    LogExpr { matchers, stages }
}

fn random_duration(rng: &mut Rng) -> i64 {
    (0..1 + rng.below(3))
        .map(|_| (1 + rng.below(1000) as i64) * rng.pick(&UNITS_NS))
        .sum()
}

fn random_grouping(rng: &mut Rng) -> Option<Grouping> {
    if rng.chance(30) {
        return None;
    }
    let labels = (0..rng.below(4))
        .map(|_| rng.pick(&NAMES).to_string())
        .collect();
    Some(Grouping {
        without: rng.chance(50),
        labels,
    })
}

fn random_metric(rng: &mut Rng, depth: usize) -> MetricExpr {
    if depth >= 3 || rng.chance(40) {
        let offset_ns = if rng.chance(30) {
            random_duration(rng)
        } else {
            0
        };
        return MetricExpr::Range {
            func: *rng.pick(&[
                RangeFunc::CountOverTime,
                RangeFunc::Rate,
                RangeFunc::BytesOverTime,
                RangeFunc::BytesRate,
            ]),
            log: random_log(rng),
            range_ns: random_duration(rng),
            offset_ns,
        };
    }
    MetricExpr::Aggregate {
        op: *rng.pick(&[AggOp::Sum, AggOp::Count, AggOp::Min, AggOp::Max, AggOp::Avg]),
        grouping: random_grouping(rng),
        inner: Box::new(random_metric(rng, depth + 1)),
    }
}

fn random_expr(rng: &mut Rng) -> Expr {
    if rng.chance(30) {
        Expr::Log(random_log(rng))
    } else {
        Expr::Metric(random_metric(rng, 0))
    }
}

#[test]
fn printed_trees_parse_back_to_themselves() {
    let mut rng = Rng::new(0x5eed_1095);
    for _ in 0..2000 {
        let expr = random_expr(&mut rng);
        let printed = expr.to_string();
        let reparsed = parse(&printed).unwrap_or_else(|e| panic!("{printed}\n{e}"));
        assert_eq!(reparsed, expr, "{printed}");
        assert_eq!(reparsed.to_string(), printed);
    }
}

#[test]
fn printing_is_canonical() {
    let cases = [
        (r#"{ app = "api" }"#, r#"{app="api"}"#),
        (
            r#"{a=~`\d+`,b!="x\ty"}|="q\""!~"z""#,
            r#"{a=~"\\d+", b!="x\ty"} |= "q\"" !~ "z""#,
        ),
        (
            r#"sum(rate({a="b"}[90s] offset 60m)) by (x,y)"#,
            r#"sum by (x, y) (rate({a="b"} [1m30s] offset 1h))"#,
        ),
        (
            r#"count_over_time(({a="b"} |= "x")[1.5h])"#,
            r#"count_over_time({a="b"} |= "x" [1h30m])"#,
        ),
        (
            r#"max without() (bytes_rate({a="b"}[14d]))"#,
            r#"max without () (bytes_rate({a="b"} [2w]))"#,
        ),
        (
            r#"(avg(bytes_over_time({a="b"}[1m] offset 0s)))"#,
            r#"avg(bytes_over_time({a="b"} [1m]))"#,
        ),
        ("{a=\"\\u0001\"}", "{a=\"\\u0001\"}"),
        (
            r#"{a="b"}|status>=500.0,level=`err`|x = -0.50 or y == +1e3"#,
            r#"{a="b"} | status>=500 and level="err" | x==-0.5 or y==1000"#,
        ),
        (
            r#"{a="b"} | (x="1" or (y!="2")) , z=~"3" |= "q""#,
            r#"{a="b"} | (x="1" or y!="2") and z=~"3" |= "q""#,
        ),
        (
            r#"{a="b"} | x="1" and (y="2" and z="3")"#,
            r#"{a="b"} | x="1" and (y="2" and z="3")"#,
        ),
        (
            r#"sum by (status) (count_over_time({a="b"}[5m] | status >= 500))"#,
            r#"sum by (status) (count_over_time({a="b"} | status>=500 [5m]))"#,
        ),
    ];
    for (query, canonical) in cases {
        let expr = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(expr.to_string(), canonical, "{query}");
    }
}

#[test]
fn matchers_and_filters_print_alone() {
    assert_eq!(matcher("a", MatchOp::Nre, "x|y").to_string(), r#"a!~"x|y""#);
    assert_eq!(
        filter(FilterOp::NotContains, "q\"").to_string(),
        r#"!= "q\"""#
    );
}
