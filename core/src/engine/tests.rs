//! Engine behaviour against the in-memory `FakeCloud`: fast checks of the
//! converge / re-run / drift / ownership / fault rules. The proof against a
//! real Neutron and Octavia is in `tests/cloud_e2e.rs`.

use super::change::{Action, Target};
use super::progress::Progress;
use super::*;
use crate::cloud::fake::{FakeCloud, Fault, Verb};
use crate::cloud::{Cloud, CloudError, Kind, Query};
use crate::load::{Loaded, load_source};
use crate::plan::Plan;
use crate::source::SourceFile;
use serde_json::{Value, json};

/// The whole guide: Neutron topology plus the API load balancer (the fake
/// has Octavia in its catalog).
pub(super) const SEED: &str = include_str!("../../../examples/seed-ipv6/pipeline.toml");

pub(super) fn load(text: &str) -> Loaded {
    load_source(SourceFile::new("test.toml", text))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
}

pub(super) fn quiet() -> Progress {
    Progress::new(false)
}

pub(super) async fn converge(
    cloud: &FakeCloud,
    plan: &Plan,
    options: RunOptions,
) -> Result<ChangeSet, EngineError> {
    let obs = observe(cloud, plan).await?;
    let set = diff(plan, &obs, options);
    apply(cloud, plan, &obs, &set, &quiet()).await?;
    Ok(set)
}

pub(super) async fn pending(cloud: &FakeCloud, plan: &Plan) -> ChangeSet {
    let obs = observe(cloud, plan).await.unwrap();
    diff(plan, &obs, RunOptions::default())
}

pub(super) fn named<'a>(items: &'a [Value], name: &str) -> Vec<&'a Value> {
    items.iter().filter(|v| v["name"] == name).collect()
}

/// A resource's id, as the next call takes it.
pub(super) fn id(item: &Value) -> String {
    item["id"].as_str().unwrap().to_string()
}

/// A fake on which the seed has converged, and the seed's plan.
pub(super) async fn seed_converged() -> (FakeCloud, Plan) {
    seed_converged_on(FakeCloud::new()).await
}

/// The same on a fake set up as the test needs (backends, providers).
async fn seed_converged_on(cloud: FakeCloud) -> (FakeCloud, Plan) {
    let plan = load(SEED).plan;
    run_ok(&cloud, &plan).await;
    (cloud, plan)
}

/// The whole load-balancer tree went out in one call: one create of the
/// load balancer, none of its listener or pool on their own.
#[track_caller]
pub(super) fn assert_lb_tree_created_in_one_call(cloud: &FakeCloud) {
    assert_eq!(cloud.calls(Verb::Create, &Kind::LoadBalancer), 1);
    for kind in [Kind::Listener, Kind::Pool] {
        assert_eq!(cloud.calls(Verb::Create, &kind), 0, "{kind}");
    }
}

/// A run with the default options that the test expects to succeed.
pub(super) async fn run_ok(cloud: &FakeCloud, plan: &Plan) -> ChangeSet {
    converge(cloud, plan, RunOptions::default()).await.unwrap()
}

/// A run with the default options that the test expects to be refused: its message.
pub(super) async fn run_err(cloud: &FakeCloud, plan: &Plan) -> String {
    converge(cloud, plan, RunOptions::default())
        .await
        .unwrap_err()
        .to_string()
}

/// `destroy` with the default options, as the CLI runs it.
pub(super) async fn destroy_default(
    cloud: &FakeCloud,
    plan: &Plan,
) -> Result<Destroyed, EngineError> {
    destroy(cloud, plan, DestroyOptions::default(), &quiet()).await
}

/// A resource made by hand (not by kuryr6), as the next call sees it.
async fn made_by_hand(cloud: &FakeCloud, kind: &Kind, body: Value) -> Value {
    cloud.create(kind, body).await.unwrap()
}

/// Exactly one `pods` network, and it is the one with `want`'s id (taken over, not made again).
fn assert_the_pods_network_is(cloud: &FakeCloud, want: &Value) {
    let nets = cloud.snapshot(&Kind::Network);
    assert_eq!(named(&nets, "pods").len(), 1);
    assert_eq!(named(&nets, "pods")[0]["id"], want["id"]);
}

/// After a faulty run: the whole guide, all of it tagged, nothing pending.
async fn assert_recovered(cloud: &FakeCloud, plan: &Plan, case: &str) {
    assert_guide_topology(cloud);
    assert!(untagged(cloud).is_empty(), "{case}");
    assert!(!pending(cloud, plan).await.pending(), "{case}");
}

