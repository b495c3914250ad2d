//! The graph model and its three renderings, on the seed plan and on a
//! synthetic drift. The SVG is parsed with usvg (a real SVG library) for
//! geometry and colours, and with roxmltree for ids, texts and attributes.

use super::*;
use crate::engine::change::{Change, FieldChange};
use crate::load::load_source;
use crate::plan::{Rule, Strict};
use crate::source::SourceFile;

const SEED: &str = include_str!("../../../examples/seed-ipv6/pipeline.toml");

/// The plan of a pipeline text that must load.
fn plan_of(text: &str) -> Plan {
    load_source(SourceFile::new("seed.toml", text))
        .unwrap()
        .plan
}

fn seed() -> Plan {
    plan_of(SEED)
}

/// The seed without its API hosts, hence without the API load balancer.
fn seed_without_lb() -> Plan {
    plan_of(&crate::test_seed::without_api_hosts(SEED))
}

fn tree(svg: &str) -> usvg::Tree {
    usvg::Tree::from_str(svg, &usvg::Options::default()).expect("the SVG parses")
}

/// The path usvg made of the element with this id: (x, y, width, height).
fn bbox(t: &usvg::Tree, id: &str) -> (f32, f32, f32, f32) {
    let node = t
        .node_by_id(id)
        .unwrap_or_else(|| panic!("no element `{id}`"));
    let b = node.abs_bounding_box();
    (b.x(), b.y(), b.width(), b.height())
}

fn stroke(t: &usvg::Tree, id: &str) -> (u8, u8, u8) {
    match t.node_by_id(id) {
        Some(usvg::Node::Path(p)) => match p.stroke().map(|s| s.paint()) {
            Some(usvg::Paint::Color(c)) => (c.red, c.green, c.blue),
            other => panic!("`{id}` has stroke {other:?}"),
        },
        other => panic!("`{id}` is {other:?}"),
    }
}

fn by_id<'a>(doc: &'a roxmltree::Document, id: &str) -> roxmltree::Node<'a, 'a> {
    doc.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no element `{id}`"))
}

fn text_of(doc: &roxmltree::Document, id: &str) -> String {
    by_id(doc, id).text().unwrap_or_default().to_string()
}

/// Each element `id` of the table holds exactly the text `want`.
fn assert_texts(doc: &roxmltree::Document, table: &[(&str, &str)]) {
    for &(id, want) in table {
        assert_eq!(text_of(doc, id), want, "{id}");
    }
}

/// `got` is within `tolerance` of `want` (SVG coordinates are floats).
fn assert_near(what: &str, got: f32, want: f32, tolerance: f32) {
    assert!(
        (got - want).abs() < tolerance,
        "{what} is {got}, expected {want}"
    );
}

/// A rendering (SVG, DOT or Mermaid text) has each of `needles`; the whole text is shown if not.
fn assert_has(rendered: &str, needles: &[&str]) {
    for needle in needles {
        assert!(rendered.contains(needle), "{needle} missing:\n{rendered}");
    }
}

