//! WebAssembly plugins: code a site supplies to rewrite plans (`plan`),
//! name resources (`naming`) and judge plans (`policy`), run in a sandbox
//! before anything reaches the cloud.
//!
//! The contract is the WIT package `kuryr6:plugin@0.2.0` in sdk/wit/; a
//! plugin is a WebAssembly component built with kuryr6-plugin-sdk. Plugins
//! built against older compatible versions (0.1.x) keep running.
//!
//! - `abi`: which contract versions this host runs, and which one a
//!   component was built against.
//! - `host`: the only module that touches wasmtime (engine, caches,
//!   sandbox, limits, calls).
//! - `boundary`: size limits on everything a plugin returns, and what
//!   each hook may change in a plan (an allow-list).
//! - `cache`: where compiled plugins are kept on disk.
//! - `spec`: the `[[plugin]]` tables of a pipeline, checked and resolved
//!   (kept in `Loaded`, so nothing reads them twice).
//! - `hooks`: those specs → hooks run on its plan, every result
//!   re-validated; policy across sites.
//! - `reference`, `oci`, `store`, `lock`, `signature`, `dist`: plugins
//!   from OCI registries (`source = "oci://…"`), the local store, the
//!   `kuryr6.lock` file, minisign signatures, and the decision combining
//!   them (dist.rs).
//! - `fixture`: run one hook on a JSON fixture (`kuryr6 plugin test`, the
//!   SDK's test harness).
//! - `scaffold`: a new plugin crate (`kuryr6 plugin new`).
//!
//! Invariants: a plugin only runs if the pipeline pins its sha256; its
//! output is never trusted (bounded in size before it is copied, compared
//! with its input against the hook's allow-list, re-parsed strictly and
//! re-validated with the rules hand-written plans obey); any failure names
//! the plugin and hook and stops the command before any API call.

pub mod abi;
pub mod boundary;
pub mod cache;
pub mod dist;
pub mod error;
pub mod fixture;
pub mod hooks;
pub mod host;
pub mod lock;
pub mod oci;
pub mod reference;
pub mod scaffold;
pub mod signature;
pub mod spec;
pub mod store;

pub use error::PluginError;
pub use hooks::{apply, policy_gate};
pub use host::{CacheDir, Called, Host, LoadedPlugin, Origin, Plugin, sha256_hex};

use std::time::Duration;

/// The contract's constants and value types, shared with the SDK.
pub use kuryr6_plan::abi::{ABI_VERSION, Facts, Hook, ResourceKind, Severity, Violation};
/// The newest WIT package version, the one the SDK builds; older
/// compatible ones are in `abi::SUPPORTED_MINORS`.
pub const WIT_VERSION: &str = abi::NEWEST;

/// Default wall-clock deadline of one hook call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);
/// Default memory cap of one plugin instance.
pub const DEFAULT_MEMORY_MIB: u64 = 64;
/// Bounds accepted in pipeline files.
pub const MAX_DEADLINE_MS: u64 = 60_000;
pub const MAX_MEMORY_MIB: u64 = 4096;

/// One site handed to a policy hook.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteInput {
    pub name: String,
    pub facts: Facts,
    pub plan_json: String,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub hooks: Vec<Hook>,
    /// The contract it was built against, e.g. "kuryr6:plugin@0.1.0".
    pub contract: String,
    /// Its own version (`meta.version`, contract 0.2.0 and later).
    pub version: Option<String>,
}

/// Limits of every call into one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for instantiation plus the call.
    pub deadline: Duration,
    /// Cap on the guest's linear memory.
    pub memory_mib: u64,
    /// Instruction budget; `None` = metered but unlimited.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: DEFAULT_DEADLINE,
            memory_mib: DEFAULT_MEMORY_MIB,
            fuel: None,
        }
    }
}

impl Limits {
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }
}
