//! Parser for the `labels` string of a Loki protobuf stream: a Prometheus/LogQL selector with
//! equality matchers only, such as `{app="api", env=`prod`}`.
//!
//! Values may be double-quoted or single-quoted (Go escapes: `\a \b \f \n \r \t \v \\ \" \'`,
//! `\xHH`, `\OOO`, `\uHHHH`, `\UHHHHHHHH`; the result must be UTF-8; no raw newline) or
//! backquoted (raw, no escapes). A trailing comma before `}` is accepted. Names are taken as
//! written up to the next delimiter and checked later by `validate`, so a bad name gets the same
//! message on every path. Errors carry the byte offset where parsing stopped.

/// Why a label string could not be parsed, at byte `offset` of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) offset: usize,
    pub(crate) what: String,
}

/// Parses `{name="value", ...}` into pairs in written order (not yet validated or sorted).
pub(crate) fn parse(src: &str) -> Result<Vec<(String, String)>, SyntaxError> {
    let mut p = Parser { src, pos: 0 };
    p.skip_ws();
    p.expect(b'{')?;
    let mut pairs = Vec::new();
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        pairs.push(p.pair()?);
        p.skip_ws();
        if !p.eat(b',') && p.peek() != Some(b'}') {
            return Err(p.error("expected ',' or '}'"));
        }
    }
    p.skip_ws();
    if p.pos < src.len() {
        return Err(p.error("unexpected text after '}'"));
    }
    Ok(pairs)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.pos += usize::from(hit);
        hit
    }

    fn expect(&mut self, byte: u8) -> Result<(), SyntaxError> {
        match self.eat(byte) {
            true => Ok(()),
            false => Err(self.error(format!("expected '{}'", char::from(byte)))),
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn error(&self, what: impl Into<String>) -> SyntaxError {
        self.error_at(self.pos, what)
    }

    fn error_at(&self, offset: usize, what: impl Into<String>) -> SyntaxError {
        SyntaxError {
            offset,
            what: what.into(),
        }
    }

    fn pair(&mut self) -> Result<(String, String), SyntaxError> {
        let name = self.name()?;
        self.skip_ws();
        self.equals()?;
        self.skip_ws();
        Ok((name.to_owned(), self.value()?))
    }

    fn name(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| !is_delimiter(b)) {
            self.pos += 1;
        }
        match start == self.pos {
            true => Err(self.error("expected a label name")),
            false => Ok(&self.src[start..self.pos]),
        }
    }

    fn equals(&mut self) -> Result<(), SyntaxError> {
        let rest = &self.src.as_bytes()[self.pos..];
        if let Some(op) = ["!=", "=~", "!~"]
            .into_iter()
            .find(|op| rest.starts_with(op.as_bytes()))
        {
            return Err(self.error(format!(
                "only equality matchers (=) are allowed, found {op:?}"
            )));
        }
        self.expect(b'=')
    }

    fn value(&mut self) -> Result<String, SyntaxError> {
        match self.peek() {
            Some(b'`') => self.raw(),
            Some(quote @ (b'"' | b'\'')) => self.quoted(quote),
            _ => Err(self.error("expected a quoted label value")),
        }
    }

    fn raw(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        let body = &self.src[start + 1..];
        let Some(len) = body.find('`') else {
            return Err(self.error_at(start, "unterminated quoted value"));
        };
        self.pos = start + 1 + len + 1;
        Ok(body[..len].to_owned())
    }

    fn quoted(&mut self, quote: u8) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        let bytes = self.src.as_bytes();
        let plain = bytes[self.pos..]
            .iter()
            .position(|&b| b == quote || b == b'\\' || b == b'\n');
        if let Some(len) = plain.filter(|&len| bytes[self.pos + len] == quote) {
            self.pos += len + 1;
            return Ok(self.src[start + 1..self.pos - 1].to_owned());
        }
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, "unterminated quoted value")),
                Some(b'\n') => return Err(self.error("newline in quoted value")),
                Some(b'\\') => self.escape(&mut out)?,
                Some(b) if b == quote => break,
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        String::from_utf8(out).map_err(|_| self.error_at(start, "quoted value is not valid UTF-8"))
    }

    /// Decodes the escape at `pos` (a backslash) onto `out`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), SyntaxError> {
        let start = self.pos;
        let bad = |p: &Self| p.error_at(start, "invalid escape sequence");
        let Some(kind) = self.src.as_bytes().get(start + 1).copied() else {
            return Err(bad(self));
        };
        self.pos += 2;
        let simple = match kind {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' => Some(kind),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        let (digits, radix) = match kind {
            b'x' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            b'0'..=b'7' => {
                self.pos -= 1;
                (3, 8)
            }
            _ => return Err(bad(self)),
        };
        let text = self
            .src
            .get(self.pos..self.pos + digits)
            .ok_or_else(|| bad(self))?;
        let code = u32::from_str_radix(text, radix).map_err(|_| bad(self))?;
        self.pos += digits;
        match kind {
            b'u' | b'U' => {
                let c = char::from_u32(code).ok_or_else(|| bad(self))?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => out.push(u8::try_from(code).map_err(|_| bad(self))?),
        }
        Ok(())
    }
}

