//! End-to-end: `kuryr6 import` against the real local cloud. A deployment
//! built with the guide's `openstack` commands (scripts/cloud/guide_cli.sh)
//! and a hand-written kuryr.conf is imported, checked, planned (adoption
//! only), taken over with `run --adopt` (tags only), and re-run (nothing).
//! A deployment that leaves the guide imports field for field, with a
//! warning naming each deviation.
//!
//! Names carry a suffix of their own, so nothing here meets the guide-named
//! resources of tests/cloud_e2e.rs; each test removes its leftovers at start
//! and end.

#[path = "support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use support::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn guide_cli(cloud: &LocalCloud, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/cloud/guide_cli.sh"))
        .args(args);
    for (k, v) in &cloud.env {
        cmd.env(k, v);
    }
    cmd.output().expect("guide_cli.sh runs")
}

/// Deletes every resource named with `suffix` (ports of routers first).
fn clean(cloud: &LocalCloud, suffix: &str) {
    let out = guide_cli(cloud, &["--cleanup", suffix]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (kind, name) in [
        ("network", format!("pods{suffix}")),
        ("network", format!("services{suffix}")),
    ] {
        for v in cloud
            .openstack(&[kind, "list", "--name", &name])
            .as_array()
            .unwrap()
        {
            cloud.openstack_ok(&[kind, "delete", v["ID"].as_str().unwrap()]);
        }
    }
    let sg = format!("service_pod_access_v6{suffix}");
    for v in cloud
        .openstack(&["security", "group", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["Name"] == sg.as_str())
    {
        cloud.openstack_ok(&["security", "group", "delete", v["ID"].as_str().unwrap()]);
    }
}

fn show(cloud: &LocalCloud, kind: &[&str], id: &str) -> Value {
    let mut args = kind.to_vec();
    args.extend(["show", id]);
    cloud.openstack(&args)
}

fn id_of(cloud: &LocalCloud, kind: &[&str], name: &str) -> String {
    show(cloud, kind, name)["id"].as_str().unwrap().to_string()
}

/// The deployment's resources by kind, with ids.
struct Deployed {
    resources: Vec<(Vec<&'static str>, String)>,
    pod_subnet: String,
    service_subnet: String,
    sg: String,
    project: String,
}

fn deployed(cloud: &LocalCloud, suffix: &str) -> Deployed {
    let net = ["network"];
    let sub = ["subnet"];
    let pod_subnet = id_of(cloud, &sub, &format!("pod_subnet{suffix}"));
    let service_subnet = id_of(cloud, &sub, &format!("service_subnet{suffix}"));
    let sg = id_of(
        cloud,
        &["security", "group"],
        &format!("service_pod_access_v6{suffix}"),
    );
    let project = show(cloud, &sub, &pod_subnet)["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let resources = vec![
        (net.to_vec(), id_of(cloud, &net, &format!("pods{suffix}"))),
        (
            net.to_vec(),
            id_of(cloud, &net, &format!("services{suffix}")),
        ),
        (sub.to_vec(), pod_subnet.clone()),
        (sub.to_vec(), service_subnet.clone()),
        (
            vec!["router"],
            id_of(cloud, &["router"], &format!("k8s-ipv6{suffix}")),
        ),
        (vec!["security", "group"], sg.clone()),
    ];
    Deployed {
        resources,
        pod_subnet,
        service_subnet,
        sg,
        project,
    }
}

fn write_conf(dir: &Path, d: &Deployed) -> String {
    let path = dir.join("kuryr.conf");
    std::fs::write(
        &path,
        format!(
            "# written by hand, as an operator following the guide would\n[neutron_defaults]\nproject = {}\npod_subnet = {}\nservice_subnet = {}\npod_security_groups = {}\novs_bridge = br-int\n",
            d.project, d.pod_subnet, d.service_subnet, d.sg
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// A resource as the CLI shows it, without what a tag write changes.
fn untagged_view(v: &Value) -> Value {
    let mut v = v.clone();
    for k in ["revision_number", "updated_at", "tags"] {
        v.as_object_mut().unwrap().remove(k);
    }
    // The CLI lists a group's rules inside it: each rule's own revision is
    // compared through the list itself (rules are not tagged).
    v
}

fn import(cloud: &LocalCloud, s: &Scratch, conf: &str, name: &str) -> std::process::Output {
    let out = cloud.kuryr6(
        &s.dir,
        &[
            "import",
            "--kuryr-conf",
            conf,
            "--name",
            name,
            "-o",
            "imported.toml",
        ],
    );
    assert_ok(&out);
    out
}

fn plan_json(cloud: &LocalCloud, s: &Scratch, extra: &[&str]) -> Value {
    let mut args = vec!["plan", "imported.toml", "--format", "json"];
    args.extend_from_slice(extra);
    let out = cloud.kuryr6(&s.dir, &args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)))
}

/// The plan's actions, in order.
fn actions(plan: &Value) -> Vec<&str> {
    strs_of(&plan["changes"]["changes"], "action")
}

/// The plan adopts or leaves alone, nothing else, and adopts `n`.
#[track_caller]
fn assert_adoption_only(plan: &Value, n: usize) {
    let actions = actions(plan);
    assert!(
        actions.iter().all(|a| *a == "adopt" || *a == "no_op"),
        "not adoption only: {plan}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "adopt").count(),
        n,
        "{plan}"
    );
}

/// `run --adopt` succeeds, adopting `n` and changing nothing else.
#[track_caller]
fn run_adopting(cloud: &LocalCloud, s: &Scratch, n: usize) {
    let run = cloud.kuryr6(&s.dir, &["run", "imported.toml", "--adopt", "--out", "out"]);
    assert_ok(&run);
    assert!(
        stdout(&run).contains(&format!("0 created, 0 updated, {n} adopted, 0 deleted")),
        "{}",
        stdout(&run)
    );
}

#[test]
fn the_guides_deployment_is_imported_and_adopted_by_tags_alone() {
    let _g = serial();
    let cloud = LocalCloud::get();
    let suffix = "-imp-e2e";
    clean(&cloud, suffix);
    let built = guide_cli(&cloud, &[suffix]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let d = deployed(&cloud, suffix);
    let s = Scratch::with_pipeline("import", "");
    let conf = write_conf(&s.dir, &d);

    // import: read-only, an explicit pipeline warning on the guide's missing rules.
    let before: Vec<Value> = d
        .resources
        .iter()
        .map(|(k, id)| show(&cloud, k, id))
        .collect();
    let out = import(&cloud, &s, &conf, "imp-e2e");
    let err = stderr(&out);
    assert_eq!(err.matches("warning[W004]").count(), 2, "{err}");
    let text = std::fs::read_to_string(s.dir.join("imported.toml")).unwrap();
    assert!(text.contains("# deviation (W004): no udp rule"), "{text}");
    assert!(
        text.contains(&format!("name = \"pod_subnet{suffix}\"")),
        "{text}"
    );
    let untouched: Vec<Value> = d
        .resources
        .iter()
        .map(|(k, id)| show(&cloud, k, id))
        .collect();
    assert_eq!(untouched, before, "import wrote to the cloud");

    // check accepts it, with the same warnings.
    let check = cloud.kuryr6(&s.dir, &["check", "imported.toml", "--format", "json"]);
    assert_ok(&check);
    let doc: Value = serde_json::from_slice(&check.stdout).unwrap();
    let codes = strs_of(&doc["warnings"], "code");
    assert_eq!(codes, ["W004", "W004"], "{doc}");

    // plan: adoption only.
    let plan = plan_json(&cloud, &s, &["--adopt"]);
    assert_eq!(plan["refused"], false, "{plan}");
    assert_adoption_only(&plan, 6);

    // run --adopt: tags only. Every field but the tags (and the revision
    // and time a tag write moves) stays; each revision moves by one per
    // tag write, and the rule's not at all.
    let sg_before = show(&cloud, &["security", "group"], &d.sg);
    run_adopting(&cloud, &s, 6);
    for ((kind, id), old) in d.resources.iter().zip(&before) {
        let new = show(&cloud, kind, id);
        assert_eq!(
            untagged_view(&new),
            untagged_view(old),
            "{kind:?} {id} changed beyond its tags"
        );
        let tags = strs(&new["tags"]);
        assert!(
            tags.contains(&"kuryr6") && tags.contains(&"kuryr6:pipeline=imp-e2e"),
            "{new}"
        );
        let moved =
            new["revision_number"].as_u64().unwrap() - old["revision_number"].as_u64().unwrap();
        // Neutron bumps the revision once per tag written (`PUT …/tags/{tag}`,
        // race-free with tags others add): the two ownership tags, nothing else.
        assert_eq!(
            moved, 2,
            "{kind:?} {id}: revision moved by {moved}, two tag writes expected"
        );
    }
    let sg_after = show(&cloud, &["security", "group"], &d.sg);
    let rule_revs = |sg: &Value| -> Vec<(String, Value)> {
        sg["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["revision_number"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        rule_revs(&sg_after),
        rule_revs(&sg_before),
        "rules untouched"
    );

    // kuryr.conf names the original ids.
    let emitted = std::fs::read_to_string(s.dir.join("out/kuryr.conf")).unwrap();
    assert_eq!(conf_value(&emitted, "pod_subnet"), d.pod_subnet);
    assert_eq!(conf_value(&emitted, "service_subnet"), d.service_subnet);
    assert_eq!(conf_value(&emitted, "pod_security_groups"), d.sg);
    assert_eq!(conf_value(&emitted, "project"), d.project);

    // A second run changes nothing.
    let revs: Vec<Value> = d
        .resources
        .iter()
        .map(|(k, id)| show(&cloud, k, id)["revision_number"].clone())
        .collect();
    let again = assert_writes_nothing(&cloud, &s.dir, &["run", "imported.toml", "--out", "out"]);
    assert!(stderr(&again).contains("No changes"), "{}", stderr(&again));
    let revs_again: Vec<Value> = d
        .resources
        .iter()
        .map(|(k, id)| show(&cloud, k, id)["revision_number"].clone())
        .collect();
    assert_eq!(revs_again, revs);
    let plan = cloud.kuryr6(&s.dir, &["plan", "imported.toml", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));

    // graph against the cloud: nothing marked; after a pool changed with
    // the CLI, the drifted subnet (and only it) is marked.
    let os_cloud = cloud.env["OS_CLOUD"].clone();
    let drift_of = |file: &str| -> (String, String, String) {
        let out = cloud.kuryr6(
            &s.dir,
            &[
                "graph",
                "imported.toml",
                "--os-cloud",
                &os_cloud,
                "-o",
                file,
            ],
        );
        assert_ok(&out);
        let svg = std::fs::read_to_string(s.dir.join(file)).unwrap();
        usvg::Tree::from_str(&svg, &usvg::Options::default()).expect("the SVG parses");
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let drift = |id: &str| {
            doc.descendants()
                .find(|n| n.attribute("id") == Some(id))
                .and_then(|n| n.attribute("data-drift"))
                .unwrap_or_else(|| panic!("no {id} in {svg}"))
                .to_string()
        };
        (
            drift(&format!("node-subnet-service_subnet{suffix}")),
            drift(&format!("plan-service_subnet{suffix}-bar")),
            drift(&format!("node-subnet-pod_subnet{suffix}")),
        )
    };
    assert_eq!(
        drift_of("same.svg"),
        ("same".into(), "same".into(), "same".into())
    );
    cloud.openstack_ok(&[
        "subnet",
        "set",
        "--no-allocation-pool",
        "--allocation-pool",
        "start=fd10:0:0:2::8001,end=fd10:0:0:2::fffd",
        &d.service_subnet,
    ]);
    assert_eq!(
        drift_of("drift.svg"),
        ("update".into(), "update".into(), "same".into())
    );
    let svg = std::fs::read_to_string(s.dir.join("drift.svg")).unwrap();
    assert!(
        svg.contains("allocation_pools: fd10:0:0:2::8001-fd10:0:0:2::fffd → fd10:0:0:2::8000-fd10:0:0:2::fffd"),
        "{svg}"
    );
    clean(&cloud, suffix);
}

#[test]
fn a_deployment_off_the_guide_imports_field_for_field_with_a_warning_each() {
    let _g = serial();
    let cloud = LocalCloud::get();
    let suffix = "-imp-dev";
    clean(&cloud, suffix);
    let os = |args: &[&str]| cloud.openstack(args);
    let n = |base: &str| format!("{base}{suffix}");
    os(&["network", "create", &n("pods")]);
    os(&[
        "subnet",
        "create",
        &n("pod_subnet"),
        "--network",
        &n("pods"),
        "--no-dhcp",
        "--subnet-range",
        "fd10:0:0:1::/64",
        "--ip-version",
        "6",
        "--gateway",
        "fd10:0:0:1::1",
    ]);
    os(&["network", "create", &n("services")]);
    // A /108 whose pool starts one address after the guide's split (the
    // /108 counterpart of a /112 pool at ::8001; ::8001 itself lies in the
    // /108's Kubernetes range, which kuryr6 refuses as E018).
    os(&[
        "subnet",
        "create",
        &n("service_subnet"),
        "--network",
        &n("services"),
        "--no-dhcp",
        "--subnet-range",
        "fd10:0:0:2::/108",
        "--ip-version",
        "6",
        "--gateway",
        "fd10:0:0:2::f:fffe",
        "--allocation-pool",
        "start=fd10:0:0:2::8:1,end=fd10:0:0:2::f:fffd",
    ]);
    os(&["router", "create", &n("k8s-ipv6")]);
    cloud.openstack_ok(&["router", "add", "subnet", &n("k8s-ipv6"), &n("pod_subnet")]);
    cloud.openstack_ok(&[
        "router",
        "add",
        "subnet",
        &n("k8s-ipv6"),
        &n("service_subnet"),
    ]);
    os(&["security", "group", "create", &n("service_pod_access_v6")]);
    for proto in ["tcp", "udp", "sctp"] {
        os(&[
            "security",
            "group",
            "rule",
            "create",
            "--remote-ip",
            "fd10:0:0:2::/108",
            "--ethertype",
            "IPv6",
            "--protocol",
            proto,
            &n("service_pod_access_v6"),
        ]);
    }
    // The extra rule: ssh from a management prefix.
    os(&[
        "security",
        "group",
        "rule",
        "create",
        "--remote-ip",
        "fd00:aaaa::/64",
        "--ethertype",
        "IPv6",
        "--protocol",
        "tcp",
        "--dst-port",
        "22",
        &n("service_pod_access_v6"),
    ]);
    let d = deployed(&cloud, suffix);
    let s = Scratch::with_pipeline("import-dev", "");
    let conf = write_conf(&s.dir, &d);

    let out = import(&cloud, &s, &conf, "imp-dev");
    let err = stderr(&out);
    let text = std::fs::read_to_string(s.dir.join("imported.toml")).unwrap();
    // Field for field: the subnet as Neutron has it.
    let svc = show(&cloud, &["subnet"], &d.service_subnet);
    assert_eq!(svc["cidr"], "fd10:0:0:2::/108");
    for line in [
        "cidr = \"fd10:0:0:2::/108\"".to_string(),
        format!("gateway = {}", svc["gateway_ip"]),
        format!(
            "allocation_pools = [{{ start = {}, end = {} }}]",
            svc["allocation_pools"][0]["start"], svc["allocation_pools"][0]["end"]
        ),
        "enable_dhcp = false".into(),
        "remote_ip_prefix = \"fd00:aaaa::/64\"".into(),
        "port_range_min = 22".into(),
        "port_range_max = 22".into(),
    ] {
        assert!(text.contains(&line), "{line} missing:\n{text}");
    }
    // A comment and a warning for each deviation.
    for note in [
        "# deviation (W001): a /108 service subnet; the guide's is a /112",
        "# deviation (W002): allocation pools fd10::2:0:0:8:1-fd10::2:0:0:f:fffd; the guide's are fd10::2:0:0:8:0-fd10::2:0:0:f:fffd",
        "# deviation: rule `ingress IPv6 tcp from fd00:aaaa::/64 ports 22-22` is not one of the guide's",
    ] {
        assert!(text.contains(note), "{note} missing:\n{text}");
    }
    for w in ["warning[W001]", "warning[W002]"] {
        assert!(err.contains(w), "{w} missing:\n{err}");
    }
    assert!(
        !err.contains("warning[W004]"),
        "all access rules are there: {err}"
    );
    let check = cloud.kuryr6(&s.dir, &["check", "imported.toml"]);
    assert_ok(&check);
    assert!(
        stderr(&check).contains("service subnet `service_subnet-imp-dev` is a /108"),
        "{}",
        stderr(&check)
    );

    let plan = plan_json(&cloud, &s, &["--adopt"]);
    assert!(
        actions(&plan)
            .iter()
            .all(|a| *a == "adopt" || *a == "no_op"),
        "{plan}"
    );
    let rules = plan["changes"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["target"]["type"] == "rule")
        .count();
    assert_eq!(rules, 4, "the extra rule is in the plan: {plan}");
    assert_ok(&cloud.kuryr6(&s.dir, &["run", "imported.toml", "--adopt", "--out", "out"]));
    let again = cloud.kuryr6(&s.dir, &["plan", "imported.toml", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    let after = show(&cloud, &["subnet"], &d.service_subnet);
    assert_eq!(after["allocation_pools"], svc["allocation_pools"]);
    clean(&cloud, suffix);
}

/// Deletes load balancers named default/kubernetes on `subnet` (cascade).
fn clean_lbs(cloud: &LocalCloud, subnet: Option<&str>) {
    let Some(subnet) = subnet else { return };
    for lb in cloud
        .openstack(&["loadbalancer", "list", "--name", "default/kubernetes"])
        .as_array()
        .unwrap()
    {
        let id = lb["id"].as_str().unwrap();
        if show(cloud, &["loadbalancer"], id)["vip_subnet_id"] == subnet {
            cloud.openstack_ok(&["loadbalancer", "delete", "--cascade", "--wait", id]);
        }
    }
}

#[test]
fn a_hand_built_load_balancer_with_two_members_imports_and_is_adopted() {
    let _g = serial();
    let cloud = LocalCloud::get();
    let suffix = "-imp-lb";
    let old_subnet = cloud
        .openstack(&[
            "subnet",
            "list",
            "--name",
            &format!("service_subnet{suffix}"),
        ])
        .as_array()
        .unwrap()
        .first()
        .map(|s| s["ID"].as_str().unwrap().to_string());
    clean_lbs(&cloud, old_subnet.as_deref());
    clean(&cloud, suffix);
    let built = guide_cli(&cloud, &[suffix]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let d = deployed(&cloud, suffix);
    let lb = cloud.openstack(&[
        "loadbalancer",
        "create",
        "--name",
        "default/kubernetes",
        "--vip-subnet-id",
        &d.service_subnet,
        "--vip-address",
        "fd10:0:0:2::1",
        "--wait",
    ]);
    let lb_id = lb["id"].as_str().unwrap().to_string();
    let pool = cloud.openstack(&[
        "loadbalancer",
        "pool",
        "create",
        "--name",
        "default/kubernetes:HTTPS:443",
        "--loadbalancer",
        &lb_id,
        "--protocol",
        "HTTPS",
        "--lb-algorithm",
        "ROUND_ROBIN",
        "--wait",
    ]);
    let pool_id = pool["id"].as_str().unwrap().to_string();
    let listener = cloud.openstack(&[
        "loadbalancer",
        "listener",
        "create",
        "--name",
        "default/kubernetes:HTTPS:443",
        "--protocol",
        "HTTPS",
        "--protocol-port",
        "443",
        "--default-pool",
        &pool_id,
        "--wait",
        &lb_id,
    ]);
    let mut members = Vec::new();
    for (name, address) in [
        ("master-0", "fd10:0:0:3::10"),
        ("master-1", "fd10:0:0:3::11"),
    ] {
        let m = cloud.openstack(&[
            "loadbalancer",
            "member",
            "create",
            "--name",
            name,
            "--address",
            address,
            "--protocol-port",
            "6443",
            "--wait",
            &pool_id,
        ]);
        members.push(m["id"].as_str().unwrap().to_string());
    }
    let s = Scratch::with_pipeline("import-lb", "");
    let conf = write_conf(&s.dir, &d);
    let out = import(&cloud, &s, &conf, "imp-lb");
    let text = std::fs::read_to_string(s.dir.join("imported.toml")).unwrap();
    for line in [
        "{ name = \"master-0\", address = \"fd10:0:0:3::10\" },",
        "{ name = \"master-1\", address = \"fd10:0:0:3::11\" },",
        "vip = \"fd10:0:0:2::1\"",
        "algorithm = \"ROUND_ROBIN\"",
        "listener_port = 443",
        "member_port = 6443",
        "pool_name = \"default/kubernetes:HTTPS:443\"",
        "loadbalancer = \"default/kubernetes\"",
    ] {
        assert!(
            text.contains(line),
            "{line} missing:\n{text}\n{}",
            stderr(&out)
        );
    }

    let plan = plan_json(&cloud, &s, &["--adopt"]);
    assert_eq!(plan["refused"], false, "{plan}");
    let changes = plan["changes"]["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .all(|c| c["action"] == "adopt" || c["action"] == "no_op"),
        "not adoption only: {plan}"
    );
    let adopted: Vec<&str> = changes
        .iter()
        .filter(|c| c["action"] == "adopt")
        .map(|c| c["target"]["type"].as_str().unwrap())
        .collect();
    for t in ["loadbalancer", "pool", "listener", "member"] {
        assert!(adopted.contains(&t), "{t} not adopted: {adopted:?}");
    }
    assert_eq!(adopted.iter().filter(|t| **t == "member").count(), 2);

    run_adopting(&cloud, &s, 11);
    let tagged =
        |kind: &[&str], id: &str| holds(&show(&cloud, kind, id)["tags"], "kuryr6:pipeline=imp-lb");
    assert!(tagged(&["loadbalancer"], &lb_id));
    assert!(tagged(&["loadbalancer", "pool"], &pool_id));
    assert!(tagged(
        &["loadbalancer", "listener"],
        listener["id"].as_str().unwrap()
    ));
    for m in &members {
        let shown = cloud.openstack(&["loadbalancer", "member", "show", &pool_id, m]);
        assert!(holds(&shown["tags"], "kuryr6:pipeline=imp-lb"), "{shown}");
    }
    // Same objects: nothing was re-created.
    let now = cloud.openstack(&["loadbalancer", "member", "list", &pool_id]);
    let mut ids = strs_of(&now, "id");
    ids.sort();
    let mut want: Vec<&str> = members.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(ids, want);
    let again = cloud.kuryr6(&s.dir, &["plan", "imported.toml", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    clean_lbs(&cloud, Some(&d.service_subnet));
    clean(&cloud, suffix);
}

/// A dual-stack deployment made by hand with the CLI, as
/// examples/dual-stack lays it out (an IPv4 subnet beside each IPv6 one,
/// the router on all four, tcp/udp/sctp from both service ranges), plus a
/// hand-written kuryr.conf naming the IPv6 subnets (Kuryr reads one subnet
/// per role): import writes the dual-stack short form, plan shows adoption
/// only, `run --adopt` tags the eight resources, a second run is a no-op.
#[test]
fn a_hand_made_dual_stack_deployment_imports_as_the_short_form_and_is_adopted() {
    let _g = serial();
    let cloud = LocalCloud::get();
    let sfx = "-imp-ds";
    let n = |base: &str| format!("{base}{sfx}");
    let remove_leftovers = || {
        // A run that failed half-way may have left them, owned or not.
        for v in cloud
            .openstack(&["router", "list", "--name", &n("k8s")])
            .as_array()
            .unwrap()
        {
            let id = v["ID"].as_str().unwrap();
            for base in [
                "pod_subnet",
                "pod_subnet_v4",
                "service_subnet",
                "service_subnet_v4",
            ] {
                let _ = cloud.openstack_raw(&["router", "remove", "subnet", id, &n(base)], false);
            }
            cloud.openstack_ok(&["router", "delete", id]);
        }
        for base in ["pods", "services"] {
            for v in cloud
                .openstack(&["network", "list", "--name", &n(base)])
                .as_array()
                .unwrap()
            {
                cloud.openstack_ok(&["network", "delete", v["ID"].as_str().unwrap()]);
            }
        }
        for v in cloud
            .openstack(&["security", "group", "list"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["Name"] == n("access").as_str())
        {
            cloud.openstack_ok(&["security", "group", "delete", v["ID"].as_str().unwrap()]);
        }
    };
    remove_leftovers();

    for net in ["pods", "services"] {
        cloud.openstack(&["network", "create", &n(net)]);
    }
    let subnet = |name: &str, net: &str, cidr: &str, v: &str, gw: &str, pool: Option<&str>| {
        let (name, net) = (n(name), n(net));
        let mut args = vec![
            "subnet",
            "create",
            &name,
            "--network",
            &net,
            "--no-dhcp",
            "--subnet-range",
            cidr,
            "--ip-version",
            v,
            "--gateway",
            gw,
        ];
        if let Some(p) = pool {
            args.extend(["--allocation-pool", p]);
        }
        cloud.openstack(&args)["id"].as_str().unwrap().to_string()
    };
    let pod_subnet = subnet(
        "pod_subnet",
        "pods",
        "fd10:0:0:1::/64",
        "6",
        "fd10:0:0:1::1",
        None,
    );
    subnet(
        "pod_subnet_v4",
        "pods",
        "10.10.0.0/16",
        "4",
        "10.10.0.1",
        None,
    );
    let service_subnet = subnet(
        "service_subnet",
        "services",
        "fd10:0:0:2::/112",
        "6",
        "fd10:0:0:2::fffe",
        Some("start=fd10:0:0:2::8000,end=fd10:0:0:2::fffd"),
    );
    subnet(
        "service_subnet_v4",
        "services",
        "172.30.0.0/16",
        "4",
        "172.30.255.254",
        Some("start=172.30.128.0,end=172.30.255.253"),
    );
    cloud.openstack(&["router", "create", &n("k8s")]);
    for base in [
        "pod_subnet",
        "pod_subnet_v4",
        "service_subnet",
        "service_subnet_v4",
    ] {
        cloud.openstack_ok(&["router", "add", "subnet", &n("k8s"), &n(base)]);
    }
    let sg = cloud.openstack(&[
        "security",
        "group",
        "create",
        &n("access"),
        "--description",
        &n("access"),
    ]);
    let sg_id = sg["id"].as_str().unwrap().to_string();
    for (ethertype, prefix) in [("IPv6", "fd10:0:0:2::/112"), ("IPv4", "172.30.0.0/16")] {
        for proto in ["tcp", "udp", "sctp"] {
            cloud.openstack(&[
                "security",
                "group",
                "rule",
                "create",
                "--ingress",
                "--ethertype",
                ethertype,
                "--protocol",
                proto,
                "--remote-ip",
                prefix,
                &sg_id,
            ]);
        }
    }
    let project = show(&cloud, &["subnet"], &pod_subnet)["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = Scratch::with_pipeline("imp-ds", "");
    let conf = s.dir.join("kuryr.conf");
    std::fs::write(
        &conf,
        format!(
            "[neutron_defaults]\nproject = {project}\npod_subnet = {pod_subnet}\nservice_subnet = {service_subnet}\npod_security_groups = {sg_id}\n"
        ),
    )
    .unwrap();

    let out = import(&cloud, &s, &conf.display().to_string(), "imp-ds");
    let text = std::fs::read_to_string(s.dir.join("imported.toml")).unwrap();
    assert!(
        text.contains("pod_cidr = [\"fd10:0:0:1::/64\", \"10.10.0.0/16\"]")
            && text.contains("service_cidr = [\"fd10:0:0:2::/112\", \"172.30.0.0/16\"]"),
        "not the dual-stack short form:\n{text}"
    );
    assert!(
        text.contains("pod_subnet_v4 = \"pod_subnet_v4-imp-ds\"")
            && text.contains("service_subnet_v4 = \"service_subnet_v4-imp-ds\""),
        "{text}"
    );
    assert!(!stderr(&out).contains("warning["), "{}", stderr(&out));
    let check = cloud.kuryr6(&s.dir, &["check", "imported.toml"]);
    assert_ok(&check);

    // Adoption only: 2 networks, 4 subnets, the router, the group.
    let plan = plan_json(&cloud, &s, &["--adopt"]);
    assert_adoption_only(&plan, 8);
    run_adopting(&cloud, &s, 8);
    let emitted = std::fs::read_to_string(s.dir.join("out/kuryr.conf")).unwrap();
    assert_eq!(conf_value(&emitted, "pod_subnet"), pod_subnet);
    assert_eq!(conf_value(&emitted, "service_subnet"), service_subnet);
    let again = cloud.kuryr6(&s.dir, &["run", "imported.toml", "--out", "out"]);
    assert_ok(&again);
    assert!(stderr(&again).contains("No changes"), "{}", stderr(&again));

    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", "imported.toml"]));
    remove_leftovers();
}

/// The cloud whose routers are DVR unless their creator says otherwise
/// (`up.sh --routers dvr`, started by scripts/test.sh).
fn routers_cloud() -> LocalCloud {
    let dir = std::env::var("KURYR6_ROUTERS_CLOUD_DIR").unwrap_or_else(|_| {
        panic!("KURYR6_ROUTERS_CLOUD_DIR is not set: these tests need the local cloud started with `up.sh --routers dvr`; scripts/test.sh starts one")
    });
    let cloud = LocalCloud::at(Path::new(&dir));
    assert_eq!(
        cloud.env.get("KURYR6_ROUTERS").map(String::as_str),
        Some("dvr"),
        "{dir} was not started with --routers dvr"
    );
    cloud
}

/// The guide's deployment, built with its CLI commands on a router of the
/// kind `router_args` asks for (none: the cloud's default, DVR), is imported
/// with its router and both interfaces, adopted by tag writes alone,
/// re-run with nothing to do and destroyed clean. The interface owners are
/// asserted first, so a cloud that silently made legacy routers fails.
fn a_guide_deployment_on_routers_of_one_kind_is_imported(
    suffix: &str,
    router_args: &[&str],
    owner: &str,
    flag: &str,
) {
    let cloud = routers_cloud();
    clean(&cloud, suffix);
    let mut args: Vec<&str> = router_args
        .iter()
        .flat_map(|a| ["--router-arg", *a])
        .collect();
    args.push(suffix);
    let built = guide_cli(&cloud, &args);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let router = format!("k8s-ipv6{suffix}");
    let shown = show(&cloud, &["router"], &router);
    assert_eq!(shown[flag], true, "router {router} is not {flag}: {shown}");
    let owners = |cloud: &LocalCloud| -> Vec<String> {
        cloud
            .openstack(&["port", "list", "--router", &router, "--long"])
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Device Owner"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(owners(&cloud), [owner, owner], "interfaces of {router}");

    let d = deployed(&cloud, suffix);
    let s = Scratch::with_pipeline(&format!("routers{suffix}"), "");
    let conf = write_conf(&s.dir, &d);
    let pipeline = format!("routers{suffix}");
    import(&cloud, &s, &conf, &pipeline);
    let text = std::fs::read_to_string(s.dir.join("imported.toml")).unwrap();
    assert!(
        text.contains(&router),
        "the router was not imported:\n{text}"
    );
    let plan = plan_json(&cloud, &s, &["--adopt"]);
    assert_eq!(plan["refused"], false, "{plan}");
    // Both interfaces are seen as they are: adoption only, nothing made.
    assert_adoption_only(&plan, 6);
    run_adopting(&cloud, &s, 6);
    assert_writes_nothing(&cloud, &s.dir, &["run", "imported.toml", "--out", "out"]);
    let plan = cloud.kuryr6(&s.dir, &["plan", "imported.toml", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    assert_eq!(
        owners(&cloud),
        [owner, owner],
        "a re-run changed the interfaces"
    );

    let destroyed = cloud.kuryr6(&s.dir, &["destroy", "imported.toml"]);
    assert_ok(&destroyed);
    for (kind, name) in [
        (&["router"][..], router.clone()),
        (&["network"][..], format!("pods{suffix}")),
        (&["network"][..], format!("services{suffix}")),
    ] {
        let mut args = kind.to_vec();
        args.extend(["list", "--name", &name]);
        assert_eq!(cloud.openstack(&args), serde_json::json!([]), "{name} left");
    }
    clean(&cloud, suffix);
}

#[test]
fn a_guide_deployment_on_a_dvr_router_is_imported_adopted_and_destroyed() {
    a_guide_deployment_on_routers_of_one_kind_is_imported(
        "-dvr-e2e",
        &[],
        "network:router_interface_distributed",
        "distributed",
    );
}

#[test]
fn a_guide_deployment_on_an_l3_ha_router_is_imported_adopted_and_destroyed() {
    a_guide_deployment_on_routers_of_one_kind_is_imported(
        "-ha-e2e",
        &["--ha", "--centralized"],
        "network:ha_router_replicated_interface",
        "ha",
    );
}
