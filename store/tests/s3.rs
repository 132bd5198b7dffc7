//! The store against a real S3 endpoint (moto, started by `./e2e/env up`): URLs with a prefix,
//! multipart uploads, Parquet read back the way queries read it, lifecycle rules applied next
//! to rules we do not own, an endpoint that is down for 30 s, and manifest writes fenced by
//! conditional puts.

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use bytes::Bytes;
use futures::TryStreamExt;
use logstream_bus::{Entry, Labels, Stream};
use logstream_e2e::s3::{TestBucket, TestS3};
use logstream_store::lifecycle::{LifecycleRule, StoredLifecycle, StoredRule};
use logstream_store::parquet as store_parquet;
use logstream_store::retention::{
    LifecycleChange, RULE_ID_PREFIX, apply_lifecycle, lifecycle_rules, remove_lifecycle,
};
use logstream_store::schema::RowsBuilder;
use logstream_store::{
    BucketAdmin, Error, Manifest, ObjectPath, RetentionPolicy, RetentionRule, Store,
};
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Every key in the bucket, as the raw (unprefixed) object store sees it.
async fn bucket_keys(bucket: &TestBucket) -> anyhow::Result<BTreeSet<String>> {
    Ok(bucket
        .store()
        .list(None)
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await?)
}

#[tokio::test]
async fn a_prefixed_s3_url_round_trips_objects_under_its_prefix() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("store-prefix").await?;
    let store = Store::from_url(&bucket.url("some/prefix"), &s3.store_options())?;
    assert_eq!(store.key_prefix(), "some/prefix/");
    assert!(store.describe().contains("region"), "{}", store.describe());
    assert!(!store.describe().contains(&s3.env().secret_access_key));

    let a = ObjectPath::from("data/acme/default/2026-03-01/00/wal-1.parquet");
    let b = ObjectPath::from("manifests/wal.json");
    assert_eq!(store.get(&a).await?, None);
    store.put(&a, Bytes::from_static(b"parquet bytes")).await?;
    store.put(&b, Bytes::from_static(b"{}")).await?;

    assert_eq!(store.get(&a).await?.as_deref(), Some(&b"parquet bytes"[..]));
    let listed: Vec<_> = store.list(&ObjectPath::from("data")).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].location, a,
        "listing shows keys without the prefix"
    );
    assert_eq!(
        bucket_keys(&bucket).await?,
        BTreeSet::from([
            "some/prefix/data/acme/default/2026-03-01/00/wal-1.parquet".to_string(),
            "some/prefix/manifests/wal.json".to_string(),
        ])
    );

    store.delete(&a).await?;
    store.delete(&a).await?;
    assert_eq!(store.get(&a).await?, None);
    assert_eq!(
        bucket_keys(&bucket).await?,
        BTreeSet::from(["some/prefix/manifests/wal.json".to_string()])
    );
    Ok(())
}

#[tokio::test]
async fn objects_over_16_mib_go_up_in_parts_and_read_back_identical() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("store-multipart").await?;
    let store = Store::from_url(&bucket.url("p"), &s3.store_options())?;
    let body: Bytes = (0..20 * 1024 * 1024 + 7)
        .map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let key = ObjectPath::from("data/acme/default/2026-03-01/00/big.parquet");

    let started = Instant::now();
    store.put(&key, body.clone()).await?;
    let took = started.elapsed();
    assert_eq!(store.get(&key).await?, Some(body.clone()));

    // S3 gives multipart objects an ETag of `"<md5 of part md5s>-<parts>"`: 8 + 8 + 4 MiB.
    let meta = bucket
        .store()
        .head(&ObjectPath::from(
            "p/data/acme/default/2026-03-01/00/big.parquet",
        ))
        .await?;
    let etag = meta.e_tag.unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-3"), "etag {etag}");
    assert_eq!(meta.size, body.len() as u64);
    eprintln!("20 MiB multipart put took {took:?}");
    Ok(())
}

