//! `kuryr6 dedupe`: when several owned resources share one name (runs that
//! overlapped before leases existed, a copy adopted by hand), keep the
//! oldest of each and delete the others, with what hangs off them.
//!
//! Which one is kept is decided from the cloud alone (`created_at`, then id),
//! so two operators running it get the same answer. Subnets on a network
//! that goes are deleted too (the next run re-creates them on the kept
//! network); router interfaces that touch anything deleted are detached
//! first, and load balancers go with their listeners, pools and members.

use super::apply::apply_fenced;
use super::change::{Action, Change, ChangeSet, Target};
use super::observe::{Observed, observe, str_of};
use super::progress::Progress;
use super::{EngineError, Fence, RunOptions, Unfenced};
use crate::cloud::{Cloud, Kind};
use crate::plan::Plan;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What `dedupe` removes, decided from one observation. Pure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extras {
    pub networks: BTreeSet<String>,
    pub subnets: BTreeSet<String>,
    pub routers: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub loadbalancers: BTreeSet<String>,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
            && self.subnets.is_empty()
            && self.routers.is_empty()
            && self.security_groups.is_empty()
            && self.loadbalancers.is_empty()
    }

    pub fn len(&self) -> usize {
        self.networks.len()
            + self.subnets.len()
            + self.routers.len()
            + self.security_groups.len()
            + self.loadbalancers.len()
    }
}

/// Ids of all but the oldest resource of each name.
fn all_but_oldest(items: &[Value]) -> BTreeSet<String> {
    let mut by_name: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for v in items {
        by_name.entry(str_of(v, "name")).or_default().push(v);
    }
    let mut extra = BTreeSet::new();
    for (_, mut same) in by_name {
        same.sort_by_key(|v| (str_of(v, "created_at"), str_of(v, "id")));
        extra.extend(same.iter().skip(1).map(|v| str_of(v, "id").to_string()));
    }
    extra
}

/// The extra copies among what a pipeline owns.
pub fn extras(obs: &Observed) -> Extras {
    let networks = all_but_oldest(obs.owned(&Kind::Network));
    let mut subnets = all_but_oldest(obs.owned(&Kind::Subnet));
    // A subnet on a network that goes must go too (its network is immutable).
    subnets.extend(
        obs.owned(&Kind::Subnet)
            .iter()
            .filter(|s| networks.contains(str_of(s, "network_id")))
            .map(|s| str_of(s, "id").to_string()),
    );
    Extras {
        networks,
        subnets,
        routers: all_but_oldest(obs.owned(&Kind::Router)),
        security_groups: all_but_oldest(obs.owned(&Kind::SecurityGroup)),
        loadbalancers: all_but_oldest(&obs.loadbalancers),
    }
}

fn delete_change(target: Target, id: &str) -> Change {
    Change {
        target,
        action: Action::Delete,
        id: Some(id.to_string()),
        fields: Vec::new(),
    }
}

/// Deletes the extras of `plan`'s pipeline; returns what went.
pub async fn dedupe<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    progress: &Progress,
) -> Result<Extras, EngineError> {
    dedupe_fenced(cloud, plan, progress, &Unfenced).await
}

