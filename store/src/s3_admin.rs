//! Bucket administration that `object_store` has no API for: creating buckets and putting,
//! getting and deleting their lifecycle configuration.
//!
//! Requests are signed with object_store's own SigV4 signer ([`AwsAuthorizer`]) and sent
//! through its HTTP client, built from the same URL, options and environment as the
//! [`Store`](crate::Store): the same endpoint, region, TLS and proxy settings, and the same
//! credential chain (static keys, session tokens, web identity / IRSA, ECS, instance metadata).
//! That keeps the AWS SDK and a second signer out of the build for a handful of calls.
//!
//! Requests are path-style (`{endpoint}/{bucket}?lifecycle`), which AWS, MinIO, moto and other
//! S3-compatible stores accept, unless `aws_virtual_hosted_style_request` is set: then, as in
//! object_store, the endpoint names the bucket itself. They are not retried: a caller that
//! reconciles (the operator) tries again on its next pass.

use crate::error::{Error, Result};
use crate::lifecycle::{LifecycleConfiguration, StoredLifecycle};
use crate::location::{self, Remote};
use base64::Engine;
use http::Method;
use md5::{Digest, Md5};
use object_store::aws::{AmazonS3ConfigKey, AwsAuthorizer, AwsCredential, AwsCredentialProvider};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::{ClientConfigKey, ClientOptions, StaticCredentialProvider};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where an S3 endpoint is and how to sign for it.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Base URL without bucket, e.g. `http://127.0.0.1:9000` or
    /// `https://s3.eu-west-1.amazonaws.com`; with `virtual_hosted_style`, the bucket's own
    /// endpoint (object_store's convention).
    pub endpoint: String,
    /// Signing region, e.g. `us-east-1`.
    pub region: String,
    /// Requests go to `endpoint` as is instead of `{endpoint}/{bucket}`.
    pub virtual_hosted_style: bool,
    /// Source of credentials, asked before every request (it caches and refreshes).
    pub credentials: AwsCredentialProvider,
    /// Timeouts, TLS, proxy.
    pub client_options: ClientOptions,
}

/// The bucket and key prefix an `s3://bucket[/prefix]` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty or ending in `/`.
    pub prefix: String,
}

/// Client keys copied from the store's configuration to the admin's HTTP client.
const CLIENT_KEYS: &[ClientConfigKey] = &[
    ClientConfigKey::AllowHttp,
    ClientConfigKey::AllowInvalidCertificates,
    ClientConfigKey::ConnectTimeout,
    ClientConfigKey::Timeout,
    ClientConfigKey::ProxyUrl,
    ClientConfigKey::ProxyCaCertificate,
    ClientConfigKey::ProxyExcludes,
    ClientConfigKey::UserAgent,
];

impl S3Config {
    /// An endpoint with fixed keys (tests, S3-compatible stores). Plain `http://` is allowed
    /// when the endpoint uses it.
    pub fn with_static_credentials(
        endpoint: &str,
        region: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Self {
        let credential = AwsCredential {
            key_id: access_key_id.to_owned(),
            secret_key: secret_access_key.to_owned(),
            token: None,
        };
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region: region.to_owned(),
            virtual_hosted_style: false,
            credentials: Arc::new(StaticCredentialProvider::new(credential)),
            client_options: location::client_options()
                .with_allow_http(endpoint.starts_with("http://")),
        }
    }

    /// The configuration `Store::from_url(url, options)` uses for an `s3://` URL, and the
    /// bucket and prefix the URL names.
    pub fn from_url(url: &str, options: &BTreeMap<String, String>) -> Result<(Self, S3Location)> {
        let not_s3 = || Error::InvalidUrl {
            url: url.to_owned(),
            reason: "bucket lifecycle rules can only be managed for s3:// storage".into(),
        };
        let Some((Remote::S3, parsed)) = location::remote_url(url)? else {
            return Err(not_s3());
        };
        let bucket = parsed.host_str().ok_or_else(not_s3)?.to_owned();
        let (_, prefix) = location::url_prefix(&parsed)?;
        let builder = location::s3_builder(&parsed, options)?;
        let get = |key| builder.get_config_value(&key);
        let region = get(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let virtual_hosted_style =
            get(AmazonS3ConfigKey::VirtualHostedStyleRequest).is_some_and(|v| v == "true");
        let endpoint = get(AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| get(AmazonS3ConfigKey::Endpoint))
            .unwrap_or_else(|| match virtual_hosted_style {
                true => format!("https://{bucket}.s3.{region}.amazonaws.com"),
                false => format!("https://s3.{region}.amazonaws.com"),
            });
        let client_options = CLIENT_KEYS.iter().fold(ClientOptions::new(), |opts, key| {
            match get(AmazonS3ConfigKey::Client(*key)) {
                Some(value) => opts.with_config(*key, value),
                None => opts,
            }
        });
        let s3 = builder.build().map_err(|source| Error::Open {
            url: location::redact(&parsed),
            source,
        })?;
        let config = Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region,
            virtual_hosted_style,
            credentials: s3.credentials().clone(),
            client_options,
        };
        Ok((config, S3Location { bucket, prefix }))
    }

