//! Durations as LogQL writes them (`5m`, `1h30m`, `500ms`, `1.5h`, `2w`): a sequence of numbers
//! each followed by a unit, summed. The units are Go's (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`) plus
//! Prometheus' (`d`, `w`, `y` = 365d), which is what Loki accepts. Values are nanoseconds in an
//! `i64`, the same unit as entry timestamps.

use crate::error::DurationError;
use std::fmt::Write;

const MICROSECOND: i64 = 1_000;
const MILLISECOND: i64 = 1_000_000;
const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
const YEAR: i64 = 365 * DAY;

/// Every spelling accepted after a number. `µ` is U+00B5 (micro sign), `μ` U+03BC (Greek mu);
/// Go accepts both.
const UNITS: [(&str, i64); 11] = [
    ("ns", 1),
    ("us", MICROSECOND),
    ("µs", MICROSECOND),
    ("μs", MICROSECOND),
    ("ms", MILLISECOND),
    ("s", SECOND),
    ("m", MINUTE),
    ("h", HOUR),
    ("d", DAY),
    ("w", WEEK),
    ("y", YEAR),
];

/// The units [`format_duration`] writes, largest first, so the output is the shortest sum.
const DISPLAY_UNITS: [(&str, i64); 9] = [
    ("y", YEAR),
    ("w", WEEK),
    ("d", DAY),
    ("h", HOUR),
    ("m", MINUTE),
    ("s", SECOND),
    ("ms", MILLISECOND),
    ("us", MICROSECOND),
    ("ns", 1),
];

/// Parses a LogQL duration such as `5m`, `1h30m`, `1.5h` or `500ms` into nanoseconds.
///
/// Terms may come in any order and repeat (they are summed); a lone `0` needs no unit. There is
/// no sign: callers that allow negative durations handle `-` themselves.
pub fn parse_duration(input: &str) -> Result<i64, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    if input == "0" {
        return Ok(0);
    }
    let mut rest = input;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let (term, tail) = parse_term(rest, input)?;
        total = total
            .checked_add(term)
            .ok_or_else(|| DurationError::OutOfRange(input.to_owned()))?;
        rest = tail;
    }
    Ok(total)
}

/// One `<number><unit>` term at the start of `s`, and what follows it.
fn parse_term<'a>(s: &'a str, input: &str) -> Result<(i64, &'a str), DurationError> {
    let (int_digits, rest) = split_digits(s);
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("", rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(DurationError::Invalid(input.to_owned()));
    }
    let unit_len = rest
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    let scale = unit_scale(unit, input)?;
    let out_of_range = || DurationError::OutOfRange(input.to_owned());
    let whole = parse_whole(int_digits)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(out_of_range)?;
    let term = whole
        .checked_add(fraction(frac_digits, scale))
        .ok_or_else(out_of_range)?;
    Ok((term, rest))
}

fn split_digits(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()))
}

fn unit_scale(unit: &str, input: &str) -> Result<i64, DurationError> {
    if unit.is_empty() {
        return Err(DurationError::MissingUnit(input.to_owned()));
    }
    UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, scale)| *scale)
        .ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_owned(),
            input: input.to_owned(),
        })
}

/// The integer part; `None` when it does not fit in an `i64`.
fn parse_whole(digits: &str) -> Option<i64> {
    if digits.is_empty() {
        return Some(0);
    }
    digits.parse().ok()
}

/// Nanoseconds contributed by the fractional digits, truncated like Go does. Digits past the
/// 18th add less than a nanosecond even for years, so they are ignored to keep the math in u128.
fn fraction(digits: &str, scale: i64) -> i64 {
    let digits = &digits[..digits.len().min(18)];
    let numerator: u128 = digits.parse().unwrap_or(0);
    let denominator = 10u128.pow(digits.len() as u32);
    let ns = numerator * scale.unsigned_abs() as u128 / denominator;
    i64::try_from(ns).unwrap_or(0)
}

/// The canonical spelling of `ns` nanoseconds: the largest units first (`1h30m`, `2w`, `1s500ms`);
/// zero is `0s`. [`parse_duration`] reads it back to the same value (after a leading `-`, if any).
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if ns < 0 {
        out.push('-');
    }
    let mut rest = ns.unsigned_abs();
    for (unit, scale) in DISPLAY_UNITS {
        let scale = scale.unsigned_abs();
        if rest >= scale {
            // Writing to a String cannot fail.
            let _ = write!(out, "{}{unit}", rest / scale);
            rest %= scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_terms_use_go_and_prometheus_units() {
        let cases = [
            ("1ns", 1),
            ("2us", 2 * MICROSECOND),
            ("3µs", 3 * MICROSECOND),
            ("3μs", 3 * MICROSECOND),
            ("500ms", 500 * MILLISECOND),
            ("30s", 30 * SECOND),
            ("5m", 5 * MINUTE),
            ("2h", 2 * HOUR),
            ("1d", DAY),
            ("2w", 2 * WEEK),
            ("1y", YEAR),
            ("0", 0),
            ("0s", 0),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn sequences_and_fractions_are_summed() {
        assert_eq!(parse_duration("1h30m"), Ok(90 * MINUTE));
        assert_eq!(parse_duration("1m1s1ms"), Ok(MINUTE + SECOND + MILLISECOND));
        assert_eq!(parse_duration("30m1h"), Ok(90 * MINUTE));
        assert_eq!(parse_duration("1.5h"), Ok(90 * MINUTE));
        assert_eq!(parse_duration("0.5s"), Ok(500 * MILLISECOND));
        assert_eq!(parse_duration("1.s"), Ok(SECOND));
        assert_eq!(parse_duration("1.0000000001s"), Ok(SECOND));
    }

    #[test]
    fn malformed_durations_are_refused() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("5"),
            Err(DurationError::MissingUnit("5".into()))
        );
        assert_eq!(
            parse_duration("1h5"),
            Err(DurationError::MissingUnit("1h5".into()))
        );
        assert!(matches!(
            parse_duration("5x"),
            Err(DurationError::UnknownUnit { unit, .. }) if unit == "x"
        ));
        assert!(matches!(
            parse_duration("5mh"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert_eq!(parse_duration("h"), Err(DurationError::Invalid("h".into())));
        assert_eq!(parse_duration("."), Err(DurationError::Invalid(".".into())));
        assert_eq!(
            parse_duration("-5m"),
            Err(DurationError::Invalid("-5m".into()))
        );
    }

    #[test]
    fn overflowing_durations_are_refused() {
        for input in ["300y", "99999999999999999999ns", "292y292y"] {
            assert_eq!(
                parse_duration(input),
                Err(DurationError::OutOfRange(input.into())),
                "{input}"
            );
        }
    }

    #[test]
    fn formatting_is_canonical_and_reads_back() {
        let cases = [
            (0, "0s"),
            (90 * MINUTE, "1h30m"),
            (14 * DAY, "2w"),
            (SECOND + 500 * MILLISECOND, "1s500ms"),
            (YEAR + DAY + 1, "1y1d1ns"),
            (1500, "1us500ns"),
            (-5 * MINUTE, "-5m"),
        ];
        for (ns, text) in cases {
            assert_eq!(format_duration(ns), text);
        }
        for ns in [
            1,
            999,
            SECOND,
            61 * SECOND,
            i64::MAX,
            3 * YEAR + 5 * WEEK + 7,
        ] {
            assert_eq!(parse_duration(&format_duration(ns)), Ok(ns), "{ns}");
        }
    }
}
