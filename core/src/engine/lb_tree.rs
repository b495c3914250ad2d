//! The load-balancer changes Octavia takes in one call instead of one per
//! object (each object costs a write and a wait for `ACTIVE`):
//!
//! - a new load balancer with its pool, listener and members: one fully
//!   populated create (`POST /v2/lbaas/loadbalancers` carrying `listeners`,
//!   their `default_pool` and its `members`), then one wait. Octavia makes
//!   the whole tree in one transaction, so after an ambiguous answer the
//!   read-back of the load balancer (`create`) stands for its tree; the
//!   tree is still checked, and a child that is missing is made on its own;
//! - an owned load balancer whose every child is this pipeline's: one
//!   cascade delete (`?cascade=true`). A child kuryr6 did not make (an
//!   untagged member, a health monitor, an L7 policy) would go with it, so
//!   then the load balancer is deleted child by child, and the run says why;
//! - several new members of one existing pool: one batch member update.
//!
//! `group` decides from the change set and what was observed; `apply` runs
//! each group as one task of its wave.

use super::EngineError;
use super::change::{Action, Change, ChangeSet, Target};
use super::create;
use super::ids::IdMap;
use super::kind::{Op, TargetKind};
use super::lb::{self, Look};
use super::observe::{Observed, str_of};
use super::ownership::Ownership;
use crate::cloud::{Cloud, CloudError, Kind};
use crate::plan::{Plan, StepKind};
use serde_json::{Value, json};

/// The single-call groups of a change set.
#[derive(Debug, Default)]
pub struct Groups<'a> {
    /// A load balancer to create (or re-create) with its children's creates.
    pub trees: Vec<(&'a Change, Vec<&'a Change>)>,
    /// A load balancer to delete with its children's deletes.
    pub cascades: Vec<(&'a Change, Vec<&'a Change>)>,
    /// Why a load balancer is deleted child by child (for the progress).
    pub notes: Vec<String>,
}

impl<'a> Groups<'a> {
    /// Whether `op` of `c` is done by its load balancer's single call.
    pub fn absorbed(&self, op: Op, c: &Change) -> bool {
        let groups = match op {
            Op::Upsert => &self.trees,
            Op::Delete => &self.cascades,
        };
        groups
            .iter()
            .any(|(_, children)| children.iter().any(|x| std::ptr::eq(*x, c)))
    }

    /// The children `op` of load balancer change `c` takes along, if it is
    /// a single call.
    pub fn children(&self, op: Op, c: &Change) -> Option<&[&'a Change]> {
        let groups = match op {
            Op::Upsert => &self.trees,
            Op::Delete => &self.cascades,
        };
        groups
            .iter()
            .find(|(lb, _)| std::ptr::eq(*lb, c))
            .map(|(_, children)| children.as_slice())
    }
}

/// Groups the load-balancer changes of `changes` into single calls.
pub fn group<'a>(changes: &'a ChangeSet, obs: &Observed, own: &Ownership) -> Groups<'a> {
    let mut groups = Groups::default();
    for c in &changes.changes {
        let Target::Loadbalancer { name } = &c.target else {
            continue;
        };
        let of_this = |action: Action| -> Vec<&'a Change> {
            changes
                .changes
                .iter()
                // A child: declared by this load balancer's step, not it.
                .filter(|x| {
                    x.action == action
                        && x.target.kind() != TargetKind::LoadBalancer
                        && x.target.step() == (StepKind::Loadbalancer, name.as_str())
                })
                .collect()
        };
        if matches!(c.action, Action::Create | Action::Replace) {
            groups.trees.push((c, of_this(Action::Create)));
        }
        if matches!(c.action, Action::Delete | Action::Replace) {
            let children = of_this(Action::Delete);
            match cascade_refusal(obs, own, c, &children) {
                None => groups.cascades.push((c, children)),
                Some(why) => groups.notes.push(format!(
                    "deleting load balancer {name} child by child, not in one cascade delete: {why}"
                )),
            }
        }
    }
    groups
}

