//! What a port on an owned network or router is to kuryr6: the one
//! classifier of port roles, as `kind` is the one table of kinds. Destroy
//! asks it which ports go with what it deletes and which block; observe,
//! import and `--adopt` ask it which of a router's ports are interfaces.
//!
//! - **Router interface** (and what goes with one): Neutron gives a
//!   router's ports the router's id as `device_id`, with an owner that
//!   depends on the router's mode (neutron-lib `ROUTER_INTERFACE_OWNERS`):
//!   legacy, L3-HA and DVR interfaces are all interfaces. DVR's centralised
//!   SNAT port goes with them; gateway and L3-HA network ports are not
//!   interfaces.
//! - **The load balancer's own**, for an owned load balancer only:
//!   Octavia's amphora driver (`octavia/network/drivers/neutron/
//!   allowed_address_pairs.py`) makes the VIP port `octavia-lb-<lb id>`
//!   with `device_id` `lb-<lb id>`, and one VRRP port
//!   `octavia-lb-vrrp-<amphora id>` per amphora, owner `Octavia` until
//!   Nova attaches it (then `compute:<az>`), whose allowed address pairs
//!   carry the VIP; the OVN provider (`ovn_octavia_provider/common/
//!   constants.py`, `LB_VIP_PORT_PREFIX`) names its VIP port
//!   `ovn-lb-vip-<lb id>`. Octavia removes them with the load balancer.
//! - **Network service**, on an owned network: Neutron's DHCP port
//!   (`network:dhcp`) and ML2/OVN's metadata port (`network:distributed`,
//!   neutron-lib `DEVICE_OWNER_DISTRIBUTED`, made for every network when
//!   metadata is on). Neutron removes both with the network.
//! - **Kuryr's**: a pod or load-balancer port tagged with one of the
//!   pipeline's Kuryr `resource_tags`.
//! - **Foreign**: anything else, which destroy never removes.

use super::value::str_of;
use serde_json::Value;
use std::collections::BTreeSet;

/// neutron-lib `ROUTER_INTERFACE_OWNERS`.
pub const INTERFACE_OWNERS: [&str; 3] = [
    "network:router_interface",
    "network:ha_router_replicated_interface",
    "network:router_interface_distributed",
];

/// DVR's port for centralised SNAT, one per interface subnet of a router
/// with a gateway; Neutron removes it with that interface.
pub const SNAT_OWNER: &str = "network:router_centralized_snat";

/// The list filter for interface ports of every router mode (Neutron
/// takes a repeated `device_owner` as any of them).
pub fn interface_owner_filter() -> Vec<(String, String)> {
    INTERFACE_OWNERS
        .iter()
        .map(|o| ("device_owner".to_string(), o.to_string()))
        .collect()
}

/// A router port that attaches the router to a subnet.
pub fn is_interface(port: &Value) -> bool {
    INTERFACE_OWNERS.contains(&str_of(port, "device_owner"))
}

/// A port Neutron removes when the router's interfaces are removed: the
/// interfaces themselves and DVR's SNAT ports.
pub fn goes_with_interfaces(port: &Value) -> bool {
    is_interface(port) || str_of(port, "device_owner") == SNAT_OWNER
}

/// What a port is to the pipeline (see the module notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRole {
    /// An owned router's interface, or a port Neutron removes with it.
    RouterInterface,
    /// A port Octavia made for an owned load balancer.
    LoadBalancer,
    /// DHCP or metadata on an owned network.
    NetworkService,
    /// Made by Kuryr for this cluster (one of its `resource_tags`).
    Kuryr,
    Foreign,
}

/// What the pipeline owns, as the classifier needs it.
#[derive(Debug, Default)]
pub struct Owned<'a> {
    pub routers: BTreeSet<&'a str>,
    pub networks: BTreeSet<&'a str>,
    /// Owned load balancers: id and VIP address.
    pub loadbalancers: Vec<(&'a str, &'a str)>,
    /// The pipeline's Kuryr `resource_tags`.
    pub kuryr_tags: BTreeSet<String>,
}

/// neutron-lib `DEVICE_OWNER_DHCP` and `DEVICE_OWNER_DISTRIBUTED` (ML2/OVN
/// metadata): removed by Neutron with their network.
const NETWORK_SERVICE_OWNERS: [&str; 2] = ["network:dhcp", "network:distributed"];

/// Octavia's `OCTAVIA_OWNER`, which its VIP and (before Nova attaches them)
/// VRRP ports carry.
const OCTAVIA_OWNER: &str = "Octavia";

pub fn classify(port: &Value, owned: &Owned) -> PortRole {
    let device = str_of(port, "device_id");
    if owned.routers.contains(device) && goes_with_interfaces(port) {
        return PortRole::RouterInterface;
    }
    if of_owned_loadbalancer(port, owned) {
        return PortRole::LoadBalancer;
    }
    if owned.networks.contains(str_of(port, "network_id"))
        && NETWORK_SERVICE_OWNERS.contains(&str_of(port, "device_owner"))
    {
        return PortRole::NetworkService;
    }
    if owned
        .kuryr_tags
        .iter()
        .any(|t| super::ownership::has_tag(port, t))
    {
        return PortRole::Kuryr;
    }
    PortRole::Foreign
}

