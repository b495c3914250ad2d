//! WebAssembly plugins end to end: the shipped plugins on the seed and the
//! sites, re-validation of what plugins return, the sandbox against hostile
//! plugins, determinism, pins and the compiled-code cache.
//!
//! Needs the plugins built: `scripts/build-plugins.sh` (the CI test command
//! runs it first). Timings are printed (`-- --nocapture`), never asserted.

use kuryr6::diag::Code;
use kuryr6::load::{self, Loaded, Rejected};
use kuryr6::plan::Step;
use kuryr6::plugin::{
    CacheDir, Host, Limits, Origin, Plugin, PluginError, ResourceKind, SiteInput, sha256_hex,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/plugins.rs"]
mod plugin_support;
use plugin_support::{
    SEED_NAMES_AMS1, assert_success, facts, host, plugin_dir, repo, sh_block, temp_dir, wasm,
};

fn sha(name: &str) -> String {
    plugin_support::sha(&wasm(name))
}

/// The seed pipeline plus `plugins` (TOML), written to a temp file.
fn seed_with(plugins: &str) -> PathBuf {
    plugin_support::seed_with("pipeline", plugins)
}

fn plugin_table(name: &str, extra: &str, facts: &str) -> String {
    plugin_support::plugin_table(&wasm(name), extra, facts)
}

fn rejected(path: &Path) -> Rejected {
    match load::load(path) {
        Ok(l) => panic!("{} loaded: {:?}", path.display(), l.plan.steps),
        Err(r) => r,
    }
}

fn loaded(path: &Path) -> Loaded {
    load::load(path)
        .unwrap_or_else(|r| panic!("{}", kuryr6::diag::render(&r.source, &r.diagnostics)))
}

fn names(l: &Loaded) -> Vec<&str> {
    l.plan.steps.iter().map(|s| s.name()).collect()
}

#[test]
fn seed_with_naming_plugin_gets_site_prefixed_names() {
    let l = loaded(&repo("examples/plugins/seed-naming/pipeline.toml"));
    assert_eq!(names(&l), SEED_NAMES_AMS1);
    // References follow the renames, so the plan is valid as a whole.
    for step in &l.plan.steps {
        match step {
            Step::Subnet(s) => assert!(s.network.starts_with("ams1-")),
            Step::Router(r) => assert_eq!(r.interfaces, ["ams1-pod-subnet", "ams1-service-subnet"]),
            Step::SecurityGroup(sg) => assert_eq!(sg.description, sg.name),
            Step::Loadbalancer(lb) => assert_eq!(lb.subnet, "ams1-service-subnet"),
            Step::Emit(e) => {
                assert_eq!(e.pod_subnet, "ams1-pod-subnet");
                assert_eq!(e.service_subnet, "ams1-service-subnet");
                assert_eq!(e.security_groups, ["ams1-service-pod-access-v6"]);
            }
            _ => {}
        }
    }
    // Spans follow too: an error about a renamed step still points into the file.
    assert!(l.spans.get("ams1-pod-subnet", "cidr").is_some());
}

#[test]
fn naming_keeps_the_api_loadbalancer_and_renames_its_references() {
    let p = seed_with(&plugin_table("naming", "", "site = \"fra1\""));
    let l = loaded(&p);
    let lb = l
        .plan
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Loadbalancer(lb) => Some(lb),
            _ => None,
        })
        .unwrap();
    assert_eq!(lb.name, "default/kubernetes");
    assert_eq!(lb.pool_name, "default/kubernetes:HTTPS:443");
    assert_eq!(lb.subnet, "fra1-service-subnet");
}