    /// The URL of `bucket`'s bucket-level requests (no query).
    fn bucket_url(&self, bucket: &str) -> String {
        match self.virtual_hosted_style {
            true => self.endpoint.clone(),
            false => format!("{}/{bucket}", self.endpoint),
        }
    }
}

/// Signed bucket-level requests against one endpoint.
#[derive(Debug, Clone)]
pub struct BucketAdmin {
    http: HttpClient,
    config: S3Config,
}

impl BucketAdmin {
    /// A client for `config`'s endpoint.
    pub fn new(config: S3Config) -> Result<Self> {
        let http = ReqwestConnector::default()
            .connect(&config.client_options)
            .map_err(|source| Error::Open {
                url: config.endpoint.clone(),
                source,
            })?;
        Ok(Self { http, config })
    }

    /// The admin client for the bucket an `s3://` storage URL names, configured like the store
    /// (see [`S3Config::from_url`]).
    pub fn from_url(url: &str, options: &BTreeMap<String, String>) -> Result<(Self, S3Location)> {
        let (config, location) = S3Config::from_url(url, options)?;
        Ok((Self::new(config)?, location))
    }

    /// The endpoint and credentials in use.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// A cheap signed `GET` of the endpoint root (`ListBuckets`), proving the endpoint answers
    /// and accepts our credentials.
    pub async fn ping(&self) -> Result<()> {
        let url = format!("{}/", self.config.endpoint);
        self.send("ListBuckets", Method::GET, url, Vec::new(), false)
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
        let url = self.config.bucket_url(bucket);
        self.send("CreateBucket", Method::PUT, url, body, false)
            .await
            .map(|_| ())
    }

    /// `PutBucketLifecycleConfiguration`: replaces all rules of `bucket`.
    pub async fn put_lifecycle(&self, bucket: &str, config: &LifecycleConfiguration) -> Result<()> {
        self.put_lifecycle_xml(bucket, config.to_xml()?).await
    }

    /// [`BucketAdmin::put_lifecycle`] of rules read earlier (foreign rules kept verbatim).
    pub async fn put_lifecycle_stored(&self, bucket: &str, config: &StoredLifecycle) -> Result<()> {
        self.put_lifecycle_xml(bucket, config.to_xml()).await
    }

    /// S3 requires a `Content-MD5` header on this call.
    async fn put_lifecycle_xml(&self, bucket: &str, xml: String) -> Result<()> {
        let url = format!("{}?lifecycle", self.config.bucket_url(bucket));
        let op = "PutBucketLifecycleConfiguration";
        self.send(op, Method::PUT, url, xml.into_bytes(), true)
            .await
            .map(|_| ())
    }

    /// `GetBucketLifecycleConfiguration`; `None` when the bucket has no lifecycle rules.
    pub async fn get_lifecycle(&self, bucket: &str) -> Result<Option<LifecycleConfiguration>> {
        match self.get_lifecycle_xml(bucket).await? {
            Some(xml) => LifecycleConfiguration::from_xml(&xml).map(Some),
            None => Ok(None),
        }
    }

    /// [`BucketAdmin::get_lifecycle`], keeping each rule's XML for writing it back.
    pub async fn get_lifecycle_stored(&self, bucket: &str) -> Result<Option<StoredLifecycle>> {
        match self.get_lifecycle_xml(bucket).await? {
            Some(xml) => StoredLifecycle::from_xml(&xml).map(Some),
            None => Ok(None),
        }
    }

