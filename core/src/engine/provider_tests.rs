//! Kuryr's load-balancer settings against the fake: `member_mode = "L2"`
//! derives and builds the `octavia_pod_access` group, and
//! `octavia_provider` reaches kuryr.conf (and reads back through `import`)
//! only when Octavia enables that provider, checked before any write.

use super::tests::{SEED, converge, load, named, pending};
use super::*;
use crate::cloud::Kind;
use crate::cloud::fake::{FakeCloud, Verb};
use crate::emit::{OfflineIds, kuryr_conf};
use crate::plan::Step;

fn with_emit(keys: &str) -> String {
    format!("{SEED}\n[plan.emit]\n{keys}\n")
}

fn conf_of(text: &str) -> String {
    let plan = load(text).plan;
    let emit = plan.emits().next().unwrap();
    kuryr_conf(&plan, emit, &OfflineIds)
}

#[test]
fn l2_member_mode_derives_the_pod_access_group_and_lists_both_groups() {
    let plan = load(&with_emit("member_mode = \"L2\"")).plan;
    let Some(Step::SecurityGroup(g)) = plan.step("octavia_pod_access") else {
        panic!("no octavia_pod_access step: {:#?}", plan.steps);
    };
    let rules: Vec<(String, String, String)> = g
        .rules
        .iter()
        .map(|r| {
            (
                r.protocol.clone().unwrap(),
                r.ethertype.clone(),
                r.remote_ip_prefix.unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("tcp".into(), "IPv6".into(), "fd10:0:0:1::/64".into()),
            ("udp".into(), "IPv6".into(), "fd10:0:0:1::/64".into()),
        ]
    );
    assert!(g.rules.iter().all(|r| r.direction == "ingress"));
    let conf = conf_of(&with_emit("member_mode = \"L2\""));
    assert!(
        conf.contains("pod_security_groups = <offline:security_group:service_pod_access_v6>,<offline:security_group:octavia_pod_access>"),
        "{conf}"
    );
    assert!(conf.contains("member_mode = L2"), "{conf}");

    // L3 (the default) has no such group; a name override is honoured.
    assert!(load(SEED).plan.step("octavia_pod_access").is_none());
    let renamed = load(&format!(
        "{}\n[plan.names]\noctavia_pod_access = \"pods_from_octavia\"\n",
        with_emit("member_mode = \"L2\"")
    ))
    .plan;
    assert!(renamed.step("pods_from_octavia").is_some());
}

#[test]
fn a_dual_stack_l2_group_admits_each_pod_family() {
    let text = include_str!("../../../examples/dual-stack/pipeline.toml");
    let text = if text.contains("[plan.emit]") {
        text.replace("[plan.emit]", "[plan.emit]\nmember_mode = \"L2\"")
    } else {
        format!("{text}\n[plan.emit]\nmember_mode = \"L2\"\n")
    };
    let plan = load(&text).plan;
    let Some(Step::SecurityGroup(g)) = plan.step("octavia_pod_access") else {
        panic!("no octavia_pod_access step");
    };
    let families: Vec<&str> = g.rules.iter().map(|r| r.ethertype.as_str()).collect();
    assert_eq!(families, ["IPv6", "IPv6", "IPv4", "IPv4"], "{g:#?}");
}

#[tokio::test]
async fn l2_converges_with_the_group_and_its_rules_then_re_runs_with_nothing() {
    let cloud = FakeCloud::new();
    let plan = load(&with_emit("member_mode = \"L2\"")).plan;
    converge(&cloud, &plan, RunOptions::default())
        .await
        .unwrap();
    let groups = cloud.snapshot(&Kind::SecurityGroup);
    let group = named(&groups, "octavia_pod_access");
    assert_eq!(group.len(), 1);
    let rules: Vec<_> = cloud
        .snapshot(&Kind::SecurityGroupRule)
        .into_iter()
        .filter(|r| r["security_group_id"] == group[0]["id"] && r["direction"] == "ingress")
        .filter(|r| r["remote_ip_prefix"] == "fd10:0:0:1::/64")
        .collect();
    assert_eq!(rules.len(), 2, "{rules:#?}");
    let again = pending(&cloud, &plan).await;
    assert!(!again.pending(), "{again:#?}");
}

#[test]
fn a_named_provider_reaches_kuryr_conf_and_ovn_sets_its_algorithm() {
    let conf = conf_of(&with_emit("octavia_provider = \"ovn\""));
    assert!(
        conf.contains("[kubernetes]\nendpoints_driver_octavia_provider = ovn"),
        "{conf}"
    );
    assert!(conf.contains("lb_algorithm = SOURCE_IP_PORT"), "{conf}");
    let amphora = conf_of(&with_emit("octavia_provider = \"amphora\""));
    assert!(
        amphora.contains("endpoints_driver_octavia_provider = amphora"),
        "{amphora}"
    );
    assert!(
        amphora.contains("lb_algorithm = LEAST_CONNECTIONS"),
        "{amphora}"
    );
    // None named: nothing written, as before.
    let plain = conf_of(SEED);
    assert!(
        !plain.contains("endpoints_driver_octavia_provider"),
        "{plain}"
    );

    // import reads back what emit wrote ("default" means none).
    let hints = crate::import::parse_kuryr_conf(&conf).unwrap();
    assert_eq!(hints.octavia_provider.as_deref(), Some("ovn"));
    let hints = crate::import::parse_kuryr_conf(
        "[kubernetes]\nendpoints_driver_octavia_provider = default\n",
    )
    .unwrap();
    assert_eq!(hints.octavia_provider, None);
}

#[tokio::test]
async fn a_provider_the_cloud_lacks_is_refused_before_any_write() {
    let plan = load(&with_emit("octavia_provider = \"ovn\"")).plan;
    let cloud = FakeCloud::new();
    let err = converge(&cloud, &plan, RunOptions::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("octavia_provider `ovn` is not enabled")
            && text.contains("providers: amphora"),
        "{text}"
    );
    assert_eq!(cloud.calls_of(Verb::Providers), 1);
    assert_eq!(
        cloud.write_calls(),
        0,
        "a write happened before the refusal"
    );

    // No Octavia at all: refused, saying so.
    let bare = FakeCloud::new().without_service(crate::cloud::Service::LoadBalancer);
    let neutron_only = load(&format!(
        "{}\n[plan.emit]\noctavia_provider = \"ovn\"\n",
        SEED.replace("api_hosts", "# api_hosts")
            .replace("  { name", "#  { name")
            .replace("\n]\n", "\n")
    ))
    .plan;
    let err = converge(&bare, &neutron_only, RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no Octavia in the catalog"),
        "{err}"
    );
    assert_eq!(bare.write_calls(), 0);

    // Enabled: it converges, and a plan without a provider never asks.
    let ovn = FakeCloud::new().with_lb_providers(&["amphora", "ovn"]);
    converge(&ovn, &plan, RunOptions::default()).await.unwrap();
    let plain = FakeCloud::new();
    converge(&plain, &load(SEED).plan, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(plain.calls_of(Verb::Providers), 0);
}
