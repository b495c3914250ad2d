//! The Kubernetes API load balancer's part of the diff: the LB, its pool,
//! its listener and one member per API host, matched by name under
//! this pipeline's tag. Octavia cannot move a VIP: a changed VIP is a
//! refusal unless `--replace`.

use super::RunOptions;
use super::change::{Action, Change, ChangeSet, FieldChange, Target, describe_immutable};
use super::observe::Observed;
use super::value::{belongs, str_of};
use crate::plan::{Loadbalancer, Plan, Step};
use serde_json::Value;
use std::net::IpAddr;

fn push(
    set: &mut ChangeSet,
    target: Target,
    action: Action,
    found: Option<&Value>,
    fields: Vec<FieldChange>,
) {
    set.changes.push(Change {
        target,
        action,
        id: found.map(|v| str_of(v, "id").to_string()),
        fields,
    });
}

pub fn diff_loadbalancers(plan: &Plan, obs: &Observed, set: &mut ChangeSet, options: RunOptions) {
    let wanted: Vec<&Loadbalancer> = plan
        .steps
        .iter()
        .filter_map(|s| {
            if let Step::Loadbalancer(lb) = s {
                Some(lb)
            } else {
                None
            }
        })
        .collect();
    for lb in &wanted {
        diff_one(obs, set, options, lb);
    }
    // Owned load balancers whose step is gone: children first.
    for v in &obs.loadbalancers {
        let name = str_of(v, "name");
        if wanted.iter().any(|w| w.name == name) {
            continue;
        }
        delete_children(obs, set, v);
        push(
            set,
            Target::Loadbalancer { name: name.into() },
            Action::Delete,
            Some(v),
            Vec::new(),
        );
    }
}

fn delete_children(obs: &Observed, set: &mut ChangeSet, lb: &Value) {
    let lb_name = str_of(lb, "name");
    let lb_id = str_of(lb, "id");
    for l in obs.listeners.iter().filter(|l| belongs(l, lb_id)) {
        delete_listener(set, lb_name, l);
    }
    for p in obs.pools.iter().filter(|p| belongs(p, lb_id)) {
        delete_pool(obs, set, lb_name, p);
    }
}

fn delete_listener(set: &mut ChangeSet, lb_name: &str, l: &Value) {
    push(
        set,
        Target::Listener {
            loadbalancer: lb_name.into(),
            name: str_of(l, "name").into(),
        },
        Action::Delete,
        Some(l),
        Vec::new(),
    );
}

/// A pool's delete, after its members' (apply orders them by wave).
fn delete_pool(obs: &Observed, set: &mut ChangeSet, lb_name: &str, p: &Value) {
    for m in obs.members.get(str_of(p, "id")).into_iter().flatten() {
        push(
            set,
            Target::Member {
                loadbalancer: lb_name.into(),
                pool: str_of(p, "name").into(),
                name: str_of(m, "name").into(),
            },
            Action::Delete,
            Some(m),
            Vec::new(),
        );
    }
    push(
        set,
        Target::Pool {
            loadbalancer: lb_name.into(),
            name: str_of(p, "name").into(),
        },
        Action::Delete,
        Some(p),
        Vec::new(),
    );
}

/// The load balancer step against the cloud: which one it is, then the
/// load balancer itself, its pool, listener and members, then the owned
/// children no step wants.
fn diff_one(obs: &Observed, set: &mut ChangeSet, options: RunOptions, lb: &Loadbalancer) {
    let Some((found, adopting)) = match_loadbalancer(obs, set, options, lb) else {
        return;
    };
    let Some(replace) = diff_loadbalancer_itself(obs, set, options, lb, found, adopting) else {
        return;
    };
    let lb_id = if replace {
        None
    } else {
        found.map(|v| str_of(v, "id").to_string())
    };
    let children = Children::of(obs, lb_id.as_deref(), adopting);
    let pool = diff_pool(set, lb, &children);
    diff_listener(set, lb, &children, pool);
    let members: Vec<Value> = pool
        .and_then(|p| children.members_of(str_of(p, "id")))
        .cloned()
        .unwrap_or_default();
    diff_members(set, lb, &children, &members);
    delete_unwanted(obs, set, lb, &children, &members);
}

