use super::*;
use crate::event::{Entry, Labels, Stream};
use std::io::Write;

fn batch(tenant: &str, line: &str) -> Batch {
    Batch {
        tenant: tenant.into(),
        streams: vec![Stream {
            labels: Labels::new(vec![("app".into(), "t".into())]).unwrap(),
            entries: vec![Entry {
                ts_ns: 1,
                line: line.into(),
                metadata: vec![],
            }],
        }],
        origin: None,
    }
}

fn open(dir: &Path) -> Wal {
    Wal::open(WalConfig::new(dir), WalMetrics::default()).unwrap()
}

fn read_all(wal: &Wal, from: u64) -> Vec<(u64, Batch)> {
    let mut r = wal.reader(from);
    let mut out = Vec::new();
    loop {
        let recs = r.read(1 << 20).unwrap();
        if recs.is_empty() {
            return out;
        }
        out.extend(recs.into_iter().map(|(o, p)| (o, decode(&p).unwrap())));
    }
}

#[tokio::test]
async fn appended_records_read_back_in_order_with_consecutive_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path());
    for i in 0..10 {
        assert_eq!(wal.append(&batch("t", &format!("l{i}"))).await.unwrap(), i);
    }
    let got = read_all(&wal, 0);
    assert_eq!(got.len(), 10);
    for (i, (off, b)) in got.iter().enumerate() {
        assert_eq!(*off, i as u64);
        assert_eq!(b.streams[0].entries[0].line, format!("l{i}"));
    }
    assert_eq!(read_all(&wal, 7).len(), 3, "a reader can start mid-log");
}

#[tokio::test]
async fn concurrent_appends_share_fsyncs_and_get_distinct_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let wal = wal.clone();
            tokio::spawn(async move { wal.append(&batch("t", &format!("{i}"))).await.unwrap() })
        })
        .collect();
    let mut offsets = Vec::new();
    for t in tasks {
        offsets.push(t.await.unwrap());
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..200).collect::<Vec<_>>());
    assert_eq!(wal.durable_end().next_offset, 200);
}

#[tokio::test]
async fn reopen_continues_after_the_last_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        for _ in 0..3 {
            wal.append(&batch("t", "x")).await.unwrap();
        }
    }
    let wal = open(dir.path());
    assert_eq!(wal.append(&batch("t", "y")).await.unwrap(), 3);
    assert_eq!(read_all(&wal, 0).len(), 4);
}

#[tokio::test]
async fn torn_tail_is_cut_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        for _ in 0..5 {
            wal.append(&batch("t", "kept")).await.unwrap();
        }
    }
    let seg = segment::path(dir.path(), 0);
    let good_len = std::fs::metadata(&seg).unwrap().len();
    // A frame whose header promises more bytes than were written: a torn write.
    let mut frame = Vec::new();
    segment::encode_frame(&mut frame, 5, b"this payload was only half written");
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&frame[..frame.len() - 10]).unwrap();
    drop(f);

    let wal = open(dir.path());
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len);
    assert_eq!(read_all(&wal, 0).len(), 5);
    assert_eq!(wal.append(&batch("t", "new")).await.unwrap(), 5);
}

#[tokio::test]
async fn a_frame_with_a_bad_checksum_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path());
        for _ in 0..3 {
            wal.append(&batch("t", "abc")).await.unwrap();
        }
    }
    let seg = segment::path(dir.path(), 0);
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // flip a bit in the last record's payload
    std::fs::write(&seg, &bytes).unwrap();
    let wal = open(dir.path());
    assert_eq!(read_all(&wal, 0).len(), 2);
}

#[tokio::test]
async fn segments_roll_and_trim_keeps_everything_not_yet_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = WalConfig::new(dir.path());
    cfg.segment_bytes = 200;
    let wal = Wal::open(cfg, WalMetrics::default()).unwrap();
    for i in 0..20 {
        wal.append(&batch("t", &format!("line {i}"))).await.unwrap();
    }
    let before = list_segments(dir.path()).unwrap();
    assert!(
        before.len() > 3,
        "expected several segments, got {before:?}"
    );
    wal.trim_below(10).unwrap();
    let after = list_segments(dir.path()).unwrap();
    assert!(after.len() < before.len());
    assert!(after[0] <= 10, "offset 10 must still be on disk: {after:?}");
    let rest = read_all(&wal, 10);
    assert_eq!(rest.len(), 10);
    assert_eq!(rest[0].0, 10);
    assert!(matches!(
        wal.reader(0).read(100),
        Err(Error::Trimmed { .. })
    ));
    // Trimming everything keeps the active segment.
    wal.trim_below(u64::MAX).unwrap();
    assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    assert_eq!(wal.append(&batch("t", "after")).await.unwrap(), 20);
}

#[tokio::test]
async fn appends_are_refused_while_the_bus_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = WalConfig::new(dir.path());
    cfg.max_retained_bytes = 100;
    let wal = Wal::open(cfg, WalMetrics::default()).unwrap();
    let mut ok = 0;
    let err = loop {
        match wal.append(&batch("t", "0123456789")).await {
            Ok(_) => ok += 1,
            Err(e) => break e,
        }
    };
    assert!(ok >= 1);
    assert!(matches!(err, Error::Full { .. }), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("bus is full"));
}

#[tokio::test]
async fn a_fresh_log_starts_at_the_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = WalConfig::new(dir.path());
    cfg.start_offset = 42;
    let wal = Wal::open(cfg.clone(), WalMetrics::default()).unwrap();
    assert_eq!(wal.append(&batch("t", "x")).await.unwrap(), 42);
    drop(wal);
    cfg.start_offset = 100;
    let wal = Wal::open(cfg, WalMetrics::default()).unwrap();
    assert_eq!(wal.append(&batch("t", "y")).await.unwrap(), 100);
    assert_eq!(read_all(&wal, 100).len(), 1);
}

#[tokio::test]
async fn a_reader_waits_for_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path());
    let mut reader = wal.reader(0);
    let waiter = tokio::spawn(async move {
        reader.wait().await.unwrap();
        reader.read(1 << 20).unwrap().len()
    });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    wal.append(&batch("t", "wake")).await.unwrap();
    assert_eq!(waiter.await.unwrap(), 1);
}
