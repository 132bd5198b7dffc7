//! Bucket administration that `object_store` has no API for: creating buckets and putting,
//! getting and deleting their lifecycle configuration, as SigV4-signed HTTP requests.
//!
//! Why `aws-sigv4` + `reqwest`: `aws-sigv4` is the SigV4 signer inside the official AWS SDK
//! (smithy-rs), kept in step with AWS, and costs a handful of small crates; `aws-sdk-s3` would add
//! the whole generated S3 operation set (a long build for three calls); `rusty-s3` is lighter but
//! has no lifecycle actions and only presigns URLs; object_store's signer is private. `reqwest`
//! is already in the tree through object_store. The operator is meant to reuse this module (it
//! depends only on reqwest, aws-sigv4, md-5, base64 and [`crate::lifecycle`]).
//!
//! Requests are path-style (`{endpoint}/{bucket}?lifecycle`), which moto and S3-compatible
//! stores accept; AWS itself accepts it for existing bucket names too.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use http::{Method, StatusCode};
use md5::{Digest, Md5};

use crate::lifecycle::LifecycleConfiguration;
use crate::{Error, Result};

/// Where an S3 endpoint is and how to sign for it.
#[derive(Clone)]
pub struct S3Config {
    /// Base URL, e.g. `http://127.0.0.1:9000` (no bucket, no trailing slash needed).
    pub endpoint: String,
    /// Signing region, e.g. `us-east-1`.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never printed by `Debug`).
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Signed bucket-level requests against one endpoint.
#[derive(Debug, Clone)]
pub struct BucketAdmin {
    http: reqwest::Client,
    config: S3Config,
}

impl BucketAdmin {
    /// A client for `config`'s endpoint.
    pub fn new(config: S3Config) -> Self {
        Self {
            http: reqwest::Client::new(),
            config,
        }
    }

    /// The endpoint and credentials in use.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// `ListBuckets`: a cheap signed request proving the endpoint answers and accepts our keys.
    pub async fn ping(&self) -> Result<()> {
        self.send("ListBuckets", Method::GET, "", "", Vec::new(), None)
            .await
            .map(|_| ())
    }

    /// `CreateBucket`, with a location constraint outside us-east-1 (as AWS requires).
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        let body = match self.config.region.as_str() {
            "us-east-1" => Vec::new(),
            region => format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
            .into_bytes(),
        };
        self.send("CreateBucket", Method::PUT, bucket, "", body, None)
            .await
            .map(|_| ())
    }

    /// `PutBucketLifecycleConfiguration`: replaces all rules of `bucket`. S3 requires a
    /// `Content-MD5` header on this call.
    pub async fn put_lifecycle(&self, bucket: &str, config: &LifecycleConfiguration) -> Result<()> {
        let body = config.to_xml()?.into_bytes();
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
        self.send(
            "PutBucketLifecycleConfiguration",
            Method::PUT,
            bucket,
            "lifecycle",
            body,
            Some(md5),
        )
        .await
        .map(|_| ())
    }

    /// `GetBucketLifecycleConfiguration`; `None` when the bucket has no lifecycle rules.
    pub async fn get_lifecycle(&self, bucket: &str) -> Result<Option<LifecycleConfiguration>> {
        match self
            .send(
                "GetBucketLifecycleConfiguration",
                Method::GET,
                bucket,
                "lifecycle",
                Vec::new(),
                None,
            )
            .await
        {
            Ok(body) => LifecycleConfiguration::from_xml(&body).map(Some),
            Err(Error::S3Status {
                status: 404, body, ..
            }) if body.contains("NoSuchLifecycleConfiguration") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `DeleteBucketLifecycle`: removes every rule of `bucket`.
    pub async fn delete_lifecycle(&self, bucket: &str) -> Result<()> {
        self.send(
            "DeleteBucketLifecycle",
            Method::DELETE,
            bucket,
            "lifecycle",
            Vec::new(),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Sign and send one request; a non-2xx answer becomes [`Error::S3Status`] with its body.
    async fn send(
        &self,
        op: &str,
        method: Method,
        bucket: &str,
        query: &str,
        body: Vec<u8>,
        content_md5: Option<String>,
    ) -> Result<String> {
        let mut url = format!("{}/{bucket}", self.config.endpoint.trim_end_matches('/'));
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let mut builder = http::Request::builder().method(method).uri(&url);
        if let Some(md5) = content_md5 {
            builder = builder.header("content-md5", md5);
        }
        let mut request = builder.body(body).map_err(|e| sign_err(op, e))?;
        self.sign(op, &mut request)?;
        let request = reqwest::Request::try_from(request).map_err(|source| Error::S3Request {
            op: op.to_owned(),
            source,
        })?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|source| Error::S3Request {
                op: op.to_owned(),
                source,
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|source| Error::S3Request {
            op: op.to_owned(),
            source,
        })?;
        if status.is_success() || status == StatusCode::NO_CONTENT {
            return Ok(text);
        }
        Err(Error::S3Status {
            op: op.to_owned(),
            status: status.as_u16(),
            body: text,
        })
    }

    /// Add SigV4 headers the way S3 wants them: `x-amz-content-sha256`, single URI encoding,
    /// no path normalization.
    fn sign(&self, op: &str, request: &mut http::Request<Vec<u8>>) -> Result<()> {
        let identity = Credentials::new(
            &self.config.access_key_id,
            &self.config.secret_access_key,
            None,
            None,
            "logstream-e2e",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| sign_err(op, e))?
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| sign_err(op, e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| sign_err(op, e))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

fn sign_err(op: &str, err: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Sign {
        op: op.to_owned(),
        source: Box::new(err),
    }
}
