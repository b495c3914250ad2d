//! The graph in Graphviz DOT: networks as clusters holding their subnets,
//! edges for router interfaces, load-balancer VIPs and security groups, and
//! one note node per subnet with its address plan.

use super::{Drift, Graph, Node, SegmentKind};
use std::fmt::Write;

/// A DOT string literal.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn label(n: &Node) -> String {
    n.label_lines().join("\n")
}

fn node_line(out: &mut String, indent: &str, n: &Node) {
    let (stroke, fill) = n.drift.colors();
    let _ = writeln!(
        out,
        "{indent}{} [label={}, color={}, fillcolor={}{}];",
        q(&n.key),
        q(&label(n)),
        q(stroke),
        q(fill),
        if n.drift == Drift::Same {
            ""
        } else {
            ", penwidth=2.5"
        }
    );
}

pub fn render(g: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", q(&format!("kuryr6 {}", g.pipeline)));
    let _ = writeln!(
        out,
        "  label={};\n  labelloc=t;\n  rankdir=LR;\n  fontname=\"sans-serif\";\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\", fontsize=10];",
        q(&format!("pipeline {} — {}", g.pipeline, g.subtitle))
    );
    let cluster = |out: &mut String, net: &Node| {
        let (stroke, _) = net.drift.colors();
        let _ = writeln!(out, "  subgraph {} {{", q(&format!("cluster_{}", net.key)));
        let _ = writeln!(
            out,
            "    label={};\n    color={};",
            q(&label(net)),
            q(stroke)
        );
    };
    g.write_nested(&mut out, cluster, "  }\n", node_line);
    for e in &g.edges {
        let (stroke, _) = e.drift.colors();
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, color={}{}];",
            q(&e.from),
            q(&e.to),
            q(e.label),
            q(stroke),
            if e.from.starts_with("router:") {
                ""
            } else {
                ", style=dashed"
            }
        );
    }
    for p in &g.plans {
        let mut lines = vec![format!("address plan of {} ({})", p.subnet, p.cidr)];
        for s in &p.segments {
            let what = match s.kind {
                SegmentKind::KubernetesRange => s.label.clone(),
                SegmentKind::Pool => s.label.clone(),
            };
            lines.push(format!("{what}: {} – {}", s.start, s.end));
        }
        for m in &p.markers {
            lines.push(m.label.clone());
        }
        let key = format!("plan:{}", p.subnet);
        // `\l`: left-justified lines in a note.
        let text: String = lines
            .iter()
            .map(|l| format!("{}\\l", l.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        let _ = writeln!(
            out,
            "  {} [shape=note, style=filled, fillcolor=\"#f6f8fa\", label=\"{text}\"];",
            q(&key)
        );
        let _ = writeln!(
            out,
            "  {} -> {} [style=dotted, arrowhead=none];",
            q(&format!("subnet:{}", p.subnet)),
            q(&key)
        );
    }
    out.push_str("}\n");
    out
}
