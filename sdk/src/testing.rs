//! Host-side test harness: run a built plugin's hook on a JSON fixture from
//! plain `cargo test`, through kuryr6's own host — the same sandbox, limits,
//! output checks and plan validation as a pipeline run.
//!
//! ```ignore
//! use kuryr6_plugin_sdk::{Hook, testing};
//! let run = testing::run_fixture(&testing::built("naming"), Hook::Naming,
//!     r#"{"facts": {"site": "ams1"}, "kind": "subnet", "name": "pod_subnet"}"#).unwrap();
//! assert_eq!(run.output["name"], "ams1-pod-subnet");
//! ```
//!
//! Fixture shapes are those of `kuryr6 plugin test` (see
//! `kuryr6::plugin::fixture`).

use crate::Hook;
use std::path::{Path, PathBuf};

pub use kuryr6::plugin::fixture::{FixtureError, FixtureRun};
pub use kuryr6::plugin::{Limits, PluginError};

/// Where scripts/build-plugins.sh puts built plugins: `$KURYR6_PLUGIN_OUT`,
/// else `target/plugins` of this repository.
pub fn plugin_dir() -> PathBuf {
    match std::env::var_os("KURYR6_PLUGIN_OUT") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"),
    }
}

/// The built plugin `name` (e.g. "naming"). A test helper: panics with the
/// command to run when the plugin has not been built.
pub fn built(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the plugins first with scripts/build-plugins.sh",
        path.display()
    );
    path
}

fn host_hook(hook: Hook) -> kuryr6::plugin::Hook {
    match hook {
        Hook::Plan => kuryr6::plugin::Hook::Plan,
        Hook::Naming => kuryr6::plugin::Hook::Naming,
        Hook::Policy => kuryr6::plugin::Hook::Policy,
    }
}

/// Runs `hook` of the plugin at `wasm` on `fixture` (JSON text) with the
/// default limits; `pipeline` paths in the fixture are relative to the
/// current directory.
pub fn run_fixture(wasm: &Path, hook: Hook, fixture: &str) -> Result<FixtureRun, FixtureError> {
    run_fixture_with(wasm, hook, fixture, Path::new("."), &Limits::default())
}

/// Like `run_fixture`, reading the fixture from a file (its `pipeline`
/// paths are relative to the file).
pub fn run_fixture_file(
    wasm: &Path,
    hook: Hook,
    fixture: &Path,
) -> Result<FixtureRun, FixtureError> {
    let text = std::fs::read_to_string(fixture)
        .map_err(|e| FixtureError::Fixture(format!("cannot read {}: {e}", fixture.display())))?;
    let base = fixture.parent().unwrap_or(Path::new("."));
    run_fixture_with(wasm, hook, &text, base, &Limits::default())
}

/// The general form: explicit base directory and limits.
pub fn run_fixture_with(
    wasm: &Path,
    hook: Hook,
    fixture: &str,
    base: &Path,
    limits: &Limits,
) -> Result<FixtureRun, FixtureError> {
    let host = kuryr6::plugin::Host::global().map_err(FixtureError::Fixture)?;
    kuryr6::plugin::fixture::run(host, wasm, host_hook(hook), fixture, base, limits)
}
