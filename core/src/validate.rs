//! The address-plan and topology rules, checked on a `Plan` before any API
//! call. Every rule from the facts kuryr6 was built on lives here, once:
//! hand-written pipelines and plugin output go through the same checks.
//!
//! Rules report where the offending value came from through `Spans`.

use crate::addr;
use crate::diag::{Code, Diagnostic};
use crate::lower::Spans;
use crate::plan::*;
use crate::rule_canon;
use crate::source::Span;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// Kubernetes ≤ 1.33 (and later ones without the MultiCIDRServiceAllocator)
/// refuse a service range with more than 20 host bits.
pub const MAX_SERVICE_RANGE_HOST_BITS: u8 = 20;
/// Kubernetes needs at least 8 addresses in a service range.
pub const MIN_SERVICE_RANGE_ADDRESSES: u128 = 8;
/// Neutron's limit on resource names.
pub const MAX_NAME_LEN: usize = 255;
/// The characters a name may use besides ASCII letters and digits. Names go
/// to the terminal, the plan output, INI files and the cloud: no spaces, no
/// control characters, no INI or shell syntax. `/` and `:` are in because
/// Kuryr's own names use them (`default/kubernetes:HTTPS:443`).
pub const NAME_PUNCTUATION: &str = "-_.:/";
/// Pipeline names go into tags; Neutron tags are at most 60 characters in
/// older releases, and the tag adds a prefix.
pub const MAX_PIPELINE_NAME_LEN: usize = 40;

pub const LB_ALGORITHMS: [&str; 4] = [
    "ROUND_ROBIN",
    "LEAST_CONNECTIONS",
    "SOURCE_IP",
    "SOURCE_IP_PORT",
];
pub const MEMBER_MODES: [&str; 2] = ["L3", "L2"];
/// Protocols the API load balancer may listen with: HTTPS (Kuryr's devstack,
/// on amphora) or TCP (TLS passes through to the API hosts).
pub const LB_PROTOCOLS: [&str; 2] = ["HTTPS", "TCP"];
/// ovn-octavia-provider's name, and what it balances
/// (`ovn_octavia_provider/common/constants.py`: `OVN_NATIVE_LB_PROTOCOLS`,
/// `OVN_NATIVE_LB_ALGORITHMS`); its driver refuses anything else.
pub const OVN_PROVIDER: &str = "ovn";
pub const OVN_LB_PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];
pub const OVN_LB_ALGORITHMS: [&str; 2] = ["SOURCE_IP_PORT", "SOURCE_IP"];
/// The OVN provider's algorithm when none is named; Kuryr's devstack sets
/// it for Services with that provider.
pub const OVN_LB_ALGORITHM: &str = OVN_LB_ALGORITHMS[0];
const PROTOCOLS: [&str; 8] = [
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "ipv6-icmp",
    "icmpv6",
    "any",
    "ah",
];

struct Checker<'a> {
    spans: &'a Spans,
    diags: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(
        &mut self,
        code: Code,
        step: &str,
        field: &str,
        message: String,
        help: impl Into<String>,
    ) {
        self.diags.push(
            Diagnostic::new(code, message)
                .help(help)
                .at(self.spans.get(step, field)),
        );
    }

    /// Labels the diagnostic just reported with the place of a second value
    /// it involves. Rendering drops labels that add no place (see
    /// `Diagnostic::shown_labels`).
    fn also(&mut self, span: Option<Span>, message: impl Into<String>) {
        if let Some(last) = self.diags.pop() {
            self.diags.push(last.also(span, message));
        }
    }
}

/// Parses "major.minor" (a leading "v" and a patch part are accepted).
pub fn kubernetes_minor(version: &str) -> Option<(u32, u32)> {
    let v = version.strip_prefix('v').unwrap_or(version);
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    if let Some(patch) = parts.next() {
        patch.parse::<u32>().ok()?;
    }
    parts.next().is_none().then_some((major, minor))
}

/// Every rule; the result lists all problems, in step order.
pub fn plan(plan: &Plan, spans: &Spans) -> Vec<Diagnostic> {
    let mut c = Checker {
        spans,
        diags: Vec::new(),
    };
    check_header(&mut c, plan);
    check_names_and_references(&mut c, plan);
    for s in plan.subnets() {
        check_subnet(&mut c, plan, s);
    }
    check_overlaps(&mut c, plan);
    check_families(&mut c, plan);
    check_api_host_addresses(&mut c, plan);
    for step in &plan.steps {
        match step {
            Step::SecurityGroup(sg) => check_rules(&mut c, sg),
            Step::Loadbalancer(lb) => check_loadbalancer(&mut c, plan, lb),
            Step::Emit(e) => check_emit(&mut c, e),
            _ => {}
        }
    }
    c.diags
}

/// The one name rule, for every name from a pipeline file or a plugin
/// (step names, API host and member names, pool names): 1 to
/// `MAX_NAME_LEN` bytes of ASCII letters, digits and `NAME_PUNCTUATION`.
/// `Err` says what is wrong, with the name shown escaped (`display_name`).
/// Names that begin so are kuryr6's own: a pipeline's lease record is the
/// security group `kuryr6-lease:<pipeline>` (`engine::lease`).
pub const RESERVED_NAME_PREFIX: &str = "kuryr6-lease";

pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty".into());
    }
    if name.starts_with(RESERVED_NAME_PREFIX) {
        return Err(format!(
            "name `{}` begins with `{RESERVED_NAME_PREFIX}`, which kuryr6 keeps for its lease records",
            display_name(name)
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "name of {} bytes is longer than {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || NAME_PUNCTUATION.contains(*c)))
    {
        return Err(format!(
            "name `{}` contains {}",
            display_name(name),
            if bad.is_control() {
                format!("the control character {:?}", bad)
            } else {
                format!("`{bad}`")
            }
        ));
    }
    Ok(())
}

/// The help text of every name error.
pub fn name_rule_help() -> String {
    format!(
        "a name has 1 to {MAX_NAME_LEN} characters from A-Z, a-z, 0-9 and `{NAME_PUNCTUATION}`, and does not begin with `{RESERVED_NAME_PREFIX}`"
    )
}

/// A name (or any untrusted text) made safe for a terminal: control
/// characters and non-ASCII escaped, cut after 80 characters.
pub fn display_name(name: &str) -> String {
    let mut out: String = name.chars().take(80).flat_map(char::escape_debug).collect();
    if name.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

fn valid_pipeline_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PIPELINE_NAME_LEN
        && name.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_' || ch == '.'
        })
}

