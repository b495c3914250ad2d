//! What a plugin may say: size limits on every value that crosses the
//! boundary, and per hook the fields of the plan it may change.
//!
//! Plugins are untrusted. Their answers are checked here in this order,
//! cheapest first, before anything is built from them: size (host.rs checks
//! the length of a returned string while it still lies in guest memory),
//! JSON nesting, then the parsed plan against the plan it was given (an
//! allow-list per hook, so a field kuryr6 adds later is closed until someone
//! opens it here), then the same validation a hand-written plan gets
//! (`Loaded::revalidate`, which holds the one name rule).

use super::Hook;
use crate::plan::{Plan, StepKind};
use crate::validate::display_name;
use serde_json::Value;
use std::collections::HashMap;

/// A plan hook's answer (the seed plan is ~2 KB; a 200-subnet site ~100 KB).
pub const MAX_PLAN_JSON: usize = 1024 * 1024;
/// Nesting of a plan hook's JSON answer (a real plan nests 5 deep).
pub const MAX_JSON_DEPTH: usize = 32;
/// A naming hook's answer: the name rule's length limit.
pub const MAX_NAME: usize = crate::validate::MAX_NAME_LEN;
/// A hook's own error message (`Refused`).
pub const MAX_MESSAGE: usize = 4096;
/// Violations in one policy answer, and the sizes of their strings.
pub const MAX_VIOLATIONS: usize = 1000;
pub const MAX_VIOLATION_CODE: usize = 64;
pub const MAX_VIOLATION_MESSAGE: usize = 4096;
/// `site` (a pipeline path as the user named it) and `step` of a violation.
pub const MAX_VIOLATION_PLACE: usize = 4096;
/// `describe()`: the plugin's name and its list of hooks.
pub const MAX_PLUGIN_NAME: usize = 64;
pub const MAX_HOOKS: usize = 16;
/// `meta.version()` (contract 0.2.0): a version string, under the name rule.
pub const MAX_PLUGIN_VERSION: usize = 64;
/// A plugin's log message (contract 0.2.0 `log`): longer ones are cut, not
/// refused, because logging must never fail a hook.
pub const MAX_LOG_MESSAGE: usize = 1024;
/// Log lines kept per call; the rest are counted and reported as dropped.
pub const MAX_LOG_LINES: usize = 64;
/// A log message longer than this (code units) is not even decoded: it is
/// logged as a note giving its length, so a flood of huge messages costs
/// the host no copies.
pub const MAX_LOG_READ: usize = 64 * 1024;
/// Entries in a call's WASI resource table (streams, pollables). A Rust
/// guest uses a handful; each entry costs the host ~100 bytes.
pub const MAX_WASI_RESOURCES: usize = 10_000;
/// Elements across all tables of one store (function references; a Rust
/// guest has a few hundred, componentize-py's Python ~20 000).
pub const MAX_TABLE_ELEMENTS: usize = 262_144;
/// Core instances and tables per store (a Rust guest has ~5 instances).
pub const MAX_INSTANCES: usize = 64;
pub const MAX_TABLES: usize = 64;
/// Linear memories per store; their sizes count against one cap together.
pub const MAX_MEMORIES: usize = 16;

/// A plugin's log message as one line safe for a terminal: its first
/// `MAX_LOG_MESSAGE` bytes (cut at a character boundary, "…" marking the
/// cut), every control character escaped, newlines included, so a plugin
/// cannot forge log lines of its own or drive the terminal.
pub fn log_line(message: &str) -> String {
    let mut end = message.len().min(MAX_LOG_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut line = String::with_capacity(end + 8);
    for c in message[..end].chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    if end < message.len() {
        line.push('…');
    }
    line
}

/// An answer larger than its limit; host.rs raises it as a wasmtime error
/// from inside a call so that it is classified like a trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversized {
    pub what: &'static str,
    pub size: usize,
    pub limit: usize,
}

impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} exceeds the limit of {}",
            self.what, self.size, self.limit
        )
    }
}

impl std::error::Error for Oversized {}

/// `Ok` when `size <= limit`.
pub fn bounded(what: &'static str, size: usize, limit: usize) -> Result<(), Oversized> {
    if size <= limit {
        Ok(())
    } else {
        Err(Oversized { what, size, limit })
    }
}

/// How deeply `json` nests arrays and objects, scanning bytes only; stops
/// at `max + 1`. Runs before serde_json, whose own recursion limit (128)
/// would still let a hostile answer cost a deep parse.
pub fn json_depth(json: &str, max: usize) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > max {
                    return deepest;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The fields of a step a hook may change, as paths inside the step's JSON
/// (`[]` = any list index). A listed path may change entirely, list length
/// included. Everything else must come back as it went in, after renames.
fn may_change(hook: Hook, kind: StepKind) -> &'static [&'static str] {
    match (hook, kind) {
        // Address-plan values and names.
        (Hook::Plan, StepKind::Subnet) => &[
            "name",
            "cidr",
            "ip_version",
            "gateway_ip",
            "allocation_pools",
        ],
        (Hook::Plan, StepKind::SecurityGroup) => &["name", "rules[].remote_ip_prefix"],
        // Members are the API hosts: their addresses come from
        // `[kubernetes] api_hosts` alone, which emit writes into the
        // kube-apiserver flags and kubeadm.yaml (one source, no drift).
        (Hook::Plan, StepKind::Loadbalancer) => &["name", "vip", "pool_name"],
        (Hook::Plan, StepKind::Network | StepKind::Router | StepKind::Emit) => &["name"],
        // The naming hook changes names only, and only through the host.
        (Hook::Naming, _) => &["name"],
        (Hook::Policy, _) => &[],
    }
}

