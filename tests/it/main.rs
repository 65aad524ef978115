//! The tests through the binary, as one test crate (one link of polars instead of one per file):
//! [`common`] is the harness, each other module one area.

mod common;
mod dialects;
mod disk;
mod enrich;
mod fast_path;
mod input;
mod jobs;
mod libphonenumber;
mod metadata;
mod metrics;
mod network;
mod object_store;
mod operability;
mod readings;
mod resilience;
mod shared_limits;
mod store;
mod throughput;
mod typed;
