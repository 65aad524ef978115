//! The tests through the binary, as one test crate (one link of polars instead of one per file):
//! [`common`] is the harness, each other module one area.

mod common;
mod dialects;
mod enrich;
mod input;
mod jobs;
mod libphonenumber;
mod metadata;
mod operability;
mod readings;
mod resilience;
mod store;
mod throughput;
mod typed;
