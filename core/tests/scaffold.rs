//! A vendor's first hour (issue 9, item 6): `kuryr6 plugin new` scaffolds
//! a crate that tests itself with `cargo test`, builds for wasm32-wasip2,
//! and changes a plan when a pipeline names it — with the plugin's own
//! code under 30 lines.
//!
//! Runs real cargo on the scaffolded crate, offline, with this test's own
//! target directory (so the SDK's dependencies, wasmtime included, are
//! reused, not rebuilt) and the workspace's Cargo.lock (which the scaffold
//! copies in). Needs the wasm32-wasip2 target (scripts/build-plugins.sh
//! installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NAME: &str = "vendor-first-hour";

fn kuryr6(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kuryr6"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// `kuryr6 plan --offline --format json PIPELINE`.
fn plan_offline_json(pipeline: &Path) -> Output {
    let pipeline = pipeline.to_str().unwrap();
    kuryr6(&["plan", "--offline", "--format", "json", pipeline])
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kuryr6-scaffold-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// This test binary's target directory: target/debug/deps/<bin> → target.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// cargo `args` in `dir`, offline, sharing this test's target directory.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {} in {} failed:\n{}{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Lines of Rust that are neither blank nor comments.
fn code_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn bad_names_and_occupied_directories_are_refused() {
    let dir = temp_dir("refusals");
    for bad in ["Acme", "acme naming", "1st", "fn", "kuryr6", "../escape"] {
        let target = dir.join("x");
        let out = kuryr6(&["plugin", "new", bad, "--dir", target.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("is not a valid plugin crate name"),
            "{stderr}"
        );
        assert!(!target.exists(), "{bad}: something was written");
    }
    std::fs::write(dir.join("keep.txt"), "the vendor's file").unwrap();
    let out = kuryr6(&["plugin", "new", "acme", "--dir", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("already exists and is not an empty directory"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let out = kuryr6(&["plugin", "new", "acme", "--hooks", "naming,routing"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown hook is a usage error"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn from_scaffold_to_a_plugin_that_changes_a_plan() {
    let root = temp_dir("first-hour");
    let dir = root.join(NAME);
    let out = kuryr6(&["plugin", "new", NAME, "--dir", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let lines = code_lines(&lib);
    assert!(lines <= 30, "the plugin is {lines} lines of code:\n{lib}");
    eprintln!("plugin code: {lines} lines");
    let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(toml.contains("kuryr6-plugin-sdk = { path = "), "{toml}");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for command in [
        "kuryr6 plugin push ",
        "minisign -S ",
        "kuryr6 plugin lock ",
        "cargo test",
    ] {
        assert!(readme.contains(command), "README lacks `{command}`");
    }

    // Formatted as rustfmt would, so the vendor's first diff is their own.
    cargo(&dir, &["fmt", "--check"]);

    // It tests itself: the fixtures run through kuryr6's host.
    let out = cargo(&dir, &["test", "--", "--nocapture"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 fixtures passed"), "{stderr}");

    // A fixture that the plugin does not meet fails the test.
    std::fs::write(
        dir.join("fixtures/naming-subnet.expected.json"),
        r#"{"name": "fra1-pod-subnet"}"#,
    )
    .unwrap();
    let cargo_bin = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo_bin)
        .args(["test"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong expectation passed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ams1-pod-subnet"),
        "the failure shows the actual output"
    );
    std::fs::write(
        dir.join("fixtures/naming-subnet.expected.json"),
        r#"{"name": "ams1-pod-subnet"}"#,
    )
    .unwrap();

    // It builds for wasm32-wasip2 without the host's heavy dependencies.
    cargo(&dir, &["build", "--release", "--target", "wasm32-wasip2"]);
    let wasm = target_dir().join(format!(
        "wasm32-wasip2/release/{}.wasm",
        NAME.replace('-', "_")
    ));
    assert!(wasm.is_file(), "{} missing", wasm.display());
    let tree = cargo(&dir, &["tree", "--target", "wasm32-wasip2", "-p", NAME]);
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("wit-bindgen"), "{tree}");
    for heavy in ["wasmtime", "reqwest", "tokio", "kuryr6 v"] {
        assert!(
            !tree.contains(heavy),
            "{heavy} in the guest's tree:\n{tree}"
        );
    }

    // It runs in a pipeline. The scaffold's pipeline.toml has a placeholder
    // pin; the refusal names the file's real sha256, as for any plugin.
    let pipeline = dir.join("pipeline.toml");
    // Point it at the shared target directory's build.
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(
        &format!(
            "target/wasm32-wasip2/release/{}.wasm",
            NAME.replace('-', "_")
        ),
        wasm.to_str().unwrap(),
    );
    std::fs::write(&pipeline, &text).unwrap();
    let out = kuryr6(&["plan", "--offline", pipeline.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let sha = kuryr6::plugin::sha256_hex(&std::fs::read(&wasm).unwrap());
    assert!(
        stderr.contains(&sha),
        "the refusal does not name the sha256: {stderr}"
    );
    std::fs::write(
        &pipeline,
        text.replace("put the built file's sha256 here", &sha),
    )
    .unwrap();
    let with = plan_offline_json(&pipeline);
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let without = plan_offline_json(&dir.join("fixtures/seed.toml"));
    assert!(without.status.success());
    let (with, without) = (
        String::from_utf8_lossy(&with.stdout),
        String::from_utf8_lossy(&without.stdout),
    );
    assert!(with.contains("\"ams1-pod-subnet\""), "{with}");
    assert!(!without.contains("ams1-"), "{without}");
    assert!(without.contains("\"pod_subnet\""));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn every_hook_scaffolds_and_passes_its_fixtures() {
    let root = temp_dir("all-hooks");
    let dir = root.join("acme-all-hooks");
    let out = kuryr6(&[
        "plugin",
        "new",
        "acme-all-hooks",
        "--dir",
        dir.to_str().unwrap(),
        "--hooks",
        "plan,naming,policy",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cargo(&dir, &["fmt", "--check"]);
    let out = cargo(&dir, &["test", "--", "--nocapture"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 fixtures passed"), "{stderr}");
    // Lint-clean as written. For the guest target: its dependencies are
    // small, where a host check would check wasmtime too.
    cargo(
        &dir,
        &[
            "clippy",
            "--target",
            "wasm32-wasip2",
            "--",
            "-D",
            "warnings",
        ],
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_shipped_plugins_build_for_wasm_without_host_dependencies() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for plugin in ["naming", "site-prefix", "policy-guard"] {
        let out = cargo(&repo, &["tree", "--target", "wasm32-wasip2", "-p", plugin]);
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(tree.contains("kuryr6-plugin-sdk"), "{tree}");
        for heavy in ["wasmtime", "reqwest", "tokio", "kuryr6 v"] {
            assert!(!tree.contains(heavy), "{heavy} in {plugin}'s tree:\n{tree}");
        }
    }
}
