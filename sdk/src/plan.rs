//! The plan as a plugin sees it: the JSON document `kuryr6::plan::Plan`
//! serializes to, re-declared here so guests do not compile kuryr6 (and
//! with it wasmtime, HTTP and TOML).
//!
//! Invariant: for every plan kuryr6 produces, JSON → this `Plan` → JSON is
//! the identity (checked by sdk/tests/harness.rs against core's types).
//! Every struct keeps the fields it does not know in `extra` and writes them
//! back unchanged, so a plugin built with an older SDK carries new host
//! fields through instead of dropping them. The host still parses the
//! returned plan strictly and validates it: a plugin cannot invent fields or
//! return an invalid plan.

use crate::cidr;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Fields this SDK version does not know, carried through verbatim.
pub type Extra = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Pipeline name: part of the ownership tag on every resource.
    pub pipeline: String,
    pub kubernetes: Kubernetes,
    pub steps: Vec<Step>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kubernetes {
    /// `major.minor`, e.g. "1.33".
    pub version: String,
    pub multi_cidr_service_allocator: bool,
    pub api_hosts: Vec<ApiHost>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiHost {
    pub name: String,
    pub address: IpAddr,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One step of the pipeline, in order. A step kind this SDK does not know
/// fails to parse: new kinds come with a new ABI version.
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

/// What a subnet is for; decides its address layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Gateway = network + 1, pool = the rest.
    Pod,
    /// First half = Kubernetes service range, second half (up to the
    /// gateway, the last-but-one address) = Neutron pool.
    Service,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    pub name: String,
    pub network: String,
    pub role: Role,
    pub cidr: IpNet,
    pub ip_version: u8,
    pub enable_dhcp: bool,
    pub gateway_ip: IpAddr,
    pub allocation_pools: Vec<Pool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub start: IpAddr,
    pub end: IpAddr,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Router {
    pub name: String,
    /// Subnet names.
    pub interfaces: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub name: String,
    pub description: String,
    pub rules: Vec<Rule>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub remote_ip_prefix: Option<IpNet>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loadbalancer {
    pub name: String,
    /// Subnet (role service) holding the VIP.
    pub subnet: String,
    pub vip: IpAddr,
    pub algorithm: String,
    pub listener_port: u16,
    pub member_port: u16,
    pub pool_name: String,
    pub members: Vec<ApiHost>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emit {
    pub name: String,
    pub dir: String,
    pub pod_subnet: String,
    pub service_subnet: String,
    pub security_groups: Vec<String>,
    pub ovs_bridge: String,
    pub member_mode: String,
    pub resource_tags: Vec<String>,
    pub loadbalancer: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
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

    /// The `kind` tag as written in the plan JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Network(_) => "network",
            Step::Subnet(_) => "subnet",
            Step::Router(_) => "router",
            Step::SecurityGroup(_) => "security_group",
            Step::Loadbalancer(_) => "loadbalancer",
            Step::Emit(_) => "emit",
        }
    }
}

impl Plan {
    /// Parses the JSON a hook receives.
    pub fn from_json(json: &str) -> Result<Plan, String> {
        serde_json::from_str(json).map_err(|e| format!("plan JSON from kuryr6 does not parse: {e}"))
    }

    /// The JSON a hook returns.
    pub fn to_json(&self) -> String {
        // Only maps with string keys, strings, numbers and addresses: cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn subnets(&self) -> impl Iterator<Item = &Subnet> {
        self.steps.iter().filter_map(|s| match s {
            Step::Subnet(s) => Some(s),
            _ => None,
        })
    }

    pub fn subnets_mut(&mut self) -> impl Iterator<Item = &mut Subnet> {
        self.steps.iter_mut().filter_map(|s| match s {
            Step::Subnet(s) => Some(s),
            _ => None,
        })
    }
}

impl Subnet {
    /// Moves the subnet to `cidr` and recomputes what kuryr6 derives from it
    /// (ip_version, gateway, allocation pool) by role, exactly as the short
    /// form does. `Err` when the prefix is too small for the role's layout.
    pub fn relayout(&mut self, cidr: IpNet) -> Result<(), String> {
        let (gateway, pools) = match self.role {
            Role::Service => {
                let l = cidr::service_layout(&cidr)
                    .ok_or_else(|| format!("{cidr} is too small for a service subnet"))?;
                (
                    l.gateway,
                    vec![Pool {
                        start: l.pool_start,
                        end: l.pool_end,
                        extra: Extra::new(),
                    }],
                )
            }
            Role::Pod | Role::Other => {
                let (gateway, start, end) = cidr::pod_layout(&cidr)
                    .ok_or_else(|| format!("{cidr} is too small for a subnet with a pool"))?;
                (
                    gateway,
                    vec![Pool {
                        start,
                        end,
                        extra: Extra::new(),
                    }],
                )
            }
        };
        self.cidr = cidr;
        self.ip_version = cidr::version(&cidr);
        self.gateway_ip = gateway;
        self.allocation_pools = pools;
        Ok(())
    }
}
