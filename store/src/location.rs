//! Storage URLs: which backend a URL names, how it is opened (options, environment, retries,
//! timeouts), and how it is shown in logs without secrets. `docs/storage.md` is the user-facing
//! description of everything here.
//!
//! Remote stores are built the way object_store's `parse_url_opts` builds them (the builder
//! parses the URL and takes the option keys), except that the builder starts from our retry and
//! timeout defaults, reads the environment like the builders' `from_env`, and refuses unknown
//! option keys instead of ignoring them: a typo in `aws_endpoint` should not silently send
//! requests to AWS.

use crate::error::{Error, Result};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// First wait after a failed request.
pub const RETRY_INIT_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between two attempts: how late a recovered endpoint is noticed, at most.
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Growth of the wait. object_store draws each wait uniformly from
/// `[init, previous × base]` (capped at the maximum), so a base of 4 roughly doubles the
/// average wait per attempt; with object_store's default of 2 the waits barely grow.
pub const RETRY_BACKOFF_BASE: f64 = 4.0;
/// Attempts after the first. Not the binding limit: [`RETRY_TIMEOUT`] is.
pub const RETRY_MAX_RETRIES: usize = 40;
/// No retry starts later than this after the first attempt. Waits of 0.2, ~0.5, ~1.2, ~3,
/// then ~4.4 s on average reach 30 s after about ten attempts, so an endpoint that is down for
/// 30 s (a restart, a failover) is ridden out with room to spare; a longer outage surfaces as an
/// error after 90 s. object_store warns against more than 5 min (signatures and credentials
/// would expire).
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(90);
/// Time to establish a connection (object_store's default).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole request including its body: an 8 MiB upload part or a whole-file read of
/// a large Parquet file on a slow link (object_store's default is 30 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The retry policy of every remote store (see the constants).
pub fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: RETRY_INIT_BACKOFF,
            max_backoff: RETRY_MAX_BACKOFF,
            base: RETRY_BACKOFF_BASE,
        },
        max_retries: RETRY_MAX_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
    }
}

/// HTTP client defaults of every remote store; options and env vars override them.
pub fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT)
}

/// Sets a builder up from our defaults, the environment (like the builder's `from_env`), the
/// explicit options (which win) and the URL.
macro_rules! build {
    ($builder:ty, $key:ty, $remote:expr, $url:expr, $options:expr) => {{
        let mut builder = <$builder>::new()
            .with_client_options(client_options())
            .with_retry(retry_config());
        for (key, value) in env_options($remote) {
            if let Ok(key) = key.parse::<$key>() {
                builder = builder.with_config(key, value);
            }
        }
        for (key, value) in $options {
            let parsed = key.to_ascii_lowercase().parse::<$key>();
            let parsed = parsed.map_err(|_| unknown_option($remote, $url, key))?;
            builder = builder.with_config(parsed, value);
        }
        builder.with_url($url.as_str())
    }};
}

/// The remote backends `Store::from_url` opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remote {
    S3,
    Gcs,
    Azure,
}

impl Remote {
    fn of_scheme(scheme: &str) -> Option<Self> {
        match scheme {
            "s3" | "s3a" => Some(Self::S3),
            "gs" => Some(Self::Gcs),
            "az" | "azure" | "adl" | "abfs" | "abfss" => Some(Self::Azure),
            _ => None,
        }
    }

    /// Prefix of the env vars the builder's `from_env` reads.
    fn env_prefix(self) -> &'static str {
        match self {
            Self::S3 => "AWS_",
            Self::Gcs => "GOOGLE_",
            Self::Azure => "AZURE_",
        }
    }
}

/// A remote store opened from a URL.
#[derive(Debug)]
pub(crate) struct OpenedRemote {
    pub store: Arc<dyn ObjectStore>,
    /// The URL without password, query or fragment.
    pub url: String,
    /// The URL plus where requests go, for logs.
    pub description: String,
    /// Key prefix inside the bucket: empty or `a/b/`.
    pub prefix: String,
}