#[test]
fn seed_with_site_prefix_plugin_gets_derived_cidrs() {
    let l = loaded(&repo("examples/plugins/seed-site-prefix/pipeline.toml"));
    let prefix = kuryr6::addr::parse_prefix("fd12:3456:789a::/48").unwrap();
    // The plugin carves exactly like the short form's site_prefix/site_id.
    let (pod, svc) = kuryr6::addr::carve_site(&prefix, 1, 112).unwrap();
    let subnets: Vec<_> = l.plan.subnets().collect();
    assert_eq!(subnets[0].cidr, pod);
    assert_eq!(subnets[0].cidr.to_string(), "fd12:3456:789a:11::/64");
    assert_eq!(subnets[0].gateway_ip.to_string(), "fd12:3456:789a:11::1");
    assert_eq!(subnets[1].cidr, svc);
    assert_eq!(subnets[1].cidr.to_string(), "fd12:3456:789a:12::/112");
    assert_eq!(subnets[1].gateway_ip.to_string(), "fd12:3456:789a:12::fffe");
    assert_eq!(
        subnets[1].allocation_pools[0].start.to_string(),
        "fd12:3456:789a:12::8000"
    );
    for step in &l.plan.steps {
        match step {
            Step::SecurityGroup(sg) => {
                assert!(sg.rules.iter().all(|r| r.remote_ip_prefix == Some(svc)))
            }
            Step::Loadbalancer(lb) => assert_eq!(lb.vip.to_string(), "fd12:3456:789a:12::1"),
            _ => {}
        }
    }
    // And the emitted kuryr.conf carries the derived prefixes.
    let doc = kuryr6::report::document(&l, &kuryr6::emit::OfflineIds);
    assert_eq!(doc.service_cluster_ip_range, ["fd12:3456:789a:12::/113"]);
}

#[test]
fn plugin_output_is_revalidated_and_failures_are_named() {
    // A plan that overlaps its own subnets.
    let r = rejected(&seed_with(&plugin_table(
        "hostile",
        "hooks = [\"plan\"]",
        "attack = \"invalid\"",
    )));
    let d = &r.diagnostics[0];
    assert_eq!(d.code, Code::E029);
    assert!(d.message.contains("[InvalidOutput]"), "{}", d.message);
    assert!(d.message.contains("hook plan"), "{}", d.message);
    assert!(d.message.contains("E014"), "{}", d.message);
    // A field the plan does not have.
    let r = rejected(&seed_with(&plugin_table(
        "hostile",
        "hooks = [\"plan\"]",
        "attack = \"garbage\"",
    )));
    assert!(
        r.diagnostics[0].message.contains("not a plan"),
        "{}",
        r.diagnostics[0].message
    );
    // Names that are not names.
    let r = rejected(&seed_with(&plugin_table(
        "hostile",
        "hooks = [\"naming\"]",
        "attack = \"garbage\"",
    )));
    let m = &r.diagnostics[0].message;
    assert!(
        m.contains("[InvalidOutput]") && m.contains("hook naming") && m.contains("E006"),
        "{m}"
    );
    // The diagnostic points at the [[plugin]] table: file:line.
    let located = kuryr6::diag::Located::new(&r.source, &r.diagnostics[0]);
    assert!(located.line.is_some());
}

#[test]
fn pins_are_required_and_checked() {
    let path = wasm("naming");
    let actual = sha("naming");
    let p = seed_with(&format!(
        "[[plugin]]\npath = {:?}\n[plugin.facts]\nsite = \"x\"\n",
        path.display().to_string()
    ));
    let d = &rejected(&p).diagnostics[0];
    assert_eq!(d.code, Code::E028);
    assert!(d.message.contains("[HashMismatch]") && d.message.contains("no sha256 pin"));
    assert!(
        d.help.as_deref().unwrap().contains(&actual),
        "the help says what to pin"
    );

    let p = seed_with(&format!(
        "[[plugin]]\npath = {:?}\nsha256 = \"{}\"\n",
        path.display().to_string(),
        "0".repeat(64)
    ));
    let d = &rejected(&p).diagnostics[0];
    assert!(d.message.contains("[HashMismatch]") && d.message.contains(&actual));

    let p = seed_with("[[plugin]]\npath = \"missing.wasm\"\nsha256 = \"00\"\n");
    assert!(rejected(&p).diagnostics[0].message.contains("[Io]"));

    let p = seed_with(&plugin_table("naming", "hooks = [\"plan\"]", ""));
    let m = &rejected(&p).diagnostics[0].message;
    assert!(m.contains("does not implement the plan hook"), "{m}");

    let p = seed_with(&plugin_table(
        "naming",
        "hooks = [\"nope\"]\nmemory_mib = 0",
        "",
    ));
    let codes: Vec<Code> = rejected(&p).diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::E025, Code::E025]);
}