/// The guide's topology, exactly once each, up to its API load balancer.
pub(super) fn assert_guide_topology(cloud: &FakeCloud) {
    let nets = cloud.snapshot(&Kind::Network);
    assert_eq!(named(&nets, "pods").len(), 1);
    assert_eq!(named(&nets, "services").len(), 1);
    let subnets = cloud.snapshot(&Kind::Subnet);
    assert_eq!(subnets.len(), 2, "{subnets:#?}");
    let svc = named(&subnets, "service_subnet")[0];
    assert_eq!(svc["gateway_ip"], "fd10:0:0:2::fffe");
    assert_eq!(
        svc["allocation_pools"],
        json!([{ "start": "fd10:0:0:2::8000", "end": "fd10:0:0:2::fffd" }])
    );
    assert_eq!(svc["ip_version"], 6);
    assert_eq!(svc["enable_dhcp"], false);
    let pod = named(&subnets, "pod_subnet")[0];
    assert_eq!(pod["gateway_ip"], "fd10:0:0:1::1");
    assert_eq!(
        pod["allocation_pools"],
        json!([{ "start": "fd10:0:0:1::2", "end": "fd10::1:ffff:ffff:ffff:ffff" }])
    );
    assert_eq!(cloud.snapshot(&Kind::Router).len(), 1);
    let ports = cloud.snapshot(&Kind::Port);
    let router_ips: Vec<&str> = ports
        .iter()
        .flat_map(|p| p["fixed_ips"].as_array().unwrap())
        .map(|ip| ip["ip_address"].as_str().unwrap())
        .collect();
    assert!(
        router_ips.contains(&"fd10:0:0:1::1") && router_ips.contains(&"fd10:0:0:2::fffe"),
        "{router_ips:?}"
    );
    assert_eq!(cloud.snapshot(&Kind::SecurityGroup).len(), 1);
    let rules: Vec<Value> = cloud
        .snapshot(&Kind::SecurityGroupRule)
        .into_iter()
        .filter(|r| r["direction"] == "ingress")
        .collect();
    let mut protocols: Vec<&str> = rules
        .iter()
        .map(|r| r["protocol"].as_str().unwrap())
        .collect();
    protocols.sort();
    assert_eq!(protocols, ["sctp", "tcp", "udp"]);
    assert!(
        rules
            .iter()
            .all(|r| r["remote_ip_prefix"] == "fd10:0:0:2::/112" && r["ethertype"] == "IPv6")
    );
    let lbs = cloud.snapshot(&Kind::LoadBalancer);
    assert_eq!(lbs.len(), 1, "{lbs:#?}");
    assert_eq!(lbs[0]["name"], "default/kubernetes");
    assert_eq!(lbs[0]["vip_address"], "fd10:0:0:2::1");
    assert_eq!(lbs[0]["vip_subnet_id"], svc["id"]);
    assert_eq!(cloud.snapshot(&Kind::Listener).len(), 1);
    let pools = cloud.snapshot(&Kind::Pool);
    assert_eq!(pools.len(), 1);
    let mut members: Vec<String> = cloud
        .snapshot(&Kind::Member {
            pool_id: pools[0]["id"].as_str().unwrap().to_string(),
        })
        .iter()
        .map(|m| m["address"].as_str().unwrap().to_string())
        .collect();
    members.sort();
    assert_eq!(members, ["fd10:0:0:3::10", "fd10:0:0:3::11"]);
}

fn revisions(cloud: &FakeCloud) -> Vec<(String, Value)> {
    [
        Kind::Network,
        Kind::Subnet,
        Kind::Router,
        Kind::SecurityGroup,
        Kind::SecurityGroupRule,
        Kind::Port,
    ]
    .iter()
    .flat_map(|k| cloud.snapshot(k))
    .map(|v| {
        (
            v["id"].as_str().unwrap().to_string(),
            v["revision_number"].clone(),
        )
    })
    .collect()
}

#[tokio::test]
async fn seed_converges_and_a_rerun_changes_nothing() {
    let cloud = FakeCloud::new();
    let plan = load(SEED).plan;
    let first = run_ok(&cloud, &plan).await;
    // 2 networks, 2 subnets, router, 2 interfaces, group, 3 rules; the load
    // balancer, its listener, pool and 2 members.
    assert_eq!(
        first.count(Action::Create),
        2 + 2 + 1 + 2 + 1 + 3 + (3 + 2),
        "{first:#?}"
    );
    assert_guide_topology(&cloud);
    for net in cloud.snapshot(&Kind::Network) {
        assert_eq!(net["tags"], json!(["kuryr6", "kuryr6:pipeline=seed-ipv6"]));
    }

    let before = revisions(&cloud);
    cloud.reset_calls();
    let second = pending(&cloud, &plan).await;
    assert!(!second.pending(), "{second:#?}");
    let obs = observe(&cloud, &plan).await.unwrap();
    apply(&cloud, &plan, &obs, &second, &quiet()).await.unwrap();
    assert_eq!(
        cloud.calls_of(Verb::Create)
            + cloud.calls_of(Verb::Update)
            + cloud.calls_of(Verb::Delete)
            + cloud.calls_of(Verb::RouterInterface),
        0
    );
    assert_eq!(revisions(&cloud), before);
}