fn check_header(c: &mut Checker, plan: &Plan) {
    if !valid_pipeline_name(&plan.pipeline) {
        c.report(
            Code::E006,
            "",
            "pipeline.name",
            format!(
                "pipeline name `{}` is not usable in an ownership tag",
                display_name(&plan.pipeline)
            ),
            format!("use 1 to {MAX_PIPELINE_NAME_LEN} characters from a-z, 0-9, '-', '_' and '.'"),
        );
    }
    if kubernetes_minor(&plan.kubernetes.version).is_none_or(|(major, _)| major != 1) {
        c.report(
            Code::E020,
            "",
            "kubernetes.version",
            format!("`{}` is not a Kubernetes version", plan.kubernetes.version),
            "write major.minor, e.g. version = \"1.33\"",
        );
    }
    let mut seen = HashMap::new();
    for (i, h) in plan.kubernetes.api_hosts.iter().enumerate() {
        let first = seen.get(&h.name).copied();
        if let Err(e) = check_name(&h.name) {
            c.report(
                Code::E006,
                "",
                &format!("api_hosts[{i}].name"),
                format!("API host {e}"),
                name_rule_help(),
            );
        } else if first.is_some() {
            c.report(
                Code::E006,
                "",
                &format!("api_hosts[{i}].name"),
                format!("API host name `{}` is used twice", h.name),
                "give every API host its own name: it names its load-balancer member",
            );
            if let Some(j) = first {
                c.also(
                    c.spans.get_exact("", &format!("api_hosts[{j}].name")),
                    format!("`{}` first used here", h.name),
                );
            }
        } else {
            seen.insert(&h.name, i);
        }
    }
}

/// Why `a` cannot be a kube-apiserver's address that Octavia reaches, if
/// it cannot: not a unicast address of a host on a network.
fn unusable_host_address(a: IpAddr) -> Option<&'static str> {
    if a.is_unspecified() {
        return Some("the unspecified address");
    }
    if a.is_loopback() {
        return Some("a loopback address, which Octavia cannot reach");
    }
    if a.is_multicast() {
        return Some("a multicast address");
    }
    match a {
        IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(v4) if v4.is_link_local() => {
            Some("link-local, which Octavia cannot reach across a router")
        }
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            Some("link-local, which Octavia cannot reach across a router")
        }
        _ => None,
    }
}

/// What in the plan already claims `a`, if anything: a Kubernetes service
/// range, a pod subnet, an allocation pool Neutron hands out, a gateway,
/// or the load balancer's VIP.
fn claimed_in_plan(plan: &Plan, a: IpAddr) -> Option<String> {
    if let Some(r) = plan.service_ranges().into_iter().find(|r| r.contains(&a)) {
        return Some(format!(
            "inside the Kubernetes service range {r}, whose addresses Kubernetes gives to Services"
        ));
    }
    for s in plan.subnets() {
        if s.gateway_ip == a {
            return Some(format!("the gateway of subnet `{}`", s.name));
        }
        if s.role == Role::Pod && s.cidr.contains(&a) {
            return Some(format!(
                "inside pod subnet `{}` ({}), whose addresses Kuryr gives to pods",
                s.name, s.cidr
            ));
        }
        if s.allocation_pools
            .iter()
            .any(|p| p.start <= a && a <= p.end)
        {
            return Some(format!(
                "inside an allocation pool of subnet `{}`, from which Neutron hands addresses to ports",
                s.name
            ));
        }
    }
    plan.steps.iter().find_map(|st| match st {
        Step::Loadbalancer(lb) if lb.vip == a => {
            Some(format!("the VIP of load balancer `{}`", lb.name))
        }
        _ => None,
    })
}

/// Each API host's address is one a kube-apiserver can bind and Octavia
/// can reach, of a family the pipeline has, and not one the plan gives to
/// something else.
fn check_api_host_addresses(c: &mut Checker, plan: &Plan) {
    let families: BTreeSet<u8> = plan.subnets().map(|s| s.ip_version).collect();
    for (i, h) in plan.kubernetes.api_hosts.iter().enumerate() {
        let field = format!("api_hosts[{i}].address");
        let a = h.address;
        let version = if a.is_ipv4() { 4 } else { 6 };
        let problem = if let Some(why) = unusable_host_address(a) {
            Some((
                format!("API host `{}` has address {a}, {why}", h.name),
                "give the address the kube-apiserver listens on, on the hosts' own network"
                    .to_string(),
            ))
        } else if !families.is_empty() && !families.contains(&version) {
            let have: Vec<String> = families.iter().map(|v| format!("IPv{v}")).collect();
            Some((
                format!(
                    "API host `{}` has an IPv{version} address ({a}), but the pipeline's subnets are {} only",
                    h.name,
                    have.join(" and ")
                ),
                "give the host's address of the pipeline's family, or add a subnet of that family (dual-stack)".to_string(),
            ))
        } else {
            claimed_in_plan(plan, a).map(|what| {
                (
                    format!("API host `{}` has address {a}, {what}", h.name),
                    "give the host's own address, outside the pipeline's pod and service subnets' ranges".to_string(),
                )
            })
        };
        if let Some((message, help)) = problem {
            c.report(Code::E031, "", &field, message, help);
        }
    }
}

fn check_names_and_references(c: &mut Checker, plan: &Plan) {
    let first_index = check_step_names(c, plan);
    check_references(c, plan, &first_index);
}

