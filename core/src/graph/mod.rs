//! `kuryr6 graph`: the plan as a picture. `build` turns a plan (and, against
//! a cloud, the diff's change set) into a `Graph` of topology nodes and
//! per-subnet address plans; `svg`, `dot` and `mermaid` render it as text.
//! Pure: no I/O, no cloud calls (the command runs `engine::diff` first).

pub mod dot;
pub mod mermaid;
pub mod svg;

use crate::addr;
use crate::engine::change::{Action, ChangeSet, Target};
use crate::plan::{Plan, Role, Step};
use ipnet::IpNet;
use std::net::IpAddr;

/// What is pending for a node (from `engine::diff`); `Same` offline and
/// for converged resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    Same,
    Create,
    Update,
    Adopt,
    Replace,
    Delete,
}

impl Drift {
    fn of(action: Action) -> Drift {
        match action {
            Action::NoOp => Drift::Same,
            Action::Create => Drift::Create,
            Action::Update => Drift::Update,
            Action::Adopt => Drift::Adopt,
            Action::Replace => Drift::Replace,
            Action::Delete => Drift::Delete,
        }
    }

    /// Stable word for attributes and classes.
    pub fn word(self) -> &'static str {
        match self {
            Drift::Same => "same",
            Drift::Create => "create",
            Drift::Update => "update",
            Drift::Adopt => "adopt",
            Drift::Replace => "replace",
            Drift::Delete => "delete",
        }
    }

    /// The sign `kuryr6 plan` prints for it.
    pub fn sign(self) -> &'static str {
        match self {
            Drift::Same => "",
            Drift::Create => "+",
            Drift::Update => "~",
            Drift::Adopt => "&",
            Drift::Replace => "±",
            Drift::Delete => "-",
        }
    }

    /// Stroke and fill colours.
    pub fn colors(self) -> (&'static str, &'static str) {
        match self {
            Drift::Same => ("#57606a", "#ffffff"),
            Drift::Create => ("#1a7f37", "#dafbe1"),
            Drift::Update => ("#bc4c00", "#fff1e5"),
            Drift::Adopt => ("#0969da", "#ddf4ff"),
            Drift::Replace => ("#8250df", "#fbefff"),
            Drift::Delete => ("#cf222e", "#ffebe9"),
        }
    }

    pub const PENDING: [Drift; 5] = [
        Drift::Create,
        Drift::Update,
        Drift::Adopt,
        Drift::Replace,
        Drift::Delete,
    ];
}

#[derive(Debug, Clone)]
pub struct Node {
    /// `kind:name`, unique.
    pub key: String,
    pub kind: &'static str,
    pub name: String,
    /// Lines shown under the name (CIDR, VIP …).
    pub detail: Vec<String>,
    pub drift: Drift,
    /// Changed fields, `field: cloud → plan`.
    pub changes: Vec<String>,
    /// The network a subnet sits on.
    pub parent: Option<String>,
}

impl Node {
    /// Its label in the text formats: kind and name, details, and when it
    /// drifts, its sign, the pending action and the changed fields.
    pub fn label_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("{} {}", self.kind.replace('_', " "), self.name)];
        lines.extend(self.detail.iter().cloned());
        if self.drift != Drift::Same {
            lines[0] = format!("{} {}", self.drift.sign(), lines[0]);
            lines.push(format!("pending {}", self.drift.word()));
            lines.extend(self.changes.iter().cloned());
        }
        lines
    }
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: &'static str,
    pub drift: Drift,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// The Kubernetes service range (first half of a service subnet).
    KubernetesRange,
    /// A Neutron allocation pool.
    Pool,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub kind: SegmentKind,
    pub label: String,
    pub start: IpAddr,
    pub end: IpAddr,
}

#[derive(Debug, Clone)]
pub struct Marker {
    /// `gateway`, `vip`.
    pub kind: &'static str,
    pub label: String,
    pub addr: IpAddr,
}

/// One subnet's addresses, to scale.
#[derive(Debug, Clone)]
pub struct AddressPlan {
    pub subnet: String,
    pub role: Role,
    pub cidr: IpNet,
    pub segments: Vec<Segment>,
    pub markers: Vec<Marker>,
    pub drift: Drift,
}

