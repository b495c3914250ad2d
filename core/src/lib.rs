//! kuryr6: Kuryr's IPv6 guide as one command.
//!
//! Data flows one way: pipeline file (`pipeline`) → plan (`lower`,
//! `addr`) → validation (`validate`) → [plugins] → diff against the cloud →
//! apply → emit (`emit`). Address planning and validation know nothing
//! about HTTP.

pub mod addr;
pub mod cloud;
pub mod cloud_choice;
pub mod commands;
pub mod diag;
pub mod emit;
pub mod engine;
pub mod fleet;
pub mod graph;
pub mod import;
pub mod load;
pub mod loaded;
pub mod lower;
pub mod pipeline;
pub mod plan;
pub mod plugin;
pub mod report;
pub mod rule_canon;
pub mod source;
#[cfg(test)]
mod test_seed;
pub mod validate;
