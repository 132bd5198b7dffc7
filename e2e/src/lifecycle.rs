//! S3 bucket lifecycle configuration (the `PutBucketLifecycleConfiguration` body), as typed
//! rules that serialize to and from the S3 XML. Only the rule parts LogStream uses are modelled
//! (prefix filter, expiration in days, aborting stale multipart uploads); unknown elements in a
//! server's answer are ignored.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

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
        let body = quick_xml::se::to_string(self).map_err(|e| Error::LifecycleXml(Box::new(e)))?;
        Ok(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}"))
    }

    /// Parse a get answer.
    pub fn from_xml(xml: &str) -> Result<Self> {
        quick_xml::de::from_str(xml).map_err(|e| Error::LifecycleXml(Box::new(e)))
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
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Rule><ID>r1</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Disabled</Status>
                <Expiration><Days>7</Days><ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker></Expiration>
                <NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>
              </Rule>
            </LifecycleConfiguration>"#;
        let config = LifecycleConfiguration::from_xml(xml).unwrap();
        assert_eq!(config.rules.len(), 1);
        assert_eq!(config.rules[0].status, RuleStatus::Disabled);
        assert_eq!(config.rules[0].expiration, Some(Expiration { days: 7 }));
        assert_eq!(config.rules[0].filter.prefix.as_deref(), Some("logs/"));
    }
}
