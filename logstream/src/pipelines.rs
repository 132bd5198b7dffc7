//! Where the processors' LogPipelines come from, and how a change reaches them while they run.
//!
//! - `logstream standalone --pipelines FILE`: FILE holds LogPipeline resources as YAML, the
//!   documents a tenant would `kubectl apply` (several separated by `---`). The tenant of a
//!   pipeline is its namespace; one without a namespace belongs to the server's default
//!   tenant. `metadata.generation` is what the tenant would see in the cluster; a file rarely
//!   has one, so a pipeline without it counts 1, 2, 3... each time its spec changes.
//! - The distributed processor and query roles: the `[[pipelines]]` of their config file
//!   (the operator's ConfigMap), each with its generation.
//!
//! The file is read again every [`RELOAD_INTERVAL`]; when what it declares changed, the new
//! pipelines are compiled and, if they all compile, handed to the processors, which apply
//! them from the next chunk they read (see `logstream_processor::pipeline::plan`). A file
//! that does not parse or compile changes nothing: the error is logged, counted
//! (`logstream_pipelines_reload_errors_total`) and the pipelines in force stay.

use anyhow::Context;
use logstream_crds::LogPipeline;
use logstream_processor::ProcessorMetrics;
use logstream_processor::pipeline::PlansWatch;
use logstream_processor::pipeline::plan::{PipelineSource, Plans};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the pipelines' file is read again.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Where pipelines are read from.
#[derive(Debug, Clone)]
pub enum PipelineFile {
    /// LogPipeline YAML documents; `default_tenant` owns those without a namespace.
    Yaml {
        path: PathBuf,
        default_tenant: String,
    },
    /// A distributed role's TOML config file (its `[[pipelines]]`).
    Config(PathBuf),
}

/// Reload counters.
#[derive(Debug, Clone, Default)]
struct ReloadMetrics {
    reloads: Counter,
    errors: Counter,
    pipelines: Gauge,
}

/// Parses LogPipeline YAML documents. Errors name the document.
pub fn parse_yaml(text: &str, default_tenant: &str) -> anyhow::Result<Vec<PipelineSource>> {
    let docs: Vec<LogPipeline> =
        serde_saphyr::from_multiple(text).context("not LogPipeline YAML documents")?;
    let mut out = Vec::with_capacity(docs.len());
    let mut seen = std::collections::HashSet::new();
    for (i, d) in docs.into_iter().enumerate() {
        let name = d
            .metadata
            .name
            .clone()
            .with_context(|| format!("document {}: metadata.name is missing", i + 1))?;
        let namespace = d
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| default_tenant.to_string());
        anyhow::ensure!(
            seen.insert((namespace.clone(), name.clone())),
            "document {}: LogPipeline {namespace}/{name} is declared twice",
            i + 1
        );
        out.push(PipelineSource {
            namespace,
            name,
            generation: d.metadata.generation.unwrap_or(0),
            spec: d.spec,
        });
    }
    Ok(out)
}

/// Reads `file` as it is now.
fn read(file: &PipelineFile) -> anyhow::Result<Vec<PipelineSource>> {
    match file {
        PipelineFile::Yaml {
            path,
            default_tenant,
        } => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            parse_yaml(&text, default_tenant).with_context(|| format!("{}", path.display()))
        }
        PipelineFile::Config(path) => {
            let cfg = crate::config::Config::from_file(path).map_err(anyhow::Error::msg)?;
            Ok(cfg
                .pipelines
                .into_iter()
                .map(|p| PipelineSource {
                    namespace: p.namespace,
                    name: p.name,
                    generation: p.generation,
                    spec: p.spec,
                })
                .collect())
        }
    }
}

/// Numbers pipelines without a generation: 1, then one more each time their spec changes.
#[derive(Debug, Default)]
struct Generations {
    last: HashMap<(String, String), (i64, logstream_crds::LogPipelineSpec)>,
}

impl Generations {
    /// The generation `s` gets: its own, or the last one given to its name (one more when
    /// the spec changed since).
    fn next(&self, s: &PipelineSource) -> i64 {
        if s.generation > 0 {
            return s.generation;
        }
        match self.last.get(&(s.namespace.clone(), s.name.clone())) {
            Some((g, spec)) if *spec == s.spec => *g,
            Some((g, _)) => g + 1,
            None => 1,
        }
    }

    /// Numbers `sources` and remembers what was given.
    fn assign(&mut self, sources: &mut [PipelineSource]) {
        for s in sources.iter_mut() {
            let numbered = s.generation > 0;
            s.generation = self.next(s);
            if !numbered {
                self.last.insert(
                    (s.namespace.clone(), s.name.clone()),
                    (s.generation, s.spec.clone()),
                );
            }
        }
    }

    /// `sources` numbered as `assign` would, without remembering it.
    fn probe(&self, sources: &mut [PipelineSource]) {
        for s in sources.iter_mut() {
            s.generation = self.next(s);
        }
    }
}

