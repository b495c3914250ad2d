//! What the plugin benchmarks share: paths in the repo and the built
//! plugins (scripts/build-plugins.sh writes them to target/plugins).

use std::path::{Path, PathBuf};

pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

/// A built plugin's bytes (`$KURYR6_PLUGIN_OUT` or target/plugins).
pub fn wasm(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("KURYR6_PLUGIN_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("target/plugins"));
    let p = dir.join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the plugins first: scripts/build-plugins.sh",
            p.display()
        )
    })
}
