//! Timestamps: Loki's nanosecond strings, protobuf `Timestamp`s, the looser NDJSON forms, and the
//! human forms error messages print.
//!
//! NDJSON numbers (and numeric strings) are epoch times whose unit is told by the magnitude of
//! the integer part: below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else
//! nanoseconds. So ms/µs/ns values are read correctly for any time after March 1973, and seconds
//! for any time an `i64` of nanoseconds can hold (up to 2262). Numeric strings are parsed exactly; JSON numbers with a fraction arrive as
//! `f64` and are read from their shortest round-trip form, so digits beyond an `f64`'s ~16
//! significant ones are lost (send a string to keep nanoseconds of fractional seconds).

use super::error::Problem;
use super::json::Scalar;
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Integer parts below this are epoch seconds.
const SECONDS_BELOW: u128 = 100_000_000_000;
/// Integer parts below this (and not seconds) are epoch milliseconds.
const MILLIS_BELOW: u128 = 100_000_000_000_000;
/// Integer parts below this (and not ms) are epoch microseconds; larger are nanoseconds.
const MICROS_BELOW: u128 = 100_000_000_000_000_000;

/// The timestamp of a Loki JSON value: a string of integer nanoseconds, or (leniently) a JSON
/// integer.
pub(crate) fn from_loki_json(value: &Scalar<'_>) -> Result<i64, Problem> {
    match value {
        Scalar::Str(s) => s
            .parse::<i64>()
            .map_err(|_| Problem::TimestampNotInteger(value.to_json_text())),
        Scalar::I64(n) => Ok(*n),
        Scalar::U64(n) => {
            i64::try_from(*n).map_err(|_| Problem::TimestampOutOfRange(n.to_string()))
        }
        _ => Err(Problem::TimestampNotInteger(value.to_json_text())),
    }
}

/// The nanoseconds of a protobuf `google.protobuf.Timestamp`.
pub(crate) fn from_proto(seconds: i64, nanos: i32) -> Result<i64, Problem> {
    let out_of_range = || Problem::TimestampOutOfRange(format!("seconds={seconds} nanos={nanos}"));
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(out_of_range());
    }
    seconds
        .checked_mul(NANOS_PER_SECOND)
        .and_then(|s| s.checked_add(i64::from(nanos)))
        .ok_or_else(out_of_range)
}

/// The timestamp of an NDJSON field named `key`: RFC 3339 text or an epoch number (see the
/// module docs for units).
pub(crate) fn from_ndjson(key: &str, value: &Scalar<'_>) -> Result<i64, Problem> {
    let out_of_range = || Problem::TimestampOutOfRange(value.to_json_text());
    match value {
        Scalar::Str(s) => from_text(s).ok_or_else(|| match split_decimal(s) {
            Some(_) => out_of_range(),
            None if DateTime::parse_from_rfc3339(s).is_ok() => out_of_range(),
            None => Problem::TimestampUnparsable(value.to_json_text()),
        }),
        Scalar::I64(n) => {
            from_epoch(*n < 0, &n.unsigned_abs().to_string(), "").ok_or_else(out_of_range)
        }
        Scalar::U64(n) => from_epoch(false, &n.to_string(), "").ok_or_else(out_of_range),
        Scalar::F64(f) => {
            let text = f.to_string();
            let (negative, int, frac) = split_decimal(&text).ok_or_else(out_of_range)?;
            from_epoch(negative, int, frac).ok_or_else(out_of_range)
        }
        _ => Err(Problem::TimestampType(key.to_owned())),
    }
}

/// A numeric string as an epoch time, else RFC 3339; `None` when neither fits in an `i64`.
fn from_text(s: &str) -> Option<i64> {
    if let Some((negative, int, frac)) = split_decimal(s) {
        return from_epoch(negative, int, frac);
    }
    DateTime::parse_from_rfc3339(s).ok()?.timestamp_nanos_opt()
}

