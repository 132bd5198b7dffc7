//! Severity normalisation: maps whatever a log line calls its level (`I`, `[WARN]`, `err`,
//! `notice`, `3`, OpenTelemetry's `17`) onto the six levels LogStream stores and filters on.
//!
//! Names are matched case-insensitively after trimming whitespace, one pair of surrounding
//! brackets (`[INFO]`, `(warn)`, `<E>`) and a trailing `:` (`INFO:` as Python's default
//! format writes it). A value that names no level gives `None`, so callers keep the raw text
//! rather than invent a level.
//!
//! Choices where the sources disagree, checked against the `Level` column of every Loghub
//! sample (`tests/parsers_samples.rs`):
//! - `notice` (syslog 5, Apache's error log) is info: it is below warning in every scheme.
//! - `severe` is error: Java's `SEVERE` is its highest level but is used for ordinary errors,
//!   and BGL's RAS levels put `SEVERE` below `ERROR`.
//! - `failure` is fatal: BGL's RAS levels rank `FAILURE` above `FATAL` (it marks a component
//!   that has failed). No mainstream logging library uses it as a level name.
//! - `crit`, `alert`, `emerg` and `panic` are fatal: LogStream has no finer levels above error.
//! - Java util logging's `fine`/`config` are debug, `finer`/`finest` trace; logrus' four-letter
//!   text forms (`TRAC`, `DEBU`, `ERRO`, `FATA`, `PANI`) and zap's `dpanic` are recognised.
//! - Single letters follow Android's logcat (`V D I W E F`, `A` for assert) plus `T` and `C`
//!   for trace and critical; `S` (logcat's "silent") is not a level.
//! - Loghub's Linux sample has `combo` (a host name the dataset put in its Level column): it is
//!   not a level, so it normalises to `None`.
//!
//! Numbers read according to [`Numeric`]: syslog severities 0..=7, or OpenTelemetry
//! `SeverityNumber` 1..=24. Other numbers (including bunyan/pino's 10..60) give `None`.

/// The levels LogStream stores, from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// The lowercase name LogStream stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a numeric level reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Numeric {
    /// Syslog severity: 0 emergency .. 7 debug.
    #[default]
    Syslog,
    /// OpenTelemetry `SeverityNumber`: 1..=24, four per level from trace up.
    Otel,
}

/// The longest name [`normalize`] knows (`informational`); longer values are not levels.
const MAX_NAME: usize = 13;

/// The level `value` names, or `None` when it names none.
pub fn normalize(value: &str, numeric: Numeric) -> Option<Level> {
    let name = strip_decoration(value.as_bytes());
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    if name.iter().all(u8::is_ascii_digit) {
        return number(name, numeric);
    }
    let mut lower = [0u8; MAX_NAME];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    by_name(lower)
}

/// Trims whitespace, a trailing `:` and one pair of brackets around the name.
fn strip_decoration(mut s: &[u8]) -> &[u8] {
    s = s.trim_ascii();
    if let [rest @ .., b':'] = s {
        s = rest.trim_ascii_end();
    }
    if let [open, inner @ .., close] = s
        && matches!(
            (open, close),
            (b'[', b']') | (b'(', b')') | (b'<', b'>') | (b'{', b'}')
        )
    {
        s = inner.trim_ascii();
    }
    s
}

fn number(digits: &[u8], numeric: Numeric) -> Option<Level> {
    // At most MAX_NAME digits: a u64 holds them all.
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    match (numeric, n) {
        (Numeric::Syslog, 0..=2) => Some(Level::Fatal),
        (Numeric::Syslog, 3) => Some(Level::Error),
        (Numeric::Syslog, 4) => Some(Level::Warn),
        (Numeric::Syslog, 5..=6) => Some(Level::Info),
        (Numeric::Syslog, 7) => Some(Level::Debug),
        (Numeric::Otel, 1..=4) => Some(Level::Trace),
        (Numeric::Otel, 5..=8) => Some(Level::Debug),
        (Numeric::Otel, 9..=12) => Some(Level::Info),
        (Numeric::Otel, 13..=16) => Some(Level::Warn),
        (Numeric::Otel, 17..=20) => Some(Level::Error),
        (Numeric::Otel, 21..=24) => Some(Level::Fatal),
        _ => None,
    }
}

