//! The line parsers of a LogPipeline: `json`, `logfmt`, `regex` and `pattern`, each compiled
//! once and then run on every line, appending `(key, value)` fields that borrow from the line
//! (and from the parser, for regex and pattern keys) wherever the text needs no rewriting.
//!
//! They follow Loki's `| json`, `| logfmt`, `| regexp` and `| pattern`, with these rules:
//!
//! **Keys** from JSON and logfmt are sanitised to `[a-zA-Z_][a-zA-Z0-9_]*`: every other
//! character (a multi-byte one counts once) becomes `_`, a key starting with a digit gets a
//! `_` in front, and an empty key becomes `_`. Fields keep the order of the line; a key that
//! occurs twice is appended twice and the caller decides which one wins.
//!
//! **json**: the line must be one JSON object (surrounding whitespace allowed, nothing after
//! it). Strings are unescaped; numbers, `true` and `false` keep their JSON text (`1.50`
//! stays `1.50`); `null` is omitted (there is no value to store, and Loki does the same);
//! arrays become their compact JSON text (`[1, "a"]` → `[1,"a"]`). Nested objects are
//! flattened: `{"a":{"b":1}}` gives `a<sep>b = 1`, with each part sanitised and the
//! separator inserted as given; an empty nested object gives nothing. Objects nested deeper
//! than [`MAX_JSON_DEPTH`] are kept as their compact JSON text, which bounds the recursion.
//! serde_json does the parsing: keys and values are read as borrowed `&str`/`RawValue`, so
//! a string without escapes and any number cost no copy.
//!
//! **logfmt**: `key=value`, `key="quoted \"value\""` (JSON escapes; an unknown escape such as
//! Go's `\x1b` is kept as written), `key=` and a bare `key` (both give an empty value).
//! Pairs are separated by whitespace (any byte up to `' '`). A bare value runs to the next
//! whitespace and may contain `=` and `"`. Failures: an unterminated quote, a `=` with no
//! key, a `"` inside a key, or text right after a closing quote. A line without pairs (empty
//! or blank) parses to no fields.
//!
//! **regex**: Rust `regex` syntax, searched anywhere in the line (anchor with `^…$` to match
//! the whole line). Named groups become fields, with names sanitised like keys; unnamed groups
//! are ignored; an optional named group that did not take part is omitted. At least one named
//! group is required.
//!
//! **pattern**: Loki's pattern syntax, e.g. `<ts> <level> [<component>] <_>`. `<name>`
//! captures the text up to the first occurrence of the literal that follows it; `<_>` does the
//! same and discards it; literals (spaces included) must match exactly. A pattern that starts
//! with a literal needs the line to start with it; one that ends with a capture gives that
//! capture the rest of the line, one that ends with a literal needs the line to end with it
//! (so `"<agent>"` takes everything up to the final quote). Unlike Loki, a literal that is
//! not found fails the line instead of giving the capture the rest of it: a line that does
//! not have the expected shape (a stack-trace continuation, say) must not be mis-parsed.
//! Names are `[a-zA-Z_][a-zA-Z0-9_]*`; a `<` that does not start such a capture is literal.
//! Compile errors: no named capture, two captures with no literal between them, a name used
//! twice.
//!
//! A line that fails leaves the output exactly as it was and yields a [`ParseFailure`] saying
//! why; the common failures carry a static or shared message and allocate nothing.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Fields parsed from one line; values (and keys where possible) borrow from the line.
pub type Fields<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Nested JSON objects deeper than this are kept as JSON text instead of being flattened.
pub const MAX_JSON_DEPTH: usize = 32;

/// A compiled line parser.
#[derive(Debug, Clone)]
pub enum Parser {
    Json(JsonRule),
    Logfmt,
    Regex(RegexRule),
    Pattern(PatternRule),
}

/// The settings of a JSON parser.
#[derive(Debug, Clone)]
pub struct JsonRule {
    separator: Box<str>,
}

/// A compiled regex with its named groups.
#[derive(Debug, Clone)]
pub struct RegexRule {
    regex: regex::Regex,
    /// Capture group index and sanitised name of every named group.
    names: Vec<(usize, Box<str>)>,
}

/// A compiled Loki-style pattern.
#[derive(Debug, Clone)]
pub struct PatternRule {
    /// A literal the line must start with.
    prefix: Option<Literal>,
    /// Each a capture ended by the first occurrence of its literal (the last one, when
    /// `tail` is `None`, by the end of the line).
    steps: Vec<Step>,
    /// The capture that takes the rest of the line: `Some(None)` for `<_>`.
    tail: Option<Option<Box<str>>>,
}

#[derive(Debug, Clone)]
struct Step {
    name: Option<Box<str>>,
    literal: Literal,
}

