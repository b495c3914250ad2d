//! Import against the in-memory `FakeCloud`: deployments built by hand
//! through the `Cloud` trait (as the guide's CLI commands would), read,
//! written, loaded back, and diffed: adoption only, field for field.

use super::write::{Imported, write};
use super::*;
use crate::cloud::fake::{FakeCloud, RouterMode, Verb};
use crate::diag::Code;
use crate::engine::change::{Action, ChangeSet};
use crate::engine::progress::Progress;
use crate::engine::{RunOptions, apply, diff, observe};
use crate::plan::{Loadbalancer, Plan, Role, Step};
use serde_json::{Value, json};

/// How the hand-made deployment differs from the guide.
#[derive(Clone, Copy, Default)]
struct Shape {
    /// Service subnet prefix length (guide: 112).
    service_len: u8,
    /// First address of the service pool, as an offset from the network.
    pool_start: u32,
    dhcp: bool,
    /// Protocols of the access rules from the service subnet.
    all_protocols: bool,
    extra_rule: bool,
}

const GUIDE: Shape = Shape {
    service_len: 112,
    pool_start: 0x8000,
    dhcp: false,
    all_protocols: false,
    extra_rule: false,
};

/// The guide with every protocol's access rule: the deployment most tests start from.
const ALL_RULES: Shape = Shape {
    all_protocols: true,
    ..GUIDE
};

struct Made {
    pod_subnet: String,
    service_subnet: String,
    sg: String,
    router: String,
}

/// A subnet without DHCP on `network`, as `openstack subnet create` makes one.
async fn add_subnet(
    cloud: &FakeCloud,
    name: &str,
    network: &Value,
    ip_version: u8,
    cidr: &str,
    gateway: &str,
) -> Value {
    cloud
        .create(
            &Kind::Subnet,
            json!({ "name": name, "network_id": network["id"], "ip_version": ip_version,
                    "cidr": cidr, "gateway_ip": gateway, "enable_dhcp": false }),
        )
        .await
        .unwrap()
}

