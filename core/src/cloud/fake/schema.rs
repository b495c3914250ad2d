//! What each API accepts: the attributes of every kind with their defaults,
//! which ones a create or an update may send, and Neutron's tag limits.

use super::{is_octavia, rejected};
use crate::cloud::{CloudError, Kind};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Fields a new resource gets when the body leaves them out; the keys are
/// also the attributes the API knows (others are refused on create and as
/// filters). `None` means required.
pub(super) fn template(kind: &Kind) -> Vec<(&'static str, Option<Value>)> {
    let common_neutron = [
        ("name", Some(json!(""))),
        ("description", Some(json!(""))),
        ("tags", Some(json!([]))),
        ("project_id", None),
        ("tenant_id", None),
        ("revision_number", None),
        ("created_at", None),
        ("updated_at", None),
    ];
    let common_octavia = [
        ("name", Some(json!(""))),
        ("description", Some(json!(""))),
        ("tags", Some(json!([]))),
        ("project_id", None),
        ("admin_state_up", Some(json!(true))),
        ("provisioning_status", None),
        ("operating_status", None),
        ("created_at", None),
        ("updated_at", None),
    ];
    let mut fields: Vec<(&'static str, Option<Value>)> = match kind {
        Kind::Network => vec![
            ("admin_state_up", Some(json!(true))),
            ("status", Some(json!("ACTIVE"))),
            ("shared", Some(json!(false))),
            ("subnets", Some(json!([]))),
            ("mtu", Some(json!(1450))),
            ("port_security_enabled", Some(json!(true))),
            ("router:external", Some(json!(false))),
            ("availability_zone_hints", Some(json!([]))),
            ("availability_zones", Some(json!([]))),
            ("ipv4_address_scope", Some(Value::Null)),
            ("ipv6_address_scope", Some(Value::Null)),
            ("provider:network_type", Some(json!("vxlan"))),
            ("provider:physical_network", Some(Value::Null)),
            ("provider:segmentation_id", Some(Value::Null)),
            ("dns_domain", Some(json!(""))),
        ],
        Kind::Subnet => vec![
            ("network_id", None),
            ("ip_version", None),
            ("cidr", None),
            ("gateway_ip", None),
            ("allocation_pools", None),
            ("enable_dhcp", Some(json!(true))),
            ("dns_nameservers", Some(json!([]))),
            ("host_routes", Some(json!([]))),
            ("ipv6_ra_mode", Some(Value::Null)),
            ("ipv6_address_mode", Some(Value::Null)),
            ("subnetpool_id", Some(Value::Null)),
            ("service_types", Some(json!([]))),
            ("segment_id", Some(Value::Null)),
            ("dns_publish_fixed_ip", Some(json!(false))),
        ],
        Kind::Router => vec![
            ("admin_state_up", Some(json!(true))),
            ("status", Some(json!("ACTIVE"))),
            ("external_gateway_info", Some(Value::Null)),
            ("routes", Some(json!([]))),
            ("distributed", Some(json!(false))),
            ("ha", Some(json!(false))),
            ("flavor_id", Some(Value::Null)),
            ("availability_zone_hints", Some(json!([]))),
            ("availability_zones", Some(json!([]))),
        ],
        Kind::SecurityGroup => vec![
            ("security_group_rules", None),
            ("stateful", Some(json!(true))),
            ("shared", Some(json!(false))),
        ],
        Kind::SecurityGroupRule => vec![
            ("security_group_id", None),
            ("direction", None),
            ("ethertype", Some(json!("IPv4"))),
            ("protocol", Some(Value::Null)),
            ("port_range_min", Some(Value::Null)),
            ("port_range_max", Some(Value::Null)),
            ("remote_ip_prefix", Some(Value::Null)),
            ("remote_group_id", Some(Value::Null)),
            ("remote_address_group_id", Some(Value::Null)),
            ("normalized_cidr", None),
            ("belongs_to_default_sg", Some(json!(false))),
        ],
        Kind::Port => vec![
            ("network_id", None),
            ("admin_state_up", Some(json!(true))),
            ("status", Some(json!("DOWN"))),
            ("mac_address", None),
            ("fixed_ips", None),
            ("device_id", Some(json!(""))),
            ("device_owner", Some(json!(""))),
            ("security_groups", Some(json!([]))),
            ("allowed_address_pairs", Some(json!([]))),
            ("binding:vnic_type", Some(json!("normal"))),
            ("binding:host_id", Some(json!(""))),
            ("port_security_enabled", Some(json!(true))),
        ],
        Kind::LoadBalancer => vec![
            ("vip_subnet_id", None),
            ("vip_network_id", None),
            ("vip_address", None),
            ("vip_port_id", None),
            ("provider", Some(json!("amphora"))),
            ("flavor_id", Some(Value::Null)),
            ("availability_zone", Some(Value::Null)),
            ("listeners", Some(json!([]))),
            ("pools", Some(json!([]))),
        ],
        Kind::Listener => vec![
            ("loadbalancer_id", None),
            ("protocol", None),
            ("protocol_port", None),
            ("default_pool_id", Some(Value::Null)),
            ("connection_limit", Some(json!(-1))),
            ("loadbalancers", None),
            ("allowed_cidrs", Some(Value::Null)),
            ("timeout_client_data", Some(json!(50000))),
            ("timeout_member_data", Some(json!(50000))),
            ("default_tls_container_ref", Some(Value::Null)),
        ],
        Kind::Pool => vec![
            ("loadbalancer_id", Some(Value::Null)),
            ("listener_id", Some(Value::Null)),
            ("protocol", None),
            ("lb_algorithm", None),
            ("session_persistence", Some(Value::Null)),
            ("healthmonitor_id", Some(Value::Null)),
            ("loadbalancers", None),
            ("listeners", None),
            ("members", None),
        ],
        Kind::Member { .. } => vec![
            ("address", None),
            ("protocol_port", None),
            ("subnet_id", Some(Value::Null)),
            ("weight", Some(json!(1))),
            ("backup", Some(json!(false))),
            ("monitor_address", Some(Value::Null)),
            ("monitor_port", Some(Value::Null)),
        ],
    };
    if is_octavia(kind) {
        fields.extend(common_octavia);
    } else if matches!(kind, Kind::SecurityGroupRule) {
        fields.extend(
            common_neutron
                .into_iter()
                .filter(|(k, _)| *k != "name" && *k != "tags"),
        );
    } else {
        fields.extend(common_neutron);
    }
    fields
}