#[test]
fn deadline_from_the_pipeline_applies() {
    let p = seed_with(&plugin_table(
        "hostile",
        "hooks = [\"plan\"]\ndeadline_ms = 200",
        "attack = \"loop\"",
    ));
    let start = Instant::now();
    let m = rejected(&p).diagnostics[0].message.clone();
    eprintln!(
        "pipeline deadline 200 ms: rejected after {:?}",
        start.elapsed()
    );
    assert!(m.contains("[Deadline]") && m.contains("200 ms"), "{m}");
}

fn seed_json() -> String {
    kuryr6::plugin::hooks::plan_json(&loaded(&repo("examples/seed-ipv6/pipeline.toml")).plan)
}

/// The built plugin `name` loaded as `<name>.wasm`, pinned to its bytes,
/// with default limits.
fn load_pinned(name: &str) -> Arc<Plugin> {
    let label = format!("{name}.wasm");
    let pin = sha(name);
    let loaded = host().load_file(&label, &wasm(name), Some(&pin), &Limits::default());
    loaded.unwrap().plugin
}

/// Runs one attack through the plan hook; returns the outcome and the time.
fn attack(attack: &str, limits: &Limits) -> (Result<String, PluginError>, Duration) {
    let hostile = load_pinned("hostile");
    let start = Instant::now();
    let r = hostile
        .call_plan(
            "hostile.wasm",
            limits,
            &facts(&[("attack", attack)]),
            &seed_json(),
        )
        .map(|c| c.value);
    (r, start.elapsed())
}

/// After every attack the same host still serves a well-behaved call.
fn host_still_works() {
    let naming = load_pinned("naming");
    let out = naming
        .call_naming(
            "naming.wasm",
            &Limits::default(),
            ResourceKind::Subnet,
            "pod_subnet",
            &facts(&[("site", "ams1")]),
        )
        .unwrap();
    assert_eq!(out.value, "ams1-pod-subnet");
}

#[test]
fn hostile_plugins_end_in_named_errors_and_the_host_survives() {
    let default = Limits::default();
    let mut report = Vec::new();
    let mut check =
        |name: &str, limits: &Limits, expect: &dyn Fn(&Result<String, PluginError>) -> bool| {
            let (r, took) = attack(name, limits);
            let kind = r.as_ref().map(|_| "Ok").unwrap_or_else(|e| e.kind());
            report.push(format!("{name:<10} {kind:<14} {took:>10.1?}"));
            assert!(expect(&r), "attack {name}: unexpected outcome {r:?}");
            host_still_works();
        };
    let trap_says = |needle: &'static str| move |r: &Result<String, PluginError>| matches!(r, Err(PluginError::Trap { stderr, hook: "plan", .. }) if stderr.contains(needle));
    check("loop", &default, &|r| {
        matches!(r, Err(PluginError::Deadline { hook: "plan", .. }))
    });
    check(
        "loop",
        &Limits {
            fuel: Some(50_000_000),
            ..default
        },
        &|r| {
            matches!(
                r,
                Err(PluginError::Fuel {
                    fuel: 50_000_000,
                    ..
                })
            )
        },
    );
    check("memory", &default, &|r| {
        matches!(r, Err(PluginError::Memory { limit_mib: 64, .. }))
    });
    check(
        "panic",
        &default,
        &trap_says("hostile plugin panics on purpose"),
    );
    check("read-file", &default, &|r| {
        trap_says("hostile: read /etc/passwd")(r) && !format!("{r:?}").contains("root:")
    });
    check(
        "socket",
        &default,
        &trap_says("hostile: connect to 127.0.0.1:22"),
    );
    check("env", &default, &trap_says("hostile: read $PATH"));
    check(
        "recurse",
        &default,
        &|r| matches!(r, Err(PluginError::Trap { message, .. }) if message.contains("stack")),
    );
    check(
        "exit",
        &default,
        &|r| matches!(r, Err(PluginError::Trap { message, .. }) if message.contains("exit status")),
    );
    // Sleeping an hour returns at once: time is virtual inside the sandbox.
    check("sleep", &default, &|r| r.is_ok());

    // Load-time refusals.
    let start = Instant::now();
    let e = host()
        .load_file("wrong-abi.wasm", &wasm("wrong-abi"), None, &default)
        .err()
        .unwrap();
    report.push(format!(
        "{:<10} {:<14} {:>10.1?}",
        "wrong-abi",
        e.kind(),
        start.elapsed()
    ));
    assert!(
        matches!(e, PluginError::AbiMismatch { ref found, ref expected, .. }
            if found.ends_with("abi-version 999") && expected == "abi-version 1"),
        "{e}"
    );
    let start = Instant::now();
    let e = host()
        .load_file(
            "naming.wasm",
            &wasm("naming"),
            Some(&"ab".repeat(32)),
            &default,
        )
        .err()
        .unwrap();
    report.push(format!(
        "{:<10} {:<14} {:>10.1?}",
        "wrong-sha",
        e.kind(),
        start.elapsed()
    ));
    assert!(matches!(e, PluginError::HashMismatch { .. }), "{e}");
    for (what, bytes) in [
        ("garbage bytes", b"\0asm not really".to_vec()),
        ("core module", b"\0asm\x01\0\0\0".to_vec()),
    ] {
        let e = host().load(what, &bytes, &default).err().unwrap();
        assert!(matches!(e, PluginError::Load { .. }), "{what}: {e}");
    }
    host_still_works();
    eprintln!("attack     outcome        time\n{}", report.join("\n"));
}

