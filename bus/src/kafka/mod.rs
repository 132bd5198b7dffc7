//! The bus on Apache Kafka: LogStream's bus in a cluster.
//!
//! One topic (default `logstream`) with a fixed number of partitions carries encoded
//! [`Batch`](crate::Batch)es (see [`codec`](crate::codec)). A stream always lands in the same
//! partition ([`partitioning`]), so its events stay ordered.
//!
//! - [`admin::ensure_topic`] creates the topic (the operator calls it).
//! - [`KafkaProducer`] is ingest's side: a transactional producer with group commit, so one
//!   request is visible to consumers all together or not at all.
//! - [`GroupConsumer`] is the processors' side: a consumer group that hands out each assigned
//!   partition as a [`KafkaPartitionReader`] + [`KafkaPartitionControl`] pair.
//! - [`Follower`] is the query side: it reads given partitions from given offsets without a
//!   group, to show acknowledged events before they reach Parquet.
//!
//! All clients read with `isolation.level=read_committed`: records of an aborted or still open
//! transaction are never handed out.

pub mod admin;
mod committer;
mod fetch;
mod follow;
mod group;
mod metrics;
pub mod partitioning;
mod producer;

pub use admin::{TopicInfo, delete_topic, ensure_topic};
pub use fetch::{KafkaPartitionControl, KafkaPartitionReader};
pub use follow::{FollowedPartition, Follower};
pub use group::{Assignment, GroupConsumer, StartOffset};
pub use metrics::KafkaMetrics;
pub use producer::KafkaProducer;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The largest message the topic accepts (`max.message.bytes`) and the producer sends
/// (`message.max.bytes`): twice [`KafkaConfig::max_message_bytes`]'s default, so the
/// protocol overhead of a full payload never reaches it.
pub const TOPIC_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// librdkafka properties LogStream sets itself because its guarantees depend on them; a
/// [`KafkaConfig::client`] entry may not change them.
const RESERVED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "transactional.id",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "isolation.level",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "partition.assignment.strategy",
    "group.protocol",
];

/// Settings of the Kafka bus, read from the `[kafka]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Brokers to bootstrap from: `host:port,host:port`.
    pub bootstrap: String,
    /// The topic holding every tenant's batches.
    pub topic: String,
    /// Partitions the topic is created with. It caps how many processors share the work.
    /// An existing topic keeps its count: LogStream never adds or removes partitions, since
    /// that would move streams between partitions.
    pub partitions: i32,
    /// Replicas of each partition when the topic is created. 1 suits a single test broker;
    /// production wants 3 (with `min.insync.replicas` 2, which [`ensure_topic`] sets).
    pub replication_factor: i32,
    /// The longest a push waits for the brokers before it is answered "unavailable" (503).
    pub request_timeout_ms: u64,
    /// How long a transaction stays open for more requests once it has one (group commit):
    /// more requests per commit cost each request up to this much latency.
    pub linger_ms: u64,
    /// A transaction stops taking requests once its messages reach this size.
    pub max_transaction_bytes: usize,
    /// Largest payload of one Kafka message: a request's streams of one partition are split
    /// into several messages above it. Must stay below the topic's `max.message.bytes`.
    pub max_message_bytes: usize,
    /// Requests waiting for a transaction; beyond it a push is answered "full" (429).
    pub max_queued_requests: usize,
    /// Bytes of requests waiting for a transaction; beyond it a push is answered "full".
    pub max_queued_bytes: usize,
    /// Extra librdkafka properties for every client (`security.protocol`, `sasl.*`, `ssl.*`,
    /// tuning such as `fetch.wait.max.ms`). They are applied after LogStream's own defaults;
    /// the properties LogStream's guarantees rest on (acks, idempotence, isolation level,
    /// commits, group membership) are refused by [`KafkaConfig::validate`].
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap: String::new(),
            topic: "logstream".to_owned(),
            partitions: 12,
            replication_factor: 1,
            request_timeout_ms: 10_000,
            linger_ms: 5,
            max_transaction_bytes: 16 * 1024 * 1024,
            max_message_bytes: 4 * 1024 * 1024,
            max_queued_requests: 1024,
            max_queued_bytes: 256 * 1024 * 1024,
            client: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Checks the settings without contacting Kafka; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.bootstrap.split(',').all(|b| b.trim().is_empty()) {
            return Err("kafka.bootstrap is empty: list the brokers as host:port,host:port".into());
        }
        if let Some(bad) = self.bootstrap.split(',').find(|b| !b.contains(':')) {
            return Err(format!(
                "kafka.bootstrap entry {bad:?} has no port: write host:port"
            ));
        }
        let topic_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.topic.is_empty() || self.topic.len() > 249 || !self.topic.chars().all(topic_ok) {
            return Err(format!(
                "kafka.topic {:?} is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)",
                self.topic
            ));
        }
        if self.partitions < 1 {
            return Err(format!(
                "kafka.partitions is {}: it must be at least 1",
                self.partitions
            ));
        }
        if self.replication_factor < 1 {
            return Err(format!(
                "kafka.replication_factor is {}: it must be at least 1 (3 in production)",
                self.replication_factor
            ));
        }
        if self.request_timeout_ms < 1000 {
            return Err(format!(
                "kafka.request_timeout_ms is {}: below 1000 a healthy cluster would time out",
                self.request_timeout_ms
            ));
        }
        if self.max_message_bytes < 64 * 1024
            || self.max_message_bytes > TOPIC_MAX_MESSAGE_BYTES / 2
        {
            return Err(format!(
                "kafka.max_message_bytes is {}: it must lie between 65536 and {}",
                self.max_message_bytes,
                TOPIC_MAX_MESSAGE_BYTES / 2
            ));
        }
        if self.max_queued_requests < 1 || self.max_transaction_bytes < 1 {
            return Err(
                "kafka.max_queued_requests and max_transaction_bytes must be at least 1".into(),
            );
        }
        if let Some(key) = self
            .client
            .keys()
            .find(|k| RESERVED_PROPERTIES.contains(&k.as_str()))
        {
            return Err(format!(
                "kafka.client.{key:?} is set by LogStream itself and may not be overridden"
            ));
        }
        Ok(())
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Base settings of every client: the brokers, then the `client` properties.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.client {
            config.set(k, v);
        }
        config
    }
}

