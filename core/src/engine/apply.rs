//! Applying a change set: deletes first in reverse dependency order, then
//! creates, adoptions and updates in dependency waves. Each wave runs its
//! calls concurrently. The tags of new Neutron resources go out with the
//! last wave (`Ownership::owe_tags`): no later write needs them, and a
//! Neutron that serves one call at a time would otherwise delay the subnet
//! a load balancer waits for. Every write is safe to repeat: a re-run reads
//! what an interrupted run made (it carries the creation marker from its
//! create call on) and continues; within a run, ambiguous creates are read
//! back (`create`).

use super::change::{Action, Change, ChangeSet, Target};
use super::create;
use super::diff::same_rule_value;
use super::ids::IdMap;
use super::kind::Op;
use super::lb_tree::{self, Groups};
use super::observe::{Observed, str_of};
use super::ownership::Ownership;
use super::progress::Progress;
use super::{EngineError, Fence, Unfenced, one_error_for_all};
use crate::cloud::{Cloud, CloudError, Kind, Query};
use crate::plan::{Plan, Rule, Step, StepKind};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};

use std::time::Instant;

/// How many API calls one wave keeps in flight.
pub const CONCURRENCY: usize = 8;

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub adopted: usize,
    pub ids: IdMap,
}

/// Dependency waves (the table in `kind`). Deletes: load-balancer
/// children; load balancers, interfaces and rules; then subnets, routers
/// and groups; then networks. Creates: networks, groups, routers; then
/// subnets; then interfaces, rules and load balancers; then theirs.
fn wave(change: &Change, op: Op) -> u8 {
    change.target.kind().wave(op)
}

/// Every write of `changes` with its wave, but those a load balancer's
/// single call does (`lb_tree`).
fn ops<'a>(changes: &'a ChangeSet, groups: &Groups<'a>) -> Vec<(u8, Op, &'a Change)> {
    let mut v = Vec::new();
    for c in &changes.changes {
        let ops: &[Op] = match c.action {
            Action::NoOp => &[],
            Action::Delete => &[Op::Delete],
            Action::Replace => &[Op::Delete, Op::Upsert],
            Action::Create | Action::Update | Action::Adopt => &[Op::Upsert],
        };
        for &op in ops {
            if !groups.absorbed(op, c) {
                v.push((wave(c, op), op, c));
            }
        }
    }
    v.sort_by_key(|(w, _, _)| *w);
    v
}

/// Applies `changes`. Refusals stop it before the first write.
pub async fn apply<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    obs: &Observed,
    changes: &ChangeSet,
    progress: &Progress,
) -> Result<Applied, EngineError> {
    apply_fenced(cloud, plan, obs, changes, progress, &Unfenced).await
}

