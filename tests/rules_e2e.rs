//! End-to-end: every security-group rule form `kuryr6 check` accepts, run
//! against the real Neutron of `scripts/cloud/up.sh`: a run, then
//! `plan --detailed-exitcode` exits 0 (3 = changes pending), and what Neutron stored (read with
//! the real `openstack` CLI) is Neutron's canonical form of each rule.
//! Then remote-group rules made by hand: kuryr6's own leftover goes, a
//! hand-made one stays, and the plan converges again. One pipeline
//! (`rules-e2e`) with many rules keeps this fast.

#[path = "support/mod.rs"]
mod support;

use serde_json::Value;
use support::*;

const EVERY_FORM: &str = include_str!("fixtures/rules-every-form.toml");
const TAG: &str = "kuryr6:pipeline=rules-e2e";

/// (direction, ethertype, protocol, port_range_min, port_range_max,
/// remote_ip_prefix) as Neutron 29 stores the fixture's rules ("-" = null),
/// in the fixture's order; the two default egress rules last.
const STORED: [(&str, &str, &str, &str, &str, &str); 27] = [
    ("ingress", "IPv6", "tcp", "-", "-", "-"),
    ("ingress", "IPv6", "udp", "-", "-", "::/0"),
    ("ingress", "IPv6", "sctp", "-", "-", "fd10:0:0:2::/112"),
    ("ingress", "IPv6", "ipv6-icmp", "-", "-", "-"),
    ("ingress", "IPv6", "ipv6-icmp", "-", "-", "fd10:0:0:9::/64"),
    ("ingress", "IPv6", "ipv6-icmp", "-", "-", "fd10:0:0:8::/64"),
    ("ingress", "IPv6", "-", "-", "-", "fd10:0:0:7::/64"),
    ("ingress", "IPv6", "-", "-", "-", "fd10:0:0:6::/64"),
    ("ingress", "IPv6", "ah", "-", "-", "-"),
    ("ingress", "IPv6", "58", "-", "-", "fd10:0:0:5::/64"),
    ("ingress", "IPv6", "58", "-", "-", "fd10:0:0:4::/64"),
    ("ingress", "IPv6", "6", "-", "-", "fd10:0:0:3::/64"),
    ("ingress", "IPv6", "0", "-", "-", "-"),
    ("ingress", "IPv6", "255", "-", "-", "-"),
    ("ingress", "IPv6", "tcp", "-", "-", "fd10:0:0:a::/64"),
    ("ingress", "IPv6", "tcp", "443", "443", "-"),
    ("ingress", "IPv6", "udp", "1000", "2000", "::/0"),
    (
        "ingress",
        "IPv6",
        "sctp",
        "3868",
        "3868",
        "fd10:0:0:2::/112",
    ),
    ("egress", "IPv6", "tcp", "53", "53", "-"),
    ("ingress", "IPv4", "tcp", "-", "-", "-"),
    ("ingress", "IPv4", "icmp", "-", "-", "0.0.0.0/0"),
    ("ingress", "IPv4", "1", "-", "-", "10.0.0.0/8"),
    ("ingress", "IPv4", "udp", "53", "53", "192.0.2.0/24"),
    ("ingress", "IPv4", "17", "-", "-", "198.51.100.0/24"),
    ("ingress", "IPv4", "ah", "-", "-", "203.0.113.0/24"),
    // Neutron's default egress rules; the fixture's two rules that say the
    // same thing (with ::/0, 0.0.0.0/0 and `any`) are these.
    ("egress", "IPv6", "-", "-", "-", "-"),
    ("egress", "IPv4", "-", "-", "-", "-"),
];

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

type Stored = (String, String, String, String, String, String);

fn sorted(mut v: Vec<Stored>) -> Vec<Stored> {
    v.sort();
    v
}

fn expected() -> Vec<Stored> {
    sorted(
        STORED
            .iter()
            .map(|(d, e, p, lo, hi, r)| {
                (
                    d.to_string(),
                    e.to_string(),
                    p.to_string(),
                    lo.to_string(),
                    hi.to_string(),
                    r.to_string(),
                )
            })
            .collect(),
    )
}

