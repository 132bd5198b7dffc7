//! The LogPipeline reconciler: checks each pipeline against the LogStream it names and says in
//! its status whether it is merged (the LogStream reconciler does the merging, with the same
//! check, so both agree on which pipelines count).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use logstream_crds::conditions::{self, READY, reasons, status};
use logstream_crds::{LogPipeline, LogPipelineStatus, LogStream};

use chrono::{DateTime, Utc};
use logstream_processor::pipeline::report::{self, AppliedReport};

use crate::controller::{Context, Error};
use crate::status::{ConditionParts, conditions};
use crate::validate;

const RESYNC: Duration = Duration::from_secs(300);

/// The conditions of a pipeline, given the LogStream it names (if it exists).
pub fn evaluate(p: &LogPipeline, log_stream: Option<&LogStream>) -> [ConditionParts; 3] {
    let target = crate::controller::log_stream_of(p);
    let target = format!(
        "{}/{}",
        target.namespace.as_deref().unwrap_or_default(),
        target.name
    );
    let Some(ls) = log_stream else {
        let message = format!(
            "LogStream {target} does not exist: check spec.logStreamRef (its namespace defaults \
             to the LogPipeline's own)"
        );
        return [
            (
                status::FALSE,
                reasons::LOG_STREAM_NOT_FOUND,
                message.clone(),
            ),
            (status::FALSE, reasons::LOG_STREAM_NOT_FOUND, String::new()),
            (status::TRUE, reasons::LOG_STREAM_NOT_FOUND, message),
        ];
    };
    if let Err(invalid) = validate::pipeline(&p.spec, &ls.spec) {
        return [
            (status::FALSE, invalid.reason, invalid.message.clone()),
            (status::FALSE, invalid.reason, String::new()),
            (status::TRUE, invalid.reason, invalid.message),
        ];
    }
    let ls_conditions = ls
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    if !ls.spec.agent.enabled {
        let message = format!(
            "merged into the config of LogStream {target}, but its agent is disabled \
             (spec.agent.enabled: false): nothing collects these pods' logs"
        );
        return [
            (
                status::FALSE,
                reasons::LOG_STREAM_NOT_READY,
                message.clone(),
            ),
            (status::FALSE, reasons::RECONCILED, String::new()),
            (status::TRUE, reasons::LOG_STREAM_NOT_READY, message),
        ];
    }
    if !conditions::is_true(ls_conditions, READY) {
        let why = conditions::find(ls_conditions, READY)
            .map(|c| c.message.clone())
            .unwrap_or_else(|| "it has no status yet".into());
        return [
            (
                status::FALSE,
                reasons::LOG_STREAM_NOT_READY,
                format!("merged into the config of LogStream {target}, which is not ready: {why}"),
            ),
            (
                status::TRUE,
                reasons::LOG_STREAM_NOT_READY,
                format!("waiting for LogStream {target}"),
            ),
            (status::FALSE, reasons::RECONCILED, String::new()),
        ];
    }
    [
        (
            status::TRUE,
            reasons::RECONCILED,
            format!("merged into the config of LogStream {target}"),
        ),
        (status::FALSE, reasons::RECONCILED, String::new()),
        (status::FALSE, reasons::RECONCILED, String::new()),
    ]
}

pub async fn reconcile(p: Arc<LogPipeline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&p, &ctx).await;
    ctx.metrics.reconciled(
        "LogPipeline",
        started.elapsed(),
        result.as_ref().err().map(Error::category),
    );
    result
}

