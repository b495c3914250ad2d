//! The resolved plan: what kuryr6 will make, as plain data.
//!
//! A `Plan` is what every later stage consumes: plugins rewrite it, validation
//! checks it, the engine diffs it against the cloud, emitters render it. It
//! knows nothing of files, spans or HTTP. Invariants once `validate::plan`
//! returned no error: names are unique, every reference names an earlier
//! step of the right kind, every address and pool lies inside its subnet.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The Kubernetes version a plan targets when the pipeline names none.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.33";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Pipeline name: part of the ownership tag on every resource.
    pub pipeline: String,
    pub kubernetes: Kubernetes,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// `major.minor`, e.g. "1.33".
    pub version: String,
    /// Kubernetes ≥ 1.34 with the MultiCIDRServiceAllocator lifts the /108 limit.
    pub multi_cidr_service_allocator: bool,
    /// Hosts running kube-apiserver: load-balancer members and bind addresses.
    pub api_hosts: Vec<ApiHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiHost {
    pub name: String,
    pub address: IpAddr,
}

/// One step of the pipeline, applied in order, destroyed in reverse order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Network(Network),
    Subnet(Subnet),
    Router(Router),
    SecurityGroup(SecurityGroup),
    Loadbalancer(Loadbalancer),
    Emit(Emit),
}

impl Step {
    pub fn name(&self) -> &str {
        match self {
            Step::Network(s) => &s.name,
            Step::Subnet(s) => &s.name,
            Step::Router(s) => &s.name,
            Step::SecurityGroup(s) => &s.name,
            Step::Loadbalancer(s) => &s.name,
            Step::Emit(s) => &s.name,
        }
    }

    pub fn kind(&self) -> StepKind {
        match self {
            Step::Network(_) => StepKind::Network,
            Step::Subnet(_) => StepKind::Subnet,
            Step::Router(_) => StepKind::Router,
            Step::SecurityGroup(_) => StepKind::SecurityGroup,
            Step::Loadbalancer(_) => StepKind::Loadbalancer,
            Step::Emit(_) => StepKind::Emit,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Network,
    Subnet,
    Router,
    SecurityGroup,
    Loadbalancer,
    Emit,
}

impl StepKind {
    pub const ALL: [StepKind; 6] = [
        StepKind::Network,
        StepKind::Subnet,
        StepKind::Router,
        StepKind::SecurityGroup,
        StepKind::Loadbalancer,
        StepKind::Emit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Network => "network",
            StepKind::Subnet => "subnet",
            StepKind::Router => "router",
            StepKind::SecurityGroup => "security_group",
            StepKind::Loadbalancer => "loadbalancer",
            StepKind::Emit => "emit",
        }
    }

    pub fn parse(s: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
}

/// What a subnet is for; decides its address layout and where emitters use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Pod addresses: gateway = network + 1, pool = the rest.
    Pod,
    /// Service subnet: first half is the Kubernetes service range, second
    /// half (up to the gateway) the Neutron pool for load-balancer ports.
    Service,
    /// Any other subnet: addresses exactly as written.
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub name: String,
    pub network: String,
    pub role: Role,
    pub cidr: IpNet,
    pub ip_version: u8,
    pub enable_dhcp: bool,
    pub gateway_ip: IpAddr,
    pub allocation_pools: Vec<Pool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub start: IpAddr,
    pub end: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Router {
    pub name: String,
    /// Subnet names; attached by subnet id, never by port.
    pub interfaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    pub name: String,
    pub description: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// "ingress" or "egress".
    pub direction: String,
    /// "IPv4" or "IPv6".
    pub ethertype: String,
    /// "tcp", "udp", "sctp", "icmp", "ipv6-icmp" …; None = any.
    pub protocol: Option<String>,
    pub remote_ip_prefix: Option<IpNet>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loadbalancer {
    /// Octavia LB name; the guide's is "default/kubernetes".
    pub name: String,
    /// Subnet (role service) that holds the VIP.
    pub subnet: String,
    /// Kubernetes always gives range::1 to the `kubernetes` service.
    pub vip: IpAddr,
    pub algorithm: String,
    pub listener_port: u16,
    pub member_port: u16,
    /// Pool name; the guide's is "default/kubernetes:HTTPS:443".
    pub pool_name: String,
    pub members: Vec<ApiHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emit {
    pub name: String,
    /// Output directory, relative to the pipeline file unless absolute.
    pub dir: String,
    pub pod_subnet: String,
    pub service_subnet: String,
    pub security_groups: Vec<String>,
    pub ovs_bridge: String,
    pub member_mode: String,
    /// Tags Kuryr puts on what it creates (ports, load balancers).
    pub resource_tags: Vec<String>,
    /// Load balancer whose algorithm goes to `[octavia_defaults]`, if any.
    pub loadbalancer: Option<String>,
}

impl Plan {
    /// Renames steps and every reference to them. `renames` maps old to new
    /// names; all renames apply at once (a swap of two names works).
    pub fn rename_steps(&mut self, renames: &std::collections::HashMap<String, String>) {
        let map = |name: &mut String| {
            if let Some(new) = renames.get(name.as_str()) {
                *name = new.clone();
            }
        };
        for step in &mut self.steps {
            match step {
                Step::Network(n) => map(&mut n.name),
                Step::Subnet(s) => {
                    map(&mut s.name);
                    map(&mut s.network);
                }
                Step::Router(r) => {
                    map(&mut r.name);
                    r.interfaces.iter_mut().for_each(map);
                }
                Step::SecurityGroup(sg) => {
                    // The short form describes a group by its name; keep them equal.
                    if sg.description == sg.name {
                        map(&mut sg.description);
                    }
                    map(&mut sg.name);
                }
                Step::Loadbalancer(lb) => {
                    if let Some(new) = renames.get(&lb.name) {
                        // The pool is named after its load balancer.
                        if let Some(rest) = lb.pool_name.strip_prefix(&format!("{}:", lb.name)) {
                            lb.pool_name = format!("{new}:{rest}");
                        }
                    }
                    map(&mut lb.name);
                    map(&mut lb.subnet);
                }
                Step::Emit(e) => {
                    map(&mut e.name);
                    map(&mut e.pod_subnet);
                    map(&mut e.service_subnet);
                    e.security_groups.iter_mut().for_each(map);
                    if let Some(lb) = &mut e.loadbalancer {
                        map(lb);
                    }
                }
            }
        }
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name() == name)
    }

    pub fn subnet(&self, name: &str) -> Option<&Subnet> {
        match self.step(name) {
            Some(Step::Subnet(s)) => Some(s),
            _ => None,
        }
    }

    pub fn subnets(&self) -> impl Iterator<Item = &Subnet> {
        self.steps.iter().filter_map(|s| match s {
            Step::Subnet(s) => Some(s),
            _ => None,
        })
    }

    pub fn emits(&self) -> impl Iterator<Item = &Emit> {
        self.steps.iter().filter_map(|s| match s {
            Step::Emit(e) => Some(e),
            _ => None,
        })
    }
}