#[derive(Debug, Clone)]
struct Literal {
    text: Box<str>,
    /// The failure when the literal is not where it must be, made once at compile time.
    missing: Arc<str>,
}

/// A rule that cannot be compiled; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

/// Why a line did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    reason: Reason,
    at_byte: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Static(&'static str),
    Shared(Arc<str>),
    Owned(Box<str>),
}

impl ParseFailure {
    fn fixed(reason: &'static str) -> Self {
        ParseFailure {
            reason: Reason::Static(reason),
            at_byte: None,
        }
    }

    fn at(reason: &'static str, at_byte: usize) -> Self {
        ParseFailure {
            reason: Reason::Static(reason),
            at_byte: Some(at_byte),
        }
    }

    fn shared(reason: &Arc<str>) -> Self {
        ParseFailure {
            reason: Reason::Shared(Arc::clone(reason)),
            at_byte: None,
        }
    }

    /// What went wrong, without the position.
    pub fn reason(&self) -> &str {
        match &self.reason {
            Reason::Static(s) => s,
            Reason::Shared(s) => s,
            Reason::Owned(s) => s,
        }
    }

    /// The byte of the line where it went wrong, when one can be named.
    pub fn at_byte(&self) -> Option<usize> {
        self.at_byte
    }
}

impl fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())?;
        match self.at_byte {
            Some(at) => write!(f, " at byte {at}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ParseFailure {}

impl Parser {
    /// A JSON parser joining nested keys with `separator` (callers default to `_`).
    pub fn json(separator: &str) -> Self {
        Parser::Json(JsonRule {
            separator: separator.into(),
        })
    }

    /// A logfmt parser.
    pub fn logfmt() -> Self {
        Parser::Logfmt
    }

    /// A parser whose named capture groups become fields.
    pub fn regex(pattern: &str) -> Result<Self, CompileError> {
        let regex = regex::Regex::new(pattern).map_err(|e| CompileError(format!("regex: {e}")))?;
        let mut names: Vec<(usize, Box<str>)> = Vec::new();
        for (index, name) in regex.capture_names().enumerate() {
            let Some(name) = name else { continue };
            let name: Box<str> = sanitize_key(Cow::Borrowed(name)).into();
            if names.iter().any(|(_, seen)| *seen == name) {
                return Err(CompileError(format!(
                    "regex: two groups are named {name:?}"
                )));
            }
            names.push((index, name));
        }
        if names.is_empty() {
            return Err(CompileError(
                "regex: at least one named group (?P<name>...) is required".into(),
            ));
        }
        Ok(Parser::Regex(RegexRule { regex, names }))
    }

    /// A parser for a Loki-style pattern such as `<ts> <level> [<component>] <_>`.
    pub fn pattern(pattern: &str) -> Result<Self, CompileError> {
        PatternRule::compile(pattern).map(Parser::Pattern)
    }

    /// Appends the line's fields to `out` and returns Ok, or returns why the line does not
    /// parse, leaving `out` exactly as it was. Keys of regex and pattern fields borrow from
    /// the parser, hence `&'a self`.
    pub fn parse<'a>(&'a self, line: &'a str, out: &mut Fields<'a>) -> Result<(), ParseFailure> {
        let before = out.len();
        let parsed = match self {
            Parser::Json(rule) => parse_json(line, &rule.separator, out),
            Parser::Logfmt => parse_logfmt(line, out),
            Parser::Regex(rule) => rule.parse(line, out),
            Parser::Pattern(rule) => rule.parse(line, out),
        };
        if parsed.is_err() {
            out.truncate(before);
        }
        parsed
    }
}

/// Whether `b` may appear in a key (after the first character).
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `key` made a valid field name, borrowed when it already is one.
fn sanitize_key(key: Cow<'_, str>) -> Cow<'_, str> {
    let valid =
        key.bytes().all(is_key_byte) && key.bytes().next().is_some_and(|b| !b.is_ascii_digit());
    if valid {
        return key;
    }
    let mut name = String::with_capacity(key.len() + 1);
    if key.bytes().next().is_none_or(|b| b.is_ascii_digit()) {
        name.push('_');
    }
    push_sanitized(&mut name, &key);
    Cow::Owned(name)
}

/// Appends `part` with every character that may not be in a key replaced by `_`.
fn push_sanitized(name: &mut String, part: &str) {
    for c in part.chars() {
        name.push(if c.is_ascii() && is_key_byte(c as u8) {
            c
        } else {
            '_'
        });
    }
}

// ---------------------------------------------------------------------------------------------
// json

fn parse_json<'a>(
    line: &'a str,
    separator: &str,
    out: &mut Fields<'a>,
) -> Result<(), ParseFailure> {
    if !line.trim_start().starts_with('{') {
        return Err(ParseFailure::fixed("not a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let object = JsonObject {
        prefix: None,
        separator,
        depth: 1,
        out,
    };
    de::Deserializer::deserialize_map(&mut de, object)
        .and_then(|()| de.end())
        .map_err(|e| ParseFailure {
            reason: Reason::Owned(format!("json: {e}").into()),
            at_byte: None,
        })
}

/// Visits one JSON object, appending its fields under `prefix`.
struct JsonObject<'o, 'a> {
    prefix: Option<&'o str>,
    separator: &'o str,
    depth: usize,
    out: &'o mut Fields<'a>,
}

impl<'a> Visitor<'a> for JsonObject<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'a>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(JsonKey(key)) = map.next_key()? {
            let value: &'a RawValue = map.next_value()?;
            let key = self.key(key);
            self.value(key, value.get()).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

impl<'a> JsonObject<'_, 'a> {
    fn key(&self, key: Cow<'a, str>) -> Cow<'a, str> {
        let Some(prefix) = self.prefix else {
            return sanitize_key(key);
        };
        let mut name = String::with_capacity(prefix.len() + self.separator.len() + key.len());
        name.push_str(prefix);
        name.push_str(self.separator);
        push_sanitized(&mut name, &key);
        Cow::Owned(name)
    }

    /// Appends the field(s) of one value; `raw` is valid JSON without surrounding whitespace.
    fn value(&mut self, key: Cow<'a, str>, raw: &'a str) -> Result<(), serde_json::Error> {
        let value = match raw.as_bytes()[0] {
            b'"' if !raw.contains('\\') => Cow::Borrowed(&raw[1..raw.len() - 1]),
            b'"' => Cow::Owned(serde_json::from_str::<String>(raw)?),
            b'n' => return Ok(()),
            b'{' if self.depth < MAX_JSON_DEPTH => {
                let mut de = serde_json::Deserializer::from_str(raw);
                let nested = JsonObject {
                    prefix: Some(&key),
                    separator: self.separator,
                    depth: self.depth + 1,
                    out: self.out,
                };
                return de::Deserializer::deserialize_map(&mut de, nested);
            }
            b'[' | b'{' => compact_json(raw),
            _ => Cow::Borrowed(raw),
        };
        self.out.push((key, value));
        Ok(())
    }
}

/// A JSON object key, borrowed from the line unless it has escapes.
struct JsonKey<'a>(Cow<'a, str>);

impl<'a> Deserialize<'a> for JsonKey<'a> {
    fn deserialize<D: de::Deserializer<'a>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'a> Visitor<'a> for KeyVisitor {
            type Value = JsonKey<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<Self::Value, E> {
                Ok(JsonKey(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonKey(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Valid JSON text with the whitespace outside strings removed; borrowed when there is none.
fn compact_json(raw: &str) -> Cow<'_, str> {
    let mut compact: Option<String> = None;
    let (mut in_string, mut escaped, mut kept_from) = (false, false, 0);
    for (i, b) in raw.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b' ' | b'\t' | b'\n' | b'\r' if !in_string => {
                compact
                    .get_or_insert_with(|| String::with_capacity(raw.len()))
                    .push_str(&raw[kept_from..i]);
                kept_from = i + 1;
            }
            _ => {}
        }
    }
    match compact {
        None => Cow::Borrowed(raw),
        Some(mut text) => {
            text.push_str(&raw[kept_from..]);
            Cow::Owned(text)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// logfmt

fn parse_logfmt<'a>(line: &'a str, out: &mut Fields<'a>) -> Result<(), ParseFailure> {
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i] <= b' ' {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(());
        }
        let start = i;
        while i < bytes.len() && bytes[i] > b' ' && bytes[i] != b'=' && bytes[i] != b'"' {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'=') if i == start => {
                return Err(ParseFailure::at("logfmt: '=' without a key", i));
            }
            Some(b'"') => return Err(ParseFailure::at("logfmt: unexpected '\"' in a key", i)),
            _ => {}
        }
        let key = sanitize_key(Cow::Borrowed(&line[start..i]));
        if bytes.get(i) != Some(&b'=') {
            out.push((key, Cow::Borrowed("")));
            continue;
        }
        i += 1;
        let value = if bytes.get(i) == Some(&b'"') {
            let (value, end) = logfmt_quoted(line, i)?;
            i = end;
            if bytes.get(i).is_some_and(|&b| b > b' ') {
                return Err(ParseFailure::at(
                    "logfmt: expected a space after the closing quote",
                    i,
                ));
            }
            value
        } else {
            let from = i;
            while i < bytes.len() && bytes[i] > b' ' {
                i += 1;
            }
            Cow::Borrowed(&line[from..i])
        };
        out.push((key, value));
    }
}

/// The value of the quoted string opening at `quote`, and the byte after its closing quote.
fn logfmt_quoted(line: &str, quote: usize) -> Result<(Cow<'_, str>, usize), ParseFailure> {
    let bytes = line.as_bytes();
    let mut has_escape = false;
    let mut i = quote + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let inner = &line[quote + 1..i];
                let value = if has_escape {
                    Cow::Owned(unescape(inner))
                } else {
                    Cow::Borrowed(inner)
                };
                return Ok((value, i + 1));
            }
            b'\\' => {
                has_escape = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    Err(ParseFailure::at("logfmt: unterminated quote", quote))
}

/// Resolves JSON escapes; unknown or malformed ones are kept as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (text, used) = unescape_one(rest);
        match text {
            Some(c) => out.push(c),
            None => out.push_str(&rest[..used]),
        }
        rest = &rest[used..];
    }
    out.push_str(rest);
    out
}

