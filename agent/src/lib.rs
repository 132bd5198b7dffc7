//! The node agent: follows every container log file under the kubelet's pod log directory,
//! turns CRI and docker json-file lines into log lines, and ships them to ingest with
//! end-to-end acknowledgement, so a checkpoint only moves past what ingest acknowledged.
//!
//! Shape: one reader thread owns every file ([`tailer::Tailer`]): it scans for files, reads
//! what was appended, cuts requests, writes the checkpoint before sending (so a replay after a
//! crash is the same request) and after acknowledgements. Requests go to async senders
//! ([`ship::Shipper`]), a bounded number at a time, and come back as acknowledgements. The
//! reader stops reading while the log data it holds reaches the memory budget: then the files
//! are the buffer, and memory does not grow with a backlog.

pub mod checkpoint;
pub mod discover;
pub mod format;
pub mod kubernetes;
pub mod metrics;
pub mod ship;
pub mod tailer;

use crate::checkpoint::{Checkpoints, FileCheckpoint};
use crate::discover::PodFile;
use crate::format::DecoderConfig;
use crate::metrics::AgentMetrics;
use crate::ship::{FileLabels, Outcome, Request, Shipper};
use crate::tailer::{CutConfig, Tailer};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Which files are shipped, as whom.
#[derive(Debug, Clone)]
pub enum Policy {
    /// Every file, as the configured tenant, labelled from its path (no Kubernetes API).
    All,
    /// Files of pods a LogPipeline selects, as their namespace (see [`kubernetes`]).
    Kubernetes {
        pods: kubernetes::PodCache,
        pipelines: Vec<kubernetes::Pipeline>,
    },
}

/// Settings of `logstream agent`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// kubelet's pod log directory (`/var/log/pods`).
    pub pods_dir: PathBuf,
    /// Base URL of the ingest API.
    pub ingest_url: String,
    /// Tenant sent as `X-Scope-OrgID`; none means ingest's default tenant.
    pub tenant: Option<String>,
    /// This node's name: a label on every stream and part of each file's replay identity.
    pub node: String,
    /// Where checkpoints are kept.
    pub state_dir: PathBuf,
    /// Cut a request once it holds this many bytes of lines.
    pub batch_bytes: usize,
    /// Cut a request at the latest this long after its first line was read.
    pub batch_wait: Duration,
    /// Log data held in memory (read, not yet acknowledged) at most, roughly: reading stops at
    /// this and goes on as acknowledgements free it.
    pub memory_budget: usize,
    pub max_line_bytes: usize,
    /// Full rescan of the pod log directory at least this often (notifications trigger one
    /// sooner).
    pub rescan: Duration,
    /// How often files are checked for new data without a notification.
    pub poll: Duration,
    /// Requests in flight at most (one per file at a time).
    pub max_requests: usize,
    pub request_timeout: Duration,
    /// How long a stop waits for requests in flight before it leaves them to the next start.
    pub shutdown_grace: Duration,
}

