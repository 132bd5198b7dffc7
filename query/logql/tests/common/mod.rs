//! Builders for expected trees and a small deterministic random source, shared by the
//! integration tests.
#![allow(dead_code)] // Each test binary uses a different part.

use logstream_logql::{
    AggOp, CmpOp, Expr, FilterOp, Grouping, LabelFilter, LineFilter, LogExpr, MatchOp, Matcher,
    MetricExpr, NumberFilter, RangeFunc, Stage,
};

pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;

pub fn matcher(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(name, op, value).expect("valid matcher")
}

pub fn eq(name: &str, value: &str) -> Matcher {
    matcher(name, MatchOp::Eq, value)
}

pub fn filter(op: FilterOp, value: &str) -> LineFilter {
    LineFilter::new(op, value).expect("valid filter")
}

/// A log query whose pipeline is only line filters.
pub fn log(matchers: Vec<Matcher>, filters: Vec<LineFilter>) -> LogExpr {
    piped(matchers, filters.into_iter().map(Stage::Line).collect())
}

pub fn piped(matchers: Vec<Matcher>, stages: Vec<Stage>) -> LogExpr {
    LogExpr { matchers, stages }
}

/// A string condition of a label filter: `name op "value"`.
pub fn cond(name: &str, op: MatchOp, value: &str) -> LabelFilter {
    LabelFilter::Match(matcher(name, op, value))
}

/// A numeric condition of a label filter: `name op value`.
pub fn num(name: &str, op: CmpOp, value: f64) -> LabelFilter {
    LabelFilter::Number(NumberFilter {
        name: name.into(),
        op,
        value,
    })
}

pub fn and(l: LabelFilter, r: LabelFilter) -> LabelFilter {
    LabelFilter::and(l, r)
}

pub fn or(l: LabelFilter, r: LabelFilter) -> LabelFilter {
    LabelFilter::or(l, r)
}

/// A label filter stage.
pub fn label(f: LabelFilter) -> Stage {
    Stage::Label(f)
}

/// A line filter stage.
pub fn line(op: FilterOp, value: &str) -> Stage {
    Stage::Line(filter(op, value))
}

/// `{a="b"}`, the selector most cases use.
pub fn ab() -> LogExpr {
    log(vec![eq("a", "b")], vec![])
}

pub fn range(func: RangeFunc, log: LogExpr, range_ns: i64) -> MetricExpr {
    MetricExpr::Range {
        func,
        log,
        range_ns,
        offset_ns: 0,
    }
}

pub fn agg(op: AggOp, grouping: Option<Grouping>, inner: MetricExpr) -> MetricExpr {
    MetricExpr::Aggregate {
        op,
        grouping,
        inner: Box::new(inner),
    }
}

pub fn by(labels: &[&str]) -> Option<Grouping> {
    grouping(false, labels)
}

pub fn without(labels: &[&str]) -> Option<Grouping> {
    grouping(true, labels)
}

fn grouping(without: bool, labels: &[&str]) -> Option<Grouping> {
    Some(Grouping {
        without,
        labels: labels.iter().map(|l| l.to_string()).collect(),
    })
}

pub fn metric(m: MetricExpr) -> Expr {
    Expr::Metric(m)
}

/// xorshift64*: small, deterministic, good enough to pick test inputs.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
