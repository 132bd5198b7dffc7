//! Object keys. Everything a tenant stores sits under `data/<tenant>/<class>/`, so a lifecycle
//! rule on that prefix expires exactly one tenant's retention class; date and hour follow so
//! queries and sweepers can skip whole hours by key.
//!
//! ```text
//! data/<tenant>/<class>/<YYYY-MM-DD>/<HH>/<source>-<first offset>-<last offset>.parquet
//! manifests/<source>.json
//! ```
//! `source` names the bus partition the file came from (`wal` in standalone). The offsets are
//! the bus range the flush covered, zero-padded so keys sort by offset: re-processing the same
//! range after a crash produces the same key and overwrites the object instead of adding one.

use chrono::{DateTime, Utc};
use object_store::path::Path;

/// Prefix holding all of one tenant's data of one retention class.
pub fn class_prefix(tenant: &str, class: &str) -> Path {
    Path::from_iter(["data", tenant, class])
}

/// Key of the file holding `tenant`'s events of `class` in the hour starting at `hour_start_ns`
/// that came from bus offsets `first..=last` of `source`.
pub fn data_key(
    tenant: &str,
    class: &str,
    hour_start_ns: i64,
    source: &str,
    first: u64,
    last: u64,
) -> Path {
    let t = DateTime::<Utc>::from_timestamp_nanos(hour_start_ns);
    Path::from_iter([
        "data".to_string(),
        tenant.to_string(),
        class.to_string(),
        t.format("%Y-%m-%d").to_string(),
        t.format("%H").to_string(),
        format!("{source}-{first:020}-{last:020}.parquet"),
    ])
}

pub fn manifest_key(source: &str) -> Path {
    Path::from_iter(["manifests".to_string(), format!("{source}.json")])
}

/// Start of the UTC hour containing `ts_ns`.
pub fn hour_start(ts_ns: i64) -> i64 {
    const HOUR: i64 = 3_600_000_000_000;
    ts_ns.div_euclid(HOUR) * HOUR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keys_put_tenant_and_class_before_the_hour() {
        // 2026-11-28T18:44:35Z
        let ts = 1_795_891_475_000_000_000;
        let key = data_key("acme", "default", hour_start(ts), "wal", 7, 42);
        assert_eq!(
            key.as_ref(),
            "data/acme/default/2026-11-28/18/wal-00000000000000000007-00000000000000000042.parquet"
        );
        assert!(
            key.as_ref()
                .starts_with(class_prefix("acme", "default").as_ref())
        );
    }

    #[test]
    fn hour_start_rounds_down_also_before_1970() {
        assert_eq!(hour_start(3_600_000_000_001), 3_600_000_000_000);
        assert_eq!(hour_start(-1), -3_600_000_000_000);
    }

    #[test]
    fn odd_tenant_names_stay_one_path_segment() {
        let key = class_prefix("a/b", "default");
        assert_eq!(key.parts().count(), 3);
    }
}
