//! LogQL: the parser for the part of Grafana Loki's query language LogStream runs, and the label
//! and line matching that queries, pipelines and alerts share.
//!
//! [`parse`] turns a query into an [`Expr`]; [`parse_selector`] reads a lone `{...}` selector.
//! Errors carry a 1-based line and character column and Loki's wording. Every tree prints back
//! as canonical LogQL that parses to the same tree.
//!
//! Supported: stream selectors (`=`, `!=`, `=~`, `!~`), line filters (`|=`, `!=`, `|~`, `!~`),
//! label filters (`| name="v"`, `=~`, `!~`, `!=`, numeric `==` `!=` `>` `>=` `<` `<=`, joined
//! with `and`, `,`, `or` and parentheses), `count_over_time`, `rate`, `bytes_over_time`,
//! `bytes_rate` with `[range]` and `offset`, and `sum`, `count`, `min`, `max`, `avg` with
//! `by`/`without`. Other valid LogQL (parsers, formatting stages, duration and bytes
//! comparisons, binary operations, other functions) is refused with a "not supported yet"
//! error.

mod ast;
mod duration;
mod error;
mod label_filter;
mod lexer;
mod matcher;
mod parser;

pub use ast::{AggOp, Expr, Grouping, LogExpr, MetricExpr, RangeFunc, Stage};
pub use duration::{format_duration, parse_duration};
pub use error::{DurationError, ParseError};
pub use label_filter::{CmpOp, LabelFilter, NumberFilter, parse_number};
pub use matcher::{FilterOp, LineFilter, MatchOp, Matcher, matches_labels};
pub use parser::{parse, parse_selector};
