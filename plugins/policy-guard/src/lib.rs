//! `policy-guard`: rules that span sites, checked before any API call.
//!
//! Errors: `overlap` (two sites' subnets share addresses), `not-ula` (an
//! IPv6 subnet outside fc00::/7) and `not-private` (IPv4 outside RFC 1918),
//! `outside-prefix` (a subnet outside the `prefix` fact, when given),
//! `service-range` (a service subnet that is not a /`service_prefix_len`,
//! default /112, or whose load balancer VIP is not the range's first
//! address), `duplicate-name` (a pipeline name or a network, subnet, router
//! or security-group name used by two sites). Warning: `version-skew`
//! (sites on different Kubernetes versions).

use ipnet::IpNet;
use kuryr6_plugin_sdk::plan::{Role, Step};
use kuryr6_plugin_sdk::{Hook, Plugin, Site, Violation, cidr, export_plugin};
use std::collections::BTreeMap;

struct PolicyGuard;

fn check_site(site: &Site, out: &mut Vec<Violation>) -> Result<(), String> {
    let prefix = match site.facts.get("prefix") {
        Some(p) => Some(cidr::parse(p)?),
        None => None,
    };
    let service_len: u8 = site.facts.parse_or("service_prefix_len", 112)?;
    for s in site.plan.subnets() {
        let at = |v: Violation| v.at(&site.name, &s.name);
        match s.cidr {
            IpNet::V6(_) if !cidr::is_ula(&s.cidr) => out.push(at(Violation::error(
                "not-ula",
                format!(
                    "subnet {} is {}, not a unique local (fc00::/7) prefix",
                    s.name, s.cidr
                ),
            ))),
            IpNet::V4(_) if !cidr::is_private_v4(&s.cidr) => out.push(at(Violation::error(
                "not-private",
                format!(
                    "subnet {} is {}, not RFC 1918 private space",
                    s.name, s.cidr
                ),
            ))),
            _ => {}
        }
        if let Some(p) = prefix.filter(|p| cidr::version(p) == s.ip_version)
            && !cidr::contains(&p, &s.cidr)
        {
            out.push(at(Violation::error(
                "outside-prefix",
                format!(
                    "subnet {} ({}) is outside the site prefix {p}",
                    s.name, s.cidr
                ),
            )));
        }
        if s.role == Role::Service && s.ip_version == 6 && s.cidr.prefix_len() != service_len {
            out.push(at(Violation::error(
                "service-range",
                format!(
                    "service subnet {} is a /{}; this policy requires /{service_len}",
                    s.name,
                    s.cidr.prefix_len()
                ),
            )));
        }
    }
    for step in &site.plan.steps {
        let Step::Loadbalancer(lb) = step else {
            continue;
        };
        let Some(subnet) = site.plan.subnets().find(|s| s.name == lb.subnet) else {
            continue;
        };
        if let Some(layout) = cidr::service_layout(&subnet.cidr)
            && lb.vip != layout.kubernetes_default_ip
        {
            out.push(
                Violation::error(
                    "service-range",
                    format!(
                        "load balancer {} has VIP {}; Kubernetes gives the `kubernetes` service {}",
                        lb.name, lb.vip, layout.kubernetes_default_ip
                    ),
                )
                .at(&site.name, &lb.name),
            );
        }
    }
    Ok(())
}

fn check_across(sites: &[Site], out: &mut Vec<Violation>) {
    for (i, a) in sites.iter().enumerate() {
        for b in &sites[i + 1..] {
            for sa in a.plan.subnets() {
                for sb in b
                    .plan
                    .subnets()
                    .filter(|sb| cidr::overlaps(&sa.cidr, &sb.cidr))
                {
                    out.push(
                        Violation::error(
                            "overlap",
                            format!(
                                "subnet {} ({}) overlaps subnet {} ({}) of {}",
                                sa.name, sa.cidr, sb.name, sb.cidr, b.name
                            ),
                        )
                        .at(&a.name, &sa.name),
                    );
                }
            }
        }
    }

    // Names: first user of each name → later users are duplicates.
    let mut pipelines: BTreeMap<&str, &str> = BTreeMap::new();
    let mut resources: BTreeMap<&str, &str> = BTreeMap::new();
    for site in sites {
        if let Some(first) = pipelines.get(site.plan.pipeline.as_str()) {
            out.push(
                Violation::error(
                    "duplicate-name",
                    format!(
                        "pipeline name {} is also used by {first}; ownership tags would collide",
                        site.plan.pipeline
                    ),
                )
                .at(&site.name, ""),
            );
        } else {
            pipelines.insert(&site.plan.pipeline, &site.name);
        }
        for step in &site.plan.steps {
            if matches!(step, Step::Loadbalancer(_) | Step::Emit(_)) {
                continue;
            }
            match resources.get(step.name()) {
                Some(first) if *first != site.name => out.push(
                    Violation::error(
                        "duplicate-name",
                        format!(
                            "{} name {} is also used by {first}; use the naming plugin to give each site its own names",
                            step.kind(),
                            step.name()
                        ),
                    )
                    .at(&site.name, step.name()),
                ),
                Some(_) => {}
                None => {
                    resources.insert(step.name(), &site.name);
                }
            }
        }
    }

    if let Some(first) = sites.first() {
        for site in &sites[1..] {
            if site.plan.kubernetes.version != first.plan.kubernetes.version {
                out.push(
                    Violation::warning(
                        "version-skew",
                        format!(
                            "Kubernetes {} here, {} at {}",
                            site.plan.kubernetes.version, first.plan.kubernetes.version, first.name
                        ),
                    )
                    .at(&site.name, ""),
                );
            }
        }
    }
}

impl Plugin for PolicyGuard {
    const NAME: &'static str = "policy-guard";
    const HOOKS: &'static [Hook] = &[Hook::Policy];

    fn check(sites: &[Site]) -> Result<Vec<Violation>, String> {
        let mut out = Vec::new();
        for site in sites {
            check_site(site, &mut out).map_err(|e| format!("{}: {e}", site.name))?;
        }
        check_across(sites, &mut out);
        Ok(out)
    }
}

export_plugin!(PolicyGuard);
