//! From the file form (`pipeline::RawPipeline`) to a `Plan`: the short form
//! is expanded into the guide's steps, omitted gateways and pools are
//! computed from each subnet's role, and every plan field is mapped back to
//! the span it came from (`Spans`) so later errors point into the file.
//!
//! Lowering reports what it cannot even represent (unparsable addresses,
//! unknown kinds, misplaced fields); the semantic rules live in `validate`.

use crate::addr::{self, PrefixError};
use crate::diag::{Code, Diagnostic};
use crate::pipeline::*;
use crate::plan::*;
use crate::source::Span;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

/// Where each plan field came from. Keys are (step name, field); pipeline-
/// level fields use the step name "". Lookups fall back to the step itself.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    map: HashMap<(String, String), Span>,
}

impl Spans {
    pub fn set(&mut self, step: &str, field: &str, span: Span) {
        self.map.insert((step.to_string(), field.to_string()), span);
    }

    /// The same spans with step names mapped through `renames` (old → new,
    /// applied at once), after a naming plugin renamed steps.
    pub fn renamed(&self, renames: &HashMap<String, String>) -> Spans {
        let map = self
            .map
            .iter()
            .map(|((step, field), span)| {
                let step = renames.get(step).unwrap_or(step);
                ((step.clone(), field.clone()), span.clone())
            })
            .collect();
        Spans { map }
    }

    /// Records where a step name is first defined. A second step with the
    /// same name overwrites every other key; this one keeps the first, so a
    /// duplicate-name error can point at both.
    pub fn define(&mut self, step: &str, span: Span) {
        self.map
            .entry((step.to_string(), FIRST_DEFINITION.to_string()))
            .or_insert(span);
    }

    /// Where the step name was first defined (see `define`).
    pub fn first_definition(&self, step: &str) -> Option<Span> {
        self.get_exact(step, FIRST_DEFINITION)
    }

    /// The span of exactly `step.field`, without falling back to the step.
    pub fn get_exact(&self, step: &str, field: &str) -> Option<Span> {
        self.map
            .get(&(step.to_string(), field.to_string()))
            .cloned()
    }

    /// The span of the first of `fields` that has one, else of the whole
    /// step: for a second value that was derived (a default pool comes from
    /// the CIDR), the value it came from is the place to show.
    pub fn get_first(&self, step: &str, fields: &[&str]) -> Option<Span> {
        fields
            .iter()
            .find_map(|f| self.get_exact(step, f))
            .or_else(|| self.get(step, ""))
    }

    /// The span of `step.field`, else of the whole step, else none.
    pub fn get(&self, step: &str, field: &str) -> Option<Span> {
        self.map
            .get(&(step.to_string(), field.to_string()))
            .or_else(|| self.map.get(&(step.to_string(), String::new())))
            .cloned()
    }
}

/// Spans key (a field name no step has) for a step name's first definition.
const FIRST_DEFINITION: &str = "#first-definition";

pub const DEFAULT_OVS_BRIDGE: &str = "br-int";
pub const DEFAULT_MEMBER_MODE: &str = "L3";
pub const DEFAULT_LB_ALGORITHM: &str = "LEAST_CONNECTIONS";
pub const DEFAULT_LB_NAME: &str = "default/kubernetes";
pub const DEFAULT_SERVICE_PREFIX_LEN: i64 = 112;

struct Lowerer {
    diags: Vec<Diagnostic>,
    spans: Spans,
}

fn prefix_diag(e: &PrefixError, span: Span) -> Diagnostic {
    let code = match e {
        PrefixError::HostBits { .. } => Code::E004,
        _ => Code::E003,
    };
    let help = match e {
        PrefixError::HostBits { network, .. } => format!("write `{network}`"),
        PrefixError::BadLength { family, max, .. } => {
            format!("an {family} prefix length is a number from 0 to {max}")
        }
        _ => "write an address and a prefix length, e.g. `fd10:0:0:2::/112`".into(),
    };
    Diagnostic::new(code, e.to_string())
        .help(help)
        .at(Some(span))
}

