//! Parameters of Loki's query API: times, durations, limits and directions in the forms Loki
//! and Grafana send them.

use crate::error::{Error, Result};
use std::collections::HashMap;

/// Order of log lines in a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// Parses a time: RFC 3339, Unix seconds with a fraction (`1700000000.5`), or an integer that is
/// Unix seconds when it has at most 10 digits and Unix nanoseconds otherwise (Loki's rule).
pub fn parse_time(name: &str, value: &str) -> Result<i64> {
    let v = value.trim();
    let bad = || {
        Error::BadRequest(format!(
            "invalid {name} {value:?}: expected RFC 3339, Unix seconds or Unix nanoseconds"
        ))
    };
    if v.contains('T') || (v.len() > 4 && v.as_bytes()[4] == b'-') {
        let t = chrono::DateTime::parse_from_rfc3339(v).map_err(|_| bad())?;
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    if v.contains('.') || v.contains('e') {
        let secs: f64 = v.parse().map_err(|_| bad())?;
        if !secs.is_finite() || secs.abs() > 9.2e9 {
            return Err(bad());
        }
        return Ok((secs * 1e9).round() as i64);
    }
    let n: i64 = v.parse().map_err(|_| bad())?;
    let digits = v.trim_start_matches('-').len();
    if digits <= 10 {
        n.checked_mul(1_000_000_000).ok_or_else(bad)
    } else {
        Ok(n)
    }
}

/// Parses a step or duration: a LogQL duration (`15s`, `1h30m`) or seconds (`60`, `0.5`).
pub fn parse_step(name: &str, value: &str) -> Result<i64> {
    let v = value.trim();
    let ns = match v.parse::<f64>() {
        Ok(secs) if secs.is_finite() => (secs * 1e9).round() as i64,
        _ => logstream_logql::parse_duration(v)
            .map_err(|e| Error::BadRequest(format!("invalid {name} {value:?}: {e}")))?,
    };
    if ns <= 0 {
        return Err(Error::BadRequest(format!(
            "invalid {name} {value:?}: must be greater than zero"
        )));
    }
    Ok(ns)
}

/// The query string's parameters with the helpers every endpoint uses.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| Error::BadRequest(format!("missing parameter {name}")))
    }

    pub fn time_or(&self, name: &str, default: i64) -> Result<i64> {
        self.get(name).map_or(Ok(default), |v| parse_time(name, v))
    }

    pub fn limit(&self, default: usize, max: usize) -> Result<usize> {
        let Some(v) = self.get("limit") else {
            return Ok(default);
        };
        match v.parse::<usize>() {
            Ok(n) if n > 0 && n <= max => Ok(n),
            _ => Err(Error::BadRequest(format!(
                "invalid limit {v:?}: must be an integer from 1 to {max}"
            ))),
        }
    }

    pub fn direction(&self) -> Result<Direction> {
        match self
            .get("direction")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("backward") => Ok(Direction::Backward),
            Some("forward") => Ok(Direction::Forward),
            Some(other) => Err(Error::BadRequest(format!(
                "invalid direction {other:?}: expected forward or backward"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_form_loki_accepts() {
        let ns = 1_700_000_000_000_000_000;
        assert_eq!(parse_time("start", "1700000000").unwrap(), ns);
        assert_eq!(parse_time("start", "1700000000000000000").unwrap(), ns);
        assert_eq!(
            parse_time("start", "1700000000.5").unwrap(),
            ns + 500_000_000
        );
        assert_eq!(parse_time("start", "2023-11-14T22:13:20Z").unwrap(), ns);
        let err = parse_time("end", "yesterday").unwrap_err().to_string();
        assert!(err.contains("invalid end \"yesterday\""), "{err}");
    }

    #[test]
    fn steps_are_durations_or_seconds() {
        assert_eq!(parse_step("step", "15s").unwrap(), 15_000_000_000);
        assert_eq!(parse_step("step", "60").unwrap(), 60_000_000_000);
        assert_eq!(parse_step("step", "0.5").unwrap(), 500_000_000);
        assert!(
            parse_step("step", "0")
                .unwrap_err()
                .to_string()
                .contains("greater than zero")
        );
        assert!(parse_step("step", "abc").is_err());
    }

    #[test]
    fn limits_and_directions_are_checked() {
        let p = Params(
            [("limit", "0"), ("direction", "sideways")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        );
        assert!(
            p.limit(100, 5000)
                .unwrap_err()
                .to_string()
                .contains("invalid limit")
        );
        assert!(p.direction().unwrap_err().to_string().contains("sideways"));
        assert_eq!(Params::default().direction().unwrap(), Direction::Backward);
        assert_eq!(Params::default().limit(100, 5000).unwrap(), 100);
    }
}