/// Each step's name follows the name rule and is used once; returns where
/// each name is first used.
fn check_step_names<'p>(c: &mut Checker, plan: &'p Plan) -> HashMap<&'p str, usize> {
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let name = step.name();
        if let Err(e) = check_name(name) {
            c.report(
                Code::E006,
                name,
                "name",
                format!("{} {e}", step.kind()),
                name_rule_help(),
            );
            // A name that breaks the rule is not repeated in later messages.
            first_index.entry(name).or_insert(i);
            continue;
        }
        if let Some(j) = first_index.get(name) {
            c.report(
                Code::E006,
                name,
                "name",
                format!(
                    "name `{name}` is used by two steps ({} and {})",
                    plan.steps[*j].kind(),
                    step.kind()
                ),
                "names identify steps in references and in the cloud: make each unique",
            );
            c.also(
                c.spans.first_definition(name),
                format!("first used by the {} step", plan.steps[*j].kind()),
            );
        } else {
            first_index.insert(name, i);
        }
    }
    first_index
}

/// Every reference names an existing step of the right kind, written
/// before the step that refers to it.
fn check_references(c: &mut Checker, plan: &Plan, first_index: &HashMap<&str, usize>) {
    let resolve =
        |c: &mut Checker, from: &Step, field: &str, target: &str, want: StepKind, index: usize| {
            let known: Vec<&str> = plan.steps[..index]
                .iter()
                .filter(|s| s.kind() == want)
                .map(|s| s.name())
                .collect();
            match first_index.get(target) {
                Some(&j) if plan.steps[j].kind() == want && j < index => {}
                Some(&j) if plan.steps[j].kind() == want => {
                    c.report(
                    Code::E007,
                    from.name(),
                    field,
                    format!(
                        "{} `{}` refers to {want} `{target}`, which comes later in the pipeline",
                        from.kind(),
                        from.name()
                    ),
                    format!(
                        "move the {want} step `{target}` before {} `{}`: steps run in order",
                        from.kind(),
                        from.name()
                    ),
                );
                    c.also(
                        c.spans.first_definition(target),
                        format!("{want} `{target}` is defined here"),
                    );
                }
                _ => c.report(
                    Code::E007,
                    from.name(),
                    field,
                    format!(
                        "{} `{}` refers to {want} `{target}`, which does not exist",
                        from.kind(),
                        from.name()
                    ),
                    if known.is_empty() {
                        format!("add a {want} step before it")
                    } else {
                        format!("known {want}s here: {}", known.join(", "))
                    },
                ),
            }
        };
    for (i, step) in plan.steps.iter().enumerate() {
        match step {
            Step::Subnet(s) => resolve(c, step, "network", &s.network, StepKind::Network, i),
            Step::Router(r) => {
                let mut seen = BTreeSet::new();
                for sub in &r.interfaces {
                    resolve(c, step, "interfaces", sub, StepKind::Subnet, i);
                    if !seen.insert(sub) {
                        c.report(
                            Code::E006,
                            &r.name,
                            "interfaces",
                            format!("router `{}` lists subnet `{sub}` twice", r.name),
                            "list each subnet once",
                        );
                    }
                }
            }
            Step::Loadbalancer(lb) => resolve(c, step, "subnet", &lb.subnet, StepKind::Subnet, i),
            Step::Emit(e) => {
                resolve(c, step, "pod_subnet", &e.pod_subnet, StepKind::Subnet, i);
                resolve(
                    c,
                    step,
                    "service_subnet",
                    &e.service_subnet,
                    StepKind::Subnet,
                    i,
                );
                for sg in &e.security_groups {
                    resolve(c, step, "security_groups", sg, StepKind::SecurityGroup, i);
                }
                if let Some(lb) = &e.loadbalancer {
                    resolve(c, step, "loadbalancer", lb, StepKind::Loadbalancer, i);
                }
            }
            _ => {}
        }
    }
}

fn check_subnet(c: &mut Checker, plan: &Plan, s: &Subnet) {
    let n = &s.name;
    let family = addr::net_version(&s.cidr);
    if s.ip_version != 4 && s.ip_version != 6 {
        c.report(
            Code::E005,
            n,
            "ip_version",
            format!("subnet `{n}` has ip_version {}", s.ip_version),
            format!("ip_version is 4 or 6; for {} it is {family}", s.cidr),
        );
        return;
    }
    if s.ip_version != family {
        c.report(
            Code::E005,
            n,
            "ip_version",
            format!(
                "subnet `{n}` says ip_version {} but its CIDR {} is {}",
                s.ip_version,
                s.cidr,
                addr::family_name(family)
            ),
            format!(
                "set ip_version = {family}, or use an {} CIDR",
                addr::family_name(s.ip_version)
            ),
        );
        c.also(
            c.spans.get_exact(n, "cidr"),
            format!("{} is {}", s.cidr, addr::family_name(family)),
        );
        return;
    }
    if addr::ip_version(s.gateway_ip) != family || !s.cidr.contains(&s.gateway_ip) {
        c.report(
            Code::E010,
            n,
            "gateway",
            format!(
                "gateway {} of subnet `{n}` is outside {}",
                s.gateway_ip, s.cidr
            ),
            format!("pick an address inside {}", s.cidr),
        );
        c.also(
            c.spans.get_exact(n, "cidr"),
            format!("subnet prefix {}", s.cidr),
        );
    }
    check_pools(c, s);
    if s.role == Role::Service {
        check_service_range(c, plan, s);
    }
}

