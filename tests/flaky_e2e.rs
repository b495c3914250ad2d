//! End-to-end on a cloud that fails concurrent writes: a second local cloud
//! whose Neutron runs 4 server threads on SQLite, so concurrent writes get
//! 500 "database is locked". Three create→destroy cycles of the seed (the
//! whole guide, API load balancer included) in a row must each finish in
//! one command, with exactly one of each resource after a run and nothing
//! left after a destroy.
//!
//! Start that cloud first (other ports than the main one), then point the
//! test at it:
//!
//! ```sh
//! KURYR6_CLOUD_DIR=/tmp/flaky KURYR6_NEUTRON_THREADS=4 KURYR6_KEYSTONE_PORT=5100 \
//!   KURYR6_NEUTRON_PORT=9796 KURYR6_OCTAVIA_PORT=9976 bash scripts/cloud/up.sh \
//!   --with-octavia
//! KURYR6_FLAKY_CLOUD_DIR=/tmp/flaky cargo test -p kuryr6 --features cloud-tests --test flaky_e2e
//! KURYR6_CLOUD_DIR=/tmp/flaky bash scripts/cloud/down.sh
//! ```

#[path = "support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::PathBuf;
use support::*;

const SEED: &str = include_str!("../examples/seed-ipv6/pipeline.toml");
const CYCLES: usize = 3;

fn flaky_cloud() -> (LocalCloud, PathBuf) {
    let dir = std::env::var("KURYR6_FLAKY_CLOUD_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        panic!(
            "KURYR6_FLAKY_CLOUD_DIR is not set: this test needs a second local cloud whose Neutron \
             runs 4 threads. Start one with `KURYR6_CLOUD_DIR=/tmp/flaky KURYR6_NEUTRON_THREADS=4 \
             KURYR6_KEYSTONE_PORT=5100 KURYR6_NEUTRON_PORT=9796 KURYR6_OCTAVIA_PORT=9976 bash \
             scripts/cloud/up.sh --with-octavia`, then run with KURYR6_FLAKY_CLOUD_DIR=/tmp/flaky \
             (stop it with `KURYR6_CLOUD_DIR=/tmp/flaky bash scripts/cloud/down.sh`)"
        )
    });
    // A one-thread Neutron never fails concurrent writes: the test would
    // prove nothing there.
    let recorded = dir.join("pids/neutron.threads");
    let threads = std::fs::read_to_string(&recorded).unwrap_or_default();
    assert!(
        threads.trim().parse::<u32>().is_ok_and(|n| n > 1),
        "the Neutron server of {} runs {:?} threads ({}; empty: not recorded by up.sh); restart it with KURYR6_NEUTRON_THREADS=4",
        dir.display(),
        threads.trim(),
        recorded.display()
    );
    (LocalCloud::at(&dir), dir)
}

