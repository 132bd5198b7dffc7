//! The record payload: one [`Batch`] in postcard, the same bytes on the WAL and on Kafka.

use crate::error::{Error, Result};
use crate::event::Batch;

/// Encodes a batch as a record payload.
pub fn encode(batch: &Batch) -> Result<Vec<u8>> {
    postcard::to_allocvec(batch).map_err(Error::Encode)
}

/// Decodes a record payload.
pub fn decode(payload: &[u8]) -> Result<Batch> {
    postcard::from_bytes(payload).map_err(Error::Decode)
}
