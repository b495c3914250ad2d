//! Offline plan + validation of 1,000 site pipelines (issue target: < 2 s on
//! the 2-core machine). Measures the library path (parse → lower → validate →
//! render every emitted file) and the CLI path (`kuryr6 plan --offline
//! --format json` over 1,000 files in one process). Prints, never asserts.

use kuryr6::emit::OfflineIds;
use kuryr6::load;
use kuryr6::report;
use kuryr6::source::SourceFile;
use std::time::{Duration, Instant};
#[path = "../tests/support/plugins.rs"]
mod plugin_support;
use plugin_support::assert_success;

const SITES: usize = 1000;
const TARGET: Duration = Duration::from_secs(2);

fn site_pipeline(i: usize) -> String {
    format!(
        "[pipeline]\nname = \"site-{i}\"\n\n[kubernetes]\nversion = \"1.33\"\napi_hosts = [{{ name = \"master-{i}\", address = \"fd42:a1b2:c3d4:ff{:02x}::10\" }}]\n\n[plan]\nsite_prefix = \"fd42:a1b2:c3d4::/48\"\nsite_id = {i}\n",
        i % 256
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let texts: Vec<String> = (0..SITES).map(site_pipeline).collect();

    let library = median(
        (0..5)
            .map(|_| {
                let start = Instant::now();
                for (i, t) in texts.iter().enumerate() {
                    let loaded =
                        load::load_source(SourceFile::new(format!("site-{i}.toml"), t.as_str()))
                            .unwrap_or_else(|r| panic!("site {i} invalid: {:?}", r.diagnostics));
                    std::hint::black_box(report::document(&loaded, &OfflineIds));
                }
                start.elapsed()
            })
            .collect(),
    );

    let dir = std::env::temp_dir().join(format!("kuryr6-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = dir.join(format!("site-{i}.toml"));
            std::fs::write(&p, t).unwrap();
            p.display().to_string()
        })
        .collect();
    let exe = env!("CARGO_BIN_EXE_kuryr6");
    let cli = median(
        (0..3)
            .map(|_| {
                let start = Instant::now();
                let out = std::process::Command::new(exe)
                    .args(["plan", "--offline", "--format", "json"])
                    .args(&paths)
                    .output()
                    .unwrap();
                assert_success(&out);
                start.elapsed()
            })
            .collect(),
    );
    let _ = std::fs::remove_dir_all(&dir);

    println!("offline plan + validation of {SITES} site pipelines (median):");
    println!(
        "  library (parse, lower, validate, render)  {:>9.1} ms  = {:.3} × target {} s",
        library.as_secs_f64() * 1e3,
        library.as_secs_f64() / TARGET.as_secs_f64(),
        TARGET.as_secs()
    );
    println!(
        "  CLI, one process, JSON to stdout          {:>9.1} ms  = {:.3} × target {} s",
        cli.as_secs_f64() * 1e3,
        cli.as_secs_f64() / TARGET.as_secs_f64(),
        TARGET.as_secs()
    );
    println!(
        "  per pipeline (library)                    {:>9.1} µs",
        library.as_secs_f64() * 1e6 / SITES as f64
    );
}
