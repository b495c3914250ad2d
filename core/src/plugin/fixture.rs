//! Run one hook of a built plugin on a JSON fixture, under the same host,
//! sandbox and limits as a pipeline run: what `kuryr6 plugin test` and the
//! SDK's test harness do.
//!
//! Fixture shapes (unknown keys are refused):
//!
//! ```json
//! {"facts": {"site": "ams1"}, "plan": { …plan JSON… }}          // plan
//! {"facts": {"site": "ams1"}, "pipeline": "../seed/pipeline.toml"} // plan, from a file
//! {"facts": {"site": "ams1"}, "kind": "subnet", "name": "pod_subnet"} // naming
//! {"sites": [{"name": "ams1", "facts": {}, "plan": { … }}]}       // policy
//! ```
//!
//! `pipeline` paths are relative to the fixture's directory. Outputs:
//! the plan (validated like any plugin plan), `{"name": …}`, or
//! `{"violations": […]}`.

use super::{
    Facts, Hook, Limits, PluginError, PluginInfo, SiteInput,
    host::{Host, Origin},
};
use crate::lower::Spans;
use crate::plan::Plan;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What a fixture run produced and cost.
#[derive(Debug, Clone)]
pub struct FixtureRun {
    pub sha256: String,
    pub info: PluginInfo,
    pub origin: Origin,
    /// Loading the plugin (compile or cache, link, describe).
    pub load: Duration,
    /// The hook call (fresh store, instantiation, call).
    pub call: Duration,
    /// Fuel the hook call consumed.
    pub fuel: u64,
    pub output: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("fixture: {0}")]
    Fixture(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    facts: BTreeMap<String, String>,
    plan: Option<serde_json::Value>,
    pipeline: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    sites: Option<Vec<SiteFixture>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFixture {
    name: String,
    #[serde(default)]
    facts: BTreeMap<String, String>,
    plan: Option<serde_json::Value>,
    pipeline: Option<String>,
}

fn facts(map: BTreeMap<String, String>) -> Facts {
    Facts(map.into_iter().collect())
}

fn fixture_err(msg: impl Into<String>) -> FixtureError {
    FixtureError::Fixture(msg.into())
}

/// The plan of a fixture: inline JSON (must parse as a plan), or a pipeline
/// file loaded (and validated) the usual way.
fn plan_of(
    plan: Option<serde_json::Value>,
    pipeline: Option<String>,
    base: &Path,
) -> Result<Plan, FixtureError> {
    match (plan, pipeline) {
        (Some(v), None) => serde_json::from_value(v)
            .map_err(|e| fixture_err(format!("`plan` is not a kuryr6 plan: {e}"))),
        (None, Some(p)) => {
            let path = base.join(&p);
            match crate::load::load(&path) {
                Ok(l) => Ok(l.plan),
                Err(r) => Err(fixture_err(format!(
                    "pipeline {p} is invalid:\n{}",
                    crate::diag::render(&r.source, &r.diagnostics)
                ))),
            }
        }
        _ => Err(fixture_err("give exactly one of `plan` and `pipeline`")),
    }
}

/// Loads `wasm` (no pin: the caller named the file) into the process's
/// host and runs `hook` on the fixture text; `base` resolves `pipeline`
/// paths. The SDK's `testing::run_fixture_with` is this function.
pub fn run(
    wasm: &Path,
    hook: Hook,
    fixture: &str,
    base: &Path,
    limits: &Limits,
) -> Result<FixtureRun, FixtureError> {
    let input: Input = serde_json::from_str(fixture)
        .map_err(|e| fixture_err(format!("not a valid fixture: {e}")))?;
    let label = wasm.display().to_string();
    let host = Host::global().map_err(fixture_err)?;
    let loaded = host.load_file(&label, wasm, None, limits)?;
    let plugin = loaded.plugin;
    if !plugin.info.hooks.contains(&hook) {
        return Err(PluginError::Load {
            plugin: label,
            message: format!(
                "does not implement the {hook} hook (it implements: {})",
                plugin
                    .info
                    .hooks
                    .iter()
                    .map(|h| h.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        .into());
    }
    let invalid = |reason: String| PluginError::InvalidOutput {
        plugin: label.clone(),
        hook: hook.as_str(),
        reason,
    };
    let (output, call, fuel) = match hook {
        Hook::Plan => {
            let plan = plan_of(input.plan, input.pipeline, base)?;
            let json = super::hooks::plan_json(&plan);
            let out = plugin.call_plan(&label, limits, &facts(input.facts), &json)?;
            let plan: Plan = serde_json::from_str(&out.value)
                .map_err(|e| invalid(format!("not a plan: {e}")))?;
            let diags = crate::validate::plan(&plan, &Spans::default());
            if !diags.is_empty() {
                let items: Vec<String> = diags
                    .iter()
                    .map(|d| format!("{} {}", d.code, d.message))
                    .collect();
                return Err(
                    invalid(format!("the plan fails validation: {}", items.join("; "))).into(),
                );
            }
            let value = serde_json::to_value(&plan).unwrap_or_default();
            (value, out.elapsed, out.fuel)
        }
        Hook::Naming => {
            let kind = input
                .kind
                .as_deref()
                .and_then(crate::plan::StepKind::parse)
                .ok_or_else(|| {
                    fixture_err("`kind` must be one of network, subnet, router, security_group, loadbalancer, emit")
                })?;
            let name = input
                .name
                .ok_or_else(|| fixture_err("a naming fixture needs `name`"))?;
            let out = plugin.call_naming(&label, limits, kind, &name, &facts(input.facts))?;
            (
                serde_json::json!({ "name": out.value }),
                out.elapsed,
                out.fuel,
            )
        }
        Hook::Policy => {
            let sites = input
                .sites
                .ok_or_else(|| fixture_err("a policy fixture needs `sites`"))?
                .into_iter()
                .map(|s| {
                    Ok(SiteInput {
                        plan_json: super::hooks::plan_json(&plan_of(s.plan, s.pipeline, base)?),
                        name: s.name,
                        facts: facts(s.facts),
                    })
                })
                .collect::<Result<Vec<_>, FixtureError>>()?;
            let out = plugin.call_policy(&label, limits, &sites)?;
            (
                serde_json::json!({ "violations": out.value }),
                out.elapsed,
                out.fuel,
            )
        }
    };
    Ok(FixtureRun {
        sha256: plugin.sha256.clone(),
        info: plugin.info.clone(),
        origin: loaded.origin,
        load: loaded.elapsed,
        call,
        fuel,
        output,
    })
}