async fn reconcile_inner(p: &LogPipeline, ctx: &Context) -> Result<Action, Error> {
    if p.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let target = crate::controller::log_stream_of(p);
    let ns = target.namespace.clone().unwrap_or_default();
    let ls = Api::<LogStream>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&target.name)
        .await
        .map_err(|source| Error::Kube {
            op: format!("get logstream {ns}/{}", target.name),
            source,
        })?;
    let generation = p.metadata.generation.unwrap_or(0);
    let previous = p
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let evaluated = evaluate(p, ls.as_ref());
    // What the processors apply, once the pipeline is merged into the config they read.
    let reports = match &ls {
        Some(ls) if validate::pipeline(&p.spec, &ls.spec).is_ok() => {
            processor_reports(ls, ctx).await
        }
        _ => None,
    };
    let applied = reports.map(|r| applied(p, &r, chrono::Utc::now()));
    let new = LogPipelineStatus {
        observed_generation: Some(generation),
        conditions: conditions(previous, generation, &now, evaluated),
        applied_generation: applied.and_then(|a| a.generation),
        updated_processors: applied.map(|a| a.updated),
        processors: applied.map(|a| a.running),
    };
    if p.status.as_ref() != Some(&new) {
        let api: Api<LogPipeline> =
            Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
        api.patch_status(
            &p.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": new })),
        )
        .await
        .map_err(|source| Error::Kube {
            op: format!("update status of logpipeline {}", p.name_any()),
            source,
        })?;
    }
    // The processors change without the API server knowing (they start, stop, reload), so
    // their reports are looked at again: closely while a change spreads.
    match applied {
        Some(a) if a.running > 0 && a.updated < a.running => Ok(Action::requeue(PROGRESS)),
        Some(_) => Ok(Action::requeue(WATCH_PROCESSORS)),
        None => Ok(Action::requeue(RESYNC)),
    }
}

/// How often a pipeline the running processors do not all apply yet is looked at again.
const PROGRESS: Duration = Duration::from_secs(10);

/// How often the processors' reports are looked at otherwise (processors scaled, stopped).
const WATCH_PROCESSORS: Duration = Duration::from_secs(60);

/// How long one read of a LogStream's reports serves all of its LogPipelines: the bucket is
/// read at most once per LogStream per this, however many pipelines it has.
pub const REPORTS_FRESH: Duration = Duration::from_secs(8);

/// What the running processors apply of one pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The oldest generation any running processor applies; `None` while one applies none.
    pub generation: Option<i64>,
    /// Running processors applying `metadata.generation`.
    pub updated: i32,
    /// Running processors.
    pub running: i32,
}

/// What the processors of `reports` (fresh ones only, as of `now`) apply of `p`.
pub fn applied(p: &LogPipeline, reports: &[AppliedReport], now: DateTime<Utc>) -> Applied {
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let wanted = p.metadata.generation.unwrap_or(0);
    let running: Vec<Option<i64>> = reports
        .iter()
        .filter(|r| r.is_fresh(now))
        .map(|r| r.generation_of(&ns, &name))
        .collect();
    let generation = if running.is_empty() {
        None
    } else {
        running
            .iter()
            .copied()
            .collect::<Option<Vec<i64>>>()
            .and_then(|g| g.into_iter().min())
    };
    Applied {
        generation,
        updated: running.iter().filter(|g| **g == Some(wanted)).count() as i32,
        running: running.len() as i32,
    }
}

/// The processors' reports in `ls`'s object storage; `None` when the storage is a local path
/// (only the pods see it) or cannot be read now (logged: it is status, not worth failing for).
async fn processor_reports(ls: &LogStream, ctx: &Context) -> Option<Arc<Vec<AppliedReport>>> {
    let url = ls.spec.storage.url.trim();
    if !url.contains("://") || url.starts_with("file://") {
        return None;
    }
    let key = format!("{}/{}", ls.namespace().unwrap_or_default(), ls.name_any());
    if let Some(cached) = ctx.cached_reports(&key, REPORTS_FRESH) {
        return Some(cached);
    }
    let mut options = ls.spec.storage.options.clone();
    match crate::controller::credentials(ls, &ctx.client).await {
        Ok(Ok(creds)) => options.extend(creds),
        // The LogStream's own status says what is wrong with its Secret.
        _ => return None,
    }
    let read = async {
        let store = logstream_store::Store::from_url(url, &options)?;
        report::read_all(&store).await
    };
    match read.await {
        Ok(r) => {
            let r = Arc::new(r);
            ctx.cache_reports(key, r.clone());
            Some(r)
        }
        Err(e) => {
            tracing::warn!(logstream = %ls.name_any(), error = %e, "cannot read the processors' pipeline reports");
            None
        }
    }
}

