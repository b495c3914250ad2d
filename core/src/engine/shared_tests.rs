//! Engine rules for a shared cloud, against the in-memory `FakeCloud`:
//! duplicates are refused and resolved, unwanted Octavia children go. The
//! proof against the real cloud is in `tests/shared_cloud_e2e.rs` and
//! `tests/lb_e2e.rs`.

use super::change::{Action, Target};
use super::progress::Progress;
use super::*;
use crate::cloud::fake::FakeCloud;
use crate::cloud::{Cloud, Kind};
use crate::load::{Loaded, load_source};
use crate::plan::Plan;
use crate::source::SourceFile;
use serde_json::json;

const SEED: &str = include_str!("../../../examples/seed-ipv6/pipeline.toml");

fn load(text: &str) -> Loaded {
    load_source(SourceFile::new("test.toml", text))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
}

fn quiet() -> Progress {
    Progress::new(false)
}

async fn converge(cloud: &FakeCloud, plan: &Plan) -> ChangeSet {
    let obs = observe(cloud, plan).await.unwrap();
    let set = diff(plan, &obs, RunOptions::default());
    apply(cloud, plan, &obs, &set, &quiet()).await.unwrap();
    set
}

async fn pending(cloud: &FakeCloud, plan: &Plan) -> ChangeSet {
    let obs = observe(cloud, plan).await.unwrap();
    diff(plan, &obs, RunOptions::default())
}

#[tokio::test]
async fn owned_duplicates_are_refused_then_deduped_to_the_oldest() {
    let cloud = FakeCloud::new();
    let plan = load(SEED).plan;
    converge(&cloud, &plan).await;
    let original = cloud
        .snapshot(&Kind::Network)
        .into_iter()
        .find(|n| n["name"] == "pods")
        .unwrap();
    // What an overlapping run without a lease would have left.
    let copy = cloud
        .create(&Kind::Network, json!({ "name": "pods" }))
        .await
        .unwrap();
    let copy_id = copy["id"].as_str().unwrap();
    cloud
        .add_tags(
            &Kind::Network,
            copy_id,
            &Ownership::new(&plan.pipeline).tags(),
        )
        .await
        .unwrap();

    let set = pending(&cloud, &plan).await;
    assert_eq!(set.refusals.len(), 1, "{:?}", set.refusals);
    assert!(set.refusals[0].contains("2 networks named `pods`"));
    assert!(set.refusals[0].contains(copy_id));
    assert!(set.refusals[0].contains("kuryr6 dedupe"));
    let obs = observe(&cloud, &plan).await.unwrap();
    assert!(matches!(
        apply(&cloud, &plan, &obs, &set, &quiet()).await,
        Err(EngineError::Refused(_))
    ));

    let removed = dedupe::dedupe(&cloud, &plan, &quiet()).await.unwrap();
    assert_eq!(removed.networks, [copy_id.to_string()].into());
    let nets: Vec<_> = cloud
        .snapshot(&Kind::Network)
        .into_iter()
        .filter(|n| n["name"] == "pods")
        .collect();
    assert_eq!(nets, [original]);
    let set = pending(&cloud, &plan).await;
    assert!(set.refusals.is_empty() && !set.pending(), "{set:?}");
}

#[tokio::test]
async fn dedupe_detaches_and_deletes_a_duplicate_subtree() {
    let cloud = FakeCloud::new();
    let plan = load(SEED).plan;
    converge(&cloud, &plan).await;
    // A second copy of the whole pipeline (a run that ignored the first).
    let obs = Default::default();
    let set = diff(&plan, &obs, RunOptions::default());
    apply(&cloud, &plan, &obs, &set, &quiet()).await.unwrap();
    assert_eq!(cloud.snapshot(&Kind::Network).len(), 4);

    assert_eq!(cloud.snapshot(&Kind::LoadBalancer).len(), 2);

    let removed = dedupe::dedupe(&cloud, &plan, &quiet()).await.unwrap();
    // 2 networks, 2 subnets, the router, the group and the load balancer.
    assert_eq!(removed.len(), 2 + 2 + 1 + 1 + 1, "{removed:?}");
    assert_eq!(removed.loadbalancers.len(), 1, "{removed:?}");
    assert_eq!(cloud.snapshot(&Kind::Network).len(), 2);
    assert_eq!(cloud.snapshot(&Kind::Subnet).len(), 2);
    assert_eq!(cloud.snapshot(&Kind::Router).len(), 1);
    assert_eq!(cloud.snapshot(&Kind::LoadBalancer).len(), 1);
    assert_eq!(cloud.snapshot(&Kind::Listener).len(), 1);
    assert_eq!(cloud.snapshot(&Kind::Pool).len(), 1);
    let set = pending(&cloud, &plan).await;
    assert!(set.refusals.is_empty() && !set.pending(), "{set:?}");
}

