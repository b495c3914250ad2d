//! End-to-end: the `kuryr6` binary against the real Keystone + Neutron +
//! Octavia that `scripts/cloud/up.sh --with-octavia` runs on 127.0.0.1,
//! cross-checked with the real `openstack` CLI and kuryr-kubernetes' own
//! option definitions. The seed is the whole guide: the Neutron topology
//! and the Kubernetes API load balancer.
//!
//! The seed pipeline uses the guide's names, so these tests take a lock and
//! run one at a time; each starts by removing what an earlier one left. The
//! lock also gives the local Octavia one load balancer at a time (see
//! `support::octavia_turn`).

#[path = "support/mod.rs"]
mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use support::*;

const SEED: &str = include_str!("../examples/seed-ipv6/pipeline.toml");
const TAG: &str = "kuryr6:pipeline=seed-ipv6";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> Turn {
    let order = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    (order, octavia_turn())
}

/// Destroys the seed pipeline and deletes hand-made leftovers of earlier tests.
fn clean(cloud: &LocalCloud, s: &Scratch) {
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    for name in ["pods", "services", "bystander"] {
        for net in cloud
            .openstack(&["network", "list", "--name", name])
            .as_array()
            .unwrap()
        {
            cloud.openstack_ok(&["network", "delete", net["ID"].as_str().unwrap()]);
        }
    }
}

type Turn = (MutexGuard<'static, ()>, MutexGuard<'static, ()>);

/// The start of a test of the seed: its turn (see `serial`), the cloud, and
/// the seed in a scratch directory named `name`, with what earlier tests
/// left removed (see `clean`).
fn fresh_seed(name: &str) -> (Turn, LocalCloud, Scratch) {
    let turn = serial();
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline(name, SEED);
    clean(&cloud, &s);
    (turn, cloud, s)
}

fn ids_tagged(cloud: &LocalCloud, what: &[&str]) -> Vec<Value> {
    ids_tagged_with(cloud, what, TAG)
}

/// `what` (a CLI list command) filtered on one pipeline's tag.
fn ids_tagged_with(cloud: &LocalCloud, what: &[&str], tag: &str) -> Vec<Value> {
    let mut args = what.to_vec();
    args.extend(["--tags", tag]);
    cloud.openstack(&args).as_array().unwrap().clone()
}

fn names(list: &[Value]) -> Vec<String> {
    sorted(
        list.iter()
            .map(|x| x["Name"].as_str().unwrap().to_string())
            .collect(),
    )
}

fn subnet_named(cloud: &LocalCloud, name: &str) -> Value {
    let list = ids_tagged(cloud, &["subnet", "list"]);
    let id = list
        .iter()
        .find(|s| s["Name"] == name)
        .unwrap_or_else(|| panic!("no tagged subnet {name}: {list:?}"))["ID"]
        .as_str()
        .unwrap()
        .to_string();
    cloud.openstack(&["subnet", "show", &id])
}

fn security_group(cloud: &LocalCloud) -> Value {
    let list = ids_tagged(cloud, &["security", "group", "list"]);
    assert_eq!(names(&list), ["service_pod_access_v6"]);
    cloud.openstack(&["security", "group", "show", list[0]["ID"].as_str().unwrap()])
}

