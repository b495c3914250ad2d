//! What the offline tests of the `kuryr6` binary (core/tests/{cli,offline}.rs)
//! share: running it from the repo root, and the seed example with the step
//! kinds its plan lists.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The binary under test, run from the repo root with `env` added.
pub fn kuryr6_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kuryr6"));
    c.args(args).current_dir(repo());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("kuryr6 runs")
}

pub fn kuryr6(args: &[&str]) -> Output {
    kuryr6_env(args, &[])
}

/// The guide's pipeline, relative to the repo root.
pub const SEED: &str = "examples/seed-ipv6/pipeline.toml";

/// The step kinds of the seed's plan, in order: the whole guide up to the
/// API load balancer, then the emitted files.
pub const SEED_KINDS: [&str; 8] = [
    "network",
    "subnet",
    "network",
    "subnet",
    "router",
    "security_group",
    "loadbalancer",
    "emit",
];