#[test]
fn the_seed_svg_draws_the_112_split_to_scale_with_its_boundary_addresses() {
    let svg = svg::render(&build(&seed(), None, "plan (offline)".into()));
    let t = tree(&svg);
    let doc = roxmltree::Document::parse(&svg).unwrap();

    let (bar_x, _, bar_w, _) = bbox(&t, "plan-service_subnet-bar");
    assert_eq!((bar_x, bar_w), (svg::BAR_X as f32, svg::BAR_W as f32));
    // The Kubernetes range is the first half, the pool the second half up
    // to the gateway: the split sits exactly in the middle of the bar.
    let (kx, _, kw, _) = bbox(&t, "plan-service_subnet-kubernetes-range");
    assert_eq!(kx, bar_x);
    assert_near("range width", kw, bar_w / 2.0, 0.01);
    let (px, _, pw, _) = bbox(&t, "plan-service_subnet-pool-0");
    assert_near("pool start", px, bar_x + bar_w / 2.0, 0.01);
    // ::8000 … ::fffd: two addresses short of the end.
    let expected = bar_w / 2.0 * (0x7ffe as f32 / 0x8000 as f32);
    assert_near("pool width", pw, expected, 0.01);

    assert_texts(
        &doc,
        &[
            ("plan-service_subnet-kubernetes-range-start", "fd10:0:0:2::"),
            (
                "plan-service_subnet-kubernetes-range-end",
                "fd10:0:0:2::7fff",
            ),
            ("plan-service_subnet-pool-0-start", "fd10:0:0:2::8000"),
            ("plan-service_subnet-pool-0-end", "fd10:0:0:2::fffd"),
        ],
    );
    let range = by_id(&doc, "plan-service_subnet-kubernetes-range");
    assert_eq!(range.attribute("data-end"), Some("fd10:0:0:2::7fff"));
    assert_texts(
        &doc,
        &[
            (
                "plan-service_subnet-gateway-label",
                "gateway fd10:0:0:2::fffe",
            ),
            // The seed names API hosts: the marker is the load balancer's
            // VIP, the range's first address.
            ("plan-service_subnet-vip-label", "API VIP fd10:0:0:2::1"),
        ],
    );
    let (gx, _, _, _) = bbox(&t, "plan-service_subnet-gateway");
    let want = bar_x + bar_w * (0xfffe as f32 + 0.5) / 65536.0;
    assert_near("gateway", gx, want, 1.5);
    let (vx, _, _, _) = bbox(&t, "plan-service_subnet-vip");
    let want = bar_x + bar_w * 1.5 / 65536.0;
    assert_near("VIP", vx, want, 1.5);
    let lb = by_id(&doc, "node-loadbalancer-default_kubernetes");
    assert_eq!(lb.attribute("data-name"), Some("default/kubernetes"));
    assert_has(&svg, &["VIP fd10:0:0:2::1 · HTTPS 443 → 2 member(s):6443"]);

    // Topology: every resource as a box, unchanged offline.
    for id in [
        "node-network-pods",
        "node-subnet-pod_subnet",
        "node-network-services",
        "node-subnet-service_subnet",
        "node-router-k8s-ipv6",
        "node-security_group-service_pod_access_v6",
        "node-loadbalancer-default_kubernetes",
    ] {
        assert_eq!(
            by_id(&doc, id).attribute("data-drift"),
            Some("same"),
            "{id}"
        );
        bbox(&t, id);
    }
    assert!(!svg.contains("Pending changes"));
    assert!(!svg.contains("href"), "self-contained");
}

#[test]
fn without_a_load_balancer_the_marker_is_the_kubernetes_service_ip() {
    let svg = svg::render(&build(&seed_without_lb(), None, "plan (offline)".into()));
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_texts(
        &doc,
        &[(
            "plan-service_subnet-vip-label",
            "kubernetes.default fd10:0:0:2::1",
        )],
    );
    assert!(!svg.contains("node-loadbalancer"), "{svg}");
    tree(&svg);
}

fn drift_set(plan: &Plan) -> ChangeSet {
    let svc = plan.subnet("service_subnet").unwrap();
    ChangeSet {
        pipeline: plan.pipeline.clone(),
        changes: vec![
            Change {
                target: Target::Subnet {
                    name: "service_subnet".into(),
                },
                action: Action::Update,
                id: Some("s2".into()),
                fields: vec![FieldChange {
                    field: "allocation_pools".into(),
                    from: "fd10:0:0:2::8001-fd10:0:0:2::fffd".into(),
                    to: format!(
                        "{}-{}",
                        svc.allocation_pools[0].start, svc.allocation_pools[0].end
                    ),
                }],
            },
            Change {
                target: Target::Rule {
                    group: "service_pod_access_v6".into(),
                    rule: Rule {
                        direction: "ingress".into(),
                        ethertype: "IPv6".into(),
                        protocol: Some("udp".into()),
                        remote_ip_prefix: Some(svc.cidr),
                        port_range_min: None,
                        port_range_max: None,
                        extra: Strict,
                    },
                },
                action: Action::Create,
                id: None,
                fields: Vec::new(),
            },
            Change {
                target: Target::Network {
                    name: "old-net".into(),
                },
                action: Action::Delete,
                id: Some("n9".into()),
                fields: Vec::new(),
            },
            Change {
                target: Target::Network {
                    name: "pods".into(),
                },
                action: Action::NoOp,
                id: Some("n1".into()),
                fields: Vec::new(),
            },
        ],
        refusals: Vec::new(),
    }
}

