//! The difference between a plan and what the cloud holds, as data.
//! Pure: no I/O. Addresses and prefixes are compared as values, never as
//! text (Neutron answers in canonical compressed form).

use super::RunOptions;
use super::change::{
    Action, Change, ChangeSet, FieldChange, Target, describe_immutable, duplicates_refusal,
};
use super::kind::TargetKind;
use super::observe::{Observed, str_of};
use super::ownership::Ownership;
use crate::cloud::Kind;
use crate::plan::{Plan, Pool, Rule, Step, Strict, Subnet};
use crate::rule_canon;
use ipnet::IpNet;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;

pub(super) struct Differ<'a> {
    obs: &'a Observed,
    options: RunOptions,
    own: Ownership,
    set: ChangeSet,
}

impl Differ<'_> {
    fn push(
        &mut self,
        target: Target,
        action: Action,
        id: Option<&Value>,
        fields: Vec<FieldChange>,
    ) {
        let id = id.map(|v| str_of(v, "id").to_string());
        self.set.changes.push(Change {
            target,
            action,
            id,
            fields,
        });
    }

    /// A resource with no field to compare, only whether it is there; the
    /// one found, if any.
    fn presence(
        &mut self,
        kind: &Kind,
        name: &str,
        target: impl FnOnce(String) -> Target,
    ) -> Option<Value> {
        let (found, action) = self.locate(kind, name);
        self.push(target(name.to_string()), action, found.as_ref(), Vec::new());
        found
    }

    /// Finds the resource a step stands for: ours, or a same-named foreign
    /// one (adopted with --adopt, else a refusal naming it).
    fn locate(&mut self, kind: &Kind, name: &str) -> (Option<Value>, Action) {
        let owned = self.obs.owned_named(kind, name);
        if owned.len() > 1 {
            self.set
                .refusals
                .push(duplicates_refusal(kind, name, &owned));
            return (None, Action::NoOp);
        }
        if let Some(v) = owned.first() {
            // Ours but untagged: a create that was cut before its tagging.
            let action = if self.own.is_tagged(v) {
                Action::NoOp
            } else {
                Action::Adopt
            };
            return (Some((*v).clone()), action);
        }
        let foreign: Vec<&Value> = self
            .obs
            .foreign(kind)
            .iter()
            .filter(|v| v["name"] == name)
            .collect();
        match foreign.as_slice() {
            [] => (None, Action::Create),
            [one] => {
                let id = str_of(one, "id");
                if let Some(owner) = self.own.other_owner(one) {
                    self.set.refusals.push(format!("{kind} `{name}` ({id}) belongs to kuryr6 pipeline `{owner}`; rename this step or destroy that pipeline first"));
                    (None, Action::NoOp)
                } else if self.options.adopt {
                    (Some((*one).clone()), Action::Adopt)
                } else {
                    self.set.refusals.push(format!(
                        "{kind} `{name}` ({id}) exists but kuryr6 does not own it; run again with --adopt to tag and manage it, or rename the step"
                    ));
                    (None, Action::NoOp)
                }
            }
            many => {
                let ids: Vec<&str> = many.iter().map(|v| str_of(v, "id")).collect();
                self.set.refusals.push(format!("{} {kind}s are named `{name}` ({}); kuryr6 cannot tell which one is meant: rename the step", many.len(), ids.join(", ")));
                (None, Action::NoOp)
            }
        }
    }
}