/// Each of `kinds` was listed `times` times since the calls were last reset.
fn assert_lists(cloud: &FakeCloud, kinds: &[Kind], times: usize) {
    for kind in kinds {
        assert_eq!(cloud.calls(Verb::List, kind), times, "{kind}");
    }
}

#[tokio::test]
async fn state_is_read_with_one_tag_filtered_list_per_type() {
    let cloud = FakeCloud::new();
    let plan = load(SEED).plan;
    // Nothing owned yet: each type also looks its wanted names up once.
    observe(&cloud, &plan).await.unwrap();
    let top = [
        Kind::Network,
        Kind::Subnet,
        Kind::Router,
        Kind::SecurityGroup,
    ];
    assert_lists(&cloud, &top, 2);
    assert_lists(&cloud, &[Kind::LoadBalancer], 2);
    run_ok(&cloud, &plan).await;
    cloud.reset_calls();
    observe(&cloud, &plan).await.unwrap();
    // Converged: one tag-filtered list per type, then the children.
    assert_lists(&cloud, &top, 1);
    // The groups came with their rules (and the lease record, `tags-any`).
    assert_eq!(cloud.calls(Verb::List, &Kind::SecurityGroupRule), 0);
    assert_eq!(cloud.calls(Verb::List, &Kind::Port), 1);
    // … and the owned load balancer with its tagged listeners and pools,
    // then the members of each pool.
    assert_eq!(cloud.calls(Verb::List, &Kind::LoadBalancer), 1);
    assert_eq!(cloud.calls(Verb::List, &Kind::Listener), 1);
    assert_eq!(cloud.calls(Verb::List, &Kind::Pool), 1);
    let pool_id = id(&cloud.snapshot(&Kind::Pool)[0]);
    assert_eq!(cloud.calls(Verb::List, &Kind::Member { pool_id }), 1);
    assert_eq!(cloud.calls_of(Verb::List), 9);
}

#[tokio::test]
async fn drift_is_shown_then_repaired() {
    let (cloud, plan) = seed_converged().await;
    let svc = id(named(&cloud.snapshot(&Kind::Subnet), "service_subnet")[0]);
    cloud.update(&Kind::Subnet, &svc, json!({ "allocation_pools": [{ "start": "fd10:0:0:2::9000", "end": "fd10:0:0:2::fffd" }] })).await.unwrap();
    let rules = cloud.snapshot(&Kind::SecurityGroupRule);
    let udp = rules.iter().find(|r| r["protocol"] == "udp").unwrap();
    cloud
        .delete(&Kind::SecurityGroupRule, udp["id"].as_str().unwrap())
        .await
        .unwrap();

    let set = pending(&cloud, &plan).await;
    let update = set
        .changes
        .iter()
        .find(|c| c.action == Action::Update)
        .expect("an update");
    assert_eq!(
        update.target,
        Target::Subnet {
            name: "service_subnet".into()
        }
    );
    assert_eq!(update.fields[0].field, "allocation_pools");
    assert_eq!(update.fields[0].from, "fd10:0:0:2::9000-fd10:0:0:2::fffd");
    assert!(set.changes.iter().any(|c| c.action == Action::Create && matches!(&c.target, Target::Rule { rule, .. } if rule.protocol.as_deref() == Some("udp"))));
    assert_eq!(set.count(Action::Create) + set.count(Action::Update), 2);

    run_ok(&cloud, &plan).await;
    assert!(!pending(&cloud, &plan).await.pending());
    assert_guide_topology(&cloud);
}

