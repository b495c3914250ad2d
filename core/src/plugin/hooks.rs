//! Plugins in a pipeline: running the hooks of its `[[plugin]]` tables
//! (read by `spec`) on the site's plan.
//!
//! Order, per pipeline file (`apply`, called by `load` once the hand-written
//! plan passed validation): every `plan` hook in file order, then every
//! `naming` hook over every step name (references follow the renames), each
//! result re-validated with `Loaded::revalidate` so a plugin cannot produce
//! a plan a person could not have written. Across files (`policy_gate`,
//! after all files loaded): each `policy` plugin once, with every site that
//! lists it. Errors are diagnostics at the `[[plugin]]` table (file:line),
//! so all the usual reporting applies.

pub use super::spec::{Spec, specs};
use super::{
    Hook, PluginError, Severity, SiteInput, boundary, dist,
    host::{Host, LoadedPlugin, Plugin},
};
use crate::diag::{Code, Diagnostic, Located};
use crate::loaded::{Loaded, Rejected};
use crate::pipeline::RawPipeline;
use crate::plan::Plan;
use crate::source::SourceFile;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A loaded plugin of one pipeline, with the hooks it will run there.
pub struct Active<'a> {
    pub spec: &'a Spec,
    pub plugin: Arc<Plugin>,
    pub hooks: Vec<Hook>,
    /// W005 when it runs unsigned under `allow_unsigned`.
    pub warning: Option<Diagnostic>,
}

/// The diagnostic for a plugin failure, placed at the part of the
/// `[[plugin]]` table it concerns.
pub fn diagnostic(spec: &Spec, e: &PluginError) -> Diagnostic {
    let span = match e {
        PluginError::Io { .. } => spec.path_span.clone(),
        PluginError::HashMismatch { .. } => spec
            .sha256_span
            .clone()
            .unwrap_or_else(|| spec.span.clone()),
        _ => spec.span.clone(),
    };
    let code = if e.is_load_error() {
        Code::E028
    } else {
        Code::E029
    };
    Diagnostic::new(code, format!("{} [{}]", e, e.kind()))
        .help(e.help())
        .at(Some(span))
}

/// Loads (pin checked first) every plugin of a pipeline and resolves its
/// hooks; `Err` lists every plugin that cannot be used.
pub fn activate<'a>(host: &Host, specs: &'a [Spec]) -> Result<Vec<Active<'a>>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut active = Vec::new();
    for spec in specs {
        let mut warning = None;
        let loaded = match &spec.sha256 {
            _ if spec.oci.is_some() || spec.signature_required || has_signature_file(spec) => {
                load_verified(host, spec).map(|(l, w)| {
                    warning = w;
                    l
                })
            }
            // Refuse before compiling anything, but say what to pin.
            None => match std::fs::read(&spec.path) {
                Ok(bytes) => Err(PluginError::HashMismatch {
                    plugin: spec.label.clone(),
                    expected: None,
                    actual: super::sha256_hex(&bytes),
                }),
                Err(source) => Err(PluginError::Io {
                    plugin: spec.label.clone(),
                    path: spec.path.clone(),
                    source,
                }),
            },
            Some(pin) => host.load_file(&spec.label, &spec.path, Some(pin), &spec.limits),
        };
        let plugin = match loaded {
            Ok(l) => l.plugin,
            Err(e) => {
                diags.push(diagnostic(spec, &e));
                continue;
            }
        };
        let declared = &plugin.info.hooks;
        let hooks = match &spec.hooks {
            None => declared.clone(),
            Some(wanted) => {
                let missing: Vec<&str> = wanted
                    .iter()
                    .filter(|h| !declared.contains(h))
                    .map(|h| h.as_str())
                    .collect();
                if !missing.is_empty() {
                    let e = PluginError::Load {
                        plugin: spec.label.clone(),
                        message: format!(
                            "does not implement the {} hook (it implements: {})",
                            missing.join(" and "),
                            hook_list(declared)
                        ),
                    };
                    diags.push(diagnostic(spec, &e));
                    continue;
                }
                wanted.clone()
            }
        };
        active.push(Active {
            spec,
            plugin,
            hooks,
            warning,
        });
    }
    if diags.is_empty() {
        Ok(active)
    } else {
        Err(diags)
    }
}

