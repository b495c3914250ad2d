//! The fleet against in-process fakes: many sites on several clouds and
//! projects, failures that stay local, --fail-fast, shared logins.

use super::*;
use crate::cloud::{FakeCloud, Kind};
use crate::engine::ownership::has_tag;
use crate::fleet::Summary;
use crate::source::SourceFile;
use serde_json::json;
use std::time::Duration;

/// Site `i` of the fleet on clouds.yaml entry `cloud`: its own names (two
/// sites may share a project) and its own prefix.
fn site(i: usize, cloud: &str, dir: &std::path::Path) -> Site {
    let text = format!(
        "[pipeline]\nname = \"site-{i}\"\n[cloud]\nname = \"{cloud}\"\n[plan]\nsite_prefix = \"fd42:a1b2:c3d4::/48\"\nsite_id = {i}\n\
[plan.names]\npod_network = \"s{i}-pods\"\nservice_network = \"s{i}-services\"\npod_subnet = \"s{i}-pod\"\nservice_subnet = \"s{i}-svc\"\nrouter = \"s{i}-router\"\nsecurity_group = \"s{i}-sg\"\n\
[plan.emit]\ndir = \"out/site-{i}\"\n"
    );
    let path = dir.join(format!("site-{i}.toml"));
    std::fs::write(&path, &text).unwrap();
    let loaded = crate::load::load_source(SourceFile::new(&path, text.as_str()))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
    let key = CloudKey::resolve(loaded.cloud.as_ref(), None, true);
    Site { loaded, key }
}

/// Sites 1, 2, … of the fleet, one on each of the clouds.yaml entries `clouds`, in order.
fn sites<S: AsRef<str>>(clouds: &[S], dir: &std::path::Path) -> Vec<Site> {
    clouds
        .iter()
        .enumerate()
        .map(|(i, c)| site(i + 1, c.as_ref(), dir))
        .collect()
}

/// A connector that knows the clouds.yaml entries `(name, fake, project)`.
fn connector<'a>(entries: &[(&str, &'a FakeCloud, &str)]) -> FakeConnector<'a> {
    FakeConnector::new(
        entries
            .iter()
            .map(|&(name, fake, project)| (name.to_string(), (fake, project.to_string()))),
    )
}

fn options(parallel: usize, fail_fast: bool) -> FleetOptions {
    FleetOptions {
        parallel,
        fail_fast,
        progress: false,
    }
}

/// One fleet command over `sites`, summed up as the CLI shows it.
async fn summary<K: Connector>(
    command: &str,
    sites: &[Site],
    job: &Job,
    connector: &K,
    options: FleetOptions,
) -> Summary {
    Summary::new(
        command,
        vec![],
        converge(sites, job, connector, &options).await,
        0.0,
    )
}

fn plan_job() -> Job {
    Job::Plan(RunOptions::default())
}

/// `fleet plan` over `sites`, four at a time, as the CLI sums it up.
async fn fleet_plan(sites: &[Site], connector: &FakeConnector<'_>) -> Summary {
    summary("plan", sites, &plan_job(), connector, options(4, false)).await
}

fn run_job() -> Job {
    Job::Run {
        options: RunOptions::default(),
        lease: LeaseOptions {
            wait: Duration::from_secs(5),
        },
        out: None,
    }
}

fn destroy_job() -> Job {
    Job::Destroy {
        options: DestroyOptions::default(),
        lease: LeaseOptions {
            wait: Duration::from_secs(5),
        },
    }
}

fn tagged(fake: &FakeCloud) -> usize {
    [
        Kind::Network,
        Kind::Subnet,
        Kind::Router,
        Kind::SecurityGroup,
    ]
    .iter()
    .flat_map(|k| fake.snapshot(k))
    .filter(|v| has_tag(v, "kuryr6"))
    .count()
}

