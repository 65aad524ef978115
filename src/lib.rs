//! phone-enrich: enrich phone lists with mobile-operator data from SMSC's `get_operator`.
//!
//! The pipeline, one module per stage: [`config`] (the validated job) → [`input`] (pieces of
//! rows) → [`normalize`] (E.164) → [`plan`] (what to ask) → [`pacer`] + [`provider`] (the
//! requests) → [`state`] (the checkpoint and cache) → [`output`] (the enriched Parquet).
//! [`job`] runs the stages in order and [`outcome`] holds what it ends with; [`probe`] shows one
//! request whole, [`exchange`] moves a store's answers in and out as Parquet (shards),
//! [`metrics`] writes a run's figures for Prometheus; `main.rs` only parses the command line.
//! The modules import one another only downwards, in the order of ARCHITECTURE.md's `Layers:`
//! line (kept true by `tests/tidy.rs`).

pub mod config;
pub mod exchange;
pub mod generate;
pub mod input;
pub mod job;
pub mod metrics;
pub mod normalize;
pub mod outcome;
pub mod output;
pub mod pacer;
pub mod pass;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod provider;
pub mod report;
pub mod state;
pub mod storage;
pub mod transfer;