async fn build(cloud: &FakeCloud, shape: Shape) -> Made {
    let net = |name: &str| cloud.create(&Kind::Network, json!({ "name": name }));
    let pods = net("pods").await.unwrap();
    let pod_subnet = add_subnet(
        cloud,
        "pod_subnet",
        &pods,
        6,
        "fd10:0:0:1::/64",
        "fd10:0:0:1::1",
    )
    .await;
    let services = net("services").await.unwrap();
    let cidr: ipnet::IpNet = format!("fd10:0:0:2::/{}", shape.service_len)
        .parse()
        .unwrap();
    let last = crate::addr::last(&cidr);
    let gateway = crate::addr::offset(last, -1);
    let start = crate::addr::offset(cidr.network(), i128::from(shape.pool_start));
    let end = crate::addr::offset(last, -2);
    let service_subnet = cloud
        .create(
            &Kind::Subnet,
            json!({ "name": "service_subnet", "network_id": services["id"], "ip_version": 6,
                    "cidr": cidr.to_string(), "gateway_ip": gateway.to_string(), "enable_dhcp": shape.dhcp,
                    "allocation_pools": [{ "start": start.to_string(), "end": end.to_string() }] }),
        )
        .await
        .unwrap();
    let router = cloud
        .create(&Kind::Router, json!({ "name": "k8s-ipv6" }))
        .await
        .unwrap();
    for s in [&pod_subnet, &service_subnet] {
        cloud
            .router_interface(str_of(&router, "id"), str_of(s, "id"), true)
            .await
            .unwrap();
    }
    // The openstack CLI makes the description the name when none is given.
    let sg = cloud
        .create(
            &Kind::SecurityGroup,
            json!({ "name": "service_pod_access_v6", "description": "service_pod_access_v6" }),
        )
        .await
        .unwrap();
    let protocols: &[&str] = if shape.all_protocols {
        &["sctp", "tcp", "udp"]
    } else {
        &["tcp"]
    };
    for p in protocols {
        cloud
            .create(
                &Kind::SecurityGroupRule,
                json!({ "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv6",
                        "protocol": p, "remote_ip_prefix": cidr.to_string() }),
            )
            .await
            .unwrap();
    }
    if shape.extra_rule {
        cloud
            .create(
                &Kind::SecurityGroupRule,
                json!({ "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv6",
                        "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                        "remote_ip_prefix": "fd00:aaaa::/64" }),
            )
            .await
            .unwrap();
    }
    Made {
        pod_subnet: str_of(&pod_subnet, "id").into(),
        service_subnet: str_of(&service_subnet, "id").into(),
        sg: str_of(&sg, "id").into(),
        router: str_of(&router, "id").into(),
    }
}

/// The API load balancer with two members, made by hand.
async fn build_lb(cloud: &FakeCloud, made: &Made) {
    build_lb_on(cloud, made, None, "HTTPS", "ROUND_ROBIN").await;
}

/// The same on a named provider, with a protocol and an algorithm.
async fn build_lb_on(
    cloud: &FakeCloud,
    made: &Made,
    provider: Option<&str>,
    protocol: &str,
    algorithm: &str,
) {
    let mut body = json!({ "name": "default/kubernetes", "vip_subnet_id": made.service_subnet,
                           "vip_address": "fd10:0:0:2::1" });
    if let Some(p) = provider {
        body["provider"] = json!(p);
    }
    let lb = cloud.create(&Kind::LoadBalancer, body).await.unwrap();
    let name = format!("default/kubernetes:{protocol}:443");
    let id = str_of(&lb, "id").to_string();
    let settle = || cloud.get(&Kind::LoadBalancer, &id);
    settle().await.unwrap();
    let pool = cloud
        .create(
            &Kind::Pool,
            json!({ "name": name, "loadbalancer_id": id,
                    "protocol": protocol, "lb_algorithm": algorithm }),
        )
        .await
        .unwrap();
    settle().await.unwrap();
    cloud
        .create(
            &Kind::Listener,
            json!({ "name": name, "loadbalancer_id": id,
                    "protocol": protocol, "protocol_port": 443, "default_pool_id": pool["id"] }),
        )
        .await
        .unwrap();
    settle().await.unwrap();
    let kind = Kind::Member {
        pool_id: str_of(&pool, "id").into(),
    };
    for (name, address) in [
        ("master-0", "fd10:0:0:3::10"),
        ("master-1", "fd10:0:0:3::11"),
    ] {
        cloud
            .create(
                &kind,
                json!({ "name": name, "address": address, "protocol_port": 6443 }),
            )
            .await
            .unwrap();
        settle().await.unwrap();
    }
}

async fn import(cloud: &FakeCloud, hints: &Hints) -> Imported {
    let snap = read(cloud, hints).await.unwrap();
    write(&snap, "imported").unwrap()
}

fn adopt() -> RunOptions {
    RunOptions {
        adopt: true,
        replace: false,
    }
}

/// The changes `plan` wants on `cloud` as it stands now: observe, then diff.
async fn changes(cloud: &FakeCloud, plan: &Plan, options: RunOptions) -> ChangeSet {
    let obs = observe(cloud, plan).await.unwrap();
    diff(plan, &obs, options)
}

/// One `run` of `plan` on `cloud` (observe, diff, apply), returning what it changed.
async fn run_plan(cloud: &FakeCloud, plan: &Plan, options: RunOptions) -> ChangeSet {
    let obs = observe(cloud, plan).await.unwrap();
    let set = diff(plan, &obs, options);
    apply(cloud, plan, &obs, &set, &Progress::new(false))
        .await
        .unwrap();
    set
}

/// `run --adopt` of the imported plan, counted from zero so the caller can
/// check that adoption wrote nothing but tags.
async fn run_adopt(cloud: &FakeCloud, imported: &Imported) -> ChangeSet {
    cloud.reset_calls();
    run_plan(cloud, &imported.plan, adopt()).await
}

/// After adoption a plain rerun of `plan` has nothing left to do.
async fn assert_nothing_pending(cloud: &FakeCloud, plan: &Plan) {
    let again = changes(cloud, plan, RunOptions::default()).await;
    assert!(!again.pending(), "{:?}", again.changes);
}

/// Every one of `values` carries the imported pipeline's ownership tag.
fn assert_tagged_imported<'a>(values: impl IntoIterator<Item = &'a Value>) {
    for v in values {
        assert!(
            crate::engine::ownership::has_tag(v, "kuryr6:pipeline=imported"),
            "{v}"
        );
    }
}

/// Each of `lines` is in the imported text, which is shown when one is not.
fn assert_text_has(imported: &Imported, lines: &[&str]) {
    for line in lines {
        assert!(
            imported.text.contains(line),
            "{line} missing:\n{}",
            imported.text
        );
    }
}

/// The imported plan's API load balancer step; the text is shown when there is none.
fn lb_step(imported: &Imported) -> &Loadbalancer {
    let Some(Step::Loadbalancer(lb)) = imported.plan.step("default/kubernetes") else {
        panic!("no load balancer step:\n{}", imported.text);
    };
    lb
}

/// The examples/dual-stack pipeline, made on a fresh fake cloud by the short form.
async fn dual_stack_made() -> (FakeCloud, Plan) {
    let text = include_str!("../../../examples/dual-stack/pipeline.toml");
    let plan = crate::load::load_source(crate::source::SourceFile::new("dual.toml", text))
        .unwrap()
        .plan;
    let cloud = FakeCloud::new();
    run_plan(&cloud, &plan, RunOptions::default()).await;
    (cloud, plan)
}

/// The plan of the imported pipeline against the cloud: adoptions and
/// no-ops only.
async fn assert_adoption_only(cloud: &FakeCloud, imported: &Imported) {
    let set = changes(cloud, &imported.plan, adopt()).await;
    assert!(set.refusals.is_empty(), "{:?}", set.refusals);
    let other: Vec<String> = set
        .changes
        .iter()
        .filter(|c| !matches!(c.action, Action::Adopt | Action::NoOp))
        .map(|c| format!("{:?} {}", c.action, c.target))
        .collect();
    assert!(
        other.is_empty(),
        "not adoption only: {other:?}\n{}",
        imported.text
    );
    assert!(set.count(Action::Adopt) >= 5, "{:?}", set.changes);
}

#[tokio::test]
async fn a_guide_deployment_with_all_rules_imports_as_the_short_form() {
    let cloud = FakeCloud::new();
    build(&cloud, ALL_RULES).await;
    cloud.reset_calls();
    let imported = import(&cloud, &Hints::default()).await;
    assert_eq!(cloud.write_calls(), 0, "import wrote");
    assert!(imported.short_form, "{}", imported.text);
    assert_text_has(
        &imported,
        &[
            "pod_cidr = \"fd10:0:0:1::/64\"",
            "service_cidr = \"fd10:0:0:2::/112\"",
        ],
    );
    assert!(!imported.text.contains("[[step]]"), "{}", imported.text);
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert_adoption_only(&cloud, &imported).await;

    // run --adopt writes tags only, then nothing is pending.
    run_adopt(&cloud, &imported).await;
    assert_eq!(cloud.calls_of(Verb::Create), 0);
    assert_eq!(cloud.calls_of(Verb::Delete), 0);
    assert_eq!(cloud.calls_of(Verb::RouterInterface), 0);
    for kind in [
        Kind::Network,
        Kind::Subnet,
        Kind::Router,
        Kind::SecurityGroup,
    ] {
        assert_tagged_imported(&cloud.snapshot(&kind));
    }
    assert_nothing_pending(&cloud, &imported.plan).await;
}

#[tokio::test]
async fn the_guides_cli_topology_imports_explicitly_warning_on_missing_rules() {
    let cloud = FakeCloud::new();
    build(&cloud, GUIDE).await;
    let imported = import(&cloud, &Hints::default()).await;
    assert!(!imported.short_form);
    let codes: Vec<(Code, &str)> = imported
        .warnings
        .iter()
        .map(|w| (w.code, w.message.as_str()))
        .collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert!(codes.iter().all(|(c, _)| *c == Code::W004));
    assert!(
        codes[0].1.contains("udp") && codes[1].1.contains("sctp"),
        "{codes:?}"
    );
    assert_text_has(
        &imported,
        &["# deviation (W004): no udp rule from the service subnet fd10:0:0:2::/112"],
    );
    assert_adoption_only(&cloud, &imported).await;
}

#[tokio::test]
async fn a_deviating_deployment_is_reproduced_field_for_field_with_a_warning_each() {
    let cloud = FakeCloud::new();
    let made = build(
        &cloud,
        Shape {
            service_len: 108,
            pool_start: 0x8_0001,
            dhcp: true,
            all_protocols: true,
            extra_rule: true,
        },
    )
    .await;
    let imported = import(&cloud, &Hints::default()).await;
    assert!(!imported.short_form);
    let svc = imported.plan.subnet("service_subnet").unwrap();
    let cloud_svc = cloud
        .get(&Kind::Subnet, &made.service_subnet)
        .await
        .unwrap();
    assert_eq!(svc.cidr.to_string(), cloud_svc["cidr"]);
    assert_eq!(svc.gateway_ip.to_string(), cloud_svc["gateway_ip"]);
    assert!(svc.enable_dhcp);
    assert_eq!(svc.role, Role::Service);
    assert_eq!(
        svc.allocation_pools[0].start.to_string(),
        cloud_svc["allocation_pools"][0]["start"]
    );
    assert_eq!(svc.allocation_pools[0].start.to_string(), "fd10::2:0:0:8:1");
    let Some(Step::SecurityGroup(sg)) = imported.plan.step("service_pod_access_v6") else {
        panic!("no security group step");
    };
    assert_eq!(sg.rules.len(), 4, "{:?}", sg.rules);
    assert_eq!(sg.rules[3].port_range_min, Some(22));

    let codes: Vec<Code> = imported.warnings.iter().map(|w| w.code).collect();
    for code in [Code::W001, Code::W002, Code::W003] {
        assert!(
            codes.contains(&code),
            "{code:?} missing: {:?}",
            imported.warnings
        );
    }
    assert_text_has(
        &imported,
        &[
            "# deviation (W001): a /108 service subnet; the guide's is a /112",
            "# deviation (W002): allocation pools fd10::2:0:0:8:1-",
            "# deviation (W003): DHCP is on",
            "# deviation: rule `ingress IPv6 tcp from fd00:aaaa::/64 ports 22-22` is not one of the guide's",
        ],
    );
    assert_adoption_only(&cloud, &imported).await;
}

#[tokio::test]
async fn a_load_balancer_on_the_ovn_provider_imports_with_its_provider_and_protocol() {
    let cloud = FakeCloud::new().with_lb_providers(&["amphora", "ovn"]);
    let made = build(&cloud, ALL_RULES).await;
    build_lb_on(&cloud, &made, Some("ovn"), "TCP", "SOURCE_IP_PORT").await;
    let imported = import(&cloud, &Hints::default()).await;
    let lb = lb_step(&imported);
    assert_eq!(
        (lb.provider.as_deref(), lb.protocol(), lb.algorithm.as_str()),
        (Some("ovn"), "TCP", "SOURCE_IP_PORT")
    );
    assert!(imported.short_form, "{}", imported.text);
    assert_text_has(
        &imported,
        &["lb_provider = \"ovn\"", "lb_protocol = \"TCP\""],
    );
    assert!(
        !imported.text.contains("deviation: the listener"),
        "{}",
        imported.text
    );
    assert_adoption_only(&cloud, &imported).await;
}

#[tokio::test]
async fn a_hand_made_load_balancer_imports_with_its_members() {
    let cloud = FakeCloud::new();
    let made = build(&cloud, ALL_RULES).await;
    build_lb(&cloud, &made).await;
    let imported = import(&cloud, &Hints::default()).await;
    let lb = lb_step(&imported);
    assert_eq!(lb.vip.to_string(), "fd10:0:0:2::1");
    assert_eq!(lb.algorithm, "ROUND_ROBIN");
    assert_eq!((lb.listener_port, lb.member_port), (443, 6443));
    let members: Vec<(&str, String)> = lb
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.address.to_string()))
        .collect();
    assert_eq!(
        members,
        [
            ("master-0", "fd10:0:0:3::10".to_string()),
            ("master-1", "fd10:0:0:3::11".to_string())
        ]
    );
    // Still the short form: the API hosts and the algorithm are all it needs.
    assert!(imported.short_form, "{}", imported.text);
    assert_text_has(&imported, &["lb_algorithm = \"ROUND_ROBIN\""]);

    // Adopted likewise: the load balancer, its pool, listener and both
    // members are tagged, nothing is made, and then nothing is pending.
    assert_adoption_only(&cloud, &imported).await;
    let set = run_adopt(&cloud, &imported).await;
    assert_eq!(set.count(Action::Adopt), 6 + 5, "{:?}", set.changes);
    assert_eq!(cloud.calls_of(Verb::Create), 0);
    assert_eq!(cloud.calls_of(Verb::Delete), 0);
    let pools = cloud.snapshot(&Kind::Pool);
    let members = cloud.snapshot(&Kind::Member {
        pool_id: str_of(&pools[0], "id").into(),
    });
    assert_tagged_imported(
        cloud
            .snapshot(&Kind::LoadBalancer)
            .iter()
            .chain(&cloud.snapshot(&Kind::Listener))
            .chain(&pools)
            .chain(&members),
    );
    assert_nothing_pending(&cloud, &imported.plan).await;
}

