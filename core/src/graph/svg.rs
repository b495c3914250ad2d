//! The graph as one self-contained SVG (no scripts, fonts or external
//! references): the topology as boxes and lines, then each subnet's
//! address plan as a bar drawn to scale. Every element that carries a plan
//! value has an `id` (`node-<kind>-<name>`, `plan-<subnet>-…`) and the value
//! in its text or a `data-` attribute, for tests and for people who inspect it.

use super::{AddressPlan, Drift, Graph, Node, SegmentKind, ident, xml_escape as esc};
use std::fmt::Write;

const W: f64 = 1000.0;
/// Address bars: left edge and width.
pub const BAR_X: f64 = 40.0;
pub const BAR_W: f64 = 920.0;
const FONT: &str = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

struct Out {
    s: String,
}

impl Out {
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        id: Option<&str>,
        x: f64,
        y: f64,
        size: f64,
        anchor: &str,
        weight: &str,
        fill: &str,
        body: &str,
    ) {
        let id = id
            .map(|i| format!(" id=\"{}\"", esc(i)))
            .unwrap_or_default();
        let _ = writeln!(
            self.s,
            "<text{id} x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" font-weight=\"{weight}\" fill=\"{fill}\" {FONT}>{}</text>",
            esc(body)
        );
    }

    /// A section's title at the left margin.
    fn heading(&mut self, y: f64, title: &str) {
        self.text(None, 20.0, y, 15.0, "start", "bold", "#1f2328", title);
    }
}

fn node_id(n: &Node) -> String {
    format!("node-{}-{}", n.kind, ident(&n.name))
}

/// The box of one node: name, details, and its drift in colour and words.
fn draw_node(o: &mut Out, n: &Node, x: f64, y: f64, w: f64, h: f64) {
    let (stroke, fill) = n.drift.colors();
    let width = if n.drift == Drift::Same { 1.2 } else { 2.5 };
    let _ = writeln!(
        o.s,
        "<rect id=\"{}\" data-drift=\"{}\" data-name=\"{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"/>",
        node_id(n),
        n.drift.word(),
        esc(&n.name)
    );
    let sign = if n.drift == Drift::Same {
        String::new()
    } else {
        format!("{} ", n.drift.sign())
    };
    o.text(
        None,
        x + 10.0,
        y + 18.0,
        13.0,
        "start",
        "bold",
        "#1f2328",
        &format!("{sign}{} {}", kind_word(n.kind), n.name),
    );
    let mut detail = n.detail.join(" · ");
    if n.drift != Drift::Same {
        detail = format!(
            "{detail}{}pending {}",
            if detail.is_empty() { "" } else { " · " },
            n.drift.word()
        );
    }
    o.text(
        None,
        x + 10.0,
        y + 35.0,
        11.0,
        "start",
        "normal",
        "#57606a",
        &detail,
    );
}

fn kind_word(kind: &str) -> &str {
    match kind {
        "security_group" => "security group",
        "loadbalancer" => "load balancer",
        k => k,
    }
}

fn edge(o: &mut Out, from: (f64, f64), to: (f64, f64), drift: Drift, dashed: bool) {
    let (stroke, _) = drift.colors();
    let dash = if dashed {
        " stroke-dasharray=\"5 4\""
    } else {
        ""
    };
    let _ = writeln!(
        o.s,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\" stroke-width=\"1.5\"{dash}/>",
        from.0, from.1, to.0, to.1
    );
}

/// Renders the whole picture: a header, the topology, the pending
/// changes, the address plan, each below the one before.
pub fn render(g: &Graph) -> String {
    let mut o = Out { s: String::new() };
    let y = header(&mut o, g, 28.0);
    let y = topology(&mut o, g, y);
    let y = pending_changes(&mut o, g, y);
    let mut y = y;
    y += 40.0;
    o.heading(y, "Address plan (to scale)");
    for p in &g.plans {
        y = address_plan(&mut o, p, y + 20.0);
    }
    let height = y + 30.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {W:.0} {height:.0}\">"
    );
    let _ = writeln!(
        svg,
        "<title>kuryr6 pipeline {}: topology and address plan</title>",
        esc(&g.pipeline)
    );
    let _ = writeln!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{W:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    svg.push_str(&o.s);
    svg.push_str("</svg>\n");
    svg
}