/// The cloud's load balancer for the step, and whether `--adopt` takes it
/// over: `Some((None, false))` when there is none (a create), `None` when
/// the step is refused (duplicates, or an unowned one without --adopt).
fn match_loadbalancer<'o>(
    obs: &'o Observed,
    set: &mut ChangeSet,
    options: RunOptions,
    lb: &Loadbalancer,
) -> Option<(Option<&'o Value>, bool)> {
    let same_named: Vec<&Value> = obs
        .loadbalancers
        .iter()
        .filter(|v| v["name"] == lb.name.as_str())
        .collect();
    if same_named.len() > 1 {
        set.refusals.push(super::change::duplicates_refusal(
            &crate::cloud::Kind::LoadBalancer,
            &lb.name,
            &same_named,
        ));
        return None;
    }
    let found = same_named.first().copied();
    // The step's subnet, ours or (being adopted) not yet: a same-named load
    // balancer on another subnet is not the one this step stands for.
    let vip_subnet = obs
        .find(&crate::cloud::Kind::Subnet, &lb.subnet)
        .or_else(|| {
            obs.foreign(&crate::cloud::Kind::Subnet)
                .iter()
                .find(|s| s["name"] == lb.subnet.as_str())
        })
        .map(|s| str_of(s, "id"));
    let foreign: Vec<&Value> = obs
        .foreign(&crate::cloud::Kind::LoadBalancer)
        .iter()
        .filter(|v| v["name"] == lb.name.as_str())
        .filter(|v| vip_subnet.is_none_or(|id| str_of(v, "vip_subnet_id") == id))
        .collect();
    // --adopt takes over one same-named load balancer no pipeline owns,
    // with its children (observe read them as adoptable).
    let adopting = found.is_none()
        && options.adopt
        && matches!(foreign.as_slice(), [f] if super::ownership::owner_of(f).is_none());
    if adopting {
        return Some((foreign.first().copied(), true));
    }
    if found.is_none()
        && let Some(f) = foreign.first()
    {
        set.refusals.push(format!(
                "load balancer `{}` ({}) exists but kuryr6 does not own it (Kuryr may have made it for the `kubernetes` service); run again with --adopt to tag and manage it, delete it, or rename the step",
                lb.name,
                str_of(f, "id")
            ));
        return None;
    }
    Some((found, false))
}

/// The load balancer's own change. `Some(true)`: it is replaced (its VIP
/// moved, with --replace), so its children are all new; `None`: refused.
fn diff_loadbalancer_itself(
    obs: &Observed,
    set: &mut ChangeSet,
    options: RunOptions,
    lb: &Loadbalancer,
    found: Option<&Value>,
    adopting: bool,
) -> Option<bool> {
    let target = || Target::Loadbalancer {
        name: lb.name.clone(),
    };
    let Some(v) = found else {
        push(set, target(), Action::Create, None, Vec::new());
        return Some(false);
    };
    let subnet_id = obs
        .find(&crate::cloud::Kind::Subnet, &lb.subnet)
        .map(|s| str_of(s, "id").to_string());
    let mut immutable = Vec::new();
    if v["vip_address"]
        .as_str()
        .and_then(|a| a.parse::<IpAddr>().ok())
        != Some(lb.vip)
    {
        immutable.push(FieldChange {
            field: "vip_address".into(),
            from: str_of(v, "vip_address").into(),
            to: lb.vip.to_string(),
        });
    }
    if subnet_id
        .as_deref()
        .is_some_and(|id| id != str_of(v, "vip_subnet_id"))
    {
        immutable.push(FieldChange {
            field: "vip_subnet".into(),
            from: str_of(v, "vip_subnet_id").into(),
            to: lb.subnet.clone(),
        });
    }
    // Octavia cannot change a load balancer's provider either.
    if let Some(provider) = &lb.provider
        && str_of(v, "provider") != provider
    {
        immutable.push(FieldChange {
            field: "provider".into(),
            from: str_of(v, "provider").into(),
            to: provider.clone(),
        });
    }
    if immutable.is_empty() {
        let action = if adopting {
            Action::Adopt
        } else {
            Action::NoOp
        };
        push(set, target(), action, Some(v), Vec::new());
        return Some(false);
    }
    if !options.replace {
        set.refusals.push(format!(
            "load balancer `{}`: {}; Octavia cannot move a VIP or change a provider. Run again with --replace to delete and re-create it",
            lb.name,
            describe_immutable(&immutable)
        ));
        return None;
    }
    delete_children(obs, set, v);
    push(set, target(), Action::Replace, Some(v), immutable);
    Some(true)
}

/// The children of the load balancer a step stands for, as observed: its
/// own, or those of one being adopted (tagged as they are matched).
struct Children<'o> {
    obs: &'o Observed,
    pools: Vec<Value>,
    listeners: Vec<Value>,
    adopting: bool,
}

impl<'o> Children<'o> {
    fn of(obs: &'o Observed, lb_id: Option<&str>, adopting: bool) -> Children<'o> {
        let children = |list: &[Value]| -> Vec<Value> {
            lb_id
                .map(|id| list.iter().filter(|v| belongs(v, id)).cloned().collect())
                .unwrap_or_default()
        };
        let (pools, listeners) = if adopting {
            (
                children(&obs.adoptable_pools),
                children(&obs.adoptable_listeners),
            )
        } else {
            (children(&obs.pools), children(&obs.listeners))
        };
        Children {
            obs,
            pools,
            listeners,
            adopting,
        }
    }

    /// A child of an adopted load balancer is tagged as it is matched.
    fn kept(&self, action: Action) -> Action {
        if self.adopting && matches!(action, Action::NoOp | Action::Update) {
            Action::Adopt
        } else {
            action
        }
    }

    fn members_of(&self, pool_id: &str) -> Option<&'o Vec<Value>> {
        if self.adopting {
            self.obs.adoptable_members.get(pool_id)
        } else {
            self.obs.members.get(pool_id)
        }
    }
}