fn sample_batch() -> arrow::array::RecordBatch {
    let mut rows = RowsBuilder::default();
    for app in ["api", "db"] {
        let labels = Labels::new(vec![("app".into(), app.into())]).unwrap();
        let stream = Stream {
            labels: labels.clone(),
            entries: (0..1000)
                .map(|i| Entry {
                    ts_ns: 1_772_323_200_000_000_000 + i * 1_000_000,
                    line: format!("{app} request {i} done"),
                    metadata: vec![],
                })
                .collect(),
        };
        rows.append_stream(labels.fingerprint(), &labels.to_string(), &stream);
    }
    rows.finish().unwrap()
}

#[tokio::test]
async fn a_parquet_file_written_by_the_store_reads_back_through_object_store() -> anyhow::Result<()>
{
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("store-parquet").await?;
    let store = Store::from_url(&bucket.url("lake"), &s3.store_options())?;
    let sorted = store_parquet::sort_rows(&[sample_batch()])?;
    let file = store_parquet::encode(&sorted)?;
    let key = ObjectPath::from("data/acme/default/2026-03-01/00/wal-0-1.parquet");
    store.put(&key, file.clone()).await?;

    // Ranged reads through the prefixed store, as the query engine does: the footer.
    let len = file.len() as u64;
    let tail = store.object_store().get_range(&key, len - 8..len).await?;
    assert_eq!(&tail[4..], b"PAR1");

    let bytes = store.get(&key).await?.expect("written");
    assert_eq!(bytes, file);
    let batches = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .build()?
        .collect::<Result<Vec<_>, _>>()?;
    let read = arrow::compute::concat_batches(&sorted.schema(), &batches)?;
    assert_eq!(read, sorted);
    Ok(())
}

fn rule(tenant: &str, class: &str, days: u32) -> RetentionRule {
    RetentionRule {
        tenant: tenant.into(),
        class: class.into(),
        days,
    }
}