#[tokio::test]
async fn kuryr_conf_ids_lead_the_walk_and_a_foreign_project_is_refused() {
    let cloud = FakeCloud::new();
    let made = build(&cloud, GUIDE).await;
    // A decoy with the guide's name: the ids of kuryr.conf win over names.
    let decoy_net = cloud
        .create(&Kind::Network, json!({ "name": "decoy" }))
        .await
        .unwrap();
    add_subnet(&cloud, "pod_subnet", &decoy_net, 6, "fd99::/64", "fd99::1").await;
    let project = cloud.project_id().await.unwrap();
    let conf = format!(
        "[neutron_defaults]\nproject = {project}\npod_subnet = {}\nservice_subnet = {}\npod_security_groups = {}\novs_bridge = br-k8s\nresource_tags = site-a,kuryr\n\n[octavia_defaults]\nmember_mode = L2\n",
        made.pod_subnet, made.service_subnet, made.sg
    );
    let hints = parse_kuryr_conf(&conf).unwrap();
    assert_eq!(
        hints.resource_tags,
        Some(vec!["site-a".into(), "kuryr".into()])
    );
    let imported = import(&cloud, &hints).await;
    assert_eq!(
        imported.plan.subnet("pod_subnet").unwrap().cidr.to_string(),
        "fd10:0:0:1::/64"
    );
    let emit = imported.plan.emits().next().unwrap();
    assert_eq!(emit.ovs_bridge, "br-k8s");
    assert_eq!(emit.member_mode, "L2");
    assert_eq!(emit.resource_tags, ["site-a", "kuryr"]);
    let Some(Step::Router(r)) = imported.plan.step("k8s-ipv6") else {
        panic!("no router");
    };
    assert_eq!(r.interfaces, ["pod_subnet", "service_subnet"]);
    assert!(!made.router.is_empty());

    // Without kuryr.conf the two `pod_subnet`s are ambiguous: said, not guessed.
    let err = read(&cloud, &Hints::default()).await.unwrap_err();
    assert!(
        err.to_string().contains("2 subnets are named `pod_subnet`")
            && err.to_string().contains("--kuryr-conf"),
        "{err}"
    );
    let other = Hints {
        project: Some("another-project".into()),
        ..hints
    };
    let err = read(&cloud, &other).await.unwrap_err();
    assert!(err.to_string().contains("another-project"), "{err}");
}