/// The pool of the step's name; returns it as found.
fn diff_pool<'c>(
    set: &mut ChangeSet,
    lb: &Loadbalancer,
    children: &'c Children,
) -> Option<&'c Value> {
    let pool = children
        .pools
        .iter()
        .find(|p| p["name"] == lb.pool_name.as_str());
    let target = Target::Pool {
        loadbalancer: lb.name.clone(),
        name: lb.pool_name.clone(),
    };
    match pool {
        None => push(set, target, Action::Create, None, Vec::new()),
        Some(p) if str_of(p, "lb_algorithm") != lb.algorithm => {
            let f = FieldChange {
                field: "lb_algorithm".into(),
                from: str_of(p, "lb_algorithm").into(),
                to: lb.algorithm.clone(),
            };
            push(set, target, children.kept(Action::Update), Some(p), vec![f]);
        }
        Some(p) => push(
            set,
            target,
            children.kept(Action::NoOp),
            Some(p),
            Vec::new(),
        ),
    }
    pool
}

/// The listener: a new port or protocol is a replacement, a new default pool an
/// update.
fn diff_listener(
    set: &mut ChangeSet,
    lb: &Loadbalancer,
    children: &Children,
    pool: Option<&Value>,
) {
    let lname = lb.listener_name();
    let listener = children
        .listeners
        .iter()
        .find(|l| l["name"] == lname.as_str());
    let target = Target::Listener {
        loadbalancer: lb.name.clone(),
        name: lname,
    };
    let Some(l) = listener else {
        push(set, target, Action::Create, None, Vec::new());
        return;
    };
    let pool_ok = pool.is_some_and(|p| l["default_pool_id"] == p["id"]);
    if l["protocol_port"].as_u64() != Some(u64::from(lb.listener_port)) {
        let f = FieldChange {
            field: "protocol_port".into(),
            from: l["protocol_port"].to_string(),
            to: lb.listener_port.to_string(),
        };
        push(set, target, Action::Replace, Some(l), vec![f]);
    } else if l["protocol"] != lb.protocol() {
        let f = FieldChange {
            field: "protocol".into(),
            from: str_of(l, "protocol").into(),
            to: lb.protocol().into(),
        };
        push(set, target, Action::Replace, Some(l), vec![f]);
    } else if !pool_ok {
        let f = FieldChange {
            field: "default_pool".into(),
            from: str_of(l, "default_pool_id").into(),
            to: lb.pool_name.clone(),
        };
        push(set, target, children.kept(Action::Update), Some(l), vec![f]);
    } else {
        push(
            set,
            target,
            children.kept(Action::NoOp),
            Some(l),
            Vec::new(),
        );
    }
}

/// One member per API host; a moved address or port is a replacement.
fn diff_members(set: &mut ChangeSet, lb: &Loadbalancer, children: &Children, members: &[Value]) {
    for host in &lb.members {
        let target = Target::Member {
            loadbalancer: lb.name.clone(),
            pool: lb.pool_name.clone(),
            name: host.name.clone(),
        };
        match members.iter().find(|m| m["name"] == host.name.as_str()) {
            None => push(set, target, Action::Create, None, Vec::new()),
            Some(m) => {
                let same_addr = m["address"].as_str().and_then(|a| a.parse::<IpAddr>().ok())
                    == Some(host.address);
                if same_addr && m["protocol_port"].as_u64() == Some(u64::from(lb.member_port)) {
                    push(
                        set,
                        target,
                        children.kept(Action::NoOp),
                        Some(m),
                        Vec::new(),
                    );
                } else {
                    let f = FieldChange {
                        field: "address".into(),
                        from: format!("{}:{}", str_of(m, "address"), m["protocol_port"]),
                        to: format!("{}:{}", host.address, lb.member_port),
                    };
                    push(set, target, Action::Replace, Some(m), vec![f]);
                }
            }
        }
    }
}

/// Owned children of this load balancer that no step wants (a listener of
/// an old port, a pool of an old name) go: listeners first, then the pools
/// with their members (see apply's delete waves). Children of a load
/// balancer being adopted are someone else's until tagged: those the
/// pipeline does not name stay.
fn delete_unwanted(
    obs: &Observed,
    set: &mut ChangeSet,
    lb: &Loadbalancer,
    children: &Children,
    members: &[Value],
) {
    if !children.adopting {
        for l in &children.listeners {
            if l["name"] != lb.listener_name().as_str() {
                delete_listener(set, &lb.name, l);
            }
        }
        for p in &children.pools {
            if p["name"] != lb.pool_name.as_str() {
                delete_pool(obs, set, &lb.name, p);
            }
        }
    }
    for m in members {
        if !lb.members.iter().any(|h| m["name"] == h.name.as_str()) {
            push(
                set,
                Target::Member {
                    loadbalancer: lb.name.clone(),
                    pool: lb.pool_name.clone(),
                    name: str_of(m, "name").into(),
                },
                Action::Delete,
                Some(m),
                Vec::new(),
            );
        }
    }
}