/// `<path>.minisig` beside a path plugin.
fn signature_file(spec: &Spec) -> PathBuf {
    let mut name = spec.path.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

fn has_signature_file(spec: &Spec) -> bool {
    spec.oci.is_none() && signature_file(spec).exists()
}

/// The bytes of a plugin that passed every check before compiling: for
/// an `oci://` source the lock, store, registry and signature (dist.rs);
/// for a path plugin the sha256 pin, then its `.minisig` when it has one
/// or its table lists `trusted_keys`. The bytes checked are the bytes
/// returned, so nothing can be swapped between check and load.
pub fn verified_bytes(spec: &Spec) -> Result<(Vec<u8>, dist::Trusted), PluginError> {
    verified(spec).map(|(bytes, trusted, _)| (bytes, trusted))
}

/// `verified_bytes` with the bytes' hex sha256, which every path computed.
fn verified(spec: &Spec) -> Result<(Vec<u8>, dist::Trusted, String), PluginError> {
    let dist_err = |error: dist::DistError| PluginError::Distribution {
        plugin: spec.label.clone(),
        error,
    };
    if let Some(oci) = &spec.oci {
        let store = super::store::Store::open_default().map_err(|e| dist_err(e.into()))?;
        let f = dist::load_locked(
            oci,
            &spec.lock_path,
            &store,
            &spec.policy,
            spec.sha256.as_deref(),
        )
        .map_err(dist_err)?;
        if f.from_registry {
            tracing::info!(
                "plugin {}: pulled {} into the store",
                spec.label,
                f.entry.manifest
            );
        }
        let sha256 = f.entry.layer.trim_start_matches("sha256:").to_string();
        return Ok((f.bytes, f.trusted, sha256));
    }
    let bytes = std::fs::read(&spec.path).map_err(|source| PluginError::Io {
        plugin: spec.label.clone(),
        path: spec.path.clone(),
        source,
    })?;
    let actual = super::sha256_hex(&bytes);
    if spec
        .sha256
        .as_deref()
        .is_none_or(|pin| !actual.eq_ignore_ascii_case(pin.trim()))
    {
        return Err(PluginError::HashMismatch {
            plugin: spec.label.clone(),
            expected: spec.sha256.as_ref().map(|p| p.trim().to_string()),
            actual,
        });
    }
    let sig_path = signature_file(spec);
    let signature = match std::fs::read(&sig_path) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(PluginError::Io {
                plugin: spec.label.clone(),
                path: sig_path,
                source,
            });
        }
    };
    if signature.is_none() && !spec.signature_required {
        return Ok((bytes, dist::Trusted::Pinned, actual));
    }
    let trusted = dist::check_signature(&spec.label, &bytes, signature.as_deref(), &spec.policy)
        .map_err(dist_err)?;
    Ok((bytes, trusted, actual))
}

/// `verified_bytes`, then compiled and ABI-checked by the host; with the
/// W005 warning when it runs unsigned under `allow_unsigned`.
fn load_verified(
    host: &Host,
    spec: &Spec,
) -> Result<(LoadedPlugin, Option<Diagnostic>), PluginError> {
    let (bytes, trusted, sha256) = verified(spec)?;
    let warning = match trusted {
        dist::Trusted::Unsigned(why) => Some(
            Diagnostic::warning(
                Code::W005,
                format!(
                    "plugin {} runs without a verified signature: {why}",
                    spec.label
                ),
            )
            .help("allow_unsigned = true allows it; remove it once the vendor signs the plugin")
            .at(Some(
                spec.allow_unsigned_span
                    .clone()
                    .unwrap_or_else(|| spec.span.clone()),
            )),
        ),
        dist::Trusted::Signed { .. } | dist::Trusted::Pinned => None,
    };
    // Hashed once, by whoever checked the bytes against their pin.
    host.load_hashed(&spec.label, &bytes, sha256, &spec.limits)
        .map(|l| (l, warning))
}

