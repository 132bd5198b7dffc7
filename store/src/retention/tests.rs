use super::*;
use crate::lifecycle::{AbortIncompleteMultipartUpload, RuleStatus};
use crate::store::Store;
use bytes::Bytes;
use chrono::TimeZone;
use object_store::path::Path;
use tokio_util::sync::CancellationToken;

fn rule(tenant: &str, class: &str, days: u32) -> RetentionRule {
    RetentionRule {
        tenant: tenant.into(),
        class: class.into(),
        days,
    }
}

fn policy(default_days: Option<u32>, rules: Vec<RetentionRule>) -> RetentionPolicy {
    RetentionPolicy {
        default_days,
        rules,
    }
}

/// (id, prefix, expiration days, abort days) of each rule.
fn summary(rules: &[LifecycleRule]) -> Vec<(String, String, Option<u32>, Option<u32>)> {
    rules
        .iter()
        .map(|r| {
            assert_eq!(r.status, RuleStatus::Enabled);
            (
                r.id.clone().unwrap(),
                r.filter.prefix.clone().unwrap(),
                r.expiration.map(|e| e.days),
                r.abort_incomplete_multipart_upload
                    .map(|a| a.days_after_initiation),
            )
        })
        .collect()
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn a_policy_becomes_one_rule_per_class_a_default_and_the_abort_rule() {
    let p = policy(
        Some(30),
        vec![rule("acme", "debug", 3), rule("globex", "default", 30)],
    );
    let rules = lifecycle_rules(&p, "").unwrap();
    assert_eq!(
        summary(&rules),
        [
            (
                s("logstream-acme-debug-d1c054be1f8f3570"),
                s("data/acme/debug/"),
                Some(3),
                None
            ),
            (
                s("logstream-globex-default-b5173acebac2c8f9"),
                s("data/globex/default/"),
                Some(30),
                None
            ),
            (
                s("logstream-default-b3d5b7c978f8895d"),
                s("data/"),
                Some(30),
                None
            ),
            (
                s("logstream-abort-multipart-5371d512caee0122"),
                s("data/"),
                None,
                Some(1)
            ),
        ]
    );
}

#[test]
fn the_store_prefix_goes_in_front_of_every_rule_and_changes_every_id() {
    let p = policy(Some(7), vec![rule("acme", "debug", 1)]);
    let bare = lifecycle_rules(&p, "").unwrap();
    for prefix in ["team-a", "team-a/", "/team-a/"] {
        let rules = lifecycle_rules(&p, prefix).unwrap();
        let prefixes: Vec<_> = summary(&rules).into_iter().map(|r| r.1).collect();
        assert_eq!(
            prefixes,
            ["team-a/data/acme/debug/", "team-a/data/", "team-a/data/"]
        );
        for (with, without) in rules.iter().zip(&bare) {
            assert_ne!(
                with.id, without.id,
                "two installations in one bucket must not clash"
            );
        }
    }
}

#[test]
fn without_a_default_only_named_classes_and_the_abort_rule_are_written() {
    let rules = lifecycle_rules(&policy(None, vec![rule("acme", "audit", 400)]), "p/").unwrap();
    let got: Vec<_> = summary(&rules)
        .into_iter()
        .map(|r| (r.1, r.2, r.3))
        .collect();
    assert_eq!(
        got,
        [
            (s("p/data/acme/audit/"), Some(400), None),
            (s("p/data/"), None, Some(1))
        ]
    );
    let only_abort = lifecycle_rules(&RetentionPolicy::default(), "").unwrap();
    assert_eq!(
        only_abort[0].abort_incomplete_multipart_upload,
        Some(AbortIncompleteMultipartUpload {
            days_after_initiation: 1
        })
    );
    assert_eq!(only_abort.len(), 1);
}

#[test]
fn ids_are_unique_for_names_that_read_alike_and_fit_in_255_characters() {
    let long = "t".repeat(150);
    let p = policy(
        None,
        vec![
            rule("a-b", "c", 1),
            rule("a", "b-c", 1),
            rule(&long, &long, 1),
        ],
    );
    let rules = lifecycle_rules(&p, "").unwrap();
    let ids: BTreeSet<_> = rules.iter().map(|r| r.id.clone().unwrap()).collect();
    assert_eq!(ids.len(), rules.len());
    for id in &ids {
        assert!(id.len() <= 255, "{} characters: {id}", id.len());
        assert!(id.starts_with(RULE_ID_PREFIX), "{id}");
    }
    assert_eq!(
        lifecycle_rules(&p, "").unwrap(),
        rules,
        "same policy, same ids"
    );
}

#[test]
fn a_default_shorter_than_a_rule_is_refused_because_s3_applies_the_shortest() {
    let p = policy(Some(7), vec![rule("acme", "audit", 30)]);
    let err = lifecycle_rules(&p, "").unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid retention policy: default_days (7) is shorter than the 30 days of tenant \
         \"acme\" class \"audit\": S3 applies the shortest expiration when lifecycle rules \
         overlap, so the default rule on data/ would delete that data after 7 days; raise \
         default_days to at least 30, or unset it and give each tenant/class its own rule"
    );
    // Equal is fine: both rules say the same.
    assert!(lifecycle_rules(&policy(Some(30), vec![rule("acme", "audit", 30)]), "").is_ok());
}