/// `apply`, asking `fence` before each wave of writes whether the run may
/// still write (a run that lost its lease stops there).
pub async fn apply_fenced<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    obs: &Observed,
    changes: &ChangeSet,
    progress: &Progress,
    fence: &dyn Fence,
) -> Result<Applied, EngineError> {
    if !changes.refusals.is_empty() {
        return Err(EngineError::Refused(changes.refusals.clone()));
    }
    // Made once: every write of the run marks what it makes with it.
    let own = &Ownership::new(&plan.pipeline);
    let result = async {
        let groups = &lb_tree::group(changes, obs, own);
        for note in &groups.notes {
            progress.note(note);
        }
        let mut applied = Applied {
            ids: IdMap::from_observed(obs),
            ..Default::default()
        };
        for c in &changes.changes {
            if c.action == Action::Adopt
                && let (Some(kind), Some(id)) = (c.target.kind().step(), &c.id)
            {
                applied.ids.insert(kind, target_name(&c.target), id);
            }
        }
        let all = ops(changes, groups);
        let mut start = 0;
        while start < all.len() {
            let w = all[start].0;
            let end = all[start..]
                .iter()
                .position(|(x, _, _)| *x != w)
                .map_or(all.len(), |p| start + p);
            fence.check()?;
            let ids = &applied.ids;
            // Octavia takes one change at a time per load balancer: its calls
            // go one by one; Neutron's run side by side, beside them.
            let (octavia, neutron): (Vec<Task>, Vec<Task>) = tasks(&all[start..end], groups)
                .into_iter()
                .partition(Task::is_octavia);
            let ctx = Context {
                cloud,
                plan,
                own,
                obs,
                ids,
                progress,
            };
            let owed = if end == all.len() {
                own.take_owed_tags()
            } else {
                Vec::new()
            };
            let (mut results, more, tagged): (Vec<Vec<Outcome>>, Vec<Vec<Outcome>>, _) = futures::join!(
                stream::iter(octavia)
                    .map(|task| ctx.run(task))
                    .buffer_unordered(1)
                    .collect::<Vec<_>>(),
                stream::iter(neutron)
                    .map(|task| ctx.run(task))
                    .buffer_unordered(CONCURRENCY)
                    .collect::<Vec<_>>(),
                create::tag_owed(cloud, owed, own, CONCURRENCY),
            );
            results.extend(more);
            let mut first_error = tagged.err().map(EngineError::from);
            for (op, c, r) in results.into_iter().flatten() {
                match r {
                    Ok(id) => {
                        if let Some(id) = id {
                            match c.target.kind().step() {
                                Some(kind) => applied.ids.insert(kind, target_name(&c.target), &id),
                                None => applied.ids.insert_target(&c.target, &id),
                            }
                        }
                        match (op, c.action) {
                            (Op::Delete, _) => applied.deleted += 1,
                            (_, Action::Create | Action::Replace) => applied.created += 1,
                            (_, Action::Adopt) => applied.adopted += 1,
                            _ => applied.updated += 1,
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
            start = end;
        }
        Ok(applied)
    }
    .await;
    // What the last wave made, or every wave before a failure: tagged now,
    // unless the run may no longer write (the marker stays).
    let owed = own.take_owed_tags();
    let result = match fence.check() {
        Ok(()) if !owed.is_empty() => {
            let tagged = create::tag_owed(cloud, owed, own, CONCURRENCY).await;
            result.and_then(|applied| tagged.map(|()| applied).map_err(EngineError::from))
        }
        _ => result,
    };
    // A create sent again may have a first copy still landing: the next
    // runs must look for it (`lease`).
    if own.any_resent() {
        fence.note_resent();
    }
    result
}

/// What every task of a run reads.
struct Context<'r, C> {
    cloud: &'r C,
    plan: &'r Plan,
    own: &'r Ownership,
    obs: &'r Observed,
    ids: &'r IdMap,
    progress: &'r Progress,
}

impl<C: Cloud> Context<'_, C> {
    /// Runs one task of a wave; one outcome per change it did, each shown.
    async fn run<'a>(&self, task: Task<'a>) -> Vec<Outcome<'a>> {
        let t = Instant::now();
        let results = match task {
            Task::One(op, c) => {
                vec![(op, c, self.execute(op, c).await)]
            }
            Task::Bulk(kind, changes) => self
                .execute_bulk(&kind, &changes)
                .await
                .into_iter()
                .zip(changes)
                .map(|(r, c)| (Op::Upsert, c, r))
                .collect(),
            Task::Tree(c, children) => {
                lb_tree::create(self.cloud, self.plan, self.own, self.ids, c, children)
                    .await
                    .unwrap_or_else(|e| one_error_for_all(e, 1 + children.len()))
                    .into_iter()
                    .zip(std::iter::once(c).chain(children.iter().copied()))
                    .map(|(r, c)| (Op::Upsert, c, r))
                    .collect()
            }
            Task::Cascade(c, children) => {
                let done = lb_tree::delete_cascade(self.cloud, c).await.map(|()| None);
                let all = std::iter::once(c).chain(children.iter().copied());
                same_for_all(Op::Delete, all, done)
            }
            Task::Members(changes) => {
                let done =
                    lb_tree::add_members(self.cloud, self.plan, self.own, self.ids, &changes)
                        .await
                        .map(|()| None);
                same_for_all(Op::Upsert, changes.into_iter(), done)
            }
        };
        for (op, c, r) in &results {
            let action = if *op == Op::Delete {
                Action::Delete
            } else {
                c.action
            };
            self.progress
                .done(&c.target, action, t.elapsed(), r.is_ok());
        }
        results
    }

    /// One write of one change.
    async fn execute(&self, op: Op, c: &Change) -> Result<Option<String>, EngineError> {
        if op == Op::Delete {
            return delete(self.cloud, self.obs, self.ids, c)
                .await
                .map(|_| None);
        }
        match &c.target {
            Target::Network { name } => {
                upsert_by_name(self.cloud, &Kind::Network, name, self.own, c).await
            }
            Target::Router { name } => {
                upsert_by_name(self.cloud, &Kind::Router, name, self.own, c).await
            }
            Target::SecurityGroup { name } => match self.plan.step(name) {
                Some(Step::SecurityGroup(sg)) => upsert_group(self.cloud, sg, self.own, c).await,
                _ => Ok(None),
            },
            Target::Subnet { name } => match self.plan.step(name) {
                Some(Step::Subnet(s)) => upsert_subnet(self.cloud, s, self.own, self.ids, c).await,
                _ => Ok(None),
            },
            Target::Interface { router, subnet } => {
                let router_id = need(self.ids, StepKind::Router, router)?;
                let subnet_id = need(self.ids, StepKind::Subnet, subnet)?;
                // "Already attached" (an earlier run or call landed) is success.
                create::add_interface(self.cloud, router_id, subnet_id).await?;
                Ok(None)
            }
            Target::Rule { group, rule } => {
                add_rule(self.cloud, self.own, self.ids, group, rule).await
            }
            Target::Loadbalancer { .. }
            | Target::Listener { .. }
            | Target::Pool { .. }
            | Target::Member { .. } => {
                super::lb::upsert(self.cloud, self.plan, self.own, self.ids, c).await
            }
        }
    }

    /// Runs a bulk task; results in the order of `changes`. A rule that already
    /// exists fails Neutron's whole bulk call with 409: then each rule goes on
    /// its own, where a 409 is verified.
    async fn execute_bulk(
        &self,
        kind: &Kind,
        changes: &[&Change],
    ) -> Vec<Result<Option<String>, EngineError>> {
        let bodies: Result<Vec<Value>, EngineError> = changes
            .iter()
            .map(|c| bulk_body(self.plan, self.own, self.ids, c))
            .collect();
        let bodies = match bodies {
            Ok(b) => b,
            Err(e) => return one_error_for_all(e, changes.len()),
        };
        let rules: Vec<Option<&Rule>> = changes
            .iter()
            .map(|c| match &c.target {
                Target::Rule { rule, .. } => Some(rule),
                _ => None,
            })
            .collect();
        match create::create_many(self.cloud, kind, &bodies, &rules, self.own).await {
            Ok(made) => made
                .into_iter()
                .map(|m| {
                    let m = m?;
                    Ok((*kind != Kind::SecurityGroupRule).then(|| str_of(&m, "id").to_string()))
                })
                .collect(),
            Err(CloudError::Conflict { .. }) if *kind == Kind::SecurityGroupRule => {
                let mut out = Vec::new();
                for c in changes {
                    out.push(self.execute(Op::Upsert, c).await);
                }
                out
            }
            Err(e) => one_error_for_all(e.into(), changes.len()),
        }
    }
}

