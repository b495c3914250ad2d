//! Reading the cloud: what this pipeline owns (by tag) and what merely
//! shares a name with something in the plan (a conflict, or an adoption).
//! One list call per resource type for each question, concurrent, after
//! one first list of the security groups that also brings the pipeline's
//! lease record (`lease`: taking the lease from that revision proves the
//! rest of the read current). Groups come with their rules.

use super::kind::TargetKind;
use super::ownership::{Ownership, owner_of};
pub use super::value::str_of;
use crate::cloud::{Cloud, CloudError, Kind, Query, Service};
use crate::plan::{Plan, Step};
use futures::future::try_join_all;
use serde_json::Value;
use std::collections::BTreeMap;

/// The collections of the Neutron kinds a pipeline owns by tag, in apply
/// order (`TargetKind::OWNED_NEUTRON`).
fn neutron_kinds() -> Vec<Kind> {
    TargetKind::OWNED_NEUTRON
        .iter()
        .filter_map(|k| k.collection())
        .collect()
}

/// What the cloud holds that matters to one pipeline.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Resources tagged with this pipeline's tag, per kind.
    pub owned: BTreeMap<String, Vec<Value>>,
    /// Same-named resources without this pipeline's tag, per kind.
    pub foreign: BTreeMap<String, Vec<Value>>,
    /// Rules of the owned security groups.
    pub rules: Vec<Value>,
    /// Interface ports of the owned routers (`port_roles::is_interface`).
    pub router_ports: Vec<Value>,
    /// Rules and router-interface ports of the foreign security groups and
    /// routers an `--adopt` would take over (one same-named resource, owned
    /// by no kuryr6 pipeline): so that the plan of an adoption shows what
    /// is already there, not creates. Kept apart from `rules` and
    /// `router_ports`, which destroy and dedupe read as the pipeline's own.
    pub adoptable_rules: Vec<Value>,
    pub adoptable_router_ports: Vec<Value>,
    /// Likewise the listeners, pools and members (per pool id) of an
    /// adoptable load balancer.
    pub adoptable_listeners: Vec<Value>,
    pub adoptable_pools: Vec<Value>,
    pub adoptable_members: BTreeMap<String, Vec<Value>>,
    /// Octavia objects, when the pipeline has a load balancer step.
    pub loadbalancers: Vec<Value>,
    pub listeners: Vec<Value>,
    pub pools: Vec<Value>,
    /// Members per pool id.
    pub members: BTreeMap<String, Vec<Value>>,
    pub project_id: String,
    /// The pipeline's lease records (`lease`), read before anything else.
    pub lease: Vec<Value>,
    /// Octavia's enabled providers, read only when an emit step names one
    /// (`octavia_provider`); empty when the cloud has no Octavia.
    pub lb_providers: Option<Vec<String>>,
}

