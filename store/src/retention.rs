//! Retention: how long each tenant's retention class is kept, and the two ways it is enforced.
//!
//! - On S3, by bucket lifecycle rules ([`lifecycle_rules`], [`apply_lifecycle`]): one
//!   expiration rule per (tenant, class) on `<prefix>data/<tenant>/<class>/`, a default rule on
//!   `<prefix>data/`, and a rule aborting multipart uploads abandoned for a day. The object
//!   store deletes; LogStream spends no compute on it.
//! - Anywhere else (local disk; GCS and Azure until their lifecycle APIs are wired), by the
//!   [`sweep`]er, which deletes whole hour partitions once they are older than the policy.
//!
//! Both read the same [`RetentionPolicy`], and queries hide events older than [`cutoff_ns`] so
//! results do not depend on when the deletion actually happens (S3 deletes objects some time
//! after they expire, counted from when they were written rather than from event time).
//!
//! S3 applies the shortest expiration when rules overlap, so a default shorter than a specific
//! rule would cut that tenant's retention short without a word: such a policy is refused
//! everywhere (also by the sweeper, so a policy means the same on every backend).

mod sweep;

pub use sweep::{SweepReport, SweptPartition, spawn_sweeper, sweep};

use crate::error::{Error, Result};
use crate::lifecycle::{LifecycleRule, StoredLifecycle, StoredRule};
use crate::location::normalize_prefix;
use crate::s3_admin::BucketAdmin;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Every lifecycle rule LogStream writes has an ID starting with this.
pub const RULE_ID_PREFIX: &str = "logstream-";
/// Days after which an incomplete multipart upload under `data/` is aborted.
pub const ABORT_INCOMPLETE_UPLOAD_DAYS: u32 = 1;
/// Longest tenant or class name, in characters (the ingest limit on tenant ids).
pub const MAX_SEGMENT_CHARS: usize = 150;
/// S3's limit on lifecycle rules per bucket.
pub const MAX_LIFECYCLE_RULES: usize = 1000;
/// S3's limit on the length of a rule ID.
const MAX_RULE_ID_CHARS: usize = 255;

/// How long stored events are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Days to keep every (tenant, class) without a rule of its own; `None` keeps them forever.
    /// Must be at least the days of every rule (see the module docs).
    #[serde(default)]
    pub default_days: Option<u32>,
    /// Per-(tenant, class) retention.
    #[serde(default)]
    pub rules: Vec<RetentionRule>,
}

/// Retention of one tenant's retention class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Tenant id, as in the object keys.
    pub tenant: String,
    /// Retention class, as in the object keys.
    pub class: String,
    /// Days to keep events, at least 1.
    pub days: u32,
}

impl RetentionPolicy {
    /// Checks days, names, duplicates and the overlap S3 would resolve against the tenant.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidRetention { reason });
        if self.default_days == Some(0) {
            return invalid("default_days must be at least 1".into());
        }
        let mut seen = BTreeSet::new();
        for rule in &self.rules {
            let name = format!("tenant {:?} class {:?}", rule.tenant, rule.class);
            for (what, value) in [("tenant", &rule.tenant), ("class", &rule.class)] {
                if let Some(problem) = segment_problem(value) {
                    return invalid(format!("{what} {value:?}: {problem}"));
                }
            }
            if rule.days == 0 {
                return invalid(format!("{name}: days must be at least 1"));
            }
            if !seen.insert((&rule.tenant, &rule.class)) {
                return invalid(format!("{name} has more than one rule"));
            }
            if let Some(default) = self.default_days
                && default < rule.days
            {
                return invalid(format!(
                    "default_days ({default}) is shorter than the {days} days of {name}: S3 \
                     applies the shortest expiration when lifecycle rules overlap, so the \
                     default rule on data/ would delete that data after {default} days; raise \
                     default_days to at least {days}, or unset it and give each tenant/class \
                     its own rule",
                    days = rule.days
                ));
            }
        }
        Ok(())
    }

    /// Days `tenant`'s `class` is kept: its rule, else the default, else forever (`None`).
    pub fn days_for(&self, tenant: &str, class: &str) -> Option<u32> {
        self.rules
            .iter()
            .find(|r| r.tenant == tenant && r.class == class)
            .map(|r| r.days)
            .or(self.default_days)
    }
}