#[tokio::test]
async fn six_sites_on_two_clouds_converge_rerun_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let (east, west) = (FakeCloud::new(), FakeCloud::new());
    let connector = connector(&[
        ("east-a", &east, "proj-a"),
        ("east-b", &east, "proj-b"),
        ("west", &west, "proj-w"),
    ]);
    // A bystander in each project the fleet works in.
    for (fake, p) in [(&east, "proj-a"), (&east, "proj-b"), (&west, "proj-w")] {
        fake.as_project(p)
            .create(&Kind::Network, json!({ "name": "bystander" }))
            .await
            .unwrap();
    }
    let sites = sites(
        &["east-a", "east-a", "east-b", "west", "west", "east-b"],
        dir.path(),
    );

    let first = summary("run", &sites, &run_job(), &connector, options(4, false)).await;
    assert!(first.ok, "{}", first.table());
    assert!(
        first.sites.iter().all(|r| r.created >= 7),
        "{}",
        first.table()
    );
    assert_eq!(
        connector.logins.get(),
        3,
        "one login per clouds.yaml entry, shared by its sites"
    );
    for i in 1..=6 {
        let conf = dir.path().join(format!("out/site-{i}/kuryr.conf"));
        assert!(
            std::fs::read_to_string(&conf)
                .unwrap()
                .contains("pod_subnet"),
            "{}",
            conf.display()
        );
    }
    let a = first.sites.iter().find(|r| r.site == "site-1").unwrap();
    assert_eq!((a.cloud.as_str(), a.project.as_str()), ("east-a", "proj-a"));

    let second = summary("run", &sites, &run_job(), &connector, options(4, false)).await;
    assert!(second.ok);
    for r in &second.sites {
        assert_eq!(
            (r.created, r.updated, r.deleted),
            (0, 0, 0),
            "{}",
            second.table()
        );
        assert!(r.unchanged >= 7);
    }
    let plan = fleet_plan(&sites, &connector).await;
    assert_eq!(plan.exit_code(true), 0, "{}", plan.table());

    let gone = summary(
        "destroy",
        &sites,
        &destroy_job(),
        &connector,
        options(4, false),
    )
    .await;
    assert!(gone.ok, "{}", gone.table());
    assert_eq!((tagged(&east), tagged(&west)), (0, 0));
    for fake in [&east, &west] {
        let nets = fake.snapshot(&Kind::Network);
        assert_eq!(
            nets.iter().filter(|n| n["name"] == "bystander").count(),
            if std::ptr::eq(fake, &east) { 2 } else { 1 }
        );
    }
    let plan = fleet_plan(&sites, &connector).await;
    assert_eq!(plan.exit_code(true), 3);
    assert_eq!(
        plan.pending.len(),
        6,
        "every site names its pending changes"
    );
    assert!(plan.sites.iter().all(|r| {
        r.detail["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    }));
}

#[tokio::test]
async fn a_cloud_that_is_down_fails_its_sites_only() {
    let dir = tempfile::tempdir().unwrap();
    let (east, west) = (FakeCloud::new(), FakeCloud::new());
    let connector = connector(&[("east", &east, "p"), ("west", &west, "p")]);
    connector.down.borrow_mut().insert("west".into());
    let sites = sites(&["east", "west", "east", "west"], dir.path());
    let s = summary("run", &sites, &run_job(), &connector, options(8, false)).await;
    assert_eq!(s.exit_code(false), 1);
    assert_eq!(s.failed, ["site-2", "site-4"]);
    assert!(s.table().contains("failed site-2"), "{}", s.table());
    assert!(
        s.sites
            .iter()
            .filter(|r| r.status == Status::Failed)
            .all(|r| r.error.as_deref().unwrap().contains("connection refused"))
    );
    // Back up: the re-run finishes the rest and leaves the done ones alone.
    connector.down.borrow_mut().clear();
    let s = summary("run", &sites, &run_job(), &connector, options(8, false)).await;
    assert!(s.ok, "{}", s.table());
    let by = |n: &str| s.sites.iter().find(|r| r.site == n).unwrap().created;
    assert_eq!((by("site-1"), by("site-3")), (0, 0));
    assert!(by("site-2") > 0 && by("site-4") > 0);
}

#[tokio::test]
async fn fail_fast_skips_the_sites_not_yet_started() {
    let dir = tempfile::tempdir().unwrap();
    let east = FakeCloud::new();
    let connector = connector(&[("east", &east, "p")]);
    let sites = sites(&["nowhere", "east", "east"], dir.path());
    let s = summary("run", &sites, &run_job(), &connector, options(1, true)).await;
    assert_eq!(s.failed, ["site-1", "site-2", "site-3"]);
    let skipped: Vec<_> = s
        .sites
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .map(|r| r.site.as_str())
        .collect();
    assert_eq!(skipped, ["site-2", "site-3"]);
    assert_eq!(east.total_calls(), 0, "no skipped site touched its cloud");
    // Without --fail-fast the others go on.
    let s = summary("run", &sites, &run_job(), &connector, options(1, false)).await;
    assert_eq!(s.failed, ["site-1"]);
    assert!(
        s.sites[0]
            .error
            .as_deref()
            .unwrap()
            .contains("no cloud named \"nowhere\"")
    );
}

#[tokio::test]
async fn sites_run_side_by_side_up_to_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let fakes: Vec<FakeCloud> = (0..8)
        .map(|_| FakeCloud::new().with_latency(Duration::from_millis(20)))
        .collect();
    let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    let entries: Vec<(&str, &FakeCloud, &str)> = names
        .iter()
        .zip(&fakes)
        .map(|(n, f)| (n.as_str(), f, "p"))
        .collect();
    let connector = connector(&entries);
    let sites = sites(&names, dir.path());
    let t = Instant::now();
    let one = converge(&sites[..1], &plan_job(), &connector, &options(8, false)).await;
    let single = t.elapsed();
    assert_eq!(one[0].status, Status::Pending);
    let t = Instant::now();
    let all = converge(&sites, &plan_job(), &connector, &options(8, false)).await;
    let eight = t.elapsed();
    assert_eq!(all.len(), 8);
    // Eight sites at once take far less than eight times one.
    assert!(
        eight < single * 3,
        "one site {single:?}, eight sites {eight:?}"
    );
}

/// A site whose run fails half-way says what it changed before the failure,
/// not zeros, and that a re-run finishes it.
#[tokio::test]
async fn a_site_failing_half_way_reports_what_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let east = FakeCloud::new();
    let connector = connector(&[("east", &east, "p")]);
    let sites = vec![site(1, "east", dir.path())];
    // The router keeps failing (each create is tried CREATE_ATTEMPTS times).
    for _ in 0..crate::engine::create::CREATE_ATTEMPTS {
        east.add_fault(crate::cloud::fake::Fault {
            verb: Some(crate::cloud::fake::Verb::Create),
            kind: Some(Kind::Router),
            nth: 1,
            error: CloudError::Unavailable("POST /v2.0/routers answered 500".into()),
            after_effect: false,
        });
    }
    let s = summary("run", &sites, &run_job(), &connector, options(1, false)).await;
    let r = &s.sites[0];
    assert_eq!(r.status, Status::Failed, "{}", s.table());
    let networks = east
        .snapshot(&Kind::Network)
        .iter()
        .filter(|v| has_tag(v, "kuryr6"))
        .count();
    assert!(networks > 0, "the networks came before the router");
    assert!(r.created >= networks, "{}", s.table());
    assert!(
        r.error.as_deref().unwrap().contains("half-applied"),
        "{:?}",
        r.error
    );
    let again = summary("run", &sites, &run_job(), &connector, options(1, false)).await;
    assert!(again.ok, "{}", again.table());
}

/// A connector whose cloud "boom" panics (a bug) while connecting.
struct Panicky<'a>(FakeConnector<'a>);