/// The changes that make the cloud match `plan`.
pub fn diff(plan: &Plan, obs: &Observed, options: RunOptions) -> ChangeSet {
    let mut d = Differ {
        obs,
        options,
        own: Ownership::new(&plan.pipeline),
        set: ChangeSet {
            pipeline: plan.pipeline.clone(),
            ..Default::default()
        },
    };
    for step in &plan.steps {
        match step {
            Step::Network(n) => {
                d.presence(&Kind::Network, &n.name, |name| Target::Network { name });
            }
            Step::Subnet(s) => diff_subnet(&mut d, s),
            Step::Router(r) => {
                let found = d.presence(&Kind::Router, &r.name, |name| Target::Router { name });
                diff_interfaces(&mut d, &r.name, found.as_ref(), &r.interfaces);
            }
            Step::SecurityGroup(sg) => {
                let (found, action) = d.locate(&Kind::SecurityGroup, &sg.name);
                let mut fields = Vec::new();
                let wanted = d.own.sg_description(&sg.description);
                // An adopted group keeps its own description when it is the
                // pipeline's text: only tags mark adoption.
                if let Some(v) = &found
                    && str_of(v, "description") != wanted
                    && str_of(v, "description") != sg.description
                {
                    fields.push(FieldChange {
                        field: "description".into(),
                        from: str_of(v, "description").into(),
                        to: wanted,
                    });
                }
                let action = if action == Action::NoOp && !fields.is_empty() {
                    Action::Update
                } else {
                    action
                };
                d.push(
                    Target::SecurityGroup {
                        name: sg.name.clone(),
                    },
                    action,
                    found.as_ref(),
                    fields,
                );
                diff_rules(&mut d, &sg.name, found.as_ref(), &sg.rules);
            }
            Step::Emit(_) | Step::Loadbalancer(_) => {}
        }
    }
    check_providers(&mut d, plan);
    super::diff_lb::diff_loadbalancers(plan, obs, &mut d.set, options);
    diff_orphans(&mut d, plan);
    d.set
}

/// A provider the plan names must be one Octavia enables: refused here,
/// before any write, naming the ones it has.
fn check_providers(d: &mut Differ, plan: &Plan) {
    let Some(have) = &d.obs.lb_providers else {
        return;
    };
    for (who, wanted) in super::observe::providers_named_in(plan) {
        if have.iter().any(|h| h == wanted) {
            continue;
        }
        let has = if have.is_empty() {
            "none (no Octavia in the catalog)".to_string()
        } else {
            have.join(", ")
        };
        d.set.refusals.push(format!(
            "{who} `{wanted}` is not enabled on this cloud; its load-balancer providers: {has}. Name one of those, or leave it out for the cloud's default"
        ));
    }
}

fn parse_ip(v: &Value) -> Option<IpAddr> {
    v.as_str()?.parse().ok()
}

