//! The local sweeper: retention for stores without lifecycle rules. Walks
//! `data/<tenant>/<class>/<date>/<hour>/` and deletes every object of each hour partition that
//! ended at or before the cutoff of its tenant and class. Anything that does not look like a
//! date or an hour is reported and left alone: the sweeper never deletes what it does not
//! understand.

use super::{RetentionPolicy, cutoff};
use crate::error::Result;
use crate::store::Store;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use object_store::path::Path;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// What one sweep deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Hour partitions whose objects were deleted, in the order they were swept.
    pub partitions: Vec<SweptPartition>,
    /// Directories below a tenant's class that are not `<YYYY-MM-DD>/<HH>` (left alone).
    pub skipped: Vec<String>,
}

impl SweepReport {
    /// Objects deleted, over all partitions.
    pub fn objects(&self) -> usize {
        self.partitions.iter().map(|p| p.objects).sum()
    }
}

/// One expired hour partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweptPartition {
    pub tenant: String,
    pub class: String,
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// Objects deleted in it.
    pub objects: usize,
}

const HOUR: TimeDelta = TimeDelta::hours(1);

/// Deletes the hour partitions of `store` that `policy` expires at `now`: those whose end
/// (hour + 1 h) is at or before `now - days` for their tenant and class. Pairs without a
/// rule use `default_days`; with neither, nothing of theirs is deleted.
pub async fn sweep(
    store: &Store,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<SweepReport> {
    policy.validate()?;
    let mut report = SweepReport::default();
    for tenant_dir in store.list_dirs(&Path::from("data")).await? {
        let tenant = last_part(&tenant_dir);
        for class_dir in store.list_dirs(&tenant_dir).await? {
            let class = last_part(&class_dir);
            let Some(days) = policy.days_for(&tenant, &class) else {
                continue;
            };
            let Some(cutoff) = cutoff(now, days) else {
                continue;
            };
            let class = Partition {
                tenant: &tenant,
                class: &class,
                dir: &class_dir,
            };
            sweep_class(store, class, cutoff, &mut report).await?;
        }
    }
    Ok(report)
}

/// A tenant's retention class and its directory.
#[derive(Clone, Copy)]
struct Partition<'a> {
    tenant: &'a str,
    class: &'a str,
    dir: &'a Path,
}

async fn sweep_class(
    store: &Store,
    class: Partition<'_>,
    cutoff: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<()> {
    for date_dir in store.list_dirs(class.dir).await? {
        let Some(day) = parse_date(&last_part(&date_dir)) else {
            report.skipped.push(date_dir.to_string());
            continue;
        };
        // No hour of this day has ended by the cutoff: skip listing its hours.
        if day + HOUR > cutoff {
            continue;
        }
        for hour_dir in store.list_dirs(&date_dir).await? {
            let Some(hour) = parse_hour(&last_part(&hour_dir)).map(|h| day + h) else {
                report.skipped.push(hour_dir.to_string());
                continue;
            };
            if hour + HOUR > cutoff {
                continue;
            }
            let keys: Vec<Path> = store
                .list(&hour_dir)
                .await?
                .into_iter()
                .map(|meta| meta.location)
                .collect();
            if !keys.is_empty() {
                let objects = store.delete_many(keys).await?;
                report.partitions.push(SweptPartition {
                    tenant: class.tenant.to_string(),
                    class: class.class.to_string(),
                    hour,
                    objects,
                });
            }
            store.remove_dir_if_empty(&hour_dir).await;
        }
        store.remove_dir_if_empty(&date_dir).await;
    }
    Ok(())
}

fn last_part(path: &Path) -> String {
    path.filename().unwrap_or_default().to_string()
}

/// `YYYY-MM-DD` → midnight UTC of that day.
fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 10 {
        return None;
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// `HH` (00 to 23) → offset into the day.
fn parse_hour(s: &str) -> Option<TimeDelta> {
    if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hour: i64 = s.parse().ok()?;
    (hour < 24).then(|| TimeDelta::hours(hour))
}

/// Runs [`sweep`] with the real clock right away and then every `interval`, until `cancel`
/// fires; logs each deleted partition. A failed sweep is logged and retried at the next tick.
/// An invalid policy is logged once and the task ends (it can never become valid).
pub fn spawn_sweeper(
    store: Store,
    policy: RetentionPolicy,
    interval: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = policy.validate() {
            tracing::error!(%error, "retention sweeper not started");
            return;
        }
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                result = sweep(&store, &policy, Utc::now()) => result,
            };
            log_sweep(&store, result);
        }
    })
}

fn log_sweep(store: &Store, result: Result<SweepReport>) {
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            tracing::warn!(store = store.describe(), %error, "retention sweep failed");
            return;
        }
    };
    for p in &report.partitions {
        tracing::info!(
            tenant = p.tenant,
            class = p.class,
            hour = %p.hour.format("%Y-%m-%dT%H:00Z"),
            objects = p.objects,
            "retention deleted an expired hour"
        );
    }
    for dir in &report.skipped {
        tracing::warn!(
            dir,
            "retention sweep skipped a directory outside the layout"
        );
    }
    tracing::debug!(
        store = store.describe(),
        partitions = report.partitions.len(),
        objects = report.objects(),
        "retention sweep done"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_hours_parse_strictly() {
        assert_eq!(
            parse_date("2026-03-07").map(|d| d.to_rfc3339()),
            Some("2026-03-07T00:00:00+00:00".to_string())
        );
        for bad in ["2026-3-07", "2026-02-30", "x", "2026-03-07x"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_hour("07"), Some(TimeDelta::hours(7)));
        for bad in ["7", "24", "+1", "ab"] {
            assert_eq!(parse_hour(bad), None, "{bad}");
        }
    }
}