/// A subnet's allocation pools: there is one, each inside the CIDR, not
/// reversed, clear of the gateway and of each other.
fn check_pools(c: &mut Checker, s: &Subnet) {
    let n = &s.name;
    let family = addr::net_version(&s.cidr);
    if s.allocation_pools.is_empty() {
        c.report(Code::E012, n, "allocation_pools", format!("subnet `{n}` ({}) has no allocation pool", s.cidr), "Neutron cannot create a subnet with an empty pool: give at least one start..end range, or a larger CIDR");
    }
    for (i, p) in s.allocation_pools.iter().enumerate() {
        let inside = |a| addr::ip_version(a) == family && s.cidr.contains(&a);
        if !inside(p.start) || !inside(p.end) {
            c.report(
                Code::E013,
                n,
                "allocation_pools",
                format!(
                    "allocation pool {}-{} of subnet `{n}` is not inside {}",
                    p.start, p.end, s.cidr
                ),
                format!("keep both ends inside {}", s.cidr),
            );
            c.also(
                c.spans.get_exact(n, "cidr"),
                format!("subnet prefix {}", s.cidr),
            );
            continue;
        }
        if addr::lt(p.end, p.start) {
            c.report(
                Code::E012,
                n,
                "allocation_pools",
                format!(
                    "allocation pool {}-{} of subnet `{n}` is empty: start is after end",
                    p.start, p.end
                ),
                "swap start and end",
            );
            continue;
        }
        if addr::in_range(s.gateway_ip, p.start, p.end) {
            c.report(
                Code::E011,
                n,
                "gateway",
                format!("gateway {} of subnet `{n}` lies inside its allocation pool {}-{}", s.gateway_ip, p.start, p.end),
                "Neutron answers 409 for this: end the pool before the gateway, or move the gateway out of it",
            );
            let (at, derived) = pool_place(c.spans, n, i);
            c.also(
                at,
                format!("allocation pool {}-{}{derived}", p.start, p.end),
            );
        }
        for (j, q) in s.allocation_pools.iter().enumerate().skip(i + 1) {
            if addr::ranges_overlap((p.start, p.end), (q.start, q.end)) {
                c.report(
                    Code::E026,
                    n,
                    "allocation_pools",
                    format!(
                        "allocation pools {}-{} and {}-{} of subnet `{n}` overlap",
                        p.start, p.end, q.start, q.end
                    ),
                    "make the pools disjoint",
                );
                c.also(
                    c.spans.get_exact(n, &format!("allocation_pools[{i}]")),
                    format!("pool {}-{}", p.start, p.end),
                );
                c.also(
                    c.spans.get_exact(n, &format!("allocation_pools[{j}]")),
                    format!("overlaps pool {}-{}", q.start, q.end),
                );
            }
        }
    }
}

/// Where pool `i` of a subnet is written, and a note when it is not written
/// but derived from the subnet's CIDR (then the CIDR is the place to show).
fn pool_place(spans: &Spans, subnet: &str, i: usize) -> (Option<Span>, &'static str) {
    match spans.get_exact(subnet, &format!("allocation_pools[{i}]")) {
        Some(at) => (Some(at), ""),
        None => (
            spans.get_first(subnet, &["allocation_pools", "cidr"]),
            ", derived from this CIDR",
        ),
    }
}

fn check_service_range(c: &mut Checker, plan: &Plan, s: &Subnet) {
    let n = &s.name;
    let Some(layout) = addr::service_layout(&s.cidr) else {
        c.report(
            Code::E009,
            n,
            "cidr",
            format!(
                "service subnet `{n}` {} is too small to split into a Kubernetes range and a pool",
                s.cidr
            ),
            "use a /112 for IPv6 (or at least /124), a /24 for IPv4",
        );
        return;
    };
    let range = layout.kubernetes_range;
    let version = &plan.kubernetes.version;
    let host_bits = range.max_prefix_len() - range.prefix_len();
    let limit_applies = match kubernetes_minor(version) {
        Some((1, minor)) if minor >= 34 => !plan.kubernetes.multi_cidr_service_allocator,
        _ => true,
    };
    if limit_applies && host_bits > MAX_SERVICE_RANGE_HOST_BITS {
        let min_len = range.max_prefix_len() - MAX_SERVICE_RANGE_HOST_BITS;
        c.report(
            Code::E008,
            n,
            "cidr",
            format!(
                "service subnet `{n}` {} gives the Kubernetes service range {range}, which is too large for Kubernetes {version}: the range must be /{min_len} or longer",
                s.cidr
            ),
            format!(
                "use a service subnet of /{} or longer (the guide uses /112 → range /113); Kubernetes ≥ 1.34 with the MultiCIDRServiceAllocator lifts this: set [kubernetes] version and multi_cidr_service_allocator = true",
                min_len - 1
            ),
        );
        c.also(
            c.spans.get_exact("", "kubernetes.version"),
            format!("Kubernetes {version}"),
        );
        c.also(
            c.spans
                .get_exact("", "kubernetes.multi_cidr_service_allocator"),
            format!(
                "multi_cidr_service_allocator = {}",
                plan.kubernetes.multi_cidr_service_allocator
            ),
        );
    }
    if addr::size(&range) < MIN_SERVICE_RANGE_ADDRESSES {
        c.report(
            Code::E009,
            n,
            "cidr",
            format!("service subnet `{n}` {} gives the Kubernetes service range {range} with {} addresses; Kubernetes needs at least {MIN_SERVICE_RANGE_ADDRESSES}", s.cidr, addr::size(&range)),
            "use a larger service subnet, e.g. /112 for IPv6",
        );
    }
    if range.contains(&s.gateway_ip) {
        c.report(Code::E018, n, "gateway", format!("gateway {} of service subnet `{n}` lies inside the Kubernetes service range {range}", s.gateway_ip), format!("use the last-but-one address, {}", layout.gateway));
        c.also(
            c.spans.get_exact(n, "cidr"),
            format!("{} puts the Kubernetes service range at {range}", s.cidr),
        );
    }
    for p in &s.allocation_pools {
        if addr::ranges_overlap((p.start, p.end), (range.network(), addr::last(&range))) {
            c.report(
                Code::E018,
                n,
                "allocation_pools",
                format!("allocation pool {}-{} of service subnet `{n}` overlaps the Kubernetes service range {range}", p.start, p.end),
                format!("Neutron would give service VIPs to ports: keep the pool in the second half, e.g. {}-{}", layout.pool_start, layout.pool_end),
            );
            c.also(
                c.spans.get_exact(n, "cidr"),
                format!("{} puts the Kubernetes service range at {range}", s.cidr),
            );
        }
    }
}

