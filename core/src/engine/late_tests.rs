//! A create whose effect lands after the engine read it back: the POST
//! failed ambiguously (a proxy's 504, the client's timeout) while the
//! server still worked on it, the read-back found nothing, the engine sent
//! it again, and then the first copy landed, untagged, with the creation
//! marker. At every Neutron create point of the seed's first run: the
//! next `plan` reports the copy, `dedupe` removes it, a re-run converges,
//! and `destroy` leaves nothing behind.

use super::converge::converge;
use super::dedupe::dedupe_fenced;
use super::lease::{LeaseOptions, with_lease};
use super::progress::Progress;
use super::tests::{SEED, load};
use super::{DestroyOptions, EngineError, Ownership, RunOptions, destroy_fenced, diff, observe};
use crate::cloud::fake::{FakeCloud, LATE_KINDS};
use crate::cloud::{Cloud, CloudError, Kind};
use crate::plan::Plan;
use std::time::Duration;

fn quiet() -> Progress {
    Progress::new(false)
}

fn lease_options() -> LeaseOptions {
    LeaseOptions {
        wait: Duration::from_secs(10),
    }
}

async fn run<C: Cloud>(cloud: &C, plan: &Plan) -> Result<usize, EngineError> {
    converge(
        cloud,
        plan,
        RunOptions::default(),
        lease_options(),
        &quiet(),
        |_| {},
        |applied: &super::Applied| Ok::<_, EngineError>(applied.created),
    )
    .await
    .map(|c| c.emitted)
}

/// `kuryr6 destroy`: under the lease, which it deletes after.
async fn destroy(cloud: &FakeCloud, plan: &Plan) {
    let progress = quiet();
    with_lease(
        cloud,
        &plan.pipeline,
        lease_options(),
        &progress,
        true,
        async |lease| {
            destroy_fenced(cloud, plan, DestroyOptions::default(), &progress, lease).await
        },
    )
    .await
    .unwrap();
}

/// Everything in the fake that carries the pipeline's tag or marker.
fn marked(cloud: &FakeCloud, own: &Ownership) -> Vec<String> {
    LATE_KINDS
        .iter()
        .chain([&Kind::LoadBalancer])
        .flat_map(|k| cloud.snapshot(k))
        .filter(|v| own.is_tagged(v) || own.is_interrupted_create(v))
        .map(|v| format!("{} {}", v["name"], v["id"]))
        .collect()
}

#[tokio::test]
async fn a_create_that_lands_after_its_read_back_is_found_at_every_create_point() {
    let plan = load(SEED).plan;
    let own = Ownership::new(&plan.pipeline);
    // How many creates of hiding kinds the seed's first run makes.
    let cloud = FakeCloud::new();
    let counting = cloud.tap("count", None);
    run(&counting, &plan).await.unwrap();
    let points = counting.late_kind_creates();
    assert!(
        points >= 6,
        "the seed makes networks, subnets, a router and groups: {points}"
    );

    let mut hidden = 0;
    for at in 1..=points {
        let Some((cloud, copy)) = late_copy_at(&plan, at).await else {
            continue;
        };
        hidden += 1;
        // The next plan sees the copy: a duplicate, refused with dedupe's name.
        let obs = observe(&cloud, &plan).await.unwrap();
        let seen = obs
            .owned
            .values()
            .flatten()
            .any(|v| v["id"] == copy.as_str());
        assert!(seen, "create {at}: observe found the late copy");
        let set = diff(&plan, &obs, Default::default());
        assert!(
            set.refusals.iter().any(|r| r.contains("kuryr6 dedupe")),
            "create {at}: plan reports the duplicate: {:?}",
            set.refusals
        );

        // dedupe removes one copy; the pipeline then converges whole.
        let progress = quiet();
        let extras = with_lease(
            &cloud,
            &plan.pipeline,
            lease_options(),
            &progress,
            false,
            async |lease| dedupe_fenced(&cloud, &plan, &progress, lease).await,
        )
        .await
        .unwrap();
        assert!(
            !extras.is_empty(),
            "create {at}: dedupe removed the extra copy"
        );
        run(&cloud, &plan).await.unwrap();
        let obs = observe(&cloud, &plan).await.unwrap();
        let set = diff(&plan, &obs, Default::default());
        assert!(
            set.refusals.is_empty() && !set.pending(),
            "create {at}: a re-run after dedupe converged: {:?}",
            set.refusals
        );

        // destroy leaves nothing of the pipeline, the late copy included.
        destroy(&cloud, &plan).await;
        let left = marked(&cloud, &own);
        assert!(left.is_empty(), "create {at}: destroy left {left:?}");

        // And a destroy right after the copy landed takes it too.
        let (cloud, _) = late_copy_at(&plan, at).await.unwrap();
        destroy(&cloud, &plan).await;
        let left = marked(&cloud, &own);
        assert!(
            left.is_empty(),
            "create {at}: destroy after the landing left {left:?}"
        );
    }
    // Networks, the router and the groups can be copied; subnets cannot.
    assert!(
        hidden >= 4,
        "late copies landed at {hidden} of {points} points"
    );
}

/// A fake on which the seed's first run met a 504 at its `at`th create of
/// a hiding kind, re-sent it, and whose first copy then landed; and that
/// copy's id. `None` when the cloud refused the copy (subnets).
async fn late_copy_at(plan: &Plan, at: usize) -> Option<(FakeCloud, String)> {
    let own = Ownership::new(&plan.pipeline);
    let cloud = FakeCloud::new();
    let mut late = cloud.tap("late", None);
    late.late_create = at;
    run(&late, plan)
        .await
        .unwrap_or_else(|e| panic!("create {at}: the run re-sends and finishes: {e}"));
    let mut landed = late.land().await;
    assert_eq!(landed.len(), 1, "create {at}: the fault happened");
    let landed = match landed.pop() {
        Some(Ok(v)) => vec![v],
        Some(Err(CloudError::Rejected { message, .. })) if message.contains("overlaps") => {
            return None;
        }
        other => panic!("create {at}: {other:?}"),
    };
    assert!(
        own.is_interrupted_create(&landed[0]),
        "create {at}: the copy is untagged and marked"
    );
    let copy = landed[0]["id"].as_str().unwrap().to_string();
    drop(late);
    Some((cloud, copy))
}

/// Without a re-sent create, a run frees the record plainly: the next
/// runs make no extra lookups.
#[tokio::test]
async fn only_a_re_sent_create_makes_the_next_runs_sweep() {
    let plan = load(SEED).plan;
    let cloud = FakeCloud::new();
    run(&cloud, &plan).await.unwrap();
    let obs = observe(&cloud, &plan).await.unwrap();
    assert!(
        !super::ownership::sweep_wanted(&obs.lease),
        "{:?}",
        obs.lease
    );

    let cloud = FakeCloud::new();
    let mut late = cloud.tap("late", None);
    late.late_create = 2;
    run(&late, &plan).await.unwrap();
    let obs = observe(&cloud, &plan).await.unwrap();
    assert!(
        super::ownership::sweep_wanted(&obs.lease),
        "{:?}",
        obs.lease
    );
}