fn ingress_rules(sg: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = sg["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .map(|r| {
            (
                r["ethertype"].as_str().unwrap().to_string(),
                r["protocol"].as_str().unwrap_or("any").to_string(),
                r["remote_ip_prefix"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn guide_rules() -> Vec<(String, String, String)> {
    ["sctp", "tcp", "udp"]
        .iter()
        .map(|p| {
            (
                "IPv6".to_string(),
                p.to_string(),
                "fd10:0:0:2::/112".to_string(),
            )
        })
        .collect()
}

/// Exactly one resource of each guide name exists, tagged or not: no
/// duplicate was left by an interrupted run. Returns the service subnet's id.
fn assert_each_guide_resource_once(cloud: &LocalCloud, context: &str) -> String {
    let mut svc_id = String::new();
    for (name, kind) in [
        ("pods", "network"),
        ("services", "network"),
        ("k8s-ipv6", "router"),
        ("pod_subnet", "subnet"),
        ("service_subnet", "subnet"),
    ] {
        let found = cloud.openstack(&[kind, "list", "--name", name]);
        assert_eq!(
            found.as_array().unwrap().len(),
            1,
            "{context}: {kind} {name}: {found}"
        );
        if name == "service_subnet" {
            svc_id = found[0]["ID"].as_str().unwrap().to_string();
        }
    }
    let groups = cloud.openstack(&["security", "group", "list"]);
    let count = count_named(&groups, "service_pod_access_v6");
    assert_eq!(count, 1, "{context}: security groups {groups}");
    svc_id
}

/// The guide's last step as Octavia shows it: the load balancer (its list
/// row) and its status tree (listener → pool → members, each with its
/// provisioning status). Two CLI calls: the CLI is the slow part here.
struct ApiLb {
    lb: Value,
    listener: Value,
    pool: Value,
    members: Vec<Value>,
}

/// Exactly one load balancer `default/kubernetes` on the service subnet
/// `svc_id`, tagged or not (import_e2e and lb_e2e make same-named ones on
/// their own subnets), ACTIVE through its whole tree: VIP the service
/// range's first address, one listener whose pool has both API hosts on
/// 6443.
fn api_load_balancer(cloud: &LocalCloud, svc_id: &str) -> ApiLb {
    let lbs = cloud.openstack(&[
        "loadbalancer",
        "list",
        "--name",
        "default/kubernetes",
        "--vip-subnet-id",
        svc_id,
    ]);
    assert_eq!(lbs.as_array().unwrap().len(), 1, "load balancers {lbs}");
    let lb = lbs[0].clone();
    assert_eq!(lb["vip_address"], "fd10:0:0:2::1");
    // `status show` prints JSON by itself and takes no `-f json`.
    let out = cloud.openstack_raw(
        &["loadbalancer", "status", "show", lb["id"].as_str().unwrap()],
        false,
    );
    assert_ok(&out);
    let tree: Value = serde_json::from_slice(&out.stdout).expect("status show prints JSON");
    let tree = &tree["loadbalancer"];
    assert_eq!(tree["provisioning_status"], "ACTIVE", "{tree}");
    let listeners = tree["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1, "{tree}");
    let listener = listeners[0].clone();
    assert_eq!(listener["name"], "default/kubernetes:HTTPS:443");
    let pools = listener["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1, "{tree}");
    let pool = pools[0].clone();
    assert_eq!(pool["name"], "default/kubernetes:HTTPS:443");
    let mut members = pool["members"].as_array().unwrap().clone();
    members.sort_by_key(|m| m["name"].as_str().unwrap_or_default().to_string());
    let seen: Vec<(&str, &str, u64, &str)> = members
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["address"].as_str().unwrap(),
                m["protocol_port"].as_u64().unwrap(),
                m["provisioning_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("master-0", "fd10:0:0:3::10", 6443, "ACTIVE"),
            ("master-1", "fd10:0:0:3::11", 6443, "ACTIVE")
        ]
    );
    for v in [&listener, &pool] {
        assert_eq!(v["provisioning_status"], "ACTIVE", "{v}");
    }
    ApiLb {
        lb,
        listener,
        pool,
        members,
    }
}

/// The subnet `name` as the guide makes it: IPv6 `cidr` without DHCP, its
/// gateway `gateway` and one allocation pool `[start, end]`. Returns it.
#[track_caller]
fn assert_static_v6_subnet(
    cloud: &LocalCloud,
    name: &str,
    cidr: &str,
    gateway: &str,
    [start, end]: [&str; 2],
) -> Value {
    let subnet = subnet_named(cloud, name);
    assert_eq!(subnet["cidr"], cidr);
    assert_eq!(subnet["ip_version"], 6);
    assert_eq!(subnet["enable_dhcp"], false);
    assert_eq!(subnet["gateway_ip"], gateway);
    let pools = serde_json::json!([{ "start": start, "end": end }]);
    assert_eq!(subnet["allocation_pools"], pools);
    subnet
}

#[test]
fn seed_run_makes_exactly_the_guides_resources() {
    let (_g, cloud, s) = fresh_seed("guide");
    let run = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_ok(&run);

    assert_eq!(
        names(&ids_tagged(&cloud, &["network", "list"])),
        ["pods", "services"]
    );
    assert_eq!(
        names(&ids_tagged(&cloud, &["subnet", "list"])),
        ["pod_subnet", "service_subnet"]
    );
    let pod = assert_static_v6_subnet(
        &cloud,
        "pod_subnet",
        "fd10:0:0:1::/64",
        "fd10:0:0:1::1",
        ["fd10:0:0:1::2", "fd10::1:ffff:ffff:ffff:ffff"],
    );
    assert_eq!(pod["ipv6_address_mode"], Value::Null);
    assert_eq!(pod["ipv6_ra_mode"], Value::Null);
    let svc = assert_static_v6_subnet(
        &cloud,
        "service_subnet",
        "fd10:0:0:2::/112",
        "fd10:0:0:2::fffe",
        ["fd10:0:0:2::8000", "fd10:0:0:2::fffd"],
    );

    let routers = ids_tagged(&cloud, &["router", "list"]);
    assert_eq!(names(&routers), ["k8s-ipv6"]);
    let ports = cloud.openstack(&[
        "port",
        "list",
        "--router",
        routers[0]["ID"].as_str().unwrap(),
    ]);
    let router_ips: BTreeSet<String> = ports
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["Fixed IP Addresses"].as_array().unwrap().clone())
        .map(|ip| ip["ip_address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        router_ips,
        BTreeSet::from(["fd10:0:0:1::1".to_string(), "fd10:0:0:2::fffe".to_string()])
    );
    let sg = security_group(&cloud);
    assert_eq!(ingress_rules(&sg), guide_rules());
    // The guide's end: the API load balancer, tagged with its children.
    let api = api_load_balancer(&cloud, svc["id"].as_str().unwrap());
    let lb = cloud.openstack(&["loadbalancer", "show", api.lb["id"].as_str().unwrap()]);
    assert_eq!(lb["vip_subnet_id"], svc["id"]);
    let listener_id = api.listener["id"].as_str().unwrap();
    let listener = cloud.openstack(&["loadbalancer", "listener", "show", listener_id]);
    assert_eq!(listener["protocol"], "HTTPS");
    assert_eq!(listener["protocol_port"], 443);
    assert_eq!(listener["default_pool_id"], api.pool["id"]);
    let pool_id = api.pool["id"].as_str().unwrap();
    let pool = cloud.openstack(&["loadbalancer", "pool", "show", pool_id]);
    assert_eq!(pool["protocol"], "HTTPS");
    assert_eq!(pool["lb_algorithm"], "LEAST_CONNECTIONS");
    for v in [&lb, &listener, &pool] {
        assert!(
            v["tags"].as_array().unwrap().iter().any(|t| t == TAG),
            "{v}"
        );
    }

    // kuryr.conf: real ids, and kuryr-kubernetes' own options parse it.
    let conf_path = s.dir.join("out/kuryr.conf");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    assert_eq!(conf_value(&conf, "pod_subnet"), pod["id"].as_str().unwrap());
    assert_eq!(
        conf_value(&conf, "service_subnet"),
        svc["id"].as_str().unwrap()
    );
    assert_eq!(
        conf_value(&conf, "pod_security_groups"),
        sg["id"].as_str().unwrap()
    );
    assert_eq!(
        conf_value(&conf, "project"),
        pod["project_id"].as_str().unwrap()
    );
    let check = std::process::Command::new(cloud.venv_bin("python"))
        .arg(repo().join("scripts/cloud/check_kuryr_conf.py"))
        .arg(&conf_path)
        .output()
        .unwrap();
    assert_ok(&check);
    let read: Value = serde_json::from_slice(&check.stdout).expect("check_kuryr_conf prints JSON");
    let n = &read["neutron_defaults"];
    assert_eq!(n["pod_subnet"], pod["id"]);
    assert_eq!(n["service_subnet"], svc["id"]);
    assert_eq!(n["project"], pod["project_id"]);
    assert_eq!(n["pod_security_groups"], serde_json::json!([sg["id"]]));
    assert_eq!(n["ovs_bridge"], "br-int");
    assert_eq!(read["octavia_defaults"]["member_mode"], "L3");
    assert_eq!(
        read["octavia_defaults"]["lb_algorithm"],
        "LEAST_CONNECTIONS"
    );
    assert!(
        conf.contains("auth_type = password") && conf.contains("username = admin"),
        "{conf}"
    );
    assert!(
        !conf.contains(&cloud.admin_password()),
        "kuryr.conf must not hold the password"
    );
    // Each API server binds its own host's address; kubeadm's endpoint is
    // the load balancer's VIP.
    for (file, host) in [
        ("kube-apiserver.flags", "fd10:0:0:3::10"),
        ("kube-apiserver.master-0.flags", "fd10:0:0:3::10"),
        ("kube-apiserver.master-1.flags", "fd10:0:0:3::11"),
    ] {
        let flags = std::fs::read_to_string(s.dir.join("out").join(file)).unwrap();
        assert_eq!(
            flags,
            format!(
                "--service-cluster-ip-range=fd10:0:0:2::/113\n--bind-address={host}\n--advertise-address={host}\n"
            ),
            "{file}"
        );
    }
    let kubeadm = std::fs::read_to_string(s.dir.join("out/kubeadm.yaml")).unwrap();
    assert!(
        kubeadm.contains("controlPlaneEndpoint: '[fd10:0:0:2::1]:443'"),
        "{kubeadm}"
    );
    clean(&cloud, &s);
}

/// revision_number of every Neutron resource the seed made, and the load
/// balancer's updated_at (Octavia has no revision numbers; a write to any
/// child, a tag included, passes the load balancer through PENDING_UPDATE
/// and so moves its updated_at), by id.
fn revisions(cloud: &LocalCloud) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut svc_id = String::new();
    for (list, show) in [
        (
            ["network", "list"].as_slice(),
            ["network", "show"].as_slice(),
        ),
        (&["subnet", "list"], &["subnet", "show"]),
        (&["router", "list"], &["router", "show"]),
    ] {
        for item in ids_tagged(cloud, list) {
            let id = item["ID"].as_str().unwrap();
            let mut args = show.to_vec();
            args.push(id);
            let shown = cloud.openstack(&args);
            if shown["name"] == "service_subnet" {
                svc_id = id.to_string();
            }
            out.push((id.to_string(), shown["revision_number"].clone()));
        }
    }
    let sg = security_group(cloud);
    out.push((
        sg["id"].as_str().unwrap().to_string(),
        sg["revision_number"].clone(),
    ));
    for r in sg["rules"].as_array().unwrap() {
        out.push((
            r["id"].as_str().unwrap().to_string(),
            r["revision_number"].clone(),
        ));
    }
    let api = api_load_balancer(cloud, &svc_id);
    let lb = cloud.openstack(&["loadbalancer", "show", api.lb["id"].as_str().unwrap()]);
    out.push((
        lb["id"].as_str().unwrap().to_string(),
        lb["updated_at"].clone(),
    ));
    out
}

#[test]
fn a_second_run_changes_nothing() {
    let (_g, cloud, s) = fresh_seed("rerun");
    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    let before = revisions(&cloud);
    // 2 networks, 2 subnets, router, group, its rules; the load balancer.
    assert!(before.len() >= 12, "{before:?}");

    let again = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_ok(&again);
    assert!(stderr(&again).contains("No changes"), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("unchanged") && !stdout(&again).contains("wrote"),
        "{}",
        stdout(&again)
    );
    assert_eq!(revisions(&cloud), before);

    let plan = assert_plan_clean(&cloud, &s.dir, &s.pipeline(), "re-plan");
    assert!(stdout(&plan).contains("No changes"), "{}", stdout(&plan));
    clean(&cloud, &s);
}

#[test]
fn drift_made_with_the_cli_is_planned_then_repaired() {
    let (_g, cloud, s) = fresh_seed("drift");
    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    let svc = subnet_named(&cloud, "service_subnet");
    let svc_id = svc["id"].as_str().unwrap();
    cloud.openstack_ok(&[
        "subnet",
        "set",
        "--no-allocation-pool",
        "--allocation-pool",
        "start=fd10:0:0:2::9000,end=fd10:0:0:2::fffd",
        svc_id,
    ]);
    let sg = security_group(&cloud);
    let udp = sg["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["protocol"] == "udp")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    cloud.openstack_ok(&["security", "group", "rule", "delete", &udp]);
    // … and an API host taken out of the load balancer's pool.
    let api = api_load_balancer(&cloud, svc_id);
    let pool_id = api.pool["id"].as_str().unwrap();
    let master_1 = api.members[1]["id"].as_str().unwrap();
    cloud.openstack_ok(&[
        "loadbalancer",
        "member",
        "delete",
        "--wait",
        pool_id,
        master_1,
    ]);

    let plan = cloud.kuryr6(&s.dir, &["plan", &s.pipeline(), "--detailed-exitcode"]);
    assert_exit(&plan, 3);
    let shown = stdout(&plan);
    assert!(shown.contains("~ subnet service_subnet"), "{shown}");
    assert!(shown.contains("allocation_pools: fd10:0:0:2::9000-fd10:0:0:2::fffd → fd10:0:0:2::8000-fd10:0:0:2::fffd"), "{shown}");
    assert!(
        shown.contains("+ rule service_pod_access_v6: ingress IPv6 udp from fd10:0:0:2::/112"),
        "{shown}"
    );
    assert!(
        shown.contains("+ member master-1 of default/kubernetes:HTTPS:443"),
        "{shown}"
    );
    assert!(shown.contains("2 to create, 1 to update"), "{shown}");

    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    let repaired = cloud.openstack(&["subnet", "show", svc_id]);
    assert_eq!(
        repaired["allocation_pools"],
        serde_json::json!([{ "start": "fd10:0:0:2::8000", "end": "fd10:0:0:2::fffd" }])
    );
    assert_eq!(ingress_rules(&security_group(&cloud)), guide_rules());
    api_load_balancer(&cloud, svc_id);
    assert_plan_clean(&cloud, &s.dir, &s.pipeline(), "re-plan");
    clean(&cloud, &s);
}

#[test]
fn hand_made_resources_block_until_adopted_and_destroy_leaves_no_tag() {
    let (_g, cloud, s) = fresh_seed("own");
    let hand = cloud.openstack(&["network", "create", "pods"]);
    let hand_id = hand["id"].as_str().unwrap();
    let bystander = cloud.openstack(&["network", "create", "bystander"]);

    let blocked = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_eq!(blocked.status.code(), Some(1));
    let err = stderr(&blocked);
    assert!(
        err.contains("network `pods`") && err.contains(hand_id) && err.contains("--adopt"),
        "{err}"
    );
    assert!(
        ids_tagged(&cloud, &["network", "list"]).is_empty(),
        "nothing made before the refusal"
    );
    let untouched = cloud.openstack(&["network", "show", hand_id]);
    assert_eq!(untouched["tags"], serde_json::json!([]));
    assert_eq!(untouched["revision_number"], hand["revision_number"]);

    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline(), "--adopt"]));
    let pods = cloud.openstack(&["network", "list", "--name", "pods"]);
    assert_eq!(pods.as_array().unwrap().len(), 1);
    assert_eq!(pods[0]["ID"], hand["id"]);
    assert!(holds(
        &cloud.openstack(&["network", "show", hand_id])["tags"],
        TAG
    ));

    let destroyed = cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]);
    assert_ok(&destroyed);
    for what in [
        ["network", "list"].as_slice(),
        &["subnet", "list"],
        &["router", "list"],
        &["security", "group", "list"],
        &["loadbalancer", "list"],
    ] {
        assert!(ids_tagged(&cloud, what).is_empty(), "{what:?} still tagged");
    }
    let still = cloud.openstack(&["network", "show", bystander["id"].as_str().unwrap()]);
    assert_eq!(still["name"], "bystander");
    clean(&cloud, &s);
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let _g = serial();
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("auth", SEED);
    let wrong = "Wr0ng-p4ssw0rd-do-not-print";
    let secure = s.dir.join("secure.yaml");
    std::fs::write(
        &secure,
        format!("clouds:\n  kuryr6-local:\n    auth:\n      password: {wrong}\n"),
    )
    .unwrap();
    let real = cloud.admin_password();
    for verbosity in [None, Some("-vv")] {
        let mut args = vec!["run", s.pipeline().leak() as &str];
        args.extend(verbosity);
        let mut cmd = cloud.kuryr6_command(&s.dir, &args);
        cmd.env("OS_CLIENT_SECURE_FILE", &secure)
            .env("RUST_LOG", "debug");
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            all.to_lowercase().contains("authentication failed"),
            "{all}"
        );
        assert!(
            !all.contains(wrong) && !all.contains(&real),
            "a password leaked:\n{all}"
        );
    }
    // A real run at debug level does not print the token or the password.
    let mut cmd = cloud.kuryr6_command(&s.dir, &["plan", &s.pipeline(), "-vv"]);
    cmd.env("RUST_LOG", "trace");
    let out = cmd.output().unwrap();
    assert_ok(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(&real), "the password leaked at trace level");
    assert!(
        !all.to_lowercase().contains("x-auth-token: g") && !all.contains("X-Subject-Token: g"),
        "a token leaked:\n{all}"
    );
}

