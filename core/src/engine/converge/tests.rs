//! `converge` against the `FakeCloud`: one read of the cloud per writing
//! run, the lease around the writes, and no emit while another run holds
//! the lease.

use super::*;
use crate::cloud::fake::{FakeCloud, Verb};
use crate::cloud::{Cloud, Kind};
use crate::engine::lease::{lease_name, lease_tag};
use crate::engine::tests::{SEED, load};
use serde_json::json;
use std::time::Duration;

fn quiet() -> Progress {
    Progress::new(false)
}

async fn run(
    cloud: &FakeCloud,
    plan: &Plan,
    wait: Duration,
) -> Result<Converged<usize>, EngineError> {
    converge(
        cloud,
        plan,
        RunOptions::default(),
        LeaseOptions { wait },
        &quiet(),
        |_| {},
        |applied: &Applied| Ok::<_, EngineError>(applied.ids.project.len()),
    )
    .await
}

/// Someone edits the seed's group by hand: one update to repair.
async fn drift_the_group(cloud: &FakeCloud) {
    let sg = cloud
        .snapshot(&Kind::SecurityGroup)
        .into_iter()
        .find(|g| g["name"] == "service_pod_access_v6")
        .unwrap();
    cloud
        .update(
            &Kind::SecurityGroup,
            sg["id"].as_str().unwrap(),
            json!({ "description": "changed by hand" }),
        )
        .await
        .unwrap();
}

fn lease_records(cloud: &FakeCloud, pipeline: &str) -> Vec<serde_json::Value> {
    cloud
        .snapshot(&Kind::SecurityGroup)
        .into_iter()
        .filter(|v| v["name"] == lease_name(pipeline).as_str())
        .collect()
}

/// The seed's one lease record; there must be exactly one.
fn the_record(cloud: &FakeCloud) -> serde_json::Value {
    let [record] = lease_records(cloud, "seed-ipv6").try_into().unwrap();
    record
}

/// A fake on which one run has converged the seed (its lease record made), and the plan.
async fn seed_converged() -> (FakeCloud, Plan) {
    let cloud = FakeCloud::new();
    let plan = load(SEED).plan;
    run(&cloud, &plan, Duration::ZERO).await.unwrap();
    (cloud, plan)
}

/// Drifts the group, then a run counted from zero calls repairs it with one update.
async fn repair_the_drifted_group(cloud: &FakeCloud, plan: &Plan) {
    drift_the_group(cloud).await;
    cloud.reset_calls();
    let drift = run(cloud, plan, Duration::ZERO).await.unwrap();
    assert_eq!(drift.applied.updated, 1);
}

/// None of `verbs` was called since the calls were last reset.
fn assert_not_called(cloud: &FakeCloud, verbs: &[Verb]) {
    for verb in verbs {
        assert_eq!(cloud.calls_of(*verb), 0, "{verb:?}");
    }
}

#[tokio::test]
async fn a_writing_run_reads_the_cloud_once_under_a_lease_taken_from_what_it_read() {
    let cloud = FakeCloud::new();
    let plan = load(SEED).plan;
    // First run: nothing found, not even a record; the record made now is
    // the only one, so nobody wrote in between: one read (a tag and a name
    // list of networks).
    let first = run(&cloud, &plan, Duration::ZERO).await.unwrap();
    assert!(first.applied.created > 0);
    assert_eq!(cloud.calls(Verb::List, &Kind::Network), 2, "one read");
    let record = the_record(&cloud);
    assert!(record["description"].as_str().unwrap().ends_with(" free"));

    // A drifted pipeline, record in place: one read, one take, one release.
    repair_the_drifted_group(&cloud, &plan).await;
    assert_eq!(
        cloud.calls(Verb::List, &Kind::Network),
        1,
        "the cloud was read once"
    );
    assert_eq!(
        cloud.calls(Verb::List, &Kind::SecurityGroup),
        1,
        "the groups and the record: one list"
    );
    // Take, the group's update, release: the lease costs two writes.
    assert_eq!(cloud.calls(Verb::Update, &Kind::SecurityGroup), 3);
    assert_eq!(cloud.calls(Verb::Create, &Kind::SecurityGroup), 0);

    // Converged: reads only, the record among them.
    cloud.reset_calls();
    let again = run(&cloud, &plan, Duration::ZERO).await.unwrap();
    assert_eq!(again.applied.created + again.applied.updated, 0);
    assert_not_called(&cloud, &[Verb::Create, Verb::Update, Verb::Delete]);
    assert_eq!(cloud.calls(Verb::List, &Kind::SecurityGroup), 1);
}

#[tokio::test]
async fn a_converged_run_does_not_emit_while_another_run_holds_the_lease() {
    let (cloud, plan) = seed_converged().await;
    // Another run holds the record for the next 2 s (a host elsewhere).
    let record = the_record(&cloud);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let other = format!(
        "kuryr6 lease: host=elsewhere pid=1 start=1 user=bob expires={} token=feed boot=x pidns=1",
        now + 2
    );
    cloud
        .update(
            &Kind::SecurityGroup,
            record["id"].as_str().unwrap(),
            json!({ "description": other }),
        )
        .await
        .unwrap();
    assert!(
        record["tags"]
            .as_array()
            .unwrap()
            .contains(&json!(lease_tag("seed-ipv6")))
    );
    let emitted = std::sync::atomic::AtomicBool::new(false);
    let refused = converge(
        &cloud,
        &plan,
        RunOptions::default(),
        LeaseOptions {
            wait: Duration::ZERO,
        },
        &quiet(),
        |_| {},
        |_: &Applied| {
            emitted.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, EngineError>(())
        },
    )
    .await;
    let Err(EngineError::Refused(lines)) = refused else {
        panic!("a converged run must not emit under another run's lease");
    };
    assert!(lines[0].contains("bob"), "{lines:?}");
    assert!(!emitted.load(std::sync::atomic::Ordering::SeqCst));
    // Waiting long enough, it reads again once the record expired, then emits.
    cloud.reset_calls();
    run(&cloud, &plan, Duration::from_secs(6)).await.unwrap();
    assert!(
        cloud.calls(Verb::List, &Kind::Network) >= 2,
        "read again after waiting"
    );
    assert_not_called(&cloud, &[Verb::Create, Verb::Delete]);
}

#[tokio::test]
async fn a_run_that_makes_the_record_over_existing_resources_reads_them_again() {
    // A pipeline built by a release before this lease: its resources are
    // there, its record is not. The record made now proves nothing of the
    // first read, so the cloud is read again under the lease.
    let (cloud, plan) = seed_converged().await;
    let record = the_record(&cloud);
    cloud
        .delete(&Kind::SecurityGroup, record["id"].as_str().unwrap())
        .await
        .unwrap();
    repair_the_drifted_group(&cloud, &plan).await;
    assert_eq!(
        cloud.calls(Verb::List, &Kind::Network),
        2,
        "read, then read again under the lease"
    );
    assert_eq!(lease_records(&cloud, "seed-ipv6").len(), 1);
}