fn observed_pools(v: &Value) -> Vec<Pool> {
    v["allocation_pools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(Pool {
                        start: parse_ip(&p["start"])?,
                        end: parse_ip(&p["end"])?,
                        extra: Strict,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn show_pools(pools: &[Pool]) -> String {
    pools
        .iter()
        .map(|p| format!("{}-{}", p.start, p.end))
        .collect::<Vec<_>>()
        .join(",")
}

fn diff_subnet(d: &mut Differ, s: &Subnet) {
    let (found, action) = d.locate(&Kind::Subnet, &s.name);
    let target = Target::Subnet {
        name: s.name.clone(),
    };
    let Some(v) = found else {
        d.push(target, action, None, Vec::new());
        return;
    };
    // Immutable in Neutron: cidr, ip_version, network.
    let mut immutable = Vec::new();
    let cidr: Option<IpNet> = v["cidr"].as_str().and_then(|c| c.parse().ok());
    if cidr != Some(s.cidr) {
        immutable.push(FieldChange {
            field: "cidr".into(),
            from: str_of(&v, "cidr").into(),
            to: s.cidr.to_string(),
        });
    }
    if v["ip_version"].as_u64() != Some(u64::from(s.ip_version)) {
        immutable.push(FieldChange {
            field: "ip_version".into(),
            from: v["ip_version"].to_string(),
            to: s.ip_version.to_string(),
        });
    }
    if let Some(net) = d.obs.find(&Kind::Network, &s.network).or_else(|| {
        d.obs
            .foreign(&Kind::Network)
            .iter()
            .find(|n| n["name"] == s.network.as_str())
    }) && str_of(net, "id") != str_of(&v, "network_id")
    {
        immutable.push(FieldChange {
            field: "network".into(),
            from: str_of(&v, "network_id").into(),
            to: s.network.clone(),
        });
    }
    if !immutable.is_empty() {
        if d.options.replace {
            d.push(target, Action::Replace, Some(&v), immutable);
        } else {
            d.set.refusals.push(format!(
                "subnet `{}` ({}): {}; Neutron cannot change that in place. Run again with --replace to delete and re-create it (its ports go with it)",
                s.name,
                str_of(&v, "id"),
                describe_immutable(&immutable)
            ));
        }
        return;
    }
    let mut fields = Vec::new();
    if parse_ip(&v["gateway_ip"]) != Some(s.gateway_ip) {
        fields.push(FieldChange {
            field: "gateway_ip".into(),
            from: v["gateway_ip"].as_str().unwrap_or("none").into(),
            to: s.gateway_ip.to_string(),
        });
    }
    let have: BTreeSet<(IpAddr, IpAddr)> = observed_pools(&v)
        .iter()
        .map(|p| (p.start, p.end))
        .collect();
    let want: BTreeSet<(IpAddr, IpAddr)> = s
        .allocation_pools
        .iter()
        .map(|p| (p.start, p.end))
        .collect();
    if have != want {
        fields.push(FieldChange {
            field: "allocation_pools".into(),
            from: show_pools(&observed_pools(&v)),
            to: show_pools(&s.allocation_pools),
        });
    }
    if v["enable_dhcp"].as_bool() != Some(s.enable_dhcp) {
        fields.push(FieldChange {
            field: "enable_dhcp".into(),
            from: v["enable_dhcp"].to_string(),
            to: s.enable_dhcp.to_string(),
        });
    }
    let action = match action {
        Action::NoOp if !fields.is_empty() => Action::Update,
        a => a,
    };
    d.push(target, action, Some(&v), fields);
}

/// Subnet ids a router is attached to, from its interface ports.
fn attached_subnets(obs: &Observed, router_id: &str) -> BTreeSet<String> {
    obs.router_ports
        .iter()
        .chain(&obs.adoptable_router_ports)
        .filter(|p| str_of(p, "device_id") == router_id)
        .flat_map(|p| p["fixed_ips"].as_array().cloned().unwrap_or_default())
        .filter_map(|ip| ip["subnet_id"].as_str().map(str::to_string))
        .collect()
}

fn diff_interfaces(d: &mut Differ, router: &str, found: Option<&Value>, wanted: &[String]) {
    let attached = found
        .map(|r| attached_subnets(d.obs, str_of(r, "id")))
        .unwrap_or_default();
    let subnet_id = |name: &str| {
        d.obs
            .find(&Kind::Subnet, name)
            .or_else(|| {
                d.obs
                    .foreign(&Kind::Subnet)
                    .iter()
                    .find(|s| s["name"] == name)
            })
            .map(|s| str_of(s, "id").to_string())
    };
    for subnet in wanted {
        let present = subnet_id(subnet).is_some_and(|id| attached.contains(&id));
        // A subnet being re-created must be detached first; the new one is
        // attached after it exists.
        let replaced = d.set.changes.iter().any(|c| {
            c.action == Action::Replace
                && c.target
                    == Target::Subnet {
                        name: subnet.clone(),
                    }
        });
        if present && replaced {
            d.set.changes.push(Change {
                target: Target::Interface {
                    router: router.into(),
                    subnet: subnet.clone(),
                },
                action: Action::Delete,
                id: subnet_id(subnet),
                fields: Vec::new(),
            });
        }
        let present = present && !replaced;
        let action = if present {
            Action::NoOp
        } else {
            Action::Create
        };
        d.set.changes.push(Change {
            target: Target::Interface {
                router: router.into(),
                subnet: subnet.clone(),
            },
            action,
            id: None,
            fields: Vec::new(),
        });
    }
    // Detach only owned subnets the plan no longer lists; never someone else's.
    for owned in d.obs.owned(&Kind::Subnet) {
        let name = str_of(owned, "name");
        if attached.contains(str_of(owned, "id")) && !wanted.iter().any(|w| w == name) {
            d.set.changes.push(Change {
                target: Target::Interface {
                    router: router.into(),
                    subnet: name.into(),
                },
                action: Action::Delete,
                id: Some(str_of(owned, "id").into()),
                fields: Vec::new(),
            });
        }
    }
}

/// A rule as the cloud describes it, normalised for comparison by value.
pub fn observed_rule(v: &Value) -> Rule {
    let port = |k: &str| v[k].as_u64().and_then(|p| u16::try_from(p).ok());
    Rule {
        direction: str_of(v, "direction").into(),
        ethertype: str_of(v, "ethertype").into(),
        protocol: v["protocol"].as_str().map(str::to_string),
        remote_ip_prefix: v["remote_ip_prefix"]
            .as_str()
            .and_then(|p| p.parse::<IpNet>().ok())
            .map(|p| p.trunc()),
        port_range_min: port("port_range_min"),
        port_range_max: port("port_range_max"),
        extra: Strict,
    }
}

/// Whether a rule as the cloud returned it is `rule`, as Neutron compares
/// rules (see `rule_canon`).
pub fn same_rule_value(v: &Value, rule: &Rule) -> bool {
    rule_canon::same(v, rule)
}

fn diff_rules(d: &mut Differ, group: &str, found: Option<&Value>, wanted: &[Rule]) {
    let sg_id = found
        .map(|v| str_of(v, "id").to_string())
        .unwrap_or_default();
    let observed: Vec<&Value> = d
        .obs
        .rules
        .iter()
        .chain(&d.obs.adoptable_rules)
        .filter(|r| !sg_id.is_empty() && str_of(r, "security_group_id") == sg_id)
        .collect();
    for rule in wanted {
        let hit = observed.iter().find(|o| same_rule_value(o, rule));
        d.set.changes.push(Change {
            target: Target::Rule {
                group: group.into(),
                rule: rule.clone(),
            },
            action: if hit.is_some() {
                Action::NoOp
            } else {
                Action::Create
            },
            id: hit.map(|h| str_of(h, "id").to_string()),
            fields: Vec::new(),
        });
    }
    // Only rules kuryr6 made (marked by description) are ever deleted; the
    // default egress rules and hand-made ones stay.
    for o in observed {
        if d.own.made_rule(o) && !wanted.iter().any(|w| same_rule_value(o, w)) {
            d.set.changes.push(Change {
                target: Target::Rule {
                    group: group.into(),
                    rule: observed_rule(o),
                },
                action: Action::Delete,
                id: Some(str_of(o, "id").into()),
                fields: Vec::new(),
            });
        }
    }
}

/// Owned resources whose step left the pipeline are deleted.
fn diff_orphans(d: &mut Differ, plan: &Plan) {
    let in_plan = |kind: TargetKind, name: &str| {
        plan.steps
            .iter()
            .any(|s| s.name() == name && TargetKind::of_step(s.kind()) == Some(kind))
    };
    // An orphaned router's interfaces go before it.
    for r in d.obs.owned(&Kind::Router) {
        if in_plan(TargetKind::Router, str_of(r, "name")) {
            continue;
        }
        for sid in attached_subnets(d.obs, str_of(r, "id")) {
            let subnet = d
                .obs
                .owned(&Kind::Subnet)
                .iter()
                .find(|s| str_of(s, "id") == sid)
                .map(|s| str_of(s, "name").to_string())
                .unwrap_or(sid.clone());
            d.set.changes.push(Change {
                target: Target::Interface {
                    router: str_of(r, "name").into(),
                    subnet,
                },
                action: Action::Delete,
                id: Some(sid),
                fields: Vec::new(),
            });
        }
    }
    for kind in TargetKind::OWNED_NEUTRON_DELETE_ORDER {
        let Some(collection) = kind.collection() else {
            continue;
        };
        for v in d.obs.owned(&collection) {
            let name = str_of(v, "name");
            if in_plan(kind, name) {
                continue;
            }
            if let Some(target) = Target::of_step(kind, name) {
                d.set.changes.push(Change {
                    target,
                    action: Action::Delete,
                    id: Some(str_of(v, "id").into()),
                    fields: Vec::new(),
                });
            }
        }
    }
}