#[test]
fn a_killed_run_converges_on_the_next_run_without_duplicates() {
    use std::io::BufRead;
    let _g = serial();
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("kill", SEED);
    // Killed after its k-th finished change (a progress line `  + …`): the
    // first cuts the Neutron part early, the last the Octavia part (the
    // load balancer's five lines come last, together).
    for k in [1, 4, 8, 11] {
        clean(&cloud, &s);
        let mut child = cloud
            .kuryr6_command(&s.dir, &["run", &s.pipeline()])
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut done = 0;
        for line in lines.map_while(Result::ok) {
            if line.trim_start().starts_with("+ ") {
                done += 1;
                if done == k {
                    break;
                }
            }
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        // The fault happened: the run had begun writing, and the kill, not
        // the run's own end, stopped it.
        assert_eq!(
            done, k,
            "the run made {done} changes, fewer than {k}, before it ended"
        );
        assert!(
            status.code().is_none(),
            "killed after {k} changes: the run had already ended ({status})"
        );
        let again = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
        assert_ok(&again);
        let svc_id = assert_each_guide_resource_once(&cloud, &format!("killed after {k} changes"));
        assert_eq!(ingress_rules(&security_group(&cloud)), guide_rules());
        api_load_balancer(&cloud, &svc_id);
        assert_plan_clean(
            &cloud,
            &s.dir,
            &s.pipeline(),
            &format!("killed after {k} changes"),
        );
    }
    clean(&cloud, &s);
}

#[path = "support/fault_proxy.rs"]
mod fault_proxy;

/// 503 and 429 are retried inside a run; after a 500 or a dropped connection
/// on a create or an interface (Neutron acted) the run reads back what
/// landed and goes on: one run ends converged, with no duplicate and no
/// orphan.
#[test]
fn faults_between_kuryr6_and_neutron_are_recovered_within_one_run() {
    use fault_proxy::{Fault, FaultProxy, Rule};
    let (_g, cloud, s) = fresh_seed("faults");
    let neutron_port = fault_proxy::port_of(&cloud.env["KURYR6_NEUTRON_URL"]);
    let proxy = FaultProxy::start(
        neutron_port,
        vec![
            Rule {
                method: "POST",
                path: "/v2.0/networks",
                nth: 1,
                fault: Fault::Unavailable,
            },
            Rule {
                method: "GET",
                path: "/v2.0/subnets",
                nth: 1,
                fault: Fault::TooMany,
            },
            Rule {
                method: "POST",
                path: "/v2.0/subnets",
                nth: 1,
                fault: Fault::DropAfter,
            },
            Rule {
                method: "POST",
                path: "/v2.0/security-group-rules",
                nth: 1,
                fault: Fault::ErrorAfter,
            },
            Rule {
                method: "PUT",
                path: "/add_router_interface",
                nth: 1,
                fault: Fault::ErrorAfter,
            },
        ],
    );
    // The same cloud, with Neutron reached through the proxy.
    let clouds = std::fs::read_to_string(&cloud.env["OS_CLIENT_CONFIG_FILE"]).unwrap();
    let proxied =
        fault_proxy::with_endpoint_override(&clouds, "network_endpoint_override", proxy.port);
    std::fs::write(s.dir.join("clouds.yaml"), proxied).unwrap();

    let mut runs = Vec::new();
    for _ in 0..5 {
        let mut cmd = cloud.kuryr6_command(&s.dir, &["run", &s.pipeline()]);
        cmd.env("OS_CLIENT_CONFIG_FILE", s.dir.join("clouds.yaml"));
        let out = cmd.output().unwrap();
        let ok = out.status.success();
        runs.push((out.status.code(), stderr(&out)));
        if ok {
            break;
        }
    }
    let fired = proxy.fired();
    assert_eq!(
        fired.len(),
        5,
        "every fault fired: {fired:?}\nruns: {runs:#?}"
    );
    assert!(
        runs.last().unwrap().0 == Some(0),
        "no run succeeded: {runs:#?}"
    );
    // A 500 or lost answer on a create or an interface is read back
    // inside the run: the first run ends converged.
    assert_eq!(runs.len(), 1, "one run was not enough: {runs:#?}");
    // 503 and 429 were absorbed: the network create and the subnet list
    // went through again inside the first run.
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .filter(|(m, p)| m == "POST" && p.starts_with("/v2.0/networks"))
            .count()
            >= 2,
        "{seen:?}"
    );

    let svc_id = assert_each_guide_resource_once(&cloud, "after the faults");
    assert_eq!(
        names(&ids_tagged(&cloud, &["subnet", "list"])),
        ["pod_subnet", "service_subnet"],
        "lost-answer subnets got their tags"
    );
    assert_eq!(ingress_rules(&security_group(&cloud)), guide_rules());
    api_load_balancer(&cloud, &svc_id);
    assert_plan_clean(&cloud, &s.dir, &s.pipeline(), "re-plan");
    drop(proxy);
    clean(&cloud, &s);
}

