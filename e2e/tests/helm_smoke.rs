//! The helm part is real: `helm template` renders a chart offline, and kubernetes-validate checks
//! the result against the Kubernetes 1.34 schemas (and rejects a broken manifest).

use std::path::Path;
use std::process::Command;

use logstream_e2e::tools::Tools;

const KUBE_SCHEMA_VERSION: &str = "1.34.0";

fn validate(tools: &Tools, manifest: &Path) -> anyhow::Result<std::process::Output> {
    let output = Command::new(tools.kubernetes_validate())
        .args(["-k", KUBE_SCHEMA_VERSION, "--strict"])
        .arg(manifest)
        .output()?;
    Ok(output)
}

#[test]
fn helm_template_output_validates_offline() -> anyhow::Result<()> {
    let Some(tools) = Tools::find() else {
        return Ok(());
    };
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/smoke-chart");
    let rendered = Command::new(tools.helm())
        .args(["template", "smoke"])
        .arg(&chart)
        .output()?;
    assert!(
        rendered.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let dir = tempfile::tempdir()?;
    let manifest = dir.path().join("rendered.yaml");
    std::fs::write(&manifest, &rendered.stdout)?;

    let output = validate(&tools, &manifest)?;

    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        text.contains("kind: Deployment") && text.contains("kind: Service"),
        "{text}"
    );
    assert!(
        output.status.success(),
        "kubernetes-validate: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn kubernetes_validate_rejects_a_broken_manifest() -> anyhow::Result<()> {
    let Some(tools) = Tools::find() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let manifest = dir.path().join("broken.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: two\n  selector: {}\n  template: {}\n",
    )?;

    let output = validate(&tools, &manifest)?;

    assert!(
        !output.status.success(),
        "a string replica count must not validate"
    );
    Ok(())
}
