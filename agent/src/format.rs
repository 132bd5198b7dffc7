//! Decoding of container log files: turns the physical lines of one file, written by the
//! container runtime in CRI or docker json-file format, into logical log lines. It owns format
//! detection, reassembly of the pieces runtimes split long lines into, optional multiline
//! grouping (stack traces) and the byte offset the tailer may checkpoint. It does no IO: the
//! tailer feeds it lines and clock readings, which keeps every rule here testable without files
//! or timers.
//!
//! Offsets and restarts: content still buffered (a partial line waiting for its last piece, a
//! multiline event waiting for its end) is only ever referenced through [`Decoder::safe_offset`],
//! the start of the oldest such content. A tailer that checkpoints at that offset re-reads the
//! buffered content after a restart, so none is lost. Delivery is at least once, not exactly
//! once: lines of the *other* stream emitted while a piece was buffered lie above the safe
//! offset and are decoded again after a restart, and so is the last piece of a line whose
//! earlier pieces lay below it (interleaved partial lines of both streams at the moment of the
//! restart), which then comes out as a line of its own.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Deserialize;

/// Default for [`DecoderConfig::max_line_bytes`]: well above the 16 KiB pieces runtimes write,
/// and the size above which a single log line is more likely a dump than a message.
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 * 1024;

/// How long the pieces of a partial line wait for their last piece, counted from the latest
/// piece. Runtimes write all pieces of a line at once, so a missing last piece means the
/// container stopped mid-line; waiting longer would only delay that line.
pub const PARTIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Which of the container's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    /// The name the runtimes write and the label value we ship.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    fn parse(name: &[u8]) -> Option<Self> {
        match name {
            b"stdout" => Some(Self::Stdout),
            b"stderr" => Some(Self::Stderr),
            _ => None,
        }
    }

    /// Index into per-stream state, so that state is two plain array slots instead of a map.
    fn index(self) -> usize {
        match self {
            Self::Stdout => 0,
            Self::Stderr => 1,
        }
    }
}

/// The on-disk format of a container log file, detected from its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `<RFC3339Nano timestamp> <stream> <P|F> <message>`, written by containerd and CRI-O.
    Cri,
    /// One JSON object per line (`log`, `stream`, `time`), written by docker's json-file driver.
    Docker,
}

impl Format {
    /// Detects the format from the first non-empty line of a file. A CRI line starts with a
    /// digit of its timestamp, a docker line with the `{` of its JSON object, so the first byte
    /// decides; a file that is neither is decoded as CRI and every line counts as malformed.
    pub fn detect(first_line: &[u8]) -> Self {
        if first_line.first() == Some(&b'{') {
            Self::Docker
        } else {
            Self::Cri
        }
    }
}

/// Grouping of consecutive lines of one stream into one event, e.g. a Java stack trace.
#[derive(Debug, Clone)]
pub struct MultilineConfig {
    /// Matches the first line of an event; lines that do not match continue the pending event.
    pub first_line: Regex,
    /// Largest event in bytes (lines joined with `\n`); a line that would make the event larger
    /// starts a new event instead.
    pub max_bytes: usize,
    /// Largest event in lines (0 counts as 1); a line beyond it starts a new event.
    pub max_lines: usize,
    /// A pending event is emitted once its latest line is this old: a stack trace is written at
    /// once, so a pause after its last line is what marks its end, however long it took to write.
    pub timeout: Duration,
}

/// How a [`Decoder`] turns physical lines into logical ones.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// Largest logical line in bytes; longer lines are emitted in pieces of at most this size
    /// (0 counts as 1). The limit applies to the raw bytes before invalid UTF-8 is replaced.
    pub max_line_bytes: usize,
    /// Grouping of lines into multiline events, applied after partial lines are merged.
    pub multiline: Option<MultilineConfig>,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            multiline: None,
        }
    }
}

/// One logical log line ready to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Nanoseconds since the Unix epoch: the runtime's timestamp of the line's first piece, or
    /// the wall clock at decoding for a malformed line.
    pub ts_ns: i64,
    pub stream: StreamKind,
    pub text: String,
    /// Offset just past the last physical line this line contains (or is a piece of).
    pub end: u64,
}

/// Counters of what the decoder had to repair or combine, for the agent's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Lines that could not be parsed and were emitted raw.
    pub malformed: u64,
    /// Logical lines assembled from two or more partial pieces.
    pub partial_merges: u64,
    /// Logical lines emitted in pieces because they exceeded `max_line_bytes`.
    pub oversize_splits: u64,
    /// Multiline events of two or more lines.
    pub multiline_joins: u64,
    /// Physical lines without a single byte, which carry nothing to emit and are skipped.
    pub empty_lines: u64,
}

/// Why a physical line could not be parsed; only reported through tracing and counters,
/// because the line itself is still emitted.
#[derive(Debug, thiserror::Error)]
enum LineError {
    #[error("fewer fields than the format requires")]
    MissingFields,
    #[error("unparsable timestamp")]
    Timestamp,
    #[error("unknown stream name")]
    Stream,
    #[error("unknown partial tag")]
    Tag,
    #[error("invalid docker json record")]
    Json(#[from] serde_json::Error),
}

/// Message bytes of a parsed piece, borrowed from the physical line whenever possible.
enum Text<'a> {
    /// CRI message bytes, not yet checked for UTF-8 (pieces may split a character).
    Raw(&'a [u8]),
    /// Docker `log` value, already UTF-8; owned when it had escapes (it nearly always does, the
    /// trailing `\n`), and then reused as the output `String` without a copy.
    Json(Cow<'a, str>),
}

impl<'a> Text<'a> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Raw(bytes) => bytes,
            Self::Json(text) => text.as_bytes(),
        }
    }

    fn into_str(self) -> Cow<'a, str> {
        match self {
            Self::Raw(bytes) => String::from_utf8_lossy(bytes),
            Self::Json(text) => text,
        }
    }
}

/// One parsed physical line.
struct Piece<'a> {
    stream: StreamKind,
    ts_ns: i64,
    /// More pieces of the same logical line follow.
    partial: bool,
    text: Text<'a>,
}

/// Splits `<field> <rest>` at the first space.
fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = line.iter().position(|&b| b == b' ')?;
    Some((&line[..at], &line[at + 1..]))
}

/// Parses `<timestamp> <stream> <tags> <message>`; the message may be missing entirely.
fn parse_cri(line: &[u8]) -> Result<Piece<'_>, LineError> {
    let (ts, rest) = split_field(line).ok_or(LineError::MissingFields)?;
    let (stream, rest) = split_field(rest).ok_or(LineError::MissingFields)?;
    let (tags, message) = split_field(rest).unwrap_or((rest, &[]));
    let stream = StreamKind::parse(stream).ok_or(LineError::Stream)?;
    // Tags are `:`-separated and only the first is defined (P or F); later ones are reserved.
    let partial = match tags.split(|&b| b == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err(LineError::Tag),
    };
    let ts_ns = parse_timestamp(ts).ok_or(LineError::Timestamp)?;
    Ok(Piece {
        stream,
        ts_ns,
        partial,
        text: Text::Raw(message),
    })
}

