//! S3 bucket lifecycle configuration (the `PutBucketLifecycleConfiguration` body), as typed
//! rules that serialize to and from the S3 XML. Only the rule parts LogStream writes are
//! modelled (prefix filter, expiration in days, aborting stale multipart uploads); unknown
//! elements in a server's answer are ignored by the typed view.
//!
//! Because the typed view drops what it does not model (transitions, tag filters, noncurrent
//! version rules), a configuration that is read in order to be written back is kept as
//! [`StoredLifecycle`]: each rule's original XML next to its typed view, so rules that belong to
//! someone else go back exactly as they came.

use crate::error::{Error, Result};
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};

const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// A bucket's lifecycle configuration: the full set of rules (a put replaces all of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "LifecycleConfiguration")]
pub struct LifecycleConfiguration {
    #[serde(rename = "@xmlns", default = "xmlns", skip_deserializing)]
    xmlns: String,
    /// The rules, at most 1000 per bucket on AWS.
    #[serde(rename = "Rule", default)]
    pub rules: Vec<LifecycleRule>,
}

fn xmlns() -> String {
    S3_XMLNS.to_owned()
}

fn xml_err(e: impl std::fmt::Display) -> Error {
    Error::LifecycleXml {
        reason: e.to_string(),
    }
}

impl LifecycleConfiguration {
    /// A configuration with these rules.
    pub fn new(rules: Vec<LifecycleRule>) -> Self {
        Self {
            xmlns: xmlns(),
            rules,
        }
    }

    /// The XML body of a put request.
    pub fn to_xml(&self) -> Result<String> {
        let body = quick_xml::se::to_string(self).map_err(xml_err)?;
        Ok(format!("{XML_DECLARATION}{body}"))
    }

    /// Parse a get answer.
    pub fn from_xml(xml: &str) -> Result<Self> {
        quick_xml::de::from_str(xml).map_err(xml_err)
    }
}

/// One lifecycle rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// Unique rule name within the bucket (up to 255 characters).
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Which objects the rule applies to; an empty filter means every object.
    #[serde(rename = "Filter", default)]
    pub filter: RuleFilter,
    /// Whether the rule is applied.
    #[serde(rename = "Status")]
    pub status: RuleStatus,
    /// Delete current objects this many days after creation.
    #[serde(
        rename = "Expiration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration: Option<Expiration>,
    /// Abort multipart uploads left incomplete this many days after they started.
    #[serde(
        rename = "AbortIncompleteMultipartUpload",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub abort_incomplete_multipart_upload: Option<AbortIncompleteMultipartUpload>,
}

impl LifecycleRule {
    /// An enabled rule expiring objects under `prefix` after `days` days.
    pub fn expire_after_days(id: &str, prefix: &str, days: u32) -> Self {
        Self {
            id: Some(id.to_owned()),
            filter: RuleFilter {
                prefix: Some(prefix.to_owned()),
            },
            status: RuleStatus::Enabled,
            expiration: Some(Expiration { days }),
            abort_incomplete_multipart_upload: None,
        }
    }

    /// An enabled rule aborting multipart uploads under `prefix` `days` days after they started.
    pub fn abort_incomplete_uploads_after_days(id: &str, prefix: &str, days: u32) -> Self {
        Self {
            id: Some(id.to_owned()),
            filter: RuleFilter {
                prefix: Some(prefix.to_owned()),
            },
            status: RuleStatus::Enabled,
            expiration: None,
            abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
                days_after_initiation: days,
            }),
        }
    }

    /// The rule as a `<Rule>` element.
    pub fn to_xml(&self) -> Result<String> {
        quick_xml::se::to_string_with_root("Rule", self).map_err(xml_err)
    }
}

/// Object selection of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFilter {
    /// Key prefix the rule applies to.
    #[serde(rename = "Prefix", default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Whether a rule is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleStatus {
    /// Applied.
    Enabled,
    /// Stored but not applied.
    Disabled,
}

/// Expiration of current object versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiration {
    /// Days after object creation.
    #[serde(rename = "Days")]
    pub days: u32,
}

/// Clean-up of incomplete multipart uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortIncompleteMultipartUpload {
    /// Days after the upload was initiated.
    #[serde(rename = "DaysAfterInitiation")]
    pub days_after_initiation: u32,
}

/// A configuration as read from a bucket, kept for writing back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredLifecycle {
    pub rules: Vec<StoredRule>,
}

/// One rule as read: its XML verbatim and, when it parses, its typed view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// The `<Rule>...</Rule>` element exactly as the server sent it.
    pub xml: String,
    /// `None` when the rule uses a shape the typed view cannot read (it is then kept as is).
    pub rule: Option<LifecycleRule>,
}