/// Parses `url` when it names a remote store; `None` for a local path or `file://`.
pub(crate) fn remote_url(url: &str) -> Result<Option<(Remote, Url)>> {
    if url.starts_with("file://") || !url.contains("://") {
        return Ok(None);
    }
    let parsed = Url::parse(url).map_err(|e| Error::InvalidUrl {
        url: redact_str(url),
        reason: e.to_string(),
    })?;
    let Some(remote) = Remote::of_scheme(parsed.scheme()) else {
        return Err(Error::UnsupportedScheme {
            scheme: parsed.scheme().to_string(),
            url: redact(&parsed),
        });
    };
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::InvalidUrl {
            url: redact(&parsed),
            reason: "the bucket (container) name is missing".into(),
        });
    }
    Ok(Some((remote, parsed)))
}

/// Opens the remote store `url` names with `options` over the environment.
pub(crate) fn open_remote(
    remote: Remote,
    url: &Url,
    options: &BTreeMap<String, String>,
) -> Result<OpenedRemote> {
    let shown = redact(url);
    let open_err = |source| Error::Open {
        url: shown.clone(),
        source,
    };
    let (store, detail): (Arc<dyn ObjectStore>, String) = match remote {
        Remote::S3 => {
            let builder = s3_builder(url, options)?;
            let detail = s3_detail(&builder);
            (Arc::new(builder.build().map_err(open_err)?), detail)
        }
        Remote::Gcs => {
            let builder = build!(
                GoogleCloudStorageBuilder,
                GoogleConfigKey,
                remote,
                url,
                options
            );
            (Arc::new(builder.build().map_err(open_err)?), String::new())
        }
        Remote::Azure => {
            let builder = build!(MicrosoftAzureBuilder, AzureConfigKey, remote, url, options);
            let detail = builder
                .get_config_value(&AzureConfigKey::AccountName)
                .map(|a| format!("account {a}"))
                .unwrap_or_default();
            (Arc::new(builder.build().map_err(open_err)?), detail)
        }
    };
    let (prefix_path, prefix) = url_prefix(url)?;
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix_path))
    };
    let description = if detail.is_empty() {
        shown.clone()
    } else {
        format!("{shown} ({detail})")
    };
    Ok(OpenedRemote {
        store,
        url: shown,
        description,
        prefix,
    })
}

/// The S3 builder for `url` and `options` (also the bucket admin's source of endpoint, region
/// and credentials).
pub(crate) fn s3_builder(url: &Url, options: &BTreeMap<String, String>) -> Result<AmazonS3Builder> {
    Ok(build!(
        AmazonS3Builder,
        AmazonS3ConfigKey,
        Remote::S3,
        url,
        options
    ))
}

/// Where S3 requests go, for logs.
fn s3_detail(builder: &AmazonS3Builder) -> String {
    let get = |key| builder.get_config_value(&key);
    let endpoint = get(AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| get(AmazonS3ConfigKey::Endpoint))
        .unwrap_or_else(|| "AWS".into());
    let region = get(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
    format!("endpoint {endpoint}, region {region}")
}

/// Env vars the builder's `from_env` would read, lowercased, in the order it applies them.
fn env_options(remote: Remote) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // `from_env` of the GCS builder also reads `SERVICE_ACCOUNT` (before the GOOGLE_ vars).
    if remote == Remote::Gcs
        && let Ok(path) = std::env::var("SERVICE_ACCOUNT")
    {
        out.push(("google_service_account".to_string(), path));
    }
    for (key, value) in std::env::vars_os() {
        if let (Some(key), Some(value)) = (key.to_str(), value.to_str())
            && key.starts_with(remote.env_prefix())
        {
            out.push((key.to_ascii_lowercase(), value.to_string()));
        }
    }
    // ... and that of the Azure builder `MSI_ENDPOINT` (after them).
    if remote == Remote::Azure
        && let Ok(endpoint) = std::env::var("MSI_ENDPOINT")
    {
        out.push(("azure_msi_endpoint".to_string(), endpoint));
    }
    out
}

fn unknown_option(remote: Remote, url: &Url, key: &str) -> Error {
    let example = match remote {
        Remote::S3 => "aws_endpoint, aws_region, aws_access_key_id",
        Remote::Gcs => "google_service_account, google_bucket",
        Remote::Azure => "azure_storage_account_name, azure_storage_account_key",
    };
    Error::InvalidOption {
        url: redact(url),
        key: key.to_string(),
        reason: format!("not an option of this store (e.g. {example}; see docs/storage.md)"),
    }
}