/// Why a cascade delete of load balancer change `c` would take something
/// that is not this pipeline's to delete; `None` when nothing.
fn cascade_refusal(
    obs: &Observed,
    own: &Ownership,
    c: &Change,
    deletes: &[&Change],
) -> Option<String> {
    let id = c.id.as_deref().unwrap_or_default();
    let Some(lb) = obs.loadbalancers.iter().find(|l| str_of(l, "id") == id) else {
        return Some(format!(
            "load balancer {id} was not read as this pipeline's"
        ));
    };
    let deleted = |v: &Value| {
        deletes
            .iter()
            .any(|d| d.id.as_deref() == Some(str_of(v, "id")))
    };
    let ids = |key: &str| -> Vec<String> {
        lb[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| str_of(v, "id").to_string())
            .collect()
    };
    for listener_id in ids("listeners") {
        match obs
            .listeners
            .iter()
            .find(|l| str_of(l, "id") == listener_id)
        {
            None => {
                return Some(format!(
                    "listener {listener_id} is not tagged as this pipeline's"
                ));
            }
            Some(l) if !deleted(l) => return Some(format!("listener {listener_id} stays")),
            Some(l) if l["l7policies"].as_array().is_some_and(|p| !p.is_empty()) => {
                return Some(format!(
                    "listener {listener_id} has L7 policies kuryr6 did not make"
                ));
            }
            Some(_) => {}
        }
    }
    for pool_id in ids("pools") {
        match obs.pools.iter().find(|p| str_of(p, "id") == pool_id) {
            None => return Some(format!("pool {pool_id} is not tagged as this pipeline's")),
            Some(p) if !deleted(p) => return Some(format!("pool {pool_id} stays")),
            Some(p) if !str_of(p, "healthmonitor_id").is_empty() => {
                return Some(format!(
                    "pool {pool_id} has a health monitor kuryr6 did not make"
                ));
            }
            Some(_) => {}
        }
        for m in obs.members.get(&pool_id).into_iter().flatten() {
            if !own.is_tagged(m) {
                return Some(format!(
                    "member {} ({}) of pool {pool_id} is not tagged as this pipeline's",
                    str_of(m, "id"),
                    str_of(m, "address")
                ));
            }
        }
    }
    None
}

/// Creates load balancer `c` with `children` in one call. One result per
/// change, `c` first, then `children` in order; an error before the call
/// is every change's error.
pub async fn create<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    own: &Ownership,
    ids: &IdMap,
    c: &Change,
    children: &[&Change],
) -> Result<Vec<Result<Option<String>, EngineError>>, EngineError> {
    let Target::Loadbalancer { name } = &c.target else {
        return Err(EngineError::Refused(vec![format!(
            "{} is not a load balancer",
            c.target
        )]));
    };
    let lb = lb::lb_step(plan, name)
        .ok_or_else(|| EngineError::Refused(vec![format!("no loadbalancer step `{name}`")]))?;
    let subnet_id = lb::need(
        &format!("subnet `{}`", lb.subnet),
        ids.get(StepKind::Subnet, &lb.subnet),
    )?;
    let is = |kind: TargetKind| children.iter().any(|x| x.target.kind() == kind);
    let new_members: Vec<Value> = lb
        .members
        .iter()
        .filter(|h| {
            children.iter().any(|x| {
                matches!(&x.target, Target::Member { pool, name, .. }
                    if *pool == lb.pool_name && *name == h.name)
            })
        })
        .map(|h| lb::member_body(lb, h, own))
        .collect();
    let mut body = lb::lb_body(lb, &subnet_id, own);
    let pool = is(TargetKind::Pool).then(|| {
        let mut pool = lb::pool_body(lb, own);
        pool["members"] = json!(new_members);
        pool
    });
    if is(TargetKind::Listener) {
        let mut listener = lb::listener_body(lb, own);
        if let Some(pool) = &pool {
            listener["default_pool"] = pool.clone();
        }
        body["listeners"] = json!([listener]);
    } else if let Some(pool) = &pool {
        body["pools"] = json!([pool]);
    }
    let made = create::create(cloud, &Kind::LoadBalancer, body, None, own).await?;
    let lb_id = str_of(&made, "id").to_string();
    lb::wait_active(cloud, &lb_id, name, Look::AfterWrite).await?;

    // The children's ids from the answer; after a read-back (the answer
    // was lost) from the cloud. A child found nowhere is made on its own.
    let mut ids = ids.clone();
    ids.insert(StepKind::Loadbalancer, name, &lb_id);
    // Parents first (a member needs its pool's id); results in the order
    // of `children`, after the load balancer's.
    let mut results: Vec<Result<Option<String>, EngineError>> =
        std::iter::once(Ok(Some(lb_id.clone())))
            .chain(children.iter().map(|_| Ok(None)))
            .collect();
    let mut ordered: Vec<(usize, &Change)> = children.iter().copied().enumerate().collect();
    ordered.sort_by_key(|(_, x)| x.target.kind().wave(Op::Upsert));
    for (i, child) in ordered {
        let result = match find_child(cloud, &made, &lb_id, &ids, own, child).await {
            Ok(Some(id)) => Ok(Some(id)),
            Ok(None) => {
                tracing::debug!(child = %child.target, "not in the fully populated create; made on its own");
                lb::upsert(cloud, plan, own, &ids, child).await
            }
            Err(e) => Err(e.into()),
        };
        if let Ok(Some(id)) = &result {
            ids.insert_target(&child.target, id);
        }
        results[i + 1] = result;
    }
    Ok(results)
}