impl AgentConfig {
    /// Defaults for everything but where to read and where to ship.
    pub fn new(pods_dir: PathBuf, ingest_url: String, state_dir: PathBuf, node: String) -> Self {
        Self {
            pods_dir,
            ingest_url,
            tenant: None,
            node,
            state_dir,
            batch_bytes: 1 << 20,
            batch_wait: Duration::from_millis(500),
            memory_budget: 4 << 20,
            max_line_bytes: format::DEFAULT_MAX_LINE_BYTES,
            rescan: Duration::from_secs(10),
            poll: Duration::from_millis(250),
            max_requests: 8,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }

    pub fn validate(&self) -> Result<(), AgentError> {
        let bad = |m: String| Err(AgentError::Config(m));
        if !self.pods_dir.is_dir() {
            return bad(format!(
                "the pod log directory {} does not exist or is not a directory (--pods-dir)",
                self.pods_dir.display()
            ));
        }
        if self.batch_bytes == 0 || self.memory_budget < 2 * self.batch_bytes {
            return bad(format!(
                "the memory budget ({} bytes) must hold at least two requests of {} bytes",
                self.memory_budget, self.batch_bytes
            ));
        }
        if self.node.is_empty() || !self.node.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
            return bad(format!(
                "node name {:?} must be non-empty visible ASCII without '/' (--node or NODE_NAME)",
                self.node
            ));
        }
        if self.max_requests == 0 {
            return bad("max_requests must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("watch {path}: {source}")]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
    #[error("the reader thread failed: {0}")]
    Reader(String),
}

/// Health the HTTP server reports: ready once the first scan is done, alive while the reader
/// thread keeps turning.
#[derive(Debug, Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    heartbeat_s: Arc<AtomicI64>,
}

impl Health {
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The reader thread went round within the last 30 s.
    pub fn alive(&self) -> bool {
        let beat = self.heartbeat_s.load(Ordering::Relaxed);
        beat == 0 || now_s() - beat < 30
    }

    fn beat(&self) {
        self.heartbeat_s.store(now_s(), Ordering::Relaxed);
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

enum Event {
    /// The pod log directory changed (a file appeared, went or was renamed).
    Changed,
    /// A file was written to: read sooner than the poll.
    Written,
    Done {
        fp: u64,
        outcome: Outcome,
    },
    Stop,
}

/// Runs the agent until `shutdown`, then stops reading, waits up to the grace period for
/// requests in flight and writes the checkpoint.
pub async fn run(
    config: AgentConfig,
    policy: Policy,
    metrics: AgentMetrics,
    health: Health,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    config.validate()?;
    if let Policy::Kubernetes { pods, .. } = &policy {
        tracing::info!(node = %config.node, "waiting for the first list of this node's pods");
        tokio::select! {
            () = pods.ready() => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
    let store = checkpoint::Store::open(&config.state_dir)?;
    let checkpoints = store.load()?;
    let shipper = Shipper::new(
        &config.ingest_url,
        config.request_timeout,
        metrics.retries.clone(),
    )
    .map_err(AgentError::Config)?;
    let (events_tx, events_rx) = mpsc::channel::<Event>();

    // Notifications only wake the reader; the periodic rescan and poll are the safety net.
    let _watcher = watch(&config.pods_dir, events_tx.clone())?;

    let (send_tx, mut send_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Request)>();
    let senders = CancellationToken::new();
    let dispatcher = {
        let done = events_tx.clone();
        let cancel = senders.clone();
        let limit = Arc::new(tokio::sync::Semaphore::new(config.max_requests));
        tokio::spawn(async move {
            while let Some((fp, req)) = send_rx.recv().await {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let (shipper, done, cancel) = (shipper.clone(), done.clone(), cancel.clone());
                tokio::spawn(async move {
                    let outcome = shipper.send(&req, &cancel).await;
                    drop(permit);
                    let _ = done.send(Event::Done { fp, outcome });
                });
            }
        })
    };
    {
        let stop = events_tx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            let _ = stop.send(Event::Stop);
        });
    }
    let reader = Reader {
        cut: CutConfig {
            max_bytes: config.batch_bytes,
            max_wait: config.batch_wait,
        },
        decoder: DecoderConfig {
            max_line_bytes: config.max_line_bytes,
            multiline: None,
        },
        config,
        metrics,
        health,
        store,
        restored: Some(checkpoints),
        tailers: BTreeMap::new(),
        labels: HashMap::new(),
        events: events_rx,
        send: send_tx,
        rotate: 0,
        scan_due: true,
        policy,
        carried: BTreeMap::new(),
        encoder: ship::Encoder::default(),
    };
    let result = tokio::task::spawn_blocking(move || reader.run())
        .await
        .map_err(|e| AgentError::Reader(e.to_string()))?;
    senders.cancel();
    dispatcher.abort();
    result
}

fn watch(
    dir: &std::path::Path,
    tx: mpsc::Sender<Event>,
) -> Result<notify::RecommendedWatcher, AgentError> {
    use notify::{EventKind, RecursiveMode, Watcher, event::ModifyKind};
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else {
            // A lost notification (queue overflow): rescan.
            let _ = tx.send(Event::Changed);
            return;
        };
        let event = match ev.kind {
            EventKind::Modify(ModifyKind::Data(_)) => Event::Written,
            EventKind::Access(_) => return,
            _ => Event::Changed,
        };
        let _ = tx.send(event);
    })
    .map_err(|source| AgentError::Watch {
        path: dir.to_path_buf(),
        source,
    })?;
    w.watch(dir, RecursiveMode::Recursive)
        .map_err(|source| AgentError::Watch {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(w)
}

struct Reader {
    config: AgentConfig,
    cut: CutConfig,
    decoder: DecoderConfig,
    metrics: AgentMetrics,
    health: Health,
    store: checkpoint::Store,
    /// The checkpoint read at start, until the first scan has matched it to files.
    restored: Option<Checkpoints>,
    tailers: BTreeMap<u64, Tailer>,
    /// Labels and tenant of each followed file, by fingerprint.
    labels: HashMap<u64, (FileLabels, Option<String>)>,
    events: mpsc::Receiver<Event>,
    send: tokio::sync::mpsc::UnboundedSender<(u64, Request)>,
    /// Where the next read round starts, so every file gets its turn under the budget.
    rotate: usize,
    /// Scan at the next turn: something changed, or a file was let go whose path may hold a
    /// new file already (truncated in place).
    scan_due: bool,
    policy: Policy,
    /// Checkpoints of files present but not followed, kept until they are or go.
    carried: BTreeMap<String, FileCheckpoint>,
    /// Request bodies are built with its reused buffers.
    encoder: ship::Encoder,
}

impl Reader {
    fn run(mut self) -> Result<(), AgentError> {
        let mut last_scan: Option<Instant> = None;
        self.scan_due = true;
        let mut stopping: Option<Instant> = None;
        loop {
            self.health.beat();
            let now = Instant::now();
            // Events first: acknowledgements free memory and move checkpoints.
            let mut dirty = false;
            while let Ok(ev) = self.events.try_recv() {
                match ev {
                    Event::Changed => self.scan_due = true,
                    Event::Written => {}
                    Event::Done { fp, outcome } => {
                        self.done(fp, outcome);
                        dirty = true;
                    }
                    Event::Stop => {
                        stopping.get_or_insert(now);
                    }
                }
            }
            if let Some(since) = stopping {
                let inflight = self.tailers.values().any(|t| t.inflight.is_some());
                if !inflight || now.duration_since(since) >= self.config.shutdown_grace {
                    self.save()?;
                    tracing::info!(
                        files = self.tailers.len(),
                        unacknowledged = self
                            .tailers
                            .values()
                            .filter(|t| t.inflight.is_some())
                            .count(),
                        "agent stopped; checkpoint written"
                    );
                    return Ok(());
                }
            } else {
                if self.scan_due
                    || last_scan.is_none_or(|t| now.duration_since(t) >= self.config.rescan)
                {
                    self.scan_due = false;
                    self.scan()?;
                    last_scan = Some(now);
                    self.health.ready.store(true, Ordering::Relaxed);
                }
                let read = self.read_round(now);
                let cuts = self.cut_round(now);
                if cuts.is_empty() && dirty {
                    self.save()?;
                } else if !cuts.is_empty() {
                    // Write-ahead: the checkpoint names each request's end before it leaves.
                    self.save()?;
                    for c in cuts {
                        let _ = self.send.send(c);
                    }
                }
                self.set_gauges();
                if read > 0 {
                    continue;
                }
            }
            if dirty && stopping.is_some() {
                continue;
            }
            // Nothing to read: sleep until an event, a deadline or the poll.
            let mut wait = self.config.poll;
            let now = Instant::now();
            for t in self.tailers.values() {
                if let Some(d) = t.next_deadline(&self.cut) {
                    wait = wait.min(d.saturating_duration_since(now));
                }
            }
            match self.events.recv_timeout(wait.max(Duration::from_millis(1))) {
                Ok(Event::Changed) => self.scan_due = true,
                Ok(Event::Written) => {}
                Ok(Event::Done { fp, outcome }) => {
                    self.done(fp, outcome);
                    self.save()?;
                }
                Ok(Event::Stop) => {
                    stopping.get_or_insert(Instant::now());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Matches the files on disk to tailers: new files get one (resuming from the checkpoint
    /// when it knows them), renamed ones keep theirs, vanished ones are marked gone.
    fn scan(&mut self) -> Result<(), AgentError> {
        let files = match discover::scan(&self.config.pods_dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.config.pods_dir.display(), error = %e, "cannot list the pod log directory");
                return Ok(());
            }
        };
        let by_inode: HashMap<(u64, u64), u64> = self
            .tailers
            .iter()
            .map(|(fp, t)| (t.dev_ino, *fp))
            .collect();
        let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
        // Fingerprints of every listed file, followed or not.
        let mut present: std::collections::HashSet<String> = std::collections::HashSet::new();
        for f in files {
            let Ok(meta) = std::fs::metadata(&f.path) else {
                continue;
            };
            if let Some(fp) = by_inode.get(&(meta.dev(), meta.ino())) {
                seen.insert(*fp);
                if let Some(t) = self.tailers.get_mut(fp)
                    && t.file.path != f.path
                {
                    tracing::debug!(from = %t.file.path.display(), to = %f.path.display(), "file renamed");
                    t.file = f;
                }
                continue;
            }
            let opened = match tailer::open_fingerprinted(&f.path) {
                Ok(Some(o)) => o,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(path = %f.path.display(), error = %e, "cannot open log file");
                    continue;
                }
            };
            let (fp, handle) = opened;
            present.insert(discover::hex(fp));
            if self.tailers.contains_key(&fp) {
                // Same first line, another inode: a copy (copytruncate) or a duplicate; the
                // tailer turns to it if its own file is truncated.
                continue;
            }
            let (labels, tenant, multiline) = match self.decide(&f) {
                kubernetes::Decision::Ship {
                    tenant,
                    labels,
                    multiline,
                } => (FileLabels(labels), tenant, multiline),
                kubernetes::Decision::Skip | kubernetes::Decision::Unknown => continue,
            };
            let decoder = DecoderConfig {
                multiline: multiline.map(|m| m.0),
                ..self.decoder.clone()
            };
            let key = discover::hex(fp);
            let restored = self
                .restored
                .as_mut()
                .and_then(|c| c.files.remove(&key))
                .or_else(|| self.carried.remove(&key));
            let (acked, inflight) = restored.map_or((0, None), |c| (c.acked, c.inflight));
            match Tailer::open(fp, f.clone(), handle, acked, inflight, decoder) {
                Ok(t) => {
                    tracing::info!(path = %f.path.display(), fingerprint = %key, from = acked, %tenant, "following");
                    self.labels.insert(fp, (labels, Some(tenant)));
                    seen.insert(fp);
                    self.tailers.insert(fp, t);
                }
                Err(e) => {
                    tracing::warn!(path = %f.path.display(), error = %e, "cannot follow log file")
                }
            }
        }
        for (fp, t) in &mut self.tailers {
            if !seen.contains(fp) && !t.gone {
                tracing::debug!(path = %t.file.path.display(), "file no longer listed; reading it to its end");
                t.gone = true;
            }
        }
        // Checkpoints of files that are there but not followed (not selected now, pod not
        // cached yet) are kept for when they are; the others' files went while the agent was
        // down or unselected.
        let mut gone = Vec::new();
        if let Some(restored) = self.restored.take() {
            self.carried.extend(restored.files);
        }
        self.carried.retain(|fp, c| {
            let keep = present.contains(fp);
            if !keep {
                gone.push((fp.clone(), c.clone()));
            }
            keep
        });
        for (fp, c) in gone {
            let lost = c.size.saturating_sub(c.acked);
            tracing::warn!(path = %c.path.display(), fingerprint = %fp, lost_bytes = lost, "a file in the checkpoint is gone; what was not read of it is lost");
            let tenant = match &self.policy {
                Policy::All => self.config.tenant.clone(),
                Policy::Kubernetes { .. } => {
                    PodFile::parse(&self.config.pods_dir, &c.path).map(|f| f.namespace)
                }
            };
            let tenant = tenant.unwrap_or_else(|| "default".into());
            self.metrics
                .lost_bytes
                .get_or_create(&AgentMetrics::tenant(&tenant))
                .inc_by(lost);
        }
        Ok(())
    }

    /// Whether and how to ship a newly found file.
    fn decide(&self, f: &PodFile) -> kubernetes::Decision {
        match &self.policy {
            Policy::All => kubernetes::Decision::Ship {
                tenant: self
                    .config
                    .tenant
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                labels: vec![
                    ("namespace".into(), f.namespace.clone()),
                    ("pod".into(), f.pod.clone()),
                    ("container".into(), f.container.clone()),
                    ("node".into(), self.config.node.clone()),
                ],
                multiline: None,
            },
            Policy::Kubernetes { pods, pipelines } => kubernetes::decide(
                f,
                pods.get(&f.namespace, &f.pod).as_deref(),
                pipelines,
                &self.config.node,
            ),
        }
    }

    fn tenant_label(&self, fp: u64) -> metrics::TenantLabels {
        let t = self
            .labels
            .get(&fp)
            .and_then(|(_, t)| t.clone())
            .unwrap_or_else(|| "default".into());
        AgentMetrics::tenant(&t)
    }

    fn memory(&self) -> usize {
        self.tailers.values().map(Tailer::memory).sum()
    }

    /// Reads from every file that wants it, in turn, while memory allows. Returns bytes read.
    fn read_round(&mut self, now: Instant) -> u64 {
        let mut total = 0;
        let mut memory = self.memory();
        let fps: Vec<u64> = self.tailers.keys().copied().collect();
        if fps.is_empty() {
            return 0;
        }
        let start = self.rotate % fps.len();
        self.rotate = self.rotate.wrapping_add(1);
        let wall = wall_ns();
        for i in 0..fps.len() {
            let fp = fps[(start + i) % fps.len()];
            if memory >= self.config.memory_budget {
                break;
            }
            let label = self.tenant_label(fp);
            let Some(t) = self.tailers.get_mut(&fp) else {
                continue;
            };
            if !t.wants_read(&self.cut) {
                t.expire(now);
                continue;
            }
            let before = t.memory();
            let malformed_before = t.malformed();
            // A file's pending lines stay within one request's size: reading further would
            // only hold more lines while the request before them waits.
            let room = (self.config.memory_budget - memory)
                .min(self.config.batch_bytes.saturating_sub(t.pending_bytes()))
                .max(1);
            match t.read(room, now, wall) {
                Ok(step) => {
                    total += step.bytes;
                    self.metrics
                        .bytes_read
                        .get_or_create(&label)
                        .inc_by(step.bytes);
                    self.metrics
                        .lines_read
                        .get_or_create(&label)
                        .inc_by(step.lines);
                    let bad = t.malformed() - malformed_before;
                    if bad > 0 {
                        self.metrics
                            .lines_malformed
                            .get_or_create(&label)
                            .inc_by(bad);
                    }
                    if step.truncated {
                        self.truncated(fp);
                    } else if step.eof && t.gone {
                        t.finish(now);
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %t.file.path.display(), error = %e, "read failed; retrying");
                }
            }
            if let Some(t) = self.tailers.get(&fp) {
                memory = memory + t.memory() - before.min(memory);
            }
        }
        total
    }

    /// The file shrank under the tailer: go on in its copy, or count what is lost.
    fn truncated(&mut self, fp: u64) {
        let Some(t) = self.tailers.get(&fp) else {
            return;
        };
        let dir = t.file.path.parent().map(std::path::Path::to_path_buf);
        let own = t.dev_ino;
        let mut copy = None;
        if let Some(dir) = dir
            && let Ok(entries) = std::fs::read_dir(&dir)
        {
            for e in entries.flatten() {
                let Some(pf) = PodFile::parse(&self.config.pods_dir, &e.path()) else {
                    continue;
                };
                let Ok(Some((other, handle))) = tailer::open_fingerprinted(&pf.path) else {
                    continue;
                };
                let Ok(meta) = handle.metadata() else {
                    continue;
                };
                if other == fp && (meta.dev(), meta.ino()) != own {
                    copy = Some((pf, handle));
                    break;
                }
            }
        }
        let label = self.tenant_label(fp);
        let Some(t) = self.tailers.get_mut(&fp) else {
            return;
        };
        match copy {
            Some((pf, handle)) => {
                tracing::info!(from = %t.file.path.display(), to = %pf.path.display(), "file truncated after a copy; reading on in the copy");
                if let Err(e) = t.switch_to(pf, handle) {
                    tracing::warn!(error = %e, "cannot read the copy");
                }
            }
            None => {
                let lost = t.size.saturating_sub(t.read_pos());
                tracing::warn!(path = %t.file.path.display(), lost_bytes = lost, "file truncated before it was read to its end");
                self.metrics.lost_bytes.get_or_create(&label).inc_by(lost);
                t.ended = true;
                t.finish(Instant::now());
            }
        }
    }

    /// Requests due now, with their file's fingerprint.
    fn cut_round(&mut self, now: Instant) -> Vec<(u64, Request)> {
        let mut out = Vec::new();
        let mut finished = Vec::new();
        for (fp, t) in &mut self.tailers {
            let flush = t.gone && t.at_eof || t.ended;
            if let Some(c) = t.cut(&self.cut, now, flush) {
                let (labels, tenant) = self
                    .labels
                    .get(fp)
                    .cloned()
                    .unwrap_or_else(|| (FileLabels(Vec::new()), None));
                let lines = c.lines.len() as u64;
                let body = self.encoder.encode(&labels, &c.lines);
                drop(c.lines);
                t.body_built(body.len());
                let label = AgentMetrics::tenant(tenant.as_deref().unwrap_or("default"));
                self.metrics.lines_sent.get_or_create(&label).inc_by(lines);
                out.push((
                    *fp,
                    Request {
                        tenant,
                        source: format!("{}/{}", self.config.node, discover::hex(*fp)),
                        seq: c.end,
                        body,
                        lines,
                        bytes: c.bytes as u64,
                    },
                ));
            } else if t.drained() {
                finished.push(*fp);
            }
        }
        for fp in finished {
            if let Some(t) = self.tailers.remove(&fp) {
                tracing::info!(path = %t.file.path.display(), "file read to its end and acknowledged; let go");
                self.metrics.lag_bytes.remove(&metrics::FileLabels {
                    path: t.file.path.display().to_string(),
                });
                self.scan_due = true;
            }
            self.labels.remove(&fp);
        }
        out
    }

    fn done(&mut self, fp: u64, outcome: Outcome) {
        let label = self.tenant_label(fp);
        let Some(t) = self.tailers.get_mut(&fp) else {
            return;
        };
        let (lines, bytes) = t.inflight_size();
        match outcome {
            Outcome::Acked => {
                self.metrics.lines_acked.get_or_create(&label).inc_by(lines);
                self.metrics.bytes_acked.get_or_create(&label).inc_by(bytes);
                t.acknowledged();
            }
            Outcome::Rejected(status, msg) => {
                tracing::error!(path = %t.file.path.display(), status, error = %msg, lines, "ingest refused a request for good; its lines are dropped");
                self.metrics
                    .lines_rejected
                    .get_or_create(&label)
                    .inc_by(lines);
                t.acknowledged();
            }
            // Stopping: the checkpoint keeps the request in flight for the next start.
            Outcome::Cancelled => {}
        }
    }

    fn save(&mut self) -> Result<(), AgentError> {
        let mut c = self.restored.clone().unwrap_or_default();
        c.version = checkpoint::VERSION;
        c.files
            .extend(self.carried.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (fp, t) in &self.tailers {
            c.files.insert(
                discover::hex(*fp),
                FileCheckpoint {
                    path: t.file.path.clone(),
                    acked: t.acked,
                    inflight: t.inflight.map(|i| i.end),
                    size: t.size,
                },
            );
        }
        self.store.save(&c)?;
        self.metrics.checkpoint_writes.inc();
        Ok(())
    }

    fn set_gauges(&self) {
        self.metrics.files.set(self.tailers.len() as i64);
        self.metrics.memory_bytes.set(self.memory() as i64);
        // Rebuilt each time: files renamed or let go leave no stale series.
        self.metrics.lag_bytes.clear();
        for t in self.tailers.values() {
            self.metrics
                .lag_bytes
                .get_or_create(&metrics::FileLabels {
                    path: t.file.path.display().to_string(),
                })
                .set(t.lag_bytes() as i64);
        }
    }
}
