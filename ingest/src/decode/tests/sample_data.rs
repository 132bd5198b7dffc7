//! Real Loghub lines (from the shared data folder, when present) through all three formats.

use super::support::{NOW, pb_entry, pb_request, pb_stream, snappy};
use crate::decode::{Limits, decode_loki_push, decode_ndjson};
use logstream_bus::Stream;
use std::path::Path;

const LOGHUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/loghub");
const SYSTEMS: [&str; 4] = ["Apache", "HDFS", "OpenSSH", "Linux"];

/// `(system, lines)` for each sample file present.
fn samples() -> Vec<(&'static str, Vec<String>)> {
    SYSTEMS
        .iter()
        .filter_map(|system| {
            let path = Path::new(LOGHUB)
                .join(system)
                .join(format!("{system}_2k.log"));
            let bytes = std::fs::read(&path).ok()?;
            let text = String::from_utf8_lossy(&bytes);
            Some((*system, text.lines().map(str::to_owned).collect()))
        })
        .collect()
}

fn lines_of(streams: &[Stream], system: &str) -> Vec<String> {
    let stream = streams
        .iter()
        .find(|s| s.labels.get("app") == Some(system))
        .unwrap();
    stream.entries.iter().map(|e| e.line.clone()).collect()
}

#[test]
fn loghub_lines_survive_every_format() {
    let samples = samples();
    if samples.is_empty() {
        println!("note: no Loghub samples under {LOGHUB}, skipping");
        return;
    }
    let ts = |i: usize| 1_700_000_000_000_000_000 + i as i64;
    let mut ndjson = String::new();
    let mut json_streams = Vec::new();
    let mut pb_streams = Vec::new();
    for (system, lines) in &samples {
        for (i, line) in lines.iter().enumerate() {
            let row = serde_json::json!({"ts": ts(i).to_string(), "msg": line, "labels": {"app": system}});
            ndjson.push_str(&format!("{row}\n"));
        }
        let values: Vec<_> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| serde_json::json!([ts(i).to_string(), l]))
            .collect();
        json_streams.push(serde_json::json!({"stream": {"app": system}, "values": values}));
        let entries = lines
            .iter()
            .enumerate()
            .map(|(i, l)| pb_entry(ts(i), l, &[]))
            .collect();
        pb_streams.push(pb_stream(&format!("{{app={system:?}}}"), entries));
    }
    let json = serde_json::json!({"streams": json_streams}).to_string();
    let limits = Limits::default();
    let decoded = [
        decode_ndjson(None, ndjson.as_bytes(), &limits, NOW).unwrap(),
        decode_loki_push(
            Some("application/json"),
            None,
            json.as_bytes(),
            &limits,
            NOW,
        )
        .unwrap(),
        decode_loki_push(None, None, &snappy(&pb_request(pb_streams)), &limits, NOW).unwrap(),
    ];
    for streams in &decoded {
        assert_eq!(streams.len(), samples.len());
        for (system, lines) in &samples {
            assert_eq!(&lines_of(streams, system), lines, "{system}");
        }
    }
}
