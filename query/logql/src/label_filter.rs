//! Label filter stages (`| status >= 500 and level="error"`): conditions on a name that a row
//! resolves to a value (a stream label, a parsed attribute, structured metadata), joined with
//! `and` and `or`. This module owns what a condition means for one value; which value a name
//! resolves to is the executor's business.

use crate::matcher::Matcher;
use std::fmt;

/// A label filter: conditions joined with `and` / `or`.
///
/// A name that a row does not have has the value `""`, as in Loki: `| x=""` keeps rows without
/// `x` and `| x!=""` only rows with it. Numeric comparisons never pass for such a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFilter {
    /// `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`; regexes match the whole value.
    Match(Matcher),
    /// `name>=500` and the other numeric comparisons.
    Number(NumberFilter),
    /// Both must pass (`and`, or `,`).
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either must pass (`or`); binds looser than `and`.
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

impl LabelFilter {
    /// `left and right`.
    pub fn and(left: LabelFilter, right: LabelFilter) -> Self {
        LabelFilter::And(Box::new(left), Box::new(right))
    }

    /// `left or right`.
    pub fn or(left: LabelFilter, right: LabelFilter) -> Self {
        LabelFilter::Or(Box::new(left), Box::new(right))
    }

    /// Whether a row passes, `value` giving what each name resolves to (`None`: nothing).
    pub fn matches<'a>(&self, value: &impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            LabelFilter::Match(m) => m.matches(value(&m.name).unwrap_or("")),
            LabelFilter::Number(n) => n.matches(value(&n.name)),
            LabelFilter::And(l, r) => l.matches(value) && r.matches(value),
            LabelFilter::Or(l, r) => l.matches(value) || r.matches(value),
        }
    }

    /// The names the filter reads, in the order written, repeats included.
    pub fn names(&self) -> Vec<&str> {
        match self {
            LabelFilter::Match(m) => vec![m.name.as_str()],
            LabelFilter::Number(n) => vec![n.name.as_str()],
            LabelFilter::And(l, r) | LabelFilter::Or(l, r) => {
                let mut names = l.names();
                names.extend(r.names());
                names
            }
        }
    }

    /// Binding strength when printed: conditions bind tightest, `or` loosest.
    fn precedence(&self) -> u8 {
        match self {
            LabelFilter::Or(..) => 0,
            LabelFilter::And(..) => 1,
            LabelFilter::Match(_) | LabelFilter::Number(_) => 2,
        }
    }
}

/// How a [`NumberFilter`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==` (also written `=`).
    Eq,
    /// `!=`.
    Neq,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
}

impl CmpOp {
    /// Whether `left op right` holds.
    pub fn compare(self, left: f64, right: f64) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Neq => left != right,
            CmpOp::Gt => left > right,
            CmpOp::Gte => left >= right,
            CmpOp::Lt => left < right,
            CmpOp::Lte => left <= right,
        }
    }
}

/// `name op number`: the value read as a decimal number, compared with `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberFilter {
    /// The name compared.
    pub name: String,
    /// The comparison.
    pub op: CmpOp,
    /// The number on the right; finite (the parser refuses others), so equality is total.
    pub value: f64,
}

impl Eq for NumberFilter {}

impl NumberFilter {
    /// Whether a value passes. A missing value, or one that does not read as a number,
    /// fails every comparison (Loki keeps such a row and marks it with an `__error__` label
    /// instead; see docs/logql.md).
    pub fn matches(&self, value: Option<&str>) -> bool {
        value
            .and_then(parse_number)
            .is_some_and(|v| self.op.compare(v, self.value))
    }
}

/// A value read as a number the way the scan reads it: surrounding whitespace ignored, then a
/// decimal (`500`, `-1.5`, `2e3`); `None` for anything else.
pub fn parse_number(value: &str) -> Option<f64> {
    value.trim().parse().ok()
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "==",
            CmpOp::Neq => "!=",
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
        })
    }
}

/// `status>=500`; the number in Rust's shortest form that reads back to the same value.
impl fmt::Display for NumberFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op, self.value)
    }
}

