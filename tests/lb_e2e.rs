//! End-to-end: the Kubernetes API load balancer step against the real
//! Octavia API that `scripts/cloud/up.sh --with-octavia` runs (amphora
//! provider with no-op drivers), cross-checked with `openstack loadbalancer`.

#[path = "support/mod.rs"]
mod support;

use serde_json::Value;
use support::*;

/// The seed with two API hosts, with its own CIDRs and names, clear of the
/// Neutron tests' seed.
fn two_hosts() -> String {
    seed_with_api_lb("seed-lb", "lb", "fd20")
}

fn find_lb(cloud: &LocalCloud) -> Option<Value> {
    let list = cloud.openstack(&["loadbalancer", "list", "--tags", "kuryr6:pipeline=seed-lb"]);
    let list = list.as_array().unwrap();
    assert!(list.len() <= 1, "{list:?}");
    list.first()
        .map(|l| cloud.openstack(&["loadbalancer", "show", l["id"].as_str().unwrap()]))
}

/// The one `child` ("listener", "pool") of load balancer `lb`, shown.
fn only_child(cloud: &LocalCloud, child: &str, lb: &Value) -> Value {
    let lb_id = lb["id"].as_str().unwrap();
    let list = cloud.openstack(&["loadbalancer", child, "list", "--loadbalancer", lb_id]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{child}s of {lb_id}: {list:?}");
    cloud.openstack(&[
        "loadbalancer",
        child,
        "show",
        list[0]["id"].as_str().unwrap(),
    ])
}

fn members(cloud: &LocalCloud, pool: &str) -> Vec<(String, String, u64)> {
    let list = cloud.openstack(&["loadbalancer", "member", "list", pool]);
    let mut v: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["address"].as_str().unwrap().to_string(),
                m["protocol_port"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn api_load_balancer_is_made_kept_trimmed_and_destroyed() {
    let _turn = octavia_turn();
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("lb", &two_hosts());
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    let run = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_ok(&run);

    let lb = find_lb(&cloud).expect("a load balancer tagged for the pipeline");
    assert_eq!(lb["name"], "default/kubernetes");
    assert_eq!(lb["vip_address"], "fd20:0:0:2::1");
    assert_eq!(lb["provisioning_status"], "ACTIVE");
    let listener = only_child(&cloud, "listener", &lb);
    assert_eq!(listener["protocol"], "HTTPS");
    assert_eq!(listener["protocol_port"], 443);
    assert_eq!(listener["provisioning_status"], "ACTIVE");
    let pool = only_child(&cloud, "pool", &lb);
    assert_eq!(pool["name"], "default/kubernetes:HTTPS:443");
    assert_eq!(pool["protocol"], "HTTPS");
    assert_eq!(pool["lb_algorithm"], "LEAST_CONNECTIONS");
    assert_eq!(listener["default_pool_id"], pool["id"]);
    let pool_id = pool["id"].as_str().unwrap().to_string();
    assert_eq!(
        members(&cloud, &pool_id),
        [
            ("master-0".to_string(), "fd10:0:0:3::10".to_string(), 6443),
            ("master-1".to_string(), "fd10:0:0:3::11".to_string(), 6443)
        ]
    );
    // The API server binds and advertises on the first host's address.
    let flags = std::fs::read_to_string(s.dir.join("out/kube-apiserver.flags")).unwrap();
    assert!(
        flags.contains("--bind-address=fd10:0:0:3::10")
            && flags.contains("--advertise-address=fd10:0:0:3::10"),
        "{flags}"
    );
    let conf = std::fs::read_to_string(s.dir.join("out/kuryr.conf")).unwrap();
    assert!(
        conf.contains("member_mode = L3") && conf.contains("lb_algorithm = LEAST_CONNECTIONS"),
        "{conf}"
    );

    // Re-run: nothing changes.
    assert_plan_clean(&cloud, &s.dir, &s.pipeline(), "re-plan");

    // One host fewer: exactly its member goes.
    s.write(&two_hosts().replace(
        "  { name = \"master-1\", address = \"fd10:0:0:3::11\" },\n",
        "",
    ));
    let plan = cloud.kuryr6(&s.dir, &["plan", &s.pipeline(), "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(3));
    assert!(
        stdout(&plan).contains("- member master-1 of default/kubernetes:HTTPS:443")
            && stdout(&plan)
                .contains("0 to create, 0 to update, 0 to adopt, 0 to replace, 1 to delete"),
        "{}",
        stdout(&plan)
    );
    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    assert_eq!(
        members(&cloud, &pool_id),
        [("master-0".to_string(), "fd10:0:0:3::10".to_string(), 6443)]
    );
    assert_eq!(
        find_lb(&cloud).unwrap()["id"],
        lb["id"],
        "the load balancer itself is kept"
    );

    // Destroy: the load balancer goes before the subnet it sits on.
    let destroyed = cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]);
    assert_ok(&destroyed);
    let log = stderr(&destroyed);
    let lb_at = log
        .find("- load balancer default/kubernetes")
        .unwrap_or_else(|| panic!("{log}"));
    let subnet_at = log
        .find("- subnet lb-service_subnet")
        .unwrap_or_else(|| panic!("{log}"));
    assert!(lb_at < subnet_at, "{log}");
    assert!(find_lb(&cloud).is_none());
    assert!(
        cloud
            .openstack(&["subnet", "list", "--tags", "kuryr6:pipeline=seed-lb"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_vip_outside_the_range_is_refused_before_any_api_call() {
    let cloud = LocalCloud::get();
    let explicit = r#"
[pipeline]
name = "seed-lb-bad"

[kubernetes]
api_hosts = [{ name = "master-0", address = "fd10:0:0:3::10" }]

[[step]]
kind = "network"
name = "lb-bad-services"

[[step]]
kind = "subnet"
name = "lb-bad-service_subnet"
network = "lb-bad-services"
role = "service"
ip_version = 6
cidr = "fd20:0:0:2::/112"

[[step]]
kind = "loadbalancer"
name = "default/kubernetes"
subnet = "lb-bad-service_subnet"
vip = "fd20:0:0:2::8001"
"#;
    let s = Scratch::with_pipeline("lb-bad", explicit);
    let out = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("pipeline.toml:24:7: error[E019]"), "{err}");
    assert!(
        cloud
            .openstack(&["network", "list", "--name", "lb-bad-services"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// Explicit steps with a load balancer whose listener port and pool name
/// the test changes; `{port}` and `{pool}` are filled in.
const CHILDREN: &str = r#"
[pipeline]
name = "lb-children"

[kubernetes]
version = "1.33"
api_hosts = [{ name = "master-0", address = "fd10:0:0:3::10" }]

[[step]]
kind = "network"
name = "lbc-services"

[[step]]
kind = "subnet"
name = "lbc-service_subnet"
network = "lbc-services"
role = "service"
ip_version = 6
cidr = "fd21:0:0:2::/112"

[[step]]
kind = "loadbalancer"
name = "lbc/kubernetes"
subnet = "lbc-service_subnet"
listener_port = {port}
pool_name = "{pool}"
"#;

fn children_pipeline(port: u16, pool: &str) -> String {
    CHILDREN
        .replace("{port}", &port.to_string())
        .replace("{pool}", pool)
}

/// (listener name, port) and pool names under the pipeline's load balancer,
/// read with the CLI.
fn lb_children(cloud: &LocalCloud) -> (Vec<(String, u64)>, Vec<String>) {
    let lb = one_lb(cloud, "lb-children");
    let id = lb["id"].as_str().unwrap();
    let mut listeners = listeners_of(cloud, id);
    listeners.sort();
    let pools = cloud.openstack(&["loadbalancer", "pool", "list", "--loadbalancer", id]);
    let mut pools: Vec<String> = pools
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    pools.sort();
    (listeners, pools)
}

/// The one load balancer tagged for `pipeline`, as the CLI lists it.
fn one_lb(cloud: &LocalCloud, pipeline: &str) -> Value {
    let tag = format!("kuryr6:pipeline={pipeline}");
    let lbs = cloud.openstack(&["loadbalancer", "list", "--tags", &tag]);
    let lbs = lbs.as_array().unwrap();
    assert_eq!(lbs.len(), 1, "one load balancer: {lbs:?}");
    lbs[0].clone()
}

/// (name, port) of each listener of load balancer `lb_id`, in the CLI's order.
fn listeners_of(cloud: &LocalCloud, lb_id: &str) -> Vec<(String, u64)> {
    let listeners = cloud.openstack(&["loadbalancer", "listener", "list", "--loadbalancer", lb_id]);
    listeners
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["protocol_port"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Runs `s`'s pipeline; then its load balancer has exactly the listener
/// (name, port) and the pool `pool`.
#[track_caller]
fn run_then_assert_children(cloud: &LocalCloud, s: &Scratch, listener: (&str, u64), pool: &str) {
    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    let want = (
        vec![(listener.0.to_string(), listener.1)],
        vec![pool.to_string()],
    );
    assert_eq!(lb_children(cloud), want);
}

#[test]
fn listener_port_and_pool_name_changes_leave_no_old_child() {
    let _turn = octavia_turn();
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("lb-children", &children_pipeline(443, "api-pool"));
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    run_then_assert_children(&cloud, &s, ("lbc/kubernetes:HTTPS:443", 443), "api-pool");

    // A new listener port: the old listener goes, one listener remains.
    s.write(&children_pipeline(6443, "api-pool"));
    let plan = cloud.kuryr6(&s.dir, &["plan", &s.pipeline()]);
    assert_ok(&plan);
    assert!(
        stdout(&plan).contains("- listener lbc/kubernetes:HTTPS:443"),
        "{}",
        stdout(&plan)
    );
    run_then_assert_children(&cloud, &s, ("lbc/kubernetes:HTTPS:6443", 6443), "api-pool");

    // A new pool name: the old pool (and its member) goes, the listener
    // points at the new one.
    s.write(&children_pipeline(6443, "api-pool-2"));
    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    let (listeners, pools) = lb_children(&cloud);
    assert_eq!(pools, ["api-pool-2"]);
    assert_eq!(listeners.len(), 1);
    let again = cloud.kuryr6(&s.dir, &["plan", &s.pipeline(), "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));

    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    let left = cloud.openstack(&[
        "loadbalancer",
        "list",
        "--tags",
        "kuryr6:pipeline=lb-children",
    ]);
    assert_eq!(left.as_array().unwrap().len(), 0);
}

#[path = "support/fault_proxy.rs"]
mod fault_proxy;

/// The seed's load balancer under its own names (the load balancer
/// `<prefix>/kubernetes`), for the single-call tests: tests of this binary
/// run side by side, and a same-named load balancer of another pipeline
/// would be a conflict.
fn one_call_pipeline(name: &str, prefix: &str, cidr_block: u16) -> String {
    seed_with_api_lb(name, prefix, &format!("fd{cidr_block:02x}"))
        + &format!("loadbalancer = \"{prefix}/kubernetes\"\n")
}

/// A clouds.yaml in `s` that reaches Octavia through a fault proxy with
/// `rules` (`load_balancer_endpoint_override`), and the proxy.
fn octavia_through_proxy(
    cloud: &LocalCloud,
    s: &Scratch,
    rules: Vec<fault_proxy::Rule>,
) -> fault_proxy::FaultProxy {
    let port = fault_proxy::port_of(&cloud.env["KURYR6_OCTAVIA_URL"]);
    let proxy = fault_proxy::FaultProxy::start(port, rules);
    let clouds = std::fs::read_to_string(&cloud.env["OS_CLIENT_CONFIG_FILE"]).unwrap();
    let proxied =
        fault_proxy::with_endpoint_override(&clouds, "load_balancer_endpoint_override", proxy.port);
    std::fs::write(s.dir.join("clouds.yaml"), proxied).unwrap();
    proxy
}

/// `kuryr6 ARGS` with Octavia reached through the proxy of `s`.
fn kuryr6_proxied(cloud: &LocalCloud, s: &Scratch, args: &[&str]) -> std::process::Output {
    let mut cmd = cloud.kuryr6_command(&s.dir, args);
    cmd.env("OS_CLIENT_CONFIG_FILE", s.dir.join("clouds.yaml"));
    cmd.output().unwrap()
}

/// How many requests the proxy saw since `from` with `method` whose path
/// satisfies `pick`.
fn seen_count(
    proxy: &fault_proxy::FaultProxy,
    from: usize,
    method: &str,
    pick: impl Fn(&str) -> bool,
) -> usize {
    proxy.seen()[from..]
        .iter()
        .filter(|(m, p)| m == method && pick(p))
        .count()
}

fn is_child(p: &str) -> bool {
    p.contains("/listeners") || p.contains("/pools") || p.contains("/members")
}

/// A load balancer, its (listener name, port)s and its pool's members.
type LbTree = (Value, Vec<(String, u64)>, Vec<(String, String, u64)>);

fn lb_tree_of(cloud: &LocalCloud, pipeline: &str) -> LbTree {
    let lb = one_lb(cloud, pipeline);
    let id = lb["id"].as_str().unwrap().to_string();
    let listeners = listeners_of(cloud, &id);
    let pools = cloud.openstack(&["loadbalancer", "pool", "list", "--loadbalancer", &id]);
    let pools = pools.as_array().unwrap();
    assert_eq!(pools.len(), 1, "one pool: {pools:?}");
    let members = members(cloud, pools[0]["id"].as_str().unwrap());
    (lb, listeners, members)
}

fn two_members() -> Vec<(String, String, u64)> {
    vec![
        ("master-0".to_string(), "fd10:0:0:3::10".to_string(), 6443),
        ("master-1".to_string(), "fd10:0:0:3::11".to_string(), 6443),
    ]
}

/// Issue 19: the load balancer is made in one fully populated create,
/// repaired after drift (a deleted member, a listener moved to another
/// port), and destroyed in one cascade delete; every Octavia request is
/// counted at a proxy in front of the real Octavia.
#[test]
fn the_api_load_balancer_is_one_create_repaired_after_drift_and_one_cascade_delete() {
    let _turn = octavia_turn();
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("lb-one", &one_call_pipeline("lb-one", "one", 0xf3));
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    // The first wait for ACTIVE meets a 429 (Retry-After: 1): waited out.
    let proxy = octavia_through_proxy(
        &cloud,
        &s,
        vec![fault_proxy::Rule {
            method: "GET",
            path: "/v2/lbaas/loadbalancers/",
            nth: 1,
            fault: fault_proxy::Fault::TooMany,
        }],
    );

    let mark = proxy.seen().len();
    assert_ok(&kuryr6_proxied(&cloud, &s, &["run", &s.pipeline()]));
    assert_eq!(
        seen_count(&proxy, mark, "POST", |p| p
            .starts_with("/v2/lbaas/loadbalancers")),
        1,
        "{:?}",
        proxy.seen()
    );
    assert_eq!(
        seen_count(&proxy, mark, "POST", is_child),
        0,
        "no child made on its own: {:?}",
        proxy.seen()
    );
    let fired = proxy.fired();
    assert_eq!(fired.len(), 1, "the 429 was answered: {fired:?}");
    let (lb, listeners, members) = lb_tree_of(&cloud, "lb-one");
    assert_eq!(lb["provisioning_status"], "ACTIVE");
    assert_eq!(listeners, [("one/kubernetes:HTTPS:443".to_string(), 443)]);
    assert_eq!(members, two_members());

    // A re-run writes nothing to Octavia.
    let mark = proxy.seen().len();
    assert_ok(&kuryr6_proxied(&cloud, &s, &["run", &s.pipeline()]));
    for method in ["POST", "PUT", "DELETE"] {
        assert_eq!(
            seen_count(&proxy, mark, method, |_| true),
            0,
            "{method}: {:?}",
            &proxy.seen()[mark..]
        );
    }

    // Drift: a member deleted, the listener made again on another port.
    let lb_id = lb["id"].as_str().unwrap().to_string();
    let pools = cloud.openstack(&["loadbalancer", "pool", "list", "--loadbalancer", &lb_id]);
    let pool_id = pools[0]["id"].as_str().unwrap().to_string();
    cloud.openstack_ok(&[
        "loadbalancer",
        "member",
        "delete",
        "--wait",
        &pool_id,
        "master-1",
    ]);
    let listener = cloud.openstack(&["loadbalancer", "listener", "list", "--loadbalancer", &lb_id]);
    let listener_id = listener[0]["id"].as_str().unwrap().to_string();
    cloud.openstack_ok(&["loadbalancer", "listener", "delete", "--wait", &listener_id]);
    cloud.openstack_ok(&[
        "loadbalancer",
        "listener",
        "create",
        "--wait",
        "--name",
        "one/kubernetes:HTTPS:443",
        "--protocol",
        "HTTPS",
        "--protocol-port",
        "8443",
        "--default-pool",
        &pool_id,
        "--tag",
        "kuryr6",
        "--tag",
        "kuryr6:pipeline=lb-one",
        &lb_id,
    ]);
    let plan = kuryr6_proxied(&cloud, &s, &["plan", &s.pipeline(), "--detailed-exitcode"]);
    assert_exit(&plan, 3);
    assert!(
        stdout(&plan).contains("+ member master-1")
            && stdout(&plan).contains("listener one/kubernetes:HTTPS:443"),
        "{}",
        stdout(&plan)
    );
    assert_ok(&kuryr6_proxied(&cloud, &s, &["run", &s.pipeline()]));
    let (again, listeners, members) = lb_tree_of(&cloud, "lb-one");
    assert_eq!(again["id"], lb["id"], "the load balancer itself is kept");
    assert_eq!(listeners, [("one/kubernetes:HTTPS:443".to_string(), 443)]);
    assert_eq!(members, two_members());
    let plan = kuryr6_proxied(&cloud, &s, &["plan", &s.pipeline(), "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));

    // Destroy: one cascade delete, no child deleted on its own.
    let mark = proxy.seen().len();
    assert_ok(&kuryr6_proxied(&cloud, &s, &["destroy", &s.pipeline()]));
    assert_eq!(
        seen_count(&proxy, mark, "DELETE", |p| p.starts_with(&format!(
            "/v2/lbaas/loadbalancers/{lb_id}?cascade=true"
        ))),
        1,
        "{:?}",
        &proxy.seen()[mark..]
    );
    assert_eq!(
        seen_count(&proxy, mark, "DELETE", is_child),
        0,
        "{:?}",
        &proxy.seen()[mark..]
    );
    let left = cloud.openstack(&["loadbalancer", "list", "--tags", "kuryr6:pipeline=lb-one"]);
    assert!(left.as_array().unwrap().is_empty(), "{left:?}");
    let subnets = cloud.openstack(&["subnet", "list", "--tags", "kuryr6:pipeline=lb-one"]);
    assert!(subnets.as_array().unwrap().is_empty(), "{subnets:?}");
}

/// A lost answer to the fully populated create (Octavia made the tree, the
/// client saw a 500 or a dropped connection) is read back within the run:
/// no second load balancer, no child made twice. A lost answer to the
/// cascade delete is retried: gone is done. The proxy asserts each fault
/// fired.
#[test]
fn lost_answers_to_the_single_calls_are_recovered_within_one_run() {
    use fault_proxy::{Fault, Rule};
    let _turn = octavia_turn();
    let cloud = LocalCloud::get();
    // A 503 is answered by the proxy without forwarding (Octavia did
    // nothing): the client sends it again.
    for (i, fault) in [Fault::ErrorAfter, Fault::DropAfter, Fault::Unavailable]
        .into_iter()
        .enumerate()
    {
        let sent = if fault == Fault::Unavailable { 2 } else { 1 };
        let name = format!("lb-lost{i}");
        let s = Scratch::with_pipeline(
            &name,
            &one_call_pipeline(&name, &format!("lost{i}"), 0xf4 + i as u16),
        );
        assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
        let proxy = octavia_through_proxy(
            &cloud,
            &s,
            vec![
                Rule {
                    method: "POST",
                    path: "/v2/lbaas/loadbalancers",
                    nth: 1,
                    fault,
                },
                Rule {
                    method: "DELETE",
                    path: "/v2/lbaas/loadbalancers/",
                    nth: 1,
                    fault,
                },
            ],
        );
        let run = kuryr6_proxied(&cloud, &s, &["run", &s.pipeline()]);
        assert_ok(&run);
        let fired = proxy.fired();
        assert_eq!(
            fired.len(),
            1,
            "{fault:?}: the create's fault fired: {fired:?}"
        );
        assert_eq!(fired[0].0, "POST");
        // A lost answer is read back, not sent again; no child is made on
        // its own.
        assert_eq!(
            seen_count(&proxy, 0, "POST", |p| p
                .starts_with("/v2/lbaas/loadbalancers")),
            sent,
            "{fault:?}: {:?}",
            proxy.seen()
        );
        assert_eq!(
            seen_count(&proxy, 0, "POST", is_child),
            0,
            "{fault:?}: {:?}",
            proxy.seen()
        );
        let (lb, listeners, members) = lb_tree_of(&cloud, &name);
        assert_eq!(listeners.len(), 1, "{fault:?}");
        assert_eq!(members, two_members(), "{fault:?}");
        let plan = kuryr6_proxied(&cloud, &s, &["plan", &s.pipeline(), "--detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "{fault:?}: {}", stdout(&plan));

        let destroyed = kuryr6_proxied(&cloud, &s, &["destroy", &s.pipeline()]);
        assert_ok(&destroyed);
        let fired = proxy.fired();
        assert_eq!(
            fired.len(),
            2,
            "{fault:?}: the delete's fault fired: {fired:?}"
        );
        assert!(fired[1].1.contains("cascade=true"), "{fired:?}");
        assert!(
            seen_count(&proxy, 0, "DELETE", |p| p
                .contains(lb["id"].as_str().unwrap()))
                >= 2,
            "{fault:?}: retried: {:?}",
            proxy.seen()
        );
        let left = cloud.openstack(&[
            "loadbalancer",
            "list",
            "--tags",
            &format!("kuryr6:pipeline={name}"),
        ]);
        assert!(left.as_array().unwrap().is_empty(), "{fault:?}: {left:?}");
    }
}
