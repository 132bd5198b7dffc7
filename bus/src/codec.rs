//! The record payload: one [`Batch`] in postcard, the same bytes on the WAL and on Kafka.
//!
//! Records written before batches carried an [`Origin`](crate::Origin) end where the origin
//! would start; they still decode, as batches without one.

use crate::error::{Error, Result};
use crate::event::{Batch, Stream};
use serde::Deserialize;

/// Encodes a batch as a record payload.
pub fn encode(batch: &Batch) -> Result<Vec<u8>> {
    postcard::to_allocvec(batch).map_err(Error::Encode)
}

/// Decodes a record payload.
pub fn decode(payload: &[u8]) -> Result<Batch> {
    match postcard::from_bytes(payload) {
        Err(postcard::Error::DeserializeUnexpectedEnd) => {
            let old: BatchWithoutOrigin = postcard::from_bytes(payload).map_err(Error::Decode)?;
            Ok(Batch {
                tenant: old.tenant,
                streams: old.streams,
                origin: None,
            })
        }
        other => other.map_err(Error::Decode),
    }
}

/// The payload as written before origins.
#[derive(Deserialize)]
struct BatchWithoutOrigin {
    tenant: String,
    streams: Vec<Stream>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Entry, Labels, Origin};
    use serde::Serialize;

    fn streams() -> Vec<Stream> {
        vec![Stream {
            labels: Labels::new(vec![("app".into(), "a".into())]).unwrap(),
            entries: vec![Entry {
                ts_ns: 7,
                line: "hello".into(),
                metadata: vec![],
            }],
        }]
    }

    #[test]
    fn batches_with_and_without_origin_round_trip() {
        for origin in [
            None,
            Some(Origin {
                source: "node-1/abc".into(),
                seq: 4096,
                part: 2,
            }),
        ] {
            let b = Batch {
                tenant: "t".into(),
                streams: streams(),
                origin,
            };
            assert_eq!(decode(&encode(&b).unwrap()).unwrap(), b);
        }
    }

    #[test]
    fn records_from_before_origins_still_decode() {
        #[derive(Serialize)]
        struct Old {
            tenant: String,
            streams: Vec<Stream>,
        }
        let bytes = postcard::to_allocvec(&Old {
            tenant: "t".into(),
            streams: streams(),
        })
        .unwrap();
        let b = decode(&bytes).unwrap();
        assert_eq!(
            (b.tenant.as_str(), b.streams, b.origin),
            ("t", streams(), None)
        );
        // A payload cut short is still an error, not an empty batch.
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
    }
}
