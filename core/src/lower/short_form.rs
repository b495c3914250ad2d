//! The short form (`[plan]`): the guide's topology derived from the pod and
//! service prefixes.

use super::layout::{
    api_loadbalancer, default_resource_tags, laid_out_subnet, service_access_rules,
};
use super::{
    DEFAULT_LB_ALGORITHM, DEFAULT_LB_NAME, DEFAULT_MEMBER_MODE, DEFAULT_OVS_BRIDGE,
    DEFAULT_SERVICE_PREFIX_LEN, Lowerer, prefix_diag,
};
use crate::addr;
use crate::diag::{Code, Diagnostic};
use crate::pipeline::*;
use crate::plan::*;
use crate::source::Span;
use ipnet::IpNet;

/// Reads a `string or [strings]` CIDR value of the short form.
fn cidr_list(l: &mut Lowerer, v: &S<toml::Value>, key: &str) -> Vec<IpNet> {
    let span = v.span();
    let texts: Vec<String> = match v.get_ref() {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(items) if items.iter().all(|i| i.is_str()) && !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => {
            l.err(
                Diagnostic::new(
                    Code::E001,
                    format!("`{key}` must be a CIDR string or a list of CIDR strings"),
                )
                .help(format!(
                    "e.g. {key} = \"fd10:0:0:2::/112\", or one per family for dual-stack"
                ))
                .at(Some(span)),
            );
            return Vec::new();
        }
    };
    texts
        .iter()
        .filter_map(|t| match addr::parse_prefix(t) {
            Ok(n) => Some(n),
            Err(e) => {
                l.err(prefix_diag(&e, span.clone()));
                None
            }
        })
        .collect()
}

fn name_or(
    names: Option<&RawNames>,
    pick: impl Fn(&RawNames) -> Option<&S<String>>,
    default: &str,
) -> (String, Option<Span>) {
    match names.and_then(pick) {
        Some(n) => (n.get_ref().clone(), Some(n.span())),
        None => (default.to_string(), None),
    }
}