/// A docker json-file record. `Cow` borrows from the line when a value has no escapes, so the
/// stream and time fields never allocate.
#[derive(Deserialize)]
struct DockerRecord<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

fn parse_docker(line: &[u8]) -> Result<Piece<'_>, LineError> {
    let record: DockerRecord<'_> = serde_json::from_slice(line)?;
    let stream = StreamKind::parse(record.stream.as_bytes()).ok_or(LineError::Stream)?;
    let ts_ns = parse_timestamp(record.time.as_bytes()).ok_or(LineError::Timestamp)?;
    // Docker ends a complete line's `log` with its newline; without one the line was split.
    let (text, partial) = match record.log {
        Cow::Borrowed(log) => match log.strip_suffix('\n') {
            Some(line) => (Cow::Borrowed(line), false),
            None => (Cow::Borrowed(log), true),
        },
        Cow::Owned(mut log) => {
            let partial = !log.ends_with('\n');
            if !partial {
                log.pop();
            }
            (Cow::Owned(log), partial)
        }
    };
    Ok(Piece {
        stream,
        ts_ns,
        partial,
        text: Text::Json(text),
    })
}

/// Parses an RFC 3339 timestamp with up to nanosecond precision (`2024-03-01T12:00:00.5Z`,
/// `...+01:00`) into nanoseconds since the Unix epoch. Hand-written because it runs once per
/// line and the fixed layout makes a byte-by-byte parse exact and several times cheaper than a
/// general parser; digits past the ninth fractional one are ignored.
fn parse_timestamp(ts: &[u8]) -> Option<i64> {
    if ts.len() < 20 {
        return None;
    }
    let separators_ok = ts[4] == b'-'
        && ts[7] == b'-'
        && matches!(ts[10], b'T' | b't' | b' ')
        && ts[13] == b':'
        && ts[16] == b':';
    if !separators_ok {
        return None;
    }
    let year = i64::from(digits(&ts[0..4])?);
    let month = digits(&ts[5..7])?;
    let day = digits(&ts[8..10])?;
    let (hour, minute, second) = (
        digits(&ts[11..13])?,
        digits(&ts[14..16])?,
        digits(&ts[17..19])?,
    );
    // 60 is a leap second; it counts as the first second of the next minute.
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60;
    if !valid {
        return None;
    }
    let (nanos, rest) = parse_fraction(&ts[19..])?;
    let offset_secs = parse_utc_offset(rest)?;
    let secs = days_from_epoch(year, month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Parses an optional `.digits` fraction; returns nanoseconds and what follows.
fn parse_fraction(s: &[u8]) -> Option<(i64, &[u8])> {
    /// Scales a fraction of n digits to nanoseconds.
    const SCALE: [i64; 10] = [
        1_000_000_000,
        100_000_000,
        10_000_000,
        1_000_000,
        100_000,
        10_000,
        1_000,
        100,
        10,
        1,
    ];
    let Some(fraction) = s.strip_prefix(b".") else {
        return Some((0, s));
    };
    let mut nanos = 0i64;
    let mut count = 0;
    for &b in fraction.iter().take_while(|b| b.is_ascii_digit()) {
        if count < 9 {
            nanos = nanos * 10 + i64::from(b - b'0');
        }
        count += 1;
    }
    if count == 0 {
        return None;
    }
    Some((nanos * SCALE[count.min(9)], &fraction[count..]))
}

/// Parses `Z` or `±hh:mm` (the whole rest of the timestamp) into seconds east of UTC.
fn parse_utc_offset(s: &[u8]) -> Option<i64> {
    match s {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = i64::from(hours * 3600 + minutes * 60);
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// Value of a run of ASCII digits, `None` if any byte is not a digit.
fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |value, &b| {
        b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
    })
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date. Counting years from March puts
/// the leap day last, so the day of the year follows from the month by a linear formula and
/// every 400-year cycle has the same 146097 days.
fn days_from_epoch(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let cycle = year.div_euclid(400);
    let year_of_cycle = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    // 719468 days lie between 0000-03-01, where the counting starts, and 1970-01-01.
    cycle * 146_097 + day_of_cycle - 719_468
}

/// What the per-stream stages share: the configuration, the counters and the output.
struct Sink<'a> {
    max_line_bytes: usize,
    multiline: Option<&'a MultilineConfig>,
    stats: &'a mut DecoderStats,
    out: &'a mut Vec<LogLine>,
}

impl Sink<'_> {
    fn emit(&mut self, stream: StreamKind, ts_ns: i64, text: String, end: u64) {
        self.out.push(LogLine {
            ts_ns,
            stream,
            text,
            end,
        });
    }

    /// Emits raw bytes as one line, or as several of at most `max_line_bytes` when longer;
    /// returns whether it had to split them.
    fn emit_bytes(&mut self, stream: StreamKind, ts_ns: i64, mut bytes: &[u8], end: u64) -> bool {
        let split = bytes.len() > self.max_line_bytes;
        loop {
            let cut = cut_point(bytes, self.max_line_bytes);
            let text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
            self.emit(stream, ts_ns, text, end);
            bytes = &bytes[cut..];
            if bytes.is_empty() {
                return split;
            }
        }
    }
}

/// Where to cut `bytes` so the first part has at most `max` bytes: before the character that
/// straddles `max` when there is one, so splitting does not turn it into replacement characters.
fn cut_point(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let is_continuation = |at: usize| bytes[at] & 0xC0 == 0x80;
    // A UTF-8 character has at most three continuation bytes.
    let start = (max.saturating_sub(3)..=max)
        .rev()
        .take_while(|&at| at > 0)
        .find(|&at| !is_continuation(at));
    start.unwrap_or(max)
}

/// The partial pieces of one logical line collected so far.
#[derive(Debug, Clone, Copy)]
struct Chain {
    ts_ns: i64,
    /// Start of the oldest piece whose bytes are still buffered; `None` after an oversized line
    /// sent everything buffered on.
    buffered_from: Option<u64>,
    end: u64,
    /// When the latest piece arrived.
    touched: Instant,
    pieces: u32,
    /// Part of the line already went out because it exceeded `max_line_bytes`.
    split: bool,
}

/// A multiline event being collected.
#[derive(Debug)]
struct Event {
    ts_ns: i64,
    text: String,
    lines: usize,
    start: u64,
    end: u64,
    /// When the latest line arrived.
    touched: Instant,
}

impl Event {
    fn fits(&self, len: usize, config: &MultilineConfig) -> bool {
        self.lines < config.max_lines.max(1) && self.text.len() + 1 + len <= config.max_bytes
    }

    fn is_full(&self, config: &MultilineConfig) -> bool {
        self.lines >= config.max_lines.max(1) || self.text.len() >= config.max_bytes
    }
}

/// A logical line after partial merging, on its way into multiline grouping.
struct Line<'a> {
    ts_ns: i64,
    text: Cow<'a, str>,
    start: u64,
    end: u64,
    touched: Instant,
}

/// Everything one stream has buffered. Streams are independent because runtimes interleave
/// stdout and stderr pieces freely.
#[derive(Debug)]
struct StreamState {
    kind: StreamKind,
    chain: Option<Chain>,
    /// Bytes of `chain`; kept across lines so merging reuses its allocation.
    buf: Vec<u8>,
    event: Option<Event>,
    /// A first line was seen, so a continuation line without an event starts one instead of
    /// standing alone (it follows an event cut by size, line count or time).
    seen_first_line: bool,
}

