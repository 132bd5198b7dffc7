//! Timestamp formats of a LogPipeline: reading the time a log line names into nanoseconds
//! since the Unix epoch.
//!
//! - `rfc3339` (alias `iso8601`, `rfc3339nano`): `2024-05-01T12:00:00Z`, with any number of
//!   fraction digits (digits past nanoseconds are dropped), `Z`/`z` or an offset (`+02:00`,
//!   `+0200`, `+02`), a space or `t` instead of `T`, a `,` instead of `.` before the
//!   fraction (log4j writes `2015-10-18 18:01:47,978`), and no zone meaning UTC. A
//!   hand-written parser, several times faster than chrono's generic one.
//! - `unix`, `unix_ms`, `unix_us`, `unix_ns`: a decimal number of that unit since the epoch,
//!   optionally signed, with a fraction and an exponent (`1700000000.123`, `1.7e9`); the result
//!   is exact to the nanosecond (rounded down below it).
//! - anything with a `%`: a chrono strftime pattern (`%Y %m %d %H %M %S %.f %3f %z %b %e %j
//!   %y %a %s` …). Note that chrono reads `%f` as a count of nanoseconds: use `%.f`, `%.3f`
//!   or `%3f` for a fraction. `%Z` skips a zone name without using it. Whitespace in the
//!   pattern matches any run of whitespace, so `%b %e` reads both `Jun  9` and `Jun 14`.
//!
//! What the value leaves out comes from `received_ns`, the time LogStream got the line: a
//! pattern without a year takes the year that puts the instant closest to it (so
//! `Dec 31 23:59:59` received on 1 January is last year's, and a weekday in the pattern
//! picks the year it fits), a pattern without any date takes the closest day, a missing time
//! of day is midnight, a missing zone is UTC. Values are trimmed of surrounding whitespace.

use std::fmt::Write as _;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, FixedOffset, TimeDelta, TimeZone};

use super::parse::CompileError;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A compiled timestamp format.
#[derive(Debug, Clone)]
pub struct TimeFormat(Kind);

#[derive(Debug, Clone)]
enum Kind {
    Rfc3339,
    /// Seconds times 10^-n: 0 for seconds, 3 for milliseconds, ...
    Unix {
        decimals: u32,
    },
    Strftime(Vec<Item<'static>>),
}

impl TimeFormat {
    /// `rfc3339` (also accepts nanoseconds, `Z` or offsets, and a space instead of `T`),
    /// `unix` (seconds, fraction allowed: "1700000000.123"), `unix_ms`, `unix_us`, `unix_ns`,
    /// or a strftime-like pattern with `%` (chrono's specifiers: %Y %m %d %H %M %S %f %.f %z
    /// %b %e %j %y ...).
    pub fn parse_spec(spec: &str) -> Result<Self, CompileError> {
        let kind = match spec {
            "rfc3339" | "rfc3339nano" | "iso8601" => Kind::Rfc3339,
            "unix" | "unix_s" => Kind::Unix { decimals: 0 },
            "unix_ms" => Kind::Unix { decimals: 3 },
            "unix_us" => Kind::Unix { decimals: 6 },
            "unix_ns" => Kind::Unix { decimals: 9 },
            _ if spec.contains('%') => Kind::Strftime(compile_strftime(spec)?),
            _ => {
                return Err(CompileError(format!(
                    "time format {spec:?}: expected rfc3339, unix, unix_ms, unix_us, unix_ns \
                     or a strftime pattern with %"
                )));
            }
        };
        Ok(TimeFormat(kind))
    }

    /// The instant `value` names, in ns since the Unix epoch, or None when it does not fit
    /// the format. `received_ns` resolves what the value leaves out: a pattern without a year
    /// takes the year that puts the time closest to `received_ns` (so "Dec 31 23:59:59"
    /// received on Jan 1 is last year's), a pattern without a zone is UTC.
    pub fn parse(&self, value: &str, received_ns: i64) -> Option<i64> {
        let value = value.trim_ascii();
        match &self.0 {
            Kind::Rfc3339 => parse_rfc3339(value.as_bytes()),
            Kind::Unix { decimals } => parse_unix(value.as_bytes(), *decimals),
            Kind::Strftime(items) => parse_strftime(items, value, received_ns),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rfc3339

/// The value of the ASCII digits `b`, or None if any is not a digit.
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })
}

fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let (nanos, rest) = fraction(&b[19..]);
    let offset_secs = zone_offset(rest)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(NANOS_PER_SEC)?.checked_add(nanos)
}

