//! The fake's calibration: one sequence of Neutron calls against the real
//! local cloud of `scripts/cloud/up.sh` and against `FakeCloud`, and the
//! outcomes (what Neutron stored, or which error) must be the same. Runs
//! with the `cloud-tests` feature (`scripts/test.sh`); only ever talks to
//! the 127.0.0.1 endpoints of that cloud's clouds.yaml.
//!
//! Octavia's behaviour is proved end to end by `tests/lb_e2e.rs`.

use super::*;
use crate::cloud::config::{Auth, Secret};
use crate::cloud::fake::FakeCloud;
use crate::cloud::{Cloud, Kind};
use serde_json::{Value, json};
use std::path::PathBuf;

fn state_dir() -> PathBuf {
    std::env::var_os("KURYR6_CLOUD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.cloud")))
}

/// An outcome without ids: the error class, or the fields asked for.
fn outcome(r: &Result<Value, CloudError>, fields: &[&str]) -> String {
    match r {
        Ok(v) => fields
            .iter()
            .map(|f| format!("{f}={}", v[*f]))
            .collect::<Vec<_>>()
            .join(" "),
        Err(CloudError::Rejected { status, .. }) => format!("rejected {status}"),
        Err(CloudError::Conflict { .. }) => "conflict 409".into(),
        Err(CloudError::NotFound { .. }) => "not found 404".into(),
        Err(CloudError::Unavailable(m)) if m.contains(" 500") => "server error 500".into(),
        Err(e) => format!("other error: {e}"),
    }
}

fn unit(r: Result<(), CloudError>) -> Result<Value, CloudError> {
    r.map(|_| Value::Null)
}

