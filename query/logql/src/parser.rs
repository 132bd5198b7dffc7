//! The recursive-descent parser: LogQL text to [`Expr`]. It reads one token ahead, stops at the
//! first problem and names it in Loki's words; valid LogQL that we do not run yet (parsers,
//! formatting stages, binary operations, other functions) is refused by name at its position.

use crate::ast::{AggOp, Expr, Grouping, LogExpr, MetricExpr, RangeFunc, Stage};
use crate::duration::parse_duration;
use crate::error::ParseError;
use crate::lexer::{Lexer, Token, TokenKind, write_quoted};
use crate::matcher::{FilterOp, LineFilter, MatchOp, Matcher};

mod label_filters;

/// Loki's own wording, so users searching for it find Loki's documentation.
const EMPTY_COMPATIBLE: &str = "queries require at least one regexp or equality matcher that \
     does not have an empty-compatible value. For instance, app=~\".*\" does not meet this \
     requirement, but app=~\".+\" will";

/// Deeper nesting is refused rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 128;

/// Pipeline stages of full LogQL that come after `|`.
const STAGES: [&str; 12] = [
    "json",
    "logfmt",
    "regexp",
    "pattern",
    "unpack",
    "line_format",
    "label_format",
    "unwrap",
    "decolorize",
    "drop",
    "keep",
    "distinct",
];

/// Functions of full LogQL that we do not run yet.
const UNSUPPORTED_FUNCTIONS: [&str; 21] = [
    "topk",
    "bottomk",
    "approx_topk",
    "sort",
    "sort_desc",
    "stddev",
    "stdvar",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "first_over_time",
    "last_over_time",
    "absent_over_time",
    "rate_counter",
    "label_replace",
    "vector",
    "count_values",
];

/// Parses a LogQL query: a log query (`{app="api"} |= "error"`) or a metric query
/// (`sum by (app) (rate({app="api"}[5m]))`).
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser::new(input);
    let expr = parser.expr()?;
    parser.end()?;
    Ok(expr)
}

/// Parses a lone stream selector such as `{app="x", env="prod"}` (the `/series` `match[]`
/// parameter, the labels of a pushed stream). The same rules apply as in a query, including
/// that one matcher must not match the empty string.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let mut parser = Parser::new(input);
    let matchers = parser.selector()?;
    parser.end()?;
    Ok(matchers)
}

/// A log query with its window, before it is given to a range function.
struct LogRange {
    log: LogExpr,
    range_ns: i64,
    offset_ns: i64,
}

enum RangeOperand {
    Log(LogExpr),
    Range(LogRange),
}