fn by_name(lower: &[u8]) -> Option<Level> {
    Some(match lower {
        b"trace" | b"trac" | b"trc" | b"t" | b"verbose" | b"vrb" | b"v" | b"finer" | b"finest" => {
            Level::Trace
        }
        b"debug" | b"debu" | b"dbg" | b"d" | b"fine" | b"config" => Level::Debug,
        b"info" | b"inf" | b"i" | b"information" | b"informational" | b"notice" => Level::Info,
        b"warn" | b"warning" | b"wrn" | b"w" => Level::Warn,
        b"error" | b"erro" | b"err" | b"eror" | b"e" | b"severe" => Level::Error,
        b"fatal" | b"fata" | b"ftl" | b"f" | b"failure" | b"crit" | b"critical" | b"c"
        | b"alert" | b"emerg" | b"emergency" | b"panic" | b"pani" | b"dpanic" | b"a" => {
            Level::Fatal
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syslog(v: &str) -> Option<Level> {
        normalize(v, Numeric::Syslog)
    }

    #[test]
    fn names_are_case_insensitive_with_abbreviations() {
        let cases = [
            ("TRACE", Level::Trace),
            ("trc", Level::Trace),
            ("Verbose", Level::Trace),
            ("V", Level::Trace),
            ("debug", Level::Debug),
            ("DBG", Level::Debug),
            ("D", Level::Debug),
            ("Info", Level::Info),
            ("INF", Level::Info),
            ("information", Level::Info),
            ("Informational", Level::Info),
            ("notice", Level::Info),
            ("I", Level::Info),
            ("warn", Level::Warn),
            ("WARNING", Level::Warn),
            ("wrn", Level::Warn),
            ("W", Level::Warn),
            ("error", Level::Error),
            ("ERR", Level::Error),
            ("eror", Level::Error),
            ("E", Level::Error),
            ("SEVERE", Level::Error),
            ("ERRO", Level::Error),
            ("crit", Level::Fatal),
            ("CRITICAL", Level::Fatal),
            ("fatal", Level::Fatal),
            ("FTL", Level::Fatal),
            ("alert", Level::Fatal),
            ("emerg", Level::Fatal),
            ("EMERGENCY", Level::Fatal),
            ("panic", Level::Fatal),
            ("F", Level::Fatal),
            ("C", Level::Fatal),
            ("FAILURE", Level::Fatal),
        ];
        for (value, want) in cases {
            assert_eq!(syslog(value), Some(want), "{value:?}");
        }
    }

    #[test]
    fn brackets_spaces_and_colon_are_tolerated() {
        assert_eq!(syslog("[INFO]"), Some(Level::Info));
        assert_eq!(syslog(" WARN"), Some(Level::Warn));
        assert_eq!(syslog("INFO  "), Some(Level::Info));
        assert_eq!(syslog("[ error ]"), Some(Level::Error));
        assert_eq!(syslog("(debug)"), Some(Level::Debug));
        assert_eq!(syslog("<E>"), Some(Level::Error));
        assert_eq!(syslog("INFO:"), Some(Level::Info));
        assert_eq!(syslog("[3]"), Some(Level::Error));
    }

    #[test]
    fn non_levels_are_none() {
        for value in [
            "",
            " ",
            "[]",
            "combo",
            "informationally",
            "inform",
            "warned",
            "S",
            "x",
            "-1",
            "1.5",
            "[INFO",
            "INFO]",
            "in fo",
            "ÉRROR",
            "∞",
        ] {
            assert_eq!(syslog(value), None, "{value:?}");
        }
    }

    #[test]
    fn syslog_numbers() {
        let want = [
            Level::Fatal,
            Level::Fatal,
            Level::Fatal,
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Info,
            Level::Debug,
        ];
        for (n, want) in want.iter().enumerate() {
            assert_eq!(syslog(&n.to_string()), Some(*want), "{n}");
        }
        assert_eq!(syslog("8"), None);
        assert_eq!(syslog("30"), None);
        assert_eq!(syslog("00000000000003"), None, "longer than any name");
        assert_eq!(syslog("99999999999999999999"), None);
    }

    #[test]
    fn otel_severity_numbers() {
        for n in 1..=24 {
            let want = [
                Level::Trace,
                Level::Debug,
                Level::Info,
                Level::Warn,
                Level::Error,
                Level::Fatal,
            ][(n - 1) / 4];
            assert_eq!(normalize(&n.to_string(), Numeric::Otel), Some(want), "{n}");
        }
        assert_eq!(normalize("0", Numeric::Otel), None);
        assert_eq!(normalize("25", Numeric::Otel), None);
        assert_eq!(normalize("info", Numeric::Otel), Some(Level::Info));
    }

    #[test]
    fn as_str_round_trips_and_orders() {
        use Level::*;
        for level in [Trace, Debug, Info, Warn, Error, Fatal] {
            assert_eq!(syslog(level.as_str()), Some(level));
            assert_eq!(level.to_string(), level.as_str());
        }
        assert!(Trace < Debug && Debug < Info && Info < Warn && Warn < Error && Error < Fatal);
    }

    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(0x1e7e1);
        let alphabet = b"[]()<>: \tinfoWARNerrdbg0123456789";
        for i in 0..20_000 {
            let len = rng.random_range(0..20);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if i % 2 == 0 {
                        rng.random()
                    } else {
                        alphabet[rng.random_range(0..alphabet.len())]
                    }
                })
                .collect();
            let value = String::from_utf8_lossy(&bytes);
            let _ = normalize(&value, Numeric::Syslog);
            let _ = normalize(&value, Numeric::Otel);
        }
    }
}