/// Runs the calls on `c`; returns (call, outcome) in order. `n` keeps
/// names apart from anything else on the cloud.
async fn probe<C: Cloud>(c: &C, n: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut note = |what: &str, o: String| out.push((what.to_string(), o));
    let id = |v: &Value| v["id"].as_str().unwrap_or_default().to_owned();

    let net = c
        .create(&Kind::Network, json!({ "name": format!("{n}-a") }))
        .await;
    note(
        "create network",
        outcome(&net, &["revision_number", "status", "admin_state_up"]),
    );
    let net = id(&net.unwrap());
    let r = c
        .update(&Kind::Network, &net, json!({"description": "x"}))
        .await;
    note(
        "update network",
        outcome(&r, &["revision_number", "description"]),
    );
    let r = c
        .update(&Kind::Network, &net, json!({"status": "DOWN"}))
        .await;
    note("update read-only status", outcome(&r, &[]));
    let r = c
        .create(
            &Kind::Network,
            json!({"name": format!("{n}-x"), "bogus": 1}),
        )
        .await;
    note("create with unknown attribute", outcome(&r, &[]));
    let r = c
        .list(&Kind::Network, &vec![("bogus_field".into(), "x".into())])
        .await
        .map(|v| json!(v.len()));
    note("unknown filter field", outcome(&r, &[]));

    let subnet = c
        .create(
            &Kind::Subnet,
            json!({"name": format!("{n}-s1"), "network_id": net, "ip_version": 6,
                   "cidr": "fd10:0:0:1::/64", "enable_dhcp": false, "gateway_ip": "fd10:0:0:1::1",
                   "allocation_pools": [{"start": "fd10:0:0:1::2", "end": "fd10:0:0:1:ffff:ffff:ffff:ffff"}]}),
        )
        .await;
    note(
        "create subnet",
        outcome(
            &subnet,
            &["cidr", "gateway_ip", "allocation_pools", "revision_number"],
        ),
    );
    let subnet = id(&subnet.unwrap());
    let r = c
        .create(
            &Kind::Subnet,
            json!({"network_id": net, "ip_version": 6, "cidr": "fd10:0:0:3::/112",
                   "gateway_ip": "fd10:0:0:3::8001",
                   "allocation_pools": [{"start": "fd10:0:0:3::8000", "end": "fd10:0:0:3::fffd"}]}),
        )
        .await;
    note("subnet gateway inside pool", outcome(&r, &[]));
    let r = c
        .create(
            &Kind::Subnet,
            json!({"network_id": net, "ip_version": 6, "cidr": "fd10:0:0:4::/64", "enable_dhcp": false}),
        )
        .await;
    note(
        "subnet defaults",
        outcome(&r, &["gateway_ip", "allocation_pools"]),
    );
    let r = c
        .create(
            &Kind::Subnet,
            json!({"network_id": net, "cidr": "fd10:0:0:6::/64"}),
        )
        .await;
    note("subnet without ip_version", outcome(&r, &[]));

    let router = c
        .create(&Kind::Router, json!({ "name": format!("{n}-r") }))
        .await;
    note("create router", outcome(&router, &["status", "routes"]));
    let router = id(&router.unwrap());
    let r = unit(c.router_interface(&router, &subnet, true).await);
    note("add interface", outcome(&r, &[]));
    let r = unit(c.router_interface(&router, &subnet, true).await);
    note("add interface twice", outcome(&r, &[]));
    let ports = c
        .list(&Kind::Port, &vec![("device_id".into(), router.clone())])
        .await
        .unwrap();
    let owners: Vec<&Value> = ports.iter().map(|p| &p["device_owner"]).collect();
    note("router ports by device_id", format!("{owners:?}"));
    let r = unit(c.delete(&Kind::Network, &net).await);
    note("delete network in use", outcome(&r, &[]));
    let r = unit(c.delete(&Kind::Subnet, &subnet).await);
    note("delete subnet in use", outcome(&r, &[]));
    let r = unit(c.delete(&Kind::Router, &router).await);
    note("delete router with interface", outcome(&r, &[]));
    let r = unit(c.delete(&Kind::Port, &id(&ports[0])).await);
    note("delete interface port directly", outcome(&r, &[]));
    let r = unit(c.router_interface(&router, &subnet, false).await);
    note("remove interface", outcome(&r, &[]));
    let r = unit(c.router_interface(&router, &subnet, false).await);
    note("remove interface again", outcome(&r, &[]));

    let sg = c
        .create(&Kind::SecurityGroup, json!({ "name": format!("{n}-sg") }))
        .await
        .unwrap();
    let mut defaults: Vec<String> = sg["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            outcome(
                &Ok(r.clone()),
                &["direction", "ethertype", "protocol", "remote_ip_prefix"],
            )
        })
        .collect();
    defaults.sort();
    note("default rules", defaults.join("; "));
    let sg = id(&sg);
    let rules = [
        json!({"protocol": "icmp"}),
        json!({"protocol": "1", "remote_ip_prefix": "fd01::/64"}),
        json!({"protocol": "icmpv6", "remote_ip_prefix": "fd02::/64"}),
        json!({"protocol": "TCP"}),
        json!({"protocol": 17}),
        json!({"protocol": "06"}),
        json!({"protocol": "any", "remote_ip_prefix": "fd03::/64"}),
        json!({"protocol": "0", "remote_ip_prefix": "fd03::/64"}),
        json!({"ethertype": "ipv4", "protocol": "icmp"}),
        json!({"protocol": "sctp", "port_range_min": 1, "port_range_max": 65535}),
        json!({"protocol": "sctp", "port_range_min": "80", "port_range_max": 80}),
        json!({"ethertype": "IPv4", "remote_ip_prefix": "10.0.0.5"}),
        json!({"ethertype": "IPv4", "remote_ip_prefix": "10.0.1.5/24"}),
        json!({"ethertype": "IPv4", "remote_ip_prefix": "10.0.1.0/24"}),
        json!({"protocol": "6"}),
        json!({"protocol": "tcp", "remote_ip_prefix": "::/0"}),
        json!({"protocol": "ipv6-icmp"}),
        json!({"direction": "egress", "remote_ip_prefix": "::/0"}),
        json!({"ethertype": "IPv4", "protocol": "icmpv6"}),
        json!({"ethertype": "IPv4", "protocol": "58"}),
        json!({"protocol": "tcp", "port_range_min": 443}),
        json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 80}),
        json!({"protocol": "icmp", "port_range_max": 0}),
        json!({"protocol": "icmp", "port_range_min": 256, "remote_ip_prefix": "fd04::/64"}),
        json!({"protocol": "icmp", "port_range_min": 128, "port_range_max": 0, "remote_ip_prefix": "fd04::/64"}),
        json!({"protocol": "ah", "port_range_min": 1, "port_range_max": 2}),
        json!({"port_range_min": 1, "port_range_max": 2}),
        json!({"protocol": "tcpp"}),
        json!({"protocol": "256"}),
        json!({"protocol": "ah", "remote_group_id": sg}),
        json!({"protocol": "ah", "remote_group_id": sg, "remote_ip_prefix": "fd05::/64"}),
    ];
    for extra in rules {
        let mut body =
            json!({"security_group_id": sg, "direction": "ingress", "ethertype": "IPv6"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = c.create(&Kind::SecurityGroupRule, body).await;
        let shown = extra.to_string().replace(&sg, "<sg>");
        note(
            &format!("rule {shown}"),
            outcome(
                &r,
                &[
                    "ethertype",
                    "protocol",
                    "port_range_min",
                    "port_range_max",
                    "remote_ip_prefix",
                    "normalized_cidr",
                ],
            ),
        );
    }

    // Clean up in dependency order; deleting again is fine.
    for (kind, id) in [
        (Kind::SecurityGroup, &sg),
        (Kind::Router, &router),
        (Kind::Network, &net),
        (Kind::Network, &net),
    ] {
        c.delete(&kind, id).await.unwrap();
    }
    let r = c.get(&Kind::Network, &net).await;
    note("get deleted network", outcome(&r, &[]));
    out
}

#[tokio::test]
async fn the_fake_answers_as_the_local_neutron_does() {
    let dir = state_dir();
    let Some(os) = OpenStack::local(&dir).await.unwrap() else {
        panic!(
            "no clouds.yaml in {}: run scripts/cloud/up.sh",
            dir.display()
        );
    };
    for url in os.current().endpoints.values() {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "refusing non-loopback endpoint {url}"
        );
    }
    let n = format!("kuryr6-calib-{:08x}", fastrand::u32(..));
    let real = probe(&os, &n).await;
    let fake = probe(&FakeCloud::new(), &n).await;
    assert_eq!(real.len(), fake.len());
    let differ: Vec<String> = real
        .iter()
        .zip(&fake)
        .filter(|(r, f)| r != f)
        .map(|(r, f)| format!("{}:\n  neutron: {}\n  fake:    {}", r.0, r.1, f.1))
        .collect();
    assert!(
        differ.is_empty(),
        "the fake differs from Neutron:\n{}",
        differ.join("\n")
    );

    // Wrong password: an Auth error that does not contain it.
    let mut cfg = os.config().clone();
    let wrong = "Wr0ng-Pa55-kuryr6";
    if let Auth::Password { password, .. } = &mut cfg.auth {
        *password = Secret::new(wrong);
    }
    let err = match OpenStack::connect(&cfg, ConnectOptions::default()).await {
        Err(e) => e,
        Ok(_) => panic!("a wrong password logged in"),
    };
    assert!(matches!(err, CloudError::Auth(_)), "{err}");
    assert!(!format!("{err} {err:?}").contains(wrong));
}