impl<'a> Connector for Panicky<'a> {
    type Cloud = crate::cloud::fake::ProjectView<'a>;
    async fn connect(&self, key: &CloudKey) -> Result<Connected<Self::Cloud>, CloudError> {
        if key.name.as_deref() == Some("boom") {
            tokio::task::yield_now().await;
            panic!("a bug in one site");
        }
        self.0.connect(key).await
    }
}

/// A panic in one site fails that site only: the others, in flight or not
/// started, still converge, and the summary names the broken one.
#[tokio::test]
async fn a_panic_in_one_site_fails_that_site_only() {
    let dir = tempfile::tempdir().unwrap();
    let east = FakeCloud::new();
    let connector = Panicky(connector(&[("east", &east, "p")]));
    let sites = sites(&["east", "boom", "east", "east"], dir.path());
    let s = summary("run", &sites, &run_job(), &connector, options(2, false)).await;
    assert_eq!(s.failed, ["site-2"], "{}", s.table());
    assert!(
        s.sites[1]
            .error
            .as_deref()
            .unwrap()
            .contains("internal error (a bug in kuryr6; please report it): a bug in one site"),
        "{}",
        s.table()
    );
    assert_eq!(s.sites.iter().filter(|r| r.status == Status::Ok).count(), 3);
}
