//! Host memory during hostile plugin calls: peak RSS of this process
//! (VmHWM, reset before each call through /proc/self/clear_refs) above the
//! RSS before the call, against the guest's memory cap. Printed, and
//! checked against the documented bound (sdk/README.md, "Limits at the
//! boundary"): growth ≤ 1.5 × the guest cap + 16 MiB.
//!
//! Run: scripts/build-plugins.sh && cargo bench -p kuryr6 --bench plugin_rss
//! (or, without a release build, `cargo test -p kuryr6 --bench plugin_rss`:
//! memory figures do not depend on optimization). Linux only.

use kuryr6::plugin::{CacheDir, Facts, Host, Limits, PluginError, ResourceKind, SiteInput};
#[path = "../tests/support/plugins.rs"]
mod plugin_support;
use plugin_support::{facts, repo, wasm_bytes};

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Runs `f`; returns (RSS before, peak RSS during) in MiB.
fn peak_during<T>(f: impl FnOnce() -> T) -> (f64, f64, T) {
    // "5" resets the peak RSS (VmHWM) to the current RSS (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let before = status_kib("VmRSS:") as f64 / 1024.0;
    let out = f();
    let peak = status_kib("VmHWM:") as f64 / 1024.0;
    (before, peak, out)
}

/// One measured call; `Ok` carries a label for the outcome.
type Call<'a> = Box<dyn Fn() -> Result<String, PluginError> + 'a>;

fn main() {
    let host = Host::new(CacheDir::Disabled).unwrap();
    let hostile = host
        .load("hostile", &wasm_bytes("hostile"), &Limits::default())
        .unwrap()
        .plugin;
    let seed = kuryr6::load::load(&repo("examples/seed-ipv6/pipeline.toml")).unwrap();
    let plan = kuryr6::plugin::hooks::plan_json(&seed.plan);

    println!("host RSS during one plugin call (peak above the RSS before it)\n");
    println!(
        "{:<34} {:>8} {:>10} {:>10} {:>7}  outcome",
        "call", "cap MiB", "before MiB", "growth MiB", "× cap"
    );
    let mut worst = 0.0f64;
    for cap in [64u64, 256] {
        let limits = Limits {
            memory_mib: cap,
            ..Limits::default()
        };
        // Answers as large as the guest can build under this cap.
        let size = (cap / 3).to_string();
        // The plan hook holds the plan, the padding and the serialized
        // answer at once: a fifth of the cap is what fits.
        let plan_size = (cap / 5).to_string();
        // The plan hook on the seed with `facts`.
        let plan_call = |f: Facts| -> Result<String, PluginError> {
            hostile
                .call_plan("hostile", &limits, &f, &plan)
                .map(|_| "ok".into())
        };
        let cases: Vec<(&str, Call)> = vec![
            ("well-behaved plan call", Box::new(|| plan_call(facts(&[])))),
            (
                "memory bomb (plan)",
                Box::new(|| plan_call(facts(&[("attack", "memory")]))),
            ),
            (
                "huge plan answer",
                Box::new(|| plan_call(facts(&[("attack", "huge"), ("size_mib", &plan_size)]))),
            ),
            (
                "huge name",
                Box::new(|| {
                    let f = facts(&[("attack", "huge"), ("size_mib", &size)]);
                    hostile
                        .call_naming("hostile", &limits, ResourceKind::Network, "pods", &f)
                        .map(|_| "ok".into())
                }),
            ),
            (
                "huge refusal message",
                Box::new(|| plan_call(facts(&[("attack", "huge-refusal"), ("size_mib", &size)]))),
            ),
            (
                "100 000 violations",
                Box::new(|| {
                    let site = SiteInput {
                        name: "a".into(),
                        facts: facts(&[("attack", "many-violations")]),
                        plan_json: plan.clone(),
                    };
                    hostile
                        .call_policy("hostile", &limits, &[site])
                        .map(|_| "ok".into())
                }),
            ),
        ];
        for (name, call) in cases {
            let (before, peak, out) = peak_during(call);
            let growth = (peak - before).max(0.0);
            let ratio = growth / cap as f64;
            let outcome = match out {
                Ok(s) => s,
                Err(e) => e.kind().to_string(),
            };
            println!("{name:<34} {cap:>8} {before:>10.1} {growth:>10.1} {ratio:>7.2}  {outcome}");
            let bound = 1.5 * cap as f64 + 16.0;
            assert!(
                growth <= bound,
                "{name}: host RSS grew {growth:.1} MiB, more than 1.5 × {cap} + 16 MiB"
            );
            worst = worst.max(ratio);
        }
    }
    println!("\nworst growth: {worst:.2} × the guest cap (documented bound: 1.5 × cap + 16 MiB)");
}
