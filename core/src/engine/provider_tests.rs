//! Kuryr's load-balancer settings against the fake: `member_mode = "L2"`
//! derives and builds the `octavia_pod_access` group, and
//! `octavia_provider` reaches kuryr.conf (and reads back through `import`)
//! only when Octavia enables that provider, checked before any write; the
//! API load balancer's own `provider` and `protocol` (the OVN provider with
//! TCP) are validated, checked against the cloud, built and destroyed.

use super::tests::{SEED, destroy_default, load, named, pending, run_err, run_ok};
use crate::cloud::Kind;
use crate::cloud::fake::{FakeCloud, Verb};
use crate::emit::{OfflineIds, kuryr_conf};
use crate::plan::{Plan, Step};

/// A run of `plan` on `cloud` is refused, saying each of `says`, before any write.
async fn assert_refused_before_writing(cloud: &FakeCloud, plan: &Plan, says: &[&str]) {
    let err = run_err(cloud, plan).await;
    for part in says {
        assert!(err.contains(part), "{part} missing: {err}");
    }
    assert_eq!(
        cloud.write_calls(),
        0,
        "a write happened before the refusal"
    );
}

/// On a cloud whose Octavia offers amphora only (the fake's default), a run
/// of `plan` is refused before any write, saying `not_enabled` and naming
/// the providers there are. Returns that cloud.
async fn refused_on_amphora_only(plan: &Plan, not_enabled: &str) -> FakeCloud {
    let cloud = FakeCloud::new();
    assert_refused_before_writing(&cloud, plan, &[not_enabled, "providers: amphora"]).await;
    cloud
}

fn with_emit(keys: &str) -> String {
    format!("{SEED}\n[plan.emit]\n{keys}\n")
}

/// The seed with `[plan]` keys for its API load balancer.
fn with_lb(keys: &str) -> String {
    SEED.replace("[plan]\n", &format!("[plan]\n{keys}\n"))
}

fn the_lb(plan: &crate::plan::Plan) -> &crate::plan::Loadbalancer {
    plan.steps
        .iter()
        .find_map(|s| match s {
            Step::Loadbalancer(lb) => Some(lb),
            _ => None,
        })
        .expect("the seed has an API load balancer")
}

/// The diagnostics `text` is refused with.
fn refused(text: &str) -> String {
    match crate::load::load_source(crate::source::SourceFile::new("test.toml", text)) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(r) => r
            .diagnostics
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
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
    run_ok(&cloud, &plan).await;
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
    let cloud = refused_on_amphora_only(&plan, "octavia_provider `ovn` is not enabled").await;
    assert_eq!(cloud.calls_of(Verb::Providers), 1);

    // No Octavia at all: refused, saying so.
    let bare = FakeCloud::new().without_service(crate::cloud::Service::LoadBalancer);
    let neutron_only = load(&format!(
        "{}\n[plan.emit]\noctavia_provider = \"ovn\"\n",
        SEED.replace("api_hosts", "# api_hosts")
            .replace("  { name", "#  { name")
            .replace("\n]\n", "\n")
    ))
    .plan;
    assert_refused_before_writing(&bare, &neutron_only, &["no Octavia in the catalog"]).await;

    // Enabled: it converges, and a plan without a provider never asks.
    let ovn = FakeCloud::new().with_lb_providers(&["amphora", "ovn"]);
    run_ok(&ovn, &plan).await;
    let plain = FakeCloud::new();
    run_ok(&plain, &load(SEED).plan).await;
    assert_eq!(plain.calls_of(Verb::Providers), 0);
}