fn target_name(t: &Target) -> &str {
    match t {
        Target::Network { name }
        | Target::Subnet { name }
        | Target::Router { name }
        | Target::SecurityGroup { name }
        | Target::Loadbalancer { name } => name,
        Target::Listener { name, .. } | Target::Pool { name, .. } | Target::Member { name, .. } => {
            name
        }
        Target::Interface { subnet, .. } => subnet,
        Target::Rule { group, .. } => group,
    }
}

fn need<'a>(ids: &'a IdMap, kind: StepKind, name: &str) -> Result<&'a str, EngineError> {
    ids.get(kind, name).ok_or_else(|| {
        EngineError::Refused(vec![format!(
            "{kind} `{name}` has no id: an earlier step did not create it"
        )])
    })
}

/// One change of a wave with what applying it gave.
type Outcome<'a> = (Op, &'a Change, Result<Option<String>, EngineError>);

/// What one concurrent slot of a wave does: one change, the creates of one
/// kind that Neutron takes in a single bulk call, or a load balancer's
/// single call (`lb_tree`): its fully populated create, its cascade
/// delete, or new members of one pool in one batch.
enum Task<'a> {
    One(Op, &'a Change),
    Bulk(Kind, Vec<&'a Change>),
    Tree(&'a Change, &'a [&'a Change]),
    Cascade(&'a Change, &'a [&'a Change]),
    Members(Vec<&'a Change>),
}

impl Task<'_> {
    fn is_octavia(&self) -> bool {
        match self {
            Task::One(_, c) => c.target.kind().is_octavia(),
            Task::Bulk(..) => false,
            Task::Tree(..) | Task::Cascade(..) | Task::Members(..) => true,
        }
    }
}

/// The outcome of one call that did several changes, for each of them.
fn same_for_all<'a>(
    op: Op,
    changes: impl Iterator<Item = &'a Change>,
    done: Result<Option<String>, EngineError>,
) -> Vec<Outcome<'a>> {
    let changes: Vec<&Change> = changes.collect();
    let results = match done {
        Ok(id) => changes.iter().map(|_| Ok(id.clone())).collect(),
        Err(e) => one_error_for_all(e, changes.len()),
    };
    changes
        .into_iter()
        .zip(results)
        .map(|(c, r)| (op, c, r))
        .collect()
}

/// Groups a wave's creates of networks, subnets and rules into bulk tasks
/// (fewer calls: each costs the server the same whatever its size; rules
/// one bulk per security group, since Neutron refuses a bulk that spans
/// groups: `SecurityGroupNotSingleGroupRules`), new
/// members of one pool into one batch, and hands a load balancer with
/// children to its single call.
fn tasks<'a>(wave: &[(u8, Op, &'a Change)], lb_groups: &'a Groups<'a>) -> Vec<Task<'a>> {
    let mut out = Vec::new();
    // Keyed by collection and, for rules, their security group's name.
    type BulkKey<'a> = (Kind, Option<&'a str>);
    let mut groups: Vec<(BulkKey<'a>, Vec<&'a Change>)> = Vec::new();
    let mut members: Vec<(&str, &str, Vec<&'a Change>)> = Vec::new();
    for (_, op, c) in wave {
        if let Some(children) = lb_groups.children(*op, c) {
            out.push(match op {
                Op::Upsert => Task::Tree(c, children),
                Op::Delete => Task::Cascade(c, children),
            });
            continue;
        }
        let creates = *op == Op::Upsert && matches!(c.action, Action::Create | Action::Replace);
        if creates
            && let Target::Member {
                loadbalancer, pool, ..
            } = &c.target
        {
            match members
                .iter_mut()
                .find(|(l, p, _)| l == loadbalancer && p == pool)
            {
                Some((_, _, v)) => v.push(c),
                None => members.push((loadbalancer, pool, vec![c])),
            }
            continue;
        }
        let bulk_kind = creates.then(|| c.target.kind().bulk_collection()).flatten();
        let security_group = match &c.target {
            Target::Rule { group, .. } => Some(group.as_str()),
            _ => None,
        };
        match bulk_kind.map(|kind| (kind, security_group)) {
            Some(key) => match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(c),
                None => groups.push((key, vec![c])),
            },
            None => out.push(Task::One(*op, c)),
        }
    }
    for ((kind, _), changes) in groups {
        match changes.as_slice() {
            [one] => out.push(Task::One(Op::Upsert, one)),
            _ => out.push(Task::Bulk(kind, changes)),
        }
    }
    for (_, _, changes) in members {
        match changes.as_slice() {
            [one] => out.push(Task::One(Op::Upsert, one)),
            _ => out.push(Task::Members(changes)),
        }
    }
    out
}