#[test]
fn same_input_gives_byte_identical_output() {
    // A plugin that reads the clocks and the random source.
    let limits = Limits::default();
    let run = |host: &Host| {
        let p = host
            .load_file("hostile.wasm", &wasm("hostile"), None, &limits)
            .unwrap()
            .plugin;
        let name = p
            .call_naming(
                "hostile.wasm",
                &limits,
                ResourceKind::Network,
                "pods",
                &facts(&[("attack", "entropy")]),
            )
            .unwrap()
            .value;
        let policy = p
            .call_policy(
                "hostile.wasm",
                &limits,
                &[SiteInput {
                    name: "a".into(),
                    facts: facts(&[("attack", "entropy")]),
                    plan_json: seed_json(),
                }],
            )
            .unwrap()
            .value;
        (name, policy)
    };
    let first = run(host());
    assert_eq!(first, run(host()), "same host, another call");
    let other = Host::new(CacheDir::Disabled).unwrap();
    assert_eq!(first, run(&other), "another engine");
    // The frozen wall clock (2000-01-01T00:00:00Z, in ns) is what the guest saw.
    assert!(
        first
            .0
            .starts_with(&format!("pods-{:x}-0-", 946_684_800u128 * 1_000_000_000)),
        "{}",
        first.0
    );

    // A whole pipeline with a plan plugin: byte-identical plan documents.
    let doc = || {
        let l = loaded(&repo("examples/plugins/seed-site-prefix/pipeline.toml"));
        serde_json::to_string(&kuryr6::report::document(&l, &kuryr6::emit::OfflineIds)).unwrap()
    };
    assert_eq!(doc(), doc());
}

#[test]
fn same_input_gives_the_same_output_across_processes() {
    let dir = temp_dir("fixture");
    let fixture = dir.join("entropy.json");
    std::fs::write(
        &fixture,
        r#"{"facts": {"attack": "entropy"}, "kind": "network", "name": "pods"}"#,
    )
    .unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kuryr6"))
            .args(["plugin", "test"])
            .arg(wasm("hostile"))
            .args(["--hook", "naming", "--input"])
            .arg(&fixture)
            .env("KURYR6_PLUGIN_CACHE", dir.join("cache"))
            .output()
            .unwrap();
        assert_success(&out);
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let a = run();
    assert_eq!(a, run());
    assert!(String::from_utf8_lossy(&a).contains("\"name\": \"pods-"));
}

