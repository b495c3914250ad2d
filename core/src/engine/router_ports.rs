//! Which of a router's ports are its interfaces. Neutron gives a router's
//! ports the router's id as `device_id`, with an owner that depends on the
//! router's mode (neutron-lib `ROUTER_INTERFACE_OWNERS`): legacy, L3-HA
//! and DVR interfaces are all interfaces. Its other ports (gateway, DVR's
//! centralised SNAT, L3-HA's network ports) are not in the interface diff.

use super::value::str_of;
use serde_json::Value;

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
}