#[test]
fn invalid_policies_name_the_problem() {
    let cases = [
        (policy(Some(0), vec![]), "default_days must be at least 1"),
        (
            policy(None, vec![rule("acme", "x", 0)]),
            "tenant \"acme\" class \"x\": days must be at least 1",
        ),
        (
            policy(None, vec![rule("a/b", "x", 1)]),
            "tenant \"a/b\": it contains '/'",
        ),
        (
            policy(None, vec![rule("a", "..", 1)]),
            "class \"..\": \".\" and \"..\" are reserved",
        ),
        (
            policy(None, vec![rule("", "x", 1)]),
            "tenant \"\": it is empty",
        ),
        (
            policy(None, vec![rule("a", "x", 1), rule("a", "x", 2)]),
            "tenant \"a\" class \"x\" has more than one rule",
        ),
    ];
    for (p, expected) in cases {
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{err} does not contain {expected}");
    }
}

#[test]
fn policies_read_from_json_and_refuse_unknown_fields() {
    let p: RetentionPolicy = serde_json::from_str(
        r#"{"default_days": 14, "rules": [{"tenant": "acme", "class": "debug", "days": 2}]}"#,
    )
    .unwrap();
    assert_eq!(p, policy(Some(14), vec![rule("acme", "debug", 2)]));
    let empty: RetentionPolicy = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, RetentionPolicy::default());
    assert!(serde_json::from_str::<RetentionPolicy>(r#"{"default_day": 1}"#).is_err());
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

#[test]
fn cutoff_is_now_minus_the_days_of_the_rule_else_the_default() {
    let now = at(2026, 3, 10, 12, 30);
    let p = policy(Some(3), vec![rule("acme", "debug", 1)]);
    let ns = |t: DateTime<Utc>| t.timestamp_nanos_opt();
    assert_eq!(
        cutoff_ns(&p, "acme", "debug", now),
        ns(at(2026, 3, 9, 12, 30))
    );
    assert_eq!(
        cutoff_ns(&p, "acme", "default", now),
        ns(at(2026, 3, 7, 12, 30))
    );
    assert_eq!(
        cutoff_ns(&p, "other", "debug", now),
        ns(at(2026, 3, 7, 12, 30))
    );
    let no_default = policy(None, vec![rule("acme", "debug", 1)]);
    assert_eq!(cutoff_ns(&no_default, "other", "debug", now), None);
}

/// Hours (day, hour) that get one or two objects for every (tenant, class) in the tests below.
const HOURS: &[(&str, &str)] = &[
    ("2026-03-06", "23"),
    ("2026-03-07", "00"),
    ("2026-03-07", "11"),
    ("2026-03-07", "12"),
    ("2026-03-09", "11"),
    ("2026-03-09", "12"),
    ("2026-03-10", "12"),
];
const CLASSES: &[(&str, &str)] = &[
    ("acme", "default"),
    ("acme", "debug"),
    ("globex", "default"),
];

async fn populated_store(dir: &std::path::Path) -> (Store, BTreeSet<String>) {
    let store = Store::local(dir).unwrap();
    let mut keys = BTreeSet::new();
    for (tenant, class) in CLASSES {
        for (i, (day, hour)) in HOURS.iter().enumerate() {
            let files = if i % 2 == 0 { 2 } else { 1 };
            for f in 0..files {
                keys.insert(format!(
                    "data/{tenant}/{class}/{day}/{hour}/wal-{f}.parquet"
                ));
            }
        }
    }
    keys.insert(s("manifests/wal.json"));
    keys.insert(s("data/acme/default/not-a-date/00/x.parquet"));
    keys.insert(s("data/acme/default/2026-01-01/xx/x.parquet"));
    for key in &keys {
        store
            .put(&Path::from(key.as_str()), Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    (store, keys)
}

async fn remaining(store: &Store) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for prefix in ["data", "manifests"] {
        for meta in store.list(&Path::from(prefix)).await.unwrap() {
            keys.insert(meta.location.to_string());
        }
    }
    keys
}

fn without(keys: &BTreeSet<String>, gone: &[&str]) -> BTreeSet<String> {
    keys.iter()
        .filter(|k| !gone.iter().any(|g| k.starts_with(g)))
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_sweeper_deletes_exactly_the_hours_that_ended_before_each_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let (store, keys) = populated_store(dir.path()).await;
    let now = at(2026, 3, 10, 12, 30);
    // Default 3 days: cutoff 2026-03-07T12:30, so the hour 11:00-12:00 of the 7th is expired
    // and 12:00-13:00 is not. acme/debug keeps 1 day: cutoff 2026-03-09T12:30.
    let p = policy(Some(3), vec![rule("acme", "debug", 1)]);
    let report = sweep(&store, &p, now).await.unwrap();

    let expected = without(
        &keys,
        &[
            "data/acme/default/2026-03-06/23/",
            "data/acme/default/2026-03-07/00/",
            "data/acme/default/2026-03-07/11/",
            "data/globex/default/2026-03-06/23/",
            "data/globex/default/2026-03-07/00/",
            "data/globex/default/2026-03-07/11/",
            "data/acme/debug/2026-03-06/23/",
            "data/acme/debug/2026-03-07/",
            "data/acme/debug/2026-03-09/11/",
        ],
    );
    assert_eq!(remaining(&store).await, expected);
    assert_eq!(report.partitions.len(), 3 + 3 + 5);
    assert_eq!(report.objects(), keys.len() - expected.len());
    let debug: Vec<_> = report
        .partitions
        .iter()
        .filter(|p| p.class == "debug")
        .map(|p| (p.hour, p.objects))
        .collect();
    assert_eq!(
        debug,
        [
            (at(2026, 3, 6, 23, 0), 2),
            (at(2026, 3, 7, 0, 0), 1),
            (at(2026, 3, 7, 11, 0), 2),
            (at(2026, 3, 7, 12, 0), 1),
            (at(2026, 3, 9, 11, 0), 2),
        ]
    );
    assert_eq!(
        report.skipped,
        [
            "data/acme/default/2026-01-01/xx",
            "data/acme/default/not-a-date"
        ]
    );
    // Emptied hour and day directories are gone from disk; a second sweep finds nothing.
    assert!(!dir.path().join("data/acme/debug/2026-03-07").exists());
    assert!(dir.path().join("data/acme/debug/2026-03-09/12").exists());
    let again = sweep(&store, &p, now).await.unwrap();
    assert_eq!(again.partitions, []);
}

#[tokio::test]
async fn without_a_default_only_classes_with_a_rule_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let (store, keys) = populated_store(dir.path()).await;
    let p = policy(None, vec![rule("acme", "debug", 1)]);
    let report = sweep(&store, &p, at(2026, 3, 10, 12, 30)).await.unwrap();
    let expected = without(
        &keys,
        &[
            "data/acme/debug/2026-03-06/",
            "data/acme/debug/2026-03-07/",
            "data/acme/debug/2026-03-09/11/",
        ],
    );
    assert_eq!(remaining(&store).await, expected);
    assert!(
        report
            .partitions
            .iter()
            .all(|p| p.tenant == "acme" && p.class == "debug")
    );
    assert!(
        report.skipped.is_empty(),
        "acme/default was not even listed"
    );
}

#[tokio::test]
async fn an_hour_ending_exactly_at_the_cutoff_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = populated_store(dir.path()).await;
    // Cutoff 2026-03-07T12:00 exactly: the hour 11:00-12:00 ends at it.
    let p = policy(None, vec![rule("globex", "default", 3)]);
    let report = sweep(&store, &p, at(2026, 3, 10, 12, 0)).await.unwrap();
    let hours: Vec<_> = report.partitions.iter().map(|p| p.hour).collect();
    assert_eq!(
        hours,
        [
            at(2026, 3, 6, 23, 0),
            at(2026, 3, 7, 0, 0),
            at(2026, 3, 7, 11, 0)
        ]
    );
}

#[tokio::test]
async fn an_empty_store_sweeps_to_nothing_and_a_bad_policy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let report = sweep(&store, &policy(Some(1), vec![]), Utc::now())
        .await
        .unwrap();
    assert_eq!(report, SweepReport::default());
    let bad = policy(Some(1), vec![rule("a", "b", 2)]);
    assert!(sweep(&store, &bad, Utc::now()).await.is_err());
}

