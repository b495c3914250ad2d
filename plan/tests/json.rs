//! The plan's JSON form, on both sides of the plugin boundary: the host
//! refuses what it does not know, the SDK carries it through.

use kuryr6_plan::{Extra, Plan, Step, StepKind, Strict};
use serde_json::{Value, json};

fn seed() -> Value {
    json!({
        "pipeline": "seed",
        "kubernetes": {"version": "1.33", "multi_cidr_service_allocator": false,
                        "api_hosts": [{"name": "m1", "address": "fd10:0:0:1::10"}]},
        "steps": [
            {"kind": "network", "name": "pod_network"},
            {"kind": "subnet", "name": "pod_subnet", "network": "pod_network", "role": "pod",
             "cidr": "fd10:0:0:1::/64", "ip_version": 6, "enable_dhcp": false,
             "gateway_ip": "fd10:0:0:1::1",
             "allocation_pools": [{"start": "fd10:0:0:1::2", "end": "fd10::1:ffff:ffff:ffff:ffff"}]},
            {"kind": "subnet", "name": "service_subnet", "network": "pod_network", "role": "service",
             "cidr": "fd10:0:0:2::/112", "ip_version": 6, "enable_dhcp": false,
             "gateway_ip": "fd10:0:0:2::fffe",
             "allocation_pools": [{"start": "fd10:0:0:2::8000", "end": "fd10:0:0:2::fffd"}]},
            {"kind": "router", "name": "router", "interfaces": ["pod_subnet", "service_subnet"]},
            {"kind": "security_group", "name": "sg", "description": "sg", "rules": [
                {"direction": "ingress", "ethertype": "IPv6", "protocol": "tcp",
                 "remote_ip_prefix": "fd10:0:0:2::/113", "port_range_min": null, "port_range_max": null}]},
            {"kind": "loadbalancer", "name": "default/kubernetes", "subnet": "service_subnet",
             "vip": "fd10:0:0:2::1", "algorithm": "ROUND_ROBIN", "listener_port": 443,
             "member_port": 6443, "pool_name": "default/kubernetes:HTTPS:443",
             "members": [{"name": "m1", "address": "fd10:0:0:1::10"}]},
            {"kind": "emit", "name": "emit", "dir": "out", "pod_subnet": "pod_subnet",
             "service_subnet": "service_subnet", "security_groups": ["sg"], "ovs_bridge": "br-int",
             "member_mode": "L3", "resource_tags": [], "loadbalancer": "default/kubernetes"}
        ]
    })
}

/// Why the host side (`Strict`) refuses the plan `json`.
fn strict_error(json: &Value) -> String {
    Plan::<Strict>::from_json(&json.to_string()).unwrap_err()
}

#[test]
fn both_sides_write_back_exactly_what_they_read() {
    let strict: Plan<Strict> = serde_json::from_value(seed()).unwrap();
    assert_eq!(serde_json::to_value(&strict).unwrap(), seed());
    let lenient: Plan<Extra> = serde_json::from_value(seed()).unwrap();
    assert!(lenient.extra.is_empty());
    assert_eq!(serde_json::to_value(&lenient).unwrap(), seed());
    let kinds: Vec<StepKind> = strict.steps.iter().map(Step::kind).collect();
    assert_eq!(kinds.len(), 7);
    assert_eq!(kinds[4], "security_group");
    assert_eq!(
        strict
            .service_ranges()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["fd10:0:0:2::/113"]
    );
}

#[test]
fn the_sdk_side_carries_unknown_fields_through() {
    let mut json = seed();
    json["steps"][1]["dns_nameservers"] = json!(["fd10::53"]);
    json["steps"][1]["allocation_pools"][0]["note"] = json!("kept");
    json["future"] = json!({"x": 1});
    let plan = Plan::<Extra>::from_json(&json.to_string()).unwrap();
    assert_eq!(plan.extra["future"], json!({"x": 1}));
    assert_eq!(
        serde_json::from_str::<Value>(&plan.to_json()).unwrap(),
        json
    );
}

#[test]
fn the_host_side_refuses_unknown_fields_by_name() {
    for (path, field) in [
        (None, "future"),
        (Some(1), "dns_nameservers"),
        (Some(3), "distributed"),
    ] {
        let mut json = seed();
        match path {
            None => json[field] = json!(1),
            Some(i) => json["steps"][i][field] = json!(true),
        }
        let err = strict_error(&json);
        assert!(err.contains(&format!("unknown field `{field}`")), "{err}");
    }
    // Nested: a pool and a rule.
    let mut json = seed();
    json["steps"][2]["allocation_pools"][0]["x"] = json!(1);
    assert!(strict_error(&json).contains("`x`"));
    let mut json = seed();
    json["steps"][4]["rules"][0]["y"] = json!(1);
    assert!(strict_error(&json).contains("`y`"));
}

#[test]
fn unknown_step_kinds_and_missing_fields_fail_on_both_sides() {
    let mut json = seed();
    json["steps"][0]["kind"] = json!("floating_ip");
    assert!(Plan::<Strict>::from_json(&json.to_string()).is_err());
    assert!(Plan::<Extra>::from_json(&json.to_string()).is_err());
    let mut json = seed();
    json["steps"][1].as_object_mut().unwrap().remove("cidr");
    let err = Plan::<Extra>::from_json(&json.to_string()).unwrap_err();
    assert!(err.contains("cidr"));
}

#[test]
fn relayout_follows_the_role() {
    let mut plan = Plan::<Extra>::from_json(&seed().to_string()).unwrap();
    let svc = plan.subnets_mut().nth(1).unwrap();
    svc.relayout("fd12:3456:789a:22::/112".parse().unwrap())
        .unwrap();
    assert_eq!(svc.gateway_ip.to_string(), "fd12:3456:789a:22::fffe");
    assert_eq!(
        svc.allocation_pools[0].start.to_string(),
        "fd12:3456:789a:22::8000"
    );
    assert!(svc.relayout("fd10::/127".parse().unwrap()).is_err());
    let pod = plan.subnets_mut().next().unwrap();
    pod.relayout("10.1.0.0/16".parse().unwrap()).unwrap();
    assert_eq!(
        (pod.ip_version, pod.allocation_pools[0].end.to_string()),
        (4, "10.1.255.254".into())
    );
}
