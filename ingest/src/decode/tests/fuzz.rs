//! Robustness: thousands of deterministic mutations of valid bodies must never panic, and
//! whatever decodes must satisfy the validation invariants.

use super::support::{NOW, Rng, assert_valid, gzip, pb_entry, pb_request, pb_stream, snappy};
use crate::decode::{Limits, decode_loki_push, decode_ndjson, labels};

const ROUNDS: usize = 3_000;
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\\",
    b"\\u00",
    b"0",
    b"-",
    b"1e99",
    b"null",
    b"\n",
    b"\xff",
    b"\x80",
    b"=",
    b"`",
    b"'",
    b"!=",
    b"\"streams\"",
    b"\"values\"",
    b"\"labels\"",
    b"\"ts\"",
    b"\"msg\"",
];

/// One random edit: flip a byte, insert a token, delete or duplicate a range, or truncate.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 => drop(out.splice(at..at, rng.pick(TOKENS).iter().copied())),
            2 => drop(out.drain(at..(at + rng.below(8)).min(out.len()))),
            3 => {
                let end = (at + rng.below(16)).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn limits() -> Limits {
    Limits {
        max_decompressed_bytes: 1 << 20,
        max_line_bytes: 64,
        ..Limits::default()
    }
}

#[test]
fn mutated_loki_json_never_panics() {
    let seed = br#"{"streams":[{"stream":{"app":"a","env":"p"},"values":[["1700000000000000000","line one"],["1700000000000000001","two",{"k":"v","n":1}]]},{"stream":{"app":"b"},"values":[[1700000000000000002,"x"]]}]}"#;
    let mut rng = Rng::new(1);
    for _ in 0..ROUNDS {
        let body = mutate(&mut rng, seed);
        let encoding = if rng.below(4) == 0 {
            Some("gzip")
        } else {
            None
        };
        let body = if encoding.is_some() {
            gzip(&body)
        } else {
            body
        };
        if let Ok(streams) =
            decode_loki_push(Some("application/json"), encoding, &body, &limits(), NOW)
        {
            assert_valid(&streams, &limits(), NOW);
        }
    }
}

#[test]
fn mutated_loki_protobuf_never_panics() {
    let pb = pb_request(vec![
        pb_stream(
            r#"{app="a", env=`p`}"#,
            vec![pb_entry(
                1_700_000_000_000_000_000,
                "line one",
                &[("k", "v")],
            )],
        ),
        pb_stream(
            r#"{app="b\n\x41"}"#,
            vec![
                pb_entry(1_700_000_000_000_000_001, "two", &[]),
                pb_entry(5, "x", &[]),
            ],
        ),
    ]);
    let compressed = snappy(&pb);
    let mut rng = Rng::new(2);
    for round in 0..ROUNDS {
        // Mutating the protobuf reaches prost and validation; mutating the compressed bytes
        // reaches the snappy and gzip decoders.
        let (encoding, body) = match round % 3 {
            0 => (None, snappy(&mutate(&mut rng, &pb))),
            1 => (None, mutate(&mut rng, &compressed)),
            _ => (Some("gzip"), mutate(&mut rng, &gzip(&compressed))),
        };
        if let Ok(streams) = decode_loki_push(None, encoding, &body, &limits(), NOW) {
            assert_valid(&streams, &limits(), NOW);
        }
    }
}

#[test]
fn mutated_ndjson_never_panics() {
    let seed = concat!(
        r#"{"ts":"2023-11-14T22:13:20.5Z","msg":"hello","labels":{"app":"a"},"level":"info"}"#,
        "\n",
        r#"{"time":1700000000.25,"message":"x","meta":{"a":[1,2]},"labels":{"app":"b","env":"p"}}"#,
        "\r\n",
        r#"{"@timestamp":"1700000000123","log":"y"}"#,
    );
    let mut rng = Rng::new(3);
    for _ in 0..ROUNDS {
        let body = mutate(&mut rng, seed.as_bytes());
        if let Ok(streams) = decode_ndjson(None, &body, &limits(), NOW) {
            assert_valid(&streams, &limits(), NOW);
        }
    }
}

#[test]
fn random_label_strings_never_panic() {
    let alphabet: Vec<char> = "{}=!~,\"'`\\ axn0U7é\n_".chars().collect();
    let mut rng = Rng::new(4);
    for _ in 0..ROUNDS {
        let len = rng.below(24);
        let text: String = (0..len).map(|_| *rng.pick(&alphabet)).collect();
        let _ = labels::parse(&text);
        let _ = labels::parse(&String::from_utf8_lossy(&mutate(
            &mut rng,
            br#"{a="x\u00e9\101", b=`y`}"#,
        )));
    }
}

#[test]
fn random_bytes_never_panic_any_decoder() {
    let mut rng = Rng::new(5);
    let encodings = [None, Some("gzip"), Some("deflate"), Some("snappy")];
    for _ in 0..ROUNDS {
        let body: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        let encoding = *rng.pick(&encodings);
        let _ = decode_loki_push(None, encoding, &body, &limits(), NOW);
        let _ = decode_loki_push(Some("application/json"), encoding, &body, &limits(), NOW);
        let _ = decode_ndjson(encoding, &body, &limits(), NOW);
    }
}