impl Lowerer {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn prefix(&mut self, s: &S<String>) -> Option<IpNet> {
        match addr::parse_prefix(s.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.err(prefix_diag(&e, s.span()));
                None
            }
        }
    }

    fn address(&mut self, s: &S<String>) -> Option<IpAddr> {
        match addr::parse_addr(s.get_ref()) {
            Ok(a) => Some(a),
            Err(e) => {
                self.err(
                    Diagnostic::new(Code::E003, e.to_string())
                        .help("write a single address such as `fd10:0:0:2::1`")
                        .at(Some(s.span())),
                );
                None
            }
        }
    }

    fn port(&mut self, s: &Option<S<i64>>, default: u16, what: &str) -> u16 {
        let Some(p) = s else { return default };
        match u16::try_from(*p.get_ref()) {
            Ok(v) if v > 0 => v,
            _ => {
                self.err(
                    Diagnostic::new(
                        Code::E025,
                        format!("{what} {} is not a TCP port", p.get_ref()),
                    )
                    .help("use a port from 1 to 65535")
                    .at(Some(p.span())),
                );
                default
            }
        }
    }
}

/// Output of lowering: the plan and where its fields came from.
pub struct Lowered {
    pub plan: Plan,
    pub spans: Spans,
}

/// Lowers a parsed file. `Err` holds every problem found, in file order.
pub fn lower(raw: &RawPipeline) -> Result<Lowered, Vec<Diagnostic>> {
    let mut l = Lowerer {
        diags: Vec::new(),
        spans: Spans::default(),
    };
    let pipeline = lower_header(&mut l, raw);
    let kubernetes = lower_kubernetes(&mut l, raw);
    let steps = match (&raw.plan, raw.steps.is_empty()) {
        (Some(plan), true) => expand_short_form(&mut l, plan, &pipeline, &kubernetes),
        (None, false) => lower_steps(&mut l, &raw.steps, &pipeline, &kubernetes),
        (Some(plan), false) => {
            l.err(
                Diagnostic::new(Code::E021, "a pipeline has either a [plan] table or [[step]] tables, not both")
                    .help("keep [plan] for the guide's topology, or spell every step out with [[step]] and remove [plan]")
                    .at(Some(plan.span())),
            );
            Vec::new()
        }
        (None, true) => {
            l.err(
                Diagnostic::new(Code::E023, "the pipeline has no steps")
                    .help("add a [plan] table with pod_cidr and service_cidr, or [[step]] tables")
                    .at(Some(0..0)),
            );
            Vec::new()
        }
    };
    let plan = Plan {
        pipeline,
        kubernetes,
        steps,
        extra: Strict,
    };
    if l.diags.is_empty() {
        Ok(Lowered {
            plan,
            spans: l.spans,
        })
    } else {
        l.diags.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
        Err(l.diags)
    }
}

fn lower_header(l: &mut Lowerer, raw: &RawPipeline) -> String {
    let name = raw
        .pipeline
        .as_ref()
        .and_then(|h| h.get_ref().name.as_ref());
    match name {
        Some(n) => {
            l.spans.set("", "pipeline.name", n.span());
            n.get_ref().clone()
        }
        None => {
            let at = raw.pipeline.as_ref().map(|h| h.span()).unwrap_or(0..0);
            l.err(
                Diagnostic::new(Code::E002, "missing pipeline name")
                    .help("add `[pipeline]` with `name = \"my-cluster\"`: the name goes into the ownership tag of every resource")
                    .at(Some(at)),
            );
            String::new()
        }
    }
}

fn lower_kubernetes(l: &mut Lowerer, raw: &RawPipeline) -> Kubernetes {
    let mut k = Kubernetes {
        version: DEFAULT_KUBERNETES_VERSION.to_string(),
        multi_cidr_service_allocator: false,
        api_hosts: Vec::new(),
        extra: Strict,
    };
    let Some(rk) = &raw.kubernetes else { return k };
    let rk = rk.get_ref();
    if let Some(v) = &rk.version {
        l.spans.set("", "kubernetes.version", v.span());
        k.version = v.get_ref().clone();
    }
    if let Some(m) = &rk.multi_cidr_service_allocator {
        l.spans
            .set("", "kubernetes.multi_cidr_service_allocator", m.span());
        k.multi_cidr_service_allocator = *m.get_ref();
    }
    for (i, h) in rk.api_hosts.iter().flat_map(|v| v.get_ref()).enumerate() {
        let h = h.get_ref();
        l.spans
            .set("", &format!("api_hosts[{i}].name"), h.name.span());
        l.spans
            .set("", &format!("api_hosts[{i}].address"), h.address.span());
        if let Some(address) = l.address(&h.address) {
            k.api_hosts.push(ApiHost {
                name: h.name.get_ref().clone(),
                address,
                extra: Strict,
            });
        }
    }
    k
}

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
fn expand_short_form(
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
        extra: Strict,
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
        extra: Strict,
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
        extra: Strict,
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
        extra: Strict,
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
        extra: Strict,
    }));
    steps
}

