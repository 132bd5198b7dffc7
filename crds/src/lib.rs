//! The custom resources of LogStream on Kubernetes, as Rust types: [`LogStream`], one
//! installation of the platform, and [`LogPipeline`], a tenant's request to collect the logs of
//! some of its pods. Both are `logstream.dev/v1alpha1` and namespaced.
//!
//! The CustomResourceDefinitions are derived from these types (kube's `CustomResource` and
//! `KubeSchema` derives over schemars): `///` docs become the field descriptions
//! `kubectl explain` shows, serde defaults become schema defaults the API server applies, and
//! cross-field rules are CEL `x-kubernetes-validations` whose messages are what a user reads
//! when the API server refuses a spec. [`yaml`] renders them; the rendered YAML is committed in
//! `crds/yaml/` and a test fails when it drifts from the types.
//!
//! The types accept unknown fields (no `deny_unknown_fields`): the API server prunes what the
//! schema does not know, and an operator reading objects written under a newer schema must
//! not fail on them.

pub mod conditions;
mod error;
pub mod logpipeline;
pub mod logstream;
pub mod reference;
pub mod yaml;

pub use error::{Error, Result};
pub use logpipeline::{LogPipeline, LogPipelineSpec, LogPipelineStatus};
pub use logstream::{LogStream, LogStreamSpec, LogStreamStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;
use kube::core::{Message, Rule};

/// API group of both resources.
pub const GROUP: &str = "logstream.dev";
/// API version of both resources.
pub const VERSION: &str = "v1alpha1";

/// Both CustomResourceDefinitions, LogStream first (a LogPipeline names a LogStream), as they
/// are installed. Use this rather than `LogStream::crd()`, which keeps the descriptions
/// wrapped where the `///` comments were.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![LogStream::crd(), LogPipeline::crd()];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            let schema = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut());
            if let Some(schema) = schema {
                unwrap_descriptions(schema);
            }
        }
    }
    crds
}

/// Join the lines a `///` comment was wrapped into, so `kubectl explain` wraps each paragraph
/// to the terminal instead of breaking lines where the source did. Blank lines (paragraphs)
/// and lines starting with a space or a list marker (k8s-openapi's enum value lists) are kept.
fn unwrap_descriptions(schema: &mut JSONSchemaProps) {
    if let Some(description) = schema.description.as_mut() {
        *description = unwrap_lines(description);
    }
    let children = schema
        .properties
        .iter_mut()
        .flat_map(|p| p.values_mut())
        .chain(schema.items.iter_mut().flat_map(|items| match items {
            JSONSchemaPropsOrArray::Schema(s) => std::slice::from_mut(s.as_mut()),
            JSONSchemaPropsOrArray::Schemas(v) => v.as_mut_slice(),
        }))
        .chain(
            schema
                .additional_properties
                .iter_mut()
                .filter_map(|a| match a {
                    JSONSchemaPropsOrBool::Schema(s) => Some(s.as_mut()),
                    JSONSchemaPropsOrBool::Bool(_) => None,
                }),
        );
    for child in children {
        unwrap_descriptions(child);
    }
}

fn unwrap_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        let Some(next) = lines.peek() else { break };
        let keep = line.is_empty() || next.is_empty() || starts_block(next);
        out.push(if keep { '\n' } else { ' ' });
    }
    out
}

/// An indented line or a list item (`- `, `* `, `1. `).
fn starts_block(line: &str) -> bool {
    let numbered = line
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .starts_with(". ")
        && line.starts_with(|c: char| c.is_ascii_digit());
    line.starts_with([' ', '\t']) || line.starts_with("- ") || line.starts_with("* ") || numbered
}

/// A CEL validation rule with the message a user reads when it fails.
pub(crate) fn rule(expr: impl Into<String>, message: impl Into<String>) -> Rule {
    Rule::new(expr).message(Message::Message(message.into()))
}

/// Every CEL rule of `crd` as (rule, message), depth first.
#[cfg(test)]
pub(crate) fn cel_rules(crd: &CustomResourceDefinition) -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                for rule in map
                    .get("x-kubernetes-validations")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                {
                    let text = |k: &str| rule[k].as_str().unwrap_or_default().to_owned();
                    out.push((text("rule"), text("message")));
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::to_value(crd).expect("CRD to JSON"), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::{GROUP, JSONSchemaProps, JSONSchemaPropsOrArray, VERSION, crds, unwrap_lines};

    #[test]
    fn crds_use_the_group_and_version_constants() {
        for crd in crds() {
            assert_eq!(crd.spec.group, GROUP);
            let versions: Vec<_> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(versions, [VERSION]);
            assert_eq!(crd.spec.scope, "Namespaced");
        }
    }

    #[test]
    fn short_names_are_lst_and_lpl() {
        let names: Vec<_> = crds()
            .into_iter()
            .map(|c| {
                (
                    c.spec.names.plural,
                    c.spec.names.short_names.unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("logstreams".to_owned(), vec!["lst".to_owned()]),
                ("logpipelines".to_owned(), vec!["lpl".to_owned()]),
            ]
        );
    }

    /// `kubectl explain` is only as good as the descriptions: every field of our own types
    /// must have one (the k8s-openapi types bring theirs).
    #[test]
    fn every_field_has_a_description() {
        fn walk(path: &str, schema: &JSONSchemaProps, missing: &mut Vec<String>) {
            for (name, child) in schema.properties.iter().flatten() {
                let path = format!("{path}.{name}");
                if child.description.as_deref().is_none_or(str::is_empty) {
                    missing.push(path.clone());
                }
                walk(&path, child, missing);
            }
            if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
                walk(&format!("{path}[]"), items, missing);
            }
        }
        let mut missing = Vec::new();
        for crd in crds() {
            let root = crd.spec.versions[0]
                .schema
                .clone()
                .and_then(|s| s.open_api_v3_schema);
            let root = root.expect("schema");
            for part in ["spec", "status"] {
                let schema = &root.properties.as_ref().expect("properties")[part];
                walk(
                    &format!("{}.{part}", crd.spec.names.kind),
                    schema,
                    &mut missing,
                );
            }
        }
        // apiVersion/kind/metadata come from kube; ObjectMeta has no properties in the schema.
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
    }

    #[test]
    fn descriptions_are_unwrapped_but_keep_paragraphs_and_lists() {
        assert_eq!(unwrap_lines("one\ntwo (up to\n32)."), "one two (up to 32).");
        assert_eq!(unwrap_lines("a\n\nb\nc"), "a\n\nb c");
        assert_eq!(
            unwrap_lines("values:\n - `A` is a\n - `B`"),
            "values:\n - `A` is a\n - `B`"
        );
        assert_eq!(
            unwrap_lines("steps:\n1. first\n2. then"),
            "steps:\n1. first\n2. then"
        );
        let crd = &crds()[0];
        let spec = &crd.spec.versions[0].schema.as_ref().unwrap();
        let spec = &spec
            .open_api_v3_schema
            .as_ref()
            .unwrap()
            .properties
            .as_ref()
            .unwrap()["spec"];
        assert!(!spec.description.as_deref().unwrap().contains('\n'));
    }
}