#[tokio::test]
async fn a_foreign_same_named_resource_blocks_until_adopted() {
    let cloud = FakeCloud::new();
    let hand_made = made_by_hand(&cloud, &Kind::Network, json!({ "name": "pods" })).await;
    let plan = load(SEED).plan;
    cloud.reset_calls();
    let msg = run_err(&cloud, &plan).await;
    assert!(
        msg.contains("network `pods`")
            && msg.contains(hand_made["id"].as_str().unwrap())
            && msg.contains("--adopt"),
        "{msg}"
    );
    assert_eq!(
        cloud.calls_of(Verb::Create),
        0,
        "nothing written before the refusal"
    );
    assert_eq!(
        cloud.snapshot(&Kind::Network)[0]["tags"],
        json!([]),
        "untouched"
    );

    let set = converge(
        &cloud,
        &plan,
        RunOptions {
            adopt: true,
            replace: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(set.count(Action::Adopt), 1);
    assert_the_pods_network_is(&cloud, &hand_made);
    assert_guide_topology(&cloud);
}

/// What a process killed at a write sees: a final error, the write landed
/// or not. (An ambiguous `Unavailable` is recovered inside the run.)
pub(super) fn killed() -> CloudError {
    CloudError::Config("killed".into())
}

/// A fault on the first create of `kind` alone (the other kinds are made as usual).
fn create_fault(kind: Kind, error: CloudError, after_effect: bool) -> Fault {
    Fault {
        kind: Some(kind),
        ..fault(Verb::Create, 1, error, after_effect)
    }
}

pub(super) fn fault(verb: Verb, nth: usize, error: CloudError, after_effect: bool) -> Fault {
    Fault {
        verb: Some(verb),
        kind: None,
        nth,
        error,
        after_effect,
    }
}

/// A 500 as the client reports it on a create.
pub(super) fn http_500(path: &str) -> CloudError {
    CloudError::Unavailable(format!(
        "POST {path} answered 500: database is locked (HTTPInternalServerError)"
    ))
}

/// No resource of the seed without its ownership tags (no orphan the next
/// run could not see by tag or marker). Octavia takes the tags in the create
/// itself; members are reached through their pool.
pub(super) fn untagged(cloud: &FakeCloud) -> Vec<Value> {
    [
        Kind::Network,
        Kind::Subnet,
        Kind::Router,
        Kind::SecurityGroup,
        Kind::LoadBalancer,
        Kind::Listener,
        Kind::Pool,
    ]
    .iter()
    .flat_map(|k| cloud.snapshot(k))
    .filter(|v| !super::ownership::has_tag(v, "kuryr6:pipeline=seed-ipv6"))
    .collect()
}

#[tokio::test]
async fn a_run_cut_at_any_write_converges_on_the_next_run_without_duplicates() {
    // Count the writes of a clean run, then cut a fresh run at each one,
    // both before the write lands and after it landed with the answer lost.
    let (probe, plan) = seed_converged().await;
    // 9 Neutron creates (2 networks, 2 subnets, router, group, 3 rules), 6
    // taggings (Neutron takes no tags on create), 2 interfaces; 1 Octavia
    // create (the load balancer fully populated with its pool, listener and
    // 2 members), tagged in the create itself.
    assert_eq!(probe.calls_of(Verb::Create), 9 + 1);
    assert_eq!(probe.calls_of(Verb::Update), 6);
    assert_eq!(probe.calls_of(Verb::RouterInterface), 2);
    let mut cases = 0;
    for verb in [Verb::Create, Verb::Update, Verb::RouterInterface] {
        for nth in 1..=probe.calls_of(verb) {
            for after_effect in [false, true] {
                cases += 1;
                let case = format!("{verb:?} #{nth} after={after_effect}");
                let cloud = FakeCloud::new();
                cloud.add_fault(fault(verb, nth, killed(), after_effect));
                let cut = converge(&cloud, &plan, RunOptions::default()).await;
                let err = cut
                    .err()
                    .unwrap_or_else(|| panic!("{case} should have failed"));
                // The cut write happened: the run's one failure is its.
                assert!(err.to_string().contains("killed"), "{case}: {err}");
                if verb == Verb::Update {
                    // A cut tagging says so and leaves the resource with
                    // the marker (or tagged, had the tagging landed).
                    let msg = err.to_string();
                    assert!(msg.contains("tagging it failed"), "{case}: {msg}");
                    let left = untagged(&cloud);
                    assert_eq!(left.len(), usize::from(!after_effect), "{case}: {left:#?}");
                    assert!(
                        left.iter()
                            .all(|v| Ownership::new("seed-ipv6").is_interrupted_create(v)),
                        "{case}: {left:#?}"
                    );
                }
                converge(&cloud, &plan, RunOptions::default())
                    .await
                    .unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_recovered(&cloud, &plan, &case).await;
            }
        }
    }
    assert_eq!(cases, (9 + 1 + 2 + 6) * 2);
}

#[tokio::test]
async fn an_ambiguous_answer_on_any_create_is_recovered_in_the_same_run() {
    let (probe, plan) = seed_converged().await;
    for verb in [Verb::Create, Verb::RouterInterface] {
        for nth in 1..=probe.calls_of(verb) {
            for after_effect in [false, true] {
                let case = format!("{verb:?} #{nth} after={after_effect}");
                let cloud = FakeCloud::new();
                cloud.add_fault(fault(verb, nth, http_500("/v2.0/x"), after_effect));
                converge(&cloud, &plan, RunOptions::default())
                    .await
                    .unwrap_or_else(|e| panic!("{case}: one run must converge: {e}"));
                assert_recovered(&cloud, &plan, &case).await;
                // Landed: taken, not made again; lost: made once more.
                let again = if after_effect { 0 } else { 1 };
                assert_eq!(cloud.calls_of(verb), probe.calls_of(verb) + again, "{case}");
            }
        }
    }
}

#[tokio::test]
async fn a_burst_of_500s_and_lost_answers_still_converges_in_one_run() {
    let plan = load(SEED).plan;
    let cloud = FakeCloud::new();
    // The next four writes fail, alternately before and after acting.
    for (i, verb) in [
        Verb::Create,
        Verb::Create,
        Verb::Create,
        Verb::RouterInterface,
    ]
    .into_iter()
    .enumerate()
    {
        cloud.add_fault(fault(verb, 1, http_500("/v2.0/x"), i % 2 == 1));
    }
    run_ok(&cloud, &plan).await;
    assert_eq!(cloud.unfired_faults(), 0, "every fault fired");
    assert_recovered(&cloud, &plan, "a burst").await;
}

#[tokio::test]
async fn a_create_that_keeps_failing_names_the_call_and_leaves_nothing() {
    let plan = load(SEED).plan;
    let cloud = FakeCloud::new();
    for _ in 0..super::create::CREATE_ATTEMPTS {
        cloud.add_fault(create_fault(Kind::Router, http_500("/v2.0/routers"), false));
    }
    let err = run_err(&cloud, &plan).await;
    assert!(
        err.contains("router `k8s-ipv6`")
            && err.contains("POST /v2.0/routers answered 500")
            && err.contains(&format!("{} attempts", super::create::CREATE_ATTEMPTS)),
        "{err}"
    );
    assert_eq!(
        cloud.calls(Verb::Create, &Kind::Router),
        super::create::CREATE_ATTEMPTS as usize
    );
    assert!(cloud.snapshot(&Kind::Router).is_empty());
    run_ok(&cloud, &plan).await;
    assert_guide_topology(&cloud);
}

#[tokio::test]
async fn the_fake_refuses_tags_in_a_neutron_create_as_neutron_does() {
    let cloud = FakeCloud::new();
    let tagged = json!({ "name": "pods", "tags": ["kuryr6"] });
    let err = cloud.create(&Kind::Network, tagged).await.unwrap_err();
    assert_eq!(
        err,
        CloudError::Rejected {
            method: "POST".into(),
            path: "/v2.0/networks".into(),
            status: 400,
            message: "Attribute 'tags' not allowed in POST (HTTPBadRequest)".into(),
        }
    );
    assert!(cloud.snapshot(&Kind::Network).is_empty());
}

#[tokio::test]
async fn the_fully_populated_create_recovers_from_ambiguous_answers_in_the_same_run() {
    let (probe, plan) = seed_converged().await;
    assert_lb_tree_created_in_one_call(&probe);
    for after_effect in [false, true] {
        let case = format!("after={after_effect}");
        let cloud = FakeCloud::new();
        cloud.add_fault(create_fault(
            Kind::LoadBalancer,
            http_500("/v2/lbaas/loadbalancers"),
            after_effect,
        ));
        converge(&cloud, &plan, RunOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        // The fault fired: the create was sent once more only if it had
        // not landed; the read-back found the tree it made otherwise.
        let again = if after_effect { 0 } else { 1 };
        assert_eq!(
            cloud.calls(Verb::Create, &Kind::LoadBalancer),
            1 + again,
            "{case}"
        );
        assert_eq!(cloud.snapshot(&Kind::LoadBalancer).len(), 1, "{case}");
        assert_eq!(cloud.snapshot(&Kind::Pool).len(), 1, "{case}");
        assert_eq!(cloud.snapshot(&Kind::Listener).len(), 1, "{case}");
        for kind in [Kind::Listener, Kind::Pool] {
            assert_eq!(cloud.calls(Verb::Create, &kind), 0, "{case}: {kind}");
        }
        let pool_id = id(&cloud.snapshot(&Kind::Pool)[0]);
        let members = cloud.snapshot(&Kind::Member { pool_id });
        assert_eq!(members.len(), 2, "{case}: {members:#?}");
        assert!(untagged(&cloud).is_empty(), "{case}");
        assert!(!pending(&cloud, &plan).await.pending(), "{case}");
    }
}

/// Neutron deletes a network's subnets with it: destroy makes no subnet
/// delete of its own for them, yet counts and removes them; a subnet on a
/// network that is no longer the pipeline's is still deleted by itself.
#[tokio::test]
async fn destroy_leaves_subnets_to_their_networks_delete() {
    let (cloud, plan) = seed_converged().await;
    let made = cloud.snapshot(&Kind::Subnet).len();
    assert_eq!(made, 2);
    cloud.reset_calls();
    let done = destroy_default(&cloud, &plan).await.unwrap();
    assert_eq!(cloud.calls(Verb::Delete, &Kind::Subnet), 0);
    assert_eq!(cloud.calls(Verb::Delete, &Kind::Network), 2);
    assert!(cloud.snapshot(&Kind::Subnet).is_empty());
    // Every resource counted: 2 networks, 2 subnets, the router and its 2
    // interfaces, the group, the load balancer tree (LB, listener, pool, 2
    // members) — rules go with their group.
    assert_eq!(done.deleted, 13, "{done:?}");

    // `services` is no longer the pipeline's (untagged, renamed, no
    // creation marker): it stays, and its subnet is deleted alone.
    run_ok(&cloud, &plan).await;
    let services = named(&cloud.snapshot(&Kind::Network), "services")[0].clone();
    cloud
        .update(
            &Kind::Network,
            &id(&services),
            json!({ "tags": [], "name": "services-kept", "description": "" }),
        )
        .await
        .unwrap();
    cloud.reset_calls();
    destroy_default(&cloud, &plan).await.unwrap();
    assert_eq!(cloud.calls(Verb::Delete, &Kind::Subnet), 1);
    assert_eq!(cloud.calls(Verb::Delete, &Kind::Network), 1);
    let left = cloud.snapshot(&Kind::Network);
    assert_eq!((left.len(), &left[0]["name"]), (1, &json!("services-kept")));
    assert!(cloud.snapshot(&Kind::Subnet).is_empty());
}

#[tokio::test]
async fn destroy_removes_only_what_the_pipeline_owns() {
    let cloud = FakeCloud::new();
    let other = made_by_hand(&cloud, &Kind::Network, json!({ "name": "unrelated" })).await;
    let plan = load(SEED).plan;
    run_ok(&cloud, &plan).await;
    let done = destroy_default(&cloud, &plan).await.unwrap();
    assert!(done.deleted >= 8, "{done:?}");
    let nets = cloud.snapshot(&Kind::Network);
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0]["id"], other["id"]);
    for kind in [
        Kind::Subnet,
        Kind::Router,
        Kind::SecurityGroup,
        Kind::Port,
        Kind::LoadBalancer,
        Kind::Listener,
        Kind::Pool,
    ] {
        assert!(cloud.snapshot(&kind).is_empty(), "{kind} left");
    }
}

/// On ML2/OVN with metadata and Octavia's allowed-address-pairs driver,
/// the backends' own ports (a metadata port per network, the load
/// balancer's VIP and VRRP ports) are no blockers and go with what they
/// belong to; a bystander's port on an owned network still blocks, and
/// the same backends' ports of someone else's network and load balancer
/// are left alone.
#[tokio::test]
async fn destroy_takes_the_backends_own_ports_and_stops_at_anyone_elses() {
    let (cloud, plan) =
        seed_converged_on(FakeCloud::new().with_ovn_metadata().with_vrrp_ports()).await;
    let owners = |cloud: &FakeCloud| -> Vec<String> {
        let mut o: Vec<String> = cloud
            .snapshot(&Kind::Port)
            .iter()
            .map(|p| p["device_owner"].as_str().unwrap_or_default().to_string())
            .collect();
        o.sort();
        o
    };
    let made = owners(&cloud);
    assert_eq!(
        made.iter().filter(|o| *o == "network:distributed").count(),
        2,
        "{made:?}"
    );
    assert!(
        made.iter().any(|o| o == "compute:nova"),
        "a VRRP port: {made:?}"
    );
    assert!(
        made.iter().any(|o| o == "Octavia"),
        "the VIP port: {made:?}"
    );
    // Someone else's network, with its own metadata port.
    let other = made_by_hand(&cloud, &Kind::Network, json!({ "name": "bystander" })).await;
    // A bystander's port on an owned network blocks.
    let pods = id(named(&cloud.snapshot(&Kind::Network), "pods")[0]);
    let stray = made_by_hand(
        &cloud,
        &Kind::Port,
        json!({ "name": "stray", "network_id": pods, "device_owner": "compute:nova" }),
    )
    .await;
    let err = destroy_default(&cloud, &plan)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&id(&stray)), "{err}");
    assert!(err.contains("1 port(s)"), "only the stray blocks: {err}");
    cloud.delete(&Kind::Port, &id(&stray)).await.unwrap();

    destroy_default(&cloud, &plan).await.unwrap();
    let nets = cloud.snapshot(&Kind::Network);
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0]["id"], other["id"]);
    // Only the bystander's metadata port is left.
    let left = cloud.snapshot(&Kind::Port);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["network_id"], other["id"]);
}

