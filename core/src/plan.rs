//! The resolved plan: what kuryr6 will make, as plain data.
//!
//! The types live in the `kuryr6-plan` crate, which the plugin SDK shares,
//! so the plan exists once. The host uses them with [`Strict`] (the
//! default): a field it does not know — from a plugin, say — is an error.
//! Invariants once `validate::plan` returned no error: names are unique,
//! every reference names an earlier step of the right kind, every address
//! and pool lies inside its subnet.

pub use kuryr6_plan::Strict;
pub use kuryr6_plan::types::*;