/// Neutron's limits: unique strings of at most 255 characters, at most 50.
pub(super) fn check_tags(method: &str, kind: &Kind, tags: &Value) -> Result<(), CloudError> {
    let Some(list) = tags.as_array() else {
        return Err(rejected(
            method,
            kind,
            "Invalid input for tags: must be a list of strings",
        ));
    };
    let mut seen = HashSet::new();
    for t in list {
        match t.as_str() {
            Some(s) if !s.is_empty() && s.len() <= 255 && seen.insert(s) => {}
            _ => {
                return Err(rejected(
                    method,
                    kind,
                    format!(
                        "Invalid input for tags: {t} is not a unique string of 1 to 255 characters"
                    ),
                ));
            }
        }
    }
    if list.len() > 50 {
        return Err(rejected(
            method,
            kind,
            "The number of tags exceed the per-resource limit of 50",
        ));
    }
    Ok(())
}

/// Attributes the caller may send on create (the rest are computed).
pub(super) fn creatable(kind: &Kind, key: &str) -> bool {
    const COMPUTED: &[&str] = &[
        "revision_number",
        "created_at",
        "updated_at",
        "status",
        "subnets",
        "security_group_rules",
        "normalized_cidr",
        "belongs_to_default_sg",
        "provisioning_status",
        "operating_status",
        "listeners",
        "pools",
        "loadbalancers",
        "members",
        "availability_zones",
        "vip_port_id",
        "vip_network_id",
    ];
    template(kind).iter().any(|(k, _)| *k == key) && !COMPUTED.contains(&key) || key == "id"
}

/// Attributes an update may change.
pub(super) fn updatable(kind: &Kind, key: &str) -> bool {
    // Tags are updatable through the trait on every taggable kind (the real
    // client uses Neutron's `…/tags` API where the body cannot carry them).
    const COMMON: &[&str] = &["name", "description", "admin_state_up", "tags"];
    let specific: &[&str] = match kind {
        Kind::Network => &["shared", "mtu", "port_security_enabled", "dns_domain"],
        Kind::Subnet => &[
            "gateway_ip",
            "allocation_pools",
            "enable_dhcp",
            "dns_nameservers",
            "host_routes",
            "service_types",
        ],
        Kind::Router => &["external_gateway_info", "routes"],
        Kind::SecurityGroup => &["stateful"],
        Kind::SecurityGroupRule => &[],
        Kind::Port => &[
            "fixed_ips",
            "device_id",
            "device_owner",
            "security_groups",
            "allowed_address_pairs",
            "port_security_enabled",
            "binding:host_id",
        ],
        Kind::LoadBalancer => &[],
        Kind::Listener => &[
            "default_pool_id",
            "connection_limit",
            "allowed_cidrs",
            "timeout_client_data",
            "timeout_member_data",
        ],
        Kind::Pool => &["lb_algorithm", "session_persistence"],
        Kind::Member { .. } => &["weight", "backup", "monitor_address", "monitor_port"],
    };
    if matches!(kind, Kind::SecurityGroupRule) {
        return key == "description";
    }
    COMMON.contains(&key) || specific.contains(&key)
}
