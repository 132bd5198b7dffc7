//! The Kafka part is real: records produced through rdkafka are consumed by a consumer group,
//! the group's commit is stored by the broker, and a new member resumes after it.

use std::collections::BTreeSet;
use std::time::Duration;

use logstream_e2e::kafka::TestKafka;
use logstream_e2e::unique_name;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    values: impl IntoIterator<Item = String>,
) -> anyhow::Result<()> {
    for value in values {
        let record = FutureRecord::to(topic).key(&value).payload(&value);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(err, _)| err)?;
    }
    Ok(())
}

async fn consume(consumer: &StreamConsumer, count: usize) -> anyhow::Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while seen.len() < count {
            let message = consumer.recv().await?;
            seen.insert(
                String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            );
        }
        anyhow::Ok(())
    })
    .await??;
    Ok(seen)
}

#[tokio::test]
async fn produce_consume_round_trip_with_group_commit() -> anyhow::Result<()> {
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    let topic = kafka.fresh_topic("roundtrip", 2).await?;
    let group = unique_name("group");
    let producer = kafka.producer()?;
    produce(&producer, &topic, (0..10).map(|i| format!("record-{i}"))).await?;

    let first = kafka.consumer(&group)?;
    first.subscribe(&[&topic])?;
    let seen = consume(&first, 10).await?;
    first.commit_consumer_state(CommitMode::Sync)?;
    drop(first);

    assert_eq!(seen, (0..10).map(|i| format!("record-{i}")).collect());
    let committed = kafka.committed_offsets(&group, &topic, 2)?;
    assert_eq!(
        committed.iter().flatten().sum::<i64>(),
        10,
        "committed offsets {committed:?}"
    );

    produce(&producer, &topic, ["after-commit".to_owned()]).await?;
    let second = kafka.consumer(&group)?;
    second.subscribe(&[&topic])?;
    let resumed = consume(&second, 1).await?;
    assert_eq!(
        resumed,
        BTreeSet::from(["after-commit".to_owned()]),
        "a new member resumes after the commit"
    );
    Ok(())
}