/// Splits `[+-]digits[.digits]` into sign, integer digits and fraction digits.
fn split_decimal(s: &str) -> Option<(bool, &str, &str)> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    (!int.is_empty() && all_digits(int) && all_digits(frac)).then_some((negative, int, frac))
}

/// Epoch nanoseconds from decimal digits whose unit is chosen by the integer part's magnitude.
/// Fraction digits finer than a nanosecond are dropped.
fn from_epoch(negative: bool, int: &str, frac: &str) -> Option<i64> {
    // u64 parsing is much cheaper and covers every integer part that can fit an i64.
    let whole: u128 = match int.len() {
        0..=19 => u128::from(int.parse::<u64>().ok()?),
        _ => int.parse().ok()?,
    };
    let unit_digits = match whole {
        w if w < SECONDS_BELOW => 9,
        w if w < MILLIS_BELOW => 6,
        w if w < MICROS_BELOW => 3,
        _ => 0,
    };
    let kept = &frac[..frac.len().min(unit_digits)];
    let scale = 10u128.pow(unit_digits as u32 - kept.len() as u32);
    let frac_ns = if kept.is_empty() {
        0
    } else {
        kept.parse::<u128>().ok()? * scale
    };
    let nanos = whole
        .checked_mul(10u128.pow(unit_digits as u32))?
        .checked_add(frac_ns)?;
    let nanos = i64::try_from(nanos).ok()?;
    Some(if negative { -nanos } else { nanos })
}