#[test]
fn the_ovn_provider_takes_tcp_and_its_own_algorithm_and_refuses_https() {
    let plan = load(&with_lb("lb_provider = \"ovn\"\nlb_protocol = \"TCP\"")).plan;
    let lb = the_lb(&plan);
    assert_eq!(lb.provider.as_deref(), Some("ovn"));
    assert_eq!(lb.protocol(), "TCP");
    // Its only default algorithm, and Kuryr's naming with the protocol.
    assert_eq!(lb.algorithm, "SOURCE_IP_PORT");
    assert_eq!(lb.pool_name, "default/kubernetes:TCP:443");
    assert_eq!(lb.listener_name(), "default/kubernetes:TCP:443");

    // HTTPS (the default protocol) on OVN: refused, saying what would do.
    let https = refused(&with_lb("lb_provider = \"ovn\""));
    assert!(
        https.contains("the OVN provider does not balance HTTPS")
            && https.contains("protocol = \\\"TCP\\\""),
        "{https}"
    );
    let algorithm = refused(&with_lb(
        "lb_provider = \"ovn\"\nlb_protocol = \"TCP\"\nlb_algorithm = \"ROUND_ROBIN\"",
    ));
    assert!(
        algorithm.contains("does not support algorithm `ROUND_ROBIN`"),
        "{algorithm}"
    );
    let udp = refused(&with_lb("lb_protocol = \"UDP\""));
    assert!(udp.contains("protocol `UDP` is not one"), "{udp}");
    let name = refused(&with_lb("lb_provider = \"O V N\""));
    assert!(name.contains("is not an Octavia provider name"), "{name}");

    // Amphora takes TCP too; nothing named keeps the plan as before.
    let tcp = load(&with_lb("lb_protocol = \"TCP\"")).plan;
    assert_eq!(the_lb(&tcp).algorithm, "LEAST_CONNECTIONS");
    let seed = load(SEED).plan;
    assert_eq!(
        (the_lb(&seed).provider.as_deref(), the_lb(&seed).protocol()),
        (None, "HTTPS")
    );
    let json = serde_json::to_value(the_lb(&seed)).unwrap();
    assert!(
        json.get("provider").is_none() && json.get("protocol").is_none(),
        "{json}"
    );
}

#[tokio::test]
async fn an_ovn_api_load_balancer_converges_re_runs_clean_and_destroys_its_vip_port() {
    let plan = load(&with_lb("lb_provider = \"ovn\"\nlb_protocol = \"TCP\"")).plan;

    // A cloud without the OVN provider: refused before any write.
    refused_on_amphora_only(
        &plan,
        "load balancer `default/kubernetes`: provider `ovn` is not enabled",
    )
    .await;

    let cloud = FakeCloud::new().with_lb_providers(&["amphora", "ovn"]);
    run_ok(&cloud, &plan).await;
    let lbs = cloud.snapshot(&Kind::LoadBalancer);
    assert_eq!(lbs.len(), 1);
    assert_eq!(lbs[0]["provider"], "ovn");
    let lb_id = lbs[0]["id"].as_str().unwrap();
    let listeners = cloud.snapshot(&Kind::Listener);
    assert_eq!(
        (
            listeners.len(),
            &listeners[0]["protocol"],
            &listeners[0]["name"]
        ),
        (
            1,
            &serde_json::json!("TCP"),
            &serde_json::json!("default/kubernetes:TCP:443")
        )
    );
    let pools = cloud.snapshot(&Kind::Pool);
    assert_eq!(pools[0]["lb_algorithm"], "SOURCE_IP_PORT");
    let vip_ports = named(&cloud.snapshot(&Kind::Port), &format!("ovn-lb-vip-{lb_id}"))
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(vip_ports.len(), 1, "the OVN provider's VIP port");
    assert_eq!(vip_ports[0]["fixed_ips"][0]["ip_address"], "fd10:0:0:2::1");
    let again = pending(&cloud, &plan).await;
    assert!(!again.pending(), "{again:#?}");

    // The same name on amphora now: a provider change is refused without --replace.
    let amphora = load(SEED).plan;
    let mut moved = amphora.clone();
    for s in &mut moved.steps {
        if let Step::Loadbalancer(lb) = s {
            lb.provider = Some("amphora".into());
        }
    }
    let err = run_err(&cloud, &moved).await;
    assert!(
        err.contains("provider is ovn in the cloud, amphora in the pipeline")
            && err.contains("--replace"),
        "{err}"
    );

    destroy_default(&cloud, &plan).await.unwrap();
    assert!(cloud.snapshot(&Kind::LoadBalancer).is_empty());
    assert!(
        cloud.snapshot(&Kind::Port).is_empty(),
        "{:#?}",
        cloud.snapshot(&Kind::Port)
    );
}
