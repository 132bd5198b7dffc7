//! The field reference of both resources as Markdown (`docs/crd-reference.md`), generated from
//! the same OpenAPI schemas the API server enforces: every field's type, default, validation
//! (bounds, patterns, one-of groups and the CEL rules' messages) and description. A test fails
//! when the committed file differs, so the reference cannot drift from the types.
//!
//! Fields whose type is Kubernetes' own (resources, tolerations, selectors, conditions) are
//! listed once with a pointer to the Kubernetes API reference rather than field by field.

use serde_json::Value;
use std::fmt::Write;

/// Where the generated reference is committed, relative to the repository root.
pub const PATH: &str = "docs/crd-reference.md";

/// Fields of Kubernetes' own types: (path suffix, type name). Their inner fields are not
/// repeated; a test checks each suffix still names a field.
const KUBERNETES_TYPES: &[(&str, &str)] = &[
    (".resources", "ResourceRequirements"),
    (".tolerations", "[]Toleration"),
    (".selector", "LabelSelector"),
    (".conditions", "[]Condition"),
];

const HEADER: &str = "<!-- Generated from the Rust types in crds/src (crate logstream-crds) by \
crds/src/reference.rs; do not edit. Regenerate: UPDATE_CRDS=1 cargo test -p logstream-crds -->\n";

/// One documented field.
#[derive(Debug, PartialEq)]
struct Row {
    path: String,
    type_: String,
    default: String,
    validation: Vec<String>,
    description: String,
}

/// The whole reference document.
pub fn render() -> String {
    let mut out = String::from(HEADER);
    out.push_str(
        "\n# CRD reference\n\nEvery field of the `LogStream` and `LogPipeline` resources \
         (`logstream.dev/v1alpha1`), generated from the CustomResourceDefinitions in \
         `crds/yaml/`. The API server applies the defaults and refuses objects that break a \
         validation, answering with the message shown. Examples and the checks only the operator \
         makes: [crds.md](crds.md); what the resources mean: [concepts.md](concepts.md).\n",
    );
    for crd in crate::crds() {
        let crd = serde_json::to_value(&crd).expect("a CRD serializes to JSON");
        render_crd(&crd, &mut out);
    }
    out
}

fn render_crd(crd: &Value, out: &mut String) {
    let names = &crd["spec"]["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    let version = &crd["spec"]["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let short: Vec<_> = names["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| format!("`{s}`"))
        .collect();
    let _ = write!(
        out,
        "\n## {kind}\n\n`{}/{}`, namespaced, plural `{}`, short name {}.\n\n{}\n",
        crd["spec"]["group"].as_str().unwrap_or_default(),
        version["name"].as_str().unwrap_or_default(),
        names["plural"].as_str().unwrap_or_default(),
        short.join(", "),
        cell(schema["description"].as_str().unwrap_or_default()),
    );
    for part in ["spec", "status"] {
        let mut rows = Vec::new();
        walk(
            part,
            &schema["properties"][part],
            is_required(schema, part),
            &mut rows,
        );
        let _ = write!(
            out,
            "\n### {kind} `.{part}`\n\n| field | type | default | validation | description |\n\
             |---|---|---|---|---|\n"
        );
        for row in rows {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                row.path,
                row.type_,
                row.default,
                row.validation.join("; "),
                row.description
            );
        }
    }
}

fn is_required(parent: &Value, name: &str) -> bool {
    parent["required"]
        .as_array()
        .is_some_and(|r| r.iter().any(|v| v == name))
}

/// Adds the row of `schema` at `path`, then its children, depth first in name order.
fn walk(path: &str, schema: &Value, required: bool, rows: &mut Vec<Row>) {
    let kubernetes = KUBERNETES_TYPES
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix))
        .map(|(_, name)| *name);
    rows.push(row(path, schema, required, kubernetes));
    if kubernetes.is_some() {
        return;
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, child) in props {
            walk(
                &format!("{path}.{name}"),
                child,
                is_required(schema, name),
                rows,
            );
        }
    }
    let items = &schema["items"];
    if items["properties"].is_object() {
        let mut children = Vec::new();
        walk(&format!("{path}[]"), items, false, &mut children);
        // The item itself is described by the array's row; keep its fields.
        rows.extend(children.into_iter().skip(1));
    }
}

fn row(path: &str, schema: &Value, required: bool, kubernetes: Option<&str>) -> Row {
    let mut validation = Vec::new();
    if required {
        validation.push("required".to_owned());
    }
    validation.extend(constraints(schema));
    if schema["items"].is_object() {
        validation.extend(constraints(&schema["items"]).map(|c| format!("each: {c}")));
    }
    let mut description = cell(schema["description"].as_str().unwrap_or_default());
    if let Some(name) = kubernetes {
        let _ = write!(
            description,
            "<br>Kubernetes type `{}`: see the Kubernetes API reference for its fields.",
            name.trim_start_matches("[]")
        );
    }
    Row {
        path: path.to_owned(),
        type_: kubernetes.map_or_else(|| type_of(schema), |n| format!("`{n}`")),
        default: schema
            .get("default")
            .map(|d| format!("`{}`", cell(&d.to_string())))
            .unwrap_or_default(),
        validation,
        description,
    }
}

