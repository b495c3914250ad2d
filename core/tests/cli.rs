//! CLI conventions of the `kuryr6` binary: completions, the man page,
//! usage errors for cloud-only flags with `plan --offline`, the one JSON
//! error shape, and warnings (deviations from the guide) that never fail
//! `check`. Runs the real binary; no cloud involved.

use serde_json::Value;
use std::process::Output;
#[path = "support/binary.rs"]
mod binary;
use binary::{SEED, SEED_KINDS, kuryr6, kuryr6_env, repo};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The string `field` of each object in the JSON array `list`.
fn strs_of<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    let items = list.as_array().unwrap();
    items.iter().map(|x| x[field].as_str().unwrap()).collect()
}

#[test]
fn completions_name_the_commands_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_kuryr6()"),
        ("zsh", "#compdef kuryr6"),
        ("fish", "complete -c kuryr6"),
    ] {
        let out = kuryr6(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for cmd in ["plan", "run", "destroy", "check", "import", "graph"] {
            assert!(script.contains(cmd), "{shell} script lacks {cmd}");
        }
    }
    let bad = kuryr6(&["completions", "powershell"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_page_is_roff_with_every_command() {
    let out = kuryr6(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert!(page.contains(".TH kuryr6 1"), "{page}");
    assert!(page.contains(".SH NAME"));
    for cmd in ["plan", "run", "check", "completions"] {
        assert!(page.contains(cmd), "man page lacks {cmd}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = kuryr6(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = std::fs::read_to_string(dir.path().join("kuryr6-plan.1")).unwrap();
    assert!(plan.contains("offline"), "{plan}");
    assert!(dir.path().join("kuryr6.1").exists());
}

#[test]
fn cloud_only_flags_with_offline_are_usage_errors() {
    for flag in [
        ["--adopt"].as_slice(),
        &["--replace"],
        &["--detailed-exitcode"],
        &["--os-cloud", "mycloud"],
        &["--os-cacert", "/etc/ssl/ca.pem"],
        &["--insecure"],
    ] {
        let mut args = vec!["plan", SEED, "--offline"];
        args.extend_from_slice(flag);
        let out = kuryr6(&args);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("--offline") && err.contains(flag[0]),
            "{flag:?}: the message names both flags: {err}"
        );
        assert!(stdout(&out).is_empty(), "{flag:?}: no plan printed");
    }
    // An exported OS_CLOUD is the environment, not a flag: offline plans still work.
    let out = kuryr6_env(&["plan", SEED, "--offline"], &[("OS_CLOUD", "mycloud")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn assert_error_shape(doc: &Value) {
    assert_eq!(doc["ok"], false, "{doc}");
    assert!(doc.get("error").is_none(), "no second shape: {doc}");
    let errors = doc["errors"].as_array().expect("errors is an array");
    assert!(!errors.is_empty(), "{doc}");
    for e in errors {
        for key in [
            "file", "line", "column", "code", "severity", "message", "help", "labels",
        ] {
            assert!(e.get(key).is_some(), "error lacks `{key}`: {e}");
        }
        assert!(e["code"].is_string() && e["message"].is_string(), "{e}");
        assert_eq!(e["severity"], "error");
    }
}

#[test]
fn json_errors_have_one_shape_for_pipeline_and_cloud_errors() {
    // A pipeline error.
    let out = kuryr6(&["check", "tests/bad/01-toml-syntax.toml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_error_shape(&doc);
    // A cloud error: an unknown cloud in an empty clouds.yaml.
    let dir = tempfile::tempdir().unwrap();
    let clouds = dir.path().join("clouds.yaml");
    std::fs::write(&clouds, "clouds: {}\n").unwrap();
    let out = kuryr6_env(
        &["plan", SEED, "--os-cloud", "nowhere", "--format", "json"],
        &[("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_error_shape(&doc);
    let e = &doc["errors"][0];
    assert_eq!(e["code"], "cloud.config", "{e}");
    assert_eq!(e["file"], SEED);
    assert!(e["message"].as_str().unwrap().contains("nowhere"), "{e}");
    // A usage error under --format json.
    let out = kuryr6(&["plan", SEED, SEED, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_error_shape(&doc);
    assert_eq!(doc["errors"][0]["code"], "usage");
}

#[test]
fn deviations_are_warnings_that_do_not_fail_check() {
    let rel = "tests/warn/ipv6-dhcp.toml";
    let out = kuryr6(&["check", rel]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{rel}:16:15: warning[W003]")),
        "{err}"
    );
    let out = kuryr6(&["check", rel, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let w = &doc["warnings"][0];
    assert_eq!(w["code"], "W003", "{doc}");
    assert_eq!(w["severity"], "warning");
    assert_eq!(
        (w["line"].as_u64(), w["column"].as_u64()),
        (Some(16), Some(15))
    );
    // L2 without a group for Octavia's member ports: tcp and udp, at the mode.
    let rel = "tests/warn/l2-without-pod-access.toml";
    let out = kuryr6(&["check", rel, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let l2: Vec<(&str, u64)> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["code"].as_str().unwrap(), w["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(l2, [("W006", 50), ("W006", 50)], "{doc}");
    // The short form's L2 derives the group: no warning.
    let short = std::env::temp_dir().join(format!("kuryr6-l2-short-{}.toml", std::process::id()));
    std::fs::write(
        &short,
        format!(
            "{}\n[plan.emit]\nmember_mode = \"L2\"\n",
            std::fs::read_to_string(repo().join(SEED)).unwrap()
        ),
    )
    .unwrap();
    let out = kuryr6(&["check", short.to_str().unwrap(), "--format", "json"]);
    let _ = std::fs::remove_file(&short);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["warnings"], serde_json::json!([]), "{doc}");
    // The guide itself has no deviation.
    let out = kuryr6(&["check", SEED, "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["warnings"], serde_json::json!([]), "{doc}");
}

#[test]
fn the_seed_is_the_whole_guide_up_to_the_api_load_balancer() {
    let out = kuryr6(&["plan", SEED, "--offline", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = doc[0]["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, SEED_KINDS);
    // The guide's k8s_lb_reachable step: `default/kubernetes` on the
    // service subnet, VIP = the service range's first address, one member
    // per API host.
    let lb = &steps[6];
    assert_eq!(lb["name"], "default/kubernetes");
    assert_eq!(lb["subnet"], "service_subnet");
    assert_eq!(lb["vip"], "fd10:0:0:2::1");
    let members = strs_of(&lb["members"], "address");
    assert_eq!(members, ["fd10:0:0:3::10", "fd10:0:0:3::11"]);
    // kuryr.conf names it, and each API host gets its flags.
    assert_eq!(steps[7]["loadbalancer"], "default/kubernetes");
    let files = strs_of(&doc[0]["outputs"][0]["files"], "file");
    assert!(
        files.contains(&"kube-apiserver.master-0.flags"),
        "{files:?}"
    );
    assert!(
        files.contains(&"kube-apiserver.master-1.flags"),
        "{files:?}"
    );
    let svg = kuryr6(&["graph", SEED]);
    assert_eq!(svg.status.code(), Some(0));
    assert!(stdout(&svg).contains("API VIP fd10:0:0:2::1"));
}