#[tokio::test]
async fn destroy_stops_at_ports_it_does_not_own_and_can_delete_kuryrs() {
    let (cloud, plan) = seed_converged().await;
    let pods = id(named(&cloud.snapshot(&Kind::Network), "pods")[0]);
    let port = made_by_hand(&cloud, &Kind::Port, json!({ "name": "pod-a", "network_id": pods, "device_owner": "compute:kuryr", "tags": ["kuryr:seed-ipv6"] })).await;

    cloud.reset_calls();
    let msg = destroy_default(&cloud, &plan)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(port["id"].as_str().unwrap()) && msg.contains("--delete-kuryr-ports"),
        "{msg}"
    );
    assert_eq!(
        cloud.calls_of(Verb::Delete) + cloud.calls_of(Verb::RouterInterface),
        0,
        "stopped before deleting anything"
    );

    let done = destroy(
        &cloud,
        &plan,
        DestroyOptions {
            delete_kuryr_ports: true,
        },
        &quiet(),
    )
    .await
    .unwrap();
    assert_eq!(done.deleted_ports, [port["id"].as_str().unwrap()]);
    assert!(cloud.snapshot(&Kind::Network).is_empty());
}

#[tokio::test]
async fn immutable_changes_are_refused_unless_replace() {
    let (cloud, _) = seed_converged().await;
    let moved = load(&SEED.replace("fd10:0:0:2::/112", "fd10:0:0:4::/112")).plan;
    let err = run_err(&cloud, &moved).await;
    assert!(
        err.contains("subnet `service_subnet`")
            && err.contains("--replace")
            && err.contains("cidr"),
        "{err}"
    );
    assert!(err.contains("load balancer `default/kubernetes`"), "{err}");
    assert_eq!(
        named(&cloud.snapshot(&Kind::Subnet), "service_subnet")[0]["cidr"],
        "fd10:0:0:2::/112"
    );

    let set = converge(
        &cloud,
        &moved,
        RunOptions {
            adopt: false,
            replace: true,
        },
    )
    .await
    .unwrap();
    // The subnet, and the load balancer whose VIP lived in it (Octavia
    // cannot move a VIP).
    let replaced: Vec<&Target> = set
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(|c| &c.target)
        .collect();
    assert_eq!(
        replaced,
        [
            &Target::Subnet {
                name: "service_subnet".into()
            },
            &Target::Loadbalancer {
                name: "default/kubernetes".into()
            }
        ],
        "{set:#?}"
    );
    let subnets = cloud.snapshot(&Kind::Subnet);
    assert_eq!(named(&subnets, "service_subnet").len(), 1);
    let svc = named(&subnets, "service_subnet")[0];
    assert_eq!(svc["cidr"], "fd10:0:0:4::/112");
    let lbs = cloud.snapshot(&Kind::LoadBalancer);
    assert_eq!(lbs.len(), 1, "{lbs:#?}");
    assert_eq!(lbs[0]["vip_address"], "fd10:0:0:4::1");
    assert_eq!(lbs[0]["vip_subnet_id"], svc["id"]);
    assert!(!pending(&cloud, &moved).await.pending());
}

