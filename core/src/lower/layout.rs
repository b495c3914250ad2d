//! What the guide derives from a subnet's role and the pipeline's name:
//! gateways and pools, the service access rules, the API load balancer and
//! Kuryr's resource tags. Shared by the short form, the `[[step]]` form and
//! the modules that rebuild a plan (validate, import).

use super::DEFAULT_LB_ALGORITHM;
use crate::addr;
use crate::plan::*;
use crate::validate::{OVN_LB_ALGORITHM, OVN_PROVIDER};
use ipnet::IpNet;
use std::net::IpAddr;

/// Tags Kuryr puts on the ports and load balancers it creates for this
/// cluster, so a teardown can find them. Distinct from kuryr6's own tags.
pub fn default_resource_tags(pipeline: &str) -> Vec<String> {
    vec![format!("kuryr:{pipeline}")]
}

/// The guide's rule, and Kuryr devstack's udp and sctp twins: pods accept
/// traffic coming from the service subnet.
pub fn service_access_rules(service: &IpNet) -> Vec<Rule> {
    ingress_from(service, &["tcp", "udp", "sctp"])
}

/// `member_mode = "L2"`: Octavia's ports sit on the pod subnet itself, with
/// the admin's default group, so pods must accept tcp and udp from the pod
/// subnet (Kuryr devstack's `octavia_pod_access`, lib/kuryr_kubernetes:
/// `configure_k8s_pod_sg_rules`).
pub fn pod_access_rules(pods: &IpNet) -> Vec<Rule> {
    ingress_from(pods, &["tcp", "udp"])
}

fn ingress_from(prefix: &IpNet, protocols: &[&str]) -> Vec<Rule> {
    protocols
        .iter()
        .map(|protocol| Rule {
            direction: "ingress".into(),
            ethertype: addr::family_name(addr::net_version(prefix)).into(),
            protocol: Some((*protocol).into()),
            remote_ip_prefix: Some(*prefix),
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
pub(super) fn default_layout(role: Role, cidr: &IpNet) -> (IpAddr, Vec<Pool>) {
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

/// What a pipeline may say of its API load balancer; the rest is derived.
pub(super) struct LbChoices {
    /// `None`: the provider's default ([`DEFAULT_LB_ALGORITHM`], or the
    /// OVN provider's only default).
    pub algorithm: Option<String>,
    pub listener_port: u16,
    pub member_port: u16,
    /// `None`: the service range's `::1`.
    pub vip: Option<IpAddr>,
    pub provider: Option<String>,
    pub protocol: Option<String>,
}

impl Default for LbChoices {
    /// The guide's: HTTPS 443 to the API hosts' 6443.
    fn default() -> Self {
        LbChoices {
            algorithm: None,
            listener_port: 443,
            member_port: 6443,
            vip: None,
            provider: None,
            protocol: None,
        }
    }
}

pub(super) fn api_loadbalancer(
    name: &str,
    subnet: &str,
    cidr: &IpNet,
    choices: LbChoices,
    k: &Kubernetes,
) -> Loadbalancer {
    let vip = choices
        .vip
        .unwrap_or_else(|| addr::offset(cidr.network(), 1));
    let algorithm = choices.algorithm.unwrap_or_else(|| {
        if choices.provider.as_deref() == Some(OVN_PROVIDER) {
            OVN_LB_ALGORITHM.into()
        } else {
            DEFAULT_LB_ALGORITHM.into()
        }
    });
    let mut lb = Loadbalancer {
        name: name.into(),
        subnet: subnet.into(),
        vip,
        algorithm,
        listener_port: choices.listener_port,
        member_port: choices.member_port,
        pool_name: String::new(),
        members: k.api_hosts.clone(),
        provider: choices.provider,
        protocol: choices.protocol,
        extra: Strict,
    };
    // Kuryr's own naming: the listener's name is the pool's.
    lb.pool_name = lb.listener_name();
    lb
}
