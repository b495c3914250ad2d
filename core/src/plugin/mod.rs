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
//! - `apply`: those specs → hooks run on its plan, every result
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
pub mod apply;
pub mod boundary;
pub mod cache;
pub mod dist;
pub mod error;
pub mod fixture;
pub mod host;
pub mod lock;
pub mod oci;
pub mod reference;
pub mod scaffold;
pub mod signature;
pub mod spec;
pub mod store;

pub use apply::{apply, policy_gate};
pub use error::PluginError;
pub use host::{CacheDir, Called, Host, LoadedPlugin, Origin, Plugin, sha256_hex};

use std::time::Duration;

/// What a plugin's `describe().abi-version` must say (kuryr6-plugin-sdk's
/// `ABI_VERSION`): 1 for every 0.x contract (see `abi` and sdk/README.md).
pub const ABI_VERSION: u32 = 1;
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

/// The hooks of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    Plan,
    Naming,
    Policy,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::Plan, Hook::Naming, Hook::Policy];

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Plan => "plan",
            Hook::Naming => "naming",
            Hook::Policy => "policy",
        }
    }

    pub fn parse(s: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step's kind as the naming hook sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Network,
    Subnet,
    Router,
    SecurityGroup,
    Loadbalancer,
    Emit,
}

impl From<crate::plan::StepKind> for ResourceKind {
    fn from(k: crate::plan::StepKind) -> Self {
        use crate::plan::StepKind;
        match k {
            StepKind::Network => ResourceKind::Network,
            StepKind::Subnet => ResourceKind::Subnet,
            StepKind::Router => ResourceKind::Router,
            StepKind::SecurityGroup => ResourceKind::SecurityGroup,
            StepKind::Loadbalancer => ResourceKind::Loadbalancer,
            StepKind::Emit => ResourceKind::Emit,
        }
    }
}

/// `Error` stops the command; `Warning` is reported only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One policy finding, as the plugin returned it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    /// `SiteInput::name` of the site concerned; "" = all.
    pub site: String,
    /// Step within that site; "" = the site as a whole.
    pub step: String,
}

/// A site's `[plugin.facts]`, sorted by key (the order the plugin sees).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts(pub Vec<(String, String)>);

impl Facts {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

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
