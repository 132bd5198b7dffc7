//! serde building blocks shared by the JSON decoders: strings borrowed from the body when they
//! have no escapes ([`CowStr`]), and any JSON value held cheaply for later inspection
//! ([`Scalar`]), so decoding needs no `serde_json::Value` for the common flat shapes.

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON string, borrowed from the body unless it had escapes.
#[derive(Debug)]
pub(crate) struct CowStr<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowStrVisitor).map(CowStr)
    }
}

struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any JSON value; arrays and objects are kept as a `serde_json::Value` (rare in hot paths).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'de> {
    Str(Cow<'de, str>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Null,
    Composite(serde_json::Value),
}

impl Scalar<'_> {
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// Strings as they are, numbers and booleans in their JSON spelling; `None` for null,
    /// arrays and objects.
    pub(crate) fn into_label_text(self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s.into_owned()),
            Self::Null | Self::Composite(_) => None,
            other => Some(other.to_json_text()),
        }
    }

    /// Strings as they are, anything else serialized as compact JSON.
    pub(crate) fn into_text(self) -> String {
        match self {
            Self::Str(s) => s.into_owned(),
            other => other.to_json_text(),
        }
    }

    /// The value as compact JSON text (strings quoted), for messages and metadata.
    pub(crate) fn to_json_text(&self) -> String {
        match self {
            Self::Str(s) => serde_json::Value::from(s.as_ref()).to_string(),
            Self::I64(n) => n.to_string(),
            Self::U64(n) => n.to_string(),
            Self::F64(f) => serde_json::Value::from(*f).to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Null => "null".to_owned(),
            Self::Composite(v) => v.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        serde_json::Value::deserialize(SeqAccessDeserializer::new(seq)).map(Scalar::Composite)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        serde_json::Value::deserialize(MapAccessDeserializer::new(map)).map(Scalar::Composite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let body = br#"["plain", "esc\"aped", 1, -2, 1.5, true, null, {"a": [1]}]"#;
        let values: Vec<Scalar<'_>> = serde_json::from_slice(body).unwrap();
        assert!(matches!(&values[0], Scalar::Str(Cow::Borrowed("plain"))));
        assert!(matches!(&values[1], Scalar::Str(Cow::Owned(s)) if s == "esc\"aped"));
        let texts: Vec<String> = values.iter().map(Scalar::to_json_text).collect();
        assert_eq!(
            texts,
            [
                r#""plain""#,
                r#""esc\"aped""#,
                "1",
                "-2",
                "1.5",
                "true",
                "null",
                r#"{"a":[1]}"#
            ]
        );
    }

    #[test]
    fn label_text_takes_scalars_but_not_structures() {
        assert_eq!(Scalar::F64(2.5).into_label_text().as_deref(), Some("2.5"));
        assert_eq!(
            Scalar::Bool(false).into_label_text().as_deref(),
            Some("false")
        );
        assert_eq!(Scalar::Null.into_label_text(), None);
        assert_eq!(
            Scalar::Composite(serde_json::json!([1])).into_label_text(),
            None
        );
    }
}
