//! From a `Snapshot` (the APIs' JSON) to pipeline TOML: the short form
//! when the deployment is exactly what the short form derives, else every
//! step spelled out, with a comment on each deviation from the guide.
//!
//! Pure: no I/O. The text is checked before it is returned: it must load
//! without error and give exactly the plan built from the snapshot, so
//! what import writes reproduces the cloud field for field.

use super::{ImportError, LbSnapshot, Snapshot};
use crate::addr;
use crate::diag::Diagnostic;
use crate::engine::diff::observed_rule;
use crate::engine::observe::str_of;
use crate::load::load_source;
use crate::lower::{self, DEFAULT_LB_ALGORITHM, DEFAULT_MEMBER_MODE, DEFAULT_OVS_BRIDGE};
use crate::plan::*;
use crate::source::SourceFile;
use crate::validate::{self, GUIDE_SERVICE_PREFIX_LEN, LB_PROTOCOLS};
use ipnet::IpNet;
use serde_json::Value;
use std::fmt::Write;
use std::net::IpAddr;

/// The result: the pipeline text, whether it is the short form, the plan
/// it loads to, and the warnings `check` gives on it.
#[derive(Debug, Clone)]
pub struct Imported {
    pub text: String,
    pub short_form: bool,
    pub plan: Plan,
    pub warnings: Vec<Diagnostic>,
}

/// Kubernetes version written when the service range needs the
/// MultiCIDRServiceAllocator (a range wider than /108).
const MULTI_CIDR_VERSION: &str = "1.34";

/// A step with the comments that explain where it leaves the guide.
struct Noted {
    step: Step,
    notes: Vec<String>,
}

/// Writes the pipeline named `name` for `snap`.
pub fn write(snap: &Snapshot, name: &str) -> Result<Imported, ImportError> {
    let steps = steps(snap, name)?;
    let kubernetes = kubernetes(snap, &steps);
    let plan = Plan {
        pipeline: name.to_string(),
        kubernetes,
        steps: steps.iter().map(|n| n.step.clone()).collect(),
        extra: Strict,
    };
    let short = short_form(&plan, snap);
    let (text, short_form) = match short.filter(|t| loads_to(t, &plan)) {
        Some(t) => (t, true),
        None => (explicit_form(&plan, &steps, snap), false),
    };
    let loaded =
        load_source(SourceFile::new("imported pipeline.toml", text.as_str())).map_err(|r| {
            let problems: Vec<String> = r
                .diagnostics
                .iter()
                .map(|d| format!("{} {}", d.code, d.message))
                .collect();
            ImportError::Unsupported(format!(
                "the deployment cannot be written as a valid pipeline: {}",
                problems.join("; ")
            ))
        })?;
    if loaded.plan != plan {
        return Err(ImportError::Unsupported(
            "the written pipeline does not reproduce the deployment (a kuryr6 bug: please report it with the output of `openstack subnet show`)".into(),
        ));
    }
    Ok(Imported {
        text,
        short_form,
        plan,
        warnings: loaded.warnings,
    })
}

fn loads_to(text: &str, plan: &Plan) -> bool {
    load_source(SourceFile::new("short.toml", text)).is_ok_and(|l| l.plan == *plan)
}

fn ip(v: &Value, key: &str) -> Option<IpAddr> {
    v[key].as_str()?.parse().ok()
}