/// TLS verification off is never silent: one warning on stderr naming the
/// endpoints that are not verified; with verification on, none.
#[test]
fn a_cloud_reached_without_tls_verification_is_named_on_stderr() {
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("insecure", SEED);
    let insecure = cloud.kuryr6(&s.dir, &["plan", &s.pipeline(), "--insecure"]);
    assert_ok(&insecure);
    let err = stderr(&insecure);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("TLS certificates are not verified"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    for url in ["KURYR6_KEYSTONE_URL", "KURYR6_NEUTRON_URL"] {
        let host = cloud.env[url].trim_end_matches('/');
        let host = host.trim_end_matches("/v3");
        assert!(warnings[0].contains(host), "{url}: {err}");
    }
    let verified = cloud.kuryr6(&s.dir, &["plan", &s.pipeline()]);
    assert_ok(&verified);
    assert!(
        !stderr(&verified).contains("not verified"),
        "{}",
        stderr(&verified)
    );
}

/// Kuryr's member mode and Octavia provider, on the real cloud (its own
/// names, so it runs beside the seed's tests): a provider Octavia lacks is
/// refused before anything is made, naming the ones it has; `L2` builds
/// Kuryr's `octavia_pod_access` group, kuryr.conf lists both groups and the
/// provider (read back with kuryr's own options), and a re-run writes nothing.
#[test]
fn l2_member_mode_and_the_octavia_provider_are_built_and_checked() {
    const L2_TAG: &str = "kuryr6:pipeline=l2-e2e";
    let cloud = LocalCloud::get();
    let pipeline = |provider: &str| {
        format!(
            r#"[pipeline]
name = "l2-e2e"
[plan]
pod_cidr = "fd10:0:0:1::/64"
service_cidr = "fd10:0:0:2::/112"
[plan.names]
pod_network = "pods-l2e2e"
service_network = "services-l2e2e"
pod_subnet = "pod_subnet-l2e2e"
service_subnet = "service_subnet-l2e2e"
router = "k8s-ipv6-l2e2e"
security_group = "service_pod_access_v6-l2e2e"
octavia_pod_access = "octavia_pod_access-l2e2e"
[plan.emit]
member_mode = "L2"
octavia_provider = "{provider}"
"#
        )
    };
    let s = Scratch::with_pipeline("l2-e2e", &pipeline("ovn"));
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    let tagged = |what: &[&str]| ids_tagged_with(&cloud, what, L2_TAG);

    // The local Octavia enables amphora only: ovn is refused, nothing made.
    let providers = cloud.openstack(&["loadbalancer", "provider", "list"]);
    let names = strs_of(&providers, "name");
    assert!(!names.contains(&"ovn"), "{providers}");
    for command in ["plan", "run"] {
        let out = cloud.kuryr6(&s.dir, &[command, &s.pipeline()]);
        assert!(
            !out.status.success(),
            "{command} accepted ovn: {}",
            stdout(&out)
        );
        // plan shows the refusal in the plan (stdout), run on stderr.
        let err = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            err.contains("octavia_provider `ovn` is not enabled on this cloud")
                && names.iter().all(|n| err.contains(n)),
            "{command}: {err}"
        );
    }
    assert!(tagged(&["network", "list"]).is_empty());
    assert!(tagged(&["security", "group", "list"]).is_empty());
    assert!(!s.dir.join("out/kuryr.conf").exists());

    // amphora: built.
    s.write(&pipeline("amphora"));
    let run = cloud.kuryr6(&s.dir, &["run", &s.pipeline(), "--out", "out"]);
    assert_ok(&run);
    let group = cloud.openstack(&["security", "group", "show", "octavia_pod_access-l2e2e"]);
    let mut rules: Vec<(String, String, String)> = group["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .map(|r| {
            (
                r["protocol"].as_str().unwrap_or("-").to_string(),
                r["ethertype"].as_str().unwrap().to_string(),
                r["remote_ip_prefix"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            ("tcp".into(), "IPv6".into(), "fd10:0:0:1::/64".into()),
            ("udp".into(), "IPv6".into(), "fd10:0:0:1::/64".into()),
        ]
    );
    let access = cloud.openstack(&["security", "group", "show", "service_pod_access_v6-l2e2e"]);
    let conf_path = s.dir.join("out/kuryr.conf");
    let check = std::process::Command::new(cloud.venv_bin("python"))
        .arg(repo().join("scripts/cloud/check_kuryr_conf.py"))
        .arg(&conf_path)
        .arg("--expect-id-like")
        .output()
        .unwrap();
    assert_ok(&check);
    let read: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(
        read["neutron_defaults"]["pod_security_groups"],
        serde_json::json!([access["id"], group["id"]])
    );
    assert_eq!(read["octavia_defaults"]["member_mode"], "L2");
    assert_eq!(
        read["kubernetes"]["endpoints_driver_octavia_provider"],
        "amphora"
    );

    // A re-run writes nothing; destroy leaves nothing of it.
    assert_writes_nothing(&cloud, &s.dir, &["run", &s.pipeline(), "--out", "out"]);
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    assert!(tagged(&["security", "group", "list"]).is_empty());
    assert!(tagged(&["network", "list"]).is_empty());
}

/// The cloud on ML2/OVN with metadata on and Octavia's real network driver
/// (`up.sh --ml2 ovn --with-octavia --octavia-network aap`, started by
/// scripts/test.sh as the fifth cloud).
fn ovn_cloud() -> (LocalCloud, std::path::PathBuf) {
    let dir = std::env::var("KURYR6_OVN_CLOUD_DIR").unwrap_or_else(|_| {
        panic!("KURYR6_OVN_CLOUD_DIR is not set: this test needs the local cloud started with `up.sh --ml2 ovn --with-octavia --octavia-network aap`; scripts/test.sh starts one")
    });
    let dir = std::path::PathBuf::from(dir);
    let cloud = LocalCloud::at(&dir);
    assert_eq!(
        cloud.env.get("KURYR6_ML2").map(String::as_str),
        Some("ovn"),
        "{} is not an ML2/OVN cloud",
        dir.display()
    );
    assert_eq!(
        cloud.env.get("KURYR6_OCTAVIA_NETWORK").map(String::as_str),
        Some("aap"),
        "{}'s Octavia does not run the allowed-address-pairs driver",
        dir.display()
    );
    (cloud, dir)
}

/// The OVN tests assert on the whole Northbound database (no router left,
/// only the bystander's load balancer): one at a time.
static OVN_NB: Mutex<()> = Mutex::new(());

fn ovn_turn() -> MutexGuard<'static, ()> {
    OVN_NB.lock().unwrap_or_else(|p| p.into_inner())
}