/// Tags Kuryr puts on the ports and load balancers it creates for this
/// cluster, so a teardown can find them. Distinct from kuryr6's own tags.
pub fn default_resource_tags(pipeline: &str) -> Vec<String> {
    vec![format!("kuryr:{pipeline}")]
}

/// The guide's rule, and Kuryr devstack's udp and sctp twins: pods accept
/// traffic coming from the service subnet.
pub fn service_access_rules(service: &IpNet) -> Vec<Rule> {
    ["tcp", "udp", "sctp"]
        .into_iter()
        .map(|protocol| Rule {
            direction: "ingress".into(),
            ethertype: addr::family_name(addr::net_version(service)).into(),
            protocol: Some(protocol.into()),
            remote_ip_prefix: Some(*service),
            port_range_min: None,
            port_range_max: None,
            extra: Strict,
        })
        .collect()
}

/// A subnet with gateway and pool computed from its role.
pub fn laid_out_subnet(name: &str, network: &str, role: Role, cidr: IpNet) -> Subnet {
    let (gateway_ip, allocation_pools) = default_layout(role, &cidr);
    Subnet {
        name: name.into(),
        network: network.into(),
        role,
        cidr,
        ip_version: addr::net_version(&cidr),
        enable_dhcp: false,
        gateway_ip,
        allocation_pools,
        extra: Strict,
    }
}

/// Gateway and pools by role. A prefix too small to lay out gets its network
/// address and no pool; validation then reports exactly that.
fn default_layout(role: Role, cidr: &IpNet) -> (IpAddr, Vec<Pool>) {
    let fallback = (cidr.network(), Vec::new());
    match role {
        Role::Service => addr::service_layout(cidr)
            .map(|s| {
                (
                    s.gateway,
                    vec![Pool {
                        start: s.pool_start,
                        end: s.pool_end,
                        extra: Strict,
                    }],
                )
            })
            .unwrap_or(fallback),
        Role::Pod | Role::Other => addr::pod_layout(cidr)
            .map(|(gw, start, end)| {
                (
                    gw,
                    vec![Pool {
                        start,
                        end,
                        extra: Strict,
                    }],
                )
            })
            .unwrap_or(fallback),
    }
}

#[allow(clippy::too_many_arguments)]
fn api_loadbalancer(
    name: &str,
    subnet: &str,
    cidr: &IpNet,
    algorithm: String,
    listener_port: u16,
    member_port: u16,
    vip: Option<IpAddr>,
    k: &Kubernetes,
) -> Loadbalancer {
    let vip = vip.unwrap_or_else(|| addr::offset(cidr.network(), 1));
    Loadbalancer {
        name: name.into(),
        subnet: subnet.into(),
        vip,
        algorithm,
        listener_port,
        member_port,
        pool_name: format!("{name}:HTTPS:{listener_port}"),
        members: k.api_hosts.clone(),
        extra: Strict,
    }
}

fn lower_steps(l: &mut Lowerer, raw: &[S<RawStep>], pipeline: &str, k: &Kubernetes) -> Vec<Step> {
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
    let listener_port = l.port(&r.listener_port, 443, "listener_port");
    let member_port = l.port(&r.member_port, 6443, "member_port");
    let algorithm = r
        .algorithm
        .as_ref()
        .map(|a| a.get_ref().clone())
        .unwrap_or(DEFAULT_LB_ALGORITHM.into());
    let mut lb = api_loadbalancer(
        r.name.get_ref(),
        &subnet.name,
        &subnet.cidr,
        algorithm,
        listener_port,
        member_port,
        vip,
        k,
    );
    if let Some(p) = &r.pool_name {
        lb.pool_name = p.get_ref().clone();
    }
    Some(lb)
}

fn lower_emit(l: &mut Lowerer, r: &RawStep, earlier: &[Step], pipeline: &str, span: Span) -> Emit {
    let text = |v: &Option<S<String>>| v.as_ref().map(|s| s.get_ref().clone());
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
        extra: Strict,
    }
}
