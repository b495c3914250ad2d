use super::*;

fn q(pairs: &[(&str, &str)]) -> Query {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A network with `tags`, made as on Neutron: create, then tag.
async fn net(c: &FakeCloud, name: &str, tags: &[&str]) -> String {
    let made = id(&c
        .create(&Kind::Network, json!({"name": name}))
        .await
        .unwrap());
    if !tags.is_empty() {
        c.update(&Kind::Network, &made, json!({"tags": tags}))
            .await
            .unwrap();
    }
    made
}

/// The names of the networks a list with the query `pairs` returns, in order.
async fn network_names(c: &FakeCloud, pairs: &[(&str, &str)]) -> Vec<String> {
    c.list(&Kind::Network, &q(pairs))
        .await
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A subnet given only its network, family and CIDR: Neutron fills in the rest.
async fn bare_subnet(c: &FakeCloud, network: &str, ip_version: u8, cidr: &str) -> Value {
    c.create(
        &Kind::Subnet,
        json!({"network_id": network, "ip_version": ip_version, "cidr": cidr}),
    )
    .await
    .unwrap()
}

/// What Neutron filled in: the gateway and the one allocation pool `(start, end)`.
fn assert_filled_in(subnet: &Value, gateway: &str, (start, end): (&str, &str)) {
    assert_eq!(subnet["gateway_ip"], gateway);
    assert_eq!(
        subnet["allocation_pools"],
        json!([{"start": start, "end": end}])
    );
}

/// The error of a create the fake must refuse, as Neutron or Octavia would.
async fn refused_create(c: &FakeCloud, kind: &Kind, body: Value) -> CloudError {
    c.create(kind, body).await.unwrap_err()
}

/// A create the fake answers with 409 Conflict (a busy load balancer, an address in use).
async fn assert_conflict(c: &FakeCloud, kind: &Kind, body: Value) {
    let answer = c.create(kind, body).await;
    assert!(
        matches!(answer, Err(CloudError::Conflict { .. })),
        "{answer:?}"
    );
}

/// The guide's two networks and subnets.
async fn guide(c: &FakeCloud) -> (String, String, Value, Value) {
    let pods = net(c, "pods", &["k6"]).await;
    let services = net(c, "services", &["k6"]).await;
    // (name, network, cidr, gateway, allocation pool)
    let subnets = [
        (
            "pod_subnet",
            &pods,
            "fd10:0:0:1::/64",
            "fd10:0:0:1::1",
            ["fd10:0:0:1::2", "fd10:0:0:1:ffff:ffff:ffff:ffff"],
        ),
        (
            "service_subnet",
            &services,
            "fd10:0:0:2::/112",
            "fd10:0:0:2::fffe",
            ["fd10:0:0:2::8000", "fd10:0:0:2::fffd"],
        ),
    ];
    let mut made = Vec::new();
    for (name, network, cidr, gateway, [start, end]) in subnets {
        let body = json!({"name": name, "network_id": network, "ip_version": 6,
                          "cidr": cidr, "enable_dhcp": false, "gateway_ip": gateway,
                          "allocation_pools": [{"start": start, "end": end}]});
        made.push(c.create(&Kind::Subnet, body).await.unwrap());
    }
    let [pod_subnet, service_subnet] = made.try_into().unwrap();
    (pods, services, pod_subnet, service_subnet)
}

#[test]
fn is_shareable_across_tasks() {
    fn shareable<T: Send + Sync>() {}
    shareable::<FakeCloud>();
}

#[tokio::test]
async fn ids_revisions_and_filters() {
    let c = FakeCloud::new();
    let a = net(&c, "a", &["k6", "x"]).await;
    let b = net(&c, "b", &["k6"]).await;
    let _other = net(&c, "c", &[]).await;
    assert_eq!(a.len(), 36);
    assert_eq!(a.matches('-').count(), 4);
    assert_ne!(a, b);

    assert_eq!(network_names(&c, &[("tags", "k6")]).await, ["a", "b"]);
    assert_eq!(network_names(&c, &[("tags", "k6,x")]).await, ["a"]);
    assert_eq!(network_names(&c, &[("tags-any", "x,nope")]).await, ["a"]);
    assert_eq!(network_names(&c, &[("not-tags", "k6")]).await, ["c"]);
    assert_eq!(
        network_names(&c, &[("not-tags-any", "x")]).await,
        ["b", "c"]
    );
    assert_eq!(
        network_names(&c, &[("name", "a"), ("name", "c")]).await,
        ["a", "c"]
    );
    assert_eq!(
        network_names(&c, &[("name", "a"), ("name", "c"), ("tags", "k6")]).await,
        ["a"]
    );
    assert_eq!(
        network_names(&c, &[("admin_state_up", "True")]).await.len(),
        3
    );
    let err = c
        .list(&Kind::Network, &q(&[("nmae", "a")]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudError::Rejected { status: 400, .. }),
        "{err:?}"
    );

    let first = c.get(&Kind::Network, &a).await.unwrap();
    let updated = c
        .update(&Kind::Network, &a, json!({"description": "d"}))
        .await
        .unwrap();
    assert_eq!(
        updated["revision_number"].as_u64().unwrap(),
        first["revision_number"].as_u64().unwrap() + 1
    );
    let retagged = c
        .update(&Kind::Network, &a, json!({"tags": ["y"]}))
        .await
        .unwrap();
    assert_eq!(retagged["tags"], json!(["y"]));
    let err = c
        .update(&Kind::Network, &a, json!({"status": "DOWN"}))
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::Rejected { status: 400, .. }));
    let err = refused_create(&c, &Kind::Network, json!({"name": "x", "bogus": 1})).await;
    assert!(matches!(&err, CloudError::Rejected { message, .. } if message.contains("bogus")));
    assert_eq!(
        c.get(&Kind::Network, "nope").await.unwrap_err(),
        CloudError::NotFound {
            what: "network nope".into()
        }
    );
    c.delete(&Kind::Network, "nope").await.unwrap();
}