fn of_owned_loadbalancer(port: &Value, owned: &Owned) -> bool {
    let name = str_of(port, "name");
    let device = str_of(port, "device_id");
    let owner = str_of(port, "device_owner");
    owned.loadbalancers.iter().any(|(id, vip)| {
        let vip_port = name.strip_prefix("octavia-lb-") == Some(id)
            || device.strip_prefix("lb-") == Some(id)
            || device == *id
            || name.strip_prefix("ovn-lb-vip-") == Some(id);
        let vrrp_port = name.starts_with("octavia-lb-vrrp-")
            && (owner == OCTAVIA_OWNER || owner.starts_with("compute:"))
            && port["allowed_address_pairs"]
                .as_array()
                .is_some_and(|pairs| {
                    pairs
                        .iter()
                        .any(|p| same_address(str_of(p, "ip_address"), vip))
                });
        vip_port || vrrp_port
    })
}

/// Two textual addresses (an allowed pair may be a /32 or /128 CIDR).
fn same_address(a: &str, b: &str) -> bool {
    let a = a.split('/').next().unwrap_or(a);
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_router_mode_has_interfaces_and_only_interfaces_count() {
        for owner in INTERFACE_OWNERS {
            assert!(is_interface(&json!({"device_owner": owner})), "{owner}");
        }
        for owner in [
            "network:router_gateway",
            "network:router_ha_interface",
            SNAT_OWNER,
            "network:dhcp",
            "compute:nova",
        ] {
            assert!(!is_interface(&json!({"device_owner": owner})), "{owner}");
        }
        assert!(goes_with_interfaces(&json!({"device_owner": SNAT_OWNER})));
        assert!(!goes_with_interfaces(
            &json!({"device_owner": "network:router_gateway"})
        ));
        assert!(!goes_with_interfaces(
            &json!({"device_owner": "network:router_ha_interface"})
        ));
    }

    fn owned() -> Owned<'static> {
        Owned {
            routers: ["r1"].into(),
            networks: ["n1"].into(),
            loadbalancers: vec![("lb1", "fd10:0:0:2::1")],
            kuryr_tags: ["kuryr-seed".to_string()].into(),
        }
    }

    #[test]
    fn each_backends_ports_have_their_role_and_only_for_what_is_owned() {
        let o = owned();
        let role = |p: serde_json::Value| classify(&p, &o);
        // Routers of every mode.
        assert_eq!(
            role(
                json!({"device_id": "r1", "device_owner": "network:router_interface_distributed"})
            ),
            PortRole::RouterInterface
        );
        assert_eq!(
            role(json!({"device_id": "r2", "device_owner": "network:router_interface"})),
            PortRole::Foreign
        );
        // Octavia's VIP port, by name and by device id; the OVN provider's.
        assert_eq!(
            role(json!({"name": "octavia-lb-lb1", "device_owner": "Octavia"})),
            PortRole::LoadBalancer
        );
        assert_eq!(
            role(json!({"name": "", "device_id": "lb-lb1"})),
            PortRole::LoadBalancer
        );
        assert_eq!(
            role(json!({"name": "ovn-lb-vip-lb1"})),
            PortRole::LoadBalancer
        );
        assert_eq!(role(json!({"name": "ovn-lb-vip-lb2"})), PortRole::Foreign);
        // A VRRP port carries the owned VIP, before and after Nova's attach.
        for owner in ["Octavia", "compute:nova"] {
            let vrrp = json!({"name": "octavia-lb-vrrp-amp1", "device_owner": owner,
                "allowed_address_pairs": [{"ip_address": "fd10:0:0:2::1/128"}]});
            assert_eq!(role(vrrp), PortRole::LoadBalancer, "{owner}");
        }
        let other_vip = json!({"name": "octavia-lb-vrrp-amp2", "device_owner": "Octavia",
            "allowed_address_pairs": [{"ip_address": "fd10:0:0:9::1"}]});
        assert_eq!(role(other_vip), PortRole::Foreign);
        let not_octavias = json!({"name": "octavia-lb-vrrp-amp3", "device_owner": "",
            "allowed_address_pairs": [{"ip_address": "fd10:0:0:2::1"}]});
        assert_eq!(role(not_octavias), PortRole::Foreign);
        // DHCP and OVN metadata on owned networks only.
        for owner in ["network:dhcp", "network:distributed"] {
            assert_eq!(
                role(json!({"network_id": "n1", "device_owner": owner})),
                PortRole::NetworkService
            );
            assert_eq!(
                role(json!({"network_id": "n2", "device_owner": owner})),
                PortRole::Foreign
            );
        }
        assert_eq!(
            role(json!({"network_id": "n1", "tags": ["kuryr-seed"]})),
            PortRole::Kuryr
        );
        assert_eq!(
            role(json!({"network_id": "n1", "device_owner": "compute:nova"})),
            PortRole::Foreign
        );
    }
}