const LB: &str = r#"
[pipeline]
name = "lb-children"

[kubernetes]
api_hosts = [{ name = "master-0", address = "fd10:0:0:3::10" }]

[[step]]
kind = "network"
name = "services"

[[step]]
kind = "subnet"
name = "service_subnet"
network = "services"
role = "service"
ip_version = 6
cidr = "fd10:0:0:2::/112"

[[step]]
kind = "loadbalancer"
name = "default/kubernetes"
subnet = "service_subnet"
listener_port = PORT
pool_name = "POOL"
"#;

fn lb_plan(port: u16, pool: &str) -> Plan {
    load(&LB.replace("PORT", &port.to_string()).replace("POOL", pool)).plan
}

#[tokio::test]
async fn unwanted_octavia_children_of_an_owned_load_balancer_go() {
    let cloud = FakeCloud::new();
    converge(&cloud, &lb_plan(443, "api")).await;

    let plan = lb_plan(6443, "api");
    let set = pending(&cloud, &plan).await;
    assert!(set.changes.iter().any(|c| c.action == Action::Delete
        && c.target
            == Target::Listener {
                loadbalancer: "default/kubernetes".into(),
                name: "default/kubernetes:HTTPS:443".into()
            }));
    converge(&cloud, &plan).await;
    let listeners = cloud.snapshot(&Kind::Listener);
    assert_eq!(listeners.len(), 1, "{listeners:#?}");
    assert_eq!(listeners[0]["protocol_port"], 6443);

    let plan = lb_plan(6443, "api-2");
    converge(&cloud, &plan).await;
    let pools = cloud.snapshot(&Kind::Pool);
    assert_eq!(pools.len(), 1, "{pools:#?}");
    assert_eq!(pools[0]["name"], "api-2");
    assert_eq!(
        cloud.snapshot(&Kind::Listener)[0]["default_pool_id"],
        pools[0]["id"]
    );
    let set = pending(&cloud, &plan).await;
    assert!(!set.pending(), "{set:?}");
}

#[tokio::test]
async fn another_project_running_the_same_pipeline_is_invisible_to_an_admin() {
    let cloud = FakeCloud::new();
    let member = cloud.as_project("0c0ffee0c0ffee0c0ffee0c0ffee0002");
    let plan = load(SEED).plan;
    // The member first, then the admin, with the same pipeline and names.
    converge_on(&member, &plan).await;
    let set = pending(&cloud, &plan).await;
    assert!(
        set.refusals.is_empty(),
        "not a conflict: {:?}",
        set.refusals
    );
    assert_eq!(set.count(Action::Adopt), 0, "never adopted");
    assert_eq!(set.count(Action::Create), set.changes.len(), "{set:?}");
    converge(&cloud, &plan).await;
    let admin_project = cloud.project_id().await.unwrap();
    let obs = observe(&cloud, &plan).await.unwrap();
    for v in obs.owned.values().flatten() {
        assert_eq!(v["project_id"], admin_project.as_str(), "{v}");
    }
    assert!(!pending(&cloud, &plan).await.pending());

    // The admin's destroy leaves the member's resources whole.
    destroy(&cloud, &plan, DestroyOptions::default(), &quiet())
        .await
        .unwrap();
    let left = cloud.snapshot(&Kind::Network);
    assert_eq!(left.len(), 2, "{left:#?}");
    assert!(
        left.iter()
            .all(|n| n["project_id"] != admin_project.as_str())
    );
    let lbs = cloud.snapshot(&Kind::LoadBalancer);
    assert_eq!(lbs.len(), 1, "{lbs:#?}");
    assert_ne!(lbs[0]["project_id"], admin_project.as_str());
    let obs = observe(&member, &plan).await.unwrap();
    assert!(!diff(&plan, &obs, RunOptions::default()).pending());
}

async fn converge_on<C: Cloud>(cloud: &C, plan: &Plan) {
    let obs = observe(cloud, plan).await.unwrap();
    let set = diff(plan, &obs, RunOptions::default());
    apply(cloud, plan, &obs, &set, &quiet()).await.unwrap();
}
