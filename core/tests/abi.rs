//! ABI evolution (issue 9, item 5): plugins built against an older
//! compatible contract keep running beside new ones, an unknown version is
//! refused by name, and what 0.2.0 added (`meta.version`, the bounded `log`
//! import) works and is bounded.
//!
//! The old plugin is a binary frozen in tests/fixtures/abi-0.1.0/ (see its
//! README): the `naming` plugin as built against kuryr6:plugin@0.1.0,
//! never rebuilt. The other plugins come from `scripts/build-plugins.sh`.

use kuryr6::plan::Step;
use kuryr6::plugin::{Limits, PluginError, ResourceKind};
use std::path::PathBuf;
use std::process::Command;

/// What tests/fixtures/abi-0.1.0/README.md records for the frozen build.
const FROZEN_NAMING_SHA256: &str =
    "7181a424be3c3e9f09b5191115336b757b5cbe94d935847f805d64a6b3d8dfd2";

#[path = "support/plugins.rs"]
mod plugin_support;
use plugin_support::{SEED_NAMES_AMS1, assert_success, host, plugin_table, repo, sha, wasm};

fn frozen_naming() -> PathBuf {
    repo("tests/fixtures/abi-0.1.0/naming.wasm")
}

fn pipeline(tag: &str, plugins: &[String]) -> PathBuf {
    plugin_support::seed_with(tag, &plugins.join("\n"))
}