#[tokio::test]
async fn a_step_removed_from_the_pipeline_is_deleted() {
    let (cloud, _) = seed_converged().await;
    let renamed = load(&format!(
        "{SEED}\n[plan.names]\nsecurity_group = \"pods_from_services\"\n"
    ))
    .plan;
    let set = run_ok(&cloud, &renamed).await;
    assert!(set.changes.iter().any(|c| c.action == Action::Delete
        && c.target
            == Target::SecurityGroup {
                name: "service_pod_access_v6".into()
            }));
    let sgs = cloud.snapshot(&Kind::SecurityGroup);
    assert_eq!(sgs.len(), 1);
    assert_eq!(sgs[0]["name"], "pods_from_services");
}

#[tokio::test]
async fn api_load_balancer_members_follow_the_hosts() {
    let (cloud, plan) = seed_converged().await;
    let lbs = cloud.snapshot(&Kind::LoadBalancer);
    assert_eq!(lbs.len(), 1);
    assert_eq!(lbs[0]["vip_address"], "fd10:0:0:2::1");
    assert_eq!(lbs[0]["name"], "default/kubernetes");
    let pools = cloud.snapshot(&Kind::Pool);
    assert_eq!(pools[0]["name"], "default/kubernetes:HTTPS:443");
    assert_eq!(pools[0]["lb_algorithm"], "LEAST_CONNECTIONS");
    let listeners = cloud.snapshot(&Kind::Listener);
    assert_eq!(listeners[0]["protocol_port"], 443);
    assert_eq!(listeners[0]["default_pool_id"], pools[0]["id"]);
    let pool_id = pools[0]["id"].as_str().unwrap().to_string();
    let members = cloud
        .list(
            &Kind::Member {
                pool_id: pool_id.clone(),
            },
            &Query::new(),
        )
        .await
        .unwrap();
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m["protocol_port"] == 6443));
    assert!(!pending(&cloud, &plan).await.pending());

    let one_host = load(&SEED.replace(
        "  { name = \"master-1\", address = \"fd10:0:0:3::11\" },\n",
        "",
    ))
    .plan;
    let set = run_ok(&cloud, &one_host).await;
    let changed: Vec<_> = set
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0].action, Action::Delete);
    let members = cloud
        .list(&Kind::Member { pool_id }, &Query::new())
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["name"], "master-0");

    destroy_default(&cloud, &one_host).await.unwrap();
    assert!(cloud.snapshot(&Kind::LoadBalancer).is_empty());
    assert!(cloud.snapshot(&Kind::Subnet).is_empty());
}

