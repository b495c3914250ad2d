//! End-to-end: an upgrade is invisible. A deployment made by the previous
//! release (the source snapshot in `tests/upgrade/`, built by
//! `scripts/previous-build.sh`, path in `KURYR6_PREVIOUS_BIN`) is
//! recognised by this one as it is: `plan` shows no change, `run` writes
//! nothing and names the same ids in kuryr.conf, and `destroy` removes
//! everything, the previous release's lease marks included. Against the
//! real local cloud, with the API load balancer.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use support::*;

fn pipeline() -> String {
    seed_with_api_lb("upgrade-e2e", "up", "fd36")
}

fn previous() -> PathBuf {
    let path = std::env::var("KURYR6_PREVIOUS_BIN").unwrap_or_else(|_| {
        panic!("KURYR6_PREVIOUS_BIN is not set: build the previous release with `bash scripts/previous-build.sh` (scripts/test.sh does)")
    });
    let path = PathBuf::from(path);
    assert!(path.is_file(), "no previous build at {}", path.display());
    path
}

/// Every `key = value` of kuryr.conf that names a cloud id.
fn conf_ids(s: &Scratch) -> Vec<(String, String)> {
    let conf = std::fs::read_to_string(s.dir.join("out/kuryr.conf")).expect("kuryr.conf emitted");
    let mut ids: Vec<(String, String)> = conf
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .filter(|(k, _)| {
            matches!(
                *k,
                "project" | "pod_subnet" | "service_subnet" | "pod_security_groups"
            )
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ids.sort();
    ids
}

fn tagged(cloud: &LocalCloud) -> usize {
    let tag = "kuryr6:pipeline=upgrade-e2e";
    let neutron: usize = [
        &["network", "list"][..],
        &["subnet", "list"],
        &["router", "list"],
    ]
    .iter()
    .map(|cmd| {
        let mut args = cmd.to_vec();
        args.extend(["--tags", tag]);
        cloud.openstack(&args).as_array().unwrap().len()
    })
    .sum();
    let groups = cloud
        .openstack(&["security", "group", "list", "--tags", tag])
        .as_array()
        .unwrap()
        .len();
    let lbs = cloud
        .openstack(&["loadbalancer", "list", "--tags", tag])
        .as_array()
        .unwrap()
        .len();
    neutron + groups + lbs
}

#[test]
fn a_deployment_of_the_previous_release_is_taken_over_unchanged() {
    let _turn = octavia_turn();
    let previous = previous();
    let cloud = LocalCloud::get();
    let old = Scratch::with_pipeline("upgrade-old", &pipeline());
    let new = Scratch::with_pipeline("upgrade-new", &pipeline());
    assert_ok(&cloud.kuryr6(&new.dir, &["destroy", &new.pipeline()]));

    let version = cloud.run_program(&previous, &old.dir, &["--version"]);
    assert_ok(&version);
    let made = cloud.run_program(&previous, &old.dir, &["run", &old.pipeline()]);
    assert_ok(&made);
    assert_eq!(
        tagged(&cloud),
        7,
        "the previous release built the seed with its load balancer"
    );
    let ids = conf_ids(&old);
    assert_eq!(ids.len(), 4, "{ids:?}");

    // This release sees the deployment as its own, and as complete.
    let plan = cloud.kuryr6(&new.dir, &["plan", "--detailed-exitcode", &new.pipeline()]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "no change planned: {}",
        stdout(&plan)
    );
    assert_writes_nothing(&cloud, &new.dir, &["run", &new.pipeline()]);
    assert_eq!(conf_ids(&new), ids, "the same ids in kuryr.conf");
    assert_eq!(tagged(&cloud), 7);

    // And removes it whole, its lease record too.
    assert_ok(&cloud.kuryr6(&new.dir, &["destroy", &new.pipeline()]));
    assert_eq!(tagged(&cloud), 0, "destroy left something");
    let groups = cloud.openstack(&["security", "group", "list"]);
    let records = count_named(&groups, "kuryr6-lease:upgrade-e2e");
    assert_eq!(records, 0, "no lease record left");
    // The previous release still reads the cloud this one leaves: a run of
    // it after the destroy builds again, and this one destroys that.
    assert_ok(&cloud.run_program(&previous, &old.dir, &["run", &old.pipeline()]));
    assert_ok(&cloud.kuryr6(&new.dir, &["destroy", &new.pipeline()]));
    assert_eq!(tagged(&cloud), 0);
}