fn kuryr6(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kuryr6"))
        .args(args)
        // The assertions read stderr as text; tracing's colours are not ours.
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The error of loading the built plugin `name` (as `<name>.wasm`,
/// unpinned); `loaded` is the failure message should it load.
fn load_error(name: &str, loaded: &str) -> PluginError {
    let label = format!("{name}.wasm");
    let result = host().load_file(&label, &wasm(name), None, &Limits::default());
    result.err().expect(loaded)
}

#[test]
fn the_frozen_plugin_is_the_0_1_0_build() {
    // Rebuilding it would test nothing: it stands for plugins in the field.
    assert_eq!(sha(&frozen_naming()), FROZEN_NAMING_SHA256);
    let old = host()
        .load_file(
            "old",
            &frozen_naming(),
            Some(FROZEN_NAMING_SHA256),
            &Limits::default(),
        )
        .unwrap();
    assert_eq!(old.plugin.info.contract, "kuryr6:plugin@0.1.0");
    assert_eq!(old.plugin.info.version, None);
    let new = host()
        .load_file("new", &wasm("naming"), None, &Limits::default())
        .unwrap();
    assert_eq!(new.plugin.info.contract, "kuryr6:plugin@0.2.0");
    assert_eq!(
        new.plugin.info.version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_ne!(old.plugin.sha256, new.plugin.sha256);
}

#[test]
fn an_old_abi_plugin_runs_beside_a_new_one_in_one_pipeline() {
    // site-prefix (built against 0.2.0) moves the CIDRs in its plan hook,
    // then the frozen naming plugin (0.1.0) names every step.
    let path = pipeline(
        "mixed",
        &[
            plugin_table(
                &wasm("site-prefix"),
                "",
                "prefix = \"fd12:3456:789a::/48\"\nsites = \"ams1=1, fra1=2\"\nsite = \"ams1\"",
            ),
            plugin_table(&frozen_naming(), "hooks = [\"naming\"]", "site = \"ams1\""),
        ],
    );
    let l = kuryr6::load::load(&path)
        .unwrap_or_else(|r| panic!("{}", kuryr6::diag::render(&r.source, &r.diagnostics)));
    let names: Vec<&str> = l.plan.steps.iter().map(|s| s.name()).collect();
    assert_eq!(names, SEED_NAMES_AMS1);
    let subnets: Vec<_> = l.plan.subnets().collect();
    assert_eq!(subnets[0].cidr.to_string(), "fd12:3456:789a:11::/64");
    assert_eq!(subnets[1].cidr.to_string(), "fd12:3456:789a:12::/112");
    // The new plugin's CIDRs reached the step the old one renamed.
    let Some(Step::Loadbalancer(lb)) = l
        .plan
        .steps
        .iter()
        .find(|s| matches!(s, Step::Loadbalancer(_)))
    else {
        panic!("no load balancer step")
    };
    assert_eq!(lb.vip.to_string(), "fd12:3456:789a:12::1");

    // The same through the CLI, offline.
    let path = path.to_str().unwrap();
    let out = kuryr6(&["plan", "--offline", "--format", "json", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_success(&out);
    assert!(stdout.contains("\"ams1-pod-subnet\""), "{stdout}");
    assert!(stdout.contains("fd12:3456:789a:11::/64"), "{stdout}");
}

#[test]
fn old_and_new_builds_of_one_plugin_answer_alike() {
    let limits = Limits::default();
    let old = host()
        .load_file("old", &frozen_naming(), None, &limits)
        .unwrap()
        .plugin;
    let new = host()
        .load_file("new", &wasm("naming"), None, &limits)
        .unwrap()
        .plugin;
    let facts = kuryr6::plugin::Facts(vec![("site".into(), "FRA1".into())]);
    for (kind, name) in [
        (ResourceKind::Network, "pods"),
        (ResourceKind::Subnet, "pod_subnet"),
        (ResourceKind::SecurityGroup, "service_pod_access_v6"),
        (ResourceKind::Loadbalancer, "default/kubernetes"),
    ] {
        let a = old
            .call_naming("old", &limits, kind, name, &facts)
            .unwrap()
            .value;
        let b = new
            .call_naming("new", &limits, kind, name, &facts)
            .unwrap()
            .value;
        assert_eq!(a, b, "{kind:?} {name}");
    }
    // And a refusal crosses both contracts the same way.
    let none = kuryr6::plugin::Facts::default();
    let a = old.call_naming("p", &limits, ResourceKind::Subnet, "x", &none);
    let b = new.call_naming("p", &limits, ResourceKind::Subnet, "x", &none);
    assert_eq!(a.unwrap_err().to_string(), b.unwrap_err().to_string());
}

#[test]
fn an_unknown_major_version_is_refused_naming_the_supported_versions() {
    let e = load_error("future-abi", "a kuryr6:plugin@1.0.0 component loaded");
    assert!(matches!(e, PluginError::AbiMismatch { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "plugin future-abi.wasm: built against kuryr6:plugin@1.0.0; this kuryr6 runs plugins built against kuryr6:plugin 0.1.x and 0.2.x"
    );
    assert!(e.is_load_error());

    // In a pipeline: refused at its [[plugin]] table, nothing planned.
    let path = pipeline(
        "future",
        &[plugin_table(&wasm("future-abi"), "", "site = \"ams1\"")],
    );
    let out = kuryr6(&["plan", "--offline", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("E028"), "{stderr}");
    assert!(
        stderr.contains("built against kuryr6:plugin@1.0.0") && stderr.contains("0.1.x and 0.2.x"),
        "{stderr}"
    );
    assert!(stderr.contains("pipeline.toml:13"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("renamed-by-a-plugin-from-the-future"),
        "the refused plugin ran"
    );

    // `plugin info` says the same.
    let out = kuryr6(&["plugin", "info", wasm("future-abi").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("error[AbiMismatch]") && stderr.contains("0.2.x"),
        "{stderr}"
    );
}

#[test]
fn plugin_info_shows_version_and_contract() {
    let out = kuryr6(&["plugin", "info", frozen_naming().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("abi     kuryr6:plugin@0.1.0"), "{text}");
    assert!(text.contains("version (not reported"), "{text}");
    let out = kuryr6(&["plugin", "info", wasm("naming").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("abi     kuryr6:plugin@0.2.0"), "{text}");
    assert!(
        text.contains(&format!("version {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}

#[test]
fn a_plugin_log_is_bounded_escaped_and_tagged() {
    // The hostile plugin logs a 1 MiB message and 999 lines of 16 KiB per
    // naming call, each with a terminal escape and a newline followed by a
    // forged line.
    let path = pipeline(
        "log",
        &[plugin_table(
            &wasm("hostile"),
            "hooks = [\"naming\"]",
            "attack = \"log-flood\"",
        )],
    );
    let out = kuryr6(&["plan", "--offline", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let steps = 8;
    // The 1 MiB message is not read, only noted; then 63 more lines.
    let note = "(a log message of 1048576 code units, over the 65536 kuryr6 reads, not shown)";
    assert_eq!(
        stderr.matches(note).count(),
        steps,
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN flood"))
        .collect();
    assert_eq!(lines.len(), 63 * steps, "64 lines per call are kept");
    assert_eq!(
        stderr
            .matches("936 more log lines dropped (at most 64 per call)")
            .count(),
        steps
    );
    for l in &lines {
        assert!(l.len() < 1300, "a line of {} bytes", l.len());
        assert!(l.contains("\\u{1b}[2J\\nFORGED"), "{l}");
        assert!(l.contains("hook=\"naming\""), "{l}");
    }
    assert!(
        !stderr.contains('\u{1b}'),
        "a raw escape reached the terminal"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("FORGED")),
        "a plugin forged a log line"
    );
    // The plan itself is unharmed: the hook still answered.
    assert!(String::from_utf8_lossy(&out.stdout).contains("pod_subnet"));
}

#[test]
fn a_component_that_is_no_plugin_is_refused_naming_the_supported_versions() {
    // A wasm32-wasip2 command: a valid component, exports wasi:cli/run only.
    let e = load_error("notplugin", "a command loaded as a plugin");
    assert!(matches!(e, PluginError::Load { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("is not a kuryr6 plugin"), "{text}");
    assert!(text.contains("exports: wasi:cli/run@"), "{text}");
    assert!(
        text.ends_with("this kuryr6 runs plugins built against kuryr6:plugin 0.1.x and 0.2.x"),
        "{text}"
    );
}

#[test]
fn a_plugin_that_breaks_its_contracts_types_is_refused_when_loaded() {
    // Claims 0.2.0, but its naming.name lacks the context parameter.
    let e = load_error("mismatch-abi", "a plugin with a wrong export type loaded");
    assert!(matches!(e, PluginError::Load { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(
            "an export does not have its contract's type: kuryr6:plugin@0.2.0#naming.name"
        ),
        "{text}"
    );
}
