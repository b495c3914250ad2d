//! The SDK's test harness runs the shipped plugins on fixtures through
//! kuryr6's own host. (The plan types, the CIDR helpers and the ABI
//! constants are the host's own, from `kuryr6-plan`: nothing to keep in
//! step.) Needs the plugins built: scripts/build-plugins.sh.

use kuryr6_plugin_sdk::{Hook, Plan, testing};
use std::path::Path;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

#[test]
fn harness_runs_a_built_plugin_on_a_fixture() {
    let run = testing::run_fixture_file(
        &testing::built("naming"),
        Hook::Naming,
        &repo("tests/fixtures/naming-subnet.json"),
    )
    .unwrap();
    assert_eq!(run.output["name"], "ams1-pod-subnet");
    assert_eq!(run.info.name, "naming");
    assert!(run.fuel > 0);

    let run = testing::run_fixture(
        &testing::built("site-prefix"),
        Hook::Plan,
        &format!(
            r#"{{"facts": {{"prefix": "fd12:3456:789a::/48", "sites": "ams1=1, fra1=2", "site": "fra1"}},
                "pipeline": "{}"}}"#,
            repo("examples/seed-ipv6/pipeline.toml").display()
        ),
    )
    .unwrap();
    // The seed's API load balancer follows: its VIP is the new range's first address.
    let lb = run.output["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "loadbalancer")
        .expect("the seed's API load balancer")
        .clone();
    assert_eq!(lb["vip"], "fd12:3456:789a:22::1");
    let plan: Plan = serde_json::from_value(run.output).unwrap();
    let cidrs: Vec<String> = plan.subnets().map(|s| s.cidr.to_string()).collect();
    assert_eq!(cidrs, ["fd12:3456:789a:21::/64", "fd12:3456:789a:22::/112"]);
}

#[test]
fn harness_reports_a_plugin_refusal_by_name() {
    let err = testing::run_fixture(
        &testing::built("naming"),
        Hook::Naming,
        r#"{"facts": {}, "kind": "network", "name": "pods"}"#,
    )
    .unwrap_err();
    match err {
        testing::FixtureError::Plugin(testing::PluginError::Refused { message, hook, .. }) => {
            assert_eq!(hook, "naming");
            assert!(message.contains("fact `site` is missing"), "{message}");
        }
        other => panic!("expected Refused, got {other}"),
    }
}