impl Observed {
    pub fn owned(&self, kind: &Kind) -> &[Value] {
        self.owned
            .get(kind.singular())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn foreign(&self, kind: &Kind) -> &[Value] {
        self.foreign
            .get(kind.singular())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The owned resource of `kind` named `name`. With duplicates (see
    /// `owned_named`) the diff refuses before anything uses this.
    pub fn find(&self, kind: &Kind, name: &str) -> Option<&Value> {
        self.owned(kind).iter().find(|v| v["name"] == name)
    }

    /// Whether the pipeline owns nothing in the cloud (its first run, or
    /// the first after a destroy).
    pub fn owns_nothing(&self) -> bool {
        self.owned.values().all(Vec::is_empty) && self.loadbalancers.is_empty()
    }

    /// Every owned resource of `kind` named `name`.
    pub fn owned_named(&self, kind: &Kind, name: &str) -> Vec<&Value> {
        self.owned(kind)
            .iter()
            .filter(|v| v["name"] == name)
            .collect()
    }
}

/// Names of the steps that make resources of the collection `kind`.
fn names_of(plan: &Plan, kind: &Kind) -> Vec<String> {
    let wanted = TargetKind::of_collection(kind);
    plan.steps
        .iter()
        .filter(|s| wanted.is_some() && TargetKind::of_step(s.kind()) == wanted)
        .map(|s| s.name().to_string())
        .collect()
}

/// `query` limited to the token's project. An admin token sees every
/// project's resources: without this, another project's pipeline of the
/// same name would look like ours (and be deleted or adopted).
pub fn in_project(project_id: &str, mut query: Query) -> Query {
    query.push(("project_id".into(), project_id.to_string()));
    query
}

/// Reads everything the diff needs, in the token's project only: the
/// rounds below, each one list call per collection, side by side.
pub async fn observe<C: Cloud>(cloud: &C, plan: &Plan) -> Result<Observed, CloudError> {
    let own = Ownership::new(&plan.pipeline);
    // The token's project comes with the login: no API call.
    let project_id = cloud.project_id().await?;
    let by_tag: Query = in_project(&project_id, vec![("tags".into(), own.tag().to_string())]);
    let (groups, lease) = groups_and_lease(cloud, &own, &project_id).await?;
    // Neither a lease record nor a group: the pipeline has most likely
    // never run, so round 2 would look up every name. Those lookups go
    // beside round 1 instead of after it (the same calls, one round less).
    let early = (lease.is_empty() && groups.is_empty())
        .then(|| name_queries(plan, &project_id, |_| Vec::new(), false, wants_lb(plan)));
    let mut obs = Observed {
        project_id,
        lease,
        ..Default::default()
    };
    let early_lookups = async {
        match &early {
            Some(queries) => Ok(Some(list_all(cloud, queries).await?)),
            None => Ok(None),
        }
    };
    let (lbs, lb_providers, early_found) = futures::try_join!(
        read_owned(cloud, plan, &mut obs, groups, &by_tag),
        named_providers(cloud, plan),
        early_lookups,
    )?;
    obs.lb_providers = lb_providers;
    let (queries, found) = match (early, early_found) {
        (Some(queries), Some(found)) => (queries, found),
        _ => {
            let sweep = super::ownership::sweep_wanted(&obs.lease);
            let queries = name_queries(
                plan,
                &obs.project_id,
                |kind| have(&obs, kind, lbs.as_deref()),
                sweep,
                lbs.is_some(),
            );
            let found = list_all(cloud, &queries).await?;
            (queries, found)
        }
    };
    for ((kind, _), same_named) in queries.iter().zip(found) {
        let owned = have(&obs, kind, lbs.as_deref());
        let owned_names: Vec<String> = names_of(plan, kind)
            .into_iter()
            .filter(|n| owned.contains(&n.as_str()))
            .collect();
        take_same_named(&own, &mut obs, kind, &owned_names, same_named);
    }
    read_children(cloud, &mut obs, lbs.unwrap_or_default(), &by_tag).await?;
    Ok(obs)
}

fn wants_lb(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| matches!(s, Step::Loadbalancer(_)))
}

/// Every Octavia provider the plan names, as (what names it, the provider):
/// Kuryr's (`[plan.emit] octavia_provider`) and the API load balancer's.
pub fn providers_named_in(plan: &Plan) -> Vec<(String, &str)> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::Emit(e) => e
                .octavia_provider
                .as_deref()
                .map(|p| (format!("emit step `{}`: octavia_provider", e.name), p)),
            Step::Loadbalancer(lb) => lb
                .provider
                .as_deref()
                .map(|p| (format!("load balancer `{}`: provider", lb.name), p)),
            _ => None,
        })
        .collect()
}

/// Octavia's providers, when the plan names one for Kuryr to use: the diff
/// refuses a provider the cloud lacks before anything is written.
async fn named_providers<C: Cloud>(
    cloud: &C,
    plan: &Plan,
) -> Result<Option<Vec<String>>, CloudError> {
    if providers_named_in(plan).is_empty() {
        return Ok(None);
    }
    match cloud.lb_providers().await {
        Ok(p) => Ok(Some(p)),
        Err(CloudError::NoEndpoint(_)) => Ok(Some(Vec::new())),
        Err(e) => Err(e),
    }
}

