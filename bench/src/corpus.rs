//! The lines a benchmark pushes: the real Loghub and Elastic samples when present, each system
//! its own stream, or generated access-log-like lines.

use serde_json::json;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Corpus {
    pub source: String,
    /// (stream name, line)
    pub lines: Vec<(String, String)>,
}

/// One pre-encoded Loki push body.
#[derive(Debug, Clone)]
pub struct Body {
    pub json: bytes::Bytes,
    pub events: usize,
    pub line_bytes: usize,
}

impl Corpus {
    pub fn load(samples: Option<&Path>) -> Self {
        let mut lines = Vec::new();
        if let Some(dir) = samples {
            read_samples(dir, &mut lines);
        }
        if lines.is_empty() {
            return Self::generated();
        }
        Self {
            source: format!(
                "{} (Loghub + Elastic samples)",
                samples.map(|p| p.display().to_string()).unwrap_or_default()
            ),
            lines,
        }
    }

    fn generated() -> Self {
        let paths = ["/", "/api/v1/items", "/login", "/static/app.js", "/health"];
        let lines = (0..10_000)
            .map(|i| {
                let line = format!(
                    "10.0.{}.{} - - \"GET {} HTTP/1.1\" {} {} \"-\" \"bench/1.0\" req_id={i:08x}",
                    i % 250,
                    i % 199,
                    paths[i % paths.len()],
                    [200, 200, 200, 404, 500][i % 5],
                    100 + (i * 37) % 9000
                );
                (format!("gen{}", i % 4), line)
            })
            .collect();
        Self {
            source: "generated access-log lines".into(),
            lines,
        }
    }

    /// `events` events in bodies of `batch`, timestamps from `start_ns` one nanosecond apart;
    /// the middle event carries `needle`.
    pub fn bodies(&self, events: usize, batch: usize, start_ns: i64, needle: &str) -> Vec<Body> {
        let mut out = Vec::with_capacity(events / batch + 1);
        let mut i = 0usize;
        while i < events {
            let n = batch.min(events - i);
            let mut streams: std::collections::BTreeMap<&str, Vec<serde_json::Value>> =
                Default::default();
            let mut line_bytes = 0;
            for j in i..i + n {
                // A prime stride interleaves the systems, so each body carries several streams.
                let (stream, line) = &self.lines[(j * 7919) % self.lines.len()];
                let line = if j == events / 2 {
                    format!("{line} {needle}")
                } else {
                    line.clone()
                };
                line_bytes += line.len();
                let ts = (start_ns + j as i64).to_string();
                streams.entry(stream).or_default().push(json!([ts, line]));
            }
            let streams: Vec<_> = streams
                .into_iter()
                .map(|(s, values)| json!({"stream": {"job": "bench", "system": s}, "values": values}))
                .collect();
            let body = serde_json::to_vec(&json!({ "streams": streams })).unwrap_or_default();
            out.push(Body {
                json: body.into(),
                events: n,
                line_bytes,
            });
            i += n;
        }
        out
    }
}

fn read_samples(dir: &Path, out: &mut Vec<(String, String)>) {
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    if let Ok(systems) = std::fs::read_dir(dir.join("loghub")) {
        for s in systems.flatten() {
            let name = s.file_name().to_string_lossy().to_string();
            files.push((name.to_lowercase(), s.path().join(format!("{name}_2k.log"))));
        }
    }
    let elastic = dir.join("elastic-examples");
    files.push(("apache_access".into(), elastic.join("apache_logs")));
    files.push(("auth".into(), elastic.join("auth.log")));
    files.sort();
    for (stream, path) in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        out.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| (stream.clone(), l.to_string())),
        );
    }
}