#[tokio::test]
async fn the_spawned_sweeper_runs_at_once_and_stops_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let key = Path::from("data/acme/default/2020-01-01/00/wal-0.parquet");
    store.put(&key, Bytes::from_static(b"x")).await.unwrap();
    let cancel = CancellationToken::new();
    let task = spawn_sweeper(
        store.clone(),
        policy(Some(1), vec![]),
        std::time::Duration::from_secs(3600),
        cancel.clone(),
    );
    for _ in 0..200 {
        if store.get(&key).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.get(&key).await.unwrap(),
        None,
        "the first sweep runs at once"
    );
    cancel.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the sweeper stops when cancelled")
        .unwrap();
}

#[test]
fn rules_of_ours_are_told_apart_from_foreign_ones() {
    let ours = |id: &str, prefix: &str| {
        StoredRule::new(LifecycleRule::expire_after_days(id, prefix, 1)).unwrap()
    };
    let wanted = BTreeSet::from(["logstream-x-1"]);
    assert!(is_ours(
        &ours("logstream-a-1", "p/data/a/"),
        "p/data/",
        &wanted
    ));
    assert!(
        !is_ours(&ours("logstream-a-1", "q/data/a/"), "p/data/", &wanted),
        "other prefix"
    );
    assert!(
        !is_ours(&ours("archive", "p/data/a/"), "p/data/", &wanted),
        "other id"
    );
    assert!(
        is_ours(&ours("logstream-x-1", "moved/"), "p/data/", &wanted),
        "our id"
    );
    let unparsed = StoredRule {
        xml: "<Rule><ID>logstream-a</ID></Rule>".into(),
        rule: None,
    };
    assert!(!is_ours(&unparsed, "p/data/", &wanted));
}
