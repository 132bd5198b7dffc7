//! `logstream search '<logql>'`: asks a running server and prints log lines or series, so a
//! user needs no curl.

use anyhow::{Context, bail};
use serde_json::Value;

#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// The LogQL query, e.g. '{app="api"} |= "error"' or 'sum by (app) (rate({app=~".+"}[5m]))'.
    pub query: String,
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:3100", env = "LOGSTREAM_ADDR")]
    pub addr: String,
    /// Tenant (sent as X-Scope-OrgID).
    #[arg(long, env = "LOGSTREAM_TENANT")]
    pub tenant: Option<String>,
    /// How far back to look (a duration such as 15m, 6h, 7d).
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Start time (RFC 3339 or Unix time); overrides --since.
    #[arg(long)]
    pub from: Option<String>,
    /// End time (RFC 3339 or Unix time); defaults to now.
    #[arg(long)]
    pub to: Option<String>,
    /// Most log lines to print.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Oldest lines first.
    #[arg(long)]
    pub forward: bool,
    /// Step between points of a metric query (e.g. 1m); the server picks one by default.
    #[arg(long)]
    pub step: Option<String>,
    /// Print the server's JSON answer as it is.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let body = fetch(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let data = &body["data"];
    match data["resultType"].as_str() {
        Some("streams") => print_streams(&data["result"], args.forward),
        Some("matrix") => print_matrix(&data["result"]),
        other => bail!("unexpected result type {other:?}"),
    }
    Ok(())
}

async fn fetch(args: &QueryArgs) -> anyhow::Result<Value> {
    let now = chrono::Utc::now();
    let since = logstream_logql::parse_duration(&args.since)
        .map_err(|e| anyhow::anyhow!("invalid --since {:?}: {e}", args.since))?;
    let end = args.to.clone().unwrap_or_else(|| now.to_rfc3339());
    let start = args
        .from
        .clone()
        .unwrap_or_else(|| (now - chrono::Duration::nanoseconds(since)).to_rfc3339());
    let mut params = vec![
        ("query", args.query.clone()),
        ("start", start),
        ("end", end),
        ("limit", args.limit.to_string()),
        (
            "direction",
            if args.forward { "forward" } else { "backward" }.into(),
        ),
    ];
    if let Some(step) = &args.step {
        params.push(("step", step.clone()));
    }
    let url = format!(
        "{}/loki/api/v1/query_range",
        args.addr.trim_end_matches('/')
    );
    let mut req = reqwest::Client::new().get(&url).query(&params);
    if let Some(t) = &args.tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{status}: {}", text.trim());
    }
    serde_json::from_str(&text).context("the server's answer is not JSON")
}

fn labels_text(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return "{}".into();
    };
    let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", v)).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Lines of all streams merged in time order, each with its time and stream.
fn print_streams(result: &Value, forward: bool) {
    let mut lines: Vec<(i64, String, &str)> = Vec::new();
    for s in result.as_array().into_iter().flatten() {
        let labels = labels_text(&s["stream"]);
        for v in s["values"].as_array().into_iter().flatten() {
            let ts = v[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            lines.push((ts, labels.clone(), v[1].as_str().unwrap_or("")));
        }
    }
    lines.sort_by_key(|(t, _, _)| *t);
    if !forward {
        lines.reverse();
    }
    for (ts, labels, line) in &lines {
        let t = chrono::DateTime::from_timestamp_nanos(*ts);
        println!(
            "{} {labels} {line}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }
    eprintln!("{} lines", lines.len());
}

fn print_matrix(result: &Value) {
    for s in result.as_array().into_iter().flatten() {
        println!("{}", labels_text(&s["metric"]));
        for p in s["values"].as_array().into_iter().flatten() {
            let secs = p[0].as_f64().unwrap_or(0.0);
            let t = chrono::DateTime::from_timestamp_nanos((secs * 1e9) as i64);
            println!(
                "  {} {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                p[1].as_str().unwrap_or("")
            );
        }
    }
}