/// Round 0: the security groups, and in the same list the pipeline's
/// lease record (`tags-any`), before anything else: a lease taken from the
/// revision read here proves this whole read current (`lease`).
async fn groups_and_lease<C: Cloud>(
    cloud: &C,
    own: &Ownership,
    project_id: &str,
) -> Result<(Vec<Value>, Vec<Value>), CloudError> {
    let groups_and_lease = in_project(
        project_id,
        vec![(
            "tags-any".into(),
            format!("{},{}", own.tag(), own.lease_tag()),
        )],
    );
    let (groups, rest): (Vec<Value>, Vec<Value>) = cloud
        .list(&Kind::SecurityGroup, &groups_and_lease)
        .await?
        .into_iter()
        .partition(|v| own.is_tagged(v));
    let lease: Vec<Value> = rest
        .into_iter()
        .filter(|v| own.is_lease_record(v))
        .collect();
    Ok((groups, lease))
}

/// Round 1: what the pipeline owns, one tag-filtered list per type. The
/// owned load balancers come back apart (`None`: the pipeline has none
/// and the cloud no Octavia).
async fn read_owned<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    obs: &mut Observed,
    groups: Vec<Value>,
    by_tag: &Query,
) -> Result<Option<Vec<Value>>, CloudError> {
    let neutron = neutron_kinds();
    let owned_lists = try_join_all(neutron.iter().map(|k| async {
        if *k == Kind::SecurityGroup {
            Ok(groups.clone())
        } else {
            cloud.list(k, by_tag).await
        }
    }));
    let owned_lbs = async {
        // A pipeline that dropped its loadbalancer step must still see the
        // ones it owns to delete them; a cloud without Octavia has none.
        if !wants_lb(plan) && !cloud.has_service(Service::LoadBalancer).await? {
            return Ok::<_, CloudError>(None);
        }
        Ok(Some(cloud.list(&Kind::LoadBalancer, by_tag).await?))
    };
    let (owned_lists, lbs) = futures::try_join!(owned_lists, owned_lbs)?;
    for (kind, owned) in neutron.iter().zip(owned_lists) {
        obs.owned.insert(kind.singular().into(), owned);
    }
    Ok(lbs)
}

/// The names of `kind` the pipeline owns already (round 1).
fn have<'o>(obs: &'o Observed, kind: &Kind, lbs: Option<&'o [Value]>) -> Vec<&'o str> {
    match kind {
        Kind::LoadBalancer => lbs
            .into_iter()
            .flatten()
            .map(|v| str_of(v, "name"))
            .collect(),
        _ => obs.owned(kind).iter().map(|v| str_of(v, "name")).collect(),
    }
}

/// Round 2's queries: only names the pipeline wants but does not own yet
/// (`have`) are looked up (a conflict, an adoption, or a create cut before
/// its tagging); a converged pipeline makes no call here. Unless the lease
/// asks for a sweep: a run may have re-sent a create whose first copy
/// landed later, untagged, beside the one it tagged; then every step's
/// name is looked up, and such copies join the owned (duplicates that the
/// diff reports, `dedupe` and `destroy` remove).
fn name_queries<'o>(
    plan: &Plan,
    project_id: &str,
    have: impl Fn(&Kind) -> Vec<&'o str>,
    sweep: bool,
    with_lbs: bool,
) -> Vec<(Kind, Query)> {
    let mut lookups = Vec::new();
    for kind in neutron_kinds()
        .iter()
        .chain(with_lbs.then_some(&Kind::LoadBalancer))
    {
        let have = have(kind);
        let swept = sweep && *kind != Kind::LoadBalancer;
        let query: Query = names_of(plan, kind)
            .into_iter()
            .filter(|n| swept || !have.contains(&n.as_str()))
            .map(|n| ("name".to_string(), n))
            .collect();
        if !query.is_empty() {
            lookups.push((kind.clone(), in_project(project_id, query)));
        }
    }
    lookups
}