fn subnet_step(v: &Value, network: &str, role: Role) -> Result<Noted, ImportError> {
    let name = str_of(v, "name").to_string();
    let cidr: IpNet = str_of(v, "cidr").parse().map_err(|_| {
        ImportError::Unsupported(format!(
            "subnet `{name}` has no usable cidr ({})",
            v["cidr"]
        ))
    })?;
    let cidr = cidr.trunc();
    let gateway_ip = ip(v, "gateway_ip").ok_or_else(|| {
        ImportError::Unsupported(format!(
            "subnet `{name}` ({}) has no gateway; kuryr6 subnets always have one (the router interface uses it): set one with `openstack subnet set --gateway`",
            str_of(v, "id")
        ))
    })?;
    let allocation_pools: Vec<Pool> = v["allocation_pools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(Pool {
                start: ip(p, "start")?,
                end: ip(p, "end")?,
                extra: Strict,
            })
        })
        .collect();
    let s = Subnet {
        name: name.clone(),
        network: network.to_string(),
        role,
        cidr,
        ip_version: v["ip_version"]
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .unwrap_or(addr::net_version(&cidr)),
        enable_dhcp: v["enable_dhcp"].as_bool().unwrap_or(false),
        gateway_ip,
        allocation_pools,
        extra: Strict,
    };
    let mut notes = Vec::new();
    let guide = lower::laid_out_subnet(&name, network, role, cidr);
    let v6 = addr::net_version(&cidr) == 6;
    if role == Role::Service && v6 && cidr.prefix_len() != GUIDE_SERVICE_PREFIX_LEN {
        notes.push(format!(
            "deviation (W001): a /{} service subnet; the guide's is a /{GUIDE_SERVICE_PREFIX_LEN}",
            cidr.prefix_len()
        ));
    }
    if s.gateway_ip != guide.gateway_ip {
        notes.push(format!(
            "deviation (W002): gateway {}; the guide's is {}",
            s.gateway_ip, guide.gateway_ip
        ));
    }
    if s.allocation_pools != guide.allocation_pools {
        let show = |p: &[Pool]| {
            p.iter()
                .map(|p| format!("{}-{}", p.start, p.end))
                .collect::<Vec<_>>()
                .join(", ")
        };
        notes.push(format!(
            "deviation (W002): allocation pools {}; the guide's are {}",
            show(&s.allocation_pools),
            show(&guide.allocation_pools)
        ));
    }
    if s.enable_dhcp && v6 {
        notes.push("deviation (W003): DHCP is on; the guide creates it with --no-dhcp".into());
    }
    for mode in ["ipv6_address_mode", "ipv6_ra_mode"] {
        if let Some(m) = v[mode].as_str() {
            notes.push(format!(
                "not managed: {mode} = {m} in the cloud (kuryr6 neither sets nor changes it)"
            ));
        }
    }
    Ok(Noted {
        step: Step::Subnet(s),
        notes,
    })
}

/// Neutron's own egress rules of a new group (any protocol, anywhere):
/// every group has them, so a pipeline does not list them.
fn is_default_egress(r: &Value) -> bool {
    str_of(r, "direction") == "egress"
        && r["protocol"].is_null()
        && r["remote_ip_prefix"].is_null()
        && r["remote_group_id"].is_null()
        && r["port_range_min"].is_null()
        && r["port_range_max"].is_null()
}

fn security_group_step(sg: &Value, all_rules: &[Value], services: &[IpNet]) -> Noted {
    let id = str_of(sg, "id");
    let name = str_of(sg, "name").to_string();
    let mut notes = Vec::new();
    let mut rules = Vec::new();
    let mut sorted: Vec<&Value> = all_rules
        .iter()
        .filter(|r| str_of(r, "security_group_id") == id && !is_default_egress(r))
        .collect();
    let guide: Vec<Rule> = services
        .iter()
        .flat_map(lower::service_access_rules)
        .collect();
    // The guide's rules first, in its order (so a guide deployment gives
    // the short form's plan whatever order they were made in), then the
    // others in the order they were made.
    sorted.sort_by_key(|r| {
        let rank = guide.iter().position(|g| *g == observed_rule(r));
        (
            rank.unwrap_or(guide.len()),
            str_of(r, "created_at").to_string(),
        )
    });
    for r in sorted {
        if let Some(g) = r["remote_group_id"].as_str() {
            notes.push(format!(
                "not managed: a {} {} rule from security group {g} (a pipeline names remote prefixes only); kuryr6 leaves it as it is",
                str_of(r, "direction"),
                r["protocol"].as_str().unwrap_or("any")
            ));
            continue;
        }
        let rule = observed_rule(r);
        if !guide.contains(&rule) {
            notes.push(format!(
                "deviation: rule `{}` is not one of the guide's",
                crate::engine::change::describe_rule(&rule)
            ));
        }
        rules.push(rule);
    }
    for g in &guide {
        if !rules.contains(g) {
            notes.push(format!(
                "deviation (W004): no {} rule from the service subnet {}",
                g.protocol.as_deref().unwrap_or("any"),
                g.remote_ip_prefix
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            ));
        }
    }
    Noted {
        step: Step::SecurityGroup(SecurityGroup {
            name,
            description: str_of(sg, "description").to_string(),
            rules,
            extra: Strict,
        }),
        notes,
    }
}