fn check_overlaps(c: &mut Checker, plan: &Plan) {
    let subnets: Vec<&Subnet> = plan.subnets().collect();
    for (i, a) in subnets.iter().enumerate() {
        for b in &subnets[i + 1..] {
            if addr::overlaps(&a.cidr, &b.cidr) {
                c.report(
                    Code::E014,
                    &b.name,
                    "cidr",
                    format!("subnet `{}` {} overlaps subnet `{}` {}", b.name, b.cidr, a.name, a.cidr),
                    "pod and service prefixes must be disjoint: pick another prefix for one of them",
                );
                c.also(
                    c.spans.get(&a.name, "cidr"),
                    format!("subnet `{}` {}", a.name, a.cidr),
                );
            }
        }
    }
}

fn check_families(c: &mut Checker, plan: &Plan) {
    let mut per_network: HashMap<(&str, u8), &str> = HashMap::new();
    let mut pod_families = BTreeSet::new();
    let mut service_families = BTreeSet::new();
    let mut service_by_family: HashMap<u8, &str> = HashMap::new();
    for s in plan.subnets() {
        let family = addr::net_version(&s.cidr);
        if let Some(other) = per_network.insert((s.network.as_str(), family), &s.name) {
            c.report(
                Code::E015,
                &s.name,
                "network",
                format!(
                    "network `{}` has two {} subnets, `{other}` and `{}`",
                    s.network,
                    addr::family_name(family),
                    s.name
                ),
                "one subnet per family per network: put the other one on its own network",
            );
            c.also(
                c.spans.get_first(other, &["network", "cidr"]),
                format!("`{other}` is on `{}` too", s.network),
            );
        }
        match s.role {
            Role::Pod => {
                pod_families.insert(family);
            }
            Role::Service => {
                service_families.insert(family);
                if let Some(other) = service_by_family.insert(family, &s.name) {
                    c.report(
                        Code::E015,
                        &s.name,
                        "cidr",
                        format!("service subnets `{other}` and `{}` are both {}: Kubernetes takes at most one service range per family", s.name, addr::family_name(family)),
                        "keep one service subnet per family",
                    );
                    c.also(
                        c.spans.get(other, "cidr"),
                        format!("service subnet `{other}` {}", addr::family_name(family)),
                    );
                }
            }
            Role::Other => {}
        }
    }
    if !pod_families.is_empty() && !service_families.is_empty() && pod_families != service_families
    {
        let names = |set: &BTreeSet<u8>| {
            set.iter()
                .map(|f| addr::family_name(*f))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let culprit = plan
            .subnets()
            .find(|s| {
                s.role == Role::Service && !pod_families.contains(&addr::net_version(&s.cidr))
            })
            .or_else(|| {
                plan.subnets().find(|s| {
                    s.role == Role::Pod && !service_families.contains(&addr::net_version(&s.cidr))
                })
            });
        let step = culprit.map(|s| s.name.as_str()).unwrap_or("");
        c.report(
            Code::E015,
            step,
            "cidr",
            format!("address families do not match: pods are {}, services are {}", names(&pod_families), names(&service_families)),
            "give pods and services the same families: both IPv6, or both IPv6 + IPv4 for dual-stack",
        );
        // The other side of the mismatch is as likely the value that changed.
        let other_role = match culprit.map(|s| s.role) {
            Some(Role::Pod) => Role::Service,
            _ => Role::Pod,
        };
        for s in plan.subnets().filter(|s| s.role == other_role) {
            let role = if other_role == Role::Pod {
                "pod"
            } else {
                "service"
            };
            c.also(
                c.spans.get(&s.name, "cidr"),
                format!(
                    "{role} subnet `{}` {} is {}",
                    s.name,
                    s.cidr,
                    addr::family_name(addr::net_version(&s.cidr))
                ),
            );
        }
    }
}

fn check_rules(c: &mut Checker, sg: &SecurityGroup) {
    for (i, r) in sg.rules.iter().enumerate() {
        let field = format!("rules[{i}]");
        let mut bad = |message: String, help: &str| {
            c.report(Code::E024, &sg.name, &field, message, help.to_string())
        };
        if r.direction != "ingress" && r.direction != "egress" {
            bad(
                format!(
                    "rule {} of `{}` has direction `{}`",
                    i + 1,
                    sg.name,
                    r.direction
                ),
                "direction is \"ingress\" or \"egress\"",
            );
        }
        let family = match r.ethertype.as_str() {
            "IPv4" => Some(4),
            "IPv6" => Some(6),
            _ => {
                bad(
                    format!(
                        "rule {} of `{}` has ethertype `{}`",
                        i + 1,
                        sg.name,
                        r.ethertype
                    ),
                    "ethertype is \"IPv4\" or \"IPv6\"",
                );
                None
            }
        };
        if let (Some(f), Some(p)) = (family, r.remote_ip_prefix)
            && addr::net_version(&p) != f
        {
            bad(
                format!(
                    "rule {} of `{}` is {} but its remote_ip_prefix {p} is {}",
                    i + 1,
                    sg.name,
                    r.ethertype,
                    addr::family_name(addr::net_version(&p))
                ),
                "make ethertype match the remote prefix's family",
            );
        }
        if let Some(p) = &r.protocol {
            let number = p.parse::<u8>().ok();
            if number.is_none() && !PROTOCOLS.contains(&p.as_str()) {
                bad(
                    format!("rule {} of `{}` has unknown protocol `{p}`", i + 1, sg.name),
                    "use tcp, udp, sctp, icmp, ipv6-icmp or a protocol number 0-255",
                );
            } else if let Some(n) = number.filter(|n| n.to_string() != *p) {
                // Neutron stores `06` as `06`, a protocol other than `6` to
                // its duplicate check.
                bad(
                    format!(
                        "rule {} of `{}` writes protocol number `{p}` with a sign or leading zeros",
                        i + 1,
                        sg.name
                    ),
                    &format!("write `{n}`"),
                );
            } else if rule_canon::protocol_refused(&r.ethertype, p) {
                // Neutron answers 400 (SecurityGroupEthertypeConflictWithProtocol).
                bad(
                    format!(
                        "rule {} of `{}` is IPv4 but protocol `{p}` is IPv6-only; Neutron refuses it",
                        i + 1,
                        sg.name
                    ),
                    "use icmp for IPv4 ICMP, or set ethertype to \"IPv6\"",
                );
            }
        }
        if r.port_range_min.is_some() || r.port_range_max.is_some() {
            let ported = matches!(r.protocol.as_deref(), Some("tcp" | "udp" | "sctp"));
            if !ported {
                bad(
                    format!(
                        "rule {} of `{}` sets ports without tcp, udp or sctp",
                        i + 1,
                        sg.name
                    ),
                    "set protocol to tcp, udp or sctp, or drop the ports",
                );
            } else {
                check_port_range(&mut bad, i, &sg.name, r.port_range_min, r.port_range_max);
            }
        }
    }
    // Neutron refuses a second rule it would store as an earlier one
    // (409 DuplicateSecurityGroupRuleInPost).
    let keys: Vec<_> = sg.rules.iter().map(rule_canon::wanted_key).collect();
    for (i, key) in keys.iter().enumerate() {
        if let Some(first) = keys[..i].iter().position(|k| k == key) {
            c.report(
                Code::E024,
                &sg.name,
                &format!("rules[{i}]"),
                format!(
                    "rule {} of `{}` is the same rule as rule {} once Neutron stores it",
                    i + 1,
                    sg.name,
                    first + 1
                ),
                "Neutron treats icmp/icmpv6/ipv6-icmp on IPv6, a protocol name and its number, no remote prefix and ::/0 (or 0.0.0.0/0), and ports 1-65535 and no ports as the same; drop one of the two rules",
            );
        }
    }
}

/// tcp, udp and sctp ranges as Neutron accepts them: both ends given (or
/// neither), no port 0, low end first.
fn check_port_range(
    bad: &mut impl FnMut(String, &str),
    i: usize,
    group: &str,
    min: Option<u16>,
    max: Option<u16>,
) {
    match (min, max) {
        (Some(0), _) | (_, Some(0)) => bad(
            format!("rule {} of `{group}` uses port 0", i + 1),
            "ports are 1 to 65535; drop both ports to allow every port",
        ),
        (Some(lo), Some(hi)) if lo > hi => bad(
            format!(
                "rule {} of `{group}` has port_range_min {lo} above port_range_max {hi}",
                i + 1
            ),
            "swap the two ports",
        ),
        (Some(_), Some(_)) | (None, None) => {}
        (Some(p), None) | (None, Some(p)) => bad(
            format!(
                "rule {} of `{group}` gives only one end of its port range ({p})",
                i + 1
            ),
            "Neutron needs both port_range_min and port_range_max; for one port write the same number twice",
        ),
    }
}

fn check_loadbalancer(c: &mut Checker, plan: &Plan, lb: &Loadbalancer) {
    let n = &lb.name;
    check_lb_protocol_and_provider(c, lb);
    if !LB_ALGORITHMS.contains(&lb.algorithm.as_str()) {
        c.report(
            Code::E025,
            n,
            "algorithm",
            format!(
                "load balancer algorithm `{}` is not one Octavia knows",
                lb.algorithm
            ),
            format!("use one of {}", LB_ALGORITHMS.join(", ")),
        );
    }
    if let Err(e) = check_name(&lb.pool_name) {
        c.report(
            Code::E006,
            n,
            "pool_name",
            format!("pool {e}"),
            name_rule_help(),
        );
    }
    for m in &lb.members {
        if let Err(e) = check_name(&m.name) {
            c.report(
                Code::E006,
                n,
                "members",
                format!("member {e}"),
                name_rule_help(),
            );
        }
    }
    if lb.members.is_empty() {
        c.report(Code::E023, n, "", format!("load balancer `{n}` has no members"), "list the API hosts under [kubernetes] api_hosts = [{ name = \"master-0\", address = \"…\" }]");
    }
    let Some(subnet) = plan.subnet(&lb.subnet) else {
        return;
    };
    if subnet.role != Role::Service {
        c.report(
            Code::E019,
            n,
            "subnet",
            format!(
                "load balancer `{n}` sits in subnet `{}`, which is not a service subnet",
                subnet.name
            ),
            "put the Kubernetes API load balancer in the service subnet (role = \"service\")",
        );
        c.also(
            c.spans.get_first(&subnet.name, &["role", "name"]),
            format!(
                "`{}` has role {}",
                subnet.name,
                format!("{:?}", subnet.role).to_lowercase()
            ),
        );
        return;
    }
    check_vip(c, lb, subnet);
}

/// The VIP is the service range's, clear of Neutron's pool and the gateway.
fn check_vip(c: &mut Checker, lb: &Loadbalancer, subnet: &Subnet) {
    let n = &lb.name;
    let Some(layout) = addr::service_layout(&subnet.cidr) else {
        return;
    };
    let range = layout.kubernetes_range;
    if !range.contains(&lb.vip) {
        c.report(
            Code::E019,
            n,
            "vip",
            format!(
                "VIP {} of load balancer `{n}` is outside the Kubernetes service range {range}",
                lb.vip
            ),
            format!(
                "Kubernetes gives the `kubernetes` service the range's first address: use {}",
                layout.kubernetes_default_ip
            ),
        );
        c.also(
            c.spans.get(&subnet.name, "cidr"),
            format!("`{}` {} gives the range {range}", subnet.name, subnet.cidr),
        );
    }
    for (i, p) in subnet.allocation_pools.iter().enumerate() {
        if addr::in_range(lb.vip, p.start, p.end) {
            c.report(
                Code::E019,
                n,
                "vip",
                format!(
                    "VIP {} of load balancer `{n}` lies inside the Neutron pool {}-{}",
                    lb.vip, p.start, p.end
                ),
                format!(
                    "Neutron could give it to a port: use {}",
                    layout.kubernetes_default_ip
                ),
            );
            let (at, derived) = pool_place(c.spans, &subnet.name, i);
            c.also(
                at,
                format!("pool {}-{} of `{}`{derived}", p.start, p.end, subnet.name),
            );
        }
    }
    if lb.vip == subnet.gateway_ip {
        c.report(
            Code::E019,
            n,
            "vip",
            format!(
                "VIP {} of load balancer `{n}` is the subnet's gateway",
                lb.vip
            ),
            format!("use {}", layout.kubernetes_default_ip),
        );
        c.also(
            c.spans.get_first(&subnet.name, &["gateway", "cidr"]),
            format!("gateway of `{}`", subnet.name),
        );
    }
}

fn check_emit(c: &mut Checker, e: &Emit) {
    if !MEMBER_MODES.contains(&e.member_mode.as_str()) {
        c.report(
            Code::E025,
            &e.name,
            "member_mode",
            format!("member_mode `{}` is not one Kuryr knows", e.member_mode),
            "use \"L3\" (the guide's router + security group setup) or \"L2\"",
        );
    }
    if e.dir.is_empty() {
        c.report(
            Code::E025,
            &e.name,
            "dir",
            "emit dir is empty".into(),
            "name a directory, e.g. dir = \"out\"",
        );
    }
    if e.ovs_bridge.is_empty() {
        c.report(
            Code::E025,
            &e.name,
            "ovs_bridge",
            "ovs_bridge is empty".into(),
            "use the integration bridge, normally \"br-int\"",
        );
    }
    if let Some(p) = &e.octavia_provider {
        check_provider_name(c, &e.name, "octavia_provider", p);
    }
}

/// Whether the cloud has the provider is checked against Octavia before
/// any write; here only that it can be a provider's name.
fn check_provider_name(c: &mut Checker, step: &str, field: &str, p: &str) {
    let well_formed = !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !well_formed {
        c.report(
            Code::E025,
            step,
            field,
            format!("{field} `{p}` is not an Octavia provider name"),
            "name a provider the cloud enables, e.g. \"amphora\" or \"ovn\" (`openstack loadbalancer provider list`); leave it out for the cloud's default",
        );
    }
}

/// The listener protocol, and what the OVN provider balances: it refuses
/// HTTPS and every algorithm but its own, so say so before Octavia does.
fn check_lb_protocol_and_provider(c: &mut Checker, lb: &Loadbalancer) {
    let n = &lb.name;
    let protocol = lb.protocol();
    if !LB_PROTOCOLS.contains(&protocol) {
        c.report(
            Code::E025,
            n,
            "protocol",
            format!("load balancer protocol `{protocol}` is not one the API load balancer can use"),
            format!(
                "use {} (HTTPS: Kuryr's default, TCP: TLS passes through to the API hosts)",
                LB_PROTOCOLS.join(" or ")
            ),
        );
    }
    let Some(provider) = lb.provider.as_deref() else {
        return;
    };
    check_provider_name(c, n, "provider", provider);
    if provider != OVN_PROVIDER {
        return;
    }
    if LB_PROTOCOLS.contains(&protocol) && !OVN_LB_PROTOCOLS.contains(&protocol) {
        // HTTPS unwritten: the provider line is what to change.
        let field = if lb.protocol.is_some() {
            "protocol"
        } else {
            "provider"
        };
        c.report(
            Code::E025,
            n,
            field,
            format!("the OVN provider does not balance {protocol}; it balances {}", OVN_LB_PROTOCOLS.join(", ")),
            "set protocol = \"TCP\" (TLS then passes through to the API hosts), or leave provider out for an amphora load balancer with HTTPS",
        );
    }
    let algorithm = lb.algorithm.as_str();
    if LB_ALGORITHMS.contains(&algorithm) && !OVN_LB_ALGORITHMS.contains(&algorithm) {
        c.report(
            Code::E025,
            n,
            "algorithm",
            format!(
                "the OVN provider does not support algorithm `{}`",
                lb.algorithm
            ),
            format!(
                "use {} (or leave algorithm out: {OVN_LB_ALGORITHM})",
                OVN_LB_ALGORITHMS.join(" or ")
            ),
        );
    }
}

/// The guide's IPv6 service subnet length.
pub const GUIDE_SERVICE_PREFIX_LEN: u8 = 112;

/// Deviations from the guide that work as they are (warnings): a service
/// subnet that is not a /112, a gateway or pool off the guide's layout,
/// DHCP on an IPv6 subnet, an access security group without the tcp, udp
/// or sctp rule from the service subnet. Run only on plans without errors;
/// `kuryr6 import` writes a comment on each of these in the pipeline.
pub fn deviations(plan: &Plan, spans: &Spans) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for s in plan.subnets() {
        subnet_deviations(s, spans, &mut out);
    }
    for e in plan.emits() {
        access_rule_deviations(plan, e, spans, &mut out);
        l2_access_deviations(plan, e, spans, &mut out);
    }
    out
}