#[test]
fn drift_marks_the_drifted_subnet_its_bar_and_the_parent_of_a_rule() {
    let plan = seed();
    let g = build(
        &plan,
        Some(&drift_set(&plan)),
        "against test: 3 pending change(s)".into(),
    );
    assert_eq!(
        g.node("subnet:service_subnet").unwrap().drift,
        Drift::Update
    );
    assert_eq!(
        g.node("security_group:service_pod_access_v6")
            .unwrap()
            .drift,
        Drift::Update
    );
    assert_eq!(g.node("network:old-net").unwrap().drift, Drift::Delete);
    assert_eq!(g.node("network:pods").unwrap().drift, Drift::Same);
    assert_eq!(g.node("subnet:pod_subnet").unwrap().drift, Drift::Same);

    let svg = svg::render(&g);
    let t = tree(&svg);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let orange = (0xbc, 0x4c, 0x00);
    assert_eq!(
        by_id(&doc, "node-subnet-service_subnet").attribute("data-drift"),
        Some("update")
    );
    assert_eq!(stroke(&t, "node-subnet-service_subnet"), orange);
    assert_eq!(stroke(&t, "plan-service_subnet-bar"), orange);
    assert_eq!(stroke(&t, "node-subnet-pod_subnet"), (0x57, 0x60, 0x6a));
    assert_eq!(
        by_id(&doc, "node-network-old-net").attribute("data-drift"),
        Some("delete")
    );
    assert!(
        text_of(&doc, "plan-service_subnet-title").contains("pending update"),
        "{svg}"
    );
    assert_has(
        &svg,
        &[
            "allocation_pools: fd10:0:0:2::8001-fd10:0:0:2::fffd → fd10:0:0:2::8000-fd10:0:0:2::fffd",
            "Pending changes",
        ],
    );

    assert_has(
        &dot::render(&g),
        &[
            "\"subnet:service_subnet\" [label=\"~ subnet service_subnet",
            "pending delete",
        ],
    );
    assert_has(
        &mermaid::render(&g),
        &[
            "class subnet_service_subnet,security_group_service_pod_access_v6 update",
            "class network_old_net delete",
        ],
    );
}

#[test]
fn dot_and_mermaid_carry_the_topology_and_the_address_plan() {
    let g = build(&seed(), None, "plan (offline)".into());
    let dot = dot::render(&g);
    assert!(dot.starts_with("digraph \"kuryr6 seed-ipv6\" {"), "{dot}");
    assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
    assert_has(
        &dot,
        &[
            "subgraph \"cluster_network:services\"",
            "\"router:k8s-ipv6\" -> \"subnet:pod_subnet\" [label=\"interface\"",
            "Kubernetes services fd10:0:0:2::/113: fd10:0:0:2:: – fd10:0:0:2::7fff\\l",
            "Neutron pool: fd10:0:0:2::8000 – fd10:0:0:2::fffd\\l",
            "\"loadbalancer:default/kubernetes\" -> \"subnet:service_subnet\" [label=\"VIP in\"",
        ],
    );
    let m = mermaid::render(&g);
    assert_has(
        &m,
        &[
            "\nflowchart LR\n",
            "subgraph network_services[\"network services\"]",
            "router_k8s_ipv6 ---|interface| subnet_pod_subnet",
            "Neutron pool: fd10:0:0:2::8000 – fd10:0:0:2::fffd",
        ],
    );
    assert!(
        !m.contains("classDef create fill:#dafbe1,stroke:#1a7f37,stroke-width:2px\n  class "),
        "no node is pending offline"
    );
}

#[test]
fn names_that_are_not_identifiers_are_escaped() {
    let mut plan = seed();
    if let Some(Step::Network(n)) = plan.steps.iter_mut().find(|s| s.name() == "pods") {
        n.name = "pods <\"&'>".into();
    }
    if let Some(Step::Subnet(s)) = plan.steps.iter_mut().find(|s| s.name() == "pod_subnet") {
        s.network = "pods <\"&'>".into();
    }
    let g = build(&plan, None, "x".into());
    let svg = svg::render(&g);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    assert_eq!(
        by_id(&doc, "node-network-pods______").attribute("data-name"),
        Some("pods <\"&'>")
    );
    tree(&svg);
    assert_has(&dot::render(&g), &["network pods <\\\"&'>"]);
    assert_has(&mermaid::render(&g), &["network pods #lt;#quot;#amp;'#gt;"]);
}