/// The key prefix a URL's path names, as a path and as the string glued in front of keys.
pub(crate) fn url_prefix(url: &Url) -> Result<(Path, String)> {
    let path = Path::from_url_path(url.path()).map_err(|e| Error::InvalidUrl {
        url: redact(url),
        reason: e.to_string(),
    })?;
    let prefix = normalize_prefix(path.as_ref());
    Ok((path, prefix))
}

/// `a/b` → `a/b/`, empty stays empty: the form that is glued in front of keys.
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// The URL without password, query and fragment, and without a trailing `/`.
pub(crate) fn redact(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.as_str().trim_end_matches('/').to_string()
}

/// [`redact`] for a string that may not parse: everything after `://` up to `@` is dropped.
fn redact_str(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn local_paths_and_file_urls_are_not_remote() {
        for url in ["/tmp/x", "relative/dir", "file:///tmp/x"] {
            assert!(remote_url(url).unwrap().is_none(), "{url}");
        }
    }

    #[test]
    fn unknown_schemes_are_refused_naming_the_scheme_and_the_alternatives() {
        let err = remote_url("ftp://x").unwrap_err().to_string();
        assert_eq!(
            err,
            "unsupported storage URL scheme 'ftp' in ftp://x: use a local path, file://, s3://, gs:// or az://"
        );
        let err = remote_url("https://example.com/x").unwrap_err().to_string();
        assert!(err.contains("scheme 'https'"), "{err}");
    }

    #[test]
    fn a_url_without_bucket_is_refused() {
        let err = remote_url("s3:///prefix").unwrap_err().to_string();
        assert!(err.contains("bucket (container) name is missing"), "{err}");
    }

    #[test]
    fn s3_urls_open_with_options_and_show_where_requests_go() {
        let (remote, url) = remote_url("s3://bucket/some/prefix/").unwrap().unwrap();
        assert_eq!(remote, Remote::S3);
        let options = opts(&[
            ("aws_endpoint", "http://127.0.0.1:9"),
            ("aws_region", "eu-west-1"),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
        ]);
        let opened = open_remote(remote, &url, &options).unwrap();
        assert_eq!(opened.url, "s3://bucket/some/prefix");
        assert_eq!(opened.prefix, "some/prefix/");
        assert_eq!(
            opened.description,
            "s3://bucket/some/prefix (endpoint http://127.0.0.1:9, region eu-west-1)"
        );
        assert!(!format!("{opened:?}").contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn an_unknown_option_is_refused_by_name() {
        let (remote, url) = remote_url("s3://bucket").unwrap().unwrap();
        let err = open_remote(remote, &url, &opts(&[("aws_endpiont", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("storage option \"aws_endpiont\" for s3://bucket: not an option"),
            "{err}"
        );
    }

    #[test]
    fn gcs_and_azure_urls_open_without_network() {
        let (remote, url) = remote_url("gs://bucket/p").unwrap().unwrap();
        let opened = open_remote(remote, &url, &BTreeMap::new()).unwrap();
        assert_eq!(
            (opened.url.as_str(), opened.prefix.as_str()),
            ("gs://bucket/p", "p/")
        );

        let (remote, url) = remote_url("az://container/a/b").unwrap().unwrap();
        let options = opts(&[
            ("azure_storage_account_name", "acct"),
            ("azure_storage_account_key", "a2V5"),
        ]);
        let opened = open_remote(remote, &url, &options).unwrap();
        assert_eq!(opened.prefix, "a/b/");
        assert_eq!(opened.description, "az://container/a/b (account acct)");

        let url = "abfss://fs@acct.dfs.core.windows.net/logs";
        let (remote, url) = remote_url(url).unwrap().unwrap();
        let options = opts(&[("azure_storage_account_key", "a2V5")]);
        let opened = open_remote(remote, &url, &options).unwrap();
        assert_eq!(opened.prefix, "logs/");
    }

    #[test]
    fn passwords_and_queries_never_reach_the_shown_url() {
        let url = Url::parse("s3://user:secret@bucket/p?token=abc#x").unwrap();
        assert_eq!(redact(&url), "s3://user@bucket/p");
        assert_eq!(redact_str("s3://u:secret@b ad"), "s3://…@b ad");
    }

    #[test]
    fn prefixes_are_normalized_to_a_trailing_slash() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("a/b"), "a/b/");
        assert_eq!(normalize_prefix("/a/b/"), "a/b/");
    }
}
