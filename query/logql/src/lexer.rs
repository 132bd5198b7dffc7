//! Turns query text into tokens on demand, so the parser reports the first problem in reading
//! order. Owns LogQL's string literals: Go-escaped double-quoted strings and raw backtick
//! strings, and the inverse, [`write_quoted`], used when printing queries back.

use crate::error::ParseError;
use std::fmt;

/// What a token is. Keywords (`by`, `offset`, ...) are plain identifiers: the parser decides
/// from context, so they stay usable as label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|>`
    PipePattern,
    /// `!>`
    NotPattern,
    Pipe,
    EqEq,
    Gt,
    Gte,
    Lt,
    Lte,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Ident,
    /// A number or duration; its text is interpreted by the parser.
    Number,
    /// A string literal, already unescaped.
    Str(String),
    Eof,
}

/// A token with its byte offset and source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    pub start: usize,
    pub text: &'a str,
}

impl Token<'_> {
    /// How an error message names this token: `IDENTIFIER "foo"`, `STRING "x"`, `}`.
    pub fn describe(&self) -> String {
        match self.kind {
            TokenKind::Ident => format!("IDENTIFIER {:?}", self.text),
            TokenKind::Number => format!("NUMBER {:?}", self.text),
            TokenKind::Str(_) => format!("STRING {}", self.text),
            TokenKind::Eof => "end of input".to_owned(),
            _ => self.text.to_owned(),
        }
    }

    /// Whether this token starts a binary operation (`+`, `==`, `and`, ...).
    pub fn is_binary_op(&self) -> bool {
        use TokenKind::*;
        match self.kind {
            Plus | Minus | Star | Slash | Percent | Caret | EqEq | Neq | Gt | Gte | Lt | Lte => {
                true
            }
            Ident => matches!(self.text, "and" | "or" | "unless"),
            _ => false,
        }
    }
}