#[tokio::test]
async fn subnets_like_neutron() {
    let c = FakeCloud::new();
    let (pods, services, pod_subnet, service_subnet) = guide(&c).await;
    // Canonical compressed addresses, as Neutron stores them.
    assert_eq!(
        pod_subnet["allocation_pools"],
        json!([{"start": "fd10:0:0:1::2", "end": "fd10::1:ffff:ffff:ffff:ffff"}])
    );
    assert_eq!(service_subnet["gateway_ip"], "fd10:0:0:2::fffe");
    let net = c.get(&Kind::Network, &pods).await.unwrap();
    assert_eq!(net["subnets"], json!([pod_subnet["id"]]));

    // Neutron's defaults: IPv6 gateway = subnet-router anycast address.
    let d6 = bare_subnet(&c, &services, 6, "FD10:0000:0:4::5/64").await;
    assert_eq!(d6["cidr"], "fd10:0:0:4::/64");
    assert_filled_in(
        &d6,
        "fd10:0:0:4::",
        ("fd10:0:0:4::1", "fd10::4:ffff:ffff:ffff:ffff"),
    );
    let d4 = bare_subnet(&c, &services, 4, "10.9.0.0/24").await;
    assert_filled_in(&d4, "10.9.0.1", ("10.9.0.2", "10.9.0.254"));

    // Gateway inside the pool: 409 like Neutron.
    let err = refused_create(
        &c,
        &Kind::Subnet,
        json!({"network_id": services, "ip_version": 6, "cidr": "fd10:0:0:3::/112",
               "gateway_ip": "fd10:0:0:3::8001",
               "allocation_pools": [{"start": "fd10:0:0:3::8000", "end": "fd10:0:0:3::fffd"}]}),
    )
    .await;
    assert!(
        matches!(&err, CloudError::Conflict { message } if message.starts_with("Gateway ip fd10:0:0:3::8001 conflicts")),
        "{err:?}"
    );
    // Pool beyond the CIDR, overlapping subnets, missing ip_version, family mismatch.
    for body in [
        json!({"network_id": services, "ip_version": 6, "cidr": "fd10:0:0:3::/112",
               "allocation_pools": [{"start": "fd10:0:0:3::8000", "end": "fd10:0:0:4::1"}]}),
        json!({"network_id": services, "ip_version": 6, "cidr": "fd10:0:0:2::/120"}),
        json!({"network_id": services, "cidr": "fd10:0:0:7::/64"}),
        json!({"network_id": services, "ip_version": 4, "cidr": "fd10:0:0:7::/64"}),
    ] {
        let err = refused_create(&c, &Kind::Subnet, body.clone()).await;
        assert!(
            matches!(err, CloudError::Rejected { status: 400, .. }),
            "{body} → {err:?}"
        );
    }
    assert!(matches!(
        c.create(
            &Kind::Subnet,
            json!({"network_id": "nope", "ip_version": 6, "cidr": "fd10::/64"})
        )
        .await,
        Err(CloudError::NotFound { .. })
    ));
    // Updating the pool into the gateway: 409 too.
    let err = c
        .update(
            &Kind::Subnet,
            &id(&service_subnet),
            json!({"allocation_pools": [{"start": "fd10:0:0:2::8000", "end": "fd10:0:0:2::ffff"}]}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::Conflict { .. }));
    let err = c
        .update(
            &Kind::Subnet,
            &id(&service_subnet),
            json!({"cidr": "fd10:0:0:9::/112"}),
        )
        .await;
    assert!(matches!(err, Err(CloudError::Rejected { .. })));
}

