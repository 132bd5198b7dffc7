//! The `logstream` binary's library: one module per subcommand, so tests and benchmarks start
//! the same servers the binary does.

pub mod agent;
pub mod bench;
pub mod bench_agent;
pub mod bench_pipelines;
pub mod config;
pub mod distributed;
pub mod operator;
pub mod pipelines;
pub mod query_cli;
pub mod retention;
pub mod standalone;
pub mod telemetry;