impl StreamState {
    fn new(kind: StreamKind) -> Self {
        Self {
            kind,
            chain: None,
            buf: Vec::new(),
            event: None,
            seen_first_line: false,
        }
    }

    /// Offset of the oldest byte this stream holds back.
    fn buffered_from(&self) -> Option<u64> {
        let chain = self.chain.and_then(|chain| chain.buffered_from);
        let event = self.event.as_ref().map(|event| event.start);
        match (chain, event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn accept(
        &mut self,
        piece: Piece<'_>,
        start: u64,
        end: u64,
        now: Instant,
        sink: &mut Sink<'_>,
    ) {
        let Piece {
            ts_ns,
            partial,
            text,
            ..
        } = piece;
        if self.chain.is_none() && !partial {
            // The common case: the whole line in one physical line, no copy into `buf`.
            if text.as_bytes().len() <= sink.max_line_bytes {
                let text = text.into_str();
                self.group(
                    Line {
                        ts_ns,
                        text,
                        start,
                        end,
                        touched: now,
                    },
                    sink,
                );
            } else {
                self.flush_event(sink);
                if sink.emit_bytes(self.kind, ts_ns, text.as_bytes(), end) {
                    sink.stats.oversize_splits += 1;
                }
            }
            return;
        }
        self.append_piece(ts_ns, text.as_bytes(), start, end, now, sink);
        if !partial {
            self.complete_chain(sink);
        }
    }

    /// Adds a piece to the chain, first sending on what is buffered when the line would
    /// outgrow `max_line_bytes`. Cutting at piece boundaries keeps every emitted `end` exact,
    /// so the safe offset never points into the middle of a physical line.
    fn append_piece(
        &mut self,
        ts_ns: i64,
        bytes: &[u8],
        start: u64,
        end: u64,
        now: Instant,
        sink: &mut Sink<'_>,
    ) {
        let chain = self.chain.get_or_insert(Chain {
            ts_ns,
            buffered_from: None,
            end,
            touched: now,
            pieces: 0,
            split: false,
        });
        let overflow = self.buf.len() + bytes.len() > sink.max_line_bytes;
        if overflow && chain.buffered_from.is_some() {
            mark_split(chain, sink.stats);
            flush_event(self.kind, &mut self.event, sink);
            sink.emit_bytes(self.kind, chain.ts_ns, &self.buf, chain.end);
            self.buf.clear();
            chain.buffered_from = None;
        }
        chain.end = end;
        chain.touched = now;
        chain.pieces += 1;
        if bytes.len() > sink.max_line_bytes {
            // Too big even alone: all of it goes out now, so nothing of it stays buffered.
            mark_split(chain, sink.stats);
            flush_event(self.kind, &mut self.event, sink);
            sink.emit_bytes(self.kind, chain.ts_ns, bytes, end);
        } else {
            self.buf.extend_from_slice(bytes);
            chain.buffered_from.get_or_insert(start);
        }
    }

    /// Ends the chain (last piece seen, timed out or file finished) and passes its line on.
    fn complete_chain(&mut self, sink: &mut Sink<'_>) {
        let Some(chain) = self.chain.take() else {
            return;
        };
        let Some(start) = chain.buffered_from else {
            return;
        };
        if chain.pieces > 1 {
            sink.stats.partial_merges += 1;
        }
        let mut buf = std::mem::take(&mut self.buf);
        if chain.split {
            // The rest of a line that already went out in pieces: it is no line of its own, so
            // it bypasses multiline grouping; an empty rest has nothing to add.
            self.flush_event(sink);
            if !buf.is_empty() {
                sink.emit_bytes(self.kind, chain.ts_ns, &buf, chain.end);
            }
        } else {
            let line = Line {
                ts_ns: chain.ts_ns,
                text: String::from_utf8_lossy(&buf),
                start,
                end: chain.end,
                touched: chain.touched,
            };
            self.group(line, sink);
        }
        buf.clear();
        self.buf = buf;
    }

    /// Multiline grouping of a complete logical line.
    fn group(&mut self, line: Line<'_>, sink: &mut Sink<'_>) {
        let Some(config) = sink.multiline else {
            sink.emit(self.kind, line.ts_ns, line.text.into_owned(), line.end);
            return;
        };
        let is_first_line = config.first_line.is_match(&line.text);
        self.seen_first_line |= is_first_line;
        match &mut self.event {
            Some(event) if !is_first_line && event.fits(line.text.len(), config) => {
                event.text.push('\n');
                event.text.push_str(&line.text);
                event.lines += 1;
                event.end = line.end;
                event.touched = line.touched;
            }
            _ if is_first_line || self.seen_first_line => {
                self.flush_event(sink);
                self.event = Some(Event {
                    ts_ns: line.ts_ns,
                    text: line.text.into_owned(),
                    lines: 1,
                    start: line.start,
                    end: line.end,
                    touched: line.touched,
                });
            }
            // Nothing to continue yet (the file starts mid-event, or the stream has no first
            // lines at all): the line stands alone rather than waiting for a timeout.
            _ => sink.emit(self.kind, line.ts_ns, line.text.into_owned(), line.end),
        }
        // An event that no further line can join goes out now instead of at the next line.
        if self
            .event
            .as_ref()
            .is_some_and(|event| event.is_full(config))
        {
            self.flush_event(sink);
        }
    }

    fn flush_event(&mut self, sink: &mut Sink<'_>) {
        flush_event(self.kind, &mut self.event, sink);
    }

    fn flush_expired(&mut self, now: Instant, sink: &mut Sink<'_>) {
        if let Some(chain) = self.chain
            && now.saturating_duration_since(chain.touched) >= PARTIAL_TIMEOUT
        {
            self.complete_chain(sink);
        }
        if let (Some(config), Some(event)) = (sink.multiline, &self.event)
            && now.saturating_duration_since(event.touched) >= config.timeout
        {
            self.flush_event(sink);
        }
    }

    /// When [`StreamState::flush_expired`] will next have something to do.
    fn next_expiry(&self, multiline: Option<&MultilineConfig>) -> Option<Instant> {
        let chain = self
            .chain
            .and_then(|chain| chain.touched.checked_add(PARTIAL_TIMEOUT));
        let event = multiline
            .zip(self.event.as_ref())
            .and_then(|(config, event)| event.touched.checked_add(config.timeout));
        match (chain, event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Counts a line as split once, however many pieces it ends up in.
fn mark_split(chain: &mut Chain, stats: &mut DecoderStats) {
    if !chain.split {
        chain.split = true;
        stats.oversize_splits += 1;
    }
}

/// A free function rather than a method so it can run while the stream's chain is borrowed.
fn flush_event(kind: StreamKind, event: &mut Option<Event>, sink: &mut Sink<'_>) {
    if let Some(event) = event.take() {
        if event.lines > 1 {
            sink.stats.multiline_joins += 1;
        }
        sink.emit(kind, event.ts_ns, event.text, event.end);
    }
}

/// Decodes the physical lines of one container log file into logical log lines.
#[derive(Debug)]
pub struct Decoder {
    max_line_bytes: usize,
    multiline: Option<MultilineConfig>,
    format: Option<Format>,
    streams: [StreamState; 2],
    stats: DecoderStats,
    /// End of the last physical line pushed (or the resume offset).
    last_end: u64,
    /// Last safe offset reported; kept so it can only move forward.
    safe: u64,
}

impl Decoder {
    /// A decoder for a file read from its beginning; see [`Decoder::resume_at`] otherwise.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            max_line_bytes: config.max_line_bytes.max(1),
            multiline: config.multiline,
            format: None,
            streams: [
                StreamState::new(StreamKind::Stdout),
                StreamState::new(StreamKind::Stderr),
            ],
            stats: DecoderStats::default(),
            last_end: 0,
            safe: 0,
        }
    }

    /// Starts the decoder at a checkpoint: the tailer reads on from `offset`, and until it
    /// pushes a line the decoder reports `offset` as safe, so checkpointing an idle file does not
    /// move it back to 0.
    pub fn resume_at(mut self, offset: u64) -> Self {
        self.last_end = offset;
        self.safe = offset;
        self
    }

    /// Decodes one physical line. `line` is without its `\n`; `start` is its byte offset in the
    /// file and `end` the offset just past its `\n`. `now` is a monotonic clock reading that
    /// starts timeouts, `wall_ns` the wall clock (ns since the epoch) used as the timestamp of a
    /// malformed line. Logical lines that are complete go to `out`.
    pub fn push(
        &mut self,
        line: &[u8],
        start: u64,
        end: u64,
        now: Instant,
        wall_ns: i64,
        out: &mut Vec<LogLine>,
    ) {
        self.last_end = self.last_end.max(end);
        if line.is_empty() {
            self.stats.empty_lines += 1;
        } else {
            let format = *self.format.get_or_insert_with(|| Format::detect(line));
            let parsed = match format {
                Format::Cri => parse_cri(line),
                Format::Docker => parse_docker(line),
            };
            let (streams, mut sink) = self.sink(out);
            match parsed {
                Ok(piece) => {
                    streams[piece.stream.index()].accept(piece, start, end, now, &mut sink);
                }
                Err(error) => {
                    // Emitted directly: it belongs to no line of either stream, so it neither
                    // completes nor interrupts what a stream has pending.
                    tracing::trace!(%error, offset = start, "malformed container log line");
                    sink.stats.malformed += 1;
                    if sink.emit_bytes(StreamKind::Stdout, wall_ns, line, end) {
                        sink.stats.oversize_splits += 1;
                    }
                }
            }
        }
        self.settle();
    }

    /// Emits buffered content (partial or multiline) older than its timeout: partial pieces
    /// [`PARTIAL_TIMEOUT`] after the latest one, events `multiline.timeout` after their latest line.
    pub fn flush_expired(&mut self, now: Instant, out: &mut Vec<LogLine>) {
        let (streams, mut sink) = self.sink(out);
        for stream in streams {
            stream.flush_expired(now, &mut sink);
        }
        self.settle();
    }

    /// Emits everything buffered, for a file that ended for good (rotated away and read to
    /// the end): no further piece can complete what is pending.
    pub fn finish(&mut self, out: &mut Vec<LogLine>) {
        let (streams, mut sink) = self.sink(out);
        for stream in streams {
            stream.complete_chain(&mut sink);
            stream.flush_event(&mut sink);
        }
        self.settle();
    }

    /// The offset below which every byte is in lines already emitted: the start of the oldest
    /// content still buffered, else the end of the last line pushed. Never moves backwards.
    pub fn safe_offset(&self) -> u64 {
        self.safe
    }

    /// When [`Decoder::flush_expired`] will next emit something, if anything is buffered; lets
    /// the tailer sleep until then instead of polling.
    pub fn next_expiry(&self) -> Option<Instant> {
        let multiline = self.multiline.as_ref();
        self.streams
            .iter()
            .filter_map(|stream| stream.next_expiry(multiline))
            .min()
    }

    /// The file's format, once its first non-empty line was pushed.
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Counters since this decoder was created; the tailer adds them to the agent's metrics.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Borrows the streams and, separately, what they share, so a stream can emit while the
    /// decoder's other fields are borrowed.
    fn sink<'a>(&'a mut self, out: &'a mut Vec<LogLine>) -> (&'a mut [StreamState; 2], Sink<'a>) {
        let sink = Sink {
            max_line_bytes: self.max_line_bytes,
            multiline: self.multiline.as_ref(),
            stats: &mut self.stats,
            out,
        };
        (&mut self.streams, sink)
    }

    fn settle(&mut self) {
        let oldest = self
            .streams
            .iter()
            .filter_map(StreamState::buffered_from)
            .min();
        self.safe = self.safe.max(oldest.unwrap_or(self.last_end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wall clock handed to the decoder; only malformed lines carry it.
    const WALL_NS: i64 = 1_700_000_000_000_000_000;
    const TS1: &str = "2024-03-01T12:00:00.123456789Z";
    const TS2: &str = "2024-03-01T12:00:01.5Z";
    const TS3: &str = "2024-03-01T12:00:02Z";

    /// Nanoseconds of an RFC 3339 timestamp, computed by chrono as an independent oracle.
    fn ns(ts: &str) -> i64 {
        let parsed = chrono::DateTime::parse_from_rfc3339(ts).expect("test timestamp");
        parsed.timestamp_nanos_opt().expect("in range")
    }

    fn line(ts: &str, stream: StreamKind, text: &str, end: u64) -> LogLine {
        LogLine {
            ts_ns: ns(ts),
            stream,
            text: text.to_owned(),
            end,
        }
    }

    fn malformed(text: &str, end: u64) -> LogLine {
        LogLine {
            ts_ns: WALL_NS,
            stream: StreamKind::Stdout,
            text: text.to_owned(),
            end,
        }
    }

    fn multiline(max_lines: usize, max_bytes: usize) -> DecoderConfig {
        DecoderConfig {
            multiline: Some(MultilineConfig {
                first_line: Regex::new(r"^\d{4}-\d{2}-\d{2}").expect("valid regex"),
                max_bytes,
                max_lines,
                timeout: Duration::from_secs(1),
            }),
            ..DecoderConfig::default()
        }
    }

    /// Plays the tailer: pushes lines at consecutive offsets and collects what comes out.
    struct Feed {
        decoder: Decoder,
        offset: u64,
        now: Instant,
        out: Vec<LogLine>,
    }

    impl Feed {
        fn new(config: DecoderConfig) -> Self {
            Self {
                decoder: Decoder::new(config),
                offset: 0,
                now: Instant::now(),
                out: Vec::new(),
            }
        }

        /// Pushes one physical line and returns the offset just past it.
        fn push(&mut self, line: impl AsRef<[u8]>) -> u64 {
            let line = line.as_ref();
            let start = self.offset;
            self.offset += line.len() as u64 + 1;
            let out = &mut self.out;
            self.decoder
                .push(line, start, self.offset, self.now, WALL_NS, out);
            self.offset
        }

        fn cri(&mut self, ts: &str, stream: &str, tag: &str, message: &str) -> u64 {
            self.push(format!("{ts} {stream} {tag} {message}"))
        }

        fn docker(&mut self, log: &str, stream: &str, ts: &str) -> u64 {
            let record = serde_json::json!({ "log": log, "stream": stream, "time": ts });
            self.push(record.to_string())
        }

        fn wait(&mut self, duration: Duration) {
            self.now += duration;
        }

        fn flush_expired(&mut self) -> Vec<LogLine> {
            self.decoder.flush_expired(self.now, &mut self.out);
            self.take()
        }

        fn finish(&mut self) -> Vec<LogLine> {
            self.decoder.finish(&mut self.out);
            self.take()
        }

        fn take(&mut self) -> Vec<LogLine> {
            std::mem::take(&mut self.out)
        }

        fn safe(&self) -> u64 {
            self.decoder.safe_offset()
        }
    }

    use StreamKind::{Stderr, Stdout};

    #[test]
    fn cri_full_lines_keep_stream_timestamp_and_message() {
        let mut feed = Feed::new(DecoderConfig::default());
        let first = feed.cri(TS1, "stdout", "F", "hello world");
        let second = feed.cri(TS2, "stderr", "F", "  spaced  out ");
        assert_eq!(
            feed.take(),
            [
                line(TS1, Stdout, "hello world", first),
                line(TS2, Stderr, "  spaced  out ", second),
            ]
        );
        assert_eq!(ns(TS1), 1_709_294_400_123_456_789);
        assert_eq!(feed.safe(), second);
        assert_eq!(feed.decoder.stats(), DecoderStats::default());
        assert_eq!(Stdout.as_str(), "stdout");
        assert_eq!(Stderr.as_str(), "stderr");
    }

    #[test]
    fn cri_partial_pieces_merge_into_one_line_with_first_timestamp() {
        let mut feed = Feed::new(DecoderConfig::default());
        feed.cri(TS1, "stdout", "P", "part one ");
        assert_eq!(feed.safe(), 0);
        feed.cri(TS2, "stdout", "P", "part two ");
        assert_eq!(feed.safe(), 0);
        assert!(feed.take().is_empty());
        let end = feed.cri(TS3, "stdout", "F", "end");
        assert_eq!(
            feed.take(),
            [line(TS1, Stdout, "part one part two end", end)]
        );
        assert_eq!(feed.safe(), end);
        assert_eq!(feed.decoder.stats().partial_merges, 1);
    }

    #[test]
    fn interleaved_partials_merge_per_stream_and_hold_safe_offset() {
        let mut feed = Feed::new(DecoderConfig::default());
        let out_piece = feed.cri(TS1, "stdout", "P", "out ");
        assert_eq!(feed.safe(), 0);
        let err_full = feed.cri(TS2, "stderr", "F", "error line");
        assert_eq!(feed.take(), [line(TS2, Stderr, "error line", err_full)]);
        assert_eq!(feed.safe(), 0, "stdout piece at 0 is still buffered");
        let err_piece_start = feed.offset;
        feed.cri(TS2, "stderr", "P", "err ");
        let out_end = feed.cri(TS3, "stdout", "F", "done");
        assert_eq!(feed.take(), [line(TS1, Stdout, "out done", out_end)]);
        assert_eq!(feed.safe(), err_piece_start, "stderr piece still buffered");
        assert!(out_piece < err_piece_start);
        let err_end = feed.cri(TS3, "stderr", "F", "done");
        assert_eq!(feed.take(), [line(TS2, Stderr, "err done", err_end)]);
        assert_eq!(feed.safe(), err_end);
        assert_eq!(feed.decoder.stats().partial_merges, 2);
    }

    #[test]
    fn cri_empty_messages_become_empty_lines() {
        let mut feed = Feed::new(DecoderConfig::default());
        let with_space = feed.push(format!("{TS1} stdout F "));
        let without_space = feed.push(format!("{TS1} stderr F"));
        feed.push(format!("{TS2} stdout P "));
        let merged = feed.cri(TS3, "stdout", "F", "tail");
        assert_eq!(
            feed.take(),
            [
                line(TS1, Stdout, "", with_space),
                line(TS1, Stderr, "", without_space),
                line(TS2, Stdout, "tail", merged),
            ]
        );
        assert_eq!(feed.decoder.stats().malformed, 0);
    }

    #[test]
    fn cri_offsets_and_extra_tags_are_understood() {
        let mut feed = Feed::new(DecoderConfig::default());
        let end = feed.cri(
            "2024-03-01T12:00:00.123456789+01:00",
            "stderr",
            "F:x",
            "part one",
        );
        assert_eq!(
            feed.take(),
            [line(
                "2024-03-01T11:00:00.123456789Z",
                Stderr,
                "part one",
                end
            )]
        );
    }

    #[test]
    fn cri_invalid_utf8_is_replaced_and_split_characters_are_rejoined() {
        let mut feed = Feed::new(DecoderConfig::default());
        let invalid = feed.push([format!("{TS1} stdout F bad ").as_bytes(), b"\xff!"].concat());
        // Runtimes split at a byte count, which can fall inside a character.
        feed.push([format!("{TS1} stdout P caf").as_bytes(), b"\xc3"].concat());
        let rejoined = feed.push([format!("{TS2} stdout F ").as_bytes(), b"\xa9"].concat());
        assert_eq!(
            feed.take(),
            [
                line(TS1, Stdout, "bad \u{fffd}!", invalid),
                line(TS1, Stdout, "café", rejoined)
            ]
        );
    }

    #[test]
    fn docker_full_line_drops_its_newline_and_unescapes() {
        let mut feed = Feed::new(DecoderConfig::default());
        let first = feed.docker("hello \"world\"\t\u{e9}\n", "stdout", TS1);
        let second = feed.docker("\n", "stderr", TS2);
        let raw = r#"{"log":"plain\n","stream":"stdout","attrs":{"tag":"x"},"time":"2024-03-01T12:00:02Z"}"#;
        let third = feed.push(raw);
        assert_eq!(
            feed.take(),
            [
                line(TS1, Stdout, "hello \"world\"\t\u{e9}", first),
                line(TS2, Stderr, "", second),
                line(TS3, Stdout, "plain", third),
            ]
        );
        assert_eq!(feed.decoder.format(), Some(Format::Docker));
    }

    #[test]
    fn docker_partial_pieces_merge_per_stream() {
        let mut feed = Feed::new(DecoderConfig::default());
        feed.docker("first half, ", "stdout", TS1);
        let err = feed.docker("interleaved\n", "stderr", TS2);
        assert_eq!(feed.take(), [line(TS2, Stderr, "interleaved", err)]);
        assert_eq!(feed.safe(), 0);
        feed.docker("second ", "stdout", TS2);
        let end = feed.docker("half\n", "stdout", TS3);
        assert_eq!(
            feed.take(),
            [line(TS1, Stdout, "first half, second half", end)]
        );
        assert_eq!(feed.safe(), end);
        assert_eq!(feed.decoder.stats().partial_merges, 1);
    }

    #[test]
    fn format_is_detected_once_from_first_non_empty_line() {
        assert_eq!(Format::detect(br#"{"log":"x\n"}"#), Format::Docker);
        assert_eq!(Format::detect(TS1.as_bytes()), Format::Cri);

        let mut feed = Feed::new(DecoderConfig::default());
        assert_eq!(feed.decoder.format(), None);
        let empty = feed.push("");
        assert_eq!(feed.decoder.format(), None);
        assert_eq!(feed.safe(), empty, "an empty line holds nothing back");
        feed.cri(TS1, "stdout", "F", "x");
        assert_eq!(feed.decoder.format(), Some(Format::Cri));
        // A docker record inside a CRI file does not switch the format.
        let json = feed.docker("y\n", "stdout", TS2);
        let out = feed.take();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].text,
            r#"{"log":"y\n","stream":"stdout","time":"2024-03-01T12:00:01.5Z"}"#
        );
        assert_eq!(out[1].end, json);
        let stats = feed.decoder.stats();
        assert_eq!((stats.empty_lines, stats.malformed), (1, 1));

        let mut feed = Feed::new(DecoderConfig::default());
        feed.push("");
        feed.docker("z\n", "stdout", TS1);
        assert_eq!(feed.decoder.format(), Some(Format::Docker));
    }

    #[test]
    fn malformed_cri_lines_are_kept_raw_and_counted() {
        let mut feed = Feed::new(DecoderConfig::default());
        feed.cri(TS1, "stdout", "P", "pending ");
        let bad = [
            "2024-13-01T12:00:00Z stdout F bad month".to_owned(),
            "2024-03-01 12:00:00 stdout F date and time split".to_owned(),
            format!("{TS1} stdin F unknown stream"),
            format!("{TS1} stdout X unknown tag"),
            format!("{TS1} stdout"),
            "just some text".to_owned(),
        ];
        let mut expected = Vec::new();
        for text in &bad {
            let end = feed.push(text.as_bytes());
            expected.push(malformed(text, end));
        }
        let bytes = feed.push(b"\xfe\xff");
        expected.push(malformed("\u{fffd}\u{fffd}", bytes));
        assert_eq!(feed.take(), expected);
        assert_eq!(
            feed.safe(),
            0,
            "malformed lines do not disturb the pending piece"
        );
        let end = feed.cri(TS2, "stdout", "F", "piece");
        assert_eq!(feed.take(), [line(TS1, Stdout, "pending piece", end)]);
        assert_eq!(feed.decoder.stats().malformed, 7);
    }

    #[test]
    fn malformed_docker_lines_are_kept_raw_and_counted() {
        let mut feed = Feed::new(DecoderConfig::default());
        let bad = [
            r#"{"log":"no time\n","stream":"stdout"}"#,
            r#"{"log":"bad time\n","stream":"stdout","time":"yesterday"}"#,
            r#"{"log":"odd stream\n","stream":"stdin","time":"2024-03-01T12:00:00Z"}"#,
            r#"{"log":"truncated"#,
            r#"{"log":7,"stream":"stdout","time":"2024-03-01T12:00:00Z"}"#,
            "not json at all",
        ];
        let mut expected = Vec::new();
        for text in bad {
            let end = feed.push(text);
            expected.push(malformed(text, end));
        }
        assert_eq!(feed.take(), expected);
        assert_eq!(feed.decoder.stats().malformed, 6);
        assert_eq!(feed.safe(), feed.offset);
    }

    #[test]
    fn long_full_line_is_emitted_in_pieces_of_max_line_bytes() {
        let mut feed = Feed::new(DecoderConfig {
            max_line_bytes: 10,
            multiline: None,
        });
        let end = feed.cri(TS1, "stdout", "F", "0123456789abcdefghijKLMNO");
        let texts = ["0123456789", "abcdefghij", "KLMNO"];
        let expected: Vec<_> = texts
            .iter()
            .map(|text| line(TS1, Stdout, text, end))
            .collect();
        assert_eq!(feed.take(), expected);
        assert_eq!(feed.safe(), end);
        assert_eq!(feed.decoder.stats().oversize_splits, 1);
    }

    #[test]
    fn long_merged_line_is_cut_at_piece_boundaries() {
        let mut feed = Feed::new(DecoderConfig {
            max_line_bytes: 10,
            multiline: None,
        });
        feed.cri(TS1, "stdout", "P", "aaaa");
        let second = feed.cri(TS2, "stdout", "P", "bbbb");
        assert!(feed.take().is_empty());
        let third = feed.cri(TS2, "stdout", "P", "cccc");
        assert_eq!(feed.take(), [line(TS1, Stdout, "aaaabbbb", second)]);
        assert_eq!(
            feed.safe(),
            second,
            "the third piece is buffered from its start"
        );
        // A piece longer than the limit by itself goes out whole, in pieces.
        let huge = feed.cri(TS2, "stdout", "P", "0123456789XY");
        assert_eq!(
            feed.take(),
            [
                line(TS1, Stdout, "cccc", third),
                line(TS1, Stdout, "0123456789", huge),
                line(TS1, Stdout, "XY", huge),
            ]
        );
        assert_eq!(feed.safe(), huge);
        let end = feed.cri(TS3, "stdout", "F", "dd");
        assert_eq!(feed.take(), [line(TS1, Stdout, "dd", end)]);
        let stats = feed.decoder.stats();
        assert_eq!((stats.oversize_splits, stats.partial_merges), (1, 1));
    }

    #[test]
    fn splitting_does_not_cut_characters_apart() {
        let mut feed = Feed::new(DecoderConfig {
            max_line_bytes: 3,
            multiline: None,
        });
        let end = feed.cri(TS1, "stderr", "F", "aéé€");
        let texts = ["aé", "é", "€"];
        let expected: Vec<_> = texts
            .iter()
            .map(|text| line(TS1, Stderr, text, end))
            .collect();
        assert_eq!(feed.take(), expected);
    }

    #[test]
    fn java_stack_trace_becomes_one_event() {
        let mut feed = Feed::new(multiline(100, 10_000));
        feed.cri(
            TS1,
            "stdout",
            "F",
            "2024-03-01 12:00:00 ERROR request failed",
        );
        feed.cri(TS2, "stdout", "F", "java.lang.IllegalStateException: boom");
        feed.cri(
            TS2,
            "stdout",
            "F",
            "\tat com.example.Handler.run(Handler.java:42)",
        );
        let trace_end = feed.cri(
            TS2,
            "stdout",
            "F",
            "\tat java.lang.Thread.run(Thread.java:833)",
        );
        assert!(feed.take().is_empty());
        assert_eq!(feed.safe(), 0);
        let next_start = feed.offset;
        feed.cri(TS3, "stdout", "F", "2024-03-01 12:00:02 INFO next request");
        let trace = "2024-03-01 12:00:00 ERROR request failed\n\
                     java.lang.IllegalStateException: boom\n\
                     \tat com.example.Handler.run(Handler.java:42)\n\
                     \tat java.lang.Thread.run(Thread.java:833)";
        assert_eq!(feed.take(), [line(TS1, Stdout, trace, trace_end)]);
        assert_eq!(feed.safe(), next_start);
        let end = feed.offset;
        assert_eq!(
            feed.finish(),
            [line(
                TS3,
                Stdout,
                "2024-03-01 12:00:02 INFO next request",
                end
            )]
        );
        assert_eq!(feed.safe(), end);
        assert_eq!(feed.decoder.stats().multiline_joins, 1);
    }

    #[test]
    fn multiline_applies_to_merged_lines_per_stream() {
        let mut feed = Feed::new(multiline(100, 10_000));
        feed.cri(TS1, "stdout", "P", "2024-03-01 first ");
        let err = feed.cri(TS2, "stderr", "F", "2024-03-01 on stderr");
        feed.cri(TS2, "stdout", "F", "half");
        let cont = feed.cri(TS2, "stdout", "F", "  continued");
        assert!(feed.take().is_empty());
        let out = feed.finish();
        assert_eq!(
            out,
            [
                line(TS1, Stdout, "2024-03-01 first half\n  continued", cont),
                line(TS2, Stderr, "2024-03-01 on stderr", err),
            ]
        );
    }

    #[test]
    fn lines_before_any_first_line_stand_alone() {
        let mut feed = Feed::new(multiline(100, 10_000));
        let a = feed.cri(TS1, "stdout", "F", "\tat orphan.Frame(A.java:1)");
        let b = feed.cri(TS1, "stdout", "F", "another orphan");
        assert_eq!(
            feed.take(),
            [
                line(TS1, Stdout, "\tat orphan.Frame(A.java:1)", a),
                line(TS1, Stdout, "another orphan", b),
            ]
        );
        assert_eq!(feed.safe(), b);
    }

    #[test]
    fn max_lines_cuts_an_event_and_the_rest_starts_a_new_one() {
        let mut feed = Feed::new(multiline(3, 10_000));
        feed.cri(TS1, "stdout", "F", "2024-03-01 start");
        feed.cri(TS2, "stdout", "F", "c1");
        let third = feed.cri(TS2, "stdout", "F", "c2");
        // Full at three lines: out at once rather than when the next line arrives.
        assert_eq!(
            feed.take(),
            [line(TS1, Stdout, "2024-03-01 start\nc1\nc2", third)]
        );
        assert_eq!(feed.safe(), third);
        feed.cri(TS3, "stdout", "F", "c3");
        let end = feed.cri(TS3, "stdout", "F", "c4");
        assert!(feed.take().is_empty());
        assert_eq!(feed.finish(), [line(TS3, Stdout, "c3\nc4", end)]);
        assert_eq!(feed.decoder.stats().multiline_joins, 2);
    }

    #[test]
    fn max_bytes_cuts_an_event_before_the_line_that_would_overflow_it() {
        let mut feed = Feed::new(multiline(100, 20));
        feed.cri(TS1, "stdout", "F", "2024-03-01 a");
        let second = feed.cri(TS2, "stdout", "F", "bbbbb");
        assert!(feed.take().is_empty(), "12 + 1 + 5 bytes fit in 20");
        let overflow_start = feed.offset;
        let third = feed.cri(TS3, "stdout", "F", "ccc");
        assert_eq!(
            feed.take(),
            [line(TS1, Stdout, "2024-03-01 a\nbbbbb", second)]
        );
        assert_eq!(feed.safe(), overflow_start);
        assert_eq!(feed.finish(), [line(TS3, Stdout, "ccc", third)]);
    }

    #[test]
    fn multiline_timeout_counts_from_the_latest_line() {
        let mut feed = Feed::new(multiline(100, 10_000));
        let started = feed.now;
        feed.cri(TS1, "stdout", "F", "2024-03-01 slow trace");
        feed.wait(Duration::from_millis(800));
        let end = feed.cri(TS2, "stdout", "F", "\tat late.Frame(B.java:2)");
        assert_eq!(
            feed.decoder.next_expiry(),
            Some(started + Duration::from_millis(1800))
        );
        feed.wait(Duration::from_millis(400));
        assert!(
            feed.flush_expired().is_empty(),
            "1.2 s after the first line, 0.4 s after the last"
        );
        feed.wait(Duration::from_millis(600));
        assert_eq!(
            feed.flush_expired(),
            [line(
                TS1,
                Stdout,
                "2024-03-01 slow trace\n\tat late.Frame(B.java:2)",
                end
            )]
        );
        assert_eq!(feed.safe(), end);
        assert_eq!(feed.decoder.next_expiry(), None);
    }

    #[test]
    fn partial_piece_without_its_last_piece_goes_out_after_the_timeout() {
        let mut feed = Feed::new(DecoderConfig::default());
        let end = feed.cri(TS1, "stderr", "P", "container died mid-");
        feed.wait(PARTIAL_TIMEOUT - Duration::from_millis(1));
        assert!(feed.flush_expired().is_empty());
        assert_eq!(feed.safe(), 0);
        feed.wait(Duration::from_millis(1));
        assert_eq!(
            feed.flush_expired(),
            [line(TS1, Stderr, "container died mid-", end)]
        );
        assert_eq!(feed.safe(), end);
    }

    #[test]
    fn finish_emits_pending_pieces_and_events() {
        let mut feed = Feed::new(multiline(100, 10_000));
        feed.cri(TS1, "stdout", "F", "2024-03-01 event");
        let cont = feed.cri(TS1, "stdout", "F", " more");
        let piece = feed.cri(TS2, "stderr", "P", "unfinished");
        assert!(feed.take().is_empty());
        assert_eq!(
            feed.finish(),
            [
                line(TS1, Stdout, "2024-03-01 event\n more", cont),
                line(TS2, Stderr, "unfinished", piece),
            ]
        );
        assert_eq!(feed.safe(), piece);
        assert!(feed.finish().is_empty());
    }

    #[test]
    fn resumed_decoder_reports_its_checkpoint_until_it_moves_on() {
        let decoder = Decoder::new(DecoderConfig::default()).resume_at(1000);
        assert_eq!(decoder.safe_offset(), 1000);
        let mut feed = Feed {
            decoder,
            offset: 1000,
            now: Instant::now(),
            out: Vec::new(),
        };
        let end = feed.cri(TS1, "stdout", "F", "after restart");
        assert_eq!(feed.take(), [line(TS1, Stdout, "after restart", end)]);
        assert_eq!(feed.safe(), end);
        feed.cri(TS1, "stdout", "P", "pending");
        assert_eq!(feed.safe(), end);
    }

    #[test]
    fn timestamps_parse_exactly() {
        let cases = [
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "2000-02-29T23:59:59.1Z",
            "2024-12-31T23:59:59.000000001-08:00",
            "2262-04-11T23:47:16.854775807Z",
            "2024-03-01T12:00:00.123456789+05:30",
            "1900-03-01T00:00:00.5+00:00",
        ];
        for ts in cases {
            assert_eq!(parse_timestamp(ts.as_bytes()), Some(ns(ts)), "{ts}");
        }
        let expected = ns("2024-03-01T12:00:00.123456789Z");
        assert_eq!(
            parse_timestamp(b"2024-03-01t12:00:00.123456789999z"),
            Some(expected)
        );
        assert_eq!(
            parse_timestamp(b"2024-03-01T12:00:60Z"),
            Some(ns("2024-03-01T12:01:00Z"))
        );
        let invalid: [&[u8]; 12] = [
            b"2023-02-29T00:00:00Z",
            b"2024-04-31T00:00:00Z",
            b"2024-00-01T00:00:00Z",
            b"2024-03-01T24:00:00Z",
            b"2024-03-01T12:60:00Z",
            b"2024-03-01T12:00:00",
            b"2024-03-01T12:00:00.Z",
            b"2024-03-01T12:00:00+0100",
            b"2024-03-01T12:00:00Zjunk",
            b"2024-03-01T12:00:00+24:00",
            b"2024-3-01T12:00:00.000Z",
            b"2262-04-11T23:47:16.854775808Z",
        ];
        for ts in invalid {
            assert_eq!(parse_timestamp(ts), None, "{}", String::from_utf8_lossy(ts));
        }
    }

    /// A small deterministic generator so the model test needs no extra dependency.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }
    }

    /// A logical line as the generator meant it: per stream, its text, and the offsets of its
    /// first piece's start and its last piece's end.
    #[derive(Debug, Clone, PartialEq)]
    struct Expected {
        stream: StreamKind,
        text: String,
        start: u64,
        end: u64,
    }

    /// A physical line of a generated file.
    struct Physical {
        bytes: Vec<u8>,
        start: u64,
        end: u64,
    }

    /// Random interleavings of partial and full CRI lines of one or both streams.
    fn generate(rng: &mut XorShift, count: usize, streams: u64) -> (Vec<Physical>, Vec<Expected>) {
        let mut lines = Vec::new();
        let mut open: [Option<Expected>; 2] = [None, None];
        let mut expected = Vec::new();
        let mut offset = 0;
        for i in 0..count {
            let stream = if rng.below(streams) == 0 {
                Stdout
            } else {
                Stderr
            };
            let partial = rng.below(3) == 0;
            let message = format!("m{i}{}", "x".repeat(rng.below(4) as usize));
            let tag = if partial { "P" } else { "F" };
            let bytes = format!("{TS1} {} {tag} {message}", stream.as_str()).into_bytes();
            let (start, end) = (offset, offset + bytes.len() as u64 + 1);
            offset = end;
            lines.push(Physical { bytes, start, end });
            let slot = &mut open[stream.index()];
            let logical = slot.get_or_insert_with(|| Expected {
                stream,
                text: String::new(),
                start,
                end,
            });
            logical.text.push_str(&message);
            logical.end = end;
            if !partial {
                expected.extend(slot.take());
            }
        }
        // What `finish` emits, in stream order.
        expected.extend(open.into_iter().flatten());
        (lines, expected)
    }

    fn decode(lines: &[Physical], resume: u64) -> (Vec<LogLine>, Vec<u64>) {
        let mut decoder = Decoder::new(DecoderConfig::default()).resume_at(resume);
        let now = Instant::now();
        let mut out = Vec::new();
        let mut safe = Vec::new();
        for line in lines.iter().filter(|line| line.start >= resume) {
            decoder.push(&line.bytes, line.start, line.end, now, WALL_NS, &mut out);
            safe.push(decoder.safe_offset());
        }
        decoder.finish(&mut out);
        (out, safe)
    }

    fn same_line(line: &LogLine, expected: &Expected) -> bool {
        line.stream == expected.stream && line.text == expected.text && line.end == expected.end
    }

    #[test]
    fn random_interleavings_decode_per_stream_and_restart_without_loss() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..300 {
            let streams = if round % 3 == 0 { 1 } else { 2 };
            let (lines, expected) = generate(&mut rng, 40, streams);
            let (out, safe) = decode(&lines, 0);
            for stream in [Stdout, Stderr] {
                let got: Vec<_> = out.iter().filter(|line| line.stream == stream).collect();
                let want: Vec<_> = expected
                    .iter()
                    .filter(|line| line.stream == stream)
                    .collect();
                assert_eq!(got.len(), want.len(), "round {round}");
                assert!(
                    got.iter().zip(&want).all(|(g, w)| same_line(g, w)),
                    "round {round}"
                );
            }
            for (i, window) in safe.windows(2).enumerate() {
                assert!(
                    window[0] <= window[1],
                    "round {round}: safe offset went back at {i}"
                );
            }
            // Crash after `cut` lines, restart at the safe offset reported then.
            let cut = rng.below(lines.len() as u64) as usize;
            let resume = safe[cut];
            let cut_end = lines[cut].end;
            let (again, _) = decode(&lines, resume);
            for want in &expected {
                let before = want.end <= cut_end && want.start < resume;
                let after = again.iter().any(|line| same_line(line, want));
                assert!(
                    before || after,
                    "round {round}: lost {want:?} restarting at {resume}"
                );
            }
            if streams == 1 {
                // One stream: the restart emits exactly the lines not emitted before it.
                let rest: Vec<_> = expected
                    .iter()
                    .filter(|line| line.start >= resume)
                    .collect();
                assert_eq!(again.len(), rest.len(), "round {round}");
                assert!(
                    again.iter().zip(&rest).all(|(g, w)| same_line(g, w)),
                    "round {round}"
                );
            }
        }
    }

    #[test]
    fn decodes_200k_generated_cri_lines() {
        const LINES: usize = 200_000;
        let mut decoder = Decoder::new(DecoderConfig::default());
        let now = Instant::now();
        let mut out = Vec::with_capacity(LINES);
        let mut offset = 0u64;
        let mut physical = Vec::with_capacity(128);
        for i in 0..LINES {
            let (stream, tag) = match i % 10 {
                // Every tenth logical stdout line arrives in two pieces.
                8 => ("stdout", "P"),
                1 | 5 => ("stderr", "F"),
                _ => ("stdout", "F"),
            };
            physical.clear();
            let nanos = i % 1_000_000_000;
            let seconds = i / 60 % 60;
            let line = format!(
                "2024-03-01T12:00:{seconds:02}.{nanos:09}Z {stream} {tag} message {i} of the load test"
            );
            physical.extend_from_slice(line.as_bytes());
            let end = offset + physical.len() as u64 + 1;
            decoder.push(&physical, offset, end, now, WALL_NS, &mut out);
            offset = end;
        }
        assert_eq!(decoder.safe_offset(), offset);
        assert_eq!(out.len(), LINES - LINES / 10);
        let mut logical = out.iter();
        for i in (0..LINES).filter(|i| i % 10 != 8) {
            let line = logical.next().expect("one logical line per full piece");
            let first = if i % 10 == 9 { i - 1 } else { i };
            let expected = if i % 10 == 9 {
                format!("message {first} of the load testmessage {i} of the load test")
            } else {
                format!("message {i} of the load test")
            };
            assert_eq!(line.text, expected);
            let stream = if matches!(i % 10, 1 | 5) {
                Stderr
            } else {
                Stdout
            };
            assert_eq!(line.stream, stream);
            let ts = format!("2024-03-01T12:00:{:02}.{:09}Z", first / 60 % 60, first);
            assert_eq!(line.ts_ns, ns(&ts));
        }
        let stats = decoder.stats();
        assert_eq!(
            (stats.partial_merges, stats.malformed),
            (LINES as u64 / 10, 0)
        );
    }
}