#[tokio::test]
async fn router_interfaces_are_ports() {
    let c = FakeCloud::new();
    let (pods, services, pod_subnet, service_subnet) = guide(&c).await;
    let extra = bare_subnet(&c, &services, 6, "fd10:0:0:4::/64").await;
    let router = id(&c
        .create(&Kind::Router, json!({"name": "k8s-ipv6"}))
        .await
        .unwrap());
    for s in [&pod_subnet, &service_subnet, &extra] {
        c.router_interface(&router, &id(s), true).await.unwrap();
    }
    let ports = c
        .list(&Kind::Port, &q(&[("device_id", &router)]))
        .await
        .unwrap();
    // IPv6 subnets of one network share one router port.
    assert_eq!(ports.len(), 2);
    let pod_port = ports
        .iter()
        .find(|p| p["network_id"] == pods.as_str())
        .unwrap();
    assert_eq!(pod_port["device_owner"], "network:router_interface");
    assert_eq!(
        pod_port["fixed_ips"],
        json!([{"subnet_id": pod_subnet["id"], "ip_address": "fd10:0:0:1::1"}])
    );
    let svc_port = ports
        .iter()
        .find(|p| p["network_id"] == services.as_str())
        .unwrap();
    assert_eq!(svc_port["fixed_ips"].as_array().unwrap().len(), 2);
    let by_subnet = format!("subnet_id={}", id(&pod_subnet));
    assert_eq!(
        c.list(&Kind::Port, &q(&[("fixed_ips", &by_subnet)]))
            .await
            .unwrap()
            .len(),
        1
    );

    let err = c
        .router_interface(&router, &id(&pod_subnet), true)
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::Rejected { status: 400, .. }));
    // Things in use cannot go.
    for (kind, what) in [
        (Kind::Network, pods.clone()),
        (Kind::Subnet, id(&pod_subnet)),
        (Kind::Router, router.clone()),
        (Kind::Port, id(pod_port)),
    ] {
        let err = c.delete(&kind, &what).await.unwrap_err();
        assert!(
            matches!(err, CloudError::Conflict { .. }),
            "{kind}: {err:?}"
        );
    }
    // Detach by subnet: the shared port keeps its other subnet.
    c.router_interface(&router, &id(&service_subnet), false)
        .await
        .unwrap();
    let svc_port = c.get(&Kind::Port, &id(svc_port)).await.unwrap();
    assert_eq!(svc_port["fixed_ips"].as_array().unwrap().len(), 1);
    c.router_interface(&router, &id(&service_subnet), false)
        .await
        .unwrap();
    for s in [&pod_subnet, &extra] {
        c.router_interface(&router, &id(s), false).await.unwrap();
    }
    assert!(c.list(&Kind::Port, &vec![]).await.unwrap().is_empty());
    c.delete(&Kind::Router, &router).await.unwrap();
    c.delete(&Kind::Network, &pods).await.unwrap();
    assert!(
        c.get(&Kind::Subnet, &id(&pod_subnet)).await.is_err(),
        "subnets go with their network"
    );
}