/// The id of `child` in a fully populated create's answer, or else on the
/// cloud (by name, with this pipeline's tags, under load balancer `lb_id`).
async fn find_child<C: Cloud>(
    cloud: &C,
    made: &Value,
    lb_id: &str,
    ids: &IdMap,
    own: &Ownership,
    child: &Change,
) -> Result<Option<String>, CloudError> {
    let named = |list: &Value, name: &str| {
        list.as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == name)
            .map(|v| str_of(v, "id").to_string())
            .filter(|id| !id.is_empty())
    };
    let pools_listed = made["pools"].as_array().into_iter().flatten();
    let in_answer = match &child.target {
        Target::Listener { name, .. } => named(&made["listeners"], name),
        Target::Pool { name, .. } => named(&made["pools"], name),
        Target::Member { pool, name, .. } => pools_listed
            .filter(|p| p["name"] == pool.as_str())
            .find_map(|p| named(&p["members"], name)),
        _ => None,
    };
    if in_answer.is_some() {
        return Ok(in_answer);
    }
    let marked = |name: &str| json!({ "name": name, "tags": own.tags(), "loadbalancer_id": lb_id });
    let found = match &child.target {
        Target::Listener { name, .. } => {
            create::find_made(cloud, &Kind::Listener, &marked(name), None).await?
        }
        Target::Pool { name, .. } => {
            create::find_made(cloud, &Kind::Pool, &marked(name), None).await?
        }
        Target::Member {
            loadbalancer,
            pool,
            name,
        } => {
            let pool_target = Target::Pool {
                loadbalancer: loadbalancer.clone(),
                name: pool.clone(),
            };
            match ids.get_target(&pool_target) {
                Some(pool_id) => {
                    let kind = Kind::Member {
                        pool_id: pool_id.to_string(),
                    };
                    // Members are listed under their pool: no parent field.
                    let body = json!({ "name": name, "tags": own.tags() });
                    create::find_made(cloud, &kind, &body, None).await?
                }
                None => None,
            }
        }
        _ => None,
    };
    Ok(found.map(|v| str_of(&v, "id").to_string()))
}

/// Deletes load balancer `c` with all of its children in one call, then
/// waits until it is gone.
pub async fn delete_cascade<C: Cloud>(cloud: &C, c: &Change) -> Result<(), EngineError> {
    let id = c.id.as_deref().unwrap_or_default();
    let name = match &c.target {
        Target::Loadbalancer { name } => name.as_str(),
        _ => id,
    };
    match lb::write(cloud, id, name, false, || cloud.delete_cascade(id)).await {
        Ok(()) | Err(EngineError::Cloud(CloudError::NotFound { .. })) => {}
        Err(e) => return Err(e),
    }
    lb::wait_gone(cloud, id, name).await
}

/// Adds several members to one existing pool in one batch member update
/// (`additive_only`: the pool's other members are not touched; those the
/// plan drops were deleted in an earlier wave).
pub async fn add_members<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    own: &Ownership,
    ids: &IdMap,
    changes: &[&Change],
) -> Result<(), EngineError> {
    let Some(Target::Member {
        loadbalancer, pool, ..
    }) = changes.first().map(|c| &c.target)
    else {
        return Ok(());
    };
    let lb = lb::lb_step(plan, loadbalancer).ok_or_else(|| {
        EngineError::Refused(vec![format!("no loadbalancer step `{loadbalancer}`")])
    })?;
    let lb_id = lb::need(
        &format!("load balancer `{loadbalancer}`"),
        ids.get(StepKind::Loadbalancer, loadbalancer),
    )?;
    let pool_id = lb::need(
        &format!("pool `{pool}`"),
        ids.get_target(&Target::Pool {
            loadbalancer: loadbalancer.clone(),
            name: pool.clone(),
        }),
    )?;
    let mut bodies = Vec::new();
    for c in changes {
        let Target::Member { name, .. } = &c.target else {
            continue;
        };
        let host = lb
            .members
            .iter()
            .find(|h| h.name == *name)
            .ok_or_else(|| EngineError::Refused(vec![format!("no API host `{name}`")]))?;
        bodies.push(lb::member_body(lb, host, own));
    }
    lb::when_active(cloud, &lb_id, loadbalancer, || {
        cloud.add_members(&pool_id, bodies.clone())
    })
    .await
}