/// `ts_ns` as RFC 3339 in UTC with as many fraction digits as needed.
pub(crate) fn rfc3339(ts_ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ts_ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A positive duration in Go's style without zero parts: `10m`, `1h30m`, `1s500ms`, `168h`.
pub(crate) fn human_duration(ns: i64) -> String {
    const UNITS: [(&str, i64); 6] = [
        ("h", 3_600 * NANOS_PER_SECOND),
        ("m", 60 * NANOS_PER_SECOND),
        ("s", NANOS_PER_SECOND),
        ("ms", 1_000_000),
        ("µs", 1_000),
        ("ns", 1),
    ];
    if ns <= 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = ns;
    for (name, size) in UNITS {
        if rest >= size {
            let _ = write!(out, "{}{name}", rest / size);
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn text(s: &str) -> Scalar<'_> {
        Scalar::Str(Cow::Borrowed(s))
    }

    #[test]
    fn ndjson_forms_give_exact_nanoseconds() {
        let cases: &[(Scalar<'_>, i64)] = &[
            (text("2023-11-14T22:13:20Z"), 1_700_000_000_000_000_000),
            (
                text("2023-11-14T22:13:20.123456789Z"),
                1_700_000_000_123_456_789,
            ),
            (
                text("2023-11-15T00:13:20.5+02:00"),
                1_700_000_000_500_000_000,
            ),
            (text("1700000000"), 1_700_000_000_000_000_000),
            (text("1700000000.123456789"), 1_700_000_000_123_456_789),
            (text("1700000000123"), 1_700_000_000_123_000_000),
            (text("1700000000123.5"), 1_700_000_000_123_500_000),
            (text("1700000000123456"), 1_700_000_000_123_456_000),
            (text("1700000000123456789"), 1_700_000_000_123_456_789),
            (Scalar::U64(1_700_000_000), 1_700_000_000_000_000_000),
            (Scalar::U64(1_700_000_000_123), 1_700_000_000_123_000_000),
            (
                Scalar::U64(1_700_000_000_123_456),
                1_700_000_000_123_456_000,
            ),
            (
                Scalar::U64(1_700_000_000_123_456_789),
                1_700_000_000_123_456_789,
            ),
            (Scalar::F64(1_700_000_000.25), 1_700_000_000_250_000_000),
            (Scalar::F64(1_700_000_000.123), 1_700_000_000_123_000_000),
            (Scalar::F64(1_700_000_000_123.5), 1_700_000_000_123_500_000),
            (Scalar::I64(-5), -5_000_000_000),
        ];
        for (value, want) in cases {
            assert_eq!(from_ndjson("ts", value), Ok(*want), "{value:?}");
        }
    }

    #[test]
    fn magnitude_thresholds_switch_units() {
        // Just below each threshold the smaller unit applies, which puts the time past 2262
        // (the last an i64 of nanoseconds holds): `None` shows which unit was chosen.
        assert_eq!(
            from_text("9000000000"),
            Some(9_000_000_000 * NANOS_PER_SECOND)
        );
        assert_eq!(from_text("99999999999"), None);
        assert_eq!(from_text("100000000000"), Some(100_000_000_000 * 1_000_000));
        assert_eq!(from_text("99999999999999"), None);
        assert_eq!(
            from_text("100000000000000"),
            Some(100_000_000_000_000 * 1_000)
        );
        assert_eq!(from_text("99999999999999999"), None);
        assert_eq!(
            from_text("100000000000000000"),
            Some(100_000_000_000_000_000)
        );
    }

    #[test]
    fn bad_ndjson_timestamps_are_named() {
        let cases: &[(Scalar<'_>, &str)] = &[
            (
                text("yesterday"),
                r#"timestamp "yesterday" is neither RFC 3339 nor a number"#,
            ),
            (
                text("1.7e9"),
                r#"timestamp "1.7e9" is neither RFC 3339 nor a number"#,
            ),
            (
                text("99999999999999999999999"),
                r#"timestamp "99999999999999999999999" is out of range"#,
            ),
            (
                text("9999-12-31T23:59:59Z"),
                r#"timestamp "9999-12-31T23:59:59Z" is out of range"#,
            ),
            (Scalar::F64(1e300), "is out of range"),
            (
                Scalar::Bool(true),
                r#"timestamp field "ts" must be a string or a number"#,
            ),
        ];
        for (value, want) in cases {
            let err = from_ndjson("ts", value).unwrap_err().to_string();
            assert!(err.contains(want), "{err} does not contain {want}");
        }
    }

    #[test]
    fn loki_json_timestamps_are_integer_nanoseconds() {
        assert_eq!(
            from_loki_json(&text("1700000000000000001")),
            Ok(1_700_000_000_000_000_001)
        );
        assert_eq!(from_loki_json(&Scalar::U64(42)), Ok(42));
        let cases: &[(Scalar<'_>, &str)] = &[
            (
                text("abc"),
                r#"timestamp "abc" is not an integer number of nanoseconds"#,
            ),
            (
                text("1.5"),
                r#"timestamp "1.5" is not an integer number of nanoseconds"#,
            ),
            (
                Scalar::F64(1.5),
                "timestamp 1.5 is not an integer number of nanoseconds",
            ),
            (
                Scalar::U64(u64::MAX),
                "timestamp 18446744073709551615 is out of range",
            ),
        ];
        for (value, want) in cases {
            assert_eq!(from_loki_json(value).unwrap_err().to_string(), *want);
        }
    }

    #[test]
    fn proto_timestamps_check_nanos_range() {
        assert_eq!(from_proto(1, 5), Ok(1_000_000_005));
        for (s, n) in [(1, -1), (1, 1_000_000_000), (i64::MAX, 0)] {
            let err = from_proto(s, n).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("timestamp seconds={s} nanos={n} is out of range")
            );
        }
    }

    #[test]
    fn durations_and_times_print_like_go() {
        assert_eq!(human_duration(600 * NANOS_PER_SECOND), "10m");
        assert_eq!(human_duration(5_400 * NANOS_PER_SECOND), "1h30m");
        assert_eq!(human_duration(1_500_000_000), "1s500ms");
        assert_eq!(human_duration(7 * 86_400 * NANOS_PER_SECOND), "168h");
        assert_eq!(rfc3339(1_700_000_000_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339(1_700_000_000_000_000_500),
            "2023-11-14T22:13:20.000000500Z"
        );
    }
}