async fn list_all<C: Cloud>(
    cloud: &C,
    queries: &[(Kind, Query)],
) -> Result<Vec<Vec<Value>>, CloudError> {
    try_join_all(queries.iter().map(|(k, q)| cloud.list(k, q))).await
}

/// What a name lookup of `kind` found: untagged copies that carry our
/// creation marker are ours, the rest foreign (`owned_names` apart).
fn take_same_named(
    own: &Ownership,
    obs: &mut Observed,
    kind: &Kind,
    owned_names: &[String],
    same_named: Vec<Value>,
) {
    // Neutron takes no tags at creation: a run cut between the create
    // and the tagging left a resource that carries only our creation
    // marker. It is ours; the diff tags it (or, beside a tagged one of
    // its name, reports a duplicate). Octavia's carry tags from birth.
    let (interrupted, foreign): (Vec<Value>, Vec<Value>) = same_named
        .into_iter()
        .filter(|v| !own.is_tagged(v))
        .partition(|v| *kind != Kind::LoadBalancer && own.is_interrupted_create(v));
    // A name found only by the sweep was owned already: someone
    // else's resource of that name changes nothing.
    let foreign = foreign
        .into_iter()
        .filter(|v| !owned_names.iter().any(|n| v["name"] == n.as_str()))
        .collect();
    obs.owned
        .entry(kind.singular().into())
        .or_default()
        .extend(interrupted);
    obs.foreign.insert(kind.singular().into(), foreign);
}

/// The ids of the foreign resources of `kind` that an `--adopt` would
/// take over (one of its name, owned by no kuryr6 pipeline), as `key=id`
/// query pairs.
fn adoptable_ids(obs: &Observed, kind: &Kind, key: &str) -> Query {
    let foreign = obs.foreign(kind);
    foreign
        .iter()
        .filter(|v| {
            owner_of(v).is_none() && foreign.iter().filter(|w| w["name"] == v["name"]).count() == 1
        })
        .map(|v| (key.to_string(), str_of(v, "id").to_string()))
        .collect()
}

