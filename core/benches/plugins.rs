//! What plugins cost: compiling one, loading it from the disk cache, one
//! warm hook call, and their share of a whole offline plan — in-process
//! and as a `kuryr6 plan --offline` process. Medians; printed, not asserted.
//! Targets: warm call ≤ 50 µs, cached load ≤ 1 ms, plugins ≤ 2 % of a run.
//!
//! Run: scripts/build-plugins.sh && cargo bench -p kuryr6 --bench plugins

use kuryr6::emit::OfflineIds;
use kuryr6::plugin::{CacheDir, Host, Limits, ResourceKind, SiteInput};
#[path = "../tests/support/plugins.rs"]
mod plugin_support;
use plugin_support::{facts, plugin_dir, repo, wasm_bytes};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let s = Instant::now();
                std::hint::black_box(f());
                s.elapsed()
            })
            .collect(),
    )
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kuryr6-bench-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn main() {
    let limits = Limits::default();
    let naming = wasm_bytes("naming");
    println!("plugin hook overhead (medians)\n");

    // Cold compile: a fresh host and an empty cache each time.
    let cold = time(5, || {
        let h = Host::new(CacheDir::At(scratch("cold"))).unwrap();
        h.load("naming", &naming, &limits).unwrap().elapsed
    });
    println!(
        "cold compile + link + describe   naming ({} KB)     {cold:>10.2?}",
        naming.len() / 1024
    );

    // Cached load: a fresh host (empty memory cache) on a warm disk cache.
    let dir = scratch("warm");
    Host::new(CacheDir::At(dir.clone()))
        .unwrap()
        .load("naming", &naming, &limits)
        .unwrap();
    let hosts: Vec<Host> = (0..21)
        .map(|_| Host::new(CacheDir::At(dir.clone())).unwrap())
        .collect();
    let cached = median(
        hosts
            .iter()
            .map(|h| h.load("naming", &naming, &limits).unwrap().elapsed)
            .collect(),
    );
    println!(
        "load from disk cache (+ describe)                    {cached:>10.2?}   target ≤ 1 ms"
    );
    let engine = time(5, || Host::new(CacheDir::Disabled).unwrap());
    println!("engine + ticker start (once per process)             {engine:>10.2?}");

    // Warm calls on one host.
    let host = &hosts[0];
    let p = host.load("naming", &naming, &limits).unwrap().plugin;
    let ctx = facts(&[("site", "ams1")]);
    let warm = time(2000, || {
        p.call_naming("naming", &limits, ResourceKind::Subnet, "pod_subnet", &ctx)
            .unwrap()
    });
    let fuel = p
        .call_naming("naming", &limits, ResourceKind::Subnet, "pod_subnet", &ctx)
        .unwrap()
        .fuel;
    println!(
        "warm naming call (store + instance + call)           {warm:>10.2?}   target ≤ 50 µs, fuel {fuel}"
    );

    let seed = kuryr6::load::load(&repo("examples/seed-ipv6/pipeline.toml")).unwrap();
    let json = kuryr6::plugin::hooks::plan_json(&seed.plan);
    let sp = host
        .load("site-prefix", &wasm_bytes("site-prefix"), &limits)
        .unwrap()
        .plugin;
    let sp_facts = facts(&[
        ("prefix", "fd12:3456:789a::/48"),
        ("sites", "ams1=1"),
        ("site", "ams1"),
    ]);
    let plan_call = time(500, || {
        sp.call_plan("site-prefix", &limits, &sp_facts, &json)
            .unwrap()
    });
    println!(
        "warm plan call, site-prefix ({} B plan JSON)       {plan_call:>10.2?}",
        json.len()
    );

    let pg = host
        .load("policy-guard", &wasm_bytes("policy-guard"), &limits)
        .unwrap()
        .plugin;
    let sites: Vec<SiteInput> = ["ams1", "fra1", "lon1"]
        .iter()
        .map(|s| SiteInput {
            name: s.to_string(),
            facts: facts(&[("prefix", "fd12:3456:789a::/48")]),
            plan_json: json.clone(),
        })
        .collect();
    let policy = time(500, || {
        pg.call_policy("policy-guard", &limits, &sites).unwrap()
    });
    println!("warm policy call, policy-guard, 3 sites              {policy:>10.2?}");

    // Share of a whole offline plan, in-process (global host, warm).
    let plan_run = |p: &str| {
        let l = kuryr6::load::load(&repo(p)).unwrap();
        kuryr6::report::text(&l, &OfflineIds)
    };
    plan_run("examples/plugins/seed-naming/pipeline.toml");
    let with = time(200, || {
        plan_run("examples/plugins/seed-naming/pipeline.toml")
    });
    let without = time(200, || plan_run("examples/seed-ipv6/pipeline.toml"));
    let share = with.saturating_sub(without).as_secs_f64() / with.as_secs_f64() * 100.0;
    println!(
        "offline plan in-process: seed {without:.2?}, seed + naming (8 calls) {with:.2?} → plugins {share:.1} %"
    );

    // Share of a `kuryr6 plan --offline` process, disk cache warm.
    let bin = std::env::var_os("KURYR6_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/kuryr6")
        });
    if bin.is_file() {
        let cache = scratch("process");
        let run = |p: &str| {
            let s = Instant::now();
            let out = std::process::Command::new(&bin)
                .args(["plan", "--offline"])
                .arg(repo(p))
                .env("KURYR6_PLUGIN_CACHE", &cache)
                .output()
                .unwrap();
            assert!(out.status.success());
            s.elapsed()
        };
        run("examples/plugins/seed-naming/pipeline.toml");
        let with = time(21, || run("examples/plugins/seed-naming/pipeline.toml"));
        let without = time(21, || run("examples/seed-ipv6/pipeline.toml"));
        let share = with.saturating_sub(without).as_secs_f64() / with.as_secs_f64() * 100.0;
        println!(
            "`kuryr6 plan --offline` process: seed {without:.2?}, seed + naming {with:.2?} → plugins {share:.1} %"
        );
    } else {
        println!(
            "(process figures skipped: no {}; set KURYR6_BIN)",
            bin.display()
        );
    }

    let py = plugin_dir().join("naming-py.wasm");
    if let Ok(bytes) = std::fs::read(&py) {
        let big = limits;
        let h = Host::new(CacheDir::At(scratch("py"))).unwrap();
        let cold = h.load("naming-py", &bytes, &big).unwrap().elapsed;
        let p = h.load("naming-py", &bytes, &big).unwrap().plugin;
        let warm = time(50, || {
            p.call_naming("naming-py", &big, ResourceKind::Subnet, "pod_subnet", &ctx)
                .unwrap()
        });
        println!(
            "python naming-py ({} MB): cold compile {cold:.2?}, warm call {warm:.2?}",
            bytes.len() / 1_000_000
        );
    }
}
