//! Why LogQL text was refused: [`ParseError`] for queries and selectors (with the line and
//! column a user can act on), [`DurationError`] for durations parsed on their own.

/// A query that could not be parsed.
///
/// `line` and `col` are 1-based; `col` counts characters, not bytes, on that line. The message
/// follows Loki's wording (`syntax error: unexpected ..., expecting ...` or a sentence naming
/// the construct that is not supported yet), so clients written for Loki read it as usual.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {message}")]
pub struct ParseError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column, in characters, of the offending text on its line.
    pub col: usize,
    /// What went wrong, without the position.
    pub message: String,
}

impl ParseError {
    /// An error at byte `offset` of `src`, located as a line and a character column.
    pub(crate) fn at(src: &str, offset: usize, message: impl Into<String>) -> Self {
        let before = src.get(..offset).unwrap_or(src);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
            message: message.into(),
        }
    }
}

/// A duration string that [`parse_duration`](crate::parse_duration) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration")]
    Empty,
    /// A term without digits, or a stray character such as a sign.
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// A number without a unit (only a lone `0` may omit it).
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    /// A unit that is not one of `ns us µs ms s m h d w y`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration.
        input: String,
    },
    /// More nanoseconds than an `i64` holds (about 292 years).
    #[error("duration {0:?} is out of range")]
    OutOfRange(String),
}