/// `warn(code, step, field, message, help)`: a warning at that field.
fn warner<'a>(
    spans: &'a Spans,
    out: &'a mut Vec<Diagnostic>,
) -> impl FnMut(Code, &str, &str, String, String) + 'a {
    move |code, step, field, message, help| {
        out.push(
            Diagnostic::warning(code, message)
                .help(help)
                .at(spans.get(step, field)),
        )
    }
}

/// A subnet off the guide: a service subnet not a /112, DHCP on IPv6, a
/// gateway or pools not where the guide's layout puts them.
fn subnet_deviations(s: &Subnet, spans: &Spans, out: &mut Vec<Diagnostic>) {
    let mut warn = warner(spans, out);
    let n = &s.name;
    let v6 = addr::net_version(&s.cidr) == 6;
    if s.role == Role::Service && v6 && s.cidr.prefix_len() != GUIDE_SERVICE_PREFIX_LEN {
        warn(
            Code::W001,
            n,
            "cidr",
            format!(
                "service subnet `{n}` is a /{}, the guide's is a /{GUIDE_SERVICE_PREFIX_LEN}",
                s.cidr.prefix_len()
            ),
            format!(
                "fine if intended: the Kubernetes range is its first half; new clusters use a /{GUIDE_SERVICE_PREFIX_LEN}"
            ),
        );
    }
    if s.enable_dhcp && v6 {
        warn(
            Code::W003,
            n,
            "enable_dhcp",
            format!("IPv6 subnet `{n}` has DHCP on; the guide turns it off (--no-dhcp)"),
            "Kuryr assigns pod and service addresses itself: set enable_dhcp = false when nothing else relies on DHCP".into(),
        );
    }
    if s.role == Role::Other {
        return;
    }
    let guide = crate::lower::laid_out_subnet(n, &s.network, s.role, s.cidr);
    if s.gateway_ip != guide.gateway_ip {
        warn(
            Code::W002,
            n,
            "gateway",
            format!(
                "gateway of subnet `{n}` is {}, the guide's is {}",
                s.gateway_ip, guide.gateway_ip
            ),
            "fine if intended; kuryr6 keeps the gateway as written".into(),
        );
    }
    if s.allocation_pools != guide.allocation_pools {
        let show = |pools: &[Pool]| {
            pools
                .iter()
                .map(|p| format!("{}-{}", p.start, p.end))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let starts = match (s.allocation_pools.first(), guide.allocation_pools.first()) {
            (Some(a), Some(b)) if a.start != b.start => {
                format!(" (it starts at {}, the guide's at {})", a.start, b.start)
            }
            _ => String::new(),
        };
        warn(
            Code::W002,
            n,
            "allocation_pools",
            format!(
                "allocation pools of subnet `{n}` are {}, the guide's are {}{starts}",
                show(&s.allocation_pools),
                show(&guide.allocation_pools)
            ),
            "fine if intended; kuryr6 keeps the pools as written".into(),
        );
    }
}

/// The security groups an emit step lists, as the plan has them.
fn listed_groups<'p>(plan: &'p Plan, e: &Emit) -> Vec<&'p SecurityGroup> {
    e.security_groups
        .iter()
        .filter_map(|g| match plan.step(g) {
            Some(Step::SecurityGroup(sg)) => Some(sg),
            _ => None,
        })
        .collect()
}

