//! The CustomResourceDefinitions as YAML: what `logstream crd` prints and what `crds/yaml/`
//! holds, one file per CRD named after it (`logstreams.logstream.dev.yaml`), so a Helm chart's
//! `crds/` folder or `kubectl apply -f` can take either alone and a diff shows which changed.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::{Error, Result};

/// First line of every rendered CRD.
pub const HEADER: &str = "# Generated from the Rust types in crds/src (crate logstream-crds); do not edit.\n\
     # Regenerate: UPDATE_CRDS=1 cargo test -p logstream-crds\n";

/// The file `crd` is committed as: its name plus `.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document, starting with [`HEADER`].
pub fn render(crd: &CustomResourceDefinition) -> Result<String> {
    let body = serde_saphyr::to_string(crd).map_err(|source| Error::RenderYaml {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })?;
    Ok(format!("{HEADER}{body}"))
}

/// Every CRD of [`crate::crds`], as one multi-document YAML stream (`---` between them).
pub fn render_all() -> Result<String> {
    let docs = crate::crds()
        .iter()
        .map(render)
        .collect::<Result<Vec<_>>>()?;
    Ok(docs.join("---\n"))
}

#[cfg(test)]
mod tests {
    use super::{file_name, render, render_all};
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The drift check: `crds/yaml/` must hold exactly what the types render to.
    #[test]
    fn committed_yaml_matches_the_rust_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("yaml");
        let update = std::env::var("UPDATE_CRDS").is_ok_and(|v| v == "1");
        let mut expected = BTreeSet::new();
        let mut stale = Vec::new();
        for crd in crate::crds() {
            let name = file_name(&crd);
            let path = dir.join(&name);
            let rendered = render(&crd).expect("render CRD");
            if update {
                std::fs::write(&path, &rendered).expect("write CRD YAML");
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(rendered.as_str()) {
                stale.push(name.clone());
            }
            expected.insert(name);
        }
        let present: BTreeSet<String> = std::fs::read_dir(&dir)
            .expect("list crds/yaml")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let extra: Vec<_> = present.difference(&expected).collect();
        assert!(
            stale.is_empty() && extra.is_empty(),
            "crds/yaml/ is out of date with the Rust types (differs: {stale:?}; not generated: \
             {extra:?}). Regenerate with `UPDATE_CRDS=1 cargo test -p logstream-crds`, remove \
             files no longer generated, review the diff and commit it"
        );
    }

    #[test]
    fn render_all_separates_documents() {
        let all = render_all().expect("render");
        assert_eq!(all.matches("\n---\n").count(), 1, "{all}");
        assert!(all.contains("name: logstreams.logstream.dev"));
        assert!(all.contains("name: logpipelines.logstream.dev"));
    }
}