fn steps(snap: &Snapshot, pipeline: &str) -> Result<Vec<Noted>, ImportError> {
    let mut out = Vec::new();
    let pod_net = str_of(&snap.pod_network, "name").to_string();
    let svc_net = str_of(&snap.service_network, "name").to_string();
    if pod_net == svc_net {
        return Err(ImportError::Unsupported(format!(
            "the pod and service subnets share network `{pod_net}`; the guide (and kuryr6) put them on two networks"
        )));
    }
    out.push(Noted {
        step: Step::Network(Network {
            name: pod_net.clone(),
            extra: Strict,
        }),
        notes: Vec::new(),
    });
    out.push(subnet_step(&snap.pod_subnet, &pod_net, Role::Pod)?);
    if let Some(v) = &snap.pod_subnet_2 {
        out.push(subnet_step(v, &pod_net, Role::Pod)?);
    }
    out.push(Noted {
        step: Step::Network(Network {
            name: svc_net.clone(),
            extra: Strict,
        }),
        notes: Vec::new(),
    });
    let mut svc_cidrs = Vec::new();
    for v in [Some(&snap.service_subnet), snap.service_subnet_2.as_ref()]
        .into_iter()
        .flatten()
    {
        let service = subnet_step(v, &svc_net, Role::Service)?;
        let Step::Subnet(svc) = &service.step else {
            unreachable!("subnet_step makes subnets")
        };
        svc_cidrs.push(svc.cidr);
        out.push(service);
    }
    let svc_name = str_of(&snap.service_subnet, "name").to_string();
    let pod_name = str_of(&snap.pod_subnet, "name").to_string();
    // Every subnet, in step order, by id.
    let subnets: Vec<(&str, String)> = [
        Some(&snap.pod_subnet),
        snap.pod_subnet_2.as_ref(),
        Some(&snap.service_subnet),
        snap.service_subnet_2.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|v| (str_of(v, "id"), str_of(v, "name").to_string()))
    .collect();

    if let Some(r) = &snap.router {
        out.push(router_step(r, &snap.router_ports, &subnets));
    }

    let mut group_names = Vec::new();
    for sg in &snap.security_groups {
        let n = security_group_step(sg, &snap.rules, &svc_cidrs);
        group_names.push(n.step.name().to_string());
        out.push(n);
    }

    let mut lb_name = None;
    if let Some(lb) = &snap.loadbalancer {
        let n = loadbalancer_step(lb, &svc_name)?;
        lb_name = Some(n.step.name().to_string());
        out.push(n);
    }

    let h = &snap.hints;
    out.push(Noted {
        step: Step::Emit(Emit {
            name: "configs".into(),
            dir: "out".into(),
            pod_subnet: pod_name,
            service_subnet: svc_name,
            security_groups: group_names,
            ovs_bridge: h.ovs_bridge.clone().unwrap_or(DEFAULT_OVS_BRIDGE.into()),
            member_mode: h.member_mode.clone().unwrap_or(DEFAULT_MEMBER_MODE.into()),
            resource_tags: h
                .resource_tags
                .clone()
                .unwrap_or_else(|| lower::default_resource_tags(pipeline)),
            loadbalancer: lb_name,
            octavia_provider: h.octavia_provider.clone(),
            extra: Strict,
        }),
        notes: Vec::new(),
    });
    Ok(out)
}