/// The character one escape at the start of `s` (which starts with `\`) stands for, and its
/// length; `None` keeps those bytes as written.
fn unescape_one(s: &str) -> (Option<char>, usize) {
    let Some(&kind) = s.as_bytes().get(1) else {
        return (None, 1);
    };
    let simple = match kind {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unescape_unicode(s),
        // Not ASCII: keep just the backslash so the slice stays on a char boundary.
        _ if !kind.is_ascii() => return (None, 1),
        _ => return (None, 2),
    };
    (Some(simple), 2)
}

fn unescape_unicode(s: &str) -> (Option<char>, usize) {
    let hex = |from: usize| {
        let digits = s.get(from..from + 4)?;
        let hex = digits.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| u32::from_str_radix(digits, 16).ok()).flatten()
    };
    let Some(high) = hex(2) else { return (None, 2) };
    if (0xD800..0xDC00).contains(&high)
        && s.get(6..8) == Some("\\u")
        && let Some(low @ 0xDC00..0xE000) = hex(8)
    {
        let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        return (char::from_u32(c), 12);
    }
    (
        Some(char::from_u32(high).unwrap_or(char::REPLACEMENT_CHARACTER)),
        6,
    )
}

// ---------------------------------------------------------------------------------------------
// regex

impl RegexRule {
    fn parse<'a>(&'a self, line: &'a str, out: &mut Fields<'a>) -> Result<(), ParseFailure> {
        let mut locations = self.regex.capture_locations();
        if self.regex.captures_read(&mut locations, line).is_none() {
            return Err(ParseFailure::fixed("regex did not match"));
        }
        for (index, name) in &self.names {
            if let Some((from, to)) = locations.get(*index) {
                out.push((Cow::Borrowed(name), Cow::Borrowed(&line[from..to])));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// pattern

/// One piece of a pattern as written.
enum Piece<'p> {
    Literal(&'p str),
    /// `None` for `<_>`.
    Capture(Option<&'p str>),
}

/// Splits a pattern into literals and captures.
fn pieces(pattern: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut literal_from = 0;
    let mut i = 0;
    while let Some(open) = pattern[i..].find('<').map(|at| i + at) {
        let name_len = pattern[open + 1..]
            .bytes()
            .take_while(|&b| is_key_byte(b))
            .count();
        let name = &pattern[open + 1..open + 1 + name_len];
        let closed = pattern.as_bytes().get(open + 1 + name_len) == Some(&b'>');
        if !closed || name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            i = open + 1;
            continue;
        }
        if literal_from < open {
            pieces.push(Piece::Literal(&pattern[literal_from..open]));
        }
        pieces.push(Piece::Capture((name != "_").then_some(name)));
        i = open + name_len + 2;
        literal_from = i;
    }
    if literal_from < pattern.len() {
        pieces.push(Piece::Literal(&pattern[literal_from..]));
    }
    pieces
}

fn capture_label(name: Option<&str>) -> String {
    format!("<{}>", name.unwrap_or("_"))
}

impl PatternRule {
    fn compile(pattern: &str) -> Result<Self, CompileError> {
        let fail = |message: String| Err(CompileError(format!("pattern: {message}")));
        let mut pieces = pieces(pattern).into_iter().peekable();
        let prefix = match pieces.next_if(|p| matches!(p, Piece::Literal(_))) {
            Some(Piece::Literal(text)) => Some(Literal::new(
                text,
                format!("expected the line to start with {text:?}"),
            )),
            _ => None,
        };
        let (mut steps, mut tail, mut named) = (Vec::new(), None, Vec::<&str>::new());
        while let Some(piece) = pieces.next() {
            let Piece::Capture(name) = piece else {
                unreachable!("pieces alternate")
            };
            if let Some(name) = name {
                if named.contains(&name) {
                    return fail(format!("<{name}> is used twice"));
                }
                named.push(name);
            }
            match pieces.next() {
                None => tail = Some(name.map(Box::from)),
                Some(Piece::Capture(next)) => {
                    let (a, b) = (capture_label(name), capture_label(next));
                    return fail(format!("{a} and {b} need a literal between them"));
                }
                Some(Piece::Literal(text)) => {
                    let label = capture_label(name);
                    let missing = if pieces.peek().is_none() {
                        format!("expected the line to end with {text:?} after {label}")
                    } else {
                        format!("expected {text:?} after {label}")
                    };
                    steps.push(Step {
                        name: name.map(Box::from),
                        literal: Literal::new(text, missing),
                    });
                }
            }
        }
        if named.is_empty() {
            return fail("at least one named capture such as <name> is required".into());
        }
        Ok(PatternRule {
            prefix,
            steps,
            tail,
        })
    }

    fn parse<'a>(&'a self, line: &'a str, out: &mut Fields<'a>) -> Result<(), ParseFailure> {
        let mut rest = line;
        if let Some(prefix) = &self.prefix {
            rest = rest
                .strip_prefix(&*prefix.text)
                .ok_or_else(|| ParseFailure::shared(&prefix.missing))?;
        }
        let last = self.steps.len().wrapping_sub(1);
        for (k, step) in self.steps.iter().enumerate() {
            let literal = &step.literal;
            let found = if k == last && self.tail.is_none() {
                rest.ends_with(&*literal.text)
                    .then(|| rest.len() - literal.text.len())
            } else {
                literal.find_in(rest)
            };
            let at = found.ok_or_else(|| ParseFailure::shared(&literal.missing))?;
            if let Some(name) = &step.name {
                out.push((Cow::Borrowed(name), Cow::Borrowed(&rest[..at])));
            }
            rest = &rest[at + literal.text.len()..];
        }
        if let Some(Some(name)) = &self.tail {
            out.push((Cow::Borrowed(name), Cow::Borrowed(rest)));
        }
        Ok(())
    }
}

impl Literal {
    fn new(text: &str, missing: String) -> Self {
        Literal {
            text: text.into(),
            missing: format!("pattern: {missing}").into(),
        }
    }

    /// The first occurrence of the literal in `s`.
    fn find_in(&self, s: &str) -> Option<usize> {
        match self.text.as_bytes() {
            // One ASCII byte (the usual separator): a byte search, faster than a substring one.
            [b] if b.is_ascii() => s.as_bytes().iter().position(|c| c == b),
            _ => s.find(&*self.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `line` as owned pairs, or the failure's text.
    fn fields(parser: &Parser, line: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Fields::new();
        parser.parse(line, &mut out).map_err(|e| e.to_string())?;
        Ok(out
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect())
    }

    fn pairs(expected: &[(&str, &str)]) -> Result<Vec<(String, String)>, String> {
        Ok(expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn json_values_keep_their_text_and_null_is_omitted() {
        let json = Parser::json("_");
        let line = r#" {"msg":"a \"q\" \u00e9","n":1.50,"neg":-2e3,"t":true,"f":false,"z":null,"arr":[1, "a b" , {"x": null}],"e":{}} "#;
        assert_eq!(
            fields(&json, line),
            pairs(&[
                ("msg", "a \"q\" é"),
                ("n", "1.50"),
                ("neg", "-2e3"),
                ("t", "true"),
                ("f", "false"),
                ("arr", r#"[1,"a b",{"x":null}]"#),
            ])
        );
    }

    #[test]
    fn json_flattens_nested_objects_with_the_separator() {
        let line = r#"{"a":{"b":1,"c":{"d":"x"}},"k8s":{"pod.name":"p-1"}}"#;
        let want = [("a_b", "1"), ("a_c_d", "x"), ("k8s_pod_name", "p-1")];
        assert_eq!(fields(&Parser::json("_"), line), pairs(&want));
        let dotted = [("a.b", "1"), ("a.c.d", "x"), ("k8s.pod_name", "p-1")];
        assert_eq!(fields(&Parser::json("."), line), pairs(&dotted));
    }

    #[test]
    fn json_keys_are_sanitised() {
        let line = r#"{"@timestamp":"t","log.level":"info","1st":"x","":"e","héllo":"h","ok_Key9":"k","a\u0062":"esc"}"#;
        let want = [
            ("_timestamp", "t"),
            ("log_level", "info"),
            ("_1st", "x"),
            ("_", "e"),
            ("h_llo", "h"),
            ("ok_Key9", "k"),
            ("ab", "esc"),
        ];
        assert_eq!(fields(&Parser::json("_"), line), pairs(&want));
    }

    #[test]
    fn json_borrows_plain_strings_and_numbers() {
        let json = Parser::json("_");
        let line = r#"{"level":"info","n":42,"esc":"a\nb"}"#;
        let mut out = Fields::new();
        json.parse(line, &mut out).unwrap();
        assert!(matches!(
            out[0],
            (Cow::Borrowed("level"), Cow::Borrowed("info"))
        ));
        assert!(matches!(out[1], (Cow::Borrowed("n"), Cow::Borrowed("42"))));
        assert!(matches!(&out[2].1, Cow::Owned(v) if v == "a\nb"));
    }

    #[test]
    fn json_failures_leave_out_unchanged() {
        let json = Parser::json("_");
        for (line, reason) in [
            ("plain text", "not a JSON object"),
            ("[1,2]", "not a JSON object"),
            ("\"s\"", "not a JSON object"),
            ("", "not a JSON object"),
            (r#"{"a":1} trailing"#, "json: trailing characters"),
            (r#"{"a":1,"b":}"#, "json: expected value"),
            (r#"{"a":"unterminated"#, "json: EOF while parsing a string"),
            (r#"{"a":{"b":1,"c":[1,}}"#, "json: expected value"),
            (r#"{"a":1}{"b":2}"#, "json: trailing characters"),
        ] {
            let mut out: Fields<'_> = vec![(Cow::Borrowed("keep"), Cow::Borrowed("me"))];
            let failure = json.parse(line, &mut out).unwrap_err();
            assert!(
                failure.to_string().starts_with(reason),
                "{line:?}: {failure}"
            );
            assert_eq!(
                out,
                vec![(Cow::Borrowed("keep"), Cow::Borrowed("me"))],
                "{line:?}"
            );
        }
    }

    #[test]
    fn json_deep_nesting_is_bounded() {
        let depth = 10_000;
        let line = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let got = fields(&Parser::json("_"), &line).unwrap();
        assert_eq!(got.len(), 1);
        let key = ["a"; MAX_JSON_DEPTH].join("_");
        assert_eq!(got[0].0, key);
        let inner = depth - MAX_JSON_DEPTH;
        assert_eq!(
            got[0].1,
            format!("{}1{}", r#"{"a":"#.repeat(inner), "}".repeat(inner))
        );
    }

    #[test]
    fn compact_json_keeps_whitespace_inside_strings() {
        assert!(matches!(compact_json(r#"[1,"a b"]"#), Cow::Borrowed(_)));
        assert_eq!(compact_json("[ 1 ,\n\t\"a \\\" b\" ]"), "[1,\"a \\\" b\"]");
    }

    #[test]
    fn logfmt_pairs_quotes_and_bare_keys() {
        let line = r#"ts=2024-01-01T00:00:00Z level=info msg="hello \"world\"" empty= bare dur=1.5s path=/a=b q"x uni=héllo clé=v"#;
        let want = [
            ("ts", "2024-01-01T00:00:00Z"),
            ("level", "info"),
            ("msg", "hello \"world\""),
            ("empty", ""),
            ("bare", ""),
            ("dur", "1.5s"),
            ("path", "/a=b"),
        ];
        let got = fields(&Parser::logfmt(), &line[..line.find(" q\"x").unwrap()]);
        assert_eq!(got, pairs(&want));
        let got = fields(&Parser::logfmt(), "uni=héllo clé=v a.b=\"\" 9x=1\tlast");
        assert_eq!(
            got,
            pairs(&[
                ("uni", "héllo"),
                ("cl_", "v"),
                ("a_b", ""),
                ("_9x", "1"),
                ("last", "")
            ])
        );
    }

    #[test]
    fn logfmt_escapes() {
        let got = fields(
            &Parser::logfmt(),
            r#"a="x\ny\t\\ \u00e9 \ud83d\ude00 \x1b \q \u12 é\é" b=1"#,
        );
        assert_eq!(
            got,
            pairs(&[("a", "x\ny\t\\ é 😀 \\x1b \\q \\u12 é\\é"), ("b", "1")])
        );
        let got = fields(&Parser::logfmt(), r#"a="\ud800 \udc00\u+12a""#);
        assert_eq!(got, pairs(&[("a", "\u{fffd} \u{fffd}\\u+12a")]));
    }

    #[test]
    fn logfmt_blank_lines_have_no_fields() {
        assert_eq!(fields(&Parser::logfmt(), ""), pairs(&[]));
        assert_eq!(fields(&Parser::logfmt(), " \t "), pairs(&[]));
    }

    #[test]
    fn logfmt_failures_name_the_byte() {
        for (line, want) in [
            (
                r#"level=info msg="unterminated"#,
                "logfmt: unterminated quote at byte 15",
            ),
            (r#"a=1 =2"#, "logfmt: '=' without a key at byte 4"),
            (r#"a=1 "k"=2"#, "logfmt: unexpected '\"' in a key at byte 4"),
            (
                r#"a="x"b=2"#,
                "logfmt: expected a space after the closing quote at byte 5",
            ),
            (r#"a="x\"#, "logfmt: unterminated quote at byte 2"),
        ] {
            let mut out: Fields<'_> = vec![(Cow::Borrowed("k"), Cow::Borrowed("v"))];
            let logfmt = Parser::logfmt();
            let failure = logfmt.parse(line, &mut out).unwrap_err();
            assert_eq!(failure.to_string(), want, "{line:?}");
            assert_eq!(out.len(), 1, "{line:?}");
        }
    }

    #[test]
    fn regex_named_groups_become_fields() {
        let re =
            Parser::regex(r"^(?P<ip>\S+) (\S+) (?P<user>\S+)(?: (?P<opt>x))? (?P<log.level>\w+)")
                .unwrap();
        let got = fields(&re, "1.2.3.4 - bob INFO rest");
        assert_eq!(
            got,
            pairs(&[("ip", "1.2.3.4"), ("user", "bob"), ("log_level", "INFO")])
        );
        let got = fields(&re, "1.2.3.4 - bob x WARN");
        assert_eq!(
            got,
            pairs(&[
                ("ip", "1.2.3.4"),
                ("user", "bob"),
                ("opt", "x"),
                ("log_level", "WARN")
            ])
        );
        assert_eq!(fields(&re, "nope"), Err("regex did not match".to_string()));
        let mut out = Fields::new();
        re.parse("1.2.3.4 - bob INFO", &mut out).unwrap();
        assert!(matches!(out[0].0, Cow::Borrowed("ip")));
    }

    #[test]
    fn regex_compile_errors() {
        let err = Parser::regex(r"(\d+) (\w+)").unwrap_err();
        assert!(err.0.contains("at least one named group"), "{err}");
        let err = Parser::regex(r"(?P<a>").unwrap_err();
        assert!(err.0.starts_with("regex: "), "{err}");
        let err = Parser::regex(r"(?P<a.b>x)(?P<a_b>y)").unwrap_err();
        assert!(err.0.contains("two groups are named \"a_b\""), "{err}");
    }

    #[test]
    fn pattern_captures_up_to_the_next_literal() {
        let p = Parser::pattern("<ts> <level> [<component>] <_>").unwrap();
        let got = fields(
            &p,
            "2024-01-01T00:00:00Z INFO [db.pool] connected to [primary] ok",
        );
        assert_eq!(
            got,
            pairs(&[
                ("ts", "2024-01-01T00:00:00Z"),
                ("level", "INFO"),
                ("component", "db.pool")
            ])
        );
        let p = Parser::pattern("<ip> - <user> [<time>] \"<request>\" <status> <size>").unwrap();
        let got = fields(
            &p,
            r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 203023"#,
        );
        let want = [
            ("ip", "1.2.3.4"),
            ("user", "-"),
            ("time", "17/May/2015:10:05:03 +0000"),
            ("request", "GET / HTTP/1.1"),
            ("status", "200"),
            ("size", "203023"),
        ];
        assert_eq!(got, pairs(&want));
    }

    #[test]
    fn pattern_literals_at_both_ends_must_match() {
        let p = Parser::pattern("[<ts>] <level> \"<msg>\"").unwrap();
        let got = fields(&p, r#"[t1] WARN "said "hi" twice""#);
        assert_eq!(
            got,
            pairs(&[
                ("ts", "t1"),
                ("level", "WARN"),
                ("msg", "said \"hi\" twice")
            ])
        );
        assert_eq!(
            fields(&p, "\tat foo.Bar(Bar.java:1)"),
            Err("pattern: expected the line to start with \"[\"".into())
        );
        assert_eq!(
            fields(&p, "[t1] WARN \"open"),
            Err("pattern: expected the line to end with \"\\\"\" after <msg>".into())
        );
        assert_eq!(
            fields(&p, "[t1] WARN"),
            Err("pattern: expected \" \\\"\" after <level>".into())
        );
        assert_eq!(
            fields(&p, "[t1 WARN"),
            Err("pattern: expected \"] \" after <ts>".into())
        );
        // The trailing literal is found at the end only when it is also the whole rest.
        assert_eq!(
            fields(&p, "[t] L \""),
            Err("pattern: expected the line to end with \"\\\"\" after <msg>".into())
        );
        assert_eq!(
            fields(&p, "[t] L \"\""),
            pairs(&[("ts", "t"), ("level", "L"), ("msg", "")])
        );
    }

    #[test]
    fn pattern_spaces_in_literals_and_literal_angle_brackets() {
        let p = Parser::pattern("<date> <time> - <level> <<tag>> <rest>").unwrap();
        let got = fields(&p, "2015-07-29 17:41:44,747 - INFO  <x> tail");
        assert_eq!(
            got,
            pairs(&[
                ("date", "2015-07-29"),
                ("time", "17:41:44,747"),
                ("level", "INFO "),
                ("tag", "x"),
                ("rest", "tail")
            ])
        );
        let p = Parser::pattern("a<1b> <c>").unwrap();
        assert_eq!(fields(&p, "a<1b> x y"), pairs(&[("c", "x y")]));
        assert!(fields(&p, "a<1c> x").is_err());
    }

    #[test]
    fn pattern_borrows_keys_and_values() {
        let p = Parser::pattern("<a> <b>").unwrap();
        let mut out = Fields::new();
        p.parse("x y z", &mut out).unwrap();
        assert!(matches!(
            out[..],
            [
                (Cow::Borrowed("a"), Cow::Borrowed("x")),
                (Cow::Borrowed("b"), Cow::Borrowed("y z"))
            ]
        ));
    }

    #[test]
    fn pattern_compile_errors() {
        for (pattern, want) in [
            ("<a><b>", "pattern: <a> and <b> need a literal between them"),
            (
                "<a> <_><b>",
                "pattern: <_> and <b> need a literal between them",
            ),
            (
                "<_> <_>",
                "pattern: at least one named capture such as <name> is required",
            ),
            (
                "no captures",
                "pattern: at least one named capture such as <name> is required",
            ),
            (
                "",
                "pattern: at least one named capture such as <name> is required",
            ),
            ("<a> <a>", "pattern: <a> is used twice"),
        ] {
            assert_eq!(
                Parser::pattern(pattern).unwrap_err().to_string(),
                want,
                "{pattern:?}"
            );
        }
    }

    #[test]
    fn failures_display_and_allocate_nothing_shared() {
        let p = Parser::pattern("[<a>]").unwrap();
        let mut out = Fields::new();
        let one = p.parse("x", &mut out).unwrap_err();
        let two = p.parse("y", &mut out).unwrap_err();
        let (Reason::Shared(a), Reason::Shared(b)) = (&one.reason, &two.reason) else {
            panic!("pattern failures share their message: {one:?}");
        };
        assert!(Arc::ptr_eq(a, b));
        assert_eq!(
            one.reason(),
            "pattern: expected the line to start with \"[\""
        );
        assert_eq!(one.at_byte(), None);
        let logfmt = Parser::logfmt();
        let err = logfmt.parse("a=\"", &mut out).unwrap_err();
        assert!(matches!(err.reason, Reason::Static(_)));
        assert_eq!(
            (err.reason(), err.at_byte()),
            ("logfmt: unterminated quote", Some(2))
        );
    }

    /// Random lines: mutated real-looking lines, random bytes read as lossy UTF-8, truncations.
    #[test]
    fn random_lines_never_panic_and_failures_leave_out_unchanged() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let parsers = [
            Parser::json("_"),
            Parser::json("."),
            Parser::logfmt(),
            Parser::regex(r"^(?P<ts>\S+) (?P<level>\w+)(?: \[(?P<c>[^\]]*)\])? (?P<msg>.*)$")
                .unwrap(),
            Parser::pattern("<ts> <level> [<component>] <_>").unwrap(),
            Parser::pattern("[<ts>] <level> \"<msg>\"").unwrap(),
        ];
        let seeds = [
            r#"{"ts":"2024-01-01T00:00:00Z","level":"info","a":{"b":[1,{"c":null}],"d":"\u00e9\n"},"n":-1.5e3}"#,
            r#"ts=2024-01-01 level=warn msg="a \"b\" \u00e9" bare k= x=1"#,
            "2015-07-29 17:41:44,747 INFO [main.Worker] started [ok] \"q\"",
            "[2016-12-19 16:31:46,143] INFO \"KafkaConfig values:\"",
        ];
        let mut rng = StdRng::seed_from_u64(0x9a25e);
        for i in 0..30_000 {
            let seed = seeds[i % seeds.len()].as_bytes();
            let mut bytes = match i % 3 {
                0 => (0..rng.random_range(0..80))
                    .map(|_| rng.random::<u8>())
                    .collect::<Vec<u8>>(),
                1 => seed[..rng.random_range(0..=seed.len())].to_vec(),
                _ => seed.to_vec(),
            };
            for _ in 0..rng.random_range(0..4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.random_range(0..bytes.len());
                bytes[at] = b"{}[]\"\\:=, <>\t\xc3"[rng.random_range(0..14)];
            }
            let line = String::from_utf8_lossy(&bytes);
            for parser in &parsers {
                let mut out: Fields<'_> = vec![(Cow::Borrowed("k"), Cow::Borrowed("v"))];
                if parser.parse(&line, &mut out).is_err() {
                    assert_eq!(
                        out,
                        vec![(Cow::Borrowed("k"), Cow::Borrowed("v"))],
                        "{line:?}"
                    );
                }
                for (key, _) in &out[1..] {
                    let sanitized = matches!(parser, Parser::Json(_) | Parser::Logfmt);
                    if sanitized && !key.contains('.') {
                        assert!(
                            sanitize_key(Cow::Borrowed(key)) == *key,
                            "{key:?} from {line:?}"
                        );
                    }
                }
            }
        }
    }
}