#[test]
fn a_subnet_without_gateway_is_refused_by_name() {
    let snap = Snapshot {
        pod_network: json!({ "name": "pods", "id": "n1" }),
        service_network: json!({ "name": "services", "id": "n2" }),
        pod_subnet: json!({ "name": "pod_subnet", "id": "s1", "cidr": "fd10:0:0:1::/64",
                            "ip_version": 6, "gateway_ip": Value::Null, "allocation_pools": [] }),
        service_subnet: json!({ "name": "service_subnet", "id": "s2", "cidr": "fd10:0:0:2::/112",
                                "ip_version": 6, "gateway_ip": "fd10:0:0:2::fffe", "allocation_pools": [] }),
        ..Default::default()
    };
    let err = write(&snap, "x").unwrap_err();
    assert!(
        err.to_string()
            .contains("subnet `pod_subnet` (s1) has no gateway"),
        "{err}"
    );
}

/// Dual-stack (examples/dual-stack): an IPv4 subnet beside each IPv6 one,
/// the router on all four, rules from both service ranges. Made by the
/// short form, then imported back: the same plan, in the short form.
#[tokio::test]
async fn a_dual_stack_deployment_imports_back_to_its_short_form() {
    let (cloud, want) = dual_stack_made().await;
    // As made by hand: kuryr6 also marks the group's description.
    let sg = cloud.snapshot(&Kind::SecurityGroup)[0].clone();
    cloud
        .update(
            &Kind::SecurityGroup,
            str_of(&sg, "id"),
            json!({ "description": "service_pod_access" }),
        )
        .await
        .unwrap();

    let snap = read(&cloud, &Hints::default()).await.unwrap();
    assert_eq!(snap.pod_subnet["cidr"], "fd10:0:0:1::/64");
    assert_eq!(snap.pod_subnet_2.as_ref().unwrap()["cidr"], "10.10.0.0/16");
    assert_eq!(
        snap.service_subnet_2.as_ref().unwrap()["cidr"],
        "172.30.0.0/16"
    );
    let imported = write(&snap, "dual-stack").unwrap();
    assert_eq!(imported.plan, want, "{}", imported.text);
    assert!(imported.short_form, "{}", imported.text);
    assert_text_has(
        &imported,
        &["pod_cidr = [\"fd10:0:0:1::/64\", \"10.10.0.0/16\"]"],
    );
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    // Then adoption only: nothing to create, update or delete.
    let set = changes(&cloud, &imported.plan, adopt()).await;
    assert!(
        set.changes
            .iter()
            .all(|c| matches!(c.action, Action::NoOp | Action::Adopt)),
        "{set:#?}"
    );
}

