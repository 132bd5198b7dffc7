//! The S3 part is real: objects round-trip through object_store, and bucket lifecycle rules
//! round-trip through the signed requests of `logstream_e2e::bucket_admin`.

use futures::TryStreamExt;
use logstream_e2e::lifecycle::{
    AbortIncompleteMultipartUpload, LifecycleConfiguration, LifecycleRule, RuleStatus,
};
use logstream_e2e::s3::TestS3;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[tokio::test]
async fn objects_put_get_and_list() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("objects").await?;
    let store = bucket.store();
    for key in [
        "tenant-a/1.parquet",
        "tenant-a/2.parquet",
        "tenant-b/1.parquet",
    ] {
        store
            .put(&Path::from(key), PutPayload::from(format!("body of {key}")))
            .await?;
    }

    let body = store
        .get(&Path::from("tenant-a/2.parquet"))
        .await?
        .bytes()
        .await?;
    let mut listed: Vec<String> = store
        .list(Some(&Path::from("tenant-a")))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await?;
    listed.sort();

    assert_eq!(body.as_ref(), b"body of tenant-a/2.parquet");
    assert_eq!(listed, ["tenant-a/1.parquet", "tenant-a/2.parquet"]);
    Ok(())
}

#[tokio::test]
async fn lifecycle_configuration_put_get_delete() -> anyhow::Result<()> {
    let Some(s3) = TestS3::connect().await else {
        return Ok(());
    };
    let bucket = s3.fresh_bucket("lifecycle").await?;
    let admin = s3.admin();
    assert_eq!(
        admin.get_lifecycle(bucket.name()).await?,
        None,
        "a new bucket has no rules"
    );

    let mut stale_uploads = LifecycleRule::expire_after_days("abort-uploads", "", 400);
    stale_uploads.status = RuleStatus::Disabled;
    stale_uploads.abort_incomplete_multipart_upload = Some(AbortIncompleteMultipartUpload {
        days_after_initiation: 1,
    });
    stale_uploads.expiration = None;
    let config = LifecycleConfiguration::new(vec![
        LifecycleRule::expire_after_days("tenant-a-retention", "tenant-a/", 30),
        stale_uploads,
    ]);
    admin.put_lifecycle(bucket.name(), &config).await?;
    let stored = admin
        .get_lifecycle(bucket.name())
        .await?
        .expect("rules after put");

    assert_eq!(stored.rules.len(), 2);
    let retention = stored
        .rules
        .iter()
        .find(|r| r.id.as_deref() == Some("tenant-a-retention"))
        .expect("rule by id");
    assert_eq!(retention, &config.rules[0]);
    admin.delete_lifecycle(bucket.name()).await?;
    assert_eq!(
        admin.get_lifecycle(bucket.name()).await?,
        None,
        "no rules after delete"
    );
    Ok(())
}