/// Bytes that end a label name.
fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || b"=!~,{}\"'`".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Vec<(String, String)> {
        parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}"))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_parse_into_pairs() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("{}", &[]),
            ("  { }  ", &[]),
            (r#"{app="x"}"#, &[("app", "x")]),
            (r#"{app="x", env="prod"}"#, &[("app", "x"), ("env", "prod")]),
            (
                r#"{ app = "x" ,env="prod", }"#,
                &[("app", "x"), ("env", "prod")],
            ),
            ("{a=`raw \\n \"q\"`}", &[("a", "raw \\n \"q\"")]),
            (r#"{a='single "q"'}"#, &[("a", "single \"q\"")]),
            (r#"{a="q\"b\\c\nd\te"}"#, &[("a", "q\"b\\c\nd\te")]),
            (
                r#"{a="\x41\101\u00e9\U0001F600\a\'"}"#,
                &[("a", "AAé😀\u{7}'")],
            ),
            (r#"{a="é", b=""}"#, &[("a", "é"), ("b", "")]),
            (r#"{1abc="v"}"#, &[("1abc", "v")]),
        ];
        for (src, want) in cases {
            assert_eq!(ok(src), pairs(want), "{src}");
        }
    }

    #[test]
    fn syntax_errors_name_the_offset() {
        let cases = [
            ("", 0, "expected '{'"),
            (r#"app="x""#, 0, "expected '{'"),
            (r#"{app="x""#, 8, "expected ',' or '}'"),
            (r#"{app="x" env="y"}"#, 9, "expected ',' or '}'"),
            (
                r#"{app!="x"}"#,
                4,
                r#"only equality matchers (=) are allowed, found "!=""#,
            ),
            (
                r#"{app=~"x"}"#,
                4,
                r#"only equality matchers (=) are allowed, found "=~""#,
            ),
            (r#"{app x="y"}"#, 5, "expected '='"),
            (r#"{="x"}"#, 1, "expected a label name"),
            (r#"{,}"#, 1, "expected a label name"),
            (r#"{app=x}"#, 5, "expected a quoted label value"),
            (r#"{app="x}"#, 5, "unterminated quoted value"),
            ("{app=`x}", 5, "unterminated quoted value"),
            ("{app=\"a\nb\"}", 7, "newline in quoted value"),
            (r#"{app="\q"}"#, 6, "invalid escape sequence"),
            (r#"{app="\x4"}"#, 6, "invalid escape sequence"),
            (r#"{app="\777"}"#, 6, "invalid escape sequence"),
            (r#"{app="\uD800"}"#, 6, "invalid escape sequence"),
            (r#"{app="\xff"}"#, 5, "quoted value is not valid UTF-8"),
            (r#"{app="x"} extra"#, 10, "unexpected text after '}'"),
            (r#"{app="x"}}"#, 9, "unexpected text after '}'"),
        ];
        for (src, offset, what) in cases {
            let err = parse(src).unwrap_err();
            assert_eq!((err.offset, err.what.as_str()), (offset, what), "{src}");
        }
    }
}
