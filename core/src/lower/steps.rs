//! The `[[step]]` form: each step table lowered on its own, with omitted
//! fields filled from the guide's defaults and from the steps before it.

use super::layout::{LbChoices, api_loadbalancer, default_layout, default_resource_tags};
use super::{DEFAULT_MEMBER_MODE, DEFAULT_OVS_BRIDGE, Lowerer, text};
use crate::addr;
use crate::diag::{Code, Diagnostic};
use crate::pipeline::*;
use crate::plan::*;
use crate::source::Span;

pub(super) fn lower_steps(
    l: &mut Lowerer,
    raw: &[S<RawStep>],
    pipeline: &str,
    k: &Kubernetes,
) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for rs in raw {
        let span = rs.span();
        let r = rs.get_ref();
        let name = r.name.get_ref().clone();
        l.spans.set(&name, "", span.clone());
        l.spans.set(&name, "name", r.name.span());
        l.spans.define(&name, r.name.span());
        let Some(kind) = StepKind::parse(r.kind.get_ref()) else {
            let kinds: Vec<_> = StepKind::ALL.iter().map(|k| k.as_str()).collect();
            l.err(
                Diagnostic::new(
                    Code::E017,
                    format!("unknown step kind `{}`", r.kind.get_ref()),
                )
                .help(format!("kind is one of: {}", kinds.join(", ")))
                .at(Some(r.kind.span())),
            );
            continue;
        };
        let allowed = fields_allowed(kind);
        let mut misplaced = false;
        for (field, fspan) in r.present_fields() {
            l.spans.set(&name, field, fspan.clone());
            if !allowed.contains(&field) {
                misplaced = true;
                let help = if allowed.is_empty() {
                    format!("a {kind} step takes only kind and name")
                } else {
                    format!("a {kind} step takes: {}", allowed.join(", "))
                };
                l.err(
                    Diagnostic::new(
                        Code::E017,
                        format!("`{field}` is not a field of a {kind} step"),
                    )
                    .help(help)
                    .at(Some(fspan)),
                );
            }
        }
        if misplaced {
            continue;
        }
        let step = match kind {
            StepKind::Network => Some(Step::Network(Network {
                name,
                extra: Strict,
            })),
            StepKind::Subnet => lower_subnet(l, r, span).map(Step::Subnet),
            StepKind::Router => Some(Step::Router(Router {
                name,
                interfaces: r
                    .interfaces
                    .iter()
                    .flat_map(|v| v.get_ref())
                    .map(|s| s.get_ref().clone())
                    .collect(),
                extra: Strict,
            })),
            StepKind::SecurityGroup => lower_security_group(l, r).map(Step::SecurityGroup),
            StepKind::Loadbalancer => {
                lower_loadbalancer(l, r, &steps, k, span).map(Step::Loadbalancer)
            }
            StepKind::Emit => Some(Step::Emit(lower_emit(l, r, &steps, pipeline, span))),
        };
        steps.extend(step);
    }
    steps
}

fn required<'a, T>(
    l: &mut Lowerer,
    v: &'a Option<S<T>>,
    step: &RawStep,
    field: &str,
    example: &str,
    at: &Span,
) -> Option<&'a S<T>> {
    if v.is_none() {
        l.err(
            Diagnostic::new(
                Code::E002,
                format!(
                    "{} step `{}` is missing `{field}`",
                    step.kind.get_ref(),
                    step.name.get_ref()
                ),
            )
            .help(format!("add `{field} = {example}`"))
            .at(Some(at.clone())),
        );
    }
    v.as_ref()
}