/// The 500s the Neutron server answered so far, from its access log
/// (`scripts/cloud/up.sh`: tab-separated, the status third).
fn access_log_500s(dir: &std::path::Path) -> usize {
    let log = std::fs::read_to_string(dir.join("logs/neutron-access.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.split('\t').nth(2) == Some("500"))
        .count()
}

/// The Neutron server's 500s so far, from its log: each is logged once,
/// with its request id, as "<action> failed: …" by the API resource layer
/// or "<METHOD> failed.: …" by the pecan hook (client errors are INFO
/// "failed (client error)"; traceback lines carry no request id).
fn server_500s(dir: &std::path::Path) -> usize {
    let log = std::fs::read_to_string(dir.join("logs/neutron.log")).unwrap_or_default();
    log.lines()
        .filter(|l| {
            [
                " ERROR neutron.api.v2.resource [",
                " ERROR neutron.pecan_wsgi.hooks.translation [",
            ]
            .iter()
            .any(|logger| {
                l.split_once(logger).is_some_and(|(_, rest)| {
                    (rest.starts_with("None req-") || rest.starts_with("req-"))
                        && rest.contains(" failed")
                })
            })
        })
        .count()
}

fn list(cloud: &LocalCloud, what: &[&str]) -> Vec<Value> {
    cloud.openstack(what).as_array().unwrap().clone()
}

fn tagged(cloud: &LocalCloud, what: &[&str], tag: &str) -> Vec<Value> {
    let mut args = what.to_vec();
    args.extend(["--tags", tag]);
    list(cloud, &args)
}

fn names(list: &[Value]) -> Vec<String> {
    sorted(
        list.iter()
            .map(|x| x["Name"].as_str().unwrap_or_default().to_string())
            .collect(),
    )
}

/// After a run: exactly one of each resource, tagged, and no untagged
/// same-named twin (the cloud is this test's own).
fn assert_exactly_once(cloud: &LocalCloud, tag: &str, context: &str) {
    for (what, want) in [
        (&["network", "list"][..], &["pods", "services"][..]),
        (&["subnet", "list"], &["pod_subnet", "service_subnet"]),
        (&["router", "list"], &["k8s-ipv6"]),
        (&["security", "group", "list"], &["service_pod_access_v6"]),
    ] {
        assert_eq!(
            names(&tagged(cloud, what, tag)),
            want,
            "{context}: {what:?} tagged"
        );
        let all: Vec<String> = names(&list(cloud, what))
            .into_iter()
            .filter(|n| want.contains(&n.as_str()))
            .collect();
        assert_eq!(all, want, "{context}: {what:?} by name (a duplicate?)");
    }
    let sg = &tagged(cloud, &["security", "group", "list"], tag)[0];
    let rules = list(
        cloud,
        &[
            "security",
            "group",
            "rule",
            "list",
            "--ingress",
            sg["ID"].as_str().unwrap(),
        ],
    );
    let mut protocols: Vec<String> = rules
        .iter()
        .map(|r| r["IP Protocol"].as_str().unwrap_or("any").to_string())
        .collect();
    protocols.sort();
    assert_eq!(
        protocols,
        ["sctp", "tcp", "udp"],
        "{context}: ingress rules {rules:?}"
    );
    let router = &tagged(cloud, &["router", "list"], tag)[0];
    let ports = list(
        cloud,
        &["port", "list", "--router", router["ID"].as_str().unwrap()],
    );
    let subnets = tagged(cloud, &["subnet", "list"], tag);
    for s in &subnets {
        let id = s["ID"].as_str().unwrap();
        let n = ports
            .iter()
            .filter(|p| p["Fixed IP Addresses"].to_string().contains(id))
            .count();
        assert_eq!(
            n, 1,
            "{context}: router ports on subnet {}: {ports:?}",
            s["Name"]
        );
    }
    // The API load balancer, ACTIVE, with both API hosts.
    let lbs = tagged(cloud, &["loadbalancer", "list"], tag);
    assert_eq!(lbs.len(), 1, "{context}: load balancers {lbs:?}");
    assert_eq!(lbs[0]["provisioning_status"], "ACTIVE", "{context}");
    let pools = list(
        cloud,
        &[
            "loadbalancer",
            "pool",
            "list",
            "--loadbalancer",
            lbs[0]["id"].as_str().unwrap(),
        ],
    );
    assert_eq!(pools.len(), 1, "{context}: pools {pools:?}");
    let members = list(
        cloud,
        &[
            "loadbalancer",
            "member",
            "list",
            pools[0]["id"].as_str().unwrap(),
        ],
    );
    let mut addresses: Vec<&str> = members
        .iter()
        .map(|m| m["address"].as_str().unwrap_or_default())
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        ["fd10:0:0:3::10", "fd10:0:0:3::11"],
        "{context}: members"
    );
}

fn assert_nothing_left(cloud: &LocalCloud, tag: &str, context: &str) {
    for what in [
        &["network", "list"][..],
        &["subnet", "list"],
        &["router", "list"],
        &["security", "group", "list"],
        &["loadbalancer", "list"],
    ] {
        assert!(
            tagged(cloud, what, tag).is_empty(),
            "{context}: {what:?} still tagged"
        );
    }
    // Nor an untagged create that carries only the marker.
    let nets = names(&list(cloud, &["network", "list"]));
    assert!(
        !nets.iter().any(|n| n == "pods" || n == "services"),
        "{context}: networks left {nets:?}"
    );
}

/// Runs kuryr6 with debug logs; returns the client-side count of 500s.
fn one_command(cloud: &LocalCloud, s: &Scratch, verb: &str, context: &str) -> usize {
    let out = cloud.kuryr6(&s.dir, &["-vv", verb, &s.pipeline()]);
    assert_ok(&out);
    let log = strip_ansi(&stderr(&out));
    let answers: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("openstack request") && l.contains("status=500"))
        .collect();
    let writes = answers.iter().filter(|l| l.contains("method=POST")).count();
    eprintln!(
        "{context}: `kuryr6 {verb}` exit 0; the client saw {} answers of 500 ({writes} on POSTs, recovered by read-back)",
        answers.len()
    );
    answers.len()
}

/// The log without terminal colour codes (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn three_create_destroy_cycles_on_a_cloud_that_answers_500() {
    let (cloud, dir) = flaky_cloud();
    let name = format!("flaky-{}", std::process::id());
    let tag = format!("kuryr6:pipeline={name}");
    let text = SEED.replace("name = \"seed-ipv6\"", &format!("name = \"{name}\""));
    assert!(text.contains(&name), "the seed names its pipeline");
    let s = Scratch::with_pipeline(&name, &text);
    let before = server_500s(&dir);
    let mut client_500s = 0;
    for cycle in 1..=CYCLES {
        let ctx = format!("cycle {cycle}");
        let answered = access_log_500s(&dir);
        client_500s += one_command(&cloud, &s, "run", &ctx);
        assert_exactly_once(&cloud, &tag, &format!("{ctx} after run"));
        client_500s += one_command(&cloud, &s, "destroy", &ctx);
        assert_nothing_left(&cloud, &tag, &format!("{ctx} after destroy"));
        // The fault happened: the cycle met at least one 500.
        let met = access_log_500s(&dir) - answered;
        assert!(
            met >= 1,
            "{ctx}: Neutron answered no 500 in this cycle: the test proved nothing"
        );
    }
    let server = server_500s(&dir) - before;
    eprintln!(
        "{CYCLES} cycles: the server logged {server} internal errors (500), the client saw {client_500s}; no duplicate, nothing left"
    );
}