    async fn get_lifecycle_xml(&self, bucket: &str) -> Result<Option<String>> {
        let url = format!("{}?lifecycle", self.config.bucket_url(bucket));
        let op = "GetBucketLifecycleConfiguration";
        match self.send(op, Method::GET, url, Vec::new(), false).await {
            Ok(body) => Ok(Some(body)),
            Err(Error::S3Status {
                status: 404, body, ..
            }) if body.contains("NoSuchLifecycleConfiguration") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `DeleteBucketLifecycle`: removes every rule of `bucket`.
    pub async fn delete_lifecycle(&self, bucket: &str) -> Result<()> {
        let url = format!("{}?lifecycle", self.config.bucket_url(bucket));
        self.send(
            "DeleteBucketLifecycle",
            Method::DELETE,
            url,
            Vec::new(),
            false,
        )
        .await
        .map(|_| ())
    }

    /// Sign and send one request; a non-2xx answer becomes [`Error::S3Status`] with its body.
    async fn send(
        &self,
        op: &str,
        method: Method,
        url: String,
        body: Vec<u8>,
        content_md5: bool,
    ) -> Result<String> {
        let bad_url = |reason: String| Error::InvalidUrl {
            url: url.clone(),
            reason,
        };
        // The signer unwraps its own parse of the URL: make sure it cannot fail.
        url::Url::parse(&url).map_err(|e| bad_url(e.to_string()))?;
        let mut builder = http::Request::builder().method(method).uri(&url);
        if content_md5 {
            let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
            builder = builder.header("content-md5", md5);
        }
        let mut request = builder
            .body(HttpRequestBody::from(body))
            .map_err(|e| bad_url(e.to_string()))?;
        let credential = self.config.credentials.get_credential().await;
        let credential = credential.map_err(|source| Error::S3Credentials {
            op: op.to_owned(),
            source,
        })?;
        AwsAuthorizer::new(&credential, "s3", &self.config.region).authorize(&mut request, None);

        let request_err = |source| Error::S3Request {
            op: op.to_owned(),
            url: url.clone(),
            source,
        };
        let response = self.http.execute(request).await.map_err(request_err)?;
        let status = response.status();
        let bytes = response.into_body().bytes().await.map_err(request_err)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        Err(Error::S3Status {
            op: op.to_owned(),
            status: status.as_u16(),
            body: text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_comes_from_the_storage_url_and_options() {
        let options = BTreeMap::from([
            (
                "aws_endpoint".to_string(),
                "http://127.0.0.1:9/".to_string(),
            ),
            ("aws_region".to_string(), "eu-west-1".to_string()),
            ("aws_allow_http".to_string(), "true".to_string()),
            ("aws_access_key_id".to_string(), "AKID".to_string()),
            ("aws_secret_access_key".to_string(), "secret".to_string()),
        ]);
        let (config, location) = S3Config::from_url("s3://logs/team/a", &options).unwrap();
        assert_eq!(
            location,
            S3Location {
                bucket: "logs".into(),
                prefix: "team/a/".into()
            }
        );
        assert_eq!(config.endpoint, "http://127.0.0.1:9");
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.bucket_url("logs"), "http://127.0.0.1:9/logs");
        assert_eq!(
            config
                .client_options
                .get_config_value(&ClientConfigKey::AllowHttp)
                .as_deref(),
            Some("true")
        );
        assert!(!format!("{config:?}").contains("secret\""));
    }

    #[test]
    fn without_an_endpoint_requests_go_to_aws() {
        let options = BTreeMap::from([("aws_region".to_string(), "eu-west-1".to_string())]);
        let (config, _) = S3Config::from_url("s3://logs", &options).unwrap();
        assert_eq!(
            config.bucket_url("logs"),
            "https://s3.eu-west-1.amazonaws.com/logs"
        );
        let options = BTreeMap::from([
            ("aws_region".to_string(), "eu-west-1".to_string()),
            (
                "aws_virtual_hosted_style_request".to_string(),
                "true".to_string(),
            ),
        ]);
        let (config, _) = S3Config::from_url("s3://logs", &options).unwrap();
        assert_eq!(
            config.bucket_url("logs"),
            "https://logs.s3.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn only_s3_urls_have_an_admin() {
        for url in ["gs://b", "/tmp/x"] {
            let err = S3Config::from_url(url, &BTreeMap::new()).unwrap_err();
            assert!(
                err.to_string().contains("only be managed for s3://"),
                "{err}"
            );
        }
    }
}