pub fn error_policy(p: Arc<LogPipeline>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(logpipeline = %p.name_any(), namespace = ?p.namespace(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstream_crds::logpipeline::{LogPipelineSpec, Parser, PipelineRetention};
    use logstream_crds::{LogStreamSpec, LogStreamStatus};

    fn pipeline(spec: LogPipelineSpec) -> LogPipeline {
        let mut p = LogPipeline::new("web", spec);
        p.metadata.namespace = Some("shop".into());
        p
    }

    fn log_stream(ready: bool) -> LogStream {
        let mut ls = LogStream::new("main", LogStreamSpec::new("s3://logs"));
        ls.metadata.namespace = Some("shop".into());
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let st = if ready { status::TRUE } else { status::FALSE };
        ls.status = Some(LogStreamStatus {
            conditions: conditions(
                &[],
                1,
                &now,
                [
                    (st, reasons::RECONCILED, "all pods ready".into()),
                    (status::FALSE, reasons::RECONCILED, String::new()),
                    (status::FALSE, reasons::RECONCILED, String::new()),
                ],
            ),
            ..LogStreamStatus::default()
        });
        ls
    }

    #[test]
    fn a_valid_pipeline_of_a_ready_log_stream_is_ready() {
        let [ready, _, degraded] = evaluate(
            &pipeline(LogPipelineSpec::new("main")),
            Some(&log_stream(true)),
        );
        assert_eq!(ready.0, "True");
        assert_eq!(ready.2, "merged into the config of LogStream shop/main");
        assert_eq!(degraded.0, "False");
    }

    #[test]
    fn a_missing_log_stream_is_named() {
        let mut spec = LogPipelineSpec::new("main");
        spec.log_stream_ref.namespace = Some("logging".into());
        let [ready, _, degraded] = evaluate(&pipeline(spec), None);
        assert_eq!((ready.0, ready.1), ("False", "LogStreamNotFound"));
        assert!(
            ready.2.starts_with("LogStream logging/main does not exist"),
            "{}",
            ready.2
        );
        assert_eq!(degraded.0, "True");
    }

    #[test]
    fn invalid_specs_say_why_and_a_not_ready_log_stream_waits() {
        let mut spec = LogPipelineSpec::new("main");
        spec.retention = Some(PipelineRetention { days: 90 });
        let [ready, _, _] = evaluate(&pipeline(spec), Some(&log_stream(true)));
        assert_eq!(ready.1, "RetentionAboveMaximum");
        let mut spec = LogPipelineSpec::new("main");
        spec.parsers = vec![Parser::regex("(?P<a>[")];
        let [ready, _, _] = evaluate(&pipeline(spec), Some(&log_stream(true)));
        assert_eq!(ready.1, "InvalidSpec");
        let [ready, progressing, _] = evaluate(
            &pipeline(LogPipelineSpec::new("main")),
            Some(&log_stream(false)),
        );
        assert_eq!((ready.0, ready.1), ("False", "LogStreamNotReady"));
        assert_eq!(progressing.0, "True");
    }

    #[test]
    fn applied_is_the_oldest_generation_of_the_running_processors() {
        use logstream_processor::pipeline::report::AppliedPipeline;
        let now = chrono::Utc::now();
        let report = |instance: &str, age: i64, generation: Option<i64>| AppliedReport {
            instance: instance.into(),
            updated: now - chrono::Duration::seconds(age),
            pipelines: generation
                .map(|generation| AppliedPipeline {
                    namespace: "shop".into(),
                    name: "web".into(),
                    generation,
                })
                .into_iter()
                .collect(),
        };
        let mut p = pipeline(LogPipelineSpec::new("main"));
        p.metadata.generation = Some(3);
        let got = |reports: &[AppliedReport]| applied(&p, reports, now);
        assert_eq!(
            got(&[report("p-0", 5, Some(3)), report("p-1", 20, Some(2))]),
            Applied {
                generation: Some(2),
                updated: 1,
                running: 2
            },
            "mid-change: the oldest generation in force"
        );
        assert_eq!(
            got(&[report("p-0", 5, Some(3)), report("p-1", 600, Some(1))]),
            Applied {
                generation: Some(3),
                updated: 1,
                running: 1
            },
            "a processor silent for 10 minutes is gone"
        );
        assert_eq!(
            got(&[report("p-0", 5, Some(3)), report("p-1", 5, None)]).generation,
            None,
            "one running processor does not apply it yet"
        );
        assert_eq!(
            got(&[]),
            Applied {
                generation: None,
                updated: 0,
                running: 0
            }
        );
    }
}