/// Creates a Neutron resource with its ownership: the creation marker in
/// the create call itself (so an interrupted or ambiguous create is
/// recognised), the tags later in the run (Neutron refuses them in a POST;
/// `create::create`).
async fn create_owned<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    body: Value,
    own: &Ownership,
) -> Result<Value, CloudError> {
    create::create(cloud, kind, own.mark_create(body), None, own).await
}

fn subnet_body(s: &crate::plan::Subnet, ids: &IdMap) -> Result<Value, EngineError> {
    let pools: Vec<Value> = s
        .allocation_pools
        .iter()
        .map(|p| json!({ "start": p.start.to_string(), "end": p.end.to_string() }))
        .collect();
    // Gateway and pool in one call: no window where Neutron picked its own
    // (the facts' devstack two-step trap).
    Ok(json!({
        "name": s.name,
        "network_id": need(ids, StepKind::Network, &s.network)?,
        "ip_version": s.ip_version,
        "cidr": s.cidr.to_string(),
        "enable_dhcp": s.enable_dhcp,
        "gateway_ip": s.gateway_ip.to_string(),
        "allocation_pools": pools,
    }))
}

/// The create body of a bulk-creatable change.
fn bulk_body(plan: &Plan, own: &Ownership, ids: &IdMap, c: &Change) -> Result<Value, EngineError> {
    match &c.target {
        Target::Network { name } => Ok(own.mark_create(json!({ "name": name }))),
        Target::Subnet { name } => match plan.step(name) {
            Some(Step::Subnet(s)) => Ok(own.mark_create(subnet_body(s, ids)?)),
            _ => Err(EngineError::Refused(vec![format!(
                "no subnet step `{name}`"
            )])),
        },
        Target::Rule { group, rule } => Ok(rule_body(
            rule,
            need(ids, StepKind::SecurityGroup, group)?,
            own,
        )),
        other => Err(EngineError::Refused(vec![format!(
            "{other} cannot be created in bulk"
        )])),
    }
}

