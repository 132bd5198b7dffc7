//! The container image's contract with the operator and the Helm chart, checked on the
//! Dockerfile's text (images cannot be built where the tests run): the binary's path, the
//! entrypoint, the non-root user the operator's pods run as, the toolchain of
//! `rust-toolchain.toml`, a writable HOME/TMPDIR on the `/tmp` volume, and the licence label.
//! Then hadolint, when the test environment provides it (`./e2e/env up` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current
                    .split_once(char::is_whitespace)
                    .unwrap_or((&current, ""));
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                });
                current.clear();
            }
        }
    }
    out
}

/// The instructions of the last stage (the image that ships).
fn final_stage(all: &[Instruction]) -> &[Instruction] {
    let start = all
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .expect("a FROM");
    &all[start..]
}

fn args_of<'a>(stage: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

fn toolchain_channel() -> String {
    let text = read("rust-toolchain.toml");
    let table: toml::Table = text.parse().expect("rust-toolchain.toml is TOML");
    table["toolchain"]["channel"]
        .as_str()
        .expect("toolchain.channel")
        .to_owned()
}

#[test]
fn the_image_builds_with_the_pinned_toolchain_and_the_locked_dependencies() {
    let all = instructions(&read("Dockerfile"));
    let channel = toolchain_channel();
    assert!(
        all.iter()
            .any(|i| i.keyword == "ARG" && i.args == format!("RUST_VERSION={channel}")),
        "Dockerfile must declare `ARG RUST_VERSION={channel}` (rust-toolchain.toml's channel)"
    );
    let builder = all
        .iter()
        .find(|i| i.keyword == "FROM")
        .expect("a builder stage");
    assert!(
        builder.args.contains("rust:${RUST_VERSION}"),
        "the builder stage must start from the rust image of RUST_VERSION: {}",
        builder.args
    );
    let build = all
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .expect("a RUN with cargo build");
    for flag in ["--release", "--locked", "-p logstream"] {
        assert!(
            build.args.contains(flag),
            "cargo build lacks {flag}: {}",
            build.args
        );
    }
    assert!(
        build
            .args
            .contains("target/release/logstream /out/logstream"),
        "the release binary must be copied out of the cache mount to /out/logstream"
    );
}

#[test]
fn the_shipped_image_runs_logstream_as_user_10001_from_usr_local_bin() {
    let all = instructions(&read("Dockerfile"));
    let stage = final_stage(&all);
    assert!(
        args_of(stage, "COPY")
            .iter()
            .any(|a| a.ends_with("/out/logstream /usr/local/bin/logstream")),
        "the final stage must copy the binary to /usr/local/bin/logstream"
    );
    assert_eq!(args_of(stage, "ENTRYPOINT"), [r#"["logstream"]"#]);
    assert_eq!(args_of(stage, "USER"), ["10001:10001"]);
    // The operator runs every pod as this user (and fsGroup): the two must agree.
    let workloads = read("operator/src/build/workloads.rs");
    assert!(
        workloads.contains("const RUN_AS_USER: i64 = 10001;"),
        "operator/src/build/workloads.rs RUN_AS_USER changed: update the Dockerfile's USER too"
    );
    let env = args_of(stage, "ENV").join(" ");
    assert!(
        env.contains("PATH=/usr/local/bin:"),
        "ENTRYPOINT [\"logstream\"] needs /usr/local/bin first on PATH: {env}"
    );
}

#[test]
fn the_image_writes_only_to_tmp_so_a_read_only_root_filesystem_works() {
    let all = instructions(&read("Dockerfile"));
    let env = args_of(final_stage(&all), "ENV").join(" ");
    for var in ["HOME=/tmp", "TMPDIR=/tmp"] {
        assert!(env.contains(var), "the final stage must set {var}: {env}");
    }
    // /tmp is writable only because the operator mounts an emptyDir there.
    let workloads = read("operator/src/build/workloads.rs");
    assert!(
        workloads.contains("mount_path: \"/tmp\".into()"),
        "the operator no longer mounts /tmp: HOME/TMPDIR of the image would be read-only"
    );
}

#[test]
fn the_licence_label_is_the_workspace_licence() {
    let all = instructions(&read("Dockerfile"));
    let labels = args_of(final_stage(&all), "LABEL").join(" ");
    let cargo: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml");
    let licence = cargo["workspace"]["package"]["license"]
        .as_str()
        .expect("workspace.package.license");
    assert!(
        labels.contains(&format!("org.opencontainers.image.licenses=\"{licence}\"")),
        "OCI licence label must be {licence}: {labels}"
    );
}

/// hadolint from `HADOLINT` (set by `./e2e/env run`) or PATH. Missing: skipped, or a failure
/// under `REQUIRE_E2E=1` as for the other real parts.
#[test]
fn hadolint_finds_nothing() {
    let hadolint = std::env::var_os("HADOLINT")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            Command::new("hadolint")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| PathBuf::from("hadolint"))
        });
    let Some(hadolint) = hadolint else {
        let why = "skipping: hadolint is not available (HADOLINT unset, none on PATH). \
                   Start the real parts with ./e2e/env up and run under ./e2e/env run";
        if std::env::var("REQUIRE_E2E").is_ok_and(|v| v == "1") {
            panic!("{why}");
        }
        eprintln!("{why}");
        return;
    };
    let out = Command::new(&hadolint)
        .args(["--no-color", "Dockerfile"])
        .current_dir(repo())
        .output()
        .expect("run hadolint");
    assert!(
        out.status.success(),
        "hadolint Dockerfile:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn instructions_join_continuations_and_skip_comments() {
    let parsed = instructions("# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y\nUSER 1\n");
    let shape: Vec<_> = parsed
        .iter()
        .map(|i| (i.keyword.as_str(), i.args.as_str()))
        .collect();
    assert_eq!(
        shape,
        [("FROM", "a AS b"), ("RUN", "x  && y"), ("USER", "1")]
    );
}
