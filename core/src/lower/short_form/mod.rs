//! The short form (`[plan]`): the guide's topology derived from the pod and
//! service prefixes. `prefixes` reads them; each function here builds one
//! kind of step, under the guide's name unless `[plan.names]` overrides it.

mod prefixes;

use super::layout::{
    LbChoices, api_loadbalancer, default_resource_tags, laid_out_subnet, pod_access_rules,
    service_access_rules,
};
use super::{
    DEFAULT_LB_NAME, DEFAULT_MEMBER_MODE, DEFAULT_OVS_BRIDGE, DEFAULT_POD_ACCESS_GROUP, Lowerer,
    text,
};
use crate::addr;
use crate::pipeline::*;
use crate::plan::*;
use crate::source::Span;
use ipnet::IpNet;

/// The guide, derived: pods and services networks, one subnet per family
/// in each, the router with all subnets, the access security group, the API
/// load balancer when API hosts are named, and the emit step.
pub(super) fn expand_short_form(
    l: &mut Lowerer,
    plan: &S<RawShortPlan>,
    pipeline: &str,
    k: &Kubernetes,
) -> Vec<Step> {
    let Some(prefixes) = prefixes::read(l, plan) else {
        return Vec::new();
    };
    if !l.diags.is_empty() {
        return Vec::new();
    }
    let form = Form {
        plan: plan.get_ref(),
        names: plan.get_ref().names.as_ref().map(|n| n.get_ref()),
        table: plan.span(),
        pipeline,
        dual: prefixes.dual(),
        only_v4: prefixes.only_v4(),
    };

    // The calls run in step order: a name given twice is recorded as first
    // defined where the first step that takes it was.
    let pod_network = network(l, &form, &PODS);
    let pod_subnets = subnets(
        l,
        &form,
        &PODS,
        &pod_network.name,
        &prefixes.pods,
        &prefixes.pod_origin,
    );
    let service_network = network(l, &form, &SERVICES);
    let service_subnets = subnets(
        l,
        &form,
        &SERVICES,
        &service_network.name,
        &prefixes.services,
        &prefixes.service_origin,
    );
    let router = router(l, &form, &pod_subnets, &service_subnets);
    let security_group = security_group(l, &form, &service_subnets, &prefixes.service_origin);
    let pod_access = pod_access_group(l, &form, &pod_subnets, &prefixes.pod_origin);
    let loadbalancer = loadbalancer(l, &form, &service_subnets, k);
    let groups: Vec<&SecurityGroup> = std::iter::once(&security_group)
        .chain(pod_access.as_ref())
        .collect();
    let emit = emit(
        l,
        &form,
        &pod_subnets,
        &service_subnets,
        &groups,
        loadbalancer.as_ref(),
    );

    let mut steps = vec![Step::Network(pod_network)];
    steps.extend(pod_subnets.into_iter().map(Step::Subnet));
    steps.push(Step::Network(service_network));
    steps.extend(service_subnets.into_iter().map(Step::Subnet));
    steps.push(Step::Router(router));
    steps.push(Step::SecurityGroup(security_group));
    steps.extend(pod_access.map(Step::SecurityGroup));
    steps.extend(loadbalancer.map(Step::Loadbalancer));
    steps.push(Step::Emit(emit));
    steps
}

/// What every step of the short form is built from besides the prefixes.
struct Form<'a> {
    plan: &'a RawShortPlan,
    names: Option<&'a RawNames>,
    /// The `[plan]` table: where a step with no field of its own points.
    table: Span,
    pipeline: &'a str,
    dual: bool,
    only_v4: bool,
}

/// Picks one name override out of `[plan.names]`.
type Pick = fn(&RawNames) -> Option<&S<String>>;

impl Form<'_> {
    /// The override picked from `[plan.names]`, else `default`; recorded as
    /// defined where the override was written, else at `fallback`.
    fn name(&self, l: &mut Lowerer, pick: Pick, default: &str, fallback: Span) -> String {
        let (name, span) = match self.names.and_then(pick) {
            Some(n) => (n.get_ref().clone(), n.span()),
            None => (default.to_string(), fallback),
        };
        l.spans.define(&name, span.clone());
        l.spans.set(&name, "", span);
        name
    }
}