#[test]
fn policy_runs_across_all_sites_before_any_api_call() {
    let sites: Vec<PathBuf> = (1..=3)
        .map(|i| repo(&format!("examples/sites/site-{i}.toml")))
        .collect();
    let results = load::load_many(&sites);
    for r in &results {
        let l = r
            .as_ref()
            .unwrap_or_else(|r| panic!("{}", kuryr6::diag::render(&r.source, &r.diagnostics)));
        let site = l.source.path.file_stem().unwrap().to_str().unwrap();
        assert!(
            names(l)
                .iter()
                .filter(|n| **n != "configs")
                .all(|n| n.starts_with(site))
        );
    }

    let bad: Vec<PathBuf> = ["x1", "x2", "x3"]
        .iter()
        .map(|s| repo(&format!("tests/fixtures/sites-bad/{s}.toml")))
        .collect();
    let results = load::load_many(&bad);
    let mut codes = std::collections::BTreeSet::new();
    for r in &results {
        let r = r.as_ref().expect_err("every bad site is rejected");
        for d in &r.diagnostics {
            assert_eq!(d.code, Code::E030);
            let rule = d
                .message
                .split('[')
                .nth(1)
                .unwrap()
                .split(']')
                .next()
                .unwrap();
            codes.insert(rule.to_string());
        }
    }
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    // version-skew is a warning: reported, not a rejection.
    assert_eq!(
        codes,
        ["duplicate-name", "not-ula", "outside-prefix", "overlap"]
    );
}