/// Our rules for `prefix` as read back, sorted by ID.
async fn our_rules(
    admin: &BucketAdmin,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<Vec<LifecycleRule>> {
    let data = format!("{prefix}data/");
    let config = admin
        .get_lifecycle(bucket)
        .await?
        .unwrap_or_else(|| logstream_store::lifecycle::LifecycleConfiguration::new(Vec::new()));
    let mut ours: Vec<_> = config
        .rules
        .into_iter()
        .filter(|r| {
            r.id.as_deref()
                .is_some_and(|id| id.starts_with(RULE_ID_PREFIX))
        })
        .filter(|r| {
            r.filter
                .prefix
                .as_deref()
                .is_some_and(|p| p.starts_with(&data))
        })
        .collect();
    ours.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(ours)
}

fn sorted(mut rules: Vec<LifecycleRule>) -> Vec<LifecycleRule> {
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    rules
}

/// A rule someone else wrote, with parts our typed model does not know.
const FOREIGN_RULE: &str = "<Rule><ID>archive-old-reports</ID><Filter><Prefix>reports/</Prefix></Filter>\
    <Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>\
    <Expiration><Days>3650</Days></Expiration></Rule>";

#[tokio::test]
async fn lifecycle_rules_are_applied_idempotently_next_to_foreign_ones() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("store-lifecycle").await?;
    let url = bucket.url("team-a");
    let (admin, location) = BucketAdmin::from_url(&url, &s3.store_options())?;
    assert_eq!(
        (location.bucket.as_str(), location.prefix.as_str()),
        (bucket.name(), "team-a/")
    );
    let (name, prefix) = (bucket.name(), location.prefix.as_str());

    let foreign = StoredLifecycle {
        rules: vec![StoredRule {
            xml: FOREIGN_RULE.to_string(),
            rule: None,
        }],
    };
    admin.put_lifecycle_stored(name, &foreign).await?;
    let foreign_before = admin
        .get_lifecycle_stored(name)
        .await?
        .expect("foreign rule");
    assert!(
        foreign_before.rules[0].xml.contains("GLACIER"),
        "{:?}",
        foreign_before
    );

    let policy = RetentionPolicy {
        default_days: Some(30),
        rules: vec![rule("acme", "debug", 3), rule("globex", "audit", 30)],
    };
    let change = apply_lifecycle(&admin, name, prefix, &policy).await?;
    assert_eq!(
        change,
        LifecycleChange::Written {
            ours: 4,
            foreign: 1
        }
    );
    assert_eq!(
        our_rules(&admin, name, prefix).await?,
        sorted(lifecycle_rules(&policy, prefix)?)
    );

    let again = apply_lifecycle(&admin, name, prefix, &policy).await?;
    assert_eq!(again, LifecycleChange::Unchanged);
    assert!(!again.changed());

    // Another installation in the same bucket under another prefix.
    let team_b = RetentionPolicy {
        default_days: Some(7),
        rules: vec![],
    };
    apply_lifecycle(&admin, name, "team-b/", &team_b).await?;

    let longer = RetentionPolicy {
        default_days: Some(30),
        rules: vec![rule("acme", "debug", 5), rule("globex", "audit", 30)],
    };
    let change = apply_lifecycle(&admin, name, prefix, &longer).await?;
    assert_eq!(
        change,
        LifecycleChange::Written {
            ours: 4,
            foreign: 3
        }
    );
    let ours = our_rules(&admin, name, prefix).await?;
    assert_eq!(ours, sorted(lifecycle_rules(&longer, prefix)?));
    let before = sorted(lifecycle_rules(&policy, prefix)?);
    let changed: Vec<_> = ours.iter().filter(|r| !before.contains(r)).collect();
    assert_eq!(
        changed.len(),
        1,
        "only the acme/debug rule changed: {changed:?}"
    );
    assert_eq!(
        changed[0].filter.prefix.as_deref(),
        Some("team-a/data/acme/debug/")
    );
    assert_eq!(
        our_rules(&admin, name, "team-b/").await?,
        sorted(lifecycle_rules(&team_b, "team-b/")?)
    );

    let stored = admin.get_lifecycle_stored(name).await?.expect("rules");
    let kept: Vec<_> = stored
        .rules
        .iter()
        .filter(|r| r.id() == Some("archive-old-reports"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0], &foreign_before.rules[0],
        "the foreign rule is untouched"
    );

    // Uninstall both: only the foreign rule stays.
    assert_eq!(
        remove_lifecycle(&admin, name, prefix).await?,
        LifecycleChange::Written {
            ours: 0,
            foreign: 3
        }
    );
    remove_lifecycle(&admin, name, "team-b/").await?;
    let left = admin
        .get_lifecycle_stored(name)
        .await?
        .expect("foreign rule");
    assert_eq!(left.rules, foreign_before.rules);
    Ok(())
}

#[tokio::test]
async fn removing_the_last_rules_deletes_the_configuration() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("store-lifecycle-rm").await?;
    let (admin, location) = BucketAdmin::from_url(&bucket.url(""), &s3.store_options())?;
    assert_eq!(location.prefix, "");
    let policy = RetentionPolicy {
        default_days: Some(14),
        rules: vec![],
    };
    let written = apply_lifecycle(&admin, bucket.name(), "", &policy).await?;
    assert_eq!(
        written,
        LifecycleChange::Written {
            ours: 2,
            foreign: 0
        }
    );
    assert_eq!(
        remove_lifecycle(&admin, bucket.name(), "").await?,
        LifecycleChange::Deleted
    );
    assert_eq!(admin.get_lifecycle(bucket.name()).await?, None);
    assert_eq!(
        remove_lifecycle(&admin, bucket.name(), "").await?,
        LifecycleChange::Unchanged
    );
    Ok(())
}

