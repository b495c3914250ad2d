//! Runs that race on one pipeline, each seen through a tap of the shared
//! `FakeCloud` (`fake::Tap`) that logs every write that took effect with
//! the run that made it. The log is the proof that runs never write in
//! the same wave: each run's writes form one unbroken block.

use super::*;
use crate::cloud::Kind;
use crate::cloud::fake::{FakeCloud, WriteLog};
use crate::engine::lease::lease_name;
use crate::engine::tests::{SEED, load};
use crate::engine::{DestroyOptions, destroy_fenced, lease::with_lease};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn quiet() -> Progress {
    Progress::new(false)
}

async fn converge_on<C: Cloud>(cloud: &C, plan: &Plan) -> Result<usize, EngineError> {
    converge(
        cloud,
        plan,
        RunOptions::default(),
        LeaseOptions {
            wait: Duration::from_secs(30),
        },
        &quiet(),
        |_| {},
        |applied: &Applied| Ok::<_, EngineError>(applied.created),
    )
    .await
    .map(|c| c.emitted)
}

async fn destroy_on<C: Cloud>(cloud: &C, plan: &Plan) -> Result<usize, EngineError> {
    let progress = quiet();
    with_lease(
        cloud,
        &plan.pipeline,
        LeaseOptions {
            wait: Duration::from_secs(30),
        },
        &progress,
        true,
        async |lease| {
            destroy_fenced(cloud, plan, DestroyOptions::default(), &progress, lease).await
        },
    )
    .await
    .map(|d| d.deleted)
}

/// Everything of the pipeline that is left, by kind (lease records apart).
fn left(cloud: &FakeCloud, pipeline: &str) -> Vec<String> {
    let tag = format!("kuryr6-pipeline={pipeline}");
    [
        Kind::Network,
        Kind::Subnet,
        Kind::Router,
        Kind::SecurityGroup,
        Kind::LoadBalancer,
    ]
    .iter()
    .flat_map(|k| cloud.snapshot(k).into_iter().map(move |v| (k.clone(), v)))
    .filter(|(_, v)| {
        v["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == tag.as_str()))
    })
    .map(|(k, v)| format!("{k} {}", v["name"]))
    .collect()
}

#[tokio::test]
async fn two_runs_and_a_destroy_never_write_in_the_same_wave() {
    let plan = load(SEED).plan;
    let mut contended = 0;
    for round in 0..4 {
        let cloud = FakeCloud::new().with_latency(Duration::from_millis(2));
        let log = WriteLog::default();
        let (a, b, d) = (
            cloud.tap("a", Some(&log)),
            cloud.tap("b", Some(&log)),
            cloud.tap("d", Some(&log)),
        );
        // The destroy leaves at a different moment each round: before the
        // runs' writes, then after their 1st, 3rd and 6th write. Counted in
        // writes, not milliseconds, so a loaded machine meets the same
        // orders.
        let (ra, rb, rd) = tokio::join!(converge_on(&a, &plan), converge_on(&b, &plan), async {
            let after = [0, 1, 3, 6][round];
            let waited = Instant::now();
            while log.writes().len() < after && waited.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            destroy_on(&d, &plan).await
        });
        let (ra, rb, rd) = (ra.unwrap(), rb.unwrap(), rd.unwrap());
        let blocks = log.blocks();
        let mut seen = HashSet::new();
        for run in &blocks {
            assert!(
                seen.insert(*run),
                "round {round}: run {run} wrote again after another run wrote: {blocks:?}"
            );
        }
        assert!(ra + rb > 0, "round {round}: a run built the pipeline");
        if rd > 0 && blocks.len() >= 2 {
            contended += 1;
        }
        // Whole or nothing: the pipeline is complete (a run came last) or
        // gone (the destroy came last).
        let remaining = left(&cloud, &plan.pipeline);
        if blocks.last() == Some(&"d") {
            assert!(
                remaining.is_empty(),
                "round {round}: a half is left: {remaining:?}"
            );
        } else {
            let obs = crate::engine::observe(&cloud, &plan).await.unwrap();
            let set = crate::engine::diff(&plan, &obs, Default::default());
            assert!(
                !set.pending(),
                "round {round}: the last run left the pipeline incomplete"
            );
        }
        let records = cloud
            .snapshot(&Kind::SecurityGroup)
            .into_iter()
            .filter(|v| v["name"] == lease_name(&plan.pipeline).as_str())
            .count();
        assert!(records <= 1, "round {round}: {records} lease records");
    }
    // Every round that let a run write first: the destroy met what it built.
    assert!(
        contended >= 3,
        "the runs and the destroy contended in {contended} rounds"
    );
}

#[tokio::test]
async fn a_run_whose_renewals_fail_stops_and_the_next_holder_writes_alone() {
    let plan = load(SEED).plan;
    let cloud = FakeCloud::new();
    let log = WriteLog::default();
    let mut a = cloud.tap("a", Some(&log));
    // Slow enough that the lease runs out under the run's writes.
    a.write_time = Duration::from_millis(600);
    a.renewals_fail = true;
    let b = cloud.tap("b", Some(&log));
    let (ra, rb) = tokio::join!(converge_on(&a, &plan), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        converge_on(&b, &plan).await
    });
    let Err(EngineError::LeaseLost(why)) = &ra else {
        panic!("run a must stop on its lost lease: {:?}", ra.map(|_| ()));
    };
    assert!(why.contains("running again finishes"), "{why}");
    assert!(
        a.renewals_failed() >= 2,
        "a's renewals were tried and failed"
    );
    rb.expect("b finishes the job once a's record expired");
    let writes = log.writes();
    let a_writes = writes.iter().filter(|w| w.run == "a").count();
    assert!(a_writes > 0, "a began writing before it lost the lease");
    assert_eq!(
        log.blocks(),
        ["a", "b"],
        "no write of a after b's first: {writes:?}"
    );
    let obs = crate::engine::observe(&cloud, &plan).await.unwrap();
    assert!(!crate::engine::diff(&plan, &obs, Default::default()).pending());
    let nets: Vec<_> = cloud.snapshot(&Kind::Network);
    let names: HashSet<_> = nets.iter().map(|n| n["name"].to_string()).collect();
    assert_eq!(names.len(), nets.len(), "no duplicate network: {names:?}");
}