#[tokio::test]
async fn new_resources_are_tagged_in_the_last_wave_not_before_the_creates_after_them() {
    // Neutron serves one call at a time: a tag sent before the subnets
    // would hold up the load balancer, which waits for the service subnet.
    let plan = load(SEED).plan;
    let cloud = FakeCloud::new().with_latency(std::time::Duration::from_millis(1));
    let log = crate::cloud::fake::WriteLog::default();
    let tap = cloud.tap("run", Some(&log));
    let obs = observe(&tap, &plan).await.unwrap();
    let set = diff(&plan, &obs, RunOptions::default());
    apply(&tap, &plan, &obs, &set, &quiet()).await.unwrap();
    let writes: Vec<String> = log.writes().into_iter().map(|w| w.what).collect();
    let is_tag = |w: &String| w.starts_with("update ");
    let first_tag = writes
        .iter()
        .position(is_tag)
        .expect("the new resources were tagged");
    let last_neutron_create = ["network", "subnet", "router", "security group"]
        .iter()
        .filter_map(|k| writes.iter().rposition(|w| *w == format!("create {k}")))
        .max()
        .expect("Neutron creates");
    assert!(last_neutron_create < first_tag, "{writes:#?}");
    assert_eq!(
        writes.iter().filter(|w| is_tag(w)).count(),
        6,
        "{writes:#?}"
    );
    assert!(untagged(&cloud).is_empty());
}