/// The router, with an interface step for each of the pipeline's subnets
/// it is attached to (`subnets`: id and name, in step order) and a note on
/// each one it is not, and on what kuryr6 leaves alone.
fn router_step(r: &Value, router_ports: &[Value], subnets: &[(&str, String)]) -> Noted {
    let attached: Vec<String> = router_ports
        .iter()
        .flat_map(|p| p["fixed_ips"].as_array().cloned().unwrap_or_default())
        .filter_map(|ip| ip["subnet_id"].as_str().map(str::to_string))
        .collect();
    let mut interfaces = Vec::new();
    let mut notes = Vec::new();
    for (id, name) in subnets {
        if attached.iter().any(|a| a == id) {
            interfaces.push(name.clone());
        } else {
            notes.push(format!(
                "deviation: the router has no interface on the subnet `{name}`"
            ));
        }
    }
    let others = attached
        .iter()
        .filter(|a| !subnets.iter().any(|(id, _)| id == a))
        .count();
    if others > 0 {
        notes.push(format!(
            "not managed: {others} more interface(s) on other subnets; kuryr6 leaves them attached"
        ));
    }
    if !r["external_gateway_info"].is_null() {
        notes.push("not managed: the router's external gateway".into());
    }
    Noted {
        step: Step::Router(Router {
            name: str_of(r, "name").to_string(),
            interfaces,
            extra: Strict,
        }),
        notes,
    }
}

