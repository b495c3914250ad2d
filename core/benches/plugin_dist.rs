//! What distribution through an OCI registry costs a plugin: a cold pull
//! (registry → digests checked → signature verified → stored) plus its
//! compile, and a warm start from the local store against the same plugin
//! loaded from a pinned path (both with the compiled artefact cached, each
//! on a fresh host, as in a new process). Medians; printed, not asserted.
//! Target: warm start ≤ 1 ms added per plugin over a path plugin.
//!
//! Needs the registry (scripts/registry/up.sh; KURYR6_REGISTRY or
//! .registry/address) and the minisign CLI to sign as a vendor would.
//! Run: scripts/build-plugins.sh && cargo bench -p kuryr6 --bench plugin_dist

use kuryr6::plugin::dist::{self, OciSource, Policy};
use kuryr6::plugin::reference::Reference;
use kuryr6::plugin::signature;
use kuryr6::plugin::store::Store;
use kuryr6::plugin::{CacheDir, Host, Limits};
#[path = "../tests/support/plugins.rs"]
mod plugin_support;
use plugin_support::{assert_success, repo, wasm_bytes};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The median wall time of `n` calls of `work`.
fn median_time(n: usize, mut work: impl FnMut()) -> Duration {
    let times = (0..n).map(|_| {
        let t = Instant::now();
        work();
        t.elapsed()
    });
    median(times.collect())
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kuryr6-bench-dist-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn registry() -> String {
    std::env::var("KURYR6_REGISTRY")
        .ok()
        .filter(|a| !a.is_empty())
        .or_else(|| std::fs::read_to_string(repo(".registry/address")).ok())
        .map(|a| a.trim().to_string())
        .expect("no registry: run scripts/registry/up.sh (or set KURYR6_REGISTRY)")
}

fn minisign(args: &[&str], dir: &Path) {
    let out = Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("minisign (scripts/registry/up.sh installs it)");
    assert_success(&out);
}

fn main() {
    let limits = Limits::default();
    let work = scratch("work");
    let bytes = wasm_bytes("naming");
    let file = work.join("naming.wasm");
    std::fs::write(&file, &bytes).unwrap();
    minisign(&["-G", "-W", "-p", "v.pub", "-s", "v.sec"], &work);
    minisign(&["-S", "-s", "v.sec", "-m", "naming.wasm"], &work);
    let sig = std::fs::read_to_string(work.join("naming.wasm.minisig")).unwrap();
    let key = signature::parse_key("v.pub", &work, "bench").unwrap();
    let policy = Policy {
        keys: vec![key],
        allow_unsigned: false,
    };

    let text = format!(
        "oci://{}/bench{}/naming:1.0.0",
        registry(),
        std::process::id()
    );
    let reference = Reference::parse(&text).unwrap();
    dist::push(&bytes, &reference, Some(&sig), false).unwrap();
    let src = OciSource {
        reference,
        text,
        insecure: false,
    };
    let lock_path = dist::lock_path(&work);
    let primed = Store::open(&work.join("store")).unwrap();
    let entry = dist::resolve(&src, &primed, &policy, None, false)
        .unwrap()
        .entry;
    kuryr6::plugin::lock::Lock {
        entries: vec![entry],
    }
    .write(&lock_path)
    .unwrap();

    println!(
        "plugin distribution (naming, {} KB; medians)\n",
        bytes.len() / 1024
    );

    // Cold: empty store, empty compiled cache, fresh host each time.
    let (mut pulls, mut compiles) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let store = Store::open(&scratch(&format!("cold-store-{i}"))).unwrap();
        let host = Host::new(CacheDir::At(scratch(&format!("cold-cwasm-{i}")))).unwrap();
        let t = Instant::now();
        let f = dist::load_locked(&src, &lock_path, &store, &policy, None).unwrap();
        pulls.push(t.elapsed());
        assert!(f.from_registry);
        compiles.push(host.load("naming", &f.bytes, &limits).unwrap().elapsed);
    }
    let (pull, compile) = (median(pulls), median(compiles));
    println!("cold pull + digests + signature + store   {pull:>10.2?}");
    println!("cold compile + link + describe            {compile:>10.2?}");
    println!(
        "cold total                                {:>10.2?}\n",
        pull + compile
    );

    // Warm: store and compiled cache primed; a fresh host per iteration
    // (its in-memory cache would otherwise hide the load).
    let cwasm = scratch("warm-cwasm");
    Host::new(CacheDir::At(cwasm.clone()))
        .unwrap()
        .load("naming", &bytes, &limits)
        .unwrap();
    let pin = kuryr6::plugin::sha256_hex(&bytes);
    let n = 30;
    let (mut path_t, mut oci_t, mut verify_t) = (Vec::new(), Vec::new(), Vec::new());
    let path_load = |host: &Host| {
        let t = Instant::now();
        std::hint::black_box(
            host.load_file("naming", &file, Some(&pin), &limits)
                .unwrap(),
        );
        t.elapsed()
    };
    let oci_load = |host: &Host| {
        let t = Instant::now();
        let f = dist::load_locked(&src, &lock_path, &primed, &policy, None).unwrap();
        let checked = t.elapsed();
        assert!(!f.from_registry);
        // As the loader does: the bytes were hashed against the lock.
        let sha = f.entry.layer.trim_start_matches("sha256:").to_string();
        std::hint::black_box(host.load_hashed("naming", &f.bytes, sha, &limits).unwrap());
        (t.elapsed(), checked)
    };
    for i in 0..n {
        // One host at a time, each fresh; the order alternates so neither
        // side always runs first.
        for oci_first in [i % 2 == 0, i % 2 != 0] {
            let host = Host::new(CacheDir::At(cwasm.clone())).unwrap();
            if oci_first {
                let (all, checked) = oci_load(&host);
                oci_t.push(all);
                verify_t.push(checked);
            } else {
                path_t.push(path_load(&host));
            }
        }
    }
    let (p, o, v) = (median(path_t), median(oci_t), median(verify_t));
    println!("warm path plugin (read + pin + cached load)       {p:>10.2?}");
    println!("warm oci plugin (lock + store + signature + load) {o:>10.2?}");
    println!("  of which lock + store + digests + signature     {v:>10.2?}");
    println!(
        "added per plugin over a path plugin               {:>10.2?}   (target ≤ 1 ms)",
        o.saturating_sub(p)
    );
    // The added work, piece by piece. The cached load after it is the same
    // code for both (`load_hashed`), so on a busy machine (its loads vary
    // 2.5–19 ms with other builds running) the difference of the two
    // medians above is noisier than this sum.
    let entry = kuryr6::plugin::lock::Lock::read(&lock_path)
        .unwrap()
        .unwrap()
        .entries[0]
        .clone();
    let lock_t = median_time(n, || {
        std::hint::black_box(kuryr6::plugin::lock::Lock::read(&lock_path).unwrap());
    });
    let store_t = median_time(n, || {
        std::hint::black_box(primed.get(&entry.manifest).unwrap());
        std::hint::black_box(primed.get(&entry.layer).unwrap());
    });
    let sig_t = median_time(n, || {
        std::hint::black_box(signature::verify(&bytes, &sig, &policy.keys).unwrap());
    });
    println!("  lock file read + parse                          {lock_t:>10.2?}");
    println!("  store: manifest + layer read, re-hashed         {store_t:>10.2?}");
    println!("  minisign verify (BLAKE2b + 2 × Ed25519)         {sig_t:>10.2?}");
    let prefix = format!("kuryr6-bench-dist-{}-", std::process::id());
    for e in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
