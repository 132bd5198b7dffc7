//! Where a LogStream keeps its Parquet files and manifests: an object-store URL, the Secret
//! holding its credentials, and object_store options that are not secret.
//!
//! Credentials never go in `options`: a LogStream is readable by anyone who may list it, a
//! Secret is not. A CEL rule refuses the credential keys docs/storage.md lists.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Option keys that hold credentials; they belong in the Secret.
const SECRET_OPTION_KEYS: &[&str] = &[
    "aws_secret_access_key",
    "aws_session_token",
    "google_service_account_key",
    "azure_storage_account_key",
    "azure_storage_sas_key",
    "azure_storage_client_secret",
];

/// The object store holding every tenant's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Object-store URL, with an optional key prefix: `s3://bucket[/prefix]`,
    /// `gs://bucket[/prefix]`, `az://container[/prefix]`, or `file:///path` for a volume every
    /// pod mounts. Required.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = (
        r#"self.matches(r'^(s3|s3a|gs|az|azure|adl|abfs|abfss|file)://[^\s]+$')"#,
        "spec.storage.url must be an object-store URL: s3://bucket[/prefix], gs://bucket[/prefix], az://container[/prefix] or file:///path"
    ))]
    pub url: String,
    /// Secret in the LogStream's namespace with the store's credentials. Each key becomes an
    /// environment variable of every pod that reads or writes storage, so use the names the
    /// object_store library reads, e.g. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`,
    /// `GOOGLE_SERVICE_ACCOUNT_KEY`, `AZURE_STORAGE_ACCOUNT_KEY`. Unset: the pods' ambient
    /// credentials (IRSA / workload identity, instance metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// object_store configuration keys and values that are not secret, e.g.
    /// `aws_endpoint: http://minio:9000`, `aws_region: eu-west-1`, `aws_allow_http: "true"`
    /// (the keys are listed in docs/storage.md). They win over the environment. Credential
    /// keys such as `aws_secret_access_key` are refused here: put them in the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = no_secret_options_rule())]
    pub options: BTreeMap<String, String>,
}

impl StorageSpec {
    /// Storage at `url`, with ambient credentials and no options.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            credentials_secret_ref: None,
            options: BTreeMap::new(),
        }
    }
}

/// A Secret in the same namespace as the object naming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// CEL rule on `options`: no credential keys.
fn no_secret_options_rule() -> kube::core::Rule {
    let quoted: Vec<String> = SECRET_OPTION_KEYS
        .iter()
        .map(|k| format!("'{k}'"))
        .collect();
    crate::rule(
        format!("!self.exists(k, k in [{}])", quoted.join(", ")),
        format!(
            "spec.storage.options must not hold credentials ({}): put them in the Secret named by \
             credentialsSecretRef",
            SECRET_OPTION_KEYS.join(", ")
        ),
    )
}