/// The allow-lists as the Markdown table `sdk/README.md` shows between
/// its `allow-list` markers (a test keeps the two equal).
pub fn allow_table() -> String {
    let mut out = String::from("| hook | step kind | fields it may change |\n|---|---|---|\n");
    for hook in Hook::ALL {
        for kind in StepKind::ALL {
            let fields = may_change(hook, kind);
            let list = if fields.is_empty() {
                "nothing".to_string()
            } else {
                fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push_str(&format!("| `{hook}` | `{kind}` | {list} |\n"));
        }
    }
    out
}

/// Checks that `after` differs from `before` only where `hook` may change
/// it. Names may change (references to a renamed step must follow); the
/// step list keeps its length and kinds; `pipeline` and `kubernetes` never
/// change. `Err` names the first field that changed without permission.
pub fn check_changes(hook: Hook, before: &Plan, after: &Plan) -> Result<(), String> {
    if before.pipeline != after.pipeline {
        return Err(format!(
            "changed `pipeline` from `{}` to `{}`: the pipeline's identity (its ownership tag) is not the plugin's to change",
            display_name(&before.pipeline),
            display_name(&after.pipeline)
        ));
    }
    let mut problems = Vec::new();
    diff(
        &to_value(&before.kubernetes),
        &to_value(&after.kubernetes),
        "kubernetes",
        "",
        &[],
        &mut problems,
    );
    if let Some(p) = problems.first() {
        return Err(format!(
            "changed {p}: a {hook} hook may not change [kubernetes]"
        ));
    }
    if before.steps.len() != after.steps.len() {
        return Err(format!(
            "returned {} steps for {}: a {hook} hook may not add or remove steps",
            after.steps.len(),
            before.steps.len()
        ));
    }
    // Renames implied by the answer, applied to the input: references to a
    // renamed step then have to match the answer's exactly.
    let mut renames = HashMap::new();
    for (b, a) in before.steps.iter().zip(&after.steps) {
        if b.kind() != a.kind() {
            return Err(format!(
                "turned {} `{}` into a {}: a {hook} hook may not change a step's kind",
                b.kind(),
                display_name(b.name()),
                a.kind()
            ));
        }
        if b.name() != a.name() {
            // The name rule first: a message about a reference that did not
            // follow would otherwise hide the name that caused it.
            crate::validate::check_name(a.name()).map_err(|e| {
                format!(
                    "renamed {} `{}` to an unusable name (E006): {e}",
                    b.kind(),
                    display_name(b.name())
                )
            })?;
            renames.insert(b.name().to_string(), a.name().to_string());
        }
    }
    let mut expected = before.clone();
    expected.rename_steps(&renames);
    for (i, (e, a)) in expected.steps.iter().zip(&after.steps).enumerate() {
        let allowed = may_change(hook, e.kind());
        diff(
            &to_value(e),
            &to_value(a),
            &format!("steps[{i}]"),
            "",
            allowed,
            &mut problems,
        );
        if let Some(p) = problems.first() {
            return Err(format!(
                "changed {p} ({} `{}`): in {} steps a {hook} hook may change only {}",
                e.kind(),
                display_name(before.steps[i].name()),
                e.kind(),
                if allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    allowed.join(", ")
                },
            ));
        }
    }
    Ok(())
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Collects the paths where `a` and `b` differ outside `allowed`.
/// `shown` is the path with indices (for messages), `pattern` with `[]`.
fn diff(a: &Value, b: &Value, shown: &str, pattern: &str, allowed: &[&str], out: &mut Vec<String>) {
    if allowed.contains(&pattern) || a == b {
        return;
    }
    let join = |base: &str, key: &str| {
        if base.is_empty() {
            key.to_string()
        } else {
            format!("{base}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                diff(va, vb, &join(shown, key), &join(pattern, key), allowed, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(
                    va,
                    vb,
                    &format!("{shown}[{i}]"),
                    &format!("{pattern}[]"),
                    allowed,
                    out,
                );
            }
        }
        _ => out.push(format!(
            "`{shown}` from {} to {}",
            shown_value(a),
            shown_value(b)
        )),
    }
}