fn hook_list(hooks: &[Hook]) -> String {
    if hooks.is_empty() {
        "none".into()
    } else {
        hooks
            .iter()
            .map(|h| h.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The `oci://` sources named by the pipeline files (`*.toml`) in `dir`,
/// for `kuryr6 plugin lock` to tell a lock entry still in use from one no
/// pipeline names any more; with the files that mention `[[plugin]]` but
/// cannot be read as pipelines (their sources are unknown, so nothing may
/// be dropped on their account).
pub fn sources_named_in(dir: &Path) -> (std::collections::BTreeSet<String>, Vec<PathBuf>) {
    let mut named = std::collections::BTreeSet::new();
    let mut unreadable = Vec::new();
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return (named, vec![dir.to_path_buf()]),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            unreadable.push(file);
            continue;
        };
        match toml::from_str::<RawPipeline>(&text) {
            Ok(raw) => named.extend(
                raw.plugins
                    .iter()
                    .filter_map(|p| p.get_ref().source.as_ref())
                    .map(|s| s.get_ref().trim().to_string()),
            ),
            // Not a pipeline (Cargo.toml, a fleet's [cloud] file …).
            Err(_) if !text.contains("[[plugin]]") => {}
            Err(_) => unreadable.push(file),
        }
    }
    (named, unreadable)
}

fn pipeline_dir(source: &SourceFile) -> PathBuf {
    source
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs the `plan` and `naming` hooks of the pipeline's plugins on a
/// validated plan. A pipeline without `[[plugin]]` is returned untouched
/// (and no engine is started).
pub fn apply(raw: &RawPipeline, loaded: Loaded) -> Result<Loaded, Rejected> {
    if raw.plugins.is_empty() {
        // Only `[plugins]`: its keys are checked, nothing runs.
        if raw.plugin_settings.is_some() {
            specs(raw, &pipeline_dir(&loaded.source)).map_err(|diagnostics| Rejected {
                source: loaded.source.clone(),
                diagnostics,
            })?;
        }
        return Ok(loaded);
    }
    let reject = |source: &SourceFile, diagnostics: Vec<Diagnostic>| Rejected {
        source: source.clone(),
        diagnostics,
    };
    let specs = specs(raw, &pipeline_dir(&loaded.source)).map_err(|d| reject(&loaded.source, d))?;
    let host = Host::global().map_err(|e| {
        reject(
            &loaded.source,
            vec![Diagnostic::new(Code::E028, e).at(Some(specs[0].span.clone()))],
        )
    })?;
    let active = activate(host, &specs).map_err(|d| reject(&loaded.source, d))?;
    let warnings: Vec<Diagnostic> = active.iter().filter_map(|a| a.warning.clone()).collect();
    let mut loaded = loaded;
    for a in active.iter().filter(|a| a.hooks.contains(&Hook::Plan)) {
        let source = loaded.source.clone();
        loaded = run_plan(a, loaded).map_err(|e| reject(&source, vec![diagnostic(a.spec, &e)]))?;
    }
    for a in active.iter().filter(|a| a.hooks.contains(&Hook::Naming)) {
        loaded = run_naming(a, loaded)?;
    }
    // The guide deviations are added by `load` on the final plan.
    loaded.warnings = warnings;
    // Kept for the policy gate, which runs once every file has loaded.
    loaded.plugins = specs;
    Ok(loaded)
}

fn invalid(a: &Active, hook: Hook, reason: String) -> PluginError {
    PluginError::InvalidOutput {
        plugin: a.spec.label.clone(),
        hook: hook.as_str(),
        reason,
    }
}

fn summarize(r: &Rejected) -> String {
    let items: Vec<String> = r
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", d.code, d.message))
        .collect();
    format!("the plan fails validation: {}", items.join("; "))
}

fn run_plan(a: &Active, loaded: Loaded) -> Result<Loaded, PluginError> {
    let json = plan_json(&loaded.plan);
    let out = a
        .plugin
        .call_plan(&a.spec.label, &a.spec.limits, &a.spec.facts, &json)?;
    // host.rs bounded the answer's size; bound its nesting before parsing.
    let depth = boundary::json_depth(&out.value, boundary::MAX_JSON_DEPTH);
    if depth > boundary::MAX_JSON_DEPTH {
        return Err(PluginError::Oversize {
            plugin: a.spec.label.clone(),
            hook: Hook::Plan.as_str(),
            what: "JSON nesting depth".into(),
            size: depth,
            limit: boundary::MAX_JSON_DEPTH,
        });
    }
    let plan: Plan = serde_json::from_str(&out.value)
        .map_err(|e| invalid(a, Hook::Plan, format!("not a plan: {e}")))?;
    boundary::check_changes(Hook::Plan, &loaded.plan, &plan)
        .map_err(|reason| invalid(a, Hook::Plan, reason))?;
    loaded
        .revalidate(plan)
        .map_err(|r| invalid(a, Hook::Plan, summarize(&r)))
}

/// The plan as hooks receive it.
pub fn plan_json(plan: &Plan) -> String {
    plan.to_json()
}

fn run_naming(a: &Active, loaded: Loaded) -> Result<Loaded, Rejected> {
    let fail = |loaded: &Loaded, e: PluginError| Rejected {
        source: loaded.source.clone(),
        diagnostics: vec![diagnostic(a.spec, &e)],
    };
    let mut context = a.spec.facts.clone();
    if context.get("pipeline").is_none() {
        context
            .0
            .push(("pipeline".into(), loaded.plan.pipeline.clone()));
        context.0.sort();
    }
    let mut renames = HashMap::new();
    for step in &loaded.plan.steps {
        let out = a
            .plugin
            .call_naming(
                &a.spec.label,
                &a.spec.limits,
                step.kind(),
                step.name(),
                &context,
            )
            .map_err(|e| fail(&loaded, e))?;
        // The name rule at once, naming the step: the plan's validation
        // would report it too, but after all renames and less directly.
        if let Err(e) = crate::validate::check_name(&out.value) {
            let reason = format!(
                "for {} `{}` it returned an unusable name (E006): {e}",
                step.kind(),
                crate::validate::display_name(step.name())
            );
            return Err(fail(&loaded, invalid(a, Hook::Naming, reason)));
        }
        if out.value != step.name() {
            renames.insert(step.name().to_string(), out.value);
        }
    }
    if renames.is_empty() {
        return Ok(loaded);
    }
    let mut plan = loaded.plan.clone();
    plan.rename_steps(&renames);
    // Holds by construction; checked so the naming hook's allow-list is
    // enforced in one place, like the plan hook's.
    if let Err(reason) = boundary::check_changes(Hook::Naming, &loaded.plan, &plan) {
        return Err(fail(&loaded, invalid(a, Hook::Naming, reason)));
    }
    let mut base = loaded;
    base.spans = base.spans.renamed(&renames);
    base.revalidate(plan).map_err(|r| {
        let e = invalid(a, Hook::Naming, summarize(&r));
        Rejected {
            source: r.source.clone(),
            diagnostics: vec![diagnostic(a.spec, &e)],
        }
    })
}

/// Runs the policy hooks across every pipeline that loaded: each policy
/// plugin (by sha256) once, with all sites that list it. Error violations
/// and plugin failures turn the sites concerned into rejections; warnings
/// are printed to stderr and change nothing.
pub fn policy_gate(results: &mut [Result<Loaded, Rejected>]) {
    // (sha256) → sites, in file order.
    let mut groups: BTreeMap<String, Vec<(usize, Spec, Arc<Plugin>)>> = BTreeMap::new();
    let mut failures: Vec<(usize, Diagnostic)> = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let Ok(loaded) = r else { continue };
        // A table that lists its hooks without `policy` needs no second load.
        let specs: Vec<Spec> = loaded
            .plugins
            .iter()
            .filter(|s| s.hooks.as_ref().is_none_or(|h| h.contains(&Hook::Policy)))
            .cloned()
            .collect();
        if specs.is_empty() {
            continue;
        }
        let host = match Host::global() {
            Ok(h) => h,
            Err(e) => {
                failures.push((i, Diagnostic::new(Code::E028, e)));
                continue;
            }
        };
        match activate(host, &specs) {
            Ok(active) => {
                for a in active
                    .into_iter()
                    .filter(|a| a.hooks.contains(&Hook::Policy))
                {
                    groups.entry(a.plugin.sha256.clone()).or_default().push((
                        i,
                        a.spec.clone(),
                        a.plugin.clone(),
                    ));
                }
            }
            Err(diags) => failures.extend(diags.into_iter().map(|d| (i, d))),
        }
    }

    let mut warnings = Vec::new();
    for members in groups.values() {
        let sites: Vec<SiteInput> = members
            .iter()
            .filter_map(|(i, spec, _)| {
                let loaded = results[*i].as_ref().ok()?;
                Some(SiteInput {
                    name: loaded.source.display_path(),
                    facts: spec.facts.clone(),
                    plan_json: plan_json(&loaded.plan),
                })
            })
            .collect();
        let (first, spec, plugin) = &members[0];
        match plugin.call_policy(&spec.label, &spec.limits, &sites) {
            Err(e) => {
                for (i, spec, _) in members {
                    failures.push((*i, diagnostic(spec, &e)));
                }
            }
            Ok(out) => {
                for v in out.value {
                    let (i, spec) = members
                        .iter()
                        .zip(&sites)
                        .find(|(_, s)| s.name == v.site)
                        .map(|((i, spec, _), _)| (*i, spec))
                        .unwrap_or((*first, spec));
                    let Ok(loaded) = &results[i] else { continue };
                    let span = Some(v.step.as_str())
                        .filter(|s| !s.is_empty())
                        .and_then(|s| loaded.spans.get(s, "name"))
                        .unwrap_or_else(|| spec.span.clone());
                    let message =
                        format!("policy `{}` [{}]: {}", plugin.info.name, v.code, v.message);
                    let d = match v.severity {
                        Severity::Error => Diagnostic::new(Code::E030, message),
                        Severity::Warning => Diagnostic::warning(Code::E030, message),
                    }
                    .help(format!(
                        "reported by the policy hook of plugin {}; fix the plan or the plugin's facts",
                        spec.label
                    ))
                    .at(Some(span));
                    if d.is_error() {
                        failures.push((i, d));
                    } else {
                        warnings.push((i, d));
                    }
                }
            }
        }
    }

    for (i, d) in warnings {
        if let Ok(loaded) = &results[i] {
            eprintln!("{}", Located::new(&loaded.source, &d).headline());
        }
    }
    let mut by_file: BTreeMap<usize, Vec<Diagnostic>> = BTreeMap::new();
    for (i, d) in failures {
        by_file.entry(i).or_default().push(d);
    }
    for (i, diagnostics) in by_file {
        if let Ok(loaded) = &results[i] {
            results[i] = Err(Rejected {
                source: loaded.source.clone(),
                diagnostics,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;
    use crate::plan::StepKind;
    use std::time::Duration;

    fn seed() -> Loaded {
        let text = "[pipeline]\nname = \"t\"\n[kubernetes]\napi_hosts = [{ name = \"m\", address = \"fd10:0:0:3::1\" }]\n[plan]\npod_cidr = \"fd10:0:0:1::/64\"\nservice_cidr = \"fd10:0:0:2::/112\"\n";
        crate::load::load_source(SourceFile::new("t.toml", text)).unwrap()
    }

    #[test]
    fn renames_reach_every_reference_and_swaps_work() {
        let l = seed();
        let mut plan = l.plan.clone();
        let renames: HashMap<String, String> = [
            ("pod_subnet", "service_subnet"),
            ("service_subnet", "pod_subnet"),
            ("default/kubernetes", "api"),
            ("service_pod_access_v6", "sg"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        plan.rename_steps(&renames);
        let spans = l.spans.renamed(&renames);
        assert_eq!(
            spans.get("service_subnet", "cidr"),
            l.spans.get("pod_subnet", "cidr")
        );
        let l2 = Loaded { spans, ..l.clone() }.revalidate(plan).unwrap();
        for step in &l2.plan.steps {
            match step {
                Step::Subnet(s) if s.role == crate::plan::Role::Pod => {
                    assert_eq!(s.name, "service_subnet")
                }
                Step::Loadbalancer(lb) => {
                    assert_eq!(
                        (lb.name.as_str(), lb.pool_name.as_str()),
                        ("api", "api:HTTPS:443")
                    );
                    assert_eq!(lb.subnet, "pod_subnet");
                }
                Step::SecurityGroup(sg) => {
                    assert_eq!((sg.name.as_str(), sg.description.as_str()), ("sg", "sg"))
                }
                Step::Emit(e) => {
                    assert_eq!(e.pod_subnet, "service_subnet");
                    assert_eq!(e.security_groups, ["sg"]);
                    assert_eq!(e.loadbalancer.as_deref(), Some("api"));
                }
                Step::Router(r) => assert_eq!(r.interfaces, ["service_subnet", "pod_subnet"]),
                _ => {}
            }
        }
        assert_eq!(
            l2.plan
                .steps
                .iter()
                .filter(|s| s.kind() == StepKind::Subnet)
                .count(),
            2
        );
    }

    #[test]
    fn path_or_source_exactly_one_with_file_line() {
        let head = "[pipeline]\nname = \"t\"\n[plan]\npod_cidr = \"fd10:0:0:1::/64\"\nservice_cidr = \"fd10:0:0:2::/112\"\n";
        let cases = [
            (
                "[[plugin]]\npath = \"p.wasm\"\nsource = \"oci://h/ns/p:1\"\n",
                8,
                "both `path` and `source`",
            ),
            (
                "[[plugin]]\nhooks = [\"plan\"]\n",
                6,
                "neither `path` nor `source`",
            ),
            (
                "[[plugin]]\nsource = \"oci://h/ns/p\"\n",
                7,
                "neither a tag nor a digest",
            ),
            (
                "[[plugin]]\npath = \"p.wasm\"\ninsecure = true\n",
                8,
                "oci:// source only",
            ),
            (
                "[[plugin]]\nsource = \"oci://h/ns/p:1\"\ntrusted_keys = [\"RWQnope\"]\n",
                8,
                "trusted key",
            ),
            (
                "[plugins]\ntrusted_keys = [\"missing.pub\"]\n[[plugin]]\nsource = \"oci://h/ns/p:1\"\n",
                7,
                "trusted key",
            ),
            // `[plugins]` without any `[[plugin]]` yet.
            (
                "[plugins]\ntrusted_keys = [\"RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\", \"RWQnope\"]\n",
                7,
                "trusted key",
            ),
        ];
        for (tail, line, what) in cases {
            let text = format!("{head}{tail}");
            let raw: RawPipeline = toml::from_str(&text).unwrap();
            let diags = specs(&raw, Path::new("/nonexistent")).unwrap_err();
            let file = SourceFile::new("t.toml", text.as_str());
            let at = Located::new(&file, &diags[0]);
            assert_eq!(
                (at.line, diags[0].code),
                (Some(line), Code::E025),
                "{tail}: {diags:?}"
            );
            assert!(
                diags[0].message.contains(what),
                "{tail}: {}",
                diags[0].message
            );
        }
        let text = format!(
            "{head}[[plugin]]\nsource = \"oci://127.0.0.1:5050/ns/p@sha256:{}\"\ninsecure = true\n",
            "0".repeat(64)
        );
        let raw: RawPipeline = toml::from_str(&text).unwrap();
        let s = &specs(&raw, Path::new("/x")).unwrap()[0];
        let oci = s.oci.as_ref().unwrap();
        assert!(oci.insecure && oci.reference.digest.is_some());
        assert_eq!(s.lock_path, Path::new("/x/kuryr6.lock"));
    }

    #[test]
    fn plugin_tables_are_checked_with_spans() {
        let text = "[pipeline]\nname = \"t\"\n[plan]\npod_cidr = \"fd10:0:0:1::/64\"\nservice_cidr = \"fd10:0:0:2::/112\"\n\n[[plugin]]\npath = \"p.wasm\"\nsha256 = \"ab\"\nhooks = [\"plan\", \"bogus\"]\ndeadline_ms = 0\nfuel = -1\n[plugin.facts]\nsite = \"ams1\"\n";
        let raw: RawPipeline = toml::from_str(text).unwrap();
        let diags = specs(&raw, Path::new("/x")).unwrap_err();
        let file = SourceFile::new("t.toml", text);
        let lines: Vec<usize> = diags
            .iter()
            .map(|d| Located::new(&file, d).line.unwrap())
            .collect();
        assert_eq!(lines, [10, 11, 12], "{diags:?}");
        let ok = text
            .replace("deadline_ms = 0\nfuel = -1\n", "deadline_ms = 250\n")
            .replace(", \"bogus\"", "");
        let raw: RawPipeline = toml::from_str(&ok).unwrap();
        let s = &specs(&raw, Path::new("/x")).unwrap()[0];
        assert_eq!(s.path, Path::new("/x/p.wasm"));
        assert_eq!(s.limits.deadline, Duration::from_millis(250));
        assert_eq!(s.hooks, Some(vec![Hook::Plan]));
        assert_eq!(s.facts.get("site"), Some("ams1"));
    }
}

#[cfg(test)]
mod lock_scan_tests {
    use super::*;

    #[test]
    fn sources_are_read_from_every_pipeline_of_the_directory() {
        let dir = std::env::temp_dir().join(format!("kuryr6-scan-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pipeline =
            |src: &str| format!("[pipeline]\nname = \"p\"\n\n[[plugin]]\nsource = \" {src} \"\n");
        std::fs::write(dir.join("a.toml"), pipeline("oci://h/ns/a:1")).unwrap();
        std::fs::write(dir.join("b.toml"), pipeline("oci://h/ns/b:1")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        std::fs::write(dir.join("notes.txt"), pipeline("oci://h/ns/c:1")).unwrap();
        let (named, unreadable) = sources_named_in(&dir);
        assert_eq!(
            named.into_iter().collect::<Vec<_>>(),
            ["oci://h/ns/a:1", "oci://h/ns/b:1"]
        );
        assert!(unreadable.is_empty());
        // A pipeline that does not parse: its sources are unknown.
        std::fs::write(dir.join("c.toml"), "[[plugin]]\nsource = 1\n").unwrap();
        let (named, unreadable) = sources_named_in(&dir);
        assert_eq!((named.len(), unreadable), (2, vec![dir.join("c.toml")]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