fn lower_subnet(l: &mut Lowerer, r: &RawStep, span: Span) -> Option<Subnet> {
    let name = r.name.get_ref();
    let network = required(l, &r.network, r, "network", "\"pods\"", &span);
    let cidr_text = required(l, &r.cidr, r, "cidr", "\"fd10:0:0:1::/64\"", &span);
    let cidr = cidr_text.and_then(|c| l.prefix(c));
    let ip_version = match &r.ip_version {
        Some(v) => *v.get_ref(),
        None => {
            let hint = cidr.map(|c| addr::net_version(&c)).unwrap_or(6);
            l.err(
                Diagnostic::new(Code::E005, format!("subnet `{name}` has no ip_version"))
                    .help(format!("add `ip_version = {hint}`: Neutron does not derive it from the CIDR, and a missing one has made IPv6 subnets IPv4 in other tools"))
                    .at(Some(span.clone())),
            );
            0
        }
    };
    let role = match r.role.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("other", _)) => Role::Other,
        Some(("pod", _)) => Role::Pod,
        Some(("service", _)) => Role::Service,
        Some((other, at)) => {
            l.err(
                Diagnostic::new(Code::E025, format!("unknown subnet role `{other}`"))
                    .help("role is \"pod\", \"service\" or \"other\"")
                    .at(Some(at)),
            );
            Role::Other
        }
    };
    let gateway = r.gateway.as_ref().and_then(|g| l.address(g));
    let mut pools = Vec::new();
    for (i, p) in r
        .allocation_pools
        .iter()
        .flat_map(|v| v.get_ref())
        .enumerate()
    {
        l.spans
            .set(name, &format!("allocation_pools[{i}]"), p.span());
        let p = p.get_ref();
        if let (Some(start), Some(end)) = (l.address(&p.start), l.address(&p.end)) {
            pools.push(Pool {
                start,
                end,
                extra: Strict,
            });
        }
    }
    for mode in [&r.ipv6_address_mode, &r.ipv6_ra_mode]
        .into_iter()
        .flatten()
    {
        l.err(
            Diagnostic::new(Code::E016, format!("subnet `{name}` sets an IPv6 address mode (`{}`)", mode.get_ref()))
                .help("remove ipv6_address_mode and ipv6_ra_mode: Kuryr assigns pod addresses itself and the guide leaves both unset")
                .at(Some(mode.span())),
        );
    }
    let (network, cidr) = (network?, cidr?);
    let (default_gateway, default_pools) = default_layout(role, &cidr);
    Some(Subnet {
        name: name.clone(),
        network: network.get_ref().clone(),
        role,
        cidr,
        ip_version: u8::try_from(ip_version).unwrap_or(0),
        enable_dhcp: r
            .enable_dhcp
            .as_ref()
            .map(|d| *d.get_ref())
            .unwrap_or(false),
        gateway_ip: gateway.unwrap_or(default_gateway),
        allocation_pools: if r.allocation_pools.is_some() {
            pools
        } else {
            default_pools
        },
        extra: Strict,
    })
}

fn lower_security_group(l: &mut Lowerer, r: &RawStep) -> Option<SecurityGroup> {
    let name = r.name.get_ref().clone();
    let mut rules = Vec::new();
    for (i, rr) in r.rules.iter().flat_map(|v| v.get_ref()).enumerate() {
        l.spans.set(&name, &format!("rules[{i}]"), rr.span());
        let rr = rr.get_ref();
        let remote = rr.remote_ip_prefix.as_ref().and_then(|p| l.prefix(p));
        let ethertype = match (&rr.ethertype, remote) {
            (Some(e), _) => e.get_ref().clone(),
            (None, Some(p)) => addr::family_name(addr::net_version(&p)).into(),
            (None, None) => "IPv6".into(),
        };
        let mut port = |v: &Option<S<i64>>| -> Option<u16> {
            let v = v.as_ref()?;
            match u16::try_from(*v.get_ref()) {
                Ok(p) => Some(p),
                Err(_) => {
                    l.err(
                        Diagnostic::new(
                            Code::E024,
                            format!("port {} is out of range", v.get_ref()),
                        )
                        .help("ports are 0 to 65535")
                        .at(Some(v.span())),
                    );
                    None
                }
            }
        };
        let (port_range_min, port_range_max) = (port(&rr.port_range_min), port(&rr.port_range_max));
        rules.push(Rule {
            direction: rr
                .direction
                .as_ref()
                .map(|d| d.get_ref().clone())
                .unwrap_or_else(|| "ingress".into()),
            ethertype,
            protocol: rr.protocol.as_ref().map(|p| p.get_ref().clone()),
            remote_ip_prefix: remote,
            port_range_min,
            port_range_max,
            extra: Strict,
        });
    }
    Some(SecurityGroup {
        description: r
            .description
            .as_ref()
            .map(|d| d.get_ref().clone())
            .unwrap_or_else(|| name.clone()),
        name,
        rules,
        extra: Strict,
    })
}

