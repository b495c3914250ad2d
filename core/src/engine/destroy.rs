//! Destroying what a pipeline owns, in reverse dependency order. Before the
//! first delete, every port on an owned network is classified
//! (`port_roles`): one that goes with what destroy deletes (an owned
//! router's interfaces, an owned load balancer's VIP and VRRP ports, DHCP
//! and OVN metadata) is no obstacle; any other (Kuryr's pod ports, a
//! hand-made port or interface) is a blocker: destroy names them and
//! stops, unless asked to delete the ports carrying this pipeline's Kuryr
//! resource tags.

use super::apply::Applied;
use super::apply::apply_fenced;
use super::change::{Action, Change, ChangeSet, Target};
use super::diff::diff;
use super::observe::{Observed, observe, str_of};
use super::port_roles::{self, PortRole};
use super::progress::Progress;
use super::{EngineError, Fence, RunOptions, Unfenced};
use crate::cloud::{Cloud, Kind, Query};
use crate::plan::Plan;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, Default)]
pub struct DestroyOptions {
    /// Delete ports tagged with the pipeline's Kuryr `resource_tags`.
    pub delete_kuryr_ports: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Destroyed {
    pub deleted: usize,
    pub deleted_ports: Vec<String>,
}

/// Kuryr's resource tags of every emit step of the plan.
fn kuryr_tags(plan: &Plan) -> BTreeSet<String> {
    plan.emits()
        .flat_map(|e| e.resource_tags.iter().cloned())
        .collect()
}

pub async fn destroy<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    options: DestroyOptions,
    progress: &Progress,
) -> Result<Destroyed, EngineError> {
    destroy_fenced(cloud, plan, options, progress, &Unfenced).await
}