/// Why `s` cannot be a tenant or class key segment (the ingest rules for tenant ids:
/// `[a-zA-Z0-9!._*'()-]`, 1 to 150 characters, not `.` or `..`).
fn segment_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".into());
    }
    if s.len() > MAX_SEGMENT_CHARS {
        return Some(format!("longer than {MAX_SEGMENT_CHARS} characters"));
    }
    if s == "." || s == ".." {
        return Some("\".\" and \"..\" are reserved".into());
    }
    s.chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "!._*'()-".contains(c)))
        .map(|c| format!("it contains {c:?} (allowed: a-z A-Z 0-9 ! . _ * ' ( ) -)"))
}

/// Events of `tenant`'s `class` with a timestamp before this are expired at `now`; `None`
/// when they are kept forever.
pub fn cutoff_ns(
    policy: &RetentionPolicy,
    tenant: &str,
    class: &str,
    now: DateTime<Utc>,
) -> Option<i64> {
    let days = policy.days_for(tenant, class)?;
    cutoff(now, days)?.timestamp_nanos_opt()
}

fn cutoff(now: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    now.checked_sub_signed(TimeDelta::try_days(i64::from(days))?)
}

/// The lifecycle rules that implement `policy` for a store whose keys live under
/// `store_prefix` (empty, or e.g. `team-a/`): per (tenant, class) an expiration rule on
/// `<prefix>data/<tenant>/<class>/`, the default on `<prefix>data/`, and the abort rule for
/// incomplete multipart uploads on `<prefix>data/`.
///
/// IDs are `logstream-<what>-<hash>`, where `<hash>` (16 hex digits of FNV-1a 64 over the
/// rule's kind and filter prefix) keeps them unique within a bucket, also between installations
/// with different prefixes and between names that read alike (`a-b`/`c`, `a`/`b-c`), and stable
/// across releases; `<what>` (tenant and class, `default` or `abort-multipart`) is there for
/// humans and is cut to keep IDs within 255 characters.
pub fn lifecycle_rules(policy: &RetentionPolicy, store_prefix: &str) -> Result<Vec<LifecycleRule>> {
    policy.validate()?;
    let data = format!("{}data/", normalize_prefix(store_prefix));
    let mut rules = Vec::with_capacity(policy.rules.len() + 2);
    for rule in &policy.rules {
        let prefix = format!("{data}{}/{}/", rule.tenant, rule.class);
        let what = format!("{}-{}", rule.tenant, rule.class);
        let id = rule_id(&what, "expire", &prefix);
        rules.push(LifecycleRule::expire_after_days(&id, &prefix, rule.days));
    }
    if let Some(days) = policy.default_days {
        let id = rule_id("default", "expire", &data);
        rules.push(LifecycleRule::expire_after_days(&id, &data, days));
    }
    let id = rule_id("abort-multipart", "abort", &data);
    rules.push(LifecycleRule::abort_incomplete_uploads_after_days(
        &id,
        &data,
        ABORT_INCOMPLETE_UPLOAD_DAYS,
    ));
    Ok(rules)
}

fn rule_id(what: &str, kind: &str, filter_prefix: &str) -> String {
    let hash = fnv1a64(format!("{kind}\n{filter_prefix}").as_bytes());
    let room = MAX_RULE_ID_CHARS - RULE_ID_PREFIX.len() - 1 - 16;
    let what: String = what.chars().take(room).collect();
    format!("{RULE_ID_PREFIX}{what}-{hash:016x}")
}