/// The guide, derived: pods and services networks, one subnet per family
/// in each, the router with all subnets, the access security group, the API
/// load balancer when API hosts are named, and the emit step.
pub(super) fn expand_short_form(
    l: &mut Lowerer,
    plan: &S<RawShortPlan>,
    pipeline: &str,
    k: &Kubernetes,
) -> Vec<Step> {
    let table_span = plan.span();
    let p = plan.get_ref();
    let names = p.names.as_ref().map(|n| n.get_ref());

    let (pods, services, origin_pod, origin_service) = match (
        &p.site_prefix,
        &p.pod_cidr,
        &p.service_cidr,
    ) {
        (Some(site), None, None) => {
            let Some(prefix) = l.prefix(site) else {
                return Vec::new();
            };
            let Some(site_id) = &p.site_id else {
                l.err(
                    Diagnostic::new(Code::E021, "site_prefix needs a site_id")
                        .help("add `site_id = N` (0 to 4095): site N gets pods <prefix>:N*16+1::/64 and services <prefix>:N*16+2::/112")
                        .at(Some(site.span())),
                );
                return Vec::new();
            };
            let len = p
                .service_prefix_len
                .as_ref()
                .map(|s| *s.get_ref())
                .unwrap_or(DEFAULT_SERVICE_PREFIX_LEN);
            match addr::carve_site(&prefix, *site_id.get_ref(), len) {
                Ok((pod, svc)) => (vec![pod], vec![svc], site.span(), site.span()),
                Err(e) => {
                    let at = match e {
                        addr::SiteError::NotSlash48(_) => site.span(),
                        addr::SiteError::SiteIdRange(_) => site_id.span(),
                        addr::SiteError::ServiceLen(_) => p
                            .service_prefix_len
                            .as_ref()
                            .map(|s| s.span())
                            .unwrap_or(site.span()),
                    };
                    let help = match e {
                        addr::SiteError::NotSlash48(_) => {
                            "use the site's /48, e.g. site_prefix = \"fd42:a1b2:c3d4::/48\""
                        }
                        addr::SiteError::SiteIdRange(_) => {
                            "number sites from 0 to 4095: each gets its own 16 /64s of the /48"
                        }
                        addr::SiteError::ServiceLen(_) => {
                            "use service_prefix_len = 112, as the guide does"
                        }
                    };
                    l.err(
                        Diagnostic::new(Code::E022, e.to_string())
                            .help(help)
                            .at(Some(at)),
                    );
                    return Vec::new();
                }
            }
        }
        (None, Some(pod), Some(svc)) => {
            for (key, s) in [
                ("site_id", p.site_id.as_ref().map(|s| s.span())),
                (
                    "service_prefix_len",
                    p.service_prefix_len.as_ref().map(|s| s.span()),
                ),
            ] {
                if let Some(span) = s {
                    l.err(
                        Diagnostic::new(Code::E021, format!("`{key}` only applies with site_prefix"))
                            .help("remove it, or replace pod_cidr and service_cidr with site_prefix and site_id")
                            .at(Some(span)),
                    );
                }
            }
            (
                cidr_list(l, pod, "pod_cidr"),
                cidr_list(l, svc, "service_cidr"),
                pod.span(),
                svc.span(),
            )
        }
        (Some(site), _, _) => {
            l.err(
                Diagnostic::new(Code::E021, "site_prefix cannot be combined with pod_cidr or service_cidr")
                    .help("either derive both prefixes from site_prefix and site_id, or give pod_cidr and service_cidr")
                    .at(Some(site.span()))
                    .also(p.pod_cidr.as_ref().map(|c| c.span()), "pod_cidr given here")
                    .also(p.service_cidr.as_ref().map(|c| c.span()), "service_cidr given here"),
            );
            return Vec::new();
        }
        (None, pod, _) => {
            let missing = if pod.is_none() {
                "pod_cidr"
            } else {
                "service_cidr"
            };
            l.err(
                Diagnostic::new(Code::E002, format!("[plan] is missing `{missing}`"))
                    .help("the short form needs pod_cidr and service_cidr (e.g. \"fd10:0:0:1::/64\" and \"fd10:0:0:2::/112\"), or site_prefix and site_id")
                    .at(Some(table_span)),
            );
            return Vec::new();
        }
    };
    if !l.diags.is_empty() {
        return Vec::new();
    }

    let dual = pods.len() > 1 || services.len() > 1;
    let only_v4 = pods
        .iter()
        .chain(&services)
        .all(|n| addr::net_version(n) == 4);
    let mut steps = Vec::new();
    let named = |l: &mut Lowerer, (name, span): (String, Option<Span>), fallback: Span| {
        let span = span.unwrap_or(fallback);
        l.spans.define(&name, span.clone());
        l.spans.set(&name, "", span);
        name
    };

    let pod_net = named(
        l,
        name_or(names, |n| n.pod_network.as_ref(), "pods"),
        table_span.clone(),
    );
    steps.push(Step::Network(Network {
        name: pod_net.clone(),
    }));
    let mut pod_subnets = Vec::new();
    for cidr in &pods {
        let v4_in_dual = addr::net_version(cidr) == 4 && !only_v4;
        let name = if v4_in_dual {
            name_or(names, |n| n.pod_subnet_v4.as_ref(), "pod_subnet_v4")
        } else {
            name_or(names, |n| n.pod_subnet.as_ref(), "pod_subnet")
        };
        let name = named(l, name, origin_pod.clone());
        for field in [
            "cidr",
            "gateway",
            "allocation_pools",
            "ip_version",
            "network",
        ] {
            l.spans.set(&name, field, origin_pod.clone());
        }
        steps.push(Step::Subnet(laid_out_subnet(
            &name,
            &pod_net,
            Role::Pod,
            *cidr,
        )));
        pod_subnets.push(name);
    }

    let svc_net = named(
        l,
        name_or(names, |n| n.service_network.as_ref(), "services"),
        table_span.clone(),
    );
    steps.push(Step::Network(Network {
        name: svc_net.clone(),
    }));
    let mut service_subnets = Vec::new();
    for cidr in &services {
        let v4_in_dual = addr::net_version(cidr) == 4 && !only_v4;
        let name = if v4_in_dual {
            name_or(names, |n| n.service_subnet_v4.as_ref(), "service_subnet_v4")
        } else {
            name_or(names, |n| n.service_subnet.as_ref(), "service_subnet")
        };
        let name = named(l, name, origin_service.clone());
        for field in [
            "cidr",
            "gateway",
            "allocation_pools",
            "ip_version",
            "network",
        ] {
            l.spans.set(&name, field, origin_service.clone());
        }
        steps.push(Step::Subnet(laid_out_subnet(
            &name,
            &svc_net,
            Role::Service,
            *cidr,
        )));
        service_subnets.push((name, *cidr));
    }

    let router = named(
        l,
        name_or(names, |n| n.router.as_ref(), "k8s-ipv6"),
        table_span.clone(),
    );
    steps.push(Step::Router(Router {
        name: router,
        interfaces: pod_subnets
            .iter()
            .chain(service_subnets.iter().map(|(n, _)| n))
            .cloned()
            .collect(),
    }));

    let sg_default = if dual {
        "service_pod_access"
    } else {
        "service_pod_access_v6"
    };
    let sg = named(
        l,
        name_or(names, |n| n.security_group.as_ref(), sg_default),
        table_span.clone(),
    );
    l.spans.set(&sg, "rules", origin_service.clone());
    steps.push(Step::SecurityGroup(SecurityGroup {
        name: sg.clone(),
        description: sg.clone(),
        rules: service_subnets
            .iter()
            .flat_map(|(_, cidr)| service_access_rules(cidr))
            .collect(),
    }));

    let mut lb_name = None;
    if !k.api_hosts.is_empty()
        && let Some((subnet, cidr)) = service_subnets
            .iter()
            .find(|(_, c)| addr::net_version(c) == addr::ip_version(k.api_hosts[0].address))
            .or(service_subnets.first())
    {
        let name = named(
            l,
            name_or(names, |n| n.loadbalancer.as_ref(), DEFAULT_LB_NAME),
            table_span.clone(),
        );
        if let Some(a) = &p.lb_algorithm {
            l.spans.set(&name, "algorithm", a.span());
        }
        let algorithm = p
            .lb_algorithm
            .as_ref()
            .map(|a| a.get_ref().clone())
            .unwrap_or(DEFAULT_LB_ALGORITHM.into());
        steps.push(Step::Loadbalancer(api_loadbalancer(
            &name, subnet, cidr, algorithm, 443, 6443, None, k,
        )));
        lb_name = Some(name);
    }

    let emit = p.emit.as_ref().map(|e| e.get_ref());
    let pick = |f: fn(&RawShortEmit) -> Option<&S<String>>, default: &str| {
        emit.and_then(f)
            .map(|s| s.get_ref().clone())
            .unwrap_or_else(|| default.to_string())
    };
    l.spans.set("configs", "", table_span);
    if let Some(e) = emit {
        for (field, v) in [
            ("dir", &e.dir),
            ("ovs_bridge", &e.ovs_bridge),
            ("member_mode", &e.member_mode),
        ] {
            if let Some(v) = v {
                l.spans.set("configs", field, v.span());
            }
        }
    }
    steps.push(Step::Emit(Emit {
        name: "configs".into(),
        dir: pick(|e| e.dir.as_ref(), "out"),
        pod_subnet: pod_subnets.first().cloned().unwrap_or_default(),
        service_subnet: service_subnets
            .first()
            .map(|(n, _)| n.clone())
            .unwrap_or_default(),
        security_groups: vec![sg],
        ovs_bridge: pick(|e| e.ovs_bridge.as_ref(), DEFAULT_OVS_BRIDGE),
        member_mode: pick(|e| e.member_mode.as_ref(), DEFAULT_MEMBER_MODE),
        resource_tags: emit
            .and_then(|e| e.resource_tags.as_ref())
            .map(|t| t.get_ref().clone())
            .unwrap_or_else(|| default_resource_tags(pipeline)),
        loadbalancer: lb_name,
    }));
    steps
}