/// Reads tokens from `src` one at a time.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    /// The next token; at the end of input, `Eof` (again and again).
    pub fn next_token(&mut self) -> Result<Token<'a>, ParseError> {
        self.skip_trivia();
        let start = self.pos;
        let kind = match self.peek_char() {
            None => TokenKind::Eof,
            Some('"') => self.quoted()?,
            Some('`') => self.raw()?,
            Some(c) if c.is_ascii_digit() => {
                // Durations carry their unit (`5m`, `3µs`), so letters stay in the token.
                self.eat_while(|c| c.is_alphanumeric() || c == '.');
                TokenKind::Number
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                self.eat_while(|c| c.is_ascii_alphanumeric() || c == '_');
                TokenKind::Ident
            }
            Some(c) => self.operator(c)?,
        };
        let text = &self.src[start..self.pos];
        Ok(Token { kind, start, text })
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump_char(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek_char().is_some_and(&keep) {
            self.bump_char();
        }
    }

    /// Skips whitespace and `#` comments, which run to the end of the line.
    fn skip_trivia(&mut self) {
        loop {
            self.eat_while(char::is_whitespace);
            if self.peek_char() != Some('#') {
                return;
            }
            self.eat_while(|c| c != '\n');
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, at, message)
    }

    fn operator(&mut self, first: char) -> Result<TokenKind, ParseError> {
        let rest = &self.src[self.pos..];
        if let Some(kind) = rest.get(..2).and_then(two_char_operator) {
            self.pos += 2;
            return Ok(kind);
        }
        let kind = one_char_operator(first).ok_or_else(|| {
            let message = format!("syntax error: unexpected character {first:?}");
            self.error(self.pos, message)
        })?;
        self.pos += 1;
        Ok(kind)
    }

    /// A Go double-quoted string. Escapes may spell bytes (`\xc3\xa9`), so the value is built as
    /// bytes and must be UTF-8 at the end.
    fn quoted(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            match self.peek_char() {
                None => return Err(self.error(start, "unterminated string")),
                Some('\n') => return Err(self.error(start, "newline in string")),
                Some('"') => break,
                Some('\\') => self.escape(&mut bytes)?,
                Some(c) => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    self.pos += c.len_utf8();
                }
            }
        }
        self.pos += 1;
        String::from_utf8(bytes)
            .map(TokenKind::Str)
            .map_err(|_| self.error(start, "string is not valid UTF-8"))
    }

    /// One escape sequence, the backslash at `self.pos`, appended to `out` as bytes.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let at = self.pos;
        self.pos += 1;
        let Some(c) = self.bump_char() else {
            return Err(self.error(at, "unterminated string"));
        };
        let simple = match c {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        match (simple, c) {
            (Some(byte), _) => out.push(byte),
            (None, 'x') => out.push(self.byte_escape(at, 16, 2)?),
            (None, '0'..='7') => {
                self.pos -= 1;
                out.push(self.byte_escape(at, 8, 3)?);
            }
            (None, 'u') => self.char_escape(at, 4, out)?,
            (None, 'U') => self.char_escape(at, 8, out)?,
            _ => return Err(self.invalid_escape(at)),
        }
        Ok(())
    }

    /// `len` digits in `radix` at `self.pos`, consumed.
    fn digits(&mut self, at: usize, radix: u32, len: usize) -> Result<u32, ParseError> {
        let digits = self
            .src
            .get(self.pos..self.pos + len)
            .filter(|d| d.chars().all(|c| c.is_digit(radix)));
        let value = digits.and_then(|d| u32::from_str_radix(d, radix).ok());
        let value = value.ok_or_else(|| self.invalid_escape(at))?;
        self.pos += len;
        Ok(value)
    }

    fn byte_escape(&mut self, at: usize, radix: u32, len: usize) -> Result<u8, ParseError> {
        let value = self.digits(at, radix, len)?;
        u8::try_from(value).map_err(|_| self.invalid_escape(at))
    }

    fn char_escape(&mut self, at: usize, len: usize, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let value = self.digits(at, 16, len)?;
        let c = char::from_u32(value).ok_or_else(|| self.invalid_escape(at))?;
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn invalid_escape(&self, at: usize) -> ParseError {
        let end = self.src[at..]
            .char_indices()
            .nth(2)
            .map_or(self.src.len(), |(i, _)| at + i);
        let message = format!("invalid escape sequence `{}` in string", &self.src[at..end]);
        self.error(at, message)
    }

    /// A backtick string: no escapes; carriage returns are dropped, as Go does.
    fn raw(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        let body = &self.src[start + 1..];
        let Some(len) = body.find('`') else {
            return Err(self.error(start, "unterminated raw string"));
        };
        self.pos = start + 1 + len + 1;
        Ok(TokenKind::Str(body[..len].replace('\r', "")))
    }
}

fn two_char_operator(text: &str) -> Option<TokenKind> {
    Some(match text {
        "!=" => TokenKind::Neq,
        "!~" => TokenKind::Nre,
        "!>" => TokenKind::NotPattern,
        "=~" => TokenKind::Re,
        "==" => TokenKind::EqEq,
        "|=" => TokenKind::PipeExact,
        "|~" => TokenKind::PipeMatch,
        "|>" => TokenKind::PipePattern,
        ">=" => TokenKind::Gte,
        "<=" => TokenKind::Lte,
        _ => return None,
    })
}

fn one_char_operator(c: char) -> Option<TokenKind> {
    Some(match c {
        '{' => TokenKind::LBrace,
        '}' => TokenKind::RBrace,
        '(' => TokenKind::LParen,
        ')' => TokenKind::RParen,
        '[' => TokenKind::LBracket,
        ']' => TokenKind::RBracket,
        ',' => TokenKind::Comma,
        '=' => TokenKind::Eq,
        '|' => TokenKind::Pipe,
        '>' => TokenKind::Gt,
        '<' => TokenKind::Lt,
        '+' => TokenKind::Plus,
        '-' => TokenKind::Minus,
        '*' => TokenKind::Star,
        '/' => TokenKind::Slash,
        '%' => TokenKind::Percent,
        '^' => TokenKind::Caret,
        _ => return None,
    })
}