/// FNV-1a, 64 bits: tiny, and fixed by its definition, so IDs never change between builds.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What [`apply_lifecycle`] did to the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleChange {
    /// The bucket already had exactly our rules; nothing was written.
    Unchanged,
    /// The configuration was written with `ours` rules of ours and `foreign` kept untouched.
    Written { ours: usize, foreign: usize },
    /// No rule remained, so the configuration was deleted.
    Deleted,
}

impl LifecycleChange {
    pub fn changed(&self) -> bool {
        *self != Self::Unchanged
    }
}

/// Makes `bucket`'s lifecycle rules for the store under `prefix` implement `policy`: rules of
/// others stay exactly as they are, ours are replaced, and nothing is written when nothing
/// would change (safe to call on every reconcile).
///
/// A rule is ours when its ID starts with `logstream-` and it filters on `<prefix>data/...`
/// (or has the ID of a rule we want): another installation sharing the bucket under another
/// prefix keeps its rules. Rules of ours under a prefix the store no longer uses are therefore
/// left alone too.
pub async fn apply_lifecycle(
    admin: &BucketAdmin,
    bucket: &str,
    prefix: &str,
    policy: &RetentionPolicy,
) -> Result<LifecycleChange> {
    let wanted = lifecycle_rules(policy, prefix)?;
    reconcile(admin, bucket, prefix, wanted).await
}

/// Removes our rules for the store under `prefix` from `bucket` (uninstall), keeping everyone
/// else's; deletes the configuration when nothing remains.
pub async fn remove_lifecycle(
    admin: &BucketAdmin,
    bucket: &str,
    prefix: &str,
) -> Result<LifecycleChange> {
    reconcile(admin, bucket, prefix, Vec::new()).await
}

async fn reconcile(
    admin: &BucketAdmin,
    bucket: &str,
    prefix: &str,
    mut wanted: Vec<LifecycleRule>,
) -> Result<LifecycleChange> {
    let current = admin.get_lifecycle_stored(bucket).await?;
    let data = format!("{}data/", normalize_prefix(prefix));
    let wanted_ids: BTreeSet<&str> = wanted.iter().filter_map(|r| r.id.as_deref()).collect();
    let (ours, foreign): (Vec<StoredRule>, Vec<StoredRule>) = current
        .unwrap_or_default()
        .rules
        .into_iter()
        .partition(|r| is_ours(r, &data, &wanted_ids));
    let mut have: Vec<LifecycleRule> = ours.into_iter().filter_map(|r| r.rule).collect();
    have.sort_by(|a, b| a.id.cmp(&b.id));
    wanted.sort_by(|a, b| a.id.cmp(&b.id));
    if have == wanted {
        return Ok(LifecycleChange::Unchanged);
    }
    if wanted.is_empty() && foreign.is_empty() {
        // `have` is not empty here, so there is a configuration to delete.
        admin.delete_lifecycle(bucket).await?;
        return Ok(LifecycleChange::Deleted);
    }
    let count = foreign.len() + wanted.len();
    if count > MAX_LIFECYCLE_RULES {
        return Err(Error::TooManyLifecycleRules {
            bucket: bucket.to_owned(),
            count,
        });
    }
    let written = LifecycleChange::Written {
        ours: wanted.len(),
        foreign: foreign.len(),
    };
    // Foreign rules first, in their order and verbatim; then ours.
    let mut rules = foreign;
    for rule in wanted {
        rules.push(StoredRule::new(rule)?);
    }
    admin
        .put_lifecycle_stored(bucket, &StoredLifecycle { rules })
        .await?;
    Ok(written)
}

fn is_ours(rule: &StoredRule, data_prefix: &str, wanted_ids: &BTreeSet<&str>) -> bool {
    let Some(parsed) = &rule.rule else {
        return false;
    };
    let Some(id) = parsed.id.as_deref() else {
        return false;
    };
    let under_data = parsed
        .filter
        .prefix
        .as_deref()
        .is_some_and(|p| p.starts_with(data_prefix));
    id.starts_with(RULE_ID_PREFIX) && (under_data || wanted_ids.contains(id))
}

#[cfg(test)]
mod tests;