/// `a="x" and (b>1 or c!~"y")`: parentheses only where the tree needs them, so that the text
/// parses back to the same tree (`and`/`or` group to the left).
impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, r, keyword) = match self {
            LabelFilter::Match(m) => return m.fmt(f),
            LabelFilter::Number(n) => return n.fmt(f),
            LabelFilter::And(l, r) => (l, r, "and"),
            LabelFilter::Or(l, r) => (l, r, "or"),
        };
        let own = self.precedence();
        write_operand(f, l, l.precedence() < own)?;
        write!(f, " {keyword} ")?;
        write_operand(f, r, r.precedence() <= own)
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &LabelFilter, wrap: bool) -> fmt::Result {
    if wrap {
        write!(f, "({operand})")
    } else {
        fmt::Display::fmt(operand, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatchOp;

    fn m(name: &str, op: MatchOp, value: &str) -> LabelFilter {
        LabelFilter::Match(Matcher::new(name, op, value).unwrap())
    }

    fn n(name: &str, op: CmpOp, value: f64) -> LabelFilter {
        LabelFilter::Number(NumberFilter {
            name: name.into(),
            op,
            value,
        })
    }

    #[test]
    fn printing_parenthesises_only_where_grouping_differs() {
        let (a, b, c) = (
            m("a", MatchOp::Eq, "1"),
            n("b", CmpOp::Gte, 2.5),
            m("c", MatchOp::Nre, "x|y"),
        );
        let or = LabelFilter::or(a.clone(), b.clone());
        assert_eq!(
            LabelFilter::and(or.clone(), c.clone()).to_string(),
            r#"(a="1" or b>=2.5) and c!~"x|y""#
        );
        assert_eq!(
            LabelFilter::or(LabelFilter::and(a.clone(), b.clone()), c.clone()).to_string(),
            r#"a="1" and b>=2.5 or c!~"x|y""#
        );
        assert_eq!(
            LabelFilter::and(a.clone(), LabelFilter::and(b.clone(), c.clone())).to_string(),
            r#"a="1" and (b>=2.5 and c!~"x|y")"#
        );
        assert_eq!(
            LabelFilter::or(or, c).to_string(),
            r#"a="1" or b>=2.5 or c!~"x|y""#
        );
        assert_eq!(n("x", CmpOp::Lt, -0.5).to_string(), "x<-0.5");
        assert_eq!(
            n("x", CmpOp::Eq, 1e21).to_string(),
            "x==1000000000000000000000"
        );
    }

    #[test]
    fn numbers_compare_only_when_the_value_reads_as_one() {
        let ge = NumberFilter {
            name: "status".into(),
            op: CmpOp::Gte,
            value: 500.0,
        };
        assert!(ge.matches(Some("500")));
        assert!(ge.matches(Some("503.5")));
        assert!(ge.matches(Some(" 5e2 ")));
        assert!(!ge.matches(Some("499")));
        assert!(!ge.matches(Some("5xx")));
        assert!(!ge.matches(Some("")));
        assert!(!ge.matches(None));
        let ne = NumberFilter {
            op: CmpOp::Neq,
            ..ge.clone()
        };
        assert!(ne.matches(Some("200")));
        // A row without the name fails even `!=`, as in Loki.
        assert!(!ne.matches(None));
        assert!(!ne.matches(Some("n/a")));
    }

    #[test]
    fn and_or_combine_and_missing_names_are_empty() {
        let f = LabelFilter::or(
            LabelFilter::and(m("a", MatchOp::Eq, "1"), m("b", MatchOp::Eq, "")),
            n("c", CmpOp::Gt, 10.0),
        );
        let row = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        };
        assert!(f.matches(&row(&[("a", "1")])));
        assert!(!f.matches(&row(&[("a", "1"), ("b", "x")])));
        assert!(f.matches(&row(&[("a", "2"), ("c", "11")])));
        assert!(!f.matches(&row(&[("c", "ten")])));
        assert_eq!(f.names(), ["a", "b", "c"]);
    }
}
