//! What a LogStream grants its tenants: how long their logs are kept (a default and a ceiling
//! LogPipelines choose within) and how fast they may push and how much they may query.
//!
//! A tenant is the `X-Scope-OrgID` of a push or query; logs a LogPipeline collects belong to
//! the tenant named after the LogPipeline's namespace.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Retention bounds, in whole days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = ("self.defaultDays <= self.maximumDays", "spec.retention.defaultDays must be <= maximumDays"))]
pub struct RetentionSpec {
    /// Days logs are kept when their LogPipeline sets no `retention.days` (also logs pushed
    /// directly to the ingest API). Default 7; at most `maximumDays`.
    #[serde(default = "default_retention_days")]
    #[schemars(range(min = 1, max = 36500))]
    pub default_days: i32,
    /// Most days a LogPipeline may keep its logs. Default 30.
    #[serde(default = "maximum_retention_days")]
    #[schemars(range(min = 1, max = 36500))]
    pub maximum_days: i32,
}

impl Default for RetentionSpec {
    fn default() -> Self {
        Self {
            default_days: default_retention_days(),
            maximum_days: maximum_retention_days(),
        }
    }
}

/// Per-tenant limits: one set for every tenant, and overrides for some.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsSpec {
    /// Limits of every tenant, unless `overrides` names it.
    #[serde(default)]
    pub defaults: TenantLimits,
    /// Limits of particular tenants, at most one entry per tenant (up to 1000). A field left
    /// unset takes its value from `defaults`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["tenant".into()]))]
    pub overrides: Vec<TenantLimitsOverride>,
}

/// Limits of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantLimits {
    /// Sustained ingest rate, in bytes per second of decoded log lines, per tenant across all
    /// ingest pods. Pushes beyond it are answered 429. Default 4194304 (4 MiB/s).
    #[serde(default = "default_ingest_rate")]
    #[schemars(range(min = 1))]
    pub ingest_rate_bytes_per_second: i64,
    /// Bytes a tenant may push at once above the sustained rate (the token bucket's size); a
    /// single push larger than this is always refused. Default 16777216 (16 MiB).
    #[serde(default = "default_ingest_burst")]
    #[schemars(range(min = 1))]
    pub ingest_burst_bytes: i64,
    /// Queries of one tenant that run at once per query pod; more wait in line. Default 8.
    #[serde(default = "default_query_concurrency")]
    #[schemars(range(min = 1))]
    pub query_concurrency: i32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            ingest_rate_bytes_per_second: default_ingest_rate(),
            ingest_burst_bytes: default_ingest_burst(),
            query_concurrency: default_query_concurrency(),
        }
    }
}

/// Limits of one named tenant; unset fields fall back to `spec.limits.defaults`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantLimitsOverride {
    /// The tenant: its `X-Scope-OrgID`, which for logs collected by a LogPipeline is the
    /// LogPipeline's namespace. 1 to 150 characters of `a-z A-Z 0-9 ! . _ * ' ( ) -`, not `.`
    /// or `..`.
    #[schemars(length(min = 1, max = 150))]
    #[x_kube(validation = (
        r#"self.matches(r"^[a-zA-Z0-9!._*'()-]+$") && self != '.' && self != '..'"#,
        "spec.limits.overrides[].tenant must be 1-150 characters of a-z A-Z 0-9 ! . _ * ' ( ) - and not . or .."
    ))]
    pub tenant: String,
    /// Sustained ingest rate in bytes per second (see `defaults.ingestRateBytesPerSecond`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub ingest_rate_bytes_per_second: Option<i64>,
    /// Burst size in bytes (see `defaults.ingestBurstBytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub ingest_burst_bytes: Option<i64>,
    /// Concurrent queries per query pod (see `defaults.queryConcurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub query_concurrency: Option<i32>,
}

impl LimitsSpec {
    /// The limits that apply to `tenant`: its override's fields over the defaults.
    pub fn for_tenant(&self, tenant: &str) -> TenantLimits {
        let d = &self.defaults;
        match self.overrides.iter().find(|o| o.tenant == tenant) {
            None => d.clone(),
            Some(o) => TenantLimits {
                ingest_rate_bytes_per_second: o
                    .ingest_rate_bytes_per_second
                    .unwrap_or(d.ingest_rate_bytes_per_second),
                ingest_burst_bytes: o.ingest_burst_bytes.unwrap_or(d.ingest_burst_bytes),
                query_concurrency: o.query_concurrency.unwrap_or(d.query_concurrency),
            },
        }
    }
}

fn default_retention_days() -> i32 {
    7
}

fn maximum_retention_days() -> i32 {
    30
}

fn default_ingest_rate() -> i64 {
    4 << 20
}

fn default_ingest_burst() -> i64 {
    16 << 20
}

fn default_query_concurrency() -> i32 {
    8
}
