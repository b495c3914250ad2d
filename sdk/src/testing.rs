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
pub use kuryr6::plugin::fixture::run as run_fixture_with;

/// Builds the plugin crate at `manifest_dir` (package `package`) for
/// wasm32-wasip2 in release mode and returns its `.wasm`: what a plugin's
/// own `cargo test` calls first, so the tests always run the current code.
/// Uses the cargo that runs the tests (`$CARGO`) and the crate's target
/// directory (as `cargo metadata` reports it). A test helper: panics with
/// cargo's output when the build fails.
pub fn build_plugin(manifest_dir: &str, package: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let dir = Path::new(manifest_dir);
    let metadata = std::process::Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo metadata: {e}"));
    let target_dir = serde_json::from_slice::<serde_json::Value>(&metadata.stdout)
        .ok()
        .and_then(|m| m["target_directory"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| {
            panic!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&metadata.stderr)
            )
        });
    let out = std::process::Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
        ])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo build: {e}"));
    assert!(
        out.status.success(),
        "cargo build --release --target wasm32-wasip2 failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(wasm.is_file(), "cargo built no {}", wasm.display());
    wasm
}

/// Runs every fixture in `dir` through the plugin at `wasm` and compares
/// the output with the expected one. A fixture is `<hook>-<case>.json`
/// (`plan-…`, `naming-…`, `policy-…`; shapes as for `kuryr6 plugin test`),
/// its expectation `<hook>-<case>.expected.json`: every value it gives
/// must be in the output (objects may leave keys out, arrays may stop
/// early; `[]` means empty), so a plan fixture states only what the plugin
/// should change.
/// With `KURYR6_BLESS=1`, a missing or failing expectation is (re)written
/// from the actual output instead, for you to review.
///
/// Returns how many fixtures passed, or every failure in one message.
pub fn check_fixtures(wasm: &Path, dir: &Path) -> Result<usize, String> {
    let bless = std::env::var_os("KURYR6_BLESS").is_some_and(|v| v == "1");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".expected.json")
        })
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    for fixture in &entries {
        let stem = fixture.file_stem().unwrap_or_default().to_string_lossy();
        let hook = match stem.split('-').next() {
            Some("plan") => Hook::Plan,
            Some("naming") => Hook::Naming,
            Some("policy") => Hook::Policy,
            _ => {
                failures.push(format!(
                    "{}: name it plan-…, naming-… or policy-… (the hook it tests)",
                    fixture.display()
                ));
                continue;
            }
        };
        let expected_path = fixture.with_file_name(format!("{stem}.expected.json"));
        let output = match run_fixture_file(wasm, hook, fixture) {
            Ok(run) => run.output,
            Err(e) => {
                failures.push(format!("{}: {e}", fixture.display()));
                continue;
            }
        };
        let expected = std::fs::read_to_string(&expected_path)
            .map_err(|e| format!("cannot read {}: {e}", expected_path.display()))
            .and_then(|t| {
                serde_json::from_str::<serde_json::Value>(&t)
                    .map_err(|e| format!("{}: {e}", expected_path.display()))
            });
        let verdict = expected.and_then(|want| {
            let mut at = String::new();
            if contains(&output, &want, &mut at) {
                Ok(())
            } else {
                Err(format!(
                    "{}: output differs from {} at `{at}`; got:\n{}",
                    fixture.display(),
                    expected_path.display(),
                    serde_json::to_string_pretty(&output).unwrap_or_default()
                ))
            }
        });
        match verdict {
            Ok(()) => {}
            Err(_) if bless => {
                let text = serde_json::to_string_pretty(&output).unwrap_or_default() + "\n";
                std::fs::write(&expected_path, text)
                    .map_err(|e| format!("cannot write {}: {e}", expected_path.display()))?;
                eprintln!("blessed {}", expected_path.display());
            }
            Err(e) => failures.push(e),
        }
    }
    if entries.is_empty() {
        failures.push(format!("no fixtures (*.json) in {}", dir.display()));
    }
    if failures.is_empty() {
        Ok(entries.len())
    } else {
        Err(failures.join("\n\n"))
    }
}

/// Whether `got` has every value `want` gives; `at` is where it does not.
fn contains(got: &serde_json::Value, want: &serde_json::Value, at: &mut String) -> bool {
    use serde_json::Value;
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w.iter().all(|(k, wv)| {
            let mark = at.len();
            at.push_str(&format!(".{k}"));
            let ok = g.get(k).is_some_and(|gv| contains(gv, wv, at));
            if ok {
                at.truncate(mark);
            }
            ok
        }),
        // `[]` means empty; otherwise the output's array may go on.
        (Value::Array(g), Value::Array(w)) if w.is_empty() => g.is_empty(),
        (Value::Array(g), Value::Array(w)) => {
            w.len() <= g.len()
                && w.iter().zip(g).enumerate().all(|(i, (wv, gv))| {
                    let mark = at.len();
                    at.push_str(&format!("[{i}]"));
                    let ok = contains(gv, wv, at);
                    if ok {
                        at.truncate(mark);
                    }
                    ok
                })
        }
        _ => got == want,
    }
}

#[cfg(test)]
mod tests {
    use super::contains;
    use serde_json::json;

    #[test]
    fn an_expectation_may_leave_out_what_it_does_not_care_about() {
        let got = json!({"steps": [{"name": "a", "cidr": "x"}, {"name": "b"}], "pipeline": "p"});
        let mut at = String::new();
        assert!(contains(
            &got,
            &json!({"steps": [{}, {"name": "b"}]}),
            &mut at
        ));
        assert!(contains(&got, &json!({}), &mut at));
        assert!(!contains(&got, &json!({"steps": [{"cidr": "y"}]}), &mut at));
        assert_eq!(at, ".steps[0].cidr");
        let mut at = String::new();
        assert!(!contains(&got, &json!({"steps": [{}, {}, {}]}), &mut at));
        assert!(!contains(&got, &json!({"missing": 1}), &mut String::new()));
        assert!(!contains(
            &json!({"name": "a"}),
            &json!({"name": "b"}),
            &mut String::new()
        ));
        assert!(contains(
            &json!({"v": []}),
            &json!({"v": []}),
            &mut String::new()
        ));
        assert!(!contains(
            &json!({"v": [1]}),
            &json!({"v": []}),
            &mut String::new()
        ));
    }
}
