//! What the plugin tests and benchmarks share: paths in the repo, the built
//! plugins (scripts/build-plugins.sh writes them to target/plugins), a
//! per-binary host and scratch directories, and the seed pipeline that
//! plugin tables are appended to.
//!
//! Included by path (`#[path = ...] mod plugin_support;`) from
//! core/tests/{abi,plugins}.rs, tests/registry_e2e.rs and core/benches/*.rs;
//! each uses a part of it.
#![allow(dead_code)]

use kuryr6::plugin::{CacheDir, Facts, Host, sha256_hex};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

/// Where the built plugins are, and a built plugin's path (failing with
/// how to build it when it is missing): the SDK's own test helpers.
#[allow(unused_imports)] // each binary uses part of this file
pub use kuryr6_plugin_sdk::testing::{built as wasm, plugin_dir};

/// A built plugin's bytes.
pub fn wasm_bytes(name: &str) -> Vec<u8> {
    std::fs::read(wasm(name)).unwrap()
}

/// The pin a pipeline writes for `path` (hex SHA-256 of its bytes).
pub fn sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

/// A fresh directory of its own under the system temp dir, named after the
/// test binary (`kuryr6-<binary>-<pid>-<tag>-<n>`) so binaries running side
/// by side never share one.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!(
        "kuryr6-{}-{}-{tag}-{n}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A host of its own for this test binary, with a private disk cache.
pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::new(CacheDir::At(temp_dir("cache"))).unwrap())
}

pub const SEED: &str = r#"
[pipeline]
name = "seed-ipv6"

[kubernetes]
version = "1.33"
api_hosts = [{ name = "master-0", address = "fd10:0:0:3::10" }]

[plan]
pod_cidr = "fd10:0:0:1::/64"
service_cidr = "fd10:0:0:2::/112"
"#;

/// The seed's step names as the `naming` plugin renames them for site
/// `ams1`: resources get the site prefix, the API load balancer and the
/// outputs keep theirs.
pub const SEED_NAMES_AMS1: [&str; 8] = [
    "ams1-pods",
    "ams1-pod-subnet",
    "ams1-services",
    "ams1-service-subnet",
    "ams1-k8s-ipv6",
    "ams1-service-pod-access-v6",
    "default/kubernetes",
    "configs",
];

/// A `[[plugin]]` table for the plugin at `path`, pinned to its bytes.
pub fn plugin_table(path: &Path, extra: &str, facts: &str) -> String {
    format!(
        "[[plugin]]\npath = {:?}\nsha256 = \"{}\"\n{extra}\n[plugin.facts]\n{facts}\n",
        path.display().to_string(),
        sha(path)
    )
}

/// The seed pipeline plus `plugins` (TOML), written to a fresh temp dir
/// named after `tag`.
pub fn seed_with(tag: &str, plugins: &str) -> PathBuf {
    let path = temp_dir(tag).join("pipeline.toml");
    std::fs::write(&path, format!("{SEED}\n{plugins}")).unwrap();
    path
}

/// Facts as the host passes them: sorted by key.
pub fn facts(pairs: &[(&str, &str)]) -> Facts {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    Facts(v)
}

/// Fails with the process's stderr unless it exited 0.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fenced ```sh block under `heading` in a README, line by line.
pub fn sh_block(readme: &str, heading: &str) -> Vec<String> {
    let after = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("no `{heading}` section:\n{readme}"))
        .1;
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("no sh block under `{heading}`"))
        .0;
    block.lines().map(str::to_string).collect()
}