/// A policy warning is a warning in its type: printed as `warning[E030]`
/// at the `[[plugin]]` table, and the sites still load and pass `check`.
#[test]
fn policy_warnings_print_as_warnings_and_reject_nothing() {
    let dir = temp_dir("skew");
    let plugins = format!("path = \"{}/", plugin_dir().display());
    let sites: Vec<PathBuf> = [("site-1", "1.33"), ("site-2", "1.34")]
        .iter()
        .map(|(site, version)| {
            let text = std::fs::read_to_string(repo(&format!("examples/sites/{site}.toml")))
                .unwrap()
                .replace("path = \"../../target/plugins/", &plugins)
                .replace("version = \"1.33\"", &format!("version = \"{version}\""));
            let path = dir.join(format!("{site}.toml"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    for r in load::load_many(&sites) {
        let l = r.unwrap_or_else(|r| panic!("{}", kuryr6::diag::render(&r.source, &r.diagnostics)));
        // The checked `[[plugin]]` tables stay with the loaded pipeline.
        let labels: Vec<&str> = l.plugins.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels.len(), 2, "{labels:?}");
        assert!(labels[1].ends_with("/policy-guard.wasm"), "{labels:?}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kuryr6"))
        .arg("check")
        .args(&sites)
        .env("KURYR6_PLUGIN_CACHE", dir.join("cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("error["), "{err}");
    let skew: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("[version-skew]"))
        .collect();
    let table = std::fs::read_to_string(&sites[1])
        .unwrap()
        .lines()
        .position(|l| l.contains("policy-guard.wasm"))
        .unwrap();
    assert_eq!(
        skew,
        [format!(
            "{}:{table}:1: warning[E030]: policy `policy-guard` [version-skew]: Kubernetes 1.34 here, 1.33 at {}",
            sites[1].display(),
            sites[0].display()
        )],
        "{err}"
    );
}

#[test]
fn compiled_plugins_are_cached_on_disk_and_in_memory() {
    let dir = temp_dir("cache-test");
    let bytes = std::fs::read(wasm("naming")).unwrap();
    let limits = Limits::default();
    let a = Host::new(CacheDir::At(dir.clone())).unwrap();
    let first = a.load("naming", &bytes, &limits).unwrap();
    assert_eq!(first.origin, Origin::Compiled);
    assert_eq!(
        a.load("naming", &bytes, &limits).unwrap().origin,
        Origin::Memory
    );
    let artefacts = artefacts(&dir);
    assert_eq!(artefacts.len(), 1);
    let name = artefacts[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        name.starts_with(&sha256_hex(&bytes)) && name.ends_with(".cwasm"),
        "{name}"
    );

    let b = Host::new(CacheDir::At(dir.clone())).unwrap();
    let cached = b.load("naming", &bytes, &limits).unwrap();
    assert_eq!(cached.origin, Origin::DiskCache);
    eprintln!(
        "compile+load {:?}, cached load {:?}",
        first.elapsed, cached.elapsed
    );

    // A damaged artefact is ignored and replaced, never trusted. (Damaged
    // at rest: replaced by rename, as kuryr6 itself writes, because hosts
    // a and b still have the old file mapped.)
    let damaged = artefacts[0].with_extension("damaged");
    std::fs::write(&damaged, b"not compiled code").unwrap();
    std::fs::rename(&damaged, &artefacts[0]).unwrap();
    let c = Host::new(CacheDir::At(dir.clone())).unwrap();
    assert_eq!(
        c.load("naming", &bytes, &limits).unwrap().origin,
        Origin::Compiled
    );
    let d = Host::new(CacheDir::At(dir)).unwrap();
    assert_eq!(
        d.load("naming", &bytes, &limits).unwrap().origin,
        Origin::DiskCache
    );
}

#[test]
fn plugin_test_cli_prints_output_time_and_fuel() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kuryr6"))
        .args(["plugin", "test"])
        .arg(wasm("naming"))
        .args(["--hook", "naming", "--input"])
        .arg(repo("tests/fixtures/naming-subnet.json"))
        .env("KURYR6_PLUGIN_CACHE", temp_dir("cli-cache"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stdout["name"], "ams1-pod-subnet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("naming call") && stderr.contains("fuel"),
        "{stderr}"
    );
}

/// The line of the first `[[plugin]]` table of a pipeline file.
fn plugin_line(text: &str) -> usize {
    text.lines().position(|l| l.trim() == "[[plugin]]").unwrap() + 1
}

/// Loads a pipeline (one file, or several for the policy hook) whose hostile
/// plugin runs `attack` in `hook`; returns the one diagnostic, checked to
/// be E029 at the `[[plugin]]` line, rendered without a raw control
/// character, with the pipeline file left as it was.
fn refused_by_boundary(hook: &str, attack: &str) -> String {
    let p = seed_with(&plugin_table(
        "hostile",
        &format!("hooks = [\"{hook}\"]"),
        &format!("attack = \"{attack}\""),
    ));
    let before = std::fs::read(&p).unwrap();
    let r = match load::load_many(std::slice::from_ref(&p)).pop().unwrap() {
        Ok(_) => panic!("{hook}/{attack}: the pipeline loaded"),
        Err(r) => r,
    };
    assert_eq!(
        std::fs::read(&p).unwrap(),
        before,
        "the pipeline file is untouched"
    );
    assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
    let d = &r.diagnostics[0];
    assert_eq!(d.code, Code::E029, "{hook}/{attack}: {}", d.message);
    let located = kuryr6::diag::Located::new(&r.source, d);
    assert_eq!(
        located.line,
        Some(plugin_line(&r.source.text)),
        "{}",
        d.message
    );
    let rendered = kuryr6::diag::render(&r.source, &r.diagnostics);
    assert!(
        !rendered
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{hook}/{attack}: a raw control character reached the output: {rendered:?}"
    );
    d.message.clone()
}

#[test]
fn boundary_corpus_each_rule_is_refused_with_its_named_error() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // What a plan hook may change: address-plan values and names only.
        (
            "plan",
            "steal-identity",
            "InvalidOutput",
            &["`pipeline`", "someone-elses-cluster"],
        ),
        (
            "plan",
            "emit-dir",
            "InvalidOutput",
            &[".dir`", "/etc/kuryr", "may change only name"],
        ),
        ("plan", "tags", "InvalidOutput", &[".resource_tags"]),
        (
            "plan",
            "add-step",
            "InvalidOutput",
            &["add or remove steps"],
        ),
        ("plan", "repoint", "InvalidOutput", &[".pod_subnet`"]),
        (
            "plan",
            "open-port",
            "InvalidOutput",
            &[".rules[0].port_range_m"],
        ),
        ("plan", "version", "InvalidOutput", &["kubernetes.version"]),
        // One name rule, from a plugin as from a file.
        (
            "plan",
            "ctrl-name",
            "InvalidOutput",
            &["E006", "control character"],
        ),
        (
            "naming",
            "ctrl-name",
            "InvalidOutput",
            &["E006", "control character", "network `pods`"],
        ),
        // Sizes, before the answer is copied or parsed.
        (
            "naming",
            "long-name",
            "Oversize",
            &["returned string of 300 exceeds the limit of 255"],
        ),
        (
            "plan",
            "huge",
            "Oversize",
            &["returned string of 839", "limit of 1048576"],
        ),
        (
            "naming",
            "huge",
            "Oversize",
            &["returned string of 8388608 exceeds the limit of 255"],
        ),
        (
            "plan",
            "deep-json",
            "Oversize",
            &["JSON nesting depth of 33 exceeds the limit of 32"],
        ),
        ("plan", "huge-refusal", "Oversize", &["limit of 4096"]),
        ("naming", "huge-refusal", "Oversize", &["limit of 4096"]),
        ("policy", "huge-refusal", "Oversize", &["limit of 4096"]),
        (
            "policy",
            "many-violations",
            "Oversize",
            &["returned list of 100000 exceeds the limit of 1000"],
        ),
        (
            "policy",
            "huge-violation",
            "Oversize",
            &["returned string of 1048576 exceeds the limit of 4096"],
        ),
    ];
    let mut report = Vec::new();
    for (hook, attack, kind, needles) in cases {
        let start = Instant::now();
        let m = refused_by_boundary(hook, attack);
        report.push(format!(
            "{hook:<7} {attack:<16} {kind:<14} {:>9.1?}",
            start.elapsed()
        ));
        assert!(m.contains(&format!("[{kind}]")), "{hook}/{attack}: {m}");
        assert!(m.contains(&format!("hook {hook}")), "{hook}/{attack}: {m}");
        for n in *needles {
            assert!(m.contains(n), "{hook}/{attack}: `{n}` not in: {m}");
        }
    }
    host_still_works();
    eprintln!(
        "hook    attack           outcome             time\n{}",
        report.join("\n")
    );
}

/// A listener that counts the connections made to it.
fn counting_listener() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("http://{}/v3", l.local_addr().unwrap());
    (l, url)
}

fn connections(l: &std::net::TcpListener, wait: Duration) -> usize {
    let end = Instant::now() + wait;
    let mut n = 0;
    loop {
        match l.accept() {
            Ok(_) => n += 1,
            Err(_) if Instant::now() < end && n == 0 => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => return n,
        }
    }
}

/// `kuryr6 run` with a cloud that only counts connections.
fn run_against(pipeline: &Path, auth_url: &str) -> std::process::Child {
    let home = temp_dir("home");
    std::process::Command::new(env!("CARGO_BIN_EXE_kuryr6"))
        .arg("run")
        .arg(pipeline)
        .env_remove("OS_CLOUD")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("KURYR6_PLUGIN_CACHE", home.join("cache"))
        .env("OS_AUTH_URL", auth_url)
        .env("OS_USERNAME", "u")
        .env("OS_PASSWORD", "p")
        .env("OS_PROJECT_NAME", "p")
        .env("OS_USER_DOMAIN_NAME", "Default")
        .env("OS_PROJECT_DOMAIN_NAME", "Default")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_boundary_refusal_comes_before_any_api_call() {
    // Control: without the plugin, `run` does contact the cloud.
    let (l, url) = counting_listener();
    let mut child = run_against(&seed_with(""), &url);
    let n = connections(&l, Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    assert!(n > 0, "the control run never contacted the cloud at {url}");

    // With a plugin that changes the emit directory: refused, no connection.
    let (l, url) = counting_listener();
    let p = seed_with(&plugin_table(
        "hostile",
        "hooks = [\"plan\"]",
        "attack = \"emit-dir\"",
    ));
    let out = run_against(&p, &url).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("[InvalidOutput]") && stderr.contains(".dir`"),
        "{stderr}"
    );
    assert_eq!(connections(&l, Duration::ZERO), 0, "no API call: {stderr}");
    assert!(!Path::new("/etc/kuryr").exists());
}

fn artefacts(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    v.sort();
    v
}

/// A cache directory holding authenticated artefacts of naming and
/// site-prefix; returns the directory and the two artefact paths.
fn cache_with_two_plugins(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = temp_dir(tag);
    let h = Host::new(CacheDir::At(dir.clone())).unwrap();
    let limits = Limits::default();
    let mut paths = Vec::new();
    for name in ["naming", "site-prefix"] {
        let bytes = std::fs::read(wasm(name)).unwrap();
        assert_eq!(
            h.load(name, &bytes, &limits).unwrap().origin,
            Origin::Compiled
        );
        paths.push(
            artefacts(&dir)
                .into_iter()
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .starts_with(&sha256_hex(&bytes))
                })
                .unwrap(),
        );
    }
    // Control: a fresh host does use them.
    let fresh = Host::new(CacheDir::At(dir.clone())).unwrap();
    let bytes = std::fs::read(wasm("site-prefix")).unwrap();
    assert_eq!(
        fresh.load("site-prefix", &bytes, &limits).unwrap().origin,
        Origin::DiskCache
    );
    (dir, paths.remove(0), paths.remove(0))
}

/// Loads site-prefix with a fresh host on `dir`: where its code came from,
/// and the name the running code reports (naming's code would say "naming").
fn load_site_prefix(dir: &Path) -> (Origin, String) {
    let h = Host::new(CacheDir::At(dir.to_path_buf())).unwrap();
    let bytes = std::fs::read(wasm("site-prefix")).unwrap();
    let l = h.load("site-prefix", &bytes, &Limits::default()).unwrap();
    (l.origin, l.plugin.info.name.clone())
}

#[cfg(unix)]
#[test]
fn the_cache_never_runs_an_artefact_someone_else_could_have_swapped() {
    use std::os::unix::fs::PermissionsExt;
    let compiled = (Origin::Compiled, "site-prefix".to_string());

    // An artefact valid for another plugin, renamed over this one's.
    let (dir, naming, site_prefix) = cache_with_two_plugins("swap");
    std::fs::copy(&naming, dir.join("swap.tmp")).unwrap();
    std::fs::rename(dir.join("swap.tmp"), &site_prefix).unwrap();
    assert_eq!(
        load_site_prefix(&dir),
        compiled,
        "the swapped code never ran"
    );
    // Recompiled and re-cached: the next host uses the cache again.
    assert_eq!(load_site_prefix(&dir).0, Origin::DiskCache);

    // A world-writable directory: nothing in it is trusted.
    let (dir, _, _) = cache_with_two_plugins("world-writable");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(load_site_prefix(&dir), compiled);
    assert_eq!(
        load_site_prefix(&dir),
        compiled,
        "and nothing is cached there"
    );

    // The artefact is a symlink (to a file that would even authenticate).
    let (dir, _, site_prefix) = cache_with_two_plugins("symlink");
    let elsewhere = dir.join("elsewhere.bin");
    std::fs::rename(&site_prefix, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &site_prefix).unwrap();
    assert_eq!(load_site_prefix(&dir), compiled);

    // The artefact belongs to another user (the tests may run as root).
    let (dir, _, site_prefix) = cache_with_two_plugins("owner");
    if std::os::unix::fs::chown(&site_prefix, Some(65534), Some(65534)).is_ok() {
        assert_eq!(load_site_prefix(&dir), compiled);
    }

    // The key replaced by someone else's: their artefacts do not verify.
    let (dir, _, _) = cache_with_two_plugins("key");
    std::fs::write(dir.join("key.new"), [7u8; 32]).unwrap();
    std::fs::set_permissions(dir.join("key.new"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(dir.join("key.new"), dir.join("key")).unwrap();
    assert_eq!(load_site_prefix(&dir), compiled);
}

/// sdk/README.md's "Testing a plugin" commands, run as written from the
/// repository root (the built kuryr6 for `kuryr6`): each succeeds, the
/// first prints the plugin's output, the second the sha256 a pipeline pins.
#[test]
fn the_sdk_readme_testing_commands_run_as_written() {
    let readme = std::fs::read_to_string(repo("sdk/README.md")).unwrap();
    let block = sh_block(&readme, "## Testing a plugin");
    let mut ran = Vec::new();
    for line in block.iter().filter(|l| !l.trim().is_empty()) {
        // What follows a command on its line is a comment.
        let words: Vec<&str> = line
            .split(" #")
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(words[0], "kuryr6", "{line}");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kuryr6"));
        command.args(&words[1..]).current_dir(repo("."));
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "`{line}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push((
            words[2].to_string(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ));
    }
    let verbs: Vec<&str> = ran.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(verbs, ["test", "info"]);
    assert!(ran[0].1.contains("\"name\""), "{}", ran[0].1);
    assert!(ran[1].1.contains(&sha("naming")), "{}", ran[1].1);
}