fn loadbalancer_step(lb: &LbSnapshot, subnet: &str) -> Result<Noted, ImportError> {
    let name = str_of(&lb.lb, "name").to_string();
    let vip = ip(&lb.lb, "vip_address").ok_or_else(|| {
        ImportError::Unsupported(format!("load balancer `{name}` has no VIP address"))
    })?;
    let mut notes = Vec::new();
    let listener = match lb.listeners.as_slice() {
        [one] => one,
        [] => {
            return Err(ImportError::Unsupported(format!(
                "load balancer `{name}` has no listener; the API load balancer has one HTTPS listener"
            )));
        }
        many => {
            return Err(ImportError::Unsupported(format!(
                "load balancer `{name}` has {} listeners; a pipeline's has one",
                many.len()
            )));
        }
    };
    let pool = lb
        .pools
        .iter()
        .find(|p| p["id"] == listener["default_pool_id"])
        .or(lb.pools.first())
        .ok_or_else(|| ImportError::Unsupported(format!("load balancer `{name}` has no pool")))?;
    let listener_port = listener["protocol_port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(443);
    let members: Vec<&Value> = lb
        .members
        .iter()
        .filter(|m| m["pool_id"] == pool["id"])
        .collect();
    let mut ports: Vec<u16> = members
        .iter()
        .filter_map(|m| {
            m["protocol_port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
        })
        .collect();
    ports.dedup();
    let member_port = match ports.as_slice() {
        [] => 6443,
        [p] => *p,
        _ => {
            return Err(ImportError::Unsupported(format!(
                "members of `{name}` listen on different ports ({ports:?}); a pipeline has one member_port"
            )));
        }
    };
    let mut hosts = Vec::new();
    for m in &members {
        let address = ip(m, "address").ok_or_else(|| {
            ImportError::Unsupported(format!("a member of `{name}` has no address"))
        })?;
        let mut host = str_of(m, "name").to_string();
        if host.is_empty() {
            // Octavia members need no name; the pipeline's do (they are matched by it).
            host = format!("member-{address}");
            notes.push(format!(
                "deviation: member {address} has no name; kuryr6 matches members by name, so `run --adopt` will create `{host}` next to it"
            ));
        }
        hosts.push(ApiHost {
            name: host,
            address,
            extra: Strict,
        });
    }
    let protocol = str_of(listener, "protocol");
    // Octavia's own default provider; any other is written out.
    let provider = Some(str_of(&lb.lb, "provider"))
        .filter(|p| !p.is_empty() && *p != "amphora")
        .map(String::from);
    let step = Loadbalancer {
        name: name.clone(),
        subnet: subnet.to_string(),
        vip,
        algorithm: str_of(pool, "lb_algorithm").to_string(),
        listener_port,
        member_port,
        pool_name: str_of(pool, "name").to_string(),
        members: hosts,
        provider,
        protocol: Some(protocol)
            .filter(|p| *p != DEFAULT_LB_PROTOCOL && LB_PROTOCOLS.contains(p))
            .map(String::from),
        extra: Strict,
    };
    if str_of(listener, "name") != step.listener_name() {
        notes.push(format!(
            "deviation: the listener is named `{}`; kuryr6 names it `{}` and will create that one",
            str_of(listener, "name"),
            step.listener_name()
        ));
    }
    if !LB_PROTOCOLS.contains(&protocol) {
        notes.push(format!(
            "deviation: the listener speaks {protocol}; kuryr6's speaks {}",
            LB_PROTOCOLS.join(" or ")
        ));
    }
    Ok(Noted {
        step: Step::Loadbalancer(step),
        notes,
    })
}

/// `[kubernetes]`: API hosts from the load balancer's members, and a
/// version that accepts the service range.
fn kubernetes(_snap: &Snapshot, steps: &[Noted]) -> Kubernetes {
    let api_hosts = steps
        .iter()
        .find_map(|n| match &n.step {
            Step::Loadbalancer(lb) => Some(lb.members.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let wide = steps.iter().any(|n| match &n.step {
        Step::Subnet(s) if s.role == Role::Service => {
            addr::service_layout(&s.cidr).is_some_and(|l| {
                l.kubernetes_range.max_prefix_len() - l.kubernetes_range.prefix_len()
                    > validate::MAX_SERVICE_RANGE_HOST_BITS
            })
        }
        _ => false,
    });
    Kubernetes {
        version: if wide {
            MULTI_CIDR_VERSION.into()
        } else {
            DEFAULT_KUBERNETES_VERSION.into()
        },
        multi_cidr_service_allocator: wide,
        api_hosts,
        extra: Strict,
    }
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn header(out: &mut String, plan: &Plan, snap: &Snapshot) {
    let _ = writeln!(
        out,
        "# Imported by `kuryr6 import` from project {}.\n# Take it over with `kuryr6 run --adopt` (tags only), then run kuryr6 as usual.",
        snap.project_id
    );
    let _ = writeln!(out, "[pipeline]\nname = {}\n", q(&plan.pipeline));
    let k = &plan.kubernetes;
    let _ = writeln!(out, "[kubernetes]");
    if k.multi_cidr_service_allocator {
        let _ = writeln!(
            out,
            "# The service range is wider than /108: Kubernetes needs the MultiCIDRServiceAllocator."
        );
    }
    let _ = writeln!(out, "version = {}", q(&k.version));
    if k.multi_cidr_service_allocator {
        let _ = writeln!(out, "multi_cidr_service_allocator = true");
    }
    if !k.api_hosts.is_empty() {
        let _ = writeln!(out, "api_hosts = [");
        for h in &k.api_hosts {
            let _ = writeln!(
                out,
                "  {{ name = {}, address = {} }},",
                q(&h.name),
                q(&h.address.to_string())
            );
        }
        let _ = writeln!(out, "]");
    }
    out.push('\n');
}

/// The short form naming what differs from its defaults; `None` when the
/// plan has no short-form shape at all (no router, several groups …).
fn short_form(plan: &Plan, snap: &Snapshot) -> Option<String> {
    let of_role =
        |role: Role| -> Vec<&Subnet> { plan.subnets().filter(|s| s.role == role).collect() };
    let (pods, svcs) = (of_role(Role::Pod), of_role(Role::Service));
    // One subnet per role, or two (dual-stack: one per family).
    let (pod, svc) = match (pods.as_slice(), svcs.as_slice()) {
        ([p], [s]) => (*p, *s),
        ([p, _], [s, _]) => (*p, *s),
        _ => return None,
    };
    let dual = pods.len() == 2;
    let router = plan.steps.iter().find_map(|s| match s {
        Step::Router(r) => Some(r),
        _ => None,
    })?;
    let groups: Vec<&SecurityGroup> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::SecurityGroup(g) => Some(g),
            _ => None,
        })
        .collect();
    let [sg] = groups.as_slice() else {
        return None;
    };
    let emit = plan.emits().next()?;
    let lb = plan.steps.iter().find_map(|s| match s {
        Step::Loadbalancer(lb) => Some(lb),
        _ => None,
    });
    let mut out = String::new();
    header(&mut out, plan, snap);
    let _ = writeln!(
        out,
        "# The deployment follows the guide: the short form derives every step.\n[plan]"
    );
    let cidrs = |list: &[&Subnet]| -> String {
        match list {
            [one] => q(&one.cidr.to_string()),
            many => string_list(&many.iter().map(|s| s.cidr.to_string()).collect::<Vec<_>>()),
        }
    };
    let _ = writeln!(out, "pod_cidr = {}", cidrs(&pods));
    let _ = writeln!(out, "service_cidr = {}", cidrs(&svcs));
    if let Some(lb) = lb
        && lb.algorithm != DEFAULT_LB_ALGORITHM
    {
        let _ = writeln!(out, "lb_algorithm = {}", q(&lb.algorithm));
    }
    if let Some(lb) = lb {
        if let Some(p) = &lb.provider {
            let _ = writeln!(out, "lb_provider = {}", q(p));
        }
        if let Some(p) = &lb.protocol {
            let _ = writeln!(out, "lb_protocol = {}", q(p));
        }
    }
    let mut names = Vec::new();
    let mut name = |key: &str, have: &str, default: &str| {
        if have != default {
            names.push(format!("{key} = {}", q(have)));
        }
    };
    name("pod_network", &pod.network, "pods");
    name("service_network", &svc.network, "services");
    name("pod_subnet", &pod.name, "pod_subnet");
    name("service_subnet", &svc.name, "service_subnet");
    if dual {
        name("pod_subnet_v4", &pods[1].name, "pod_subnet_v4");
        name("service_subnet_v4", &svcs[1].name, "service_subnet_v4");
    }
    name("router", &router.name, "k8s-ipv6");
    let default_group = if dual {
        "service_pod_access"
    } else {
        "service_pod_access_v6"
    };
    name("security_group", &sg.name, default_group);
    if let Some(lb) = lb {
        name("loadbalancer", &lb.name, lower::DEFAULT_LB_NAME);
    }
    if !names.is_empty() {
        let _ = writeln!(out, "\n[plan.names]\n{}", names.join("\n"));
    }
    let mut emit_keys = Vec::new();
    if emit.ovs_bridge != DEFAULT_OVS_BRIDGE {
        emit_keys.push(format!("ovs_bridge = {}", q(&emit.ovs_bridge)));
    }
    if emit.member_mode != DEFAULT_MEMBER_MODE {
        emit_keys.push(format!("member_mode = {}", q(&emit.member_mode)));
    }
    if let Some(p) = &emit.octavia_provider {
        emit_keys.push(format!("octavia_provider = {}", q(p)));
    }
    if emit.resource_tags != lower::default_resource_tags(&plan.pipeline) {
        emit_keys.push(format!(
            "resource_tags = {}",
            string_list(&emit.resource_tags)
        ));
    }
    if !emit_keys.is_empty() {
        let _ = writeln!(out, "\n[plan.emit]\n{}", emit_keys.join("\n"));
    }
    Some(out)
}

fn string_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

fn explicit_form(plan: &Plan, steps: &[Noted], snap: &Snapshot) -> String {
    let mut out = String::new();
    header(&mut out, plan, snap);
    let _ = writeln!(
        out,
        "# Every step spelled out: the deployment leaves the guide where a comment says so\n# (`kuryr6 check` warns on the same points)."
    );
    for n in steps {
        out.push('\n');
        for note in &n.notes {
            let _ = writeln!(out, "# {note}");
        }
        let _ = writeln!(out, "[[step]]");
        let _ = writeln!(out, "kind = {}", q(n.step.kind().as_str()));
        let _ = writeln!(out, "name = {}", q(n.step.name()));
        match &n.step {
            Step::Network(_) => {}
            Step::Subnet(s) => {
                let role = match s.role {
                    Role::Pod => "pod",
                    Role::Service => "service",
                    Role::Other => "other",
                };
                let _ = writeln!(out, "network = {}", q(&s.network));
                let _ = writeln!(out, "role = {}", q(role));
                let _ = writeln!(out, "ip_version = {}", s.ip_version);
                let _ = writeln!(out, "cidr = {}", q(&s.cidr.to_string()));
                let _ = writeln!(out, "enable_dhcp = {}", s.enable_dhcp);
                let _ = writeln!(out, "gateway = {}", q(&s.gateway_ip.to_string()));
                let pools: Vec<String> = s
                    .allocation_pools
                    .iter()
                    .map(|p| {
                        format!(
                            "{{ start = {}, end = {} }}",
                            q(&p.start.to_string()),
                            q(&p.end.to_string())
                        )
                    })
                    .collect();
                let _ = writeln!(out, "allocation_pools = [{}]", pools.join(", "));
            }
            Step::Router(r) => {
                let _ = writeln!(out, "interfaces = {}", string_list(&r.interfaces));
            }
            Step::SecurityGroup(g) => {
                let _ = writeln!(out, "description = {}", q(&g.description));
                for r in &g.rules {
                    let _ = writeln!(out, "\n[[step.rule]]");
                    let _ = writeln!(out, "direction = {}", q(&r.direction));
                    let _ = writeln!(out, "ethertype = {}", q(&r.ethertype));
                    if let Some(p) = &r.protocol {
                        let _ = writeln!(out, "protocol = {}", q(p));
                    }
                    if let Some(p) = r.remote_ip_prefix {
                        let _ = writeln!(out, "remote_ip_prefix = {}", q(&p.to_string()));
                    }
                    if let Some(p) = r.port_range_min {
                        let _ = writeln!(out, "port_range_min = {p}");
                    }
                    if let Some(p) = r.port_range_max {
                        let _ = writeln!(out, "port_range_max = {p}");
                    }
                }
            }
            Step::Loadbalancer(lb) => {
                let _ = writeln!(out, "subnet = {}", q(&lb.subnet));
                let _ = writeln!(out, "vip = {}", q(&lb.vip.to_string()));
                let _ = writeln!(out, "algorithm = {}", q(&lb.algorithm));
                let _ = writeln!(out, "listener_port = {}", lb.listener_port);
                let _ = writeln!(out, "member_port = {}", lb.member_port);
                let _ = writeln!(out, "pool_name = {}", q(&lb.pool_name));
                if let Some(p) = &lb.provider {
                    let _ = writeln!(out, "provider = {}", q(p));
                }
                if let Some(p) = &lb.protocol {
                    let _ = writeln!(out, "protocol = {}", q(p));
                }
            }
            Step::Emit(e) => {
                let _ = writeln!(out, "dir = {}", q(&e.dir));
                let _ = writeln!(out, "pod_subnet = {}", q(&e.pod_subnet));
                let _ = writeln!(out, "service_subnet = {}", q(&e.service_subnet));
                let _ = writeln!(out, "security_groups = {}", string_list(&e.security_groups));
                let _ = writeln!(out, "ovs_bridge = {}", q(&e.ovs_bridge));
                let _ = writeln!(out, "member_mode = {}", q(&e.member_mode));
                let _ = writeln!(out, "resource_tags = {}", string_list(&e.resource_tags));
                if let Some(lb) = &e.loadbalancer {
                    let _ = writeln!(out, "loadbalancer = {}", q(lb));
                }
                if let Some(p) = &e.octavia_provider {
                    let _ = writeln!(out, "octavia_provider = {}", q(p));
                }
            }
        }
    }
    out
}
