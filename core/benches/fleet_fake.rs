//! A fleet of 1,000 sites against the in-process fake with 20 ms injected
//! per call, `--parallel 64` (issue 10 targets: wall ≤ 5 % of the sequential
//! sum, peak RSS ≤ 150 MiB). `cargo bench -p kuryr6 --bench fleet_fake`.
//!
//! The sequential sum is what the same sites take one after the other: a
//! sample of sites run with parallel 1 on fresh fakes, scaled to the fleet
//! (every site has the same shape, so each takes the same calls). Prints,
//! never asserts.

use kuryr6::cloud::FakeCloud;
use kuryr6::engine::RunOptions;
use kuryr6::engine::lease::LeaseOptions;
use kuryr6::fleet::run::FakeConnector;
use kuryr6::fleet::{CloudKey, FleetOptions, Job, Site, SiteReport, Status, converge};
use kuryr6::source::SourceFile;
use std::time::{Duration, Instant};

const SITES: usize = 1000;
const CLOUDS: usize = 20;
const LATENCY: Duration = Duration::from_millis(20);
const PARALLEL: usize = 64;
const SAMPLE: usize = 40;

fn site(i: usize, dir: &std::path::Path) -> Site {
    let text = format!(
        "[pipeline]\nname = \"site-{i}\"\n[cloud]\nname = \"cloud-{}\"\n[plan]\nsite_prefix = \"fd42:a1b2:c3d4::/48\"\nsite_id = {i}\n\
[plan.names]\npod_network = \"s{i}-pods\"\nservice_network = \"s{i}-services\"\npod_subnet = \"s{i}-pod\"\nservice_subnet = \"s{i}-svc\"\nrouter = \"s{i}-router\"\nsecurity_group = \"s{i}-sg\"\n",
        i % CLOUDS
    );
    let loaded = kuryr6::load::load_source(SourceFile::new(
        dir.join(format!("site-{i}.toml")),
        text.as_str(),
    ))
    .unwrap_or_else(|r| panic!("site {i}: {:?}", r.diagnostics));
    let key = CloudKey::resolve(loaded.cloud.as_ref(), None, true);
    Site { loaded, key }
}

/// Every site in its own project of one of `CLOUDS` fakes.
fn fakes() -> Vec<FakeCloud> {
    (0..CLOUDS)
        .map(|_| FakeCloud::new().with_latency(LATENCY))
        .collect()
}

fn connector(fakes: &[FakeCloud]) -> FakeConnector<'_> {
    FakeConnector::new(
        fakes
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("cloud-{i}"), (f, format!("project-{i}")))),
    )
}

/// One fleet command over `sites`, `parallel` at a time: the reports and the wall time.
fn timed_converge(
    rt: &tokio::runtime::Runtime,
    sites: &[Site],
    job: &Job,
    connector: &FakeConnector<'_>,
    parallel: usize,
) -> (Vec<SiteReport>, Duration) {
    let options = FleetOptions {
        parallel,
        fail_fast: false,
        progress: false,
    };
    let t = Instant::now();
    let reports = rt.block_on(converge(sites, job, connector, &options));
    (reports, t.elapsed())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let job = Job::Run {
        options: RunOptions::default(),
        lease: LeaseOptions {
            wait: Duration::from_secs(30),
        },
        out: Some(dir.path().join("out")),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sites: Vec<Site> = (0..SITES).map(|i| site(i, dir.path())).collect();

    // Sequential: a sample, one site at a time.
    let sample_fakes = fakes();
    let sample = connector(&sample_fakes);
    let (reports, elapsed) = timed_converge(&rt, &sites[..SAMPLE], &job, &sample, 1);
    let per_site = elapsed / SAMPLE as u32;
    assert!(reports.iter().all(|r| r.status == Status::Ok));
    let calls: usize = sample_fakes
        .iter()
        .map(FakeCloud::total_calls)
        .sum::<usize>()
        / SAMPLE;
    let sequential = per_site * SITES as u32;

    // The fleet: all sites, 64 at once, on fresh fakes.
    let fleet_fakes = fakes();
    let fleet = connector(&fleet_fakes);
    let (reports, wall) = timed_converge(&rt, &sites, &job, &fleet, PARALLEL);
    let failed = reports.iter().filter(|r| r.status != Status::Ok).count();
    let created: usize = reports.iter().map(|r| r.created).sum();

    // A converged re-run (reads only).
    let (again, rerun) = timed_converge(&rt, &sites, &job, &fleet, PARALLEL);
    let changed: usize = again
        .iter()
        .map(|r| r.created + r.updated + r.deleted)
        .sum();

    println!(
        "fleet_fake: {SITES} sites on {CLOUDS} fake clouds, {} ms per call, --parallel {PARALLEL}",
        LATENCY.as_millis()
    );
    println!(
        "  one site alone          {:>8.3} s  ({calls} calls; sample of {SAMPLE} run one by one)",
        per_site.as_secs_f64()
    );
    println!(
        "  sequential sum (est.)   {:>8.1} s",
        sequential.as_secs_f64()
    );
    println!(
        "  fleet wall              {:>8.2} s  = {:.2} % of the sequential sum (target ≤ 5 %)",
        wall.as_secs_f64(),
        100.0 * wall.as_secs_f64() / sequential.as_secs_f64()
    );
    println!(
        "  ideal (sequential / 64) {:>8.2} s",
        sequential.as_secs_f64() / PARALLEL as f64
    );
    println!(
        "  converged re-run        {:>8.2} s  ({changed} changes)",
        rerun.as_secs_f64()
    );
    println!("  created {created}, failed {failed}");
    println!(
        "  peak RSS                {:>8.1} MiB (target ≤ 150 MiB)",
        peak_rss_mib()
    );
}