fn group_id(cloud: &LocalCloud) -> String {
    let list = cloud.openstack(&["security", "group", "list", "--tags", TAG]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    list[0]["ID"].as_str().unwrap().to_string()
}

/// The group's rules as Neutron stores them (`security group show` gives
/// the API's fields unchanged).
fn stored_rules(cloud: &LocalCloud, sg: &str) -> Vec<Value> {
    let shown = cloud.openstack(&["security", "group", "show", sg]);
    shown["rules"].as_array().unwrap().clone()
}

fn stored(rules: &[Value]) -> Vec<Stored> {
    sorted(
        rules
            .iter()
            .filter(|r| r["remote_group_id"].is_null() && r["remote_address_group_id"].is_null())
            .map(|r| {
                (
                    text(&r["direction"]),
                    text(&r["ethertype"]),
                    text(&r["protocol"]),
                    text(&r["port_range_min"]),
                    text(&r["port_range_max"]),
                    text(&r["remote_ip_prefix"]),
                )
            })
            .collect(),
    )
}

#[track_caller]
fn assert_plan_exit(cloud: &LocalCloud, s: &Scratch, code: i32) -> String {
    let plan = cloud.kuryr6(&s.dir, &["plan", &s.pipeline(), "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(code),
        "{}{}",
        stdout(&plan),
        stderr(&plan)
    );
    stdout(&plan)
}

#[test]
fn every_rule_form_check_accepts_converges_on_neutron() {
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("rules", EVERY_FORM);
    assert_ok(&cloud.kuryr6(&s.dir, &["check", &s.pipeline()]));
    // A leftover of an earlier, interrupted run of this test goes first.
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));

    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    let plan = assert_plan_exit(&cloud, &s, 0);
    assert!(plan.contains("No changes"), "{plan}");

    let sg = group_id(&cloud);
    let rules = stored_rules(&cloud, &sg);
    assert_eq!(stored(&rules), expected());
    // Every rule but Neutron's two defaults carries kuryr6's marker.
    let marked = rules.iter().filter(|r| r["description"] == TAG).count();
    assert_eq!(marked, 25);
    // The same through `security group rule list`, as an operator reads it.
    let listed = cloud.openstack(&["security", "group", "rule", "list", &sg]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 27, "{listed:?}");
    for proto in ["icmp", "icmpv6"] {
        assert!(
            !listed
                .iter()
                .any(|r| r["Ethertype"] == "IPv6" && r["IP Protocol"] == proto),
            "IPv6 {proto} is stored as ipv6-icmp: {listed:?}"
        );
    }
    let icmp6 = listed
        .iter()
        .filter(|r| r["Ethertype"] == "IPv6" && r["IP Protocol"] == "ipv6-icmp")
        .count();
    assert_eq!(icmp6, 3, "{listed:?}");

    // A second run writes nothing.
    let again = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_ok(&again);
    assert!(stderr(&again).contains("No changes"), "{}", stderr(&again));

    // Remote-group rules are other rules to Neutron, even with the same
    // protocol as a pipeline rule: kuryr6's own (its marker) is deleted,
    // a hand-made one stays.
    let remote_group_rule = |protocol: &str, description: &[&str]| {
        let mut args = vec!["security", "group", "rule", "create", &sg, "--ingress"];
        args.extend([
            "--ethertype",
            "IPv6",
            "--protocol",
            protocol,
            "--remote-group",
            &sg,
        ]);
        args.extend(description);
        cloud.openstack(&args)
    };
    let ours = remote_group_rule("tcp", &["--description", TAG]);
    let hand = remote_group_rule("udp", &[]);
    let plan = assert_plan_exit(&cloud, &s, 3);
    assert!(
        plan.contains("0 to create") && plan.contains("1 to delete"),
        "{plan}"
    );
    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    assert_plan_exit(&cloud, &s, 0);
    let ids: Vec<Value> = stored_rules(&cloud, &sg)
        .into_iter()
        .map(|r| r["id"].clone())
        .collect();
    assert!(
        !ids.contains(&ours["id"]),
        "kuryr6's remote-group rule is gone"
    );
    assert!(
        ids.contains(&hand["id"]),
        "the hand-made remote-group rule stays"
    );

    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    let left = cloud.openstack(&["security", "group", "list", "--tags", TAG]);
    assert_eq!(left.as_array().unwrap().len(), 0, "{left}");
}