/// `dedupe`, asking `fence` before each wave of deletes (`lease`).
pub async fn dedupe_fenced<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    progress: &Progress,
    fence: &dyn Fence,
) -> Result<Extras, EngineError> {
    let obs = observe(cloud, plan).await?;
    let extra = extras(&obs);
    if extra.is_empty() {
        return Ok(extra);
    }
    let nothing = Plan {
        steps: Vec::new(),
        ..plan.clone()
    };

    // Interfaces first: by router id, since names are what is ambiguous.
    for p in &obs.router_ports {
        let router_id = str_of(p, "device_id");
        for ip in p["fixed_ips"].as_array().into_iter().flatten() {
            let subnet_id = ip["subnet_id"].as_str().unwrap_or_default();
            if extra.routers.contains(router_id) || extra.subnets.contains(subnet_id) {
                cloud.router_interface(router_id, subnet_id, false).await?;
                progress.note(&format!("  - router interface {router_id} ↔ {subnet_id}"));
            }
        }
    }

    // Each extra load balancer with its own children only: pools of the
    // kept one share their names.
    for lb in obs
        .loadbalancers
        .iter()
        .filter(|l| extra.loadbalancers.contains(str_of(l, "id")))
    {
        let lb_id = str_of(lb, "id");
        let one = Observed {
            loadbalancers: vec![lb.clone()],
            listeners: obs
                .listeners
                .iter()
                .filter(|l| super::value::belongs(l, lb_id))
                .cloned()
                .collect(),
            pools: obs
                .pools
                .iter()
                .filter(|p| super::value::belongs(p, lb_id))
                .cloned()
                .collect(),
            members: obs.members.clone(),
            project_id: obs.project_id.clone(),
            ..Default::default()
        };
        let mut set = ChangeSet {
            pipeline: plan.pipeline.clone(),
            ..Default::default()
        };
        super::diff_lb::diff_loadbalancers(&nothing, &one, &mut set, RunOptions::default());
        apply_fenced(cloud, &nothing, &one, &set, progress, fence).await?;
    }

    let mut set = ChangeSet {
        pipeline: plan.pipeline.clone(),
        ..Default::default()
    };
    let name_of = |kind: &Kind, id: &str| {
        obs.owned(kind)
            .iter()
            .find(|v| str_of(v, "id") == id)
            .map(|v| str_of(v, "name").to_string())
            .unwrap_or_default()
    };
    for id in &extra.subnets {
        let name = name_of(&Kind::Subnet, id);
        set.changes.push(delete_change(Target::Subnet { name }, id));
    }
    for id in &extra.routers {
        let name = name_of(&Kind::Router, id);
        set.changes.push(delete_change(Target::Router { name }, id));
    }
    for id in &extra.security_groups {
        let name = name_of(&Kind::SecurityGroup, id);
        set.changes
            .push(delete_change(Target::SecurityGroup { name }, id));
    }
    for id in &extra.networks {
        let name = name_of(&Kind::Network, id);
        set.changes
            .push(delete_change(Target::Network { name }, id));
    }
    apply_fenced(cloud, &nothing, &obs, &set, progress, fence).await?;
    Ok(extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs_with(kind: &Kind, items: Vec<Value>) -> Observed {
        let mut obs = Observed::default();
        obs.owned.insert(kind.singular().into(), items);
        obs
    }

    #[test]
    fn keeps_the_oldest_of_each_name() {
        let obs = obs_with(
            &Kind::Network,
            vec![
                json!({"id": "b", "name": "pods", "created_at": "2026-01-01T00:00:02Z"}),
                json!({"id": "a", "name": "pods", "created_at": "2026-01-01T00:00:01Z"}),
                json!({"id": "c", "name": "services", "created_at": "2026-01-01T00:00:03Z"}),
                json!({"id": "0", "name": "pods", "created_at": "2026-01-01T00:00:02Z"}),
            ],
        );
        let e = extras(&obs);
        assert_eq!(e.networks, ["0", "b"].map(String::from).into());
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn subnets_of_an_extra_network_go_too() {
        let mut obs = obs_with(
            &Kind::Network,
            vec![
                json!({"id": "n1", "name": "pods", "created_at": "1"}),
                json!({"id": "n2", "name": "pods", "created_at": "2"}),
            ],
        );
        obs.owned.insert(
            "subnet".into(),
            vec![
                json!({"id": "s1", "name": "pods", "network_id": "n1", "created_at": "1"}),
                json!({"id": "s2", "name": "pods6", "network_id": "n2", "created_at": "1"}),
            ],
        );
        let e = extras(&obs);
        assert_eq!(e.networks, ["n2".to_string()].into());
        assert_eq!(e.subnets, ["s2".to_string()].into());
    }
}