/// A network with two subnets of one family is more than a pipeline says.
#[tokio::test]
async fn two_subnets_of_one_family_beside_the_pod_subnet_are_refused() {
    let (cloud, _) = dual_stack_made().await;
    let pods = cloud
        .snapshot(&Kind::Network)
        .into_iter()
        .find(|n| n["name"] == "pods")
        .unwrap();
    add_subnet(&cloud, "extra", &pods, 4, "10.20.0.0/16", "10.20.0.1").await;
    let err = read(&cloud, &Hints::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("network `pods` has 2 IPv4 subnets besides `pod_subnet`"),
        "{err}"
    );
}

/// The router modes besides legacy, each with the `device_owner` Neutron
/// gives its router interfaces.
const DVR_AND_HA_OWNERS: [(RouterMode, &str); 2] = [
    (
        RouterMode::Distributed,
        "network:router_interface_distributed",
    ),
    (RouterMode::Ha, "network:ha_router_replicated_interface"),
];

/// The guide built by hand on a cloud whose routers are DVR or L3-HA: the
/// interfaces carry those modes' owners, and import still finds the
/// router, so `run --adopt` takes it over with tags only.
#[tokio::test]
async fn a_dvr_or_ha_router_built_by_hand_is_imported_and_adopted() {
    for (mode, owner) in DVR_AND_HA_OWNERS {
        let cloud = FakeCloud::new().with_router_mode(mode);
        let made = build(&cloud, ALL_RULES).await;
        // The cloud made this mode's interfaces, not legacy ones.
        let owners: Vec<String> = cloud
            .snapshot(&Kind::Port)
            .iter()
            .filter(|p| p["device_id"] == made.router.as_str())
            .map(|p| p["device_owner"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(owners.iter().any(|o| o == owner), "{mode:?}: {owners:?}");
        assert!(
            !owners.iter().any(|o| o == "network:router_interface"),
            "{mode:?}: {owners:?}"
        );
        let imported = import(&cloud, &Hints::default()).await;
        let router = imported.plan.steps.iter().find_map(|s| match s {
            Step::Router(r) => Some(r),
            _ => None,
        });
        let router =
            router.unwrap_or_else(|| panic!("{mode:?}: no router imported:\n{}", imported.text));
        assert_eq!(
            router.interfaces.len(),
            2,
            "{mode:?}: {:?}",
            router.interfaces
        );
        assert_adoption_only(&cloud, &imported).await;
        run_adopt(&cloud, &imported).await;
        for verb in [Verb::Create, Verb::Delete, Verb::RouterInterface] {
            assert_eq!(cloud.calls_of(verb), 0, "{mode:?}: adopt wrote {verb:?}");
        }
        assert_nothing_pending(&cloud, &imported.plan).await;
    }
}
