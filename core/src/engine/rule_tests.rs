//! Rules and router ports as Neutron stores them, against the fake (whose
//! rule handling is transcribed from Neutron, not from `rule_canon`): every
//! rule form `check` accepts converges, remote-group rules are never taken
//! for pipeline rules, and DVR / L3-HA routers converge and destroy.

use super::progress::Progress;
use super::*;
use crate::cloud::fake::{FakeCloud, RouterMode, Verb};
use crate::cloud::{Cloud, Kind};
use crate::load::load_source;
use crate::plan::Plan;
use crate::source::SourceFile;
use serde_json::{Value, json};

const EVERY_FORM: &str = include_str!("../../../tests/fixtures/rules-every-form.toml");
const SEED: &str = include_str!("../../../examples/seed-ipv6/pipeline.toml");

fn plan_of(text: &str) -> Plan {
    load_source(SourceFile::new("test.toml", text))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
        .plan
}

async fn converge(cloud: &FakeCloud, plan: &Plan) -> ChangeSet {
    let obs = observe(cloud, plan).await.unwrap();
    let set = diff(plan, &obs, RunOptions::default());
    apply(cloud, plan, &obs, &set, &Progress::new(false))
        .await
        .unwrap();
    set
}

async fn pending(cloud: &FakeCloud, plan: &Plan) -> ChangeSet {
    let obs = observe(cloud, plan).await.unwrap();
    diff(plan, &obs, RunOptions::default())
}

fn not_noop(set: &ChangeSet) -> Vec<String> {
    set.changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| format!("{:?} {}", c.action, c.target))
        .collect()
}

fn stored(r: &Value) -> (String, String, String, String, String) {
    let text = |k: &str| match &r[k] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let ports = match (&r["port_range_min"], &r["port_range_max"]) {
        (Value::Null, Value::Null) => "-".to_string(),
        (a, b) => format!("{a}-{b}"),
    };
    (
        text("direction"),
        text("ethertype"),
        text("protocol"),
        ports,
        text("remote_ip_prefix"),
    )
}

#[tokio::test]
async fn every_rule_form_check_accepts_converges_and_a_rerun_writes_nothing() {
    let plan = plan_of(EVERY_FORM);
    let cloud = FakeCloud::new();
    converge(&cloud, &plan).await;
    let left = pending(&cloud, &plan).await;
    assert!(!left.pending(), "{:?}", not_noop(&left));
    assert!(left.refusals.is_empty(), "{:?}", left.refusals);

    let rules = cloud.snapshot(&Kind::SecurityGroupRule);
    // 27 pipeline rules, two of them Neutron's default egress rules.
    assert_eq!(rules.len(), 27, "{rules:#?}");
    let has = |d: &str, e: &str, p: &str, ports: &str, prefix: &str| {
        let want = (d.into(), e.into(), p.into(), ports.into(), prefix.into());
        assert!(
            rules.iter().any(|r| stored(r) == want),
            "no stored rule {want:?} in {:#?}",
            rules.iter().map(stored).collect::<Vec<_>>()
        );
    };
    has("ingress", "IPv6", "ipv6-icmp", "-", "-");
    has("ingress", "IPv6", "ipv6-icmp", "-", "fd10:0:0:9::/64");
    has("ingress", "IPv6", "58", "-", "fd10:0:0:5::/64");
    has("ingress", "IPv6", "-", "-", "fd10:0:0:7::/64");
    has("ingress", "IPv6", "tcp", "-", "fd10:0:0:a::/64");
    has("ingress", "IPv6", "udp", "-", "::/0");
    has("ingress", "IPv4", "1", "-", "10.0.0.0/8");
    has("egress", "IPv6", "-", "-", "-");
    assert!(
        !rules
            .iter()
            .any(|r| r["ethertype"] == "IPv6"
                && (r["protocol"] == "icmp" || r["protocol"] == "icmpv6")),
        "IPv6 icmp is stored as ipv6-icmp"
    );

    cloud.reset_calls();
    converge(&cloud, &plan).await;
    assert_eq!(cloud.calls_of(Verb::Create), 0);
    assert_eq!(cloud.calls_of(Verb::Delete), 0);
}

#[tokio::test]
async fn remote_group_rules_are_never_pipeline_rules() {
    let plan = plan_of(EVERY_FORM);
    let cloud = FakeCloud::new();
    converge(&cloud, &plan).await;
    let sg = cloud.snapshot(&Kind::SecurityGroup)[0].clone();
    let sg_id = sg["id"].as_str().unwrap();
    let ag = cloud.add_address_group();
    // The pipeline's first rules (ingress IPv6 tcp, udp from anywhere), but
    // from a group: other rules to Neutron. One carries kuryr6's marker (a
    // leftover), one is hand-made.
    let marked = cloud
        .create(
            &Kind::SecurityGroupRule,
            json!({"security_group_id": sg_id, "direction": "ingress", "ethertype": "IPv6",
                   "protocol": "tcp", "remote_group_id": sg_id,
                   "description": Ownership::new(&plan.pipeline).rule_marker()}),
        )
        .await
        .unwrap();
    let hand = cloud
        .create(
            &Kind::SecurityGroupRule,
            json!({"security_group_id": sg_id, "direction": "ingress", "ethertype": "IPv6",
                   "protocol": "udp", "remote_address_group_id": ag}),
        )
        .await
        .unwrap();
    let set = pending(&cloud, &plan).await;
    let deletes: Vec<_> = set
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    assert_eq!(deletes.len(), 1, "{:?}", not_noop(&set));
    assert_eq!(deletes[0].id.as_deref(), marked["id"].as_str());
    assert_eq!(set.count(Action::Create), 0, "{:?}", not_noop(&set));

    converge(&cloud, &plan).await;
    assert!(!pending(&cloud, &plan).await.pending());
    let ids: Vec<Value> = cloud
        .snapshot(&Kind::SecurityGroupRule)
        .into_iter()
        .map(|r| r["id"].clone())
        .collect();
    assert!(!ids.contains(&marked["id"]));
    assert!(ids.contains(&hand["id"]));
}

