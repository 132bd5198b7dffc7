//! The S3 part: an `object_store` for a fresh bucket per test on the loopback S3 endpoint, the
//! options that open the same bucket through `logstream_store::Store::from_url`, and the
//! [`BucketAdmin`] for what object_store cannot do (buckets, lifecycle rules).

use std::collections::BTreeMap;
use std::sync::Arc;

use logstream_store::s3_admin::{BucketAdmin, S3Config};
use object_store::aws::{AmazonS3, AmazonS3Builder};

use crate::env::{self, E2eEnv, Part};
use crate::{Error, Result, unique_name};

/// Where the endpoint is and the keys it accepts: `S3_ENDPOINT`, `S3_REGION`,
/// `S3_ACCESS_KEY_ID` and `S3_SECRET_ACCESS_KEY`.
#[derive(Clone)]
pub struct S3Env {
    /// Base URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// Signing region.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never printed by `Debug`).
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Env")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Env {
    /// Read the four variables.
    pub fn from_env(env: &E2eEnv) -> std::result::Result<Self, String> {
        Ok(Self {
            endpoint: env.require("S3_ENDPOINT")?.to_owned(),
            region: env.require("S3_REGION")?.to_owned(),
            access_key_id: env.require("S3_ACCESS_KEY_ID")?.to_owned(),
            secret_access_key: env.require("S3_SECRET_ACCESS_KEY")?.to_owned(),
        })
    }

    /// The admin client configuration for this endpoint.
    pub fn admin_config(&self) -> S3Config {
        S3Config::with_static_credentials(
            &self.endpoint,
            &self.region,
            &self.access_key_id,
            &self.secret_access_key,
        )
    }

    /// Options for `Store::from_url("s3://<bucket>[/prefix]", ..)` on this endpoint.
    pub fn store_options(&self) -> BTreeMap<String, String> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_region", &self.region),
            ("aws_access_key_id", &self.access_key_id),
            ("aws_secret_access_key", &self.secret_access_key),
            ("aws_allow_http", "true"),
            ("aws_virtual_hosted_style_request", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
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
    env: S3Env,
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
        let s3 = S3Env::from_env(&env)?;
        let admin = BucketAdmin::new(s3.admin_config()).map_err(|e| crate::error::chain(&e))?;
        admin.ping().await.map_err(|e| {
            format!(
                "{} did not answer ListBuckets: {}",
                s3.endpoint,
                crate::error::chain(&e)
            )
        })?;
        Ok(Self { env: s3, admin })
    }

    /// Signed bucket-level requests (lifecycle rules and the like).
    pub fn admin(&self) -> &BucketAdmin {
        &self.admin
    }

    /// The endpoint and keys.
    pub fn env(&self) -> &S3Env {
        &self.env
    }

    /// Options for `Store::from_url` on this endpoint (see [`S3Env::store_options`]).
    pub fn store_options(&self) -> BTreeMap<String, String> {
        self.env.store_options()
    }

    /// Create a uniquely named bucket and an object_store for it.
    pub async fn fresh_bucket(&self, prefix: &str) -> Result<TestBucket> {
        let name = unique_name(prefix);
        self.admin.create_bucket(&name).await?;
        let store = Arc::new(self.env.object_store(&name)?);
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

    /// `s3://<bucket>/<prefix>` (or `s3://<bucket>` for an empty prefix).
    pub fn url(&self, prefix: &str) -> String {
        match prefix.trim_matches('/') {
            "" => format!("s3://{}", self.name),
            p => format!("s3://{}/{p}", self.name),
        }
    }
}
