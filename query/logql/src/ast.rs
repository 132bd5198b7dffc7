//! The syntax tree of the LogQL subset we run, and its canonical printed form: printing any
//! tree and parsing the text gives the same tree back.

use crate::duration::format_duration;
use crate::label_filter::LabelFilter;
use crate::matcher::{LineFilter, Matcher};
use std::fmt;

/// A whole query: it returns either log lines or samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A log query: `{app="api"} |= "error"`.
    Log(LogExpr),
    /// A metric query: `sum by (app) (rate({app="api"}[5m]))`.
    Metric(MetricExpr),
}

/// A stream selector and the pipeline stages applied to its lines, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogExpr {
    /// The stream selector's matchers; never empty, and at least one does not match `""`.
    pub matchers: Vec<Matcher>,
    /// The pipeline. Every stage today is a filter, all of which a line must pass, so their
    /// order does not change the result; it is kept for printing (and for parsers later).
    pub stages: Vec<Stage>,
}

/// One stage of a log pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// `|= "x"`, `!= "x"`, `|~ "re"`, `!~ "re"`.
    Line(LineFilter),
    /// `| name="v" and status>=500`.
    Label(LabelFilter),
}

impl LogExpr {
    /// The line filters, in order.
    pub fn line_filters(&self) -> impl Iterator<Item = &LineFilter> {
        self.stages.iter().filter_map(|s| match s {
            Stage::Line(f) => Some(f),
            Stage::Label(_) => None,
        })
    }

    /// The label filter stages, in order.
    pub fn label_filters(&self) -> impl Iterator<Item = &LabelFilter> {
        self.stages.iter().filter_map(|s| match s {
            Stage::Label(f) => Some(f),
            Stage::Line(_) => None,
        })
    }

    /// Whether `line` passes every line filter (label filters are not consulted).
    pub fn matches_line(&self, line: &str) -> bool {
        self.line_filters().all(|f| f.matches(line))
    }
}

/// A query that computes samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricExpr {
    /// `func(log [range] offset offset)`: one sample per stream per step, over the window
    /// `(t - offset - range, t - offset]`.
    Range {
        /// What to compute over the window.
        func: RangeFunc,
        /// The lines counted.
        log: LogExpr,
        /// Window length in nanoseconds; always positive.
        range_ns: i64,
        /// How far back the window is shifted, in nanoseconds; 0 when absent.
        offset_ns: i64,
    },
    /// `op by (labels) (inner)`: combines the inner series per group.
    Aggregate {
        /// How the series of a group combine.
        op: AggOp,
        /// `None` aggregates everything into one series.
        grouping: Option<Grouping>,
        /// The series aggregated.
        inner: Box<MetricExpr>,
    },
}

impl MetricExpr {
    /// The log query that feeds this metric (the innermost range aggregation's).
    pub fn log_expr(&self) -> &LogExpr {
        match self {
            MetricExpr::Range { log, .. } => log,
            MetricExpr::Aggregate { inner, .. } => inner.log_expr(),
        }
    }
}

/// A function over a log range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeFunc {
    /// `count_over_time`: lines in the window.
    CountOverTime,
    /// `rate`: lines per second in the window.
    Rate,
    /// `bytes_over_time`: line bytes in the window.
    BytesOverTime,
    /// `bytes_rate`: line bytes per second in the window.
    BytesRate,
}

impl RangeFunc {
    const ALL: [RangeFunc; 4] = [
        RangeFunc::CountOverTime,
        RangeFunc::Rate,
        RangeFunc::BytesOverTime,
        RangeFunc::BytesRate,
    ];

    /// The LogQL name, e.g. `count_over_time`.
    pub fn name(self) -> &'static str {
        match self {
            RangeFunc::CountOverTime => "count_over_time",
            RangeFunc::Rate => "rate",
            RangeFunc::BytesOverTime => "bytes_over_time",
            RangeFunc::BytesRate => "bytes_rate",
        }
    }

    /// The function a LogQL name denotes, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A vector aggregation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggOp {
    /// Sum of the values.
    Sum,
    /// Number of series.
    Count,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Mean of the values.
    Avg,
}

impl AggOp {
    const ALL: [AggOp; 5] = [AggOp::Sum, AggOp::Count, AggOp::Min, AggOp::Max, AggOp::Avg];

    /// The LogQL name, e.g. `sum`.
    pub fn name(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Count => "count",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Avg => "avg",
        }
    }

    /// The operator a LogQL name denotes, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// `by (labels)` or `without (labels)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grouping {
    /// `true` for `without`: group by every label except these.
    pub without: bool,
    /// The label names, in the order written; may be empty (`by ()`).
    pub labels: Vec<String>,
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(log) => log.fmt(f),
            Expr::Metric(metric) => metric.fmt(f),
        }
    }
}

/// `|= "x"` or `| a="b"`.
impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Line(filter) => filter.fmt(f),
            Stage::Label(filter) => write!(f, "| {filter}"),
        }
    }
}

/// `{a="b", c=~"d"} |= "x" != "y" | e>=5`.
impl fmt::Display for LogExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, matcher) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            matcher.fmt(f)?;
        }
        f.write_str("}")?;
        self.stages
            .iter()
            .try_for_each(|stage| write!(f, " {stage}"))
    }
}

/// `rate({a="b"} [5m] offset 1h)`, `sum by (a) (...)`.
impl fmt::Display for MetricExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricExpr::Range {
                func,
                log,
                range_ns,
                offset_ns,
            } => {
                write!(f, "{func}({log} [{}]", format_duration(*range_ns))?;
                if *offset_ns != 0 {
                    write!(f, " offset {}", format_duration(*offset_ns))?;
                }
                f.write_str(")")
            }
            MetricExpr::Aggregate {
                op,
                grouping,
                inner,
            } => match grouping {
                Some(grouping) => write!(f, "{op} {grouping} ({inner})"),
                None => write!(f, "{op}({inner})"),
            },
        }
    }
}

impl fmt::Display for RangeFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for AggOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `by (a, b)` or `without (a)`.
impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keyword = if self.without { "without" } else { "by" };
        write!(f, "{keyword} ({})", self.labels.join(", "))
    }
}