/// The nanoseconds of an optional `.123`/`,123` fraction, and what follows it.
fn fraction(b: &[u8]) -> (i64, &[u8]) {
    let [b'.' | b',', rest @ ..] = b else {
        return (0, b);
    };
    let len = rest.iter().take_while(|d| d.is_ascii_digit()).count();
    if len == 0 {
        return (0, b); // a lone separator: left for the zone check to refuse
    }
    let kept = &rest[..len.min(9)];
    let nanos = digits(kept).unwrap_or(0) * 10i64.pow(9 - kept.len() as u32);
    (nanos, &rest[len..])
}

/// Seconds east of UTC for `Z`, `+hh:mm`, `+hhmm`, `+hh` or nothing (UTC).
fn zone_offset(b: &[u8]) -> Option<i64> {
    let (sign, hm) = match b {
        [] | [b'Z' | b'z'] => return Some(0),
        [b'+', hm @ ..] => (1, hm),
        [b'-', hm @ ..] => (-1, hm),
        _ => return None,
    };
    let (hours, minutes) = match hm {
        [h1, h2] => (digits(&[*h1, *h2])?, 0),
        [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
        _ => return None,
    };
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

// ---------------------------------------------------------------------------------------------
// unix

/// Significant digits kept from a number; more cannot change a nanosecond result in range.
const MAX_MANTISSA_DIGITS: i32 = 30;

/// A decimal number of 10^-`decimals` seconds as nanoseconds, rounded down.
fn parse_unix(b: &[u8], decimals: u32) -> Option<i64> {
    let (negative, b) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    let (mut mantissa, mut kept, mut scale) = (0i128, 0i32, 0i32);
    // Leading zeros take no slot; a digit past the slots is dropped (`false`).
    let mut add_digit = |d: u8| {
        if mantissa == 0 && d == b'0' {
            true
        } else if kept < MAX_MANTISSA_DIGITS {
            mantissa = mantissa * 10 + i128::from(d - b'0');
            kept += 1;
            true
        } else {
            false
        }
    };
    let int_len = b.iter().take_while(|d| d.is_ascii_digit()).count();
    for &d in &b[..int_len] {
        if !add_digit(d) {
            scale += 1; // integer digits past the kept ones still count for magnitude
        }
    }
    let mut rest = &b[int_len..];
    let mut frac_len = 0;
    if let [b'.', after @ ..] = rest {
        frac_len = after.iter().take_while(|d| d.is_ascii_digit()).count();
        for &d in &after[..frac_len] {
            if add_digit(d) {
                scale -= 1;
            }
        }
        rest = &after[frac_len..];
    }
    if int_len + frac_len == 0 {
        return None;
    }
    if let [b'e' | b'E', exponent @ ..] = rest {
        scale += exponent_value(exponent)?;
    } else if !rest.is_empty() {
        return None;
    }
    scale_to_nanos(mantissa, scale + 9 - decimals as i32, negative)
}

/// The value of an exponent's `[+-]digits`, up to 4 digits.
fn exponent_value(b: &[u8]) -> Option<i32> {
    let (sign, digits_of) = match b {
        [b'-', rest @ ..] => (-1, rest),
        [b'+', rest @ ..] => (1, rest),
        _ => (1, b),
    };
    if digits_of.is_empty() || digits_of.len() > 4 {
        return None;
    }
    Some(sign * i32::try_from(digits(digits_of)?).ok()?)
}

/// `mantissa` × 10^`exp` as an i64, rounded towards minus infinity.
fn scale_to_nanos(mantissa: i128, exp: i32, negative: bool) -> Option<i64> {
    let signed = if negative { -mantissa } else { mantissa };
    let value = if exp >= 0 {
        if mantissa == 0 {
            0
        } else {
            signed.checked_mul(10i128.checked_pow(u32::try_from(exp).ok()?)?)?
        }
    } else {
        // Past 10^38 every kept mantissa rounds to 0 or -1.
        match 10i128.checked_pow(exp.unsigned_abs()) {
            Some(divisor) => signed.div_euclid(divisor),
            None => -i128::from(negative && mantissa != 0),
        }
    };
    i64::try_from(value).ok()
}

// ---------------------------------------------------------------------------------------------
// strftime

fn compile_strftime(spec: &str) -> Result<Vec<Item<'static>>, CompileError> {
    let invalid = |why: &str| CompileError(format!("time format {spec:?}: {why}"));
    let items = StrftimeItems::new(spec)
        .parse_to_owned()
        .map_err(|_| invalid("not a valid strftime pattern"))?;
    // The pattern must read back what it writes, or no value could ever parse.
    let reference = FixedOffset::east_opt(2 * 3600)
        .and_then(|zone| zone.with_ymd_and_hms(2021, 3, 4, 5, 6, 7).single())
        .ok_or_else(|| invalid("no reference time"))?;
    let mut text = String::new();
    write!(text, "{}", reference.format_with_items(items.iter()))
        .map_err(|_| invalid("cannot be formatted"))?;
    let received = reference.timestamp_nanos_opt().unwrap_or(0);
    if parse_strftime(&items, text.trim_ascii(), received).is_none() {
        return Err(invalid(&format!(
            "does not name an instant (it formats as {text:?} but cannot read that back)"
        )));
    }
    Ok(items)
}

fn parse_strftime(items: &[Item<'static>], value: &str, received_ns: i64) -> Option<i64> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, value, items.iter()).ok()?;
    if parsed.timestamp().is_some() {
        return instant(&parsed);
    }
    if parsed.hour_div_12().is_none() && parsed.hour_mod_12().is_none() {
        parsed.set_hour(0).ok()?;
    }
    if parsed.minute().is_none() {
        parsed.set_minute(0).ok()?;
    }
    let has_year = parsed.year().is_some()
        || parsed.year_mod_100().is_some()
        || parsed.year_div_100().is_some()
        || parsed.isoyear().is_some()
        || parsed.isoyear_mod_100().is_some()
        || parsed.isoyear_div_100().is_some();
    let has_date = parsed.month().is_some()
        || parsed.day().is_some()
        || parsed.ordinal().is_some()
        || parsed.isoweek().is_some()
        || parsed.week_from_mon().is_some()
        || parsed.week_from_sun().is_some();
    let received = DateTime::from_timestamp_nanos(received_ns).date_naive();
    match (has_year, has_date) {
        (true, _) => instant(&parsed),
        (false, true) => closest(
            received_ns,
            (-1..=1).filter_map(|dy| {
                let mut candidate = parsed.clone();
                candidate.set_year(i64::from(received.year()) + dy).ok()?;
                instant(&candidate)
            }),
        ),
        (false, false) => closest(
            received_ns,
            (-1..=1).filter_map(|dd: i64| {
                let day = received.checked_add_signed(TimeDelta::try_days(dd)?)?;
                let mut candidate = parsed.clone();
                candidate.set_year(i64::from(day.year())).ok()?;
                candidate.set_month(i64::from(day.month())).ok()?;
                candidate.set_day(i64::from(day.day())).ok()?;
                instant(&candidate)
            }),
        ),
    }
}

/// The candidate nearest to `received_ns`.
fn closest(received_ns: i64, candidates: impl Iterator<Item = i64>) -> Option<i64> {
    candidates.min_by_key(|ns| ns.abs_diff(received_ns))
}

/// The instant of fully resolved fields; a missing zone is UTC.
fn instant(parsed: &Parsed) -> Option<i64> {
    let offset = parsed.offset().unwrap_or(0);
    let local = parsed.to_naive_datetime_with_offset(offset).ok()?;
    local
        .and_utc()
        .timestamp_nanos_opt()?
        .checked_sub(i64::from(offset) * NANOS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    fn format(spec: &str) -> TimeFormat {
        TimeFormat::parse_spec(spec).unwrap()
    }

    const NOW: &str = "2024-06-15T12:00:00Z";

    #[test]
    fn rfc3339_variants() {
        let f = format("rfc3339");
        let cases = [
            ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
            ("2024-05-01t12:00:00z", "2024-05-01T12:00:00Z"),
            ("2024-05-01 12:00:00Z", "2024-05-01T12:00:00Z"),
            ("2024-05-01T12:00:00", "2024-05-01T12:00:00Z"),
            (
                "2024-05-01T12:00:00.123456789Z",
                "2024-05-01T12:00:00.123456789Z",
            ),
            (
                "2024-05-01T12:00:00.1234567891234Z",
                "2024-05-01T12:00:00.123456789Z",
            ),
            ("2024-05-01T12:00:00.5+02:00", "2024-05-01T10:00:00.5Z"),
            ("2024-05-01T12:00:00-0130", "2024-05-01T13:30:00Z"),
            ("2024-05-01T12:00:00+05", "2024-05-01T07:00:00Z"),
            ("2015-10-18 18:01:47,978", "2015-10-18T18:01:47.978Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
            (
                "1969-12-31T23:59:59.999999999Z",
                "1969-12-31T23:59:59.999999999Z",
            ),
            (" 2024-05-01T12:00:00Z\n", "2024-05-01T12:00:00Z"),
        ];
        for (value, want) in cases {
            assert_eq!(f.parse(value, 0), Some(ns(want)), "{value:?}");
        }
    }

    #[test]
    fn rfc3339_rejects_malformed_values() {
        let f = format("rfc3339");
        for value in [
            "",
            "2024-05-01",
            "2024-05-01X12:00:00Z",
            "2024-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-04-31T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00Z junk",
            "2024-05-01T12:00:0aZ",
            "1500-01-01T00:00:00Z",
            "2300-01-01T00:00:00Z",
            "+024-05-01T12:00:00Z",
        ] {
            assert_eq!(f.parse(value, 0), None, "{value:?}");
        }
    }

    #[test]
    fn unix_units_and_fractions() {
        let s = ns("2023-11-14T22:13:20Z");
        let cases = [
            ("unix", "1700000000", s),
            ("unix", "1700000000.123", s + 123_000_000),
            ("unix", "1700000000.123456789999", s + 123_456_789),
            ("unix", "1.7e9", s),
            ("unix", "1.7000000001E+9", s + 100_000_000),
            ("unix", "+1700000000", s),
            ("unix", "-1.5", -1_500_000_000),
            ("unix", "-0.0000000001", -1),
            ("unix", "0", 0),
            (
                "unix",
                "000000000000000000000000000000000000001700000000",
                s,
            ),
            ("unix", "1700000000.", s),
            ("unix", ".5", 500_000_000),
            ("unix_s", "1700000000", s),
            ("unix_ms", "1700000000123", s + 123_000_000),
            ("unix_ms", "1700000000123.5", s + 123_500_000),
            ("unix_us", "1700000000123456", s + 123_456_000),
            ("unix_ns", "1700000000123456789", s + 123_456_789),
            ("unix_ns", "9223372036854775807", i64::MAX),
        ];
        for (spec, value, want) in cases {
            assert_eq!(format(spec).parse(value, 0), Some(want), "{spec} {value:?}");
        }
    }

    #[test]
    fn unix_rejects_non_numbers_and_overflow() {
        for (spec, value) in [
            ("unix", ""),
            ("unix", "-"),
            ("unix", "."),
            ("unix", "1e"),
            ("unix", "1e99999"),
            ("unix", "1700000000s"),
            ("unix", "17 00"),
            ("unix", "0x10"),
            ("unix", "1e10"),
            ("unix", "99999999999999999999999999999999999999999999"),
            ("unix_ns", "9223372036854775808"),
            ("unix", "NaN"),
        ] {
            assert_eq!(format(spec).parse(value, 0), None, "{spec} {value:?}");
        }
        assert_eq!(
            format("unix").parse("1e-99999", 0),
            None,
            "exponent longer than 4 digits"
        );
        assert_eq!(format("unix").parse("1e-9999", 0), Some(0));
        assert_eq!(format("unix").parse("-1e-9999", 0), Some(-1));
    }

    #[test]
    fn strftime_real_formats() {
        let received = ns(NOW);
        let cases = [
            (
                "%d/%b/%Y:%H:%M:%S %z",
                "17/May/2015:10:05:03 +0000",
                "2015-05-17T10:05:03Z",
            ),
            (
                "%d/%b/%Y:%H:%M:%S %z",
                "17/May/2015:10:05:03 -0700",
                "2015-05-17T17:05:03Z",
            ),
            (
                "%a %b %d %H:%M:%S %Y",
                "Sun Dec 04 04:47:44 2005",
                "2005-12-04T04:47:44Z",
            ),
            ("%y%m%d %H%M%S", "081109 203615", "2008-11-09T20:36:15Z"),
            (
                "%y/%m/%d %H:%M:%S",
                "17/06/09 20:10:40",
                "2017-06-09T20:10:40Z",
            ),
            (
                "%Y-%m-%d %H:%M:%S,%3f",
                "2015-10-18 18:01:47,978",
                "2015-10-18T18:01:47.978Z",
            ),
            (
                "%Y-%m-%d-%H.%M.%S%.f",
                "2005-06-03-15.42.50.675872",
                "2005-06-03T15:42:50.675872Z",
            ),
            ("%Y.%m.%d", "2005.06.03", "2005-06-03T00:00:00Z"),
            ("%s", "1117838570", "2005-06-03T22:42:50Z"),
            ("%Y-%j %H:%M", "2024-032 01:02", "2024-02-01T01:02:00Z"),
            ("%b %e %H:%M:%S", "Jun  9 06:06:20", "2024-06-09T06:06:20Z"),
            ("%b %e %H:%M:%S", "Jun 14 15:16:01", "2024-06-14T15:16:01Z"),
            ("%b %d %H:%M:%S", "Dec 10 06:55:46", "2024-12-10T06:55:46Z"),
            (
                "%m-%d %H:%M:%S%.3f",
                "03-17 16:13:38.811",
                "2024-03-17T16:13:38.811Z",
            ),
            ("%H:%M:%S", "11:00:00", "2024-06-15T11:00:00Z"),
            ("%H:%M:%S", "23:30:00", "2024-06-15T23:30:00Z"),
            (
                "%Y-%m-%dT%H:%M:%S%:z",
                "2024-01-01T00:00:00+01:00",
                "2023-12-31T23:00:00Z",
            ),
            (
                "%Y-%m-%d %H:%M:%S %Z",
                "2024-01-01 00:00:00 CET",
                "2024-01-01T00:00:00Z",
            ),
        ];
        for (spec, value, want) in cases {
            assert_eq!(
                format(spec).parse(value, received),
                Some(ns(want)),
                "{spec} {value:?}"
            );
        }
    }

    #[test]
    fn a_missing_year_is_the_one_closest_to_receipt() {
        let f = format("%b %e %H:%M:%S");
        let jan_first = ns("2025-01-01T00:00:05Z");
        assert_eq!(
            f.parse("Dec 31 23:59:59", jan_first),
            Some(ns("2024-12-31T23:59:59Z"))
        );
        assert_eq!(
            f.parse("Jan  1 00:00:01", jan_first),
            Some(ns("2025-01-01T00:00:01Z"))
        );
        let no_date = format("%H:%M:%S");
        assert_eq!(
            no_date.parse("23:59:59", jan_first),
            Some(ns("2024-12-31T23:59:59Z"))
        );
        let new_years_eve = ns("2024-12-31T23:59:00Z");
        assert_eq!(
            f.parse("Jan  1 00:00:30", new_years_eve),
            Some(ns("2025-01-01T00:00:30Z"))
        );
        // Feb 29 only exists in the leap year among the candidates.
        assert_eq!(
            f.parse("Feb 29 12:00:00", ns("2025-03-01T00:00:00Z")),
            Some(ns("2024-02-29T12:00:00Z"))
        );
        // A weekday picks the year it fits: 4 Dec was a Sunday in 2005, not in 2004 or 2006.
        let g = format("%a %b %d %H:%M:%S");
        assert_eq!(
            g.parse("Sun Dec 04 04:47:44", ns("2006-06-01T00:00:00Z")),
            Some(ns("2005-12-04T04:47:44Z"))
        );
        assert_eq!(
            g.parse("Mon Dec 04 04:47:44", ns("2006-06-01T00:00:00Z")),
            Some(ns("2006-12-04T04:47:44Z"))
        );
    }

    #[test]
    fn strftime_rejects_values_that_do_not_fit() {
        let f = format("%d/%b/%Y:%H:%M:%S %z");
        for value in [
            "",
            "17/May/2015",
            "17/Mai/2015:10:05:03 +0000",
            "32/May/2015:10:05:03 +0000",
            "17/May/2015:10:05:03 +0000 x",
        ] {
            assert_eq!(f.parse(value, 0), None, "{value:?}");
        }
        assert_eq!(
            format("%a %b %d %H:%M:%S %Y").parse("Mon Dec 04 04:47:44 2005", 0),
            None,
            "wrong weekday"
        );
    }

    #[test]
    fn spec_errors() {
        for (spec, want) in [
            ("rfc", "expected rfc3339, unix"),
            ("", "expected rfc3339, unix"),
            ("%Q", "not a valid strftime pattern"),
            ("%", "not a valid strftime pattern"),
            ("%Y", "does not name an instant"),
            ("%b %Y", "does not name an instant"),
            ("%I:%M", "does not name an instant"),
        ] {
            let err = TimeFormat::parse_spec(spec).unwrap_err();
            assert!(err.0.contains(want), "{spec:?}: {err}");
        }
    }

    #[test]
    fn days_from_civil_matches_chrono() {
        let mut day = chrono::NaiveDate::from_ymd_opt(1600, 1, 1).unwrap();
        let end = chrono::NaiveDate::from_ymd_opt(2400, 12, 31).unwrap();
        while day <= end {
            let want = day
                .signed_duration_since(chrono::NaiveDate::default())
                .num_days();
            let got = days_from_civil(
                i64::from(day.year()),
                i64::from(day.month()),
                i64::from(day.day()),
            );
            assert_eq!(got, want, "{day}");
            day = day.succ_opt().unwrap();
        }
    }

    #[test]
    fn random_values_never_panic() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let formats = [
            "rfc3339",
            "unix",
            "unix_ms",
            "unix_ns",
            "%b %e %H:%M:%S",
            "%d/%b/%Y:%H:%M:%S %z",
            "%y%m%d %H%M%S",
            "%H:%M:%S",
            "%s",
        ]
        .map(format);
        let seeds = [
            "2024-05-01T12:00:00.123456789+02:00",
            "1700000000.123e-3",
            "Jun  9 06:06:20",
            "17/May/2015:10:05:03 +0000",
        ];
        let mut rng = StdRng::seed_from_u64(0x71e);
        for i in 0..20_000 {
            let seed = seeds[i % seeds.len()].as_bytes();
            let mut bytes = match i % 3 {
                0 => (0..rng.random_range(0..40))
                    .map(|_| rng.random::<u8>())
                    .collect::<Vec<u8>>(),
                1 => seed[..rng.random_range(0..=seed.len())].to_vec(),
                _ => seed.to_vec(),
            };
            for _ in 0..rng.random_range(0..3) {
                if let Some(at) = (!bytes.is_empty()).then(|| rng.random_range(0..bytes.len())) {
                    bytes[at] = b"0123456789-+:.eZT \xff"[rng.random_range(0..19)];
                }
            }
            let value = String::from_utf8_lossy(&bytes);
            let received = [0, i64::MIN, i64::MAX, ns(NOW)][i % 4];
            for f in &formats {
                let _ = f.parse(&value, received);
            }
        }
    }
}
