//! The SDK against the host: the plan mirror stays in step with core's
//! `Plan`, the CIDR helpers agree with core's address rules, the ABI
//! constants match, and the harness runs the shipped plugins on fixtures.
//! Needs the plugins built: scripts/build-plugins.sh.

use kuryr6_plugin_sdk::{Hook, Plan, cidr, testing};
use std::path::Path;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

fn core_plan(pipeline: &str) -> kuryr6::plan::Plan {
    kuryr6::load::load(&repo(pipeline))
        .unwrap_or_else(|r| panic!("{pipeline}: {:?}", r.diagnostics))
        .plan
}

#[test]
fn plan_mirror_round_trips_core_plans_exactly() {
    for p in [
        "examples/seed-ipv6/pipeline.toml",
        "examples/seed-ipv6-explicit/pipeline.toml",
        "examples/plugins/seed-site-prefix/pipeline.toml",
    ] {
        let core = serde_json::to_value(core_plan(p)).unwrap();
        let sdk: Plan = serde_json::from_value(core.clone()).unwrap();
        // Nothing the host sends is unknown to this SDK version…
        assert!(
            sdk.extra.is_empty(),
            "{p}: SDK lacks fields {:?}",
            sdk.extra
        );
        for s in &sdk.steps {
            let json = serde_json::to_value(s).unwrap();
            assert!(json.get("kind").is_some());
        }
        // …and what it writes back is what it got.
        assert_eq!(serde_json::to_value(&sdk).unwrap(), core, "{p}");
    }
}

#[test]
fn unknown_fields_are_carried_through() {
    let mut json = serde_json::to_value(core_plan("examples/seed-ipv6/pipeline.toml")).unwrap();
    json["steps"][1]["dns_nameservers"] = serde_json::json!(["fd10::53"]);
    json["future"] = serde_json::json!({"x": 1});
    let sdk: Plan = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&sdk).unwrap(), json);
}

#[test]
fn abi_constants_match_the_host() {
    assert_eq!(kuryr6_plugin_sdk::ABI_VERSION, kuryr6::plugin::ABI_VERSION);
    assert_eq!(
        kuryr6_plugin_sdk::WIT_PACKAGE,
        format!("kuryr6:plugin@{}", kuryr6::plugin::WIT_VERSION)
    );
    let wit = std::fs::read_to_string(repo("sdk/wit/plugin.wit")).unwrap();
    assert!(wit.contains(&format!("package {};", kuryr6_plugin_sdk::WIT_PACKAGE)));
}

#[test]
fn cidr_layouts_agree_with_core() {
    for text in [
        "fd10:0:0:2::/112",
        "fd10:0:0:1::/64",
        "fd12:3456:789a:12::/108",
        "10.96.0.0/24",
        "10.1.0.0/16",
        "fd10::/126",
    ] {
        let n = cidr::parse(text).unwrap();
        let core = kuryr6::addr::service_layout(&n);
        let sdk = cidr::service_layout(&n);
        assert_eq!(core.is_some(), sdk.is_some(), "{text}");
        if let (Some(c), Some(s)) = (core, sdk) {
            assert_eq!(
                (
                    c.kubernetes_range,
                    c.kubernetes_default_ip,
                    c.gateway,
                    c.pool_start,
                    c.pool_end
                ),
                (
                    s.kubernetes_range,
                    s.kubernetes_default_ip,
                    s.gateway,
                    s.pool_start,
                    s.pool_end
                ),
                "{text}"
            );
        }
        assert_eq!(kuryr6::addr::pod_layout(&n), cidr::pod_layout(&n), "{text}");
    }
    // The site carving of the short form, rebuilt from carve_64.
    let prefix = cidr::parse("fd12:3456:789a::/48").unwrap();
    for site in [0u16, 1, 3, 4095] {
        let (pod, svc) = kuryr6::addr::carve_site(&prefix, i64::from(site), 112).unwrap();
        let id = u128::from(site) * 16;
        assert_eq!(cidr::carve_64(&prefix, id + 1).unwrap(), pod);
        let svc64 = cidr::carve_64(&prefix, id + 2).unwrap();
        assert_eq!(cidr::carve(&svc64, 112, 0).unwrap(), svc);
    }
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