impl AddressPlan {
    /// Where `a` lies in the subnet, from 0 (network address) to 1 (one past
    /// the last): what the picture scales by.
    pub fn fraction(&self, a: IpAddr) -> f64 {
        let size = addr::size(&self.cidr) as f64;
        addr::span_len(self.cidr.network(), a).saturating_sub(1) as f64 / size
    }

    /// `fraction` of the address after `a` (the right edge of a range ending at `a`).
    pub fn fraction_after(&self, a: IpAddr) -> f64 {
        let size = addr::size(&self.cidr) as f64;
        addr::span_len(self.cidr.network(), a) as f64 / size
    }
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub pipeline: String,
    /// "plan (offline)" or "against <cloud>: …".
    pub subtitle: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub plans: Vec<AddressPlan>,
}

impl Graph {
    pub fn node(&self, key: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.key == key)
    }

    /// The nodes drawn inside `parent` (a network's subnets).
    pub fn children<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a Node> {
        self.nodes
            .iter()
            .filter(move |n| n.parent.as_deref() == Some(parent))
    }

    /// The nodes that stand on their own: not a network, not inside one.
    pub fn free_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .iter()
            .filter(|n| n.kind != "network" && n.parent.is_none())
    }

    /// Writes the nodes as the text formats nest them: each network a
    /// group (`open` writes its first lines, `close` its last) around its
    /// children, then the free nodes; `node` writes one at an indent.
    pub fn write_nested(
        &self,
        out: &mut String,
        open: impl Fn(&mut String, &Node),
        close: &str,
        node: impl Fn(&mut String, &str, &Node),
    ) {
        for net in self.nodes.iter().filter(|n| n.kind == "network") {
            open(out, net);
            for s in self.children(&net.key) {
                node(out, "    ", s);
            }
            out.push_str(close);
        }
        for n in self.free_nodes() {
            node(out, "  ", n);
        }
    }

    pub fn pending(&self) -> usize {
        self.nodes.iter().filter(|n| n.drift != Drift::Same).count()
    }
}

fn key(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

/// The node a change is about, and whether it is the node's own change
/// (a rule or member change only marks its parent as updated).
fn node_of(t: &Target) -> (String, bool) {
    let (step, name) = t.step();
    (key(step.as_str(), name), t.kind().step().is_some())
}

/// The graph of `plan`; with `changes` (a cloud diff), nodes carry drift.
pub fn build(plan: &Plan, changes: Option<&ChangeSet>, subtitle: String) -> Graph {
    let mut g = Graph {
        pipeline: plan.pipeline.clone(),
        subtitle,
        nodes: Vec::new(),
        edges: Vec::new(),
        plans: Vec::new(),
    };
    let mut node = |kind: &'static str, name: &str, detail: Vec<String>, parent: Option<String>| {
        g.nodes.push(Node {
            key: key(kind, name),
            kind,
            name: name.to_string(),
            detail,
            drift: Drift::Same,
            changes: Vec::new(),
            parent,
        });
    };
    for step in &plan.steps {
        match step {
            Step::Network(n) => node("network", &n.name, Vec::new(), None),
            Step::Subnet(s) => node(
                "subnet",
                &s.name,
                vec![s.cidr.to_string(), format!("{:?}", s.role).to_lowercase()],
                Some(key("network", &s.network)),
            ),
            Step::Router(r) => node(
                "router",
                &r.name,
                vec![format!("{} interface(s)", r.interfaces.len())],
                None,
            ),
            Step::SecurityGroup(sg) => node(
                "security_group",
                &sg.name,
                vec![format!("{} rule(s)", sg.rules.len())],
                None,
            ),
            Step::Loadbalancer(lb) => node(
                "loadbalancer",
                &lb.name,
                vec![
                    format!("VIP {}", lb.vip),
                    format!(
                        "HTTPS {} → {} member(s):{}",
                        lb.listener_port,
                        lb.members.len(),
                        lb.member_port
                    ),
                ],
                None,
            ),
            Step::Emit(_) => {}
        }
    }
    for step in &plan.steps {
        match step {
            Step::Router(r) => {
                for s in &r.interfaces {
                    g.edges.push(Edge {
                        from: key("router", &r.name),
                        to: key("subnet", s),
                        label: "interface",
                        drift: Drift::Same,
                    });
                }
            }
            Step::Loadbalancer(lb) => g.edges.push(Edge {
                from: key("loadbalancer", &lb.name),
                to: key("subnet", &lb.subnet),
                label: "VIP in",
                drift: Drift::Same,
            }),
            Step::Emit(e) => {
                for sg in &e.security_groups {
                    g.edges.push(Edge {
                        from: key("security_group", sg),
                        to: key("subnet", &e.pod_subnet),
                        label: "pods",
                        drift: Drift::Same,
                    });
                }
            }
            _ => {}
        }
    }
    for s in plan.subnets() {
        g.plans.push(address_plan(plan, s));
    }
    if let Some(set) = changes {
        mark(&mut g, set);
    }
    g
}