/// Whether one of `groups` has a rule that lets in what `wanted` would,
/// from all of `from`.
fn admitted(groups: &[&SecurityGroup], wanted: &crate::plan::Rule, from: &ipnet::IpNet) -> bool {
    groups.iter().flat_map(|g| &g.rules).any(|r| {
        r.direction == wanted.direction
            && r.ethertype == wanted.ethertype
            && (r.protocol.is_none() || r.protocol == wanted.protocol)
            && r.remote_ip_prefix.is_none_or(|p| p.contains(from))
            && r.port_range_min.is_none()
            && r.port_range_max.is_none()
    })
}

/// `member_mode = "L2"`: Octavia's member ports sit on the pod subnet, so
/// a listed group must let pods accept tcp and udp from it (the short form
/// derives `octavia_pod_access` for this; an explicit pipeline must list
/// one).
fn l2_access_deviations(plan: &Plan, e: &Emit, spans: &Spans, out: &mut Vec<Diagnostic>) {
    if e.member_mode != "L2" {
        return;
    }
    let mut warn = warner(spans, out);
    let Some(pods) = plan.subnet(&e.pod_subnet) else {
        return;
    };
    let groups = listed_groups(plan, e);
    for wanted in crate::lower::pod_access_rules(&pods.cidr) {
        if !admitted(&groups, &wanted, &pods.cidr) {
            let proto = wanted.protocol.clone().unwrap_or_default();
            warn(
                Code::W006,
                &e.name,
                "member_mode",
                format!(
                    "member_mode is L2 but no group in security_groups admits {proto} from the pod subnet {}: Octavia's member ports there cannot reach the pods",
                    pods.cidr
                ),
                format!(
                    "list a security group with an ingress {proto} rule from {} (the short form derives `octavia_pod_access`)",
                    pods.cidr
                ),
            );
        }
    }
}