/// The name processors give a partition in their manifests: `kafka-<topic>-<partition>`.
pub fn source_name(topic: &str, partition: i32) -> String {
    format!("kafka-{topic}-{partition}")
}

/// Sorts a client failure into the bus's error kinds: the brokers being unreachable or slow
/// is `Unavailable` (503, retry later); a refusal that will repeat is `Rejected`.
pub(crate) fn classify(context: &str, err: &KafkaError) -> crate::Error {
    let message = format!("{context}: {err}");
    let code = match err {
        KafkaError::Transaction(e) => Some(e.code()),
        other => other.rdkafka_error_code(),
    };
    match code {
        Some(code) if is_unavailable(code) => crate::Error::Unavailable(message),
        Some(code) if is_rejection(code) => crate::Error::Rejected(message),
        _ => crate::Error::Kafka(message),
    }
}

fn is_unavailable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::OperationTimedOut
            | C::RequestTimedOut
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::Resolve
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NetworkException
            | C::UnknownTopicOrPartition
            | C::ConcurrentTransactions
            | C::ProducerFenced
            | C::InvalidProducerEpoch
            | C::Fenced
            | C::TransactionCoordinatorFenced
            | C::UnknownProducerId
            | C::OutOfOrderSequenceNumber
            | C::BrokerNotAvailable
            | C::ReplicaNotAvailable
            | C::TimedOutQueue
            | C::MessageTimedOut
            | C::QueueFull
            | C::PurgeQueue
            | C::PurgeInflight
            | C::State
            | C::Fatal
            | C::KafkaStorageError
            | C::WaitCache
    )
}

fn is_rejection(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::MessageBatchTooLarge
            | C::InvalidRecord
            | C::InvalidMessage
            | C::InvalidMessageSize
            | C::TopicAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::InvalidReplicationFactor
            | C::InvalidPartitions
            | C::InvalidTopic
            | C::PolicyViolation
            | C::InvalidConfig
    )
}

/// Forwards librdkafka's log lines to `tracing`.
pub(crate) fn forward_log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
}

/// A client context that only sends librdkafka's logs and errors to `tracing`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TracingContext;

impl rdkafka::ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "{reason}");
    }
}

impl rdkafka::producer::ProducerContext for TracingContext {
    type DeliveryOpaque = ();

    // A transaction's commit fails when any of its messages failed, so single reports add
    // nothing; they are drained and dropped.
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> KafkaConfig {
        KafkaConfig {
            bootstrap: "kafka-0:9092,kafka-1:9092".into(),
            ..KafkaConfig::default()
        }
    }

    #[test]
    fn defaults_need_only_a_bootstrap() {
        assert!(
            KafkaConfig::default()
                .validate()
                .unwrap_err()
                .contains("empty")
        );
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn validation_names_the_bad_field() {
        let bad = |f: fn(&mut KafkaConfig)| {
            let mut c = valid();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.partitions = 0).contains("kafka.partitions"));
        assert!(bad(|c| c.replication_factor = 0).contains("replication_factor"));
        assert!(bad(|c| c.topic = "a b".into()).contains("kafka.topic"));
        assert!(bad(|c| c.bootstrap = "kafka".into()).contains("no port"));
        assert!(bad(|c| c.max_message_bytes = 100 << 20).contains("max_message_bytes"));
        assert!(
            bad(|c| {
                c.client.insert("enable.idempotence".into(), "false".into());
            })
            .contains("enable.idempotence")
        );
    }

    #[test]
    fn config_reads_from_toml_like_input_with_defaults() {
        // serde's value deserializer stands in for the TOML file the binary reads.
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error as DeError, MapDeserializer};
        let map = MapDeserializer::<_, DeError>::new(
            [("bootstrap", "k:9092"), ("topic", "logs")].into_iter(),
        );
        let c = KafkaConfig::deserialize(map.into_deserializer()).unwrap();
        assert_eq!(c.topic, "logs");
        assert_eq!(c.partitions, 12);
        assert_eq!(c.request_timeout_ms, 10_000);
    }

    #[test]
    fn client_failures_sort_into_retry_later_and_refused() {
        use rdkafka::error::KafkaError as K;
        let unavailable = [
            K::MessageProduction(RDKafkaErrorCode::QueueFull),
            K::Flush(RDKafkaErrorCode::OperationTimedOut),
            K::MetadataFetch(RDKafkaErrorCode::AllBrokersDown),
        ];
        for e in unavailable {
            assert!(
                matches!(classify("op", &e), crate::Error::Unavailable(_)),
                "{e}"
            );
        }
        let refused = K::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let err = classify("produce", &refused);
        assert!(matches!(err, crate::Error::Rejected(_)), "{err}");
        assert!(
            err.to_string().contains("produce"),
            "the operation is named: {err}"
        );
        let other = K::MessageProduction(RDKafkaErrorCode::InvalidArgument);
        assert!(matches!(classify("op", &other), crate::Error::Kafka(_)));
    }

    #[test]
    fn source_names_carry_topic_and_partition() {
        assert_eq!(source_name("logstream", 7), "kafka-logstream-7");
    }
}
