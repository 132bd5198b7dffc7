//! Whatever the input, parsing returns: every prefix of valid queries and thousands of random
//! mutations of them, with errors located inside the input.

mod common;

use common::Rng;
use logstream_logql::{ParseError, parse, parse_selector};

const VALID: [&str; 14] = [
    r#"{app="api"}"#,
    r#"{app="api", env!="dev", pod=~"api-.*", ns!~"kube-.*"} |= "error" != "x" |~ "a\\d" !~ `b`"#,
    r#"count_over_time({a="b"}[5m] offset 1h)"#,
    r#"rate(({a="b"} |= "x")[1h30m])"#,
    r#"sum by (a, b) (rate({a="b"}[5m]))"#,
    r#"max by (a) (sum(bytes_rate({a="b"}[1m] |= "z")) without (c))"#,
    "{app=\"日本\",\n env=\"é\\u00e9\\x41\"} # comment\n |= \"😀\"",
    r#"avg(min(count(bytes_over_time({a=~"x+"}[500ms]))))"#,
    r#"{a="b"} | json | level="error""#,
    r#"topk(5, sum(rate({a="b"}[5m])) by (x)) > 1"#,
    "sum(count_over_time({a=\"b\"}[3µs]))",
    r#"({a="b"})"#,
    r#"{a="b"} |= "x" | status >= -5.5, level=~"warn|error" or (x!="" and y<1e3) != "z""#,
    r#"sum by (status) (count_over_time({a="b"}[5m] | (a="1" or b==2) | c>3))"#,
];

/// Bytes that steer mutations towards interesting token boundaries.
const INTERESTING: &[u8] = b"{}()[],=~!|\"`\\ \n#-+*/<>0159msyhabyz_.\xc3\xa9\xff";

fn check_located(input: &str, result: Result<(), ParseError>) {
    if let Err(err) = result {
        let lines = input.split('\n').count();
        assert!(err.line >= 1 && err.line <= lines, "{input:?}: {err}");
        assert!(err.col >= 1, "{input:?}: {err}");
    }
}

fn parse_everything(input: &str) {
    let parsed = parse(input);
    if let Ok(expr) = &parsed {
        assert_eq!(parse(&expr.to_string()).as_ref(), Ok(expr), "{input:?}");
    }
    check_located(input, parsed.map(drop));
    check_located(input, parse_selector(input).map(drop));
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let at = rng.below(bytes.len() + 1);
    let byte = if rng.chance(80) {
        *rng.pick(INTERESTING)
    } else {
        rng.next_u64() as u8
    };
    match rng.below(4) {
        0 if at < bytes.len() => bytes[at] = byte,
        1 if at < bytes.len() => {
            bytes.remove(at);
        }
        2 => {
            let end = (at + rng.below(8)).min(bytes.len());
            let chunk = bytes[at..end].to_vec();
            bytes.splice(at..at, chunk);
        }
        _ => bytes.insert(at, byte),
    }
}

#[test]
fn every_prefix_and_suffix_parses_without_panicking() {
    for query in VALID {
        for (i, _) in query.char_indices() {
            parse_everything(&query[..i]);
            parse_everything(&query[i..]);
        }
    }
}

#[test]
fn random_mutations_parse_without_panicking() {
    let mut rng = Rng::new(0x00c0_ffee);
    for _ in 0..4000 {
        let mut bytes = rng.pick(&VALID).as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &mut bytes);
        }
        parse_everything(&String::from_utf8_lossy(&bytes));
    }
}