/// The access rules Kuryr needs: pods accept tcp, udp and sctp from the
/// service subnet (the guide adds tcp; Kuryr's devstack adds the others).
fn access_rule_deviations(plan: &Plan, e: &Emit, spans: &Spans, out: &mut Vec<Diagnostic>) {
    let mut warn = warner(spans, out);
    let Some(svc) = plan.subnet(&e.service_subnet) else {
        return;
    };
    let groups = listed_groups(plan, e);
    let Some(first) = groups.first() else {
        return;
    };
    for wanted in crate::lower::service_access_rules(&svc.cidr) {
        if !admitted(&groups, &wanted, &svc.cidr) {
            let proto = wanted.protocol.clone().unwrap_or_default();
            warn(
                Code::W004,
                &first.name,
                // The rule list as written (`rule`), else where the short form derived it.
                if spans.get_exact(&first.name, "rule").is_some() {
                    "rule"
                } else {
                    "rules"
                },
                format!(
                    "security group `{}` has no {proto} rule from the service subnet {}: pods will not accept {proto} service traffic",
                    first.name, svc.cidr
                ),
                format!(
                    "add [[step.rule]] direction = \"ingress\", protocol = \"{proto}\", remote_ip_prefix = \"{}\"",
                    svc.cidr
                ),
            );
        }
    }
}