#[tokio::test]
async fn a_run_that_fails_in_a_later_wave_still_tags_what_it_made() {
    let plan = load(SEED).plan;
    let cloud = FakeCloud::new();
    cloud.add_fault(create_fault(Kind::Subnet, killed(), false));
    let err = run_err(&cloud, &plan).await;
    assert_eq!(cloud.unfired_faults(), 0, "the subnets' create was cut");
    assert!(err.contains("killed"), "{err}");
    // The networks, router and group of the first wave: made and tagged.
    assert_eq!(cloud.snapshot(&Kind::Network).len(), 2);
    assert!(cloud.snapshot(&Kind::Subnet).is_empty());
    assert!(untagged(&cloud).is_empty(), "{:#?}", untagged(&cloud));
    run_ok(&cloud, &plan).await;
    assert_recovered(&cloud, &plan, "after the cut subnets").await;
}

#[tokio::test]
async fn a_create_cut_before_tagging_is_recognised_not_refused() {
    let cloud = FakeCloud::new();
    let plan = load(SEED).plan;
    // What a run killed between Neutron's create and the tag call leaves.
    let cut = made_by_hand(
        &cloud,
        &Kind::Network,
        json!({ "name": "pods", "description": Ownership::new("seed-ipv6").creation_marker() }),
    )
    .await;
    let set = run_ok(&cloud, &plan).await;
    assert_eq!(set.count(Action::Adopt), 1, "{set:#?}");
    assert_the_pods_network_is(&cloud, &cut);
    assert_guide_topology(&cloud);
    // Another pipeline's marker is not ours: still a refusal.
    let other = FakeCloud::new();
    made_by_hand(
        &other,
        &Kind::Network,
        json!({ "name": "pods", "description": Ownership::new("elsewhere").creation_marker() }),
    )
    .await;
    assert!(
        converge(&other, &plan, RunOptions::default())
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_never_run_looks_up_its_names_beside_its_tagged_lists() {
    // Each call takes 10 ms on the paused clock: the read's length counts
    // its rounds of calls.
    let plan = load(SEED).plan;
    let latency = std::time::Duration::from_millis(10);
    let rounds = |cloud: FakeCloud| {
        let plan = &plan;
        async move {
            let start = tokio::time::Instant::now();
            let obs = observe(&cloud, plan).await.unwrap();
            (start.elapsed().as_millis() / latency.as_millis(), obs)
        }
    };
    // Never run: the lease round, then the tagged lists and the name
    // lookups side by side (what the names are taken by is still seen).
    let fresh = FakeCloud::new().with_latency(latency);
    made_by_hand(&fresh, &Kind::Network, json!({ "name": "pods" })).await;
    fresh.reset_calls();
    let (n, obs) = rounds(fresh).await;
    assert_eq!(
        n, 3,
        "project, lease and groups, then lists and lookups together"
    );
    assert_eq!(obs.foreign(&Kind::Network).len(), 1, "{obs:#?}");
    // Run before (a lease record exists): the names it owns are not looked
    // up, early or late; one tagged list of networks is all.
    let (cloud, _) = seed_converged().await;
    cloud.reset_calls();
    let ran = cloud.with_latency(latency);
    observe(&ran, &plan).await.unwrap();
    assert_eq!(ran.calls(Verb::List, &Kind::Network), 1);
}