#[tokio::test]
async fn security_groups_and_rules() {
    let c = FakeCloud::new();
    let sg = c
        .create(
            &Kind::SecurityGroup,
            json!({"name": "service_pod_access_v6"}),
        )
        .await
        .unwrap();
    let rules = sg["security_group_rules"].as_array().unwrap();
    let mut types: Vec<(&str, &str)> = rules
        .iter()
        .map(|r| {
            (
                r["direction"].as_str().unwrap(),
                r["ethertype"].as_str().unwrap(),
            )
        })
        .collect();
    types.sort();
    assert_eq!(types, [("egress", "IPv4"), ("egress", "IPv6")]);
    let sg_id = id(&sg);
    let rule = json!({"security_group_id": sg_id, "direction": "ingress", "ethertype": "IPv6",
                      "protocol": "tcp", "remote_ip_prefix": "fd10:0:0:2:0:0:0:0/112"});
    let created = c
        .create(&Kind::SecurityGroupRule, rule.clone())
        .await
        .unwrap();
    assert_eq!(created["remote_ip_prefix"], "fd10:0:0:2::/112");
    let err = refused_create(&c, &Kind::SecurityGroupRule, rule).await;
    let CloudError::Conflict { message } = err else {
        panic!("not a conflict")
    };
    assert!(
        message.starts_with("Security group rule already exists. Rule id is "),
        "{message}"
    );
    assert!(message.contains(&id(&created)));
    // ::/0 is the same as "anywhere": duplicates the default egress rule.
    let err = refused_create(
        &c,
        &Kind::SecurityGroupRule,
        json!({"security_group_id": sg_id, "direction": "egress", "ethertype": "IPv6", "remote_ip_prefix": "::/0"}),
    )
    .await;
    assert!(matches!(err, CloudError::Conflict { .. }));
    let err = refused_create(
        &c,
        &Kind::SecurityGroupRule,
        json!({"security_group_id": sg_id, "direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "fd10::/64"}),
    )
    .await;
    assert!(matches!(err, CloudError::Rejected { status: 400, .. }));
    let listed = c
        .list(
            &Kind::SecurityGroupRule,
            &q(&[("security_group_id", &sg_id)]),
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    c.delete(&Kind::SecurityGroup, &sg_id).await.unwrap();
    assert!(c.snapshot(&Kind::SecurityGroupRule).is_empty());
}

#[tokio::test]
async fn octavia_settles_on_get() {
    let c = FakeCloud::new();
    let (_, services, _, service_subnet) = guide(&c).await;
    let lb = c
        .create(
            &Kind::LoadBalancer,
            json!({"name": "default/kubernetes", "vip_subnet_id": service_subnet["id"],
                   "vip_address": "fd10:0:0:2:0::1", "tags": ["k6"]}),
        )
        .await
        .unwrap();
    assert_eq!(lb["provisioning_status"], "PENDING_CREATE");
    assert_eq!(lb["vip_address"], "fd10:0:0:2::1");
    let lb_id = id(&lb);
    // Busy load balancer: changes refused with 409.
    let pool_body = json!({"name": "default/kubernetes:HTTPS:443", "loadbalancer_id": lb_id,
                           "protocol": "HTTPS", "lb_algorithm": "LEAST_CONNECTIONS"});
    assert_conflict(&c, &Kind::Pool, pool_body.clone()).await;
    assert_eq!(
        c.get(&Kind::LoadBalancer, &lb_id).await.unwrap()["provisioning_status"],
        "ACTIVE"
    );
    let pool = c.create(&Kind::Pool, pool_body).await.unwrap();
    assert_eq!(pool["provisioning_status"], "PENDING_CREATE");
    let pool_id = id(&pool);
    assert_eq!(
        c.get(&Kind::Pool, &pool_id).await.unwrap()["provisioning_status"],
        "ACTIVE"
    );
    let members = Kind::Member {
        pool_id: pool_id.clone(),
    };
    let m = c
        .create(
            &members,
            json!({"name": "master-0", "address": "FD10:0:0:1::10", "protocol_port": 6443}),
        )
        .await
        .unwrap();
    assert_eq!(
        m["address"], "FD10:0:0:1::10",
        "Octavia keeps the text as sent"
    );
    c.get(&members, &id(&m)).await.unwrap();
    assert_conflict(
        &c,
        &members,
        json!({"address": "FD10:0:0:1::10", "protocol_port": 6443}),
    )
    .await;
    // A second change right after the first: the load balancer is still busy.
    let m2 = c
        .create(
            &members,
            json!({"address": "fd10:0:0:1::11", "protocol_port": 6443}),
        )
        .await
        .unwrap();
    assert_conflict(
        &c,
        &members,
        json!({"address": "fd10:0:0:1::12", "protocol_port": 6443}),
    )
    .await;
    c.get(&members, &id(&m2)).await.unwrap();
    let listener = c
        .create(
            &Kind::Listener,
            json!({"name": "default/kubernetes:HTTPS:443", "loadbalancer_id": lb_id,
                   "protocol": "HTTPS", "protocol_port": 443, "default_pool_id": pool_id}),
        )
        .await
        .unwrap();
    assert_eq!(listener["loadbalancers"], json!([{"id": lb_id}]));
    c.get(&Kind::Listener, &id(&listener)).await.unwrap();
    assert_conflict(
        &c,
        &Kind::Listener,
        json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 443}),
    )
    .await;
    let pool = c.get(&Kind::Pool, &pool_id).await.unwrap();
    assert_eq!(pool["listeners"], json!([{"id": listener["id"]}]));
    assert_eq!(pool["members"].as_array().unwrap().len(), 2);

    // The VIP port holds the network; the LB cannot go before its children.
    assert!(matches!(
        c.delete(&Kind::Network, &services).await,
        Err(CloudError::Conflict { .. })
    ));
    assert!(matches!(
        c.delete(&Kind::LoadBalancer, &lb_id).await,
        Err(CloudError::Rejected { .. })
    ));
    c.delete(&Kind::Listener, &id(&listener)).await.unwrap();
    c.get(&Kind::LoadBalancer, &lb_id).await.unwrap();
    c.delete(&Kind::Pool, &pool_id).await.unwrap();
    c.get(&Kind::LoadBalancer, &lb_id).await.unwrap();
    c.delete(&Kind::LoadBalancer, &lb_id).await.unwrap();
    assert!(c.snapshot(&Kind::Port).is_empty());
    c.delete(&Kind::Network, &services).await.unwrap();
}

#[tokio::test]
async fn ports_get_addresses_from_pools() {
    let c = FakeCloud::new();
    let (_, services, _, service_subnet) = guide(&c).await;
    let p1 = c
        .create(&Kind::Port, json!({"network_id": services, "tags": ["k6"]}))
        .await
        .unwrap();
    assert_eq!(p1["fixed_ips"][0]["ip_address"], "fd10:0:0:2::8000");
    assert_eq!(p1["tags"], json!(["k6"]));
    let p2 = c
        .create(&Kind::Port, json!({"network_id": services}))
        .await
        .unwrap();
    assert_eq!(p2["fixed_ips"][0]["ip_address"], "fd10:0:0:2::8001");
    let taken = json!({"network_id": services, "fixed_ips": [{"subnet_id": service_subnet["id"], "ip_address": "fd10:0:0:2:0::8000"}]});
    assert_conflict(&c, &Kind::Port, taken).await;
    let outside = json!({"network_id": services, "fixed_ips": [{"ip_address": "fd10:0:0:9::1"}]});
    assert!(matches!(
        c.create(&Kind::Port, outside).await,
        Err(CloudError::Rejected { .. })
    ));
    c.delete(&Kind::Port, &id(&p1)).await.unwrap();
}

#[tokio::test]
async fn faults_and_counters() {
    let c = FakeCloud::new();
    net(&c, "a", &[]).await;
    c.reset_calls();
    c.fail_nth(2, CloudError::Unavailable("boom".into()));
    c.list(&Kind::Network, &vec![]).await.unwrap();
    assert_eq!(
        c.list(&Kind::Network, &vec![]).await.unwrap_err(),
        CloudError::Unavailable("boom".into())
    );
    c.list(&Kind::Network, &vec![]).await.unwrap();
    assert_eq!(c.calls(Verb::List, &Kind::Network), 3);
    assert_eq!(c.calls(Verb::List, &Kind::Subnet), 0);

    // Only creates of subnets count towards this fault.
    c.add_fault(Fault {
        verb: Some(Verb::Create),
        kind: Some(Kind::Router),
        nth: 1,
        error: CloudError::Unavailable("lost answer".into()),
        after_effect: true,
    });
    net(&c, "b", &[]).await;
    let err = c
        .create(&Kind::Router, json!({"name": "r"}))
        .await
        .unwrap_err();
    assert_eq!(err, CloudError::Unavailable("lost answer".into()));
    assert_eq!(
        c.snapshot(&Kind::Router).len(),
        1,
        "the router was made before the error"
    );
    c.create(&Kind::Router, json!({"name": "r2"}))
        .await
        .unwrap();
    assert_eq!(c.calls(Verb::Create, &Kind::Router), 2);
    assert_eq!(c.calls_of(Verb::Create), 3);
    assert_eq!(c.total_calls(), 6);

    let no_lb = FakeCloud::new().without_service(Service::LoadBalancer);
    assert!(!no_lb.has_service(Service::LoadBalancer).await.unwrap());
    assert!(matches!(
        no_lb.list(&Kind::LoadBalancer, &vec![]).await,
        Err(CloudError::NoEndpoint(_))
    ));
}
