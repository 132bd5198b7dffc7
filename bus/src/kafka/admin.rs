//! Topic administration: creating the bus topic with the settings the producer relies on.
//! A plain library function, so the operator can call it as well as the binaries.

use super::{KafkaConfig, TOPIC_MAX_MESSAGE_BYTES, TracingContext, classify};
use crate::error::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use std::time::{Duration, Instant};

/// What the topic looks like on the brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicInfo {
    /// Partitions the topic actually has (the producer and consumers use this, not the config).
    pub partitions: i32,
}

/// An admin client for `cfg` (validated first) and options bounding each call by the
/// configured request timeout.
fn admin_client(cfg: &KafkaConfig) -> Result<(AdminClient<TracingContext>, AdminOptions)> {
    cfg.validate().map_err(Error::Rejected)?;
    let admin = cfg
        .client_config(&[])
        .create_with_context(TracingContext)
        .map_err(|e| Error::Rejected(format!("create Kafka admin client: {e}")))?;
    let timeout = cfg.request_timeout();
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    Ok((admin, options))
}

/// Creates `cfg.topic` with `cfg.partitions` partitions, `cfg.replication_factor` replicas,
/// `max.message.bytes` 8 MiB and `min.insync.replicas` min(2, replicas). An existing topic is
/// kept as it is: its partition count is reported (with a warning when it differs from the
/// config) and never changed, since adding partitions would move streams. Idempotent.
pub async fn ensure_topic(cfg: &KafkaConfig) -> Result<TopicInfo> {
    let (admin, options) = admin_client(cfg)?;
    let max_message = TOPIC_MAX_MESSAGE_BYTES.to_string();
    let min_isr = cfg.replication_factor.min(2).to_string();
    let topic = NewTopic::new(
        &cfg.topic,
        cfg.partitions,
        TopicReplication::Fixed(cfg.replication_factor),
    )
    .set("max.message.bytes", &max_message)
    .set("min.insync.replicas", &min_isr);
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| classify("create topic", &e))?;
    let mut created = false;
    for result in results {
        match result {
            Ok(_) => created = true,
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(create_error(&name, code)),
        }
    }
    let partitions = wait_for_partitions(admin, cfg, created).await?;
    if created {
        tracing::info!(topic = %cfg.topic, partitions, "created the bus topic");
    } else if partitions != cfg.partitions {
        tracing::warn!(
            topic = %cfg.topic,
            partitions,
            configured = cfg.partitions,
            "the bus topic exists with another partition count; keeping it (LogStream never \
             adds or removes partitions)"
        );
    }
    Ok(TopicInfo { partitions })
}

/// Deletes `cfg.topic` and every event still in it (uninstall). A topic that does not exist is
/// not an error, so this is idempotent. Returns whether a topic was deleted.
pub async fn delete_topic(cfg: &KafkaConfig) -> Result<bool> {
    let (admin, options) = admin_client(cfg)?;
    let results = admin
        .delete_topics(&[cfg.topic.as_str()], &options)
        .await
        .map_err(|e| classify("delete topic", &e))?;
    let mut deleted = false;
    for result in results {
        match result {
            Ok(_) => deleted = true,
            Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((name, code)) => {
                let message = format!("delete topic {name}: {code}");
                return Err(match code {
                    RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::PolicyViolation => Error::Rejected(message),
                    _ => Error::Unavailable(message),
                });
            }
        }
    }
    if deleted {
        tracing::info!(topic = %cfg.topic, "deleted the bus topic");
    }
    Ok(deleted)
}

fn create_error(topic: &str, code: RDKafkaErrorCode) -> Error {
    let message = format!("create topic {topic}: {code}");
    match code {
        RDKafkaErrorCode::InvalidReplicationFactor => Error::Rejected(format!(
            "{message} (replication_factor exceeds the number of brokers?)"
        )),
        RDKafkaErrorCode::InvalidPartitions
        | RDKafkaErrorCode::InvalidTopic
        | RDKafkaErrorCode::InvalidConfig
        | RDKafkaErrorCode::PolicyViolation
        | RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed => Error::Rejected(message),
        _ => Error::Unavailable(message),
    }
}

/// Reads the partition count from metadata; right after creation the brokers may need a
/// moment to report all partitions and elect their leaders.
async fn wait_for_partitions(
    admin: AdminClient<TracingContext>,
    cfg: &KafkaConfig,
    created: bool,
) -> Result<i32> {
    let topic = cfg.topic.clone();
    let expected = cfg.partitions;
    let timeout = cfg.request_timeout();
    // rdkafka's metadata call blocks: keep it off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        loop {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| classify("read topic metadata", &e))?;
            let listed = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .filter(|t| t.error().is_none());
            let found = listed.map_or(0, |t| t.partitions().len() as i32);
            let led = listed.is_some_and(|t| t.partitions().iter().all(|p| p.leader() >= 0));
            // A new topic is ready once every partition has a leader: until then the first
            // pushes would wait for it.
            let complete = found > 0 && (!created || (found >= expected && led));
            if complete {
                return Ok(found);
            }
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "topic {topic} does not show its partitions in metadata yet"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .map_err(|e| Error::Kafka(format!("metadata task: {e}")))?
}