fn lower_loadbalancer(
    l: &mut Lowerer,
    r: &RawStep,
    earlier: &[Step],
    k: &Kubernetes,
    span: Span,
) -> Option<Loadbalancer> {
    let subnet_ref = required(l, &r.subnet, r, "subnet", "\"service_subnet\"", &span)?;
    let subnet = earlier.iter().find_map(|s| match s {
        Step::Subnet(s) if s.name == *subnet_ref.get_ref() => Some(s),
        _ => None,
    });
    let Some(subnet) = subnet else {
        l.err(
            Diagnostic::new(
                Code::E007,
                format!(
                    "loadbalancer `{}` names subnet `{}`, which is not a subnet step before it",
                    r.name.get_ref(),
                    subnet_ref.get_ref()
                ),
            )
            .help("name the service subnet defined by an earlier [[step]] with kind = \"subnet\"")
            .at(Some(subnet_ref.span())),
        );
        return None;
    };
    let vip = match &r.vip {
        Some(v) => Some(l.address(v)?),
        None => None,
    };
    let guide = LbChoices::default();
    let choices = LbChoices {
        algorithm: text(&r.algorithm),
        listener_port: l.port(&r.listener_port, guide.listener_port, "listener_port"),
        member_port: l.port(&r.member_port, guide.member_port, "member_port"),
        vip,
        provider: text(&r.provider),
        protocol: text(&r.protocol),
    };
    let mut lb = api_loadbalancer(r.name.get_ref(), &subnet.name, &subnet.cidr, choices, k);
    if let Some(p) = &r.pool_name {
        lb.pool_name = p.get_ref().clone();
    }
    Some(lb)
}

fn lower_emit(l: &mut Lowerer, r: &RawStep, earlier: &[Step], pipeline: &str, span: Span) -> Emit {
    let first_subnet = |role: Role| {
        earlier.iter().find_map(|s| match s {
            Step::Subnet(s) if s.role == role => Some(s.name.clone()),
            _ => None,
        })
    };
    let mut pick_subnet = |v: &Option<S<String>>, role: Role, field: &str| {
        text(v).or_else(|| first_subnet(role)).unwrap_or_else(|| {
            l.err(
                Diagnostic::new(
                    Code::E023,
                    format!(
                        "emit step `{}` has no {field}: no subnet has role = \"{}\"",
                        r.name.get_ref(),
                        if role == Role::Pod { "pod" } else { "service" }
                    ),
                )
                .help(format!(
                    "set `{field} = \"<subnet name>\"` or give a subnet step that role"
                ))
                .at(Some(span.clone())),
            );
            String::new()
        })
    };
    let pod_subnet = pick_subnet(&r.pod_subnet, Role::Pod, "pod_subnet");
    let service_subnet = pick_subnet(&r.service_subnet, Role::Service, "service_subnet");
    Emit {
        name: r.name.get_ref().clone(),
        dir: text(&r.dir).unwrap_or_else(|| "out".into()),
        pod_subnet,
        service_subnet,
        security_groups: match &r.security_groups {
            Some(v) => v.get_ref().iter().map(|s| s.get_ref().clone()).collect(),
            None => earlier
                .iter()
                .filter(|s| s.kind() == StepKind::SecurityGroup)
                .map(|s| s.name().to_string())
                .collect(),
        },
        ovs_bridge: text(&r.ovs_bridge).unwrap_or_else(|| DEFAULT_OVS_BRIDGE.into()),
        member_mode: text(&r.member_mode).unwrap_or_else(|| DEFAULT_MEMBER_MODE.into()),
        resource_tags: r
            .resource_tags
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_else(|| default_resource_tags(pipeline)),
        loadbalancer: text(&r.loadbalancer).or_else(|| {
            earlier
                .iter()
                .find(|s| s.kind() == StepKind::Loadbalancer)
                .map(|s| s.name().to_string())
        }),
        octavia_provider: text(&r.octavia_provider),
        extra: Strict,
    }
}