/// Writes `s` as a double-quoted LogQL string that the lexer reads back to exactly `s`.
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().expect("lexes");
            if token.kind == TokenKind::Eof {
                return out;
            }
            out.push(token.kind);
        }
    }

    fn string(src: &str) -> Result<String, ParseError> {
        match Lexer::new(src).next_token()?.kind {
            TokenKind::Str(s) => Ok(s),
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn operators_take_the_longest_match() {
        use TokenKind::*;
        assert_eq!(
            kinds("|= |~ |> | != !~ !> = =~ == >= > <= <"),
            vec![
                PipeExact,
                PipeMatch,
                PipePattern,
                Pipe,
                Neq,
                Nre,
                NotPattern,
                Eq,
                Re,
                EqEq,
                Gte,
                Gt,
                Lte,
                Lt
            ]
        );
    }

    #[test]
    fn durations_are_single_number_tokens() {
        let mut lexer = Lexer::new("[1h30m] 3µs");
        let tokens: Vec<_> = (0..4).map(|_| lexer.next_token().unwrap().text).collect();
        assert_eq!(tokens, ["[", "1h30m", "]", "3µs"]);
    }

    #[test]
    fn comments_and_newlines_are_skipped() {
        use TokenKind::*;
        assert_eq!(
            kinds("{ # the app\n a # more\n}"),
            vec![LBrace, Ident, RBrace]
        );
    }

    #[test]
    fn go_escapes_are_decoded() {
        assert_eq!(string(r#""a\"b\\c\n\t\r""#).unwrap(), "a\"b\\c\n\t\r");
        assert_eq!(string(r#""\u00e9\U0001F600""#).unwrap(), "é😀");
        assert_eq!(
            string(r#""\xc3\xa9\101\a\b\f\v""#).unwrap(),
            "éA\x07\x08\x0c\x0b"
        );
    }

    #[test]
    fn raw_strings_keep_backslashes() {
        assert_eq!(string(r"`a\nb\d+`").unwrap(), r"a\nb\d+");
        assert_eq!(string("`multi\r\nline`").unwrap(), "multi\nline");
    }

    #[test]
    fn bad_strings_point_at_the_problem() {
        let cases = [
            (r#""abc"#, 1, "unterminated string"),
            ("`abc", 1, "unterminated raw string"),
            ("\"a\nb\"", 1, "newline in string"),
            (r#""a\qb""#, 3, r"invalid escape sequence `\q`"),
            (r#""\u12""#, 2, "invalid escape sequence"),
            (r#""\ud800""#, 2, "invalid escape sequence"),
            (r#""\400""#, 2, "invalid escape sequence"),
            (r#""\xff""#, 1, "not valid UTF-8"),
        ];
        for (src, col, message) in cases {
            let err = string(src).unwrap_err();
            assert_eq!(err.col, col, "{src}");
            assert!(err.message.contains(message), "{src}: {}", err.message);
        }
    }

    #[test]
    fn unknown_characters_are_syntax_errors() {
        let err = Lexer::new("  @").next_token().unwrap_err();
        assert_eq!((err.line, err.col), (1, 3));
        assert_eq!(err.message, "syntax error: unexpected character '@'");
    }

    #[test]
    fn quoting_reads_back() {
        for s in [
            "",
            "plain",
            "q\"b\\s",
            "nl\n\t\r",
            "\u{0}\u{7f}\u{85}",
            "é😀",
        ] {
            let mut quoted = String::new();
            write_quoted(&mut quoted, s).unwrap();
            assert_eq!(string(&quoted).unwrap(), s, "{quoted}");
        }
    }
}