/// `ovn-nbctl list TABLE` of the OVN cloud's Northbound database: each
/// row's `columns` (comma-separated), as OVSDB's JSON gives them.
fn nb_rows(dir: &std::path::Path, table: &str, columns: &str) -> Vec<Vec<Value>> {
    let out = std::process::Command::new("bash")
        .arg(repo().join("scripts/cloud/ovn.sh"))
        .arg("nbctl")
        .arg(dir)
        .args([
            "--format=json",
            &format!("--columns={columns}"),
            "list",
            table,
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().clone())
        .collect()
}

/// The ports `openstack port list ARGS` shows whose name starts with `prefix`.
fn ports_named(cloud: &LocalCloud, args: &[&str], prefix: &str) -> Vec<Value> {
    let mut all = vec!["port", "list"];
    all.extend_from_slice(args);
    cloud
        .openstack(&all)
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["Name"].as_str().unwrap().starts_with(prefix))
        .cloned()
        .collect()
}

/// OVSDB's JSON for a set: a single value, or `["set", [values]]`.
fn ovsdb_set(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if a.first() == Some(&Value::from("set")) => a[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect(),
        other => panic!("not an OVSDB set: {other}"),
    }
}

/// The seed with its API load balancer on ML2/OVN with metadata on and
/// Octavia's allowed-address-pairs driver: every network it makes gets OVN's
/// metadata port (`network:distributed`), and the load balancer its VIP
/// port and an amphora's VRRP port on the service subnet; destroy must take
/// all of them as its own. Converges, re-runs with nothing to do, and
/// destroys clean; OVN's Northbound database is the second witness (the
/// switches and the router with both IPv6 ports, then none of them, while a
/// bystander's switch and port stay).
#[test]
fn the_seed_converges_and_destroys_clean_on_ml2_ovn_with_metadata() {
    let (cloud, dir) = ovn_cloud();
    let _nb = ovn_turn();
    let s = Scratch::with_pipeline("seed-ovn", SEED);
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    // An earlier run's bystander (its metadata port goes with the network).
    for (kind, name) in [("port", "bystander-ovn-port"), ("network", "bystander-ovn")] {
        for v in cloud
            .openstack(&[kind, "list", "--name", name])
            .as_array()
            .unwrap()
        {
            cloud.openstack_ok(&[kind, "delete", v["ID"].as_str().unwrap()]);
        }
    }
    let bystander = cloud.openstack(&["network", "create", "bystander-ovn"]);
    let bystander_id = bystander["id"].as_str().unwrap().to_string();
    let bystander_port = cloud.openstack(&[
        "port",
        "create",
        "--network",
        &bystander_id,
        "bystander-ovn-port",
    ]);

    let run = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_ok(&run);
    let id_of = |kind: &[&str], name: &str| -> String {
        let mut args = kind.to_vec();
        args.extend(["show", name]);
        cloud.openstack(&args)["id"].as_str().unwrap().to_string()
    };
    let pods = id_of(&["network"], "pods");
    let services = id_of(&["network"], "services");
    let router = id_of(&["router"], "k8s-ipv6");
    // What the fault needs: OVN's metadata port on each network.
    for net in [&pods, &services] {
        let meta = cloud.openstack(&[
            "port",
            "list",
            "--network",
            net,
            "--device-owner",
            "network:distributed",
        ]);
        assert_eq!(
            meta.as_array().unwrap().len(),
            1,
            "metadata port of {net}: {meta}"
        );
    }

    // Octavia's own ports, as its network driver makes them.
    let lb = cloud.openstack(&["loadbalancer", "show", "default/kubernetes"]);
    let lb_id = lb["id"].as_str().unwrap();
    let vip = cloud.openstack(&["port", "show", &format!("octavia-lb-{lb_id}")]);
    assert_eq!(vip["device_owner"], "Octavia", "{vip}");
    assert_eq!(vip["fixed_ips"][0]["ip_address"], "fd10:0:0:2::1", "{vip}");
    let vrrp = ports_named(
        &cloud,
        &["--network", &services, "--long"],
        "octavia-lb-vrrp-",
    );
    assert_eq!(vrrp.len(), 1, "one amphora, one VRRP port: {vrrp:?}");
    assert_eq!(vrrp[0]["Device Owner"], "compute:nova", "{vrrp:?}");
    let vrrp = cloud.openstack(&["port", "show", vrrp[0]["ID"].as_str().unwrap()]);
    assert_eq!(
        vrrp["allowed_address_pairs"][0]["ip_address"], "fd10:0:0:2::1",
        "{vrrp}"
    );

    // The Northbound database: a switch per network, the router with both ports.
    let switches: Vec<String> = nb_rows(&dir, "Logical_Switch", "name")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    for net in [&pods, &services, &bystander_id] {
        assert!(switches.contains(&format!("neutron-{net}")), "{switches:?}");
    }
    let routers: Vec<String> = nb_rows(&dir, "Logical_Router", "name")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert!(
        routers.contains(&format!("neutron-{router}")),
        "{routers:?}"
    );
    let mut networks: Vec<String> = nb_rows(&dir, "Logical_Router_Port", "networks")
        .iter()
        .flat_map(|r| ovsdb_set(&r[0]))
        .collect();
    networks.sort();
    assert_eq!(networks, ["fd10:0:0:1::1/64", "fd10:0:0:2::fffe/112"]);

    assert_writes_nothing(&cloud, &s.dir, &["run", &s.pipeline()]);

    let destroyed = cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]);
    assert_ok(&destroyed);
    let octavia_ports = ports_named(&cloud, &[], "octavia-lb-");
    assert!(octavia_ports.is_empty(), "left: {octavia_ports:?}");
    for (kind, name) in [
        ("network", "pods"),
        ("network", "services"),
        ("router", "k8s-ipv6"),
    ] {
        assert_eq!(
            cloud.openstack(&[kind, "list", "--name", name]),
            serde_json::json!([]),
            "{kind} {name} left"
        );
    }
    let switches: Vec<String> = nb_rows(&dir, "Logical_Switch", "name")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert!(
        !switches.contains(&format!("neutron-{pods}")),
        "{switches:?}"
    );
    assert!(
        !switches.contains(&format!("neutron-{services}")),
        "{switches:?}"
    );
    assert!(
        switches.contains(&format!("neutron-{bystander_id}")),
        "{switches:?}"
    );
    assert!(nb_rows(&dir, "Logical_Router", "name").is_empty());
    assert!(nb_rows(&dir, "Logical_Router_Port", "networks").is_empty());
    let ports: Vec<String> = nb_rows(&dir, "Logical_Switch_Port", "name")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert!(
        ports.contains(&bystander_port["id"].as_str().unwrap().to_string()),
        "{ports:?}"
    );
    cloud.openstack_ok(&["port", "delete", bystander_port["id"].as_str().unwrap()]);
    cloud.openstack_ok(&["network", "delete", &bystander_id]);
}

