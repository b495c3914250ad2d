//! The plan's types: what kuryr6 will make, as plain data.
//!
//! A `Plan` is what every later stage consumes: plugins rewrite it, validation
//! checks it, the engine diffs it against the cloud, emitters render it. It
//! knows nothing of files, spans or HTTP. Invariants once the host's
//! validation returned no error: names are unique, every reference names an
//! earlier step of the right kind, every address and pool lies inside its
//! subnet.
//!
//! Every struct is generic over `X`, what it does with unknown fields (see
//! [`crate::unknown`]); `X` defaults to [`Strict`], the host's choice. The
//! JSON form — the one plugins receive — is the serde form of these types.

use crate::addr;
use crate::unknown::Strict;
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// The Kubernetes version a plan targets when the pipeline names none.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.33";

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plan<X = Strict> {
    /// Pipeline name: part of the ownership tag on every resource.
    pub pipeline: String,
    pub kubernetes: Kubernetes<X>,
    pub steps: Vec<Step<X>>,
    #[serde(flatten)]
    pub extra: X,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kubernetes<X = Strict> {
    /// `major.minor`, e.g. "1.33".
    pub version: String,
    /// Kubernetes ≥ 1.34 with the MultiCIDRServiceAllocator lifts the /108 limit.
    pub multi_cidr_service_allocator: bool,
    /// Hosts running kube-apiserver: load-balancer members and bind addresses.
    pub api_hosts: Vec<ApiHost<X>>,
    #[serde(flatten)]
    pub extra: X,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiHost<X = Strict> {
    pub name: String,
    pub address: IpAddr,
    #[serde(flatten)]
    pub extra: X,
}

/// One step of the pipeline, applied in order, destroyed in reverse order.
/// A step kind this crate does not know fails to parse, on both sides: new
/// kinds come with a new contract version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step<X = Strict> {
    Network(Network<X>),
    Subnet(Subnet<X>),
    Router(Router<X>),
    SecurityGroup(SecurityGroup<X>),
    Loadbalancer(Loadbalancer<X>),
    Emit(Emit<X>),
}

impl<X> Step<X> {
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

/// The kind of a step: the `kind` tag of the plan JSON and pipeline files,
/// and the resource kind the naming hook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

    /// The `kind` tag as written in pipeline files and the plan JSON.
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

/// Plugins written when `Step::kind` returned the tag as text keep comparing.
impl PartialEq<&str> for StepKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Network<X = Strict> {
    pub name: String,
    #[serde(flatten)]
    pub extra: X,
}

/// What a subnet is for; decides its address layout and where emitters use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Pod addresses: gateway = network + 1, pool = the rest.
    Pod,
    /// Service subnet: first half is the Kubernetes service range, second
    /// half (up to the gateway, the last-but-one address) the Neutron pool
    /// for load-balancer ports.
    Service,
    /// Any other subnet: addresses exactly as written.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subnet<X = Strict> {
    pub name: String,
    pub network: String,
    pub role: Role,
    pub cidr: IpNet,
    pub ip_version: u8,
    pub enable_dhcp: bool,
    pub gateway_ip: IpAddr,
    pub allocation_pools: Vec<Pool<X>>,
    #[serde(flatten)]
    pub extra: X,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pool<X = Strict> {
    pub start: IpAddr,
    pub end: IpAddr,
    #[serde(flatten)]
    pub extra: X,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Router<X = Strict> {
    pub name: String,
    /// Subnet names; attached by subnet id, never by port.
    pub interfaces: Vec<String>,
    #[serde(flatten)]
    pub extra: X,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecurityGroup<X = Strict> {
    pub name: String,
    pub description: String,
    pub rules: Vec<Rule<X>>,
    #[serde(flatten)]
    pub extra: X,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule<X = Strict> {
    /// "ingress" or "egress".
    pub direction: String,
    /// "IPv4" or "IPv6".
    pub ethertype: String,
    /// "tcp", "udp", "sctp", "icmp", "ipv6-icmp" …; None = any.
    pub protocol: Option<String>,
    pub remote_ip_prefix: Option<IpNet>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    #[serde(flatten)]
    pub extra: X,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Loadbalancer<X = Strict> {
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
    pub members: Vec<ApiHost<X>>,
    /// Octavia provider (`amphora`, `ovn`, …); `None`: the cloud's default.
    /// Absent from the JSON when `None`, as is `protocol`, so plans without
    /// them read and hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Listener and pool protocol; `None`: [`DEFAULT_LB_PROTOCOL`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(flatten)]
    pub extra: X,
}

/// The API load balancer's protocol when none is named: HTTPS, as Kuryr's
/// devstack builds it ("the k8s API will be behind an L3 mode amphora
/// driver loadbalancer").
pub const DEFAULT_LB_PROTOCOL: &str = "HTTPS";

impl<X> Loadbalancer<X> {
    /// The listener's and the pool's protocol.
    pub fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or(DEFAULT_LB_PROTOCOL)
    }

    /// Kuryr's name for the listener: `<lb>:<protocol>:<port>`.
    pub fn listener_name(&self) -> String {
        format!("{}:{}:{}", self.name, self.protocol(), self.listener_port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Emit<X = Strict> {
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
    /// The Octavia provider Kuryr asks for its Services' load balancers
    /// (`[kubernetes] endpoints_driver_octavia_provider`); `None`: the
    /// cloud's default, and nothing written. Absent from the JSON when
    /// `None`, so plans without it read and hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub octavia_provider: Option<String>,
    #[serde(flatten)]
    pub extra: X,
}

impl<X> Plan<X> {
    /// Renames steps and every reference to them. `renames` maps old to new
    /// names; all renames apply at once (a swap of two names works).
    pub fn rename_steps(&mut self, renames: &HashMap<String, String>) {
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

    pub fn step(&self, name: &str) -> Option<&Step<X>> {
        self.steps.iter().find(|s| s.name() == name)
    }

    pub fn subnet(&self, name: &str) -> Option<&Subnet<X>> {
        match self.step(name) {
            Some(Step::Subnet(s)) => Some(s),
            _ => None,
        }
    }

    pub fn subnets(&self) -> impl Iterator<Item = &Subnet<X>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Subnet(s) => Some(s),
            _ => None,
        })
    }

    pub fn subnets_mut(&mut self) -> impl Iterator<Item = &mut Subnet<X>> {
        self.steps.iter_mut().filter_map(|s| match s {
            Step::Subnet(s) => Some(s),
            _ => None,
        })
    }

    pub fn emits(&self) -> impl Iterator<Item = &Emit<X>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Emit(e) => Some(e),
            _ => None,
        })
    }

    /// The Kubernetes service ranges (`--service-cluster-ip-range`): the
    /// first half of every service subnet, in plan order.
    pub fn service_ranges(&self) -> Vec<IpNet> {
        self.subnets()
            .filter(|s| s.role == Role::Service)
            .filter_map(|s| addr::service_layout(&s.cidr).map(|l| l.kubernetes_range))
            .collect()
    }
}

impl<X: DeserializeOwned> Plan<X> {
    /// Parses the plan JSON (what a hook receives, or returns to the host).
    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| format!("plan JSON from kuryr6 does not parse: {e}"))
    }
}

impl<X: Serialize> Plan<X> {
    /// The plan JSON.
    pub fn to_json(&self) -> String {
        // Maps with string keys, strings, numbers and addresses: cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl<X: Default> Subnet<X> {
    /// Moves the subnet to `cidr` and recomputes what kuryr6 derives from it
    /// (ip_version, gateway, allocation pool) by role, exactly as the short
    /// form does. `Err` when the prefix is too small for the role's layout.
    pub fn relayout(&mut self, cidr: IpNet) -> Result<(), String> {
        let (gateway, start, end) = match self.role {
            Role::Service => {
                let l = addr::service_layout(&cidr)
                    .ok_or_else(|| format!("{cidr} is too small for a service subnet"))?;
                (l.gateway, l.pool_start, l.pool_end)
            }
            Role::Pod | Role::Other => addr::pod_layout(&cidr)
                .ok_or_else(|| format!("{cidr} is too small for a subnet with a pool"))?,
        };
        self.cidr = cidr;
        self.ip_version = addr::net_version(&cidr);
        self.gateway_ip = gateway;
        self.allocation_pools = vec![Pool {
            start,
            end,
            extra: X::default(),
        }];
        Ok(())
    }
}
