//! What a diff produces and apply consumes: the change types, as data.
//! Its own module so that the diff of each resource family (`diff`,
//! `diff_lb`) and every consumer (`apply`, `lb`, `progress`, `report`,
//! `graph`) depend on it and not on each other.

use super::kind::TargetKind;
use super::value::str_of;
use crate::cloud::Kind;
use crate::plan::{Rule, StepKind};
use serde::Serialize;
use serde_json::Value;

/// What a change is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    Network {
        name: String,
    },
    Subnet {
        name: String,
    },
    Router {
        name: String,
    },
    Interface {
        router: String,
        subnet: String,
    },
    SecurityGroup {
        name: String,
    },
    Rule {
        group: String,
        rule: Rule,
    },
    Loadbalancer {
        name: String,
    },
    Listener {
        loadbalancer: String,
        name: String,
    },
    Pool {
        loadbalancer: String,
        name: String,
    },
    Member {
        loadbalancer: String,
        pool: String,
        name: String,
    },
}

impl Target {
    /// What kind of resource it is (see `kind` for what that tells).
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Network { .. } => TargetKind::Network,
            Target::Subnet { .. } => TargetKind::Subnet,
            Target::Router { .. } => TargetKind::Router,
            Target::Interface { .. } => TargetKind::Interface,
            Target::SecurityGroup { .. } => TargetKind::SecurityGroup,
            Target::Rule { .. } => TargetKind::Rule,
            Target::Loadbalancer { .. } => TargetKind::LoadBalancer,
            Target::Listener { .. } => TargetKind::Listener,
            Target::Pool { .. } => TargetKind::Pool,
            Target::Member { .. } => TargetKind::Member,
        }
    }

    /// The step it belongs to, by kind and name: its own step, or the
    /// router, group or load balancer that declares it.
    pub fn step(&self) -> (StepKind, &str) {
        let name = match self {
            Target::Network { name }
            | Target::Subnet { name }
            | Target::Router { name }
            | Target::SecurityGroup { name }
            | Target::Loadbalancer { name } => name,
            Target::Interface { router, .. } => router,
            Target::Rule { group, .. } => group,
            Target::Listener { loadbalancer, .. }
            | Target::Pool { loadbalancer, .. }
            | Target::Member { loadbalancer, .. } => loadbalancer,
        };
        (self.kind().row().declared_by, name)
    }

    /// The target of the resource a step of `kind` named `name` makes.
    pub fn of_step(kind: TargetKind, name: &str) -> Option<Target> {
        let name = name.to_string();
        match kind {
            TargetKind::Network => Some(Target::Network { name }),
            TargetKind::Subnet => Some(Target::Subnet { name }),
            TargetKind::Router => Some(Target::Router { name }),
            TargetKind::SecurityGroup => Some(Target::SecurityGroup { name }),
            TargetKind::LoadBalancer => Some(Target::Loadbalancer { name }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Network { name } => write!(f, "network {name}"),
            Target::Subnet { name } => write!(f, "subnet {name}"),
            Target::Router { name } => write!(f, "router {name}"),
            Target::Interface { router, subnet } => {
                write!(f, "router interface {router} ↔ {subnet}")
            }
            Target::SecurityGroup { name } => write!(f, "security group {name}"),
            Target::Rule { group, rule } => write!(f, "rule {group}: {}", describe_rule(rule)),
            Target::Loadbalancer { name } => write!(f, "load balancer {name}"),
            Target::Listener { name, .. } => write!(f, "listener {name}"),
            Target::Pool { name, .. } => write!(f, "pool {name}"),
            Target::Member { pool, name, .. } => write!(f, "member {name} of {pool}"),
        }
    }
}

pub fn describe_rule(r: &Rule) -> String {
    let mut s = format!(
        "{} {} {}",
        r.direction,
        r.ethertype,
        r.protocol.as_deref().unwrap_or("any")
    );
    if let Some(p) = r.remote_ip_prefix {
        s.push_str(&format!(" from {p}"));
    }
    if r.port_range_min.is_some() || r.port_range_max.is_some() {
        s.push_str(&format!(
            " ports {}-{}",
            r.port_range_min.unwrap_or(0),
            r.port_range_max.unwrap_or(65535)
        ));
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Tag a same-named resource kuryr6 did not make, then manage it.
    Adopt,
    /// Delete and re-create (immutable fields changed, `--replace` given).
    Replace,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub target: Target,
    pub action: Action,
    /// The cloud id, when the resource exists.
    pub id: Option<String>,
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeSet {
    pub pipeline: String,
    pub changes: Vec<Change>,
    /// Why the plan cannot be applied as asked (nothing is written if any).
    pub refusals: Vec<String>,
}

impl ChangeSet {
    pub fn pending(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// Two runs that overlapped without a lease (or a hand-made copy that was
/// adopted) can leave several owned resources with one name. Picking one
/// would make the ids in kuryr.conf change from run to run: refuse instead.
pub fn duplicates_refusal(kind: &Kind, name: &str, found: &[&Value]) -> String {
    let list: Vec<String> = found
        .iter()
        .map(|v| format!("{} (created {})", str_of(v, "id"), str_of(v, "created_at")))
        .collect();
    format!(
        "{} {kind}s named `{name}` are owned by this pipeline: {}; run `kuryr6 dedupe` on this pipeline to keep the oldest and delete the others",
        found.len(),
        list.join(", ")
    )
}

/// "cidr is A in the cloud, B in the pipeline; …" for a refusal.
pub fn describe_immutable(fields: &[FieldChange]) -> String {
    fields
        .iter()
        .map(|f| {
            format!(
                "{} is {} in the cloud, {} in the pipeline",
                f.field, f.from, f.to
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