/// `destroy`, asking `fence` before each write whether the run may still
/// write (`lease`).
pub async fn destroy_fenced<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    options: DestroyOptions,
    progress: &Progress,
    fence: &dyn Fence,
) -> Result<Destroyed, EngineError> {
    // With no steps every owned resource is an orphan: the diff deletes all.
    let nothing = Plan {
        steps: Vec::new(),
        ..plan.clone()
    };
    // Observed with the plan's names, so creates cut before their tagging
    // are found (and deleted) too.
    let obs = observe(cloud, plan).await?;
    let mut changes = diff(&nothing, &obs, RunOptions::default());
    let with_their_network = drop_subnets_of_deleted_networks(&mut changes, &obs);

    let owned_networks: Vec<&str> = obs
        .owned(&Kind::Network)
        .iter()
        .map(|n| str_of(n, "id"))
        .collect();
    let owned_routers: BTreeSet<&str> = obs
        .owned(&Kind::Router)
        .iter()
        .map(|r| str_of(r, "id"))
        .collect();
    let owned_subnets: BTreeSet<&str> = obs
        .owned(&Kind::Subnet)
        .iter()
        .map(|s| str_of(s, "id"))
        .collect();
    let mut ports = Vec::new();
    if !owned_networks.is_empty() {
        let q: Query = owned_networks
            .iter()
            .map(|id| ("network_id".to_string(), id.to_string()))
            .collect();
        ports = cloud.list(&Kind::Port, &q).await?;
    }
    // Interfaces of owned routers on subnets kuryr6 does not own.
    let foreign_interfaces: Vec<&Value> = obs
        .router_ports
        .iter()
        .filter(|p| {
            p["fixed_ips"].as_array().is_some_and(|ips| {
                ips.iter()
                    .any(|ip| !owned_subnets.contains(ip["subnet_id"].as_str().unwrap_or_default()))
            })
        })
        .collect();

    // Ports that go with what destroy deletes (interfaces, the load
    // balancers' own, DHCP and metadata) are no blockers.
    let owned = port_roles::Owned {
        routers: owned_routers.clone(),
        networks: owned_networks.iter().copied().collect(),
        loadbalancers: obs
            .loadbalancers
            .iter()
            .map(|l| (str_of(l, "id"), str_of(l, "vip_address")))
            .collect(),
        kuryr_tags: kuryr_tags(plan),
    };
    let mut blockers = Vec::new();
    let mut to_delete = Vec::new();
    for p in &ports {
        match port_roles::classify(p, &owned) {
            PortRole::RouterInterface | PortRole::LoadBalancer | PortRole::NetworkService => {}
            PortRole::Kuryr if options.delete_kuryr_ports => to_delete.push(p),
            role => blockers.push(describe_port(p, role == PortRole::Kuryr)),
        }
    }
    for p in foreign_interfaces {
        blockers.push(format!("router port {} attaches an owned router to a subnet kuryr6 does not own; remove that interface by hand", str_of(p, "id")));
    }
    if !blockers.is_empty() {
        let mut lines = vec![format!(
            "destroy stopped before deleting anything: {} port(s) that kuryr6 does not own are in the way",
            blockers.len()
        )];
        lines.extend(blockers.into_iter().map(|b| format!("  - {b}")));
        if !owned.kuryr_tags.is_empty() {
            lines.push(format!(
                "ports carrying this pipeline's Kuryr resource tags ({}) can be deleted with --delete-kuryr-ports; delete the others first",
                owned.kuryr_tags.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        return Err(EngineError::Blocked(lines));
    }
    let mut deleted_ports = Vec::new();
    for p in to_delete {
        fence.check()?;
        cloud.delete(&Kind::Port, str_of(p, "id")).await?;
        progress.note(&format!(
            "  - port {} ({})",
            str_of(p, "id"),
            str_of(p, "device_owner")
        ));
        deleted_ports.push(str_of(p, "id").to_string());
    }
    let applied: Applied = apply_fenced(cloud, &nothing, &obs, &changes, progress, fence).await?;
    for name in &with_their_network {
        progress.note(&format!("  - subnet {name}  (with its network)"));
    }
    Ok(Destroyed {
        deleted: applied.deleted + with_their_network.len(),
        deleted_ports,
    })
}

/// Neutron deletes a network's subnets with the network (`delete_network`
/// in neutron/db/db_base_plugin_v2.py), so a subnet whose network this
/// destroy deletes needs no call of its own: those deletes are dropped
/// from `changes`, and their names returned. A subnet on a network kuryr6
/// does not own is still deleted by itself.
fn drop_subnets_of_deleted_networks(changes: &mut ChangeSet, obs: &Observed) -> Vec<String> {
    let deleted_networks: BTreeSet<String> = changes
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && matches!(c.target, Target::Network { .. }))
        .filter_map(|c| c.id.clone())
        .collect();
    let goes_with_network = |c: &Change| {
        c.action == Action::Delete
            && matches!(c.target, Target::Subnet { .. })
            && obs.owned(&Kind::Subnet).iter().any(|s| {
                Some(str_of(s, "id")) == c.id.as_deref()
                    && deleted_networks.contains(str_of(s, "network_id"))
            })
    };
    let mut dropped = Vec::new();
    changes.changes.retain(|c| {
        let drop = goes_with_network(c);
        if drop {
            dropped.push(c.target.step().1.to_string());
        }
        !drop
    });
    dropped
}

fn describe_port(p: &Value, kuryr: bool) -> String {
    let ips: Vec<&str> = p["fixed_ips"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["ip_address"].as_str()).collect())
        .unwrap_or_default();
    let owner = match str_of(p, "device_owner") {
        "" => "no device owner".to_string(),
        o => format!("device_owner {o}"),
    };
    let whose = if kuryr {
        ", made by Kuryr for this cluster"
    } else {
        ""
    };
    format!(
        "port {} `{}` ({owner}, {}){whose}",
        str_of(p, "id"),
        str_of(p, "name"),
        ips.join(" ")
    )
}
