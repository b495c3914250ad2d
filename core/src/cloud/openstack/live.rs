//! Against the real local cloud of `scripts/cloud/up.sh`. Ignored by
//! default; run with
//! `KURYR6_CLOUD_DIR=… cargo test -p kuryr6 --lib live -- --ignored --nocapture`.
//! Creates everything under a fresh tag and deletes it again. Only ever
//! talks to the endpoints in that state dir's clouds.yaml (127.0.0.1).

use super::*;
use crate::cloud::Cloud;
use std::path::PathBuf;

fn state_dir() -> PathBuf {
    std::env::var_os("KURYR6_CLOUD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.cloud")))
}

/// Runs `f`, printing how long it took.
macro_rules! timed {
    ($label:expr, $e:expr) => {{
        let t = Instant::now();
        let r = $e;
        println!("{:>8.1} ms  {}", t.elapsed().as_secs_f64() * 1000.0, $label);
        r
    }};
}

#[tokio::test]
#[ignore = "needs the local cloud (scripts/cloud/up.sh)"]
async fn live_local_cloud() {
    let dir = state_dir();
    let t = Instant::now();
    let Some(os) = OpenStack::local(&dir).await.unwrap() else {
        panic!(
            "no clouds.yaml in {}: run scripts/cloud/up.sh",
            dir.display()
        );
    };
    println!(
        "{:>8.1} ms  connect (discovery + Keystone login)",
        t.elapsed().as_secs_f64() * 1000.0
    );
    for url in os.current().endpoints.values() {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "refusing non-loopback endpoint {url}"
        );
    }
    println!("project {}", os.project_id().await.unwrap());
    println!(
        "network service: {}",
        os.has_service(Service::Network).await.unwrap()
    );
    println!(
        "load-balancer service: {}",
        os.has_service(Service::LoadBalancer).await.unwrap()
    );

    let tag = format!("kuryr6-live-{:08x}", fastrand::u32(..));
    let tags = json!([tag]);

    // Tags in the create body: atomic ownership tagging if accepted.
    let pods = timed!(
        "create network with tags",
        os.create(&Kind::Network, json!({"name": "pods", "tags": tags}))
            .await
    );
    let pods = match pods {
        Ok(n) => {
            println!("TAGS ON CREATE: accepted; returned tags = {}", n["tags"]);
            n
        }
        Err(e) => {
            println!("TAGS ON CREATE: refused: {e}");
            os.create(&Kind::Network, json!({"name": "pods"}))
                .await
                .unwrap()
        }
    };
    println!("new network revision_number = {}", pods["revision_number"]);
    let pods_id = pods["id"].as_str().unwrap().to_owned();
    let services = os
        .create(&Kind::Network, json!({"name": "services", "tags": tags}))
        .await
        .unwrap();
    let services_id = services["id"].as_str().unwrap().to_owned();

    let q = vec![("tags".to_owned(), tag.clone())];
    let found = timed!(
        "list networks by tag",
        os.list(&Kind::Network, &q).await.unwrap()
    );
    assert_eq!(found.len(), 2);
    let q = vec![
        ("name".to_owned(), "pods".to_owned()),
        ("name".to_owned(), "services".to_owned()),
        ("tags".to_owned(), tag.clone()),
    ];
    assert_eq!(os.list(&Kind::Network, &q).await.unwrap().len(), 2);
    let q = vec![("tags-any".to_owned(), format!("{tag},nope"))];
    assert_eq!(os.list(&Kind::Network, &q).await.unwrap().len(), 2);
    let q = vec![("bogus_field".to_owned(), "x".to_owned())];
    println!(
        "unknown filter field: {:?}",
        os.list(&Kind::Network, &q).await.map(|v| v.len())
    );

    let upd = timed!(
        "update network",
        os.update(&Kind::Network, &pods_id, json!({"description": "x"}))
            .await
            .unwrap()
    );
    println!("revision after update = {}", upd["revision_number"]);
    println!(
        "update with tags: {:?}",
        os.update(&Kind::Network, &pods_id, json!({"tags": ["a"]}))
            .await
            .map(|v| v["tags"].clone())
    );
    println!(
        "update read-only (status): {:?}",
        os.update(&Kind::Network, &pods_id, json!({"status": "DOWN"}))
            .await
            .map(|_| ())
    );
    println!(
        "create with unknown attribute: {:?}",
        os.create(&Kind::Network, json!({"name": "x", "bogus": 1}))
            .await
            .map(|_| ())
    );

    // The guide's subnets, gateway and pool in one call.
    let pod_subnet = timed!(
        "create pod subnet",
        os.create(
            &Kind::Subnet,
            json!({
                "name": "pod_subnet", "network_id": pods_id, "ip_version": 6,
                "cidr": "fd10:0:0:1::/64", "enable_dhcp": false,
                "gateway_ip": "fd10:0:0:1::1",
                "allocation_pools": [{"start": "fd10:0:0:1::2", "end": "fd10:0:0:1:ffff:ffff:ffff:ffff"}],
                "tags": tags,
            }),
        )
        .await
        .unwrap()
    );
    println!(
        "pod subnet: cidr {} gateway {} pools {} tags {} revision {}",
        pod_subnet["cidr"],
        pod_subnet["gateway_ip"],
        pod_subnet["allocation_pools"],
        pod_subnet["tags"],
        pod_subnet["revision_number"]
    );
    let service_subnet = timed!(
        "create service subnet",
        os.create(
            &Kind::Subnet,
            json!({
                "name": "service_subnet", "network_id": services_id, "ip_version": 6,
                "cidr": "fd10:0:0:2::/112", "enable_dhcp": false,
                "gateway_ip": "fd10:0:0:2::fffe",
                "allocation_pools": [{"start": "fd10:0:0:2::8000", "end": "fd10:0:0:2::fffd"}],
                "tags": tags,
            }),
        )
        .await
        .unwrap()
    );
    println!(
        "service subnet: gateway {} pools {}",
        service_subnet["gateway_ip"], service_subnet["allocation_pools"]
    );
    let bad = os
        .create(
            &Kind::Subnet,
            json!({
                "network_id": services_id, "ip_version": 6, "cidr": "fd10:0:0:3::/112",
                "gateway_ip": "fd10:0:0:3::8001",
                "allocation_pools": [{"start": "fd10:0:0:3::8000", "end": "fd10:0:0:3::fffd"}],
            }),
        )
        .await;
    println!("gateway inside pool: {bad:?}");
    let default = os
        .create(
            &Kind::Subnet,
            json!({"network_id": services_id, "ip_version": 6, "cidr": "fd10:0:0:4::/64", "enable_dhcp": false}),
        )
        .await
        .unwrap();
    println!(
        "defaults for an IPv6 /64: gateway {} pools {} revision {}",
        default["gateway_ip"], default["allocation_pools"], default["revision_number"]
    );
    let default4 = os
        .create(
            &Kind::Subnet,
            json!({"network_id": services_id, "ip_version": 4, "cidr": "10.9.0.0/24"}),
        )
        .await
        .unwrap();
    println!(
        "defaults for an IPv4 /24: gateway {} pools {}",
        default4["gateway_ip"], default4["allocation_pools"]
    );
    println!(
        "host bits in cidr: {:?}",
        os.create(
            &Kind::Subnet,
            json!({"network_id": services_id, "ip_version": 6, "cidr": "fd10:0:0:5::1/64"})
        )
        .await
        .map(|s| s["cidr"].clone())
    );
    println!(
        "overlapping subnet: {:?}",
        os.create(
            &Kind::Subnet,
            json!({"network_id": services_id, "ip_version": 6, "cidr": "fd10:0:0:4::/80"})
        )
        .await
        .map(|_| ())
    );
    println!(
        "missing ip_version: {:?}",
        os.create(
            &Kind::Subnet,
            json!({"network_id": services_id, "cidr": "fd10:0:0:6::/64"})
        )
        .await
        .map(|s| s["ip_version"].clone())
    );

    // Router and interfaces by subnet id.
    let router = timed!(
        "create router",
        os.create(&Kind::Router, json!({"name": "k8s-ipv6", "tags": tags}))
            .await
            .unwrap()
    );
    let router_id = router["id"].as_str().unwrap().to_owned();
    for s in [&pod_subnet, &service_subnet, &default] {
        timed!(
            "add_router_interface",
            os.router_interface(&router_id, s["id"].as_str().unwrap(), true)
                .await
                .unwrap()
        );
    }
    println!(
        "add twice: {:?}",
        os.router_interface(&router_id, pod_subnet["id"].as_str().unwrap(), true)
            .await
    );
    let q = vec![("device_id".to_owned(), router_id.clone())];
    let ports = os.list(&Kind::Port, &q).await.unwrap();
    for p in &ports {
        println!(
            "router port owner {} network {} fixed_ips {} tags {}",
            p["device_owner"], p["network_id"], p["fixed_ips"], p["tags"]
        );
    }
    let q = vec![(
        "fixed_ips".to_owned(),
        format!("subnet_id={}", pod_subnet["id"].as_str().unwrap()),
    )];
    println!(
        "ports by fixed_ips=subnet_id: {}",
        os.list(&Kind::Port, &q).await.unwrap().len()
    );
    println!(
        "delete network in use: {:?}",
        os.delete(&Kind::Network, &pods_id).await
    );
    println!(
        "delete subnet in use: {:?}",
        os.delete(&Kind::Subnet, pod_subnet["id"].as_str().unwrap())
            .await
    );
    println!(
        "delete router with ports: {:?}",
        os.delete(&Kind::Router, &router_id).await
    );
    println!(
        "delete router port directly: {:?}",
        os.delete(&Kind::Port, ports[0]["id"].as_str().unwrap())
            .await
    );
    for s in [&pod_subnet, &service_subnet, &default] {
        timed!(
            "remove_router_interface",
            os.router_interface(&router_id, s["id"].as_str().unwrap(), false)
                .await
                .unwrap()
        );
    }
    timed!(
        "remove again (404 = done)",
        os.router_interface(&router_id, pod_subnet["id"].as_str().unwrap(), false)
            .await
            .unwrap()
    );

    // Security group, rule, duplicate rule.
    let sg = timed!(
        "create security group",
        os.create(
            &Kind::SecurityGroup,
            json!({"name": "service_pod_access_v6", "tags": tags})
        )
        .await
        .unwrap()
    );
    let sg_id = sg["id"].as_str().unwrap().to_owned();
    for r in sg["security_group_rules"].as_array().unwrap() {
        println!(
            "default rule: {} {} proto {} prefix {} normalized {}",
            r["direction"],
            r["ethertype"],
            r["protocol"],
            r["remote_ip_prefix"],
            r["normalized_cidr"]
        );
    }
    let rule = json!({
        "security_group_id": sg_id, "direction": "ingress", "ethertype": "IPv6",
        "protocol": "tcp", "remote_ip_prefix": "fd10:0:0:2:0::/112",
    });
    let created = timed!(
        "create rule",
        os.create(&Kind::SecurityGroupRule, rule.clone())
            .await
            .unwrap()
    );
    println!(
        "rule remote_ip_prefix {} normalized_cidr {} keys {:?}",
        created["remote_ip_prefix"],
        created["normalized_cidr"],
        created.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    let dup = timed!(
        "duplicate rule",
        os.create(&Kind::SecurityGroupRule, rule).await
    );
    println!("DUPLICATE RULE: {dup:?}");
    let dup_egress = os
        .create(
            &Kind::SecurityGroupRule,
            json!({"security_group_id": sg_id, "direction": "egress", "ethertype": "IPv6", "remote_ip_prefix": "::/0"}),
        )
        .await;
    println!("egress ::/0 against the default egress rule: {dup_egress:?}");
    let q = vec![("security_group_id".to_owned(), sg_id.clone())];
    println!(
        "rules by security_group_id: {}",
        os.list(&Kind::SecurityGroupRule, &q).await.unwrap().len()
    );

    // Many tasks sharing one client.
    let shared = Arc::new(os);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let c = shared.clone();
        tasks.push(tokio::spawn(async move {
            c.list(&Kind::Network, &vec![]).await.map(|v| v.len())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    println!(
        "{:>8.1} ms  16 concurrent list calls",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let os = &*shared;

    if os.has_service(Service::LoadBalancer).await.unwrap() {
        octavia(os, &tags, &service_subnet).await;
    }

    // Clean up, in dependency order; deleting again is fine.
    timed!(
        "delete security group",
        os.delete(&Kind::SecurityGroup, &sg_id).await.unwrap()
    );
    timed!(
        "delete router",
        os.delete(&Kind::Router, &router_id).await.unwrap()
    );
    for n in [&pods_id, &services_id] {
        timed!(
            "delete network (subnets go with it)",
            os.delete(&Kind::Network, n).await.unwrap()
        );
    }
    timed!(
        "delete missing network",
        os.delete(&Kind::Network, &pods_id).await.unwrap()
    );
    println!("get missing: {:?}", os.get(&Kind::Network, &pods_id).await);

    // Wrong password: an Auth error that does not contain it.
    let mut cfg = os.config().clone();
    let wrong = "Wr0ng-Pa55-kuryr6";
    if let Auth::Password { password, .. } = &mut cfg.auth {
        *password = Secret::new(wrong);
    }
    let t = Instant::now();
    let err = match OpenStack::connect(&cfg, ConnectOptions::default()).await {
        Err(e) => e,
        Ok(_) => panic!("a wrong password logged in"),
    };
    println!(
        "{:>8.1} ms  wrong password -> {err}",
        t.elapsed().as_secs_f64() * 1000.0
    );
    assert!(matches!(err, CloudError::Auth(_)));
    assert!(!format!("{err} {err:?}").contains(wrong));
}

/// Polls `get` until the object is ACTIVE (Octavia works asynchronously).
async fn wait_active(os: &OpenStack, kind: &Kind, id: &str) -> Value {
    let t = Instant::now();
    loop {
        let v = os.get(kind, id).await.unwrap();
        match v["provisioning_status"].as_str() {
            Some("ACTIVE") => {
                println!(
                    "{:>8.1} ms  {kind} ACTIVE",
                    t.elapsed().as_secs_f64() * 1000.0
                );
                return v;
            }
            Some("ERROR") => panic!("{kind} {id} went to ERROR"),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{kind} {id} never became ACTIVE"
        );
    }
}

async fn octavia(os: &OpenStack, tags: &Value, service_subnet: &Value) {
    let lb = timed!(
        "create load balancer with tags",
        os.create(
            &Kind::LoadBalancer,
            json!({"name": "default/kubernetes", "vip_subnet_id": service_subnet["id"],
                   "vip_address": "fd10:0:0:2::1", "tags": tags}),
        )
        .await
    );
    let lb = match lb {
        Ok(lb) => lb,
        Err(e) => {
            println!("OCTAVIA: load balancer refused: {e}");
            return;
        }
    };
    println!(
        "lb status {} vip {} tags {}",
        lb["provisioning_status"], lb["vip_address"], lb["tags"]
    );
    let lb_id = lb["id"].as_str().unwrap().to_owned();
    let pool_body = json!({"name": "default/kubernetes:HTTPS:443", "loadbalancer_id": lb_id,
                           "protocol": "HTTPS", "lb_algorithm": "LEAST_CONNECTIONS", "tags": tags});
    println!(
        "pool while LB pending: {:?}",
        os.create(&Kind::Pool, pool_body.clone()).await.map(|_| ())
    );
    wait_active(os, &Kind::LoadBalancer, &lb_id).await;
    let pool = timed!(
        "create pool",
        os.create(&Kind::Pool, pool_body).await.unwrap()
    );
    let pool_id = pool["id"].as_str().unwrap().to_owned();
    wait_active(os, &Kind::Pool, &pool_id).await;
    let members = Kind::Member {
        pool_id: pool_id.clone(),
    };
    let m = timed!(
        "create member",
        os.create(
            &members,
            json!({"name": "master-0", "address": "fd10:0:0:1:0::10", "protocol_port": 6443,
                                   "subnet_id": service_subnet["id"]})
        )
        .await
        .unwrap()
    );
    println!("member address {}", m["address"]);
    wait_active(os, &members, m["id"].as_str().unwrap()).await;
    let l = timed!(
        "create listener",
        os.create(
            &Kind::Listener,
            json!({"name": "default/kubernetes:HTTPS:443", "loadbalancer_id": lb_id,
                   "protocol": "HTTPS", "protocol_port": 443, "default_pool_id": pool_id}),
        )
        .await
        .unwrap()
    );
    let l_id = l["id"].as_str().unwrap().to_owned();
    wait_active(os, &Kind::Listener, &l_id).await;
    let q = vec![("tags".to_owned(), tags[0].as_str().unwrap().to_owned())];
    println!(
        "load balancers by tag: {}",
        os.list(&Kind::LoadBalancer, &q).await.unwrap().len()
    );
    let dup = os
        .create(
            &Kind::Listener,
            json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 443}),
        )
        .await;
    println!("duplicate listener port: {dup:?}");
    println!(
        "delete LB with children: {:?}",
        os.delete(&Kind::LoadBalancer, &lb_id).await
    );
    wait_active(os, &Kind::LoadBalancer, &lb_id).await;
    os.delete(&Kind::Listener, &l_id).await.unwrap();
    wait_active(os, &Kind::LoadBalancer, &lb_id).await;
    os.delete(&Kind::Pool, &pool_id).await.unwrap();
    wait_active(os, &Kind::LoadBalancer, &lb_id).await;
    timed!(
        "delete load balancer",
        os.delete(&Kind::LoadBalancer, &lb_id).await.unwrap()
    );
    let t = Instant::now();
    loop {
        match os.get(&Kind::LoadBalancer, &lb_id).await {
            Err(CloudError::NotFound { .. }) => break,
            Ok(v) if v["provisioning_status"] == "DELETED" => break,
            _ if t.elapsed() > Duration::from_secs(60) => panic!("load balancer not deleted"),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