fn address_plan(plan: &Plan, s: &crate::plan::Subnet) -> AddressPlan {
    let mut segments = Vec::new();
    let mut markers = vec![Marker {
        kind: "gateway",
        label: format!("gateway {}", s.gateway_ip),
        addr: s.gateway_ip,
    }];
    if s.role == Role::Service
        && let Some(l) = addr::service_layout(&s.cidr)
    {
        segments.push(Segment {
            kind: SegmentKind::KubernetesRange,
            label: format!("Kubernetes services {}", l.kubernetes_range),
            start: l.kubernetes_range.network(),
            end: addr::last(&l.kubernetes_range),
        });
        let lb = plan.steps.iter().find_map(|st| match st {
            Step::Loadbalancer(lb) if lb.subnet == s.name => Some(lb),
            _ => None,
        });
        match lb {
            Some(lb) => markers.push(Marker {
                kind: "vip",
                label: format!("API VIP {}", lb.vip),
                addr: lb.vip,
            }),
            None => markers.push(Marker {
                kind: "vip",
                label: format!("kubernetes.default {}", l.kubernetes_default_ip),
                addr: l.kubernetes_default_ip,
            }),
        }
    }
    for p in &s.allocation_pools {
        segments.push(Segment {
            kind: SegmentKind::Pool,
            label: "Neutron pool".into(),
            start: p.start,
            end: p.end,
        });
    }
    AddressPlan {
        subnet: s.name.clone(),
        role: s.role,
        cidr: s.cidr,
        segments,
        markers,
        drift: Drift::Same,
    }
}

fn mark(g: &mut Graph, set: &ChangeSet) {
    for c in &set.changes {
        if c.action == Action::NoOp {
            continue;
        }
        let (k, own) = node_of(&c.target);
        let drift = Drift::of(c.action);
        // Children of a deleted node are deleted with it; an orphan gets a node of its own.
        if g.node(&k).is_none() {
            if !own {
                continue;
            }
            let (kind, name) = k.split_once(':').unwrap_or(("", &k));
            let kind = match kind {
                "network" => "network",
                "subnet" => "subnet",
                "router" => "router",
                "security_group" => "security_group",
                _ => "loadbalancer",
            };
            g.nodes.push(Node {
                key: k.clone(),
                kind,
                name: name.to_string(),
                detail: vec!["not in the pipeline".into()],
                drift,
                changes: Vec::new(),
                parent: None,
            });
            continue;
        }
        if let Some(n) = g.nodes.iter_mut().find(|n| n.key == k) {
            if own {
                n.drift = drift;
            } else if n.drift == Drift::Same {
                n.drift = Drift::Update;
            }
            if own {
                n.changes.extend(
                    c.fields
                        .iter()
                        .map(|f| format!("{}: {} → {}", f.field, f.from, f.to)),
                );
            } else {
                n.changes.push(format!("{} {}", drift.sign(), c.target));
            }
        }
        if let Target::Interface { router, subnet } = &c.target {
            for e in &mut g.edges {
                if e.from == key("router", router) && e.to == key("subnet", subnet) {
                    e.drift = drift;
                }
            }
        }
    }
    for p in &mut g.plans {
        if let Some(n) = g.nodes.iter().find(|n| n.key == key("subnet", &p.subnet)) {
            p.drift = n.drift;
        }
    }
}

/// Text that goes into XML attributes and content.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A name as an identifier (SVG ids, Mermaid node ids): other characters become `_`.
pub(crate) fn ident(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