/// The schema's type, e.g. `string`, `integer (int32)`, `[]string`, `map[string]string`.
fn type_of(schema: &Value) -> String {
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        return "int or string".into();
    }
    let base = schema["type"].as_str().unwrap_or("any");
    match base {
        "array" => format!("[]{}", type_of(&schema["items"])),
        "object" if schema["additionalProperties"].is_object() => {
            format!("map[string]{}", type_of(&schema["additionalProperties"]))
        }
        _ => match schema["format"].as_str() {
            Some(format) => format!("{base} ({format})"),
            None => base.to_owned(),
        },
    }
}

/// The checks the API server makes on one value: bounds, lengths, pattern, enum, one-of
/// groups, and the messages of CEL rules.
fn constraints(schema: &Value) -> impl Iterator<Item = String> + '_ {
    let bound = |key: &str, text: &str| {
        schema[key]
            .as_f64()
            .map(|n| format!("{text} {}", number(n)))
    };
    let one_of = schema["oneOf"].as_array().map(|groups| {
        let names: Vec<_> = groups
            .iter()
            .flat_map(|g| g["required"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .map(|n| format!("`{n}`"))
            .collect();
        format!("exactly one of {}", names.join(", "))
    });
    let enumeration = schema["enum"].as_array().map(|values| {
        let values: Vec<_> = values
            .iter()
            .map(|v| format!("`{}`", cell(&v.to_string())))
            .collect();
        format!("one of {}", values.join(", "))
    });
    let pattern = schema["pattern"]
        .as_str()
        .map(|p| format!("matches `{}`", cell(p)));
    let rules = schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("rule: {}", cell(r["message"].as_str().unwrap_or_default())));
    [
        bound("minimum", "≥"),
        bound("maximum", "≤"),
        bound("minLength", "length ≥"),
        bound("maxLength", "length ≤"),
        bound("minItems", "items ≥"),
        bound("maxItems", "items ≤"),
        bound("maxProperties", "entries ≤"),
        pattern,
        enumeration,
        one_of,
    ]
    .into_iter()
    .flatten()
    .chain(rules)
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Text fit for one table cell: pipes escaped, paragraphs as `<br>`, other line breaks as
/// spaces.
fn cell(text: &str) -> String {
    text.trim()
        .replace('|', "\\|")
        .replace("\n\n", "<br>")
        .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::{KUBERNETES_TYPES, PATH, cell, render, type_of};
    use serde_json::json;
    use std::path::Path;

    /// The drift check: `docs/crd-reference.md` must be what the types render to.
    #[test]
    fn committed_reference_matches_the_rust_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(PATH);
        let rendered = render();
        if std::env::var("UPDATE_CRDS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &rendered).expect("write the CRD reference");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == rendered,
            "{PATH} is out of date with the Rust types in crds/src. Regenerate with \
             `UPDATE_CRDS=1 cargo test -p logstream-crds`, review the diff and commit it"
        );
    }

    #[test]
    fn every_field_of_our_types_is_listed_with_a_description() {
        let text = render();
        for field in [
            "`spec.storage.url`",
            "`spec.bus.kafka.partitions`",
            "`spec.limits.overrides[].tenant`",
            "`spec.parsers[].regex.pattern`",
            "`status.observedGeneration`",
        ] {
            assert!(text.contains(field), "{field} missing");
        }
        for line in text.lines().filter(|l| l.starts_with("| `")) {
            let description = line.trim_end_matches(" |").rsplit(" | ").next().unwrap();
            assert!(!description.trim().is_empty(), "no description: {line}");
        }
    }

    #[test]
    fn each_kubernetes_type_suffix_names_a_field() {
        let text = render();
        for (suffix, name) in KUBERNETES_TYPES {
            assert!(
                text.contains(&format!("{suffix}` | `{name}`")),
                "no field ends with {suffix}: drop it from KUBERNETES_TYPES"
            );
        }
    }

    #[test]
    fn types_read_like_kubectl_explain() {
        assert_eq!(
            type_of(&json!({"type": "integer", "format": "int32"})),
            "integer (int32)"
        );
        assert_eq!(
            type_of(&json!({"type": "array", "items": {"type": "string"}})),
            "[]string"
        );
        assert_eq!(
            type_of(&json!({"type": "object", "additionalProperties": {"type": "string"}})),
            "map[string]string"
        );
        assert_eq!(
            type_of(&json!({"x-kubernetes-int-or-string": true})),
            "int or string"
        );
        assert_eq!(cell("a|b\nc\n\nd"), "a\\|b c<br>d");
    }
}