/// The create body of a rule, marked as this pipeline's (rules take no tags).
pub fn rule_body(rule: &Rule, sg_id: &str, own: &Ownership) -> Value {
    let mut body = json!({
        "security_group_id": sg_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "description": own.rule_marker(),
    });
    if let Some(p) = &rule.protocol {
        body["protocol"] = json!(p);
    }
    if let Some(p) = rule.remote_ip_prefix {
        body["remote_ip_prefix"] = json!(p.to_string());
    }
    if let Some(p) = rule.port_range_min {
        body["port_range_min"] = json!(p);
    }
    if let Some(p) = rule.port_range_max {
        body["port_range_max"] = json!(p);
    }
    body
}

/// A network or router: all it has is its name.
async fn upsert_by_name<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    name: &str,
    own: &Ownership,
    c: &Change,
) -> Result<Option<String>, EngineError> {
    if c.action == Action::Adopt {
        adopt(cloud, kind, c, own).await?;
        return Ok(c.id.clone());
    }
    let made = create_owned(cloud, kind, json!({ "name": name }), own).await?;
    Ok(Some(str_of(&made, "id").into()))
}

async fn upsert_group<C: Cloud>(
    cloud: &C,
    sg: &crate::plan::SecurityGroup,
    own: &Ownership,
    c: &Change,
) -> Result<Option<String>, EngineError> {
    let description = json!(own.sg_description(&sg.description));
    if c.action == Action::Create {
        let body = json!({ "name": sg.name, "description": description });
        let made = create_owned(cloud, &Kind::SecurityGroup, body, own).await?;
        return Ok(Some(str_of(&made, "id").into()));
    }
    if c.action == Action::Adopt {
        adopt(cloud, &Kind::SecurityGroup, c, own).await?;
    }
    if !c.fields.is_empty() {
        let id = c.id.as_deref().unwrap_or_default();
        let body = json!({ "description": description });
        cloud.update(&Kind::SecurityGroup, id, body).await?;
    }
    Ok(c.id.clone())
}

