//! The seed pipeline (its API load balancer included) against the
//! in-process fake with 50 ms before every call: a cloud far away whose
//! servers answer side by side, where a run's time is its round trips.
//! `cargo bench -p kuryr6 --bench far_cloud`. The local cloud of
//! `bench/cloud_vs_cli.sh` cannot show this: its Neutron serves one call
//! at a time, so there the servers' busy time bounds a run instead.
//!
//! Prints the first run, a no-change re-run and a destroy (under the lease,
//! as the CLI runs them) as wall time over the latency (round trips, the
//! fake's own work being microseconds). Prints, never asserts.

use kuryr6::cloud::FakeCloud;
use kuryr6::engine::lease::{self, LeaseOptions};
use kuryr6::engine::progress::Progress;
use kuryr6::engine::{DestroyOptions, EngineError, RunOptions, converge::converge};
use kuryr6::source::SourceFile;
use std::time::{Duration, Instant};

const LATENCY: Duration = Duration::from_millis(50);
const ROUNDS: usize = 3;
const SEED: &str = include_str!("../../examples/seed-ipv6/pipeline.toml");

fn main() {
    let loaded = kuryr6::load::load_source(SourceFile::new("pipeline.toml", SEED))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
    let plan = &loaded.plan;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let quiet = Progress::new(false);
    let mut first = Vec::new();
    let mut rerun = Vec::new();
    let mut destroy = Vec::new();
    for _ in 0..ROUNDS {
        let cloud = FakeCloud::new().with_latency(LATENCY);
        let run = || async {
            let t = Instant::now();
            converge(
                &cloud,
                plan,
                RunOptions::default(),
                LeaseOptions::default(),
                &quiet,
                |_| {},
                |_| Ok::<(), EngineError>(()),
            )
            .await
            .expect("the seed converges");
            t.elapsed()
        };
        first.push(rt.block_on(run()));
        rerun.push(rt.block_on(run()));
        destroy.push(rt.block_on(async {
            let t = Instant::now();
            lease::with_lease(
                &cloud,
                &plan.pipeline,
                LeaseOptions::default(),
                &quiet,
                true,
                async |l| {
                    let options = DestroyOptions::default();
                    kuryr6::engine::destroy_fenced(&cloud, plan, options, &quiet, l).await
                },
            )
            .await
            .expect("the seed is destroyed");
            t.elapsed()
        }));
    }
    println!(
        "seed pipeline, {} ms per call, median of {ROUNDS}",
        LATENCY.as_millis()
    );
    for (what, times) in [
        ("first run", &mut first),
        ("no-change re-run", &mut rerun),
        ("destroy", &mut destroy),
    ] {
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "  {what:<20} {:>6} ms = {:>4.1} round trips",
            median.as_millis(),
            median.as_secs_f64() / LATENCY.as_secs_f64()
        );
    }
}
