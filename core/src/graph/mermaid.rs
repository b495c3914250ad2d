//! The graph as a Mermaid flowchart (renders in GitHub, GitLab and most
//! wikis): networks as subgraphs, drift as classes, address plans as notes.

use super::{Drift, Graph, Node, ident};
use std::fmt::Write;

/// A Mermaid label: quotes and markup characters as entities, lines as `<br/>`.
fn text(lines: &[String]) -> String {
    let body: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replace('&', "#amp;")
                .replace('"', "#quot;")
                .replace('<', "#lt;")
                .replace('>', "#gt;")
        })
        .collect();
    format!("\"{}\"", body.join("<br/>"))
}

/// Mermaid ids: letters, digits and `_` only (a `-` can read as part of a link).
fn id(key: &str) -> String {
    ident(key).replace('-', "_")
}

fn node(out: &mut String, indent: &str, n: &Node) {
    let _ = writeln!(out, "{indent}{}[{}]", id(&n.key), text(&n.label_lines()));
}

pub fn render(g: &Graph) -> String {
    let mut out = String::new();
    let title = format!("kuryr6 pipeline {} — {}", g.pipeline, g.subtitle).replace('\'', "''");
    let _ = writeln!(out, "---\ntitle: '{title}'\n---");
    let _ = writeln!(out, "flowchart LR");
    let subgraph = |out: &mut String, net: &Node| {
        let mut title = vec![format!("network {}", net.name)];
        if net.drift != Drift::Same {
            title[0] = format!(
                "{} {} (pending {})",
                net.drift.sign(),
                title[0],
                net.drift.word()
            );
        }
        let _ = writeln!(out, "  subgraph {}[{}]", id(&net.key), text(&title));
    };
    g.write_nested(&mut out, subgraph, "  end\n", node);
    for e in &g.edges {
        let arrow = if e.from.starts_with("router:") {
            "---"
        } else {
            "-.->"
        };
        let _ = writeln!(out, "  {} {arrow}|{}| {}", id(&e.from), e.label, id(&e.to));
    }
    for p in &g.plans {
        let mut lines = vec![format!("address plan {} {}", p.subnet, p.cidr)];
        for s in &p.segments {
            lines.push(format!("{}: {} – {}", s.label, s.start, s.end));
        }
        lines.extend(p.markers.iter().map(|m| m.label.clone()));
        let key = id(&format!("plan:{}", p.subnet));
        let _ = writeln!(out, "  {key}>{}]", text(&lines));
        let _ = writeln!(out, "  {} -.- {key}", id(&format!("subnet:{}", p.subnet)));
    }
    for d in Drift::PENDING {
        let (stroke, fill) = d.colors();
        let _ = writeln!(
            out,
            "  classDef {} fill:{fill},stroke:{stroke},stroke-width:2px",
            d.word()
        );
        let members: Vec<String> = g
            .nodes
            .iter()
            .filter(|n| n.drift == d)
            .map(|n| id(&n.key))
            .collect();
        if !members.is_empty() {
            let _ = writeln!(out, "  class {} {}", members.join(","), d.word());
        }
    }
    out
}
