//! # kuryr6-plan
//!
//! The resolved plan as plain data, and the pure arithmetic around it. The
//! host (`kuryr6`) and the plugin SDK (`kuryr6-plugin-sdk`) both depend on
//! this crate, so the plan exists once:
//!
//! - [`Plan`] and its steps ([`types`]), generic over what a struct does
//!   with fields it does not know ([`unknown`]): the host parses strictly
//!   ([`Strict`], the default), the SDK carries them through ([`Extra`]);
//! - [`addr`]: strict prefix parsing, the guide's subnet layouts, site
//!   carving, overlap — family-agnostic, total, no panics;
//! - [`abi`]: the constants and small value types of the plugin contract
//!   (`sdk/wit/plugin.wit`) that both sides of it name.
//!
//! Invariant: no dependency beyond serde, serde_json, ipnet and thiserror.
//! Guests compile this crate; wasmtime, HTTP and TOML stay in the host.

pub mod abi;
pub mod addr;
pub mod types;
pub mod unknown;

pub use types::*;
pub use unknown::{Extra, Strict};