async fn upsert_subnet<C: Cloud>(
    cloud: &C,
    s: &crate::plan::Subnet,
    own: &Ownership,
    ids: &IdMap,
    c: &Change,
) -> Result<Option<String>, EngineError> {
    if matches!(c.action, Action::Create | Action::Replace) {
        let body = subnet_body(s, ids)?;
        let made = create_owned(cloud, &Kind::Subnet, body, own).await?;
        return Ok(Some(str_of(&made, "id").into()));
    }
    let id = c.id.clone().unwrap_or_default();
    if c.action == Action::Adopt {
        adopt(cloud, &Kind::Subnet, c, own).await?;
    }
    let pools: Vec<Value> = s
        .allocation_pools
        .iter()
        .map(|p| json!({ "start": p.start.to_string(), "end": p.end.to_string() }))
        .collect();
    let mut body = json!({});
    for f in &c.fields {
        match f.field.as_str() {
            "gateway_ip" => body["gateway_ip"] = json!(s.gateway_ip.to_string()),
            "allocation_pools" => body["allocation_pools"] = json!(pools),
            "enable_dhcp" => body["enable_dhcp"] = json!(s.enable_dhcp),
            _ => {}
        }
    }
    if body.as_object().is_some_and(|o| !o.is_empty()) {
        cloud.update(&Kind::Subnet, &id, body).await?;
    }
    Ok(Some(id))
}

/// One rule; a 409 "already exists" is checked, then taken as done.
async fn add_rule<C: Cloud>(
    cloud: &C,
    own: &Ownership,
    ids: &IdMap,
    group: &str,
    rule: &Rule,
) -> Result<Option<String>, EngineError> {
    let sg_id = need(ids, StepKind::SecurityGroup, group)?;
    let body = rule_body(rule, sg_id, own);
    match create::create(cloud, &Kind::SecurityGroupRule, body, Some(rule), own).await {
        Ok(_) => Ok(None),
        Err(CloudError::Conflict { message }) => {
            let q: Query = vec![("security_group_id".into(), sg_id.into())];
            let existing = cloud.list(&Kind::SecurityGroupRule, &q).await?;
            if existing.iter().any(|r| same_rule_value(r, rule)) {
                Ok(None)
            } else {
                Err(CloudError::Conflict { message }.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn adopt<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    c: &Change,
    own: &Ownership,
) -> Result<(), CloudError> {
    cloud
        .add_tags(kind, c.id.as_deref().unwrap_or_default(), &own.tags())
        .await
}

async fn delete<C: Cloud>(
    cloud: &C,
    obs: &Observed,
    ids: &IdMap,
    c: &Change,
) -> Result<(), EngineError> {
    let id = c.id.as_deref().unwrap_or_default();
    match &c.target {
        Target::Interface { router, .. } => {
            // The router that has this very interface: with duplicates of
            // one name (a late copy of a create, not yet deduped) the name
            // alone could pick the other one.
            let attached = obs.router_ports.iter().find_map(|p| {
                let on_subnet = p["fixed_ips"]
                    .as_array()
                    .is_some_and(|ips| ips.iter().any(|ip| ip["subnet_id"] == id));
                let device = str_of(p, "device_id");
                let named = obs
                    .owned_named(&Kind::Router, router)
                    .iter()
                    .any(|r| str_of(r, "id") == device);
                (on_subnet && named).then(|| device.to_string())
            });
            let router_id = attached
                .or_else(|| ids.get(StepKind::Router, router).map(str::to_string))
                .or_else(|| {
                    obs.find(&Kind::Router, router)
                        .map(|r| str_of(r, "id").to_string())
                });
            let Some(router_id) = router_id else {
                return Ok(());
            };
            match cloud.router_interface(&router_id, id, false).await {
                Ok(()) | Err(CloudError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        t if t.kind().is_octavia() => super::lb::delete(cloud, obs, c).await,
        // Networks, subnets, routers, groups and rules: one call by id.
        t => match t.kind().collection() {
            Some(kind) => Ok(cloud.delete(&kind, id).await?),
            None => Ok(()),
        },
    }
}