/// Forwards connections from `listener` to `target` until the test ends.
async fn proxy(listener: tokio::net::TcpListener, target: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test]
async fn a_put_rides_out_an_endpoint_that_is_down_for_30_seconds() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("store-outage").await?;
    // A port nobody listens on yet: connections are refused until the proxy starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut options = s3.store_options();
    options.insert("aws_endpoint".into(), format!("http://127.0.0.1:{port}"));
    let store = Store::from_url(&bucket.url("p"), &options)?;

    let key = ObjectPath::from("manifests/wal.json");
    let started = Instant::now();
    let put = tokio::spawn({
        let store = store.clone();
        let key = key.clone();
        async move { store.put(&key, Bytes::from_static(b"{}")).await }
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!put.is_finished(), "the put is still retrying");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let target = s3.env().endpoint.trim_start_matches("http://").to_string();
    let proxy = tokio::spawn(proxy(listener, target));

    put.await??;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(30), "{took:?}");
    assert!(
        took < Duration::from_secs(40),
        "recovery noticed within ~5 s: {took:?}"
    );
    assert_eq!(store.get(&key).await?.as_deref(), Some(&b"{}"[..]));
    proxy.abort();
    eprintln!("put succeeded {took:?} after the first attempt");
    Ok(())
}

#[tokio::test]
async fn the_sweeper_works_on_s3_listings_too() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("store-sweep").await?;
    let store = Store::from_url(&bucket.url("p"), &s3.store_options())?;
    for key in [
        "data/acme/default/2026-03-01/23/wal-0.parquet",
        "data/acme/default/2026-03-02/00/wal-1.parquet",
        "data/acme/default/2026-03-02/00/wal-2.parquet",
        "data/acme/default/2026-03-02/01/wal-3.parquet",
        "manifests/wal.json",
    ] {
        store
            .put(&ObjectPath::from(key), Bytes::from_static(b"x"))
            .await?;
    }
    let policy = RetentionPolicy {
        default_days: Some(1),
        rules: vec![],
    };
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-03T01:00:00Z")?.to_utc();
    let report = logstream_store::retention::sweep(&store, &policy, now).await?;
    assert_eq!(report.objects(), 3);
    assert_eq!(report.partitions.len(), 2);
    assert_eq!(
        bucket_keys(&bucket).await?,
        BTreeSet::from([
            "p/data/acme/default/2026-03-02/01/wal-3.parquet".to_string(),
            "p/manifests/wal.json".to_string(),
        ])
    );
    Ok(())
}

#[tokio::test]
async fn s3_refuses_a_deposed_owners_manifest_write() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("store-fence").await?;
    let store = Store::from_url(&bucket.url("p"), &s3.store_options())?;
    let key = ObjectPath::from("objects/cas");

    // The primitive: create-only, then update-only-over-what-was-read.
    let v1 = store.put_if(&key, Bytes::from_static(b"one"), None).await?;
    let again = store.put_if(&key, Bytes::from_static(b"two"), None).await;
    assert!(matches!(again, Err(Error::Conflict { .. })), "{again:?}");
    let v2 = store
        .put_if(&key, Bytes::from_static(b"two"), Some(&v1))
        .await?;
    let stale = store
        .put_if(&key, Bytes::from_static(b"three"), Some(&v1))
        .await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    store
        .put_if(&key, Bytes::from_static(b"three"), Some(&v2))
        .await?;
    assert_eq!(store.get(&key).await?.as_deref(), Some(&b"three"[..]));

    // The manifest on it: the old owner's write after a takeover is refused, not applied.
    let source = "kafka-fence-0";
    let mut old = Manifest::claim(&store, source, "processor-0").await?;
    old.next_offset = 100;
    old.save(&store).await?;
    let new = Manifest::claim(&store, source, "processor-1").await?;
    assert_eq!((new.epoch, new.next_offset), (2, 100));
    old.next_offset = 50;
    let err = old.save(&store).await.unwrap_err();
    assert!(
        err.to_string().contains("claimed by processor-1 (epoch 2)"),
        "{err}"
    );
    let stored = Manifest::load(&store, source).await?;
    assert_eq!(
        (stored.owner.as_str(), stored.next_offset),
        ("processor-1", 100)
    );
    Ok(())
}
