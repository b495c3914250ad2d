//! What can go wrong with a plugin, as one typed enum. Every variant names
//! the plugin (as the pipeline names it) and, once it runs, the hook; the
//! CLI turns each into a diagnostic with a help text (`help`).

use std::path::PathBuf;
use std::time::Duration;

/// A plugin failure. Invariant: whatever the plugin did, the host process
/// is unharmed and the plan it was working on is discarded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The `.wasm` file cannot be read.
    #[error("plugin {plugin}: cannot read {}: {source}", path.display())]
    Io {
        plugin: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not the one the pipeline pinned (or nothing is pinned).
    #[error("plugin {plugin}: {}", match expected {
        Some(e) => format!("sha256 is {actual}, but the pipeline pins {e}"),
        None => format!("no sha256 pin (the file's sha256 is {actual})"),
    })]
    HashMismatch {
        plugin: String,
        expected: Option<String>,
        actual: String,
    },
    /// Not a usable component: does not compile, imports something the
    /// sandbox does not provide, lacks an export, or declares no such hook.
    #[error("plugin {plugin}: {message}")]
    Load { plugin: String, message: String },
    /// Built against a version of the contract this kuryr6 does not run
    /// (`found`, e.g. "kuryr6:plugin@1.0.0"), or reporting another
    /// `abi-version`; `expected` says what it runs.
    #[error(
        "plugin {plugin}: built against {found}; this kuryr6 runs plugins built against {expected}"
    )]
    AbiMismatch {
        plugin: String,
        expected: String,
        found: String,
    },
    /// Still running at the wall-clock deadline.
    #[error("plugin {plugin}, hook {hook}: still running after its {} ms deadline", deadline.as_millis())]
    Deadline {
        plugin: String,
        hook: &'static str,
        deadline: Duration,
    },
    /// Tried to grow its memory past the cap.
    #[error("plugin {plugin}, hook {hook}: tried to use more than its {limit_mib} MiB of memory")]
    Memory {
        plugin: String,
        hook: &'static str,
        limit_mib: u64,
    },
    /// Used up its fuel budget (a deterministic instruction budget).
    #[error("plugin {plugin}, hook {hook}: used up its fuel budget of {fuel}")]
    Fuel {
        plugin: String,
        hook: &'static str,
        fuel: u64,
    },
    /// Crashed: a panic, an unreachable, an out-of-bounds access, a stack
    /// overflow. `stderr` holds what the guest printed (a panic message).
    #[error(
        "plugin {plugin}, hook {hook}: crashed: {message}{}{}",
        stderr_suffix(stderr),
        backtrace_suffix(backtrace)
    )]
    Trap {
        plugin: String,
        hook: &'static str,
        /// The trap itself, e.g. "wasm trap: wasm `unreachable` instruction executed".
        message: String,
        /// What the guest printed; a Rust panic message lands here.
        stderr: String,
        /// The guest's call stack at the trap, with function names.
        backtrace: String,
    },
    /// Returned something that is not what the hook promises: unparsable
    /// JSON, a plan that fails validation, an unusable name.
    #[error("plugin {plugin}, hook {hook}: returned invalid output: {reason}")]
    InvalidOutput {
        plugin: String,
        hook: &'static str,
        reason: String,
    },
    /// Answered with (or created) more than the boundary accepts: a string,
    /// a list, JSON nesting, table elements, WASI resources. Checked before
    /// the answer is copied or parsed (plugin/boundary.rs has the limits).
    #[error("plugin {plugin}, hook {hook}: {what} of {size} exceeds the limit of {limit}")]
    Oversize {
        plugin: String,
        hook: &'static str,
        what: String,
        size: usize,
        limit: usize,
    },
    /// An `oci://` plugin (or a signed path plugin) refused before it was
    /// compiled: lock file, registry, store or signature (plugin/dist.rs).
    #[error("plugin {plugin} {error}")]
    Distribution {
        plugin: String,
        error: super::dist::DistError,
    },
    /// The plugin ran fine and answered with an error of its own.
    #[error("plugin {plugin}, hook {hook}: {message}")]
    Refused {
        plugin: String,
        hook: &'static str,
        message: String,
    },
}

fn backtrace_suffix(backtrace: &str) -> String {
    if backtrace.trim().is_empty() {
        String::new()
    } else {
        format!("\nguest backtrace:\n{}", backtrace.trim_end())
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("\nplugin stderr:\n{}", stderr.trim_end())
    }
}

impl PluginError {
    /// What would fix it, for the diagnostic's help line.
    pub fn help(&self) -> String {
        match self {
            PluginError::Io { .. } => {
                "check `path` (relative to the pipeline file); build the shipped plugins with scripts/build-plugins.sh".into()
            }
            PluginError::HashMismatch { actual, .. } => format!(
                "if you trust this file, pin it: sha256 = \"{actual}\"; otherwise rebuild the plugin from the source you reviewed"
            ),
            PluginError::Load { .. } => {
                "build the plugin with kuryr6-plugin-sdk for wasm32-wasip2 (see sdk/README.md)".into()
            }
            PluginError::AbiMismatch { .. } => {
                "a plugin built for a newer contract needs a newer kuryr6; otherwise ask its vendor for a build against one of the versions above (kuryr6-plugin-sdk; sdk/README.md, \"Versions and compatibility\")".into()
            }
            PluginError::Deadline { .. } => {
                "the plugin may loop forever; if it is just slow, raise deadline_ms in its [[plugin]] table".into()
            }
            PluginError::Memory { .. } => {
                "if the plugin legitimately needs more, raise memory_mib in its [[plugin]] table".into()
            }
            PluginError::Fuel { .. } => {
                "raise fuel in its [[plugin]] table, or remove it to rely on the deadline only".into()
            }
            PluginError::Trap { .. } => {
                "this is a bug in the plugin (see its message above); kuryr6 made no change".into()
            }
            PluginError::InvalidOutput { .. } => {
                "a hook may change only what sdk/README.md lists for it, and must return what passes the same validation as a hand-written plan; report this to the plugin's author".into()
            }
            PluginError::Oversize { .. } => {
                "kuryr6 bounds every value a plugin returns (sdk/README.md, \"Limits at the boundary\"); report this to the plugin's author".into()
            }
            PluginError::Distribution { error, .. } => error.help(),
            PluginError::Refused { .. } => {
                "check the plugin's facts in [plugin.facts] against what the plugin expects".into()
            }
        }
    }

    /// True for problems found before the plugin ran any hook.
    pub fn is_load_error(&self) -> bool {
        matches!(
            self,
            PluginError::Io { .. }
                | PluginError::HashMismatch { .. }
                | PluginError::Load { .. }
                | PluginError::AbiMismatch { .. }
                | PluginError::Distribution { .. }
        )
    }

    /// The variant's name, stable for scripts and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Io { .. } => "Io",
            PluginError::HashMismatch { .. } => "HashMismatch",
            PluginError::Load { .. } => "Load",
            PluginError::AbiMismatch { .. } => "AbiMismatch",
            PluginError::Deadline { .. } => "Deadline",
            PluginError::Memory { .. } => "Memory",
            PluginError::Fuel { .. } => "Fuel",
            PluginError::Trap { .. } => "Trap",
            PluginError::InvalidOutput { .. } => "InvalidOutput",
            PluginError::Oversize { .. } => "Oversize",
            PluginError::Refused { .. } => "Refused",
            PluginError::Distribution { error, .. } => error.kind(),
        }
    }
}