/// The API load balancer on Octavia's OVN provider (`ovn-octavia-provider`,
/// enabled beside amphora on the OVN cloud), with TCP as that provider
/// requires: converges, re-runs with nothing to do, and destroys clean.
/// Neutron shows the provider's own VIP port (`ovn-lb-vip-<id>`); OVN's
/// Northbound database is the second witness: one Load_Balancer row with
/// the VIP `[fd10:0:0:2::1]:443` and one backend per API host on 6443,
/// gone after destroy while a bystander's OVN load balancer stays.
#[test]
fn an_api_load_balancer_on_the_ovn_provider_converges_and_destroys_clean() {
    let (cloud, dir) = ovn_cloud();
    let _nb = ovn_turn();
    let s = Scratch::with_pipeline(
        "ovn-lb",
        r#"[pipeline]
name = "ovn-lb"

[kubernetes]
api_hosts = [
  { name = "master-0", address = "fd10:0:0:3::10" },
  { name = "master-1", address = "fd10:0:0:3::11" },
]

[plan]
pod_cidr = "fd10:0:0:1::/64"
service_cidr = "fd10:0:0:2::/112"
lb_provider = "ovn"
lb_protocol = "TCP"

[plan.names]
pod_network = "pods-ovnlb"
service_network = "services-ovnlb"
pod_subnet = "pod_subnet-ovnlb"
service_subnet = "service_subnet-ovnlb"
router = "k8s-ipv6-ovnlb"
security_group = "service_pod_access_v6-ovnlb"
loadbalancer = "default/kubernetes-ovnlb"
"#,
    );
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    // An earlier run's bystander.
    for lb in cloud
        .openstack(&["loadbalancer", "list", "--name", "bystander-ovnlb"])
        .as_array()
        .unwrap()
    {
        let id = lb["id"].as_str().unwrap();
        cloud.openstack_ok(&["loadbalancer", "delete", "--cascade", "--wait", id]);
    }
    for net in cloud
        .openstack(&["network", "list", "--name", "bystander-ovnlb"])
        .as_array()
        .unwrap()
    {
        cloud.openstack_ok(&["network", "delete", net["ID"].as_str().unwrap()]);
    }
    let providers = cloud.openstack(&["loadbalancer", "provider", "list"]);
    assert!(
        providers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "ovn"),
        "the OVN cloud's Octavia does not enable the ovn provider: {providers}"
    );
    let bystander_net = cloud.openstack(&["network", "create", "bystander-ovnlb"]);
    let bystander_subnet = cloud.openstack(&[
        "subnet",
        "create",
        "--network",
        bystander_net["id"].as_str().unwrap(),
        "--ip-version",
        "6",
        "--subnet-range",
        "fd99:0:0:1::/64",
        "--no-dhcp",
        "bystander-ovnlb",
    ]);
    let bystander_lb = cloud.openstack(&[
        "loadbalancer",
        "create",
        "--name",
        "bystander-ovnlb",
        "--provider",
        "ovn",
        "--vip-subnet-id",
        bystander_subnet["id"].as_str().unwrap(),
        "--wait",
    ]);
    let bystander_lb_id = bystander_lb["id"].as_str().unwrap().to_string();

    let run = cloud.kuryr6(&s.dir, &["run", &s.pipeline(), "--out", "out"]);
    assert_ok(&run);
    let lb = cloud.openstack(&["loadbalancer", "show", "default/kubernetes-ovnlb"]);
    assert_eq!(lb["provider"], "ovn", "{lb}");
    assert_eq!(lb["provisioning_status"], "ACTIVE", "{lb}");
    let lb_id = lb["id"].as_str().unwrap();
    let listener = cloud.openstack(&[
        "loadbalancer",
        "listener",
        "show",
        "default/kubernetes-ovnlb:TCP:443",
    ]);
    assert_eq!(
        (&listener["protocol"], &listener["protocol_port"]),
        (&Value::from("TCP"), &Value::from(443)),
        "{listener}"
    );
    // The provider's own VIP port, not Octavia's amphora ports.
    let vip = cloud.openstack(&["port", "show", &format!("ovn-lb-vip-{lb_id}")]);
    assert_eq!(vip["fixed_ips"][0]["ip_address"], "fd10:0:0:2::1", "{vip}");
    let services = cloud.openstack(&["network", "show", "services-ovnlb"]);
    let amphora_ports = ports_named(
        &cloud,
        &["--network", services["id"].as_str().unwrap()],
        "octavia-lb-",
    );
    assert!(amphora_ports.is_empty(), "{amphora_ports:?}");

    // OVN's Northbound database: the pipeline's VIP and its backends.
    let rows = nb_rows(&dir, "Load_Balancer", "name,vips");
    let ours: Vec<&Vec<Value>> = rows.iter().filter(|r| r[0] == lb_id).collect();
    assert_eq!(ours.len(), 1, "{rows:?}");
    // OVSDB's JSON for a map: ["map", [[key, value], …]].
    let vips = ours[0][1].clone();
    assert_eq!(vips[0], "map", "{vips}");
    let pairs = vips[1].as_array().unwrap_or_else(|| panic!("{vips}"));
    assert_eq!(pairs.len(), 1, "{vips}");
    assert_eq!(pairs[0][0], "[fd10:0:0:2::1]:443", "{vips}");
    let mut backends: Vec<&str> = pairs[0][1].as_str().unwrap().split(',').collect();
    backends.sort();
    assert_eq!(
        backends,
        ["[fd10:0:0:3::10]:6443", "[fd10:0:0:3::11]:6443"],
        "{vips}"
    );

    assert_writes_nothing(&cloud, &s.dir, &["run", &s.pipeline(), "--out", "out"]);

    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    assert_eq!(
        cloud.openstack(&["loadbalancer", "list", "--name", "default/kubernetes-ovnlb"]),
        serde_json::json!([])
    );
    assert_eq!(
        cloud.openstack(&["port", "list", "--name", &format!("ovn-lb-vip-{lb_id}")]),
        serde_json::json!([])
    );
    let left: Vec<String> = nb_rows(&dir, "Load_Balancer", "name")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        [bystander_lb_id.as_str()],
        "only the bystander's row stays"
    );
    cloud.openstack_ok(&[
        "loadbalancer",
        "delete",
        "--cascade",
        "--wait",
        &bystander_lb_id,
    ]);
    cloud.openstack_ok(&["network", "delete", bystander_net["id"].as_str().unwrap()]);
}