impl StoredRule {
    /// A rule of ours, to be written.
    pub fn new(rule: LifecycleRule) -> Result<Self> {
        Ok(Self {
            xml: rule.to_xml()?,
            rule: Some(rule),
        })
    }

    pub fn id(&self) -> Option<&str> {
        self.rule.as_ref()?.id.as_deref()
    }
}

impl StoredLifecycle {
    /// Splits a get answer into its `<Rule>` elements.
    ///
    /// The elements are re-emitted under a root with the S3 default namespace, which is what
    /// S3 answers with; a server that used a namespace prefix inside rules is not supported.
    pub fn from_xml(xml: &str) -> Result<Self> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut rules = Vec::new();
        let mut depth = 0usize;
        loop {
            let start = reader.buffer_position() as usize;
            match reader.read_event().map_err(xml_err)? {
                Event::Start(e) if depth == 1 && e.local_name().as_ref() == b"Rule" => {
                    let end_tag = e.to_end().into_owned();
                    reader.read_to_end(end_tag.name()).map_err(xml_err)?;
                    let end = reader.buffer_position() as usize;
                    let raw = xml.get(start..end).ok_or_else(|| xml_err("rule span"))?;
                    rules.push(StoredRule {
                        xml: raw.to_string(),
                        rule: quick_xml::de::from_str(raw).ok(),
                    });
                }
                Event::Start(_) => depth += 1,
                Event::End(_) => depth = depth.saturating_sub(1),
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(Self { rules })
    }

    /// The XML body of a put request with these rules, in order.
    pub fn to_xml(&self) -> String {
        let mut body = format!("{XML_DECLARATION}<LifecycleConfiguration xmlns=\"{S3_XMLNS}\">");
        for rule in &self.rules {
            body.push_str(&rule.xml);
        }
        body.push_str("</LifecycleConfiguration>");
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_body_round_trips() {
        let mut rule = LifecycleRule::expire_after_days("expire-logs", "tenant-a/", 30);
        rule.abort_incomplete_multipart_upload = Some(AbortIncompleteMultipartUpload {
            days_after_initiation: 1,
        });
        let config = LifecycleConfiguration::new(vec![rule]);
        let xml = config.to_xml().unwrap();
        assert!(
            xml.contains(
                r#"<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<Filter><Prefix>tenant-a/</Prefix></Filter>"),
            "{xml}"
        );
        assert!(
            xml.contains("<Expiration><Days>30</Days></Expiration>"),
            "{xml}"
        );
        assert_eq!(LifecycleConfiguration::from_xml(&xml).unwrap(), config);
    }

    #[test]
    fn parses_a_get_answer_with_unknown_elements() {
        let config = LifecycleConfiguration::from_xml(ANSWER).unwrap();
        assert_eq!(config.rules.len(), 2);
        assert_eq!(config.rules[0].status, RuleStatus::Disabled);
        assert_eq!(config.rules[0].expiration, Some(Expiration { days: 7 }));
        assert_eq!(config.rules[0].filter.prefix.as_deref(), Some("logs/"));
    }

    const ANSWER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
        <LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Rule><ID>r1</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Disabled</Status>
            <Expiration><Days>7</Days><ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker></Expiration>
            <NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>
          </Rule>
          <Rule><ID>archive</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter><Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>
        </LifecycleConfiguration>"#;

    #[test]
    fn stored_rules_keep_what_the_typed_view_cannot_express() {
        let stored = StoredLifecycle::from_xml(ANSWER).unwrap();
        assert_eq!(stored.rules.len(), 2);
        assert_eq!(stored.rules[0].id(), Some("r1"));
        assert!(
            stored.rules[0]
                .xml
                .contains("<NoncurrentDays>1</NoncurrentDays>")
        );
        assert!(stored.rules[1].xml.starts_with("<Rule><ID>archive</ID>"));
        assert!(stored.rules[1].xml.ends_with("</Transition></Rule>"));

        let again = StoredLifecycle::from_xml(&stored.to_xml()).unwrap();
        assert_eq!(again, stored, "written back, the rules read the same");
        let typed = LifecycleConfiguration::from_xml(&stored.to_xml()).unwrap();
        assert_eq!(
            typed.rules,
            LifecycleConfiguration::from_xml(ANSWER).unwrap().rules
        );
    }

    #[test]
    fn a_rule_of_ours_serializes_like_in_a_configuration() {
        let rule = LifecycleRule::abort_incomplete_uploads_after_days("x", "data/", 1);
        let stored = StoredLifecycle {
            rules: vec![StoredRule::new(rule.clone()).unwrap()],
        };
        let typed = LifecycleConfiguration::from_xml(&stored.to_xml()).unwrap();
        assert_eq!(typed.rules, [rule]);
    }
}
