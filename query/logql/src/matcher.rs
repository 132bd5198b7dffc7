//! The two tests a log query applies: label matchers against a stream's labels and line
//! filters against each line. Regexes are compiled once, when the matcher or filter is built.

use crate::lexer::write_quoted;
use logstream_bus::Labels;
use regex::Regex;
use std::fmt;

/// How a [`Matcher`] compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: equal.
    Eq,
    /// `!=`: not equal.
    Neq,
    /// `=~`: the whole value matches the regex.
    Re,
    /// `!~`: the whole value does not match the regex.
    Nre,
}

/// One `name op "value"` term of a stream selector.
///
/// Build with [`Matcher::new`], which compiles the regex; the fields are public to read, and
/// changing `op` or `value` afterwards leaves the compiled regex stale. Equality ignores the
/// compiled regex.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The literal value, or the regex source for `=~`/`!~`.
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// A matcher; regexes are anchored at both ends like Prometheus (`^(?s:value)$`), so
    /// `a=~"fo"` does not match `foo`.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::Nre => Some(anchored(&value)?),
            MatchOp::Eq | MatchOp::Neq => None,
        };
        Ok(Self {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether a label value passes. Pass `""` for a label the stream does not have, as
    /// Prometheus and Loki do: `{env!="prod"}` selects streams without `env`.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Neq => value != self.value,
            MatchOp::Re => self.regex_matches(value),
            MatchOp::Nre => !self.regex_matches(value),
        }
    }

    fn regex_matches(&self, value: &str) -> bool {
        self.regex.as_ref().is_some_and(|re| re.is_match(value))
    }

    /// For `=~`/`!~`, the anchored pattern actually run (`^(?s:value)$`), for engines that
    /// evaluate the regex themselves.
    pub fn anchored_regex(&self) -> Option<&str> {
        self.regex.as_ref().map(Regex::as_str)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

/// Compiles `pattern` to match whole values. The pattern must compile on its own first, so
/// errors describe what the user wrote and `a)|(b` cannot break out of the anchoring group.
fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(pattern)?;
    Regex::new(&format!("^(?s:{pattern})$"))
}

/// Whether a stream's labels pass every matcher; a missing label is matched as `""`.
pub fn matches_labels(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

/// How a [`LineFilter`] tests a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `|=`: the line contains the text (case-sensitive).
    Contains,
    /// `!=`: the line does not contain the text.
    NotContains,
    /// `|~`: the regex matches somewhere in the line.
    Match,
    /// `!~`: the regex matches nowhere in the line.
    NotMatch,
}

/// One line filter of a log query, such as `|= "error"`.
///
/// Build with [`LineFilter::new`]; as with [`Matcher`], the public fields are for reading and
/// equality ignores the compiled regex.
#[derive(Debug, Clone)]
pub struct LineFilter {
    /// The test.
    pub op: FilterOp,
    /// The text to find, or the regex source for `|~`/`!~`.
    pub value: String,
    regex: Option<Regex>,
}

impl LineFilter {
    /// A filter; regexes are unanchored, as in Loki (`|~ "err"` matches `an error`).
    pub fn new(op: FilterOp, value: impl Into<String>) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            FilterOp::Match | FilterOp::NotMatch => Some(Regex::new(&value)?),
            FilterOp::Contains | FilterOp::NotContains => None,
        };
        Ok(Self { op, value, regex })
    }

    /// Whether `line` passes this filter.
    pub fn matches(&self, line: &str) -> bool {
        match self.op {
            FilterOp::Contains => line.contains(self.value.as_str()),
            FilterOp::NotContains => !line.contains(self.value.as_str()),
            FilterOp::Match => self.regex_matches(line),
            FilterOp::NotMatch => !self.regex_matches(line),
        }
    }

    fn regex_matches(&self, line: &str) -> bool {
        self.regex.as_ref().is_some_and(|re| re.is_match(line))
    }
}

impl PartialEq for LineFilter {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.value == other.value
    }
}

impl Eq for LineFilter {}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        })
    }
}

/// `name="value"`, the value quoted like a Go string.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.op)?;
        write_quoted(f, &self.value)
    }
}

impl fmt::Display for FilterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterOp::Contains => "|=",
            FilterOp::NotContains => "!=",
            FilterOp::Match => "|~",
            FilterOp::NotMatch => "!~",
        })
    }
}

/// `|= "value"`.
impl fmt::Display for LineFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.op)?;
        write_quoted(f, &self.value)
    }
}
