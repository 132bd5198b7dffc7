//! The S3 part: an `object_store` for a fresh bucket per test on the loopback S3 endpoint, and
//! the [`BucketAdmin`] for what object_store cannot do (buckets, lifecycle rules).

use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder};

use crate::bucket_admin::{BucketAdmin, S3Config};
use crate::env::{self, E2eEnv, Part};
use crate::{Error, Result, unique_name};

impl S3Config {
    /// Read `S3_ENDPOINT`, `S3_REGION`, `S3_ACCESS_KEY_ID` and `S3_SECRET_ACCESS_KEY`.
    pub fn from_env(env: &E2eEnv) -> std::result::Result<Self, String> {
        Ok(Self {
            endpoint: env.require("S3_ENDPOINT")?.to_owned(),
            region: env.require("S3_REGION")?.to_owned(),
            access_key_id: env.require("S3_ACCESS_KEY_ID")?.to_owned(),
            secret_access_key: env.require("S3_SECRET_ACCESS_KEY")?.to_owned(),
        })
    }

    /// An object_store for `bucket`: path-style requests, plain HTTP allowed (loopback).
    pub fn object_store(&self, bucket: &str) -> Result<AmazonS3> {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_region(&self.region)
            .with_bucket_name(bucket)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(true)
            .build()
            .map_err(|source| Error::ObjectStore {
                bucket: bucket.to_owned(),
                source,
            })
    }
}

/// A reachable S3 endpoint.
#[derive(Debug, Clone)]
pub struct TestS3 {
    admin: BucketAdmin,
}

impl TestS3 {
    /// Read the S3 variables and check that the endpoint answers a signed `ListBuckets`.
    /// `None` (skip) or a panic under `REQUIRE_E2E=1` when it is missing.
    pub async fn connect() -> Option<Self> {
        match Self::try_connect().await {
            Ok(s3) => Some(s3),
            Err(why) => env::unavailable(Part::S3, &why),
        }
    }

    async fn try_connect() -> std::result::Result<Self, String> {
        let env = E2eEnv::load().map_err(|e| crate::error::chain(&e))?;
        let admin = BucketAdmin::new(S3Config::from_env(&env)?);
        admin.ping().await.map_err(|e| {
            format!(
                "{} did not answer ListBuckets: {}",
                admin.config().endpoint,
                crate::error::chain(&e)
            )
        })?;
        Ok(Self { admin })
    }

    /// Signed bucket-level requests (lifecycle rules and the like).
    pub fn admin(&self) -> &BucketAdmin {
        &self.admin
    }

    /// Create a uniquely named bucket and an object_store for it.
    pub async fn fresh_bucket(&self, prefix: &str) -> Result<TestBucket> {
        let name = unique_name(prefix);
        self.admin.create_bucket(&name).await?;
        let store = Arc::new(self.admin.config().object_store(&name)?);
        Ok(TestBucket { name, store })
    }
}

/// A bucket owned by one test.
#[derive(Debug, Clone)]
pub struct TestBucket {
    name: String,
    store: Arc<AmazonS3>,
}

impl TestBucket {
    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object store bound to this bucket.
    pub fn store(&self) -> Arc<AmazonS3> {
        Arc::clone(&self.store)
    }
}
