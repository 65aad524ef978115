//! phone-enrich: enrich phone lists with mobile-operator data from SMSC's `get_operator`.
//!
//! The pipeline, one module per stage: [`config`] (the validated job) → [`input`] (batches of
//! rows) → [`normalize`] (E.164) → [`plan`] (what to ask) → [`pacer`] + [`provider`] (the
//! requests) → [`state`] (the checkpoint and cache) → [`output`] (the enriched Parquet).
//! [`job`] runs the stages in order, [`probe`] shows one request whole, [`exchange`] moves a
//! store's answers in and out as Parquet (shards); `main.rs` only parses the command line.
//! See ARCHITECTURE.md for the invariants.

pub mod config;
pub mod exchange;
pub mod generate;
pub mod input;
pub mod job;
pub mod normalize;
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