/// An external network the router's gateway can point at.
async fn external_network(cloud: &FakeCloud) -> String {
    let net = cloud
        .create(
            &Kind::Network,
            json!({"name": "public", "router:external": true}),
        )
        .await
        .unwrap();
    let id = net["id"].as_str().unwrap().to_string();
    cloud
        .create(
            &Kind::Subnet,
            json!({"name": "public-v6", "network_id": id, "ip_version": 6,
                   "cidr": "2001:db8::/64", "gateway_ip": "2001:db8::1",
                   "allocation_pools": [{"start": "2001:db8::2", "end": "2001:db8::ff"}]}),
        )
        .await
        .unwrap();
    id
}

fn owners_of(cloud: &FakeCloud, router_id: &Value) -> Vec<String> {
    let mut o: Vec<String> = cloud
        .snapshot(&Kind::Port)
        .iter()
        .filter(|p| p["device_id"] == *router_id)
        .map(|p| p["device_owner"].as_str().unwrap().to_string())
        .collect();
    o.sort();
    o
}

#[tokio::test]
async fn dvr_and_ha_routers_converge_and_destroy_cleanly() {
    for (mode, interface) in [
        (
            RouterMode::Distributed,
            "network:router_interface_distributed",
        ),
        (RouterMode::Ha, "network:ha_router_replicated_interface"),
    ] {
        let plan = plan_of(SEED);
        let cloud = FakeCloud::new().with_router_mode(mode);
        let public = external_network(&cloud).await;
        converge(&cloud, &plan).await;
        let router = cloud.snapshot(&Kind::Router)[0].clone();
        // A gateway, as an operator may add: DVR then adds SNAT ports.
        cloud
            .update(
                &Kind::Router,
                router["id"].as_str().unwrap(),
                json!({"external_gateway_info": {"network_id": public}}),
            )
            .await
            .unwrap();
        let owners = owners_of(&cloud, &router["id"]);
        assert_eq!(
            owners.iter().filter(|o| *o == interface).count(),
            2,
            "{mode:?}: {owners:?}"
        );
        assert!(owners.contains(&"network:router_gateway".to_string()));
        match mode {
            RouterMode::Distributed => assert_eq!(
                owners
                    .iter()
                    .filter(|o| *o == "network:router_centralized_snat")
                    .count(),
                2,
                "{owners:?}"
            ),
            _ => assert_eq!(
                owners
                    .iter()
                    .filter(|o| *o == "network:router_ha_interface")
                    .count(),
                2,
                "{owners:?}"
            ),
        }
        let left = pending(&cloud, &plan).await;
        assert!(!left.pending(), "{mode:?}: {:?}", not_noop(&left));
        cloud.reset_calls();
        converge(&cloud, &plan).await;
        assert_eq!(cloud.calls_of(Verb::RouterInterface), 0, "{mode:?}");

        destroy(
            &cloud,
            &plan,
            DestroyOptions::default(),
            &Progress::new(false),
        )
        .await
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(cloud.snapshot(&Kind::Router).is_empty(), "{mode:?}");
        assert!(cloud.snapshot(&Kind::SecurityGroup).is_empty(), "{mode:?}");
        assert!(cloud.snapshot(&Kind::LoadBalancer).is_empty(), "{mode:?}");
        let nets: Vec<Value> = cloud.snapshot(&Kind::Network);
        assert!(
            nets.iter()
                .all(|n| n["tags"].as_array().unwrap().is_empty()),
            "{mode:?}: owned networks left: {nets:#?}"
        );
        assert!(
            owners_of(&cloud, &router["id"]).is_empty(),
            "{mode:?}: router ports left"
        );
    }
}

#[tokio::test]
async fn a_foreign_projects_same_pipeline_is_listed_by_an_admin_token() {
    // The fake answers like Neutron to an admin token: every project's
    // resources, unless filtered by project.
    let plan = plan_of(SEED);
    let cloud = FakeCloud::new();
    let other = cloud.as_project("0ther0000000000000000000000000002");
    let obs = observe(&other, &plan).await.unwrap();
    let set = diff(&plan, &obs, RunOptions::default());
    apply(&other, &plan, &obs, &set, &Progress::new(false))
        .await
        .unwrap();
    let nets = cloud.list(&Kind::Network, &Vec::new()).await.unwrap();
    assert_eq!(nets.len(), 2);
    assert!(
        nets.iter()
            .all(|n| n["project_id"] == "0ther0000000000000000000000000002")
    );
    let mine = cloud.project_id().await.unwrap();
    let q = vec![("project_id".to_string(), mine)];
    assert!(cloud.list(&Kind::Network, &q).await.unwrap().is_empty());
    // The other project sees its own pipeline as converged.
    let obs = observe(&other, &plan).await.unwrap();
    assert!(!diff(&plan, &obs, RunOptions::default()).pending());
}
