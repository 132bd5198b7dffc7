//! The Kafka part: the bootstrap address of the loopback broker, fresh topics per test, and
//! client configs for rdkafka producers and consumers.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;

use crate::env::{self, E2eEnv, Part};
use crate::{Error, Result, unique_name};

/// A reachable Kafka broker.
#[derive(Debug, Clone)]
pub struct TestKafka {
    bootstrap: String,
}

impl TestKafka {
    /// Read `KAFKA_BOOTSTRAP` and check that the broker answers a metadata request.
    /// `None` (skip) or a panic under `REQUIRE_E2E=1` when it is missing.
    pub async fn connect() -> Option<Self> {
        match Self::try_connect().await {
            Ok(kafka) => Some(kafka),
            Err(why) => env::unavailable(Part::Kafka, &why),
        }
    }

    async fn try_connect() -> std::result::Result<Self, String> {
        let env = E2eEnv::load().map_err(|e| crate::error::chain(&e))?;
        let kafka = Self {
            bootstrap: env.require("KAFKA_BOOTSTRAP")?.to_owned(),
        };
        let config = kafka.client_config();
        // rdkafka's metadata call blocks; keep it off the async runtime's threads.
        let brokers = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
            let metadata = consumer
                .fetch_metadata(None, Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(metadata.brokers().len())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("broker at {} did not answer metadata: {e}", kafka.bootstrap))?;
        if brokers == 0 {
            return Err(format!("broker at {} lists no brokers", kafka.bootstrap));
        }
        Ok(kafka)
    }

    /// `host:port` of the broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Base client config: the bootstrap address, IPv4 only (the broker listens on 127.0.0.1).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("broker.address.family", "v4");
        config
    }

    /// Create a uniquely named topic with `partitions` partitions and wait until it exists.
    pub async fn fresh_topic(&self, prefix: &str, partitions: i32) -> Result<String> {
        let topic = unique_name(prefix);
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .map_err(kafka_err("create admin client"))?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(
                &[NewTopic::new(
                    &topic,
                    partitions,
                    TopicReplication::Fixed(1),
                )],
                &options,
            )
            .await
            .map_err(kafka_err("create topic"))?;
        for result in results {
            result.map_err(|(topic, code)| Error::CreateTopic {
                topic,
                code: code.to_string(),
            })?;
        }
        Ok(topic)
    }

    /// A producer that waits for the broker's acknowledgement of every record.
    pub fn producer(&self) -> Result<FutureProducer> {
        self.client_config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(kafka_err("create producer"))
    }

    /// A consumer in `group` that starts from the earliest offset and commits only explicitly.
    pub fn consumer(&self, group: &str) -> Result<StreamConsumer> {
        self.client_config()
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "10000")
            .create()
            .map_err(kafka_err("create consumer"))
    }

    /// Committed offsets of `group` on partition 0..`partitions` of `topic` (`None` = none yet).
    pub fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> Result<Vec<Option<i64>>> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .create()
            .map_err(kafka_err("create consumer"))?;
        let mut list = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .map_err(kafka_err("fetch committed offsets"))?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                rdkafka::Offset::Offset(n) => Some(n),
                _ => None,
            })
            .collect())
    }
}

fn kafka_err(op: &'static str) -> impl Fn(rdkafka::error::KafkaError) -> Error {
    move |source| Error::Kafka {
        op: op.to_owned(),
        source,
    }
}