struct Parser<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    /// The token ahead; a lexing error waits here until the parser looks at it.
    next: Result<Token<'a>, ParseError>,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        let mut lexer = Lexer::new(src);
        let next = lexer.next_token();
        Self {
            src,
            lexer,
            next,
            depth: 0,
        }
    }

    // ---- token plumbing ----

    fn peek(&self) -> Result<&Token<'a>, ParseError> {
        self.next.as_ref().map_err(Clone::clone)
    }

    fn peek_is(&self, kind: &TokenKind) -> bool {
        matches!(&self.next, Ok(t) if t.kind == *kind)
    }

    fn peek_keyword(&self, word: &str) -> bool {
        matches!(&self.next, Ok(t) if t.kind == TokenKind::Ident && t.text == word)
    }

    fn bump(&mut self) -> Result<Token<'a>, ParseError> {
        let following = self.lexer.next_token();
        std::mem::replace(&mut self.next, following)
    }

    fn expect(&mut self, kind: TokenKind, expecting: &str) -> Result<Token<'a>, ParseError> {
        let tok = self.peek()?;
        if tok.kind == kind {
            self.bump()
        } else {
            Err(self.unexpected(tok, expecting))
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, at, message)
    }

    fn unexpected(&self, tok: &Token<'_>, expecting: &str) -> ParseError {
        let found = tok.describe();
        let message = format!("syntax error: unexpected {found}, expecting {expecting}");
        self.error(tok.start, message)
    }

    fn end(&self) -> Result<(), ParseError> {
        let tok = self.peek()?;
        match tok.kind {
            TokenKind::Eof => Ok(()),
            _ => Err(self.unexpected(tok, "end of input")),
        }
    }

    /// Runs `f` one level deeper, refusing input nested past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            let at = self.peek()?.start;
            return Err(self.error(at, "query is nested too deeply"));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    // ---- expressions ----

    /// `expr := log_expr | metric_expr | "(" expr ")"`, not followed by a binary operator.
    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.nested(|p| {
            let expr = p.operand()?;
            p.reject_after_expr(&expr)?;
            Ok(expr)
        })
    }

    fn operand(&mut self) -> Result<Expr, ParseError> {
        let tok = self.peek()?;
        match tok.kind {
            TokenKind::LBrace => Ok(Expr::Log(self.log_expr()?)),
            TokenKind::Ident => Ok(Expr::Metric(self.call()?)),
            TokenKind::LParen => {
                self.bump()?;
                let expr = self.expr()?;
                self.expect(TokenKind::RParen, ")")?;
                Ok(expr)
            }
            TokenKind::Number => {
                Err(self.error(tok.start, "number literals are not supported yet"))
            }
            TokenKind::Minus | TokenKind::Plus => {
                Err(self.error(tok.start, "unary operations are not supported yet"))
            }
            _ => Err(self.unexpected(tok, "{, ( or a function name")),
        }
    }

    /// Refuses what may follow a complete expression but is not ours: binary operators, and a
    /// range after a log query outside a range aggregation.
    fn reject_after_expr(&self, expr: &Expr) -> Result<(), ParseError> {
        let tok = self.peek()?;
        if tok.is_binary_op() {
            return Err(self.error(tok.start, "binary operations are not supported yet"));
        }
        if matches!(expr, Expr::Log(_)) && tok.kind == TokenKind::LBracket {
            let message = "a log range such as [5m] is only valid inside a range aggregation \
                           such as count_over_time({...}[5m])";
            return Err(self.error(tok.start, message));
        }
        Ok(())
    }

    // ---- log queries ----

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let matchers = self.selector()?;
        let stages = self.stages()?;
        Ok(LogExpr { matchers, stages })
    }

    /// `"{" matcher ("," matcher)* "}"`, with at least one matcher that rejects `""`.
    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        let open = self.expect(TokenKind::LBrace, "{")?.start;
        let mut matchers = vec![self.matcher()?];
        while self.peek_is(&TokenKind::Comma) {
            self.bump()?;
            matchers.push(self.matcher()?);
        }
        self.expect(TokenKind::RBrace, ", or }")?;
        if matchers.iter().all(|m| m.matches("")) {
            return Err(self.error(open, EMPTY_COMPATIBLE));
        }
        Ok(matchers)
    }

    fn matcher(&mut self) -> Result<Matcher, ParseError> {
        let name = self.expect(TokenKind::Ident, "label name")?.text;
        let tok = self.peek()?;
        let op = match tok.kind {
            TokenKind::Eq => MatchOp::Eq,
            TokenKind::Neq => MatchOp::Neq,
            TokenKind::Re => MatchOp::Re,
            TokenKind::Nre => MatchOp::Nre,
            _ => return Err(self.unexpected(tok, "=, !=, =~ or !~")),
        };
        self.bump()?;
        let (value, at) = self.string()?;
        Matcher::new(name, op, value.as_str()).map_err(|e| self.regex_error(at, &value, &e))
    }

    /// A string literal's value and offset.
    fn string(&mut self) -> Result<(String, usize), ParseError> {
        let tok = self.peek()?;
        let TokenKind::Str(value) = &tok.kind else {
            return Err(self.unexpected(tok, "STRING"));
        };
        let found = (value.clone(), tok.start);
        self.bump()?;
        Ok(found)
    }

    fn regex_error(&self, at: usize, pattern: &str, err: &regex::Error) -> ParseError {
        // The syntax error's text repeats the pattern with a caret; its last `error:` line is
        // the part worth showing on one line.
        let detail = match err {
            regex::Error::Syntax(text) => text
                .lines()
                .rev()
                .find_map(|line| line.strip_prefix("error: "))
                .unwrap_or(text)
                .to_owned(),
            other => other.to_string(),
        };
        let mut message = String::from("invalid regular expression ");
        // Writing to a String cannot fail.
        let _ = write_quoted(&mut message, pattern);
        message.push_str(": ");
        message.push_str(&detail);
        self.error(at, message)
    }

    /// Pipeline stages up to the first token that does not start one.
    fn stages(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut stages = Vec::new();
        loop {
            if self.peek_is(&TokenKind::Pipe) {
                let pipe = self.bump()?.start;
                stages.push(Stage::Label(self.label_filter_stage(pipe)?));
                continue;
            }
            let Some(op) = self.filter_op()? else {
                return Ok(stages);
            };
            self.bump()?;
            stages.push(Stage::Line(self.filter_value(op)?));
            if self.peek_keyword("or") {
                let at = self.peek()?.start;
                return Err(self.error(at, "`or` between line filters is not supported yet"));
            }
        }
    }

    /// The line filter operator ahead, if any. Pattern filters are refused here, where the
    /// user wrote them.
    fn filter_op(&mut self) -> Result<Option<FilterOp>, ParseError> {
        let tok = self.peek()?;
        let op = match tok.kind {
            TokenKind::PipeExact => FilterOp::Contains,
            TokenKind::Neq => FilterOp::NotContains,
            TokenKind::PipeMatch => FilterOp::Match,
            TokenKind::Nre => FilterOp::NotMatch,
            TokenKind::PipePattern | TokenKind::NotPattern => {
                let message = format!(
                    "pattern line filters (`{}`) are not supported yet",
                    tok.text
                );
                return Err(self.error(tok.start, message));
            }
            _ => return Ok(None),
        };
        Ok(Some(op))
    }

    fn filter_value(&mut self, op: FilterOp) -> Result<LineFilter, ParseError> {
        if self.peek_keyword("ip") {
            let at = self.peek()?.start;
            return Err(self.error(at, "`ip(...)` line filters are not supported yet"));
        }
        let (value, at) = self.string()?;
        LineFilter::new(op, value.as_str()).map_err(|e| self.regex_error(at, &value, &e))
    }

    // ---- metric queries ----

    /// A function call, the identifier ahead being its name.
    fn call(&mut self) -> Result<MetricExpr, ParseError> {
        let tok = self.bump()?;
        if let Some(func) = RangeFunc::from_name(tok.text) {
            return self.range_aggregation(func);
        }
        if let Some(op) = AggOp::from_name(tok.text) {
            return self.vector_aggregation(op);
        }
        let message = if UNSUPPORTED_FUNCTIONS.contains(&tok.text) {
            format!("function `{}` is not supported yet", tok.text)
        } else if self.peek_is(&TokenKind::LParen) {
            format!("unknown function {}", tok.text)
        } else {
            return Err(self.unexpected(&tok, "{, ( or a function name"));
        };
        Err(self.error(tok.start, message))
    }

    /// `func "(" log_range ")"`; the name is consumed.
    fn range_aggregation(&mut self, func: RangeFunc) -> Result<MetricExpr, ParseError> {
        self.expect(TokenKind::LParen, "(")?;
        let LogRange {
            log,
            range_ns,
            offset_ns,
        } = match self.range_operand()? {
            RangeOperand::Range(range) => range,
            RangeOperand::Log(_) => {
                let tok = self.peek()?;
                return Err(self.unexpected(tok, "["));
            }
        };
        self.expect(TokenKind::RParen, ")")?;
        if self.peek_keyword("by") || self.peek_keyword("without") {
            let at = self.peek()?.start;
            return Err(self.error(at, format!("grouping is not allowed for {func}")));
        }
        Ok(MetricExpr::Range {
            func,
            log,
            range_ns,
            offset_ns,
        })
    }

    /// What may stand inside a range aggregation's parentheses, in Loki's forms:
    /// `log [range] [offset]`, `selector [range] [offset] filters`, `(log) [range] [offset]`
    /// and `(log_range)`. Without a range it is a log query, which only a caller inside
    /// parentheses may still complete.
    fn range_operand(&mut self) -> Result<RangeOperand, ParseError> {
        let (mut log, parenthesised) = if self.peek_is(&TokenKind::LParen) {
            self.bump()?;
            let inner = self.nested(Self::range_operand)?;
            self.expect(TokenKind::RParen, ")")?;
            match inner {
                RangeOperand::Range(range) => return Ok(RangeOperand::Range(range)),
                RangeOperand::Log(log) => (log, true),
            }
        } else {
            (self.log_expr()?, false)
        };
        if !self.peek_is(&TokenKind::LBracket) {
            return Ok(RangeOperand::Log(log));
        }
        let range_ns = self.range()?;
        let offset_ns = self.offset()?;
        if !parenthesised && log.stages.is_empty() {
            log.stages = self.stages()?;
        }
        Ok(RangeOperand::Range(LogRange {
            log,
            range_ns,
            offset_ns,
        }))
    }

    /// `"[" duration "]"`, positive.
    fn range(&mut self) -> Result<i64, ParseError> {
        self.expect(TokenKind::LBracket, "[")?;
        let (range_ns, at) = self.duration("range")?;
        if range_ns <= 0 {
            return Err(self.error(at, "invalid range: duration must be greater than zero"));
        }
        self.expect(TokenKind::RBracket, "]")?;
        Ok(range_ns)
    }

    /// `offset <duration>` if present, else 0.
    fn offset(&mut self) -> Result<i64, ParseError> {
        if !self.peek_keyword("offset") {
            return Ok(0);
        }
        self.bump()?;
        Ok(self.duration("offset")?.0)
    }

    /// A duration token's nanoseconds and offset; `what` names it in errors.
    fn duration(&mut self, what: &str) -> Result<(i64, usize), ParseError> {
        let tok = self.peek()?;
        match tok.kind {
            TokenKind::Number => {}
            TokenKind::Minus => {
                let message = format!("invalid {what}: duration must not be negative");
                return Err(self.error(tok.start, message));
            }
            _ => return Err(self.unexpected(tok, "duration")),
        }
        let at = tok.start;
        let ns =
            parse_duration(tok.text).map_err(|e| self.error(at, format!("invalid {what}: {e}")))?;
        self.bump()?;
        Ok((ns, at))
    }

    /// `op [grouping] "(" metric ")" [grouping]`; the name is consumed.
    fn vector_aggregation(&mut self, op: AggOp) -> Result<MetricExpr, ParseError> {
        let before = self.grouping()?;
        let expecting = if before.is_some() {
            "("
        } else {
            "by, without or ("
        };
        self.expect(TokenKind::LParen, expecting)?;
        let at = self.peek()?.start;
        let inner = match self.expr()? {
            Expr::Metric(inner) => inner,
            Expr::Log(_) => {
                let message = format!(
                    "{op} needs a metric query, not a log query: wrap it in a range \
                     aggregation such as count_over_time({{...}}[5m])"
                );
                return Err(self.error(at, message));
            }
        };
        self.expect(TokenKind::RParen, ")")?;
        let grouping = match before {
            Some(grouping) => Some(grouping),
            None => self.grouping()?,
        };
        Ok(MetricExpr::Aggregate {
            op,
            grouping,
            inner: Box::new(inner),
        })
    }

    /// `("by" | "without") "(" [label ("," label)* [","]] ")"` if present.
    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = if self.peek_keyword("by") {
            false
        } else if self.peek_keyword("without") {
            true
        } else {
            return Ok(None);
        };
        self.bump()?;
        self.expect(TokenKind::LParen, "(")?;
        let mut labels = Vec::new();
        while !self.peek_is(&TokenKind::RParen) {
            let label = self.expect(TokenKind::Ident, "label name or )")?;
            labels.push(label.text.to_owned());
            if !self.peek_is(&TokenKind::Comma) {
                break;
            }
            self.bump()?;
        }
        self.expect(TokenKind::RParen, ", or )")?;
        Ok(Some(Grouping { without, labels }))
    }
}
