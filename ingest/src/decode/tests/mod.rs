//! Tests across the decoders through the public API: table-driven paths and errors, protobuf
//! round trips, NDJSON forms, mutated-input robustness, real sample data and a micro-benchmark.

mod bench;
mod fuzz;
mod loki_json;
mod loki_proto;
mod ndjson;
mod sample_data;
mod support;