/// Round 3: children of what we own, one call each. Scoped by their
/// parents' ids, which are already the project's own; rules and ports
/// that someone else put on them must be seen.
async fn read_children<C: Cloud>(
    cloud: &C,
    obs: &mut Observed,
    lbs: Vec<Value>,
    by_tag: &Query,
) -> Result<(), CloudError> {
    let sg_ids: Query = obs
        .owned(&Kind::SecurityGroup)
        .iter()
        .map(|sg| {
            (
                "security_group_id".to_string(),
                str_of(sg, "id").to_string(),
            )
        })
        .collect();
    let router_q: Query = obs
        .owned(&Kind::Router)
        .iter()
        .map(|r| ("device_id".to_string(), str_of(r, "id").to_string()))
        .collect();
    let has_routers = !obs.owned(&Kind::Router).is_empty();
    let adoptable_sgs = adoptable_ids(obs, &Kind::SecurityGroup, "security_group_id");
    // Every router mode's interfaces: DVR and L3-HA ones have owners of
    // their own (a router built by hand with the guide's CLI on such a
    // cloud must still be seen).
    let mut adoptable_routers = adoptable_ids(obs, &Kind::Router, "device_id");
    if !adoptable_routers.is_empty() {
        adoptable_routers.extend(super::port_roles::interface_owner_filter());
    }
    let lb_ids: Vec<String> = lbs.iter().map(|lb| str_of(lb, "id").to_string()).collect();
    // Every unowned same-named load balancer: which one the step means
    // depends on its subnet, which the diff knows (see diff_lb).
    let adoptable_lbs: Vec<String> = obs
        .foreign(&Kind::LoadBalancer)
        .iter()
        .filter(|v| owner_of(v).is_none())
        .map(|v| str_of(v, "id").to_string())
        .collect();
    let list_unless_empty = |kind: Kind, q: Query| async move {
        if q.is_empty() {
            Ok(Vec::new())
        } else {
            cloud.list(&kind, &q).await
        }
    };
    // Neutron lists a group with its rules: no call of their own, unless a
    // group came without them (a `fields`-trimmed answer, or a group found
    // by name after an interrupted create).
    let embedded: Option<Vec<Value>> = obs
        .owned(&Kind::SecurityGroup)
        .iter()
        .map(|sg| sg["security_group_rules"].as_array().cloned())
        .collect::<Option<Vec<_>>>()
        .map(|lists| lists.into_iter().flatten().collect());
    let (rules, ports, (listeners, pools), adoptable_rules, adoptable_router_ports) = futures::try_join!(
        async {
            match &embedded {
                Some(rules) => Ok(rules.clone()),
                None if sg_ids.is_empty() => Ok(Vec::new()),
                None => cloud.list(&Kind::SecurityGroupRule, &sg_ids).await,
            }
        },
        async {
            if has_routers {
                cloud.list(&Kind::Port, &router_q).await
            } else {
                Ok(Vec::new())
            }
        },
        async {
            if lb_ids.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            futures::try_join!(
                cloud.list(&Kind::Listener, by_tag),
                cloud.list(&Kind::Pool, by_tag)
            )
        },
        list_unless_empty(Kind::SecurityGroupRule, adoptable_sgs),
        list_unless_empty(Kind::Port, adoptable_routers)
    )?;
    obs.rules = rules;
    // By device_id whatever the owner: DVR and L3-HA interfaces have their
    // own owners; gateway, SNAT and HA-network ports are not interfaces.
    obs.router_ports = ports
        .into_iter()
        .filter(super::port_roles::is_interface)
        .collect();
    obs.adoptable_rules = adoptable_rules;
    obs.adoptable_router_ports = adoptable_router_ports
        .into_iter()
        .filter(super::port_roles::is_interface)
        .collect();
    if !adoptable_lbs.is_empty() {
        read_adoptable_lb_children(cloud, obs, &adoptable_lbs).await?;
    }
    let member_lists = try_join_all(pools.iter().map(|p| {
        let kind = Kind::Member {
            pool_id: str_of(p, "id").to_string(),
        };
        async move { cloud.list(&kind, &Query::new()).await }
    }))
    .await?;
    for (p, m) in pools.iter().zip(member_lists) {
        obs.members.insert(str_of(p, "id").to_string(), m);
    }
    obs.loadbalancers = lbs;
    obs.listeners = listeners;
    obs.pools = pools;
    Ok(())
}

/// The untagged children of the load balancers an `--adopt` may take
/// over: listed in the project, kept if they hang off one of `lb_ids`.
async fn read_adoptable_lb_children<C: Cloud>(
    cloud: &C,
    obs: &mut Observed,
    lb_ids: &[String],
) -> Result<(), CloudError> {
    let q = in_project(&obs.project_id, Query::new());
    let (listeners, pools) =
        futures::try_join!(cloud.list(&Kind::Listener, &q), cloud.list(&Kind::Pool, &q))?;
    let of_adoptable = |v: &Value| lb_ids.iter().any(|id| super::value::belongs(v, id));
    obs.adoptable_listeners = listeners.into_iter().filter(|l| of_adoptable(l)).collect();
    obs.adoptable_pools = pools.into_iter().filter(|p| of_adoptable(p)).collect();
    for p in &obs.adoptable_pools {
        let kind = Kind::Member {
            pool_id: str_of(p, "id").to_string(),
        };
        let members = cloud.list(&kind, &Query::new()).await?;
        obs.adoptable_members
            .insert(str_of(p, "id").to_string(), members);
    }
    Ok(())
}

/// Name of the load balancer a listener or pool belongs to.
pub fn parent_name(obs: &Observed, child: &Value) -> String {
    let lb_id = child["loadbalancers"]
        .as_array()
        .and_then(|a| a.first())
        .map(|l| str_of(l, "id"))
        .unwrap_or_else(|| str_of(child, "loadbalancer_id"));
    obs.loadbalancers
        .iter()
        .find(|l| str_of(l, "id") == lb_id)
        .map(|l| str_of(l, "name").to_string())
        .unwrap_or_default()
}
