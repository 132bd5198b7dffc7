//! Label filter stages (`| status >= 500, level="error" or (...)`): conditions joined with
//! `and`, `,` and `or`, parsed with the same one-token lookahead and error wording as the rest.

use super::{Parser, STAGES};
use crate::duration::parse_duration;
use crate::error::ParseError;
use crate::label_filter::{CmpOp, LabelFilter, NumberFilter};
use crate::lexer::TokenKind;
use crate::matcher::{MatchOp, Matcher};

const MIXED_COMMA_OR: &str = "`,` and `or` on the same level of a label filter are ambiguous: \
     write `and` instead of `,`, or add parentheses";

/// Byte units of Loki's bytes comparisons (`| size > 20MB`), lowercased.
const BYTE_UNITS: [&str; 11] = [
    "b", "kb", "kib", "mb", "mib", "gb", "gib", "tb", "tib", "pb", "pib",
];

/// Why a number token after a comparison is not a number we take.
fn not_a_number(text: &str) -> String {
    if parse_duration(text).is_ok() {
        return format!("duration comparisons such as `{text}` are not supported yet");
    }
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    if BYTE_UNITS.contains(&unit.to_ascii_lowercase().as_str()) {
        return format!("bytes comparisons such as `{text}` are not supported yet");
    }
    format!("invalid number {text:?}")
}

impl Parser<'_> {
    /// After `|`: a label filter, or the error for a stage we do not run yet.
    pub(super) fn label_filter_stage(&mut self, pipe: usize) -> Result<LabelFilter, ParseError> {
        let tok = self.peek()?;
        match tok.kind {
            TokenKind::Ident if STAGES.contains(&tok.text) => {
                Err(self.error(pipe, format!("`| {}` is not supported yet", tok.text)))
            }
            TokenKind::Ident | TokenKind::LParen => {
                let filter = self.or_filter()?;
                self.reject_side_by_side()?;
                Ok(filter)
            }
            _ => Err(self.unexpected(tok, "a pipeline stage or a label filter")),
        }
    }

    /// `and_filter ("or" and_filter)*`: `or` binds looser than `and`, as in Loki. A `,` on the
    /// same level as an `or` is refused: Loki's grammar groups `a, b or c` as `a and (b or c)`,
    /// unlike `a and b or c`, and silently picking either would surprise someone.
    fn or_filter(&mut self) -> Result<LabelFilter, ParseError> {
        self.nested(|p| {
            let (mut filter, mut comma) = p.and_filter()?;
            let mut has_or = false;
            while p.peek_keyword("or") {
                p.bump()?;
                has_or = true;
                let (right, right_comma) = p.and_filter()?;
                comma = comma.or(right_comma);
                filter = LabelFilter::or(filter, right);
            }
            match comma {
                Some(at) if has_or => Err(p.error(at, MIXED_COMMA_OR)),
                _ => Ok(filter),
            }
        })
    }

    /// `operand (("and" | ",") operand)*`, and where its first `,` is.
    fn and_filter(&mut self) -> Result<(LabelFilter, Option<usize>), ParseError> {
        let mut filter = self.label_operand()?;
        let mut comma = None;
        loop {
            let tok = self.peek()?;
            let at = tok.start;
            if tok.kind == TokenKind::Comma {
                comma.get_or_insert(at);
            } else if !self.peek_keyword("and") {
                return Ok((filter, comma));
            }
            self.bump()?;
            filter = LabelFilter::and(filter, self.label_operand()?);
        }
    }

    /// `"(" or_filter ")"` or one condition.
    fn label_operand(&mut self) -> Result<LabelFilter, ParseError> {
        if !self.peek_is(&TokenKind::LParen) {
            return self.condition();
        }
        self.bump()?;
        let filter = self.or_filter()?;
        self.expect(TokenKind::RParen, "and, or or )")?;
        Ok(filter)
    }

    /// `name op "string"` (`=`, `!=`, `=~`, `!~`) or `name op number` (`==`, `=`, `!=`, `>`,
    /// `>=`, `<`, `<=`).
    fn condition(&mut self) -> Result<LabelFilter, ParseError> {
        let name = self.expect(TokenKind::Ident, "label name or (")?.text;
        let tok = self.peek()?;
        let (string_op, number_op) = match tok.kind {
            TokenKind::Eq => (Some(MatchOp::Eq), Some(CmpOp::Eq)),
            TokenKind::Neq => (Some(MatchOp::Neq), Some(CmpOp::Neq)),
            TokenKind::Re => (Some(MatchOp::Re), None),
            TokenKind::Nre => (Some(MatchOp::Nre), None),
            TokenKind::EqEq => (None, Some(CmpOp::Eq)),
            TokenKind::Gt => (None, Some(CmpOp::Gt)),
            TokenKind::Gte => (None, Some(CmpOp::Gte)),
            TokenKind::Lt => (None, Some(CmpOp::Lt)),
            TokenKind::Lte => (None, Some(CmpOp::Lte)),
            _ => return Err(self.unexpected(tok, "=, !=, =~, !~, ==, >, >=, < or <=")),
        };
        self.bump()?;
        let tok = self.peek()?;
        match (&tok.kind, string_op, number_op) {
            (TokenKind::Str(_), Some(op), _) => {
                let (value, at) = self.string()?;
                let m = Matcher::new(name, op, value.as_str())
                    .map_err(|e| self.regex_error(at, &value, &e))?;
                Ok(LabelFilter::Match(m))
            }
            (TokenKind::Number | TokenKind::Minus | TokenKind::Plus, _, Some(op)) => {
                let value = self.number()?;
                let name = name.to_owned();
                Ok(LabelFilter::Number(NumberFilter { name, op, value }))
            }
            (TokenKind::Ident, _, _) if tok.text == "ip" => {
                Err(self.error(tok.start, "`ip(...)` label filters are not supported yet"))
            }
            (_, Some(_), Some(_)) => Err(self.unexpected(tok, "STRING or NUMBER")),
            (_, Some(_), None) => Err(self.unexpected(tok, "STRING")),
            _ => Err(self.unexpected(tok, "NUMBER")),
        }
    }

    /// A number literal with an optional sign; finite.
    fn number(&mut self) -> Result<f64, ParseError> {
        let negative = match self.peek()?.kind {
            TokenKind::Minus => true,
            TokenKind::Plus => false,
            _ => return self.unsigned_number(),
        };
        self.bump()?;
        let value = self.unsigned_number()?;
        Ok(if negative { -value } else { value })
    }

    fn unsigned_number(&mut self) -> Result<f64, ParseError> {
        let tok = self.peek()?;
        if tok.kind != TokenKind::Number {
            return Err(self.unexpected(tok, "NUMBER"));
        }
        let (text, at) = (tok.text, tok.start);
        let value = match text.parse::<f64>() {
            Ok(value) if value.is_finite() => value,
            Ok(_) => return Err(self.error(at, format!("number {text} is out of range"))),
            Err(_) => return Err(self.error(at, not_a_number(text))),
        };
        self.bump()?;
        Ok(value)
    }

    /// Loki reads conditions written side by side (`| a="1" b="2"`) as `and`, but groups them
    /// with `or` in ways `and` does not; refused rather than guessed.
    fn reject_side_by_side(&self) -> Result<(), ParseError> {
        let tok = self.peek()?;
        if tok.kind == TokenKind::Ident && tok.text != "unless" {
            let message = "label filter conditions side by side are not supported yet: join \
                           them with `and`, `,` or `or`";
            return Err(self.error(tok.start, message));
        }
        Ok(())
    }
}