/// A value as JSON (which escapes control characters), cut at 80 chars.
fn shown_value(v: &Value) -> String {
    let json = v.to_string();
    match json.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &json[..i]),
        None => json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_source;
    use crate::plan::Step;
    use crate::source::SourceFile;

    fn seed() -> Plan {
        let text = "[pipeline]\nname = \"t\"\n[kubernetes]\napi_hosts = [{ name = \"m\", address = \"fd10:0:0:3::1\" }]\n[plan]\npod_cidr = \"fd10:0:0:1::/64\"\nservice_cidr = \"fd10:0:0:2::/112\"\n";
        load_source(SourceFile::new("t.toml", text)).unwrap().plan
    }

    #[test]
    fn a_log_line_is_one_bounded_line_without_control_characters() {
        assert_eq!(log_line("plain"), "plain");
        assert_eq!(
            log_line("two\nlines\x1b[31m red"),
            "two\\nlines\\u{1b}[31m red"
        );
        let long = "é".repeat(MAX_LOG_MESSAGE); // 2 bytes each
        let line = log_line(&long);
        assert!(line.ends_with('…'));
        assert!(line.len() <= MAX_LOG_MESSAGE + '…'.len_utf8());
        assert_eq!(line.trim_end_matches('…').len(), MAX_LOG_MESSAGE);
    }

    fn change(f: impl FnOnce(&mut Plan)) -> Result<(), String> {
        let before = seed();
        let mut after = before.clone();
        f(&mut after);
        check_changes(Hook::Plan, &before, &after)
    }

    fn emit(p: &mut Plan) -> &mut crate::plan::Emit {
        p.steps
            .iter_mut()
            .find_map(|s| match s {
                Step::Emit(e) => Some(e),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn address_values_and_consistent_renames_pass() {
        assert_eq!(change(|_| {}), Ok(()));
        assert_eq!(
            change(|p| {
                for s in &mut p.steps {
                    if let Step::Subnet(s) = s {
                        s.cidr = "fd99::/64".parse().unwrap();
                        s.allocation_pools.clear();
                    }
                }
            }),
            Ok(())
        );
        let before = seed();
        let renames: HashMap<String, String> =
            [("pod_subnet".to_string(), "ams1-pods".to_string())].into();
        let mut after = before.clone();
        after.rename_steps(&renames);
        assert_eq!(check_changes(Hook::Plan, &before, &after), Ok(()));
    }

    #[test]
    fn everything_else_is_named() {
        let e = change(|p| p.pipeline = "other".into()).unwrap_err();
        assert!(e.contains("`pipeline`"), "{e}");
        let e = change(|p| emit(p).dir = "/etc".into()).unwrap_err();
        assert!(
            e.contains("`steps[7].dir`") && e.contains("\"/etc\""),
            "{e}"
        );
        let e = change(|p| emit(p).resource_tags.push("x".into())).unwrap_err();
        assert!(e.contains("steps[7].resource_tags"), "{e}");
        let e = change(|p| p.kubernetes.version = "1.34".into()).unwrap_err();
        assert!(e.contains("kubernetes.version"), "{e}");
        let e = change(|p| {
            p.steps.pop();
        })
        .unwrap_err();
        assert!(e.contains("add or remove steps"), "{e}");
        // A reference re-pointed without a rename.
        let e = change(|p| emit(p).pod_subnet = "service_subnet".into()).unwrap_err();
        assert!(e.contains("steps[7].pod_subnet"), "{e}");
        let e = change(|p| {
            for s in &mut p.steps {
                if let Step::Subnet(s) = s {
                    s.enable_dhcp = !s.enable_dhcp;
                }
            }
        })
        .unwrap_err();
        assert!(
            e.contains("enable_dhcp") && e.contains("may change only name, cidr"),
            "{e}"
        );
        // A member is an API host: its address is [kubernetes]'s alone, so
        // the load balancer and the emitted kube-apiserver flags agree.
        let e = change(|p| {
            for s in &mut p.steps {
                if let Step::Loadbalancer(lb) = s {
                    lb.members[0].address = "fd10:0:0:3::99".parse().unwrap();
                }
            }
        })
        .unwrap_err();
        assert!(e.contains("members[0].address"), "{e}");
        // The naming hook's allow-list is names only.
        let before = seed();
        let mut after = before.clone();
        for s in &mut after.steps {
            if let Step::Subnet(s) = s {
                s.cidr = "fd99::/64".parse().unwrap();
            }
        }
        let e = check_changes(Hook::Naming, &before, &after).unwrap_err();
        assert!(e.contains("may change only name"), "{e}");
    }

    /// The SDK's table is this module's lists, not a copy kept by hand.
    #[test]
    fn the_sdk_readme_shows_these_allow_lists() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/README.md"))
                .unwrap();
        let start = "<!-- allow-list: generated from core/src/plugin/boundary.rs -->\n";
        let end = "<!-- end allow-list -->";
        let shown = readme
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once(end))
            .map(|(table, _)| table)
            .expect("sdk/README.md has the allow-list markers");
        assert_eq!(
            shown,
            allow_table(),
            "sdk/README.md's allow-list differs from boundary.rs; put this between the markers:\n{}",
            allow_table()
        );
    }

    #[test]
    fn depth_and_sizes() {
        assert_eq!(json_depth(r#"{"a": [1, {"b": "[[[["}]}"#, 32), 3);
        assert_eq!(json_depth(&"[".repeat(100_000), 32), 33);
        assert!(bounded("x", 10, 10).is_ok());
        assert_eq!(
            bounded("x", 11, 10).unwrap_err().to_string(),
            "x of 11 exceeds the limit of 10"
        );
    }
}