/// Loads the pipelines of `file` (failing when they do not parse or compile: a server must
/// not start with rules it cannot apply) and keeps them current while `shutdown` is not
/// cancelled.
pub fn start(
    file: PipelineFile,
    registry: &mut Registry,
    on_change: impl Fn(&Plans) + Send + 'static,
    shutdown: CancellationToken,
) -> anyhow::Result<PlansWatch> {
    let metrics = ReloadMetrics::default();
    let r = registry.sub_registry_with_prefix("logstream_pipelines");
    r.register(
        "reloads",
        "Times the pipelines changed and the new ones took over",
        metrics.reloads.clone(),
    );
    r.register(
        "reload_errors",
        "Times the pipelines' file changed into something that does not parse or compile (the pipelines in force stay)",
        metrics.errors.clone(),
    );
    r.register(
        "in_force",
        "LogPipelines in force",
        metrics.pipelines.clone(),
    );
    let mut generations = Generations::default();
    let mut sources = read(&file)?;
    generations.assign(&mut sources);
    let plans = Plans::compile(&sources).map_err(anyhow::Error::new)?;
    metrics.pipelines.set(sources.len() as i64);
    on_change(&plans);
    tracing::info!(pipelines = sources.len(), "LogPipelines loaded");
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(plans));
    tokio::spawn(async move {
        let mut current = sources;
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RELOAD_INTERVAL) => {}
            }
            let mut next = match read(&file) {
                Ok(n) => {
                    last_error = None;
                    n
                }
                Err(e) => {
                    // Once per distinct error, not once per interval.
                    let text = format!("{e:#}");
                    if last_error.as_deref() != Some(text.as_str()) {
                        metrics.errors.inc();
                        tracing::warn!(error = %text, "cannot read the LogPipelines; the ones in force stay");
                        last_error = Some(text);
                    }
                    continue;
                }
            };
            // Compare before numbering, so an unchanged file keeps its generations.
            let mut probe = next.clone();
            generations.probe(&mut probe);
            if probe == current {
                continue;
            }
            generations.assign(&mut next);
            match Plans::compile(&next) {
                Ok(plans) => {
                    tracing::info!(
                        pipelines = next.len(),
                        "LogPipelines changed; the new ones apply from the next chunk read"
                    );
                    metrics.reloads.inc();
                    metrics.pipelines.set(next.len() as i64);
                    on_change(&plans);
                    current = next;
                    if tx.send(Arc::new(plans)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    metrics.errors.inc();
                    tracing::warn!(error = %e, "the changed LogPipelines do not compile; the ones in force stay");
                    current = next;
                }
            }
        }
    });
    Ok(rx)
}

/// The pipelines of `file` (none without one), kept current until `shutdown`; each version
/// in force is also given to the processor's metrics.
pub fn load(
    file: Option<PipelineFile>,
    registry: &mut Registry,
    metrics: &ProcessorMetrics,
    shutdown: CancellationToken,
) -> anyhow::Result<PlansWatch> {
    let Some(file) = file else {
        return Ok(logstream_processor::pipeline::no_plans());
    };
    let path = match &file {
        PipelineFile::Yaml { path, .. } | PipelineFile::Config(path) => path.clone(),
    };
    check_exists(&path)?;
    let m = metrics.clone();
    start(
        file,
        registry,
        move |plans| m.set_generations(plans),
        shutdown,
    )
    .with_context(|| format!("load the LogPipelines of {}", path.display()))
}

/// Whether `path` exists (a clear error before starting, instead of a read error later).
fn check_exists(path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(path.is_file(), "no such file");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "
apiVersion: logstream.dev/v1alpha1
kind: LogPipeline
metadata: {name: web, namespace: shop}
spec:
  logStreamRef: {name: main}
  selector: {}
  parsers:
    - json: {}
---
apiVersion: logstream.dev/v1alpha1
kind: LogPipeline
metadata: {name: all, generation: 7}
spec:
  logStreamRef: {name: main}
  selector: {}
";

    #[test]
    fn yaml_documents_become_pipelines_of_their_namespace_or_the_default_tenant() {
        let got = parse_yaml(TWO, "default").unwrap();
        let ids: Vec<(&str, &str, i64)> = got
            .iter()
            .map(|p| (p.namespace.as_str(), p.name.as_str(), p.generation))
            .collect();
        assert_eq!(ids, [("shop", "web", 0), ("default", "all", 7)]);
        assert_eq!(got[0].spec.parsers.len(), 1);
    }

    #[test]
    fn a_duplicate_or_nameless_pipeline_is_refused_with_the_document_named() {
        let twice = format!("{TWO}---{}", TWO.split("---").next().unwrap());
        let e = parse_yaml(&twice, "default").unwrap_err();
        assert_eq!(
            e.to_string(),
            "document 3: LogPipeline shop/web is declared twice"
        );
        let nameless = "kind: LogPipeline\napiVersion: logstream.dev/v1alpha1\nmetadata: {}\nspec: {logStreamRef: {name: m}, selector: {}}\n";
        let e = parse_yaml(nameless, "default").unwrap_err();
        assert_eq!(e.to_string(), "document 1: metadata.name is missing");
    }

    #[test]
    fn generations_count_spec_changes_of_pipelines_without_one() {
        let mut g = Generations::default();
        let mut a = parse_yaml(TWO, "default").unwrap();
        g.assign(&mut a);
        assert_eq!((a[0].generation, a[1].generation), (1, 7));
        let mut same = parse_yaml(TWO, "default").unwrap();
        g.assign(&mut same);
        assert_eq!(same[0].generation, 1, "unchanged spec, same generation");
        let mut changed =
            parse_yaml(&TWO.replace("- json: {}", "- logfmt: {}"), "default").unwrap();
        g.assign(&mut changed);
        assert_eq!(changed[0].generation, 2);
    }
}