/// README's "Quick start against your cloud", run as written in its order
/// (check, offline plan, plan, run, destroy) against the local cloud: only
/// the placeholders change (the binary this test built for
/// `target/release/kuryr6`, the local cloud's name for `mycloud`, a scratch
/// directory for `/etc/kuryr6`). Each command must succeed; `run` leaves
/// the guide's networks and kuryr.conf, `destroy` takes the networks away.
#[test]
fn the_readme_quick_start_runs_as_written() {
    let (_turn, cloud, s) = fresh_seed("seed-ipv6");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block: Vec<&str> = readme
        .split_once("## Quick start against your cloud\n\n")
        .expect("README has its quick start")
        .1
        .lines()
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(
        block.first(),
        Some(&"cargo build --release"),
        "the block's first command builds kuryr6: {block:?}"
    );
    let out_dir = s.dir.join("etc-kuryr6");
    let binary = env!("CARGO_BIN_EXE_kuryr6");
    let commands: Vec<Vec<String>> = block[1..]
        .iter()
        .map(|line| {
            // What follows a command on its line is a comment.
            let command = line.split(" #").next().unwrap();
            command
                .split_whitespace()
                .map(|word| match word {
                    "target/release/kuryr6" => binary.to_string(),
                    "mycloud" => cloud.env["OS_CLOUD"].clone(),
                    "/etc/kuryr6" => out_dir.display().to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let verbs: Vec<&str> = commands.iter().map(|c| c[1].as_str()).collect();
    assert_eq!(
        verbs,
        ["check", "plan", "plan", "run", "destroy"],
        "{block:?}"
    );
    for command in &commands {
        let mut cmd = std::process::Command::new(&command[0]);
        cmd.args(&command[1..]).current_dir(repo());
        cloud.apply_env(&mut cmd);
        let out = cmd.output().unwrap();
        assert_ok(&out);
        match command[1].as_str() {
            "run" => {
                assert!(stdout(&out).contains("16 created"), "{}", stdout(&out));
                assert_eq!(ids_tagged(&cloud, &["network", "list"]).len(), 2);
                assert!(out_dir.join("kuryr.conf").is_file());
            }
            "destroy" => assert!(ids_tagged(&cloud, &["network", "list"]).is_empty()),
            _ => {}
        }
    }
}