/// The title, the subtitle and the legend of pending changes; returns the
/// y below them.
fn header(o: &mut Out, g: &Graph, mut y: f64) -> f64 {
    o.text(
        None,
        20.0,
        y,
        20.0,
        "start",
        "bold",
        "#1f2328",
        &format!("kuryr6 · pipeline {}", g.pipeline),
    );
    y += 22.0;
    o.text(
        Some("subtitle"),
        20.0,
        y,
        13.0,
        "start",
        "normal",
        "#57606a",
        &g.subtitle,
    );
    y += 14.0;
    if g.pending() > 0 {
        let mut x = 20.0;
        for d in Drift::PENDING {
            let (stroke, fill) = d.colors();
            let _ = writeln!(
                o.s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"14\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2\"/>",
                y + 4.0
            );
            o.text(
                None,
                x + 20.0,
                y + 15.0,
                11.0,
                "start",
                "normal",
                "#1f2328",
                &format!("{} pending {}", d.sign(), d.word()),
            );
            x += 140.0;
        }
        y += 26.0;
    }
    y
}

/// Networks with their subnets, the router below, then the groups, the
/// load balancer and anything to delete; returns the y below.
fn topology(o: &mut Out, g: &Graph, mut y: f64) -> f64 {
    y += 16.0;
    o.heading(y, "Topology");
    y += 12.0;
    let networks: Vec<&Node> = g.nodes.iter().filter(|n| n.kind == "network").collect();
    let count = networks.len().max(1) as f64;
    let net_w = ((W - 40.0 - (count - 1.0) * 20.0) / count).min(460.0);
    let mut centers: Vec<(String, (f64, f64))> = Vec::new();
    let mut row_bottom = y;
    let mut topo = Out { s: String::new() };
    for (i, net) in networks.iter().enumerate() {
        let x = 20.0 + i as f64 * (net_w + 20.0);
        let subnets: Vec<&Node> = g.children(&net.key).collect();
        let h = 44.0 + subnets.len() as f64 * 58.0;
        draw_node(&mut topo, net, x, y, net_w, h);
        for (j, s) in subnets.iter().enumerate() {
            let sy = y + 44.0 + j as f64 * 58.0;
            draw_node(&mut topo, s, x + 12.0, sy, net_w - 24.0, 48.0);
            centers.push((s.key.clone(), (x + net_w / 2.0, sy + 48.0)));
        }
        row_bottom = f64::max(row_bottom, y + h);
    }
    let center_of = |key: &str| centers.iter().find(|(k, _)| k == key).map(|(_, c)| *c);
    y = row_bottom + 36.0;
    let mut lines = Out { s: String::new() };
    let routers: Vec<&Node> = g
        .nodes
        .iter()
        .filter(|n| n.kind == "router" && n.parent.is_none())
        .collect();
    for (i, r) in routers.iter().enumerate() {
        let x = W / 2.0 - 110.0 + i as f64 * 240.0;
        draw_node(&mut topo, r, x, y, 220.0, 44.0);
        for e in g.edges.iter().filter(|e| e.from == r.key) {
            if let Some(to) = center_of(&e.to) {
                edge(&mut lines, (x + 110.0, y), to, e.drift, false);
            }
        }
    }
    if !routers.is_empty() {
        y += 44.0 + 30.0;
    }
    let mut x = 20.0;
    let others: Vec<&Node> = g
        .nodes
        .iter()
        .filter(|n| n.kind != "network" && n.kind != "router" && n.parent.is_none())
        .collect();
    for n in &others {
        if x + 340.0 > W {
            x = 20.0;
            y += 76.0;
        }
        draw_node(&mut topo, n, x, y, 340.0, 50.0);
        for e in g.edges.iter().filter(|e| e.from == n.key) {
            if let Some(to) = center_of(&e.to) {
                edge(&mut lines, (x + 170.0, y), to, e.drift, true);
            }
        }
        x += 360.0;
    }
    if !others.is_empty() {
        y += 50.0;
    }
    // Lines under the boxes.
    o.s.push_str(&lines.s);
    o.s.push_str(&topo.s);
    y
}

/// Each pending change with its fields; returns the y below.
fn pending_changes(o: &mut Out, g: &Graph, mut y: f64) -> f64 {
    let changed: Vec<(&Node, &String)> = g
        .nodes
        .iter()
        .flat_map(|n| n.changes.iter().map(move |c| (n, c)))
        .collect();
    if g.pending() > 0 {
        y += 34.0;
        o.heading(y, "Pending changes");
        for n in g.nodes.iter().filter(|n| n.drift != Drift::Same) {
            y += 18.0;
            let (stroke, _) = n.drift.colors();
            o.text(
                None,
                30.0,
                y,
                12.0,
                "start",
                "normal",
                stroke,
                &format!("{} {} {}", n.drift.sign(), kind_word(n.kind), n.name),
            );
            for (_, c) in changed.iter().filter(|(m, _)| m.key == n.key) {
                y += 16.0;
                o.text(None, 50.0, y, 11.0, "start", "normal", "#57606a", c);
            }
        }
    }
    y
}