/// One side of the topology, pods or services: a network, and a subnet of
/// the side's role per family, with the names the guide gives them.
struct Side {
    role: Role,
    network: (Pick, &'static str),
    subnet: (Pick, &'static str),
    /// The IPv4 subnet's name when it sits beside an IPv6 one.
    subnet_v4: (Pick, &'static str),
}

const PODS: Side = Side {
    role: Role::Pod,
    network: (|n| n.pod_network.as_ref(), "pods"),
    subnet: (|n| n.pod_subnet.as_ref(), "pod_subnet"),
    subnet_v4: (|n| n.pod_subnet_v4.as_ref(), "pod_subnet_v4"),
};

const SERVICES: Side = Side {
    role: Role::Service,
    network: (|n| n.service_network.as_ref(), "services"),
    subnet: (|n| n.service_subnet.as_ref(), "service_subnet"),
    subnet_v4: (|n| n.service_subnet_v4.as_ref(), "service_subnet_v4"),
};

fn network(l: &mut Lowerer, form: &Form, side: &Side) -> Network {
    let (pick, default) = side.network;
    Network {
        name: form.name(l, pick, default, form.table.clone()),
        extra: Strict,
    }
}

/// One subnet per prefix, laid out by the side's role. Every field derived
/// from the prefix points at where the prefix was written (`origin`).
fn subnets(
    l: &mut Lowerer,
    form: &Form,
    side: &Side,
    network: &str,
    prefixes: &[IpNet],
    origin: &Span,
) -> Vec<Subnet> {
    let mut subnets = Vec::new();
    for cidr in prefixes {
        let v4_in_dual = addr::net_version(cidr) == 4 && !form.only_v4;
        let (pick, default) = if v4_in_dual {
            side.subnet_v4
        } else {
            side.subnet
        };
        let name = form.name(l, pick, default, origin.clone());
        for field in [
            "cidr",
            "gateway",
            "allocation_pools",
            "ip_version",
            "network",
        ] {
            l.spans.set(&name, field, origin.clone());
        }
        subnets.push(laid_out_subnet(&name, network, side.role, *cidr));
    }
    subnets
}

/// The router with every subnet as an interface, pods first.
fn router(l: &mut Lowerer, form: &Form, pods: &[Subnet], services: &[Subnet]) -> Router {
    Router {
        name: form.name(l, |n| n.router.as_ref(), "k8s-ipv6", form.table.clone()),
        interfaces: pods
            .iter()
            .chain(services)
            .map(|s| s.name.clone())
            .collect(),
        extra: Strict,
    }
}

/// The group that lets pods accept traffic from every service subnet. Its
/// rules come from the service prefixes, so they point there (`origin`).
fn security_group(
    l: &mut Lowerer,
    form: &Form,
    services: &[Subnet],
    origin: &Span,
) -> SecurityGroup {
    let default = if form.dual {
        "service_pod_access"
    } else {
        "service_pod_access_v6"
    };
    let name = form.name(
        l,
        |n| n.security_group.as_ref(),
        default,
        form.table.clone(),
    );
    l.spans.set(&name, "rules", origin.clone());
    SecurityGroup {
        name: name.clone(),
        description: name,
        rules: services
            .iter()
            .flat_map(|s| service_access_rules(&s.cidr))
            .collect(),
        extra: Strict,
    }
}

/// `member_mode = "L2"`: the group that lets pods accept traffic from
/// their own subnets, where Octavia's member ports sit. Its rules come
/// from the pod prefixes (`origin`); `None` in L3 mode.
fn pod_access_group(
    l: &mut Lowerer,
    form: &Form,
    pods: &[Subnet],
    origin: &Span,
) -> Option<SecurityGroup> {
    let mode = form.plan.emit.as_ref()?.get_ref().member_mode.as_ref()?;
    if mode.get_ref() != "L2" {
        return None;
    }
    let name = form.name(
        l,
        |n| n.octavia_pod_access.as_ref(),
        DEFAULT_POD_ACCESS_GROUP,
        mode.span(),
    );
    l.spans.set(&name, "rules", origin.clone());
    Some(SecurityGroup {
        name: name.clone(),
        description: name,
        rules: pods
            .iter()
            .flat_map(|s| pod_access_rules(&s.cidr))
            .collect(),
        extra: Strict,
    })
}

/// The API load balancer, when API hosts are named: on the service subnet
/// of the first host's family, else on the first service subnet.
fn loadbalancer(
    l: &mut Lowerer,
    form: &Form,
    services: &[Subnet],
    k: &Kubernetes,
) -> Option<Loadbalancer> {
    let first_host = k.api_hosts.first()?;
    let subnet = services
        .iter()
        .find(|s| addr::net_version(&s.cidr) == addr::ip_version(first_host.address))
        .or(services.first())?;
    let name = form.name(
        l,
        |n| n.loadbalancer.as_ref(),
        DEFAULT_LB_NAME,
        form.table.clone(),
    );
    let plan = &form.plan;
    for (key, field) in [
        (&plan.lb_algorithm, "algorithm"),
        (&plan.lb_provider, "provider"),
        (&plan.lb_protocol, "protocol"),
    ] {
        if let Some(v) = key {
            l.spans.set(&name, field, v.span());
        }
    }
    let choices = LbChoices {
        algorithm: text(&plan.lb_algorithm),
        provider: text(&plan.lb_provider),
        protocol: text(&plan.lb_protocol),
        ..LbChoices::default()
    };
    Some(api_loadbalancer(
        &name,
        &subnet.name,
        &subnet.cidr,
        choices,
        k,
    ))
}

/// The `configs` step: Kuryr's settings for the first pod and service
/// subnets, the access groups and the load balancer, plus `[plan.emit]`.
fn emit(
    l: &mut Lowerer,
    form: &Form,
    pods: &[Subnet],
    services: &[Subnet],
    security_groups: &[&SecurityGroup],
    loadbalancer: Option<&Loadbalancer>,
) -> Emit {
    let emit = form.plan.emit.as_ref().map(|e| e.get_ref());
    let pick = |f: fn(&RawShortEmit) -> Option<&S<String>>, default: &str| {
        emit.and_then(f)
            .map(|s| s.get_ref().clone())
            .unwrap_or_else(|| default.to_string())
    };
    l.spans.set("configs", "", form.table.clone());
    if let Some(e) = emit {
        for (field, v) in [
            ("dir", &e.dir),
            ("ovs_bridge", &e.ovs_bridge),
            ("member_mode", &e.member_mode),
            ("octavia_provider", &e.octavia_provider),
        ] {
            if let Some(v) = v {
                l.spans.set("configs", field, v.span());
            }
        }
    }
    Emit {
        name: "configs".into(),
        dir: pick(|e| e.dir.as_ref(), "out"),
        pod_subnet: pods.first().map(|s| s.name.clone()).unwrap_or_default(),
        service_subnet: services.first().map(|s| s.name.clone()).unwrap_or_default(),
        security_groups: security_groups.iter().map(|g| g.name.clone()).collect(),
        ovs_bridge: pick(|e| e.ovs_bridge.as_ref(), DEFAULT_OVS_BRIDGE),
        member_mode: pick(|e| e.member_mode.as_ref(), DEFAULT_MEMBER_MODE),
        resource_tags: emit
            .and_then(|e| e.resource_tags.as_ref())
            .map(|t| t.get_ref().clone())
            .unwrap_or_else(|| default_resource_tags(form.pipeline)),
        loadbalancer: loadbalancer.map(|lb| lb.name.clone()),
        octavia_provider: emit
            .and_then(|e| e.octavia_provider.as_ref())
            .map(|p| p.get_ref().clone()),
        extra: Strict,
    }
}