/// One subnet's bar; returns the y below it.
fn address_plan(o: &mut Out, p: &AddressPlan, top: f64) -> f64 {
    let base = format!("plan-{}", ident(&p.subnet));
    let role = format!("{:?}", p.role).to_lowercase();
    let sign = if p.drift == Drift::Same {
        String::new()
    } else {
        format!("{} ", p.drift.sign())
    };
    let pending = if p.drift == Drift::Same {
        String::new()
    } else {
        format!(" · pending {}", p.drift.word())
    };
    let (stroke, _) = p.drift.colors();
    o.text(
        Some(&format!("{base}-title")),
        20.0,
        top,
        13.0,
        "start",
        "bold",
        if p.drift == Drift::Same {
            "#1f2328"
        } else {
            stroke
        },
        &format!("{sign}{} {} ({role}{pending})", p.subnet, p.cidr),
    );
    let bar_y = top + 34.0;
    let bar_h = 28.0;
    let _ = writeln!(
        o.s,
        "<rect id=\"{base}-bar\" data-cidr=\"{}\" data-drift=\"{}\" x=\"{BAR_X}\" y=\"{bar_y:.1}\" width=\"{BAR_W}\" height=\"{bar_h}\" fill=\"#f6f8fa\" stroke=\"{stroke}\" stroke-width=\"{}\"/>",
        p.cidr,
        p.drift.word(),
        if p.drift == Drift::Same { 1.0 } else { 2.5 }
    );
    let mut pools = 0;
    for s in &p.segments {
        let (id, fill) = match s.kind {
            SegmentKind::KubernetesRange => (format!("{base}-kubernetes-range"), "#ddf4ff"),
            SegmentKind::Pool => {
                pools += 1;
                (format!("{base}-pool-{}", pools - 1), "#dafbe1")
            }
        };
        let x1 = BAR_X + p.fraction(s.start) * BAR_W;
        let x2 = BAR_X + p.fraction_after(s.end) * BAR_W;
        let w = (x2 - x1).max(1.0);
        let _ = writeln!(
            o.s,
            "<rect id=\"{id}\" data-start=\"{}\" data-end=\"{}\" x=\"{x1:.3}\" y=\"{bar_y:.1}\" width=\"{w:.3}\" height=\"{bar_h}\" fill=\"{fill}\" stroke=\"#8c959f\" stroke-width=\"0.8\"/>",
            s.start, s.end
        );
        if w > 150.0 {
            o.text(
                None,
                x1 + w / 2.0,
                bar_y + 18.0,
                11.0,
                "middle",
                "normal",
                "#1f2328",
                &s.label,
            );
        }
        // Starts on the first line under the bar, ends on the second, so
        // the two sides of a split never collide.
        o.text(
            Some(&format!("{id}-start")),
            x1,
            bar_y + bar_h + 14.0,
            10.0,
            "start",
            "normal",
            "#1f2328",
            &s.start.to_string(),
        );
        let anchor = if x2 - BAR_X < 120.0 { "start" } else { "end" };
        o.text(
            Some(&format!("{id}-end")),
            x2,
            bar_y + bar_h + 28.0,
            10.0,
            anchor,
            "normal",
            "#1f2328",
            &s.end.to_string(),
        );
    }
    for m in &p.markers {
        let id = format!("{base}-{}", m.kind);
        let x = BAR_X + (p.fraction(m.addr) + p.fraction_after(m.addr)) / 2.0 * BAR_W;
        let _ = writeln!(
            o.s,
            "<line id=\"{id}\" data-addr=\"{}\" x1=\"{x:.3}\" y1=\"{:.1}\" x2=\"{x:.3}\" y2=\"{:.1}\" stroke=\"#cf222e\" stroke-width=\"2\"/>",
            m.addr,
            bar_y - 8.0,
            bar_y + bar_h + 2.0
        );
        let anchor = if x > BAR_X + BAR_W / 2.0 {
            "end"
        } else {
            "start"
        };
        o.text(
            Some(&format!("{id}-label")),
            x,
            bar_y - 11.0,
            10.0,
            anchor,
            "normal",
            "#cf222e",
            &m.label,
        );
    }
    bar_y + bar_h + 40.0
}
