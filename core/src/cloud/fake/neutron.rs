//! Networks, subnets and ports: gateway and pool checks, address
//! allocation, fixed IPs, and what a delete of each refuses while in use.

use super::addresses::*;
use super::{State, conflict, not_found, rejected};
use crate::cloud::{CloudError, Kind};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::net::IpAddr;

impl State {
    pub(super) fn new_subnet(
        &mut self,
        kind: &Kind,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CloudError> {
        let network_id = Self::required(obj, kind, "network_id")?;
        if !self.exists(&Kind::Network, &network_id) {
            return Err(CloudError::NotFound {
                what: format!("network {}", network_id.as_str().unwrap_or("?")),
            });
        }
        let version = Self::required(obj, kind, "ip_version")?;
        let version = match version.as_u64() {
            Some(v @ (4 | 6)) => v,
            _ => {
                return Err(rejected(
                    "POST",
                    kind,
                    "Invalid input for ip_version. Reason: must be 4 or 6.",
                ));
            }
        };
        let cidr_text = Self::required(obj, kind, "cidr")?;
        let net = parse_net(&cidr_text).ok_or_else(|| {
            rejected(
                "POST",
                kind,
                format!(
                    "Invalid input for cidr. Reason: '{}' is not a valid IP subnet.",
                    cidr_text.as_str().unwrap_or("?")
                ),
            )
        })?;
        // Neutron 29 accepts host bits and stores the network (measured).
        let net = net.trunc();
        let family = if net.addr().is_ipv4() { 4 } else { 6 };
        if family != version {
            return Err(rejected(
                "POST",
                kind,
                format!(
                    "Invalid input for operation: Cannot use IPv{family} cidr {net} with ip_version {version}."
                ),
            ));
        }
        for other in self.all(&Kind::Subnet) {
            if other["network_id"] == network_id
                && let Some(o) = parse_net(&other["cidr"])
                && (o.contains(&net.network()) || net.contains(&o.network()))
            {
                return Err(rejected(
                    "POST",
                    kind,
                    format!(
                        "Invalid input for operation: Requested subnet with cidr: {net} for network: {} overlaps with another subnet. (InvalidInput)",
                        network_id.as_str().unwrap_or("?")
                    ),
                ));
            }
        }
        obj.insert("cidr".into(), json!(net.to_string()));
        // Neutron 29's default gateway: first host for IPv4, the
        // subnet-router anycast address (the network address) for IPv6.
        let gateway = match obj.get("gateway_ip") {
            None => Some(match net {
                IpNet::V4(_) => ip_add(net.network(), 1).unwrap_or(net.network()),
                IpNet::V6(_) => net.network(),
            }),
            Some(Value::Null) => None,
            Some(v) => Some(parse_ip(v).ok_or_else(|| {
                rejected(
                    "POST",
                    kind,
                    "Invalid input for gateway_ip. Reason: not a valid IP address.",
                )
            })?),
        };
        obj.insert("gateway_ip".into(), json!(gateway.map(|g| g.to_string())));
        if !obj.contains_key("allocation_pools") || obj["allocation_pools"].is_null() {
            let pools: Vec<Value> = default_pools(&net, gateway)
                .iter()
                .map(|(s, e)| json!({"start": s.to_string(), "end": e.to_string()}))
                .collect();
            obj.insert("allocation_pools".into(), json!(pools));
        }
        let pools = Self::check_pools("POST", kind, &net, gateway, &obj["allocation_pools"])?;
        obj.insert("allocation_pools".into(), pools);
        let id = obj["id"].clone();
        if let Some(n) = network_id
            .as_str()
            .and_then(|n| self.find_mut(&Kind::Network, n))
            && let Some(subnets) = n["subnets"].as_array_mut()
        {
            subnets.push(id);
        }
        Ok(())
    }

    /// Validates pools like Neutron and returns them canonical.
    pub(super) fn check_pools(
        method: &str,
        kind: &Kind,
        net: &IpNet,
        gateway: Option<IpAddr>,
        pools: &Value,
    ) -> Result<Value, CloudError> {
        let Some(list) = pools.as_array() else {
            return Err(rejected(
                method,
                kind,
                "Invalid input for allocation_pools. Reason: must be a list.",
            ));
        };
        let mut parsed: Vec<Pool> = Vec::new();
        for p in list {
            let (Some(s), Some(e)) = (
                p.get("start").and_then(parse_ip),
                p.get("end").and_then(parse_ip),
            ) else {
                return Err(rejected(
                    method,
                    kind,
                    format!("The allocation pool {p} is not valid."),
                ));
            };
            if s.is_ipv4() != net.addr().is_ipv4() || s > e {
                return Err(rejected(
                    method,
                    kind,
                    format!("The allocation pool {} is not valid.", pool_text(&(s, e))),
                ));
            }
            if !net.contains(&s) || !net.contains(&e) {
                return Err(rejected(
                    method,
                    kind,
                    format!(
                        "The allocation pool {} spans beyond the subnet cidr {net}. (OutOfBoundsAllocationPool)",
                        pool_text(&(s, e))
                    ),
                ));
            }
            parsed.push((s, e));
        }
        for (i, a) in parsed.iter().enumerate() {
            for b in &parsed[i + 1..] {
                if a.0 <= b.1 && b.0 <= a.1 {
                    return Err(rejected(
                        method,
                        kind,
                        format!(
                            "Found overlapping allocation pools: {} {} for subnet {net}.",
                            pool_text(a),
                            pool_text(b)
                        ),
                    ));
                }
            }
        }
        if let Some(g) = gateway
            && let Some(p) = parsed.iter().find(|p| g >= p.0 && g <= p.1)
        {
            return Err(conflict(format!(
                "Gateway ip {g} conflicts with allocation pool {}. (GatewayConflictWithAllocationPools)",
                pool_text(p)
            )));
        }
        Ok(json!(
            parsed
                .iter()
                .map(|(s, e)| json!({"start": s.to_string(), "end": e.to_string()}))
                .collect::<Vec<_>>()
        ))
    }

    /// Addresses in use on a subnet (ports' fixed IPs).
    pub(super) fn used_ips(&self, subnet_id: &str) -> HashSet<IpAddr> {
        self.all(&Kind::Port)
            .iter()
            .flat_map(|p| p["fixed_ips"].as_array().cloned().unwrap_or_default())
            .filter(|f| f["subnet_id"] == subnet_id)
            .filter_map(|f| parse_ip(&f["ip_address"]))
            .collect()
    }

    /// The lowest free address of the subnet's pools.
    pub(super) fn allocate(&self, subnet: &Value) -> Option<IpAddr> {
        let used = self.used_ips(subnet["id"].as_str().unwrap_or_default());
        for (start, end) in pools_of(subnet) {
            let mut ip = start;
            loop {
                if !used.contains(&ip) {
                    return Some(ip);
                }
                if ip >= end {
                    break;
                }
                ip = ip_add(ip, 1)?;
            }
        }
        None
    }

    /// Resolves requested fixed IPs (or one per subnet of the network when
    /// none are asked for) into canonical `{subnet_id, ip_address}`.
    pub(super) fn fixed_ips(
        &self,
        kind: &Kind,
        network_id: &str,
        requested: Option<&Value>,
    ) -> Result<Value, CloudError> {
        let subnets: Vec<Value> = self
            .all(&Kind::Subnet)
            .iter()
            .filter(|s| s["network_id"] == network_id)
            .cloned()
            .collect();
        let wanted: Vec<Value> = match requested {
            Some(Value::Array(list)) => list.clone(),
            Some(Value::Null) | None => {
                // One address per family, first subnet of each.
                let mut seen = HashSet::new();
                subnets
                    .iter()
                    .filter(|s| seen.insert(s["ip_version"].clone()))
                    .map(|s| json!({"subnet_id": s["id"]}))
                    .collect()
            }
            Some(_) => {
                return Err(rejected(
                    "POST",
                    kind,
                    "Invalid input for fixed_ips. Reason: must be a list.",
                ));
            }
        };
        let mut out = Vec::new();
        let mut taken: HashSet<(String, IpAddr)> = HashSet::new();
        for want in wanted {
            let subnet = match (want.get("subnet_id"), want.get("ip_address").and_then(parse_ip)) {
                (Some(id), _) => subnets.iter().find(|s| &s["id"] == id).cloned().ok_or_else(|| {
                    rejected("POST", kind, format!("Invalid input for operation: Failed to create port on network {network_id}, because fixed_ips included invalid subnet {}.", id.as_str().unwrap_or("?")))
                })?,
                (None, Some(ip)) => subnets
                    .iter()
                    .find(|s| parse_net(&s["cidr"]).is_some_and(|n| n.contains(&ip)))
                    .cloned()
                    .ok_or_else(|| rejected("POST", kind, format!("IP address {ip} is not a valid IP for the specified subnet.")))?,
                (None, None) => return Err(rejected("POST", kind, "Invalid input for fixed_ips: need subnet_id or ip_address.")),
            };
            let subnet_id = subnet["id"].as_str().unwrap_or_default().to_owned();
            let ip = match want.get("ip_address") {
                Some(v) if !v.is_null() => {
                    let ip = parse_ip(v)
                        .ok_or_else(|| rejected("POST", kind, "Invalid input for ip_address."))?;
                    if !parse_net(&subnet["cidr"]).is_some_and(|n| n.contains(&ip)) {
                        return Err(rejected(
                            "POST",
                            kind,
                            format!("IP address {ip} is not a valid IP for the specified subnet."),
                        ));
                    }
                    if self.used_ips(&subnet_id).contains(&ip)
                        || taken.contains(&(subnet_id.clone(), ip))
                    {
                        return Err(conflict(format!(
                            "IP address {ip} already allocated in subnet {subnet_id} (IpAddressAlreadyAllocated)"
                        )));
                    }
                    ip
                }
                _ => self.allocate(&subnet).ok_or_else(|| {
                    conflict(format!(
                        "No more IP addresses available on network {network_id}."
                    ))
                })?,
            };
            taken.insert((subnet_id.clone(), ip));
            out.push(json!({"subnet_id": subnet_id, "ip_address": ip.to_string()}));
        }
        Ok(json!(out))
    }

    pub(super) fn new_port(
        &mut self,
        kind: &Kind,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CloudError> {
        let network_id = Self::required(obj, kind, "network_id")?;
        let network_id = network_id.as_str().unwrap_or_default().to_owned();
        if self.find(&Kind::Network, &network_id).is_none() {
            return Err(not_found(&Kind::Network, &network_id));
        }
        let fixed = self.fixed_ips(kind, &network_id, obj.get("fixed_ips"))?;
        obj.insert("fixed_ips".into(), fixed);
        if let Some(sgs) = obj["security_groups"].as_array() {
            for sg in sgs {
                if !self.exists(&Kind::SecurityGroup, sg) {
                    return Err(CloudError::NotFound {
                        what: format!("security_group {}", sg.as_str().unwrap_or("?")),
                    });
                }
            }
        }
        if !obj.contains_key("mac_address") || obj["mac_address"].is_null() {
            let n = self.next_id;
            obj.insert(
                "mac_address".into(),
                json!(format!(
                    "fa:16:3e:{:02x}:{:02x}:{:02x}",
                    (n >> 16) & 0xff,
                    (n >> 8) & 0xff,
                    n & 0xff
                )),
            );
        }
        Ok(())
    }

    /// A subnet update (`next`, body merged in): the gateway and pools checked again.
    pub(super) fn subnet_updated(kind: &Kind, next: &mut Value) -> Result<(), CloudError> {
        let net = parse_net(&next["cidr"])
            .ok_or_else(|| rejected("PUT", kind, "stored cidr is invalid"))?;
        let gateway = match &next["gateway_ip"] {
            Value::Null => None,
            v => Some(
                parse_ip(v)
                    .ok_or_else(|| rejected("PUT", kind, "Invalid input for gateway_ip."))?,
            ),
        };
        next["gateway_ip"] = json!(gateway.map(|g| g.to_string()));
        next["allocation_pools"] =
            Self::check_pools("PUT", kind, &net, gateway, &next["allocation_pools"])?;
        Ok(())
    }

    /// A port update that sends `fixed_ips`: the addresses allocated again.
    pub(super) fn port_updated(
        &mut self,
        kind: &Kind,
        id: &str,
        next: &mut Value,
        fixed_ips: &Value,
    ) -> Result<(), CloudError> {
        let network_id = next["network_id"].as_str().unwrap_or_default().to_owned();
        // Addresses the port keeps are not "in use" by someone else.
        let saved = self.remove(kind, id);
        let fixed = self.fixed_ips(kind, &network_id, Some(fixed_ips));
        if let Some(saved) = saved {
            self.push(kind, saved);
        }
        next["fixed_ips"] = fixed?;
        Ok(())
    }

    /// ML2/OVN's metadata port of a new network (no address: the
    /// pipeline's IPv6 subnets have DHCP off).
    pub(super) fn new_metadata_port(&mut self, network_id: &str) -> Result<(), CloudError> {
        let port = self.build(
            &Kind::Port,
            json!({
                "network_id": network_id,
                "name": "",
                "device_owner": "network:distributed",
                "device_id": format!("ovnmeta-{network_id}"),
            }),
        )?;
        self.push(&Kind::Port, Value::Object(port));
        Ok(())
    }

    /// Before `delete` removes network `id`: refused while in use, else
    /// what goes with it is removed too.
    pub(super) fn deleting_network(&mut self, id: &str) -> Result<(), CloudError> {
        let ports = self.port_ids(|p| p["network_id"] == id && !is_auto_deleted(p));
        if !ports.is_empty() {
            return Err(conflict(format!(
                "Unable to complete operation on network {id}. There are one or more ports still in use on the network, id for these ports is: {}. (NetworkInUse)",
                ports.join(",")
            )));
        }
        // Neutron deletes its own service ports and the network's subnets
        // with it.
        for port in self.port_ids(|p| p["network_id"] == id) {
            self.remove(&Kind::Port, &port);
        }
        let subnets: Vec<String> = self
            .all(&Kind::Subnet)
            .iter()
            .filter(|s| s["network_id"] == id)
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect();
        for s in subnets {
            self.remove(&Kind::Subnet, &s);
        }
        Ok(())
    }

    /// Before `delete` removes subnet `id`: refused while in use, else
    /// what goes with it is removed too.
    pub(super) fn deleting_subnet(&mut self, id: &str, obj: &Value) -> Result<(), CloudError> {
        if !self.used_ips(id).is_empty() {
            return Err(conflict(format!(
                "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet. (SubnetInUse)"
            )));
        }
        if let Some(n) = obj["network_id"].as_str().map(str::to_owned)
            && let Some(net) = self.find_mut(&Kind::Network, &n)
            && let Some(list) = net["subnets"].as_array_mut()
        {
            list.retain(|s| s != id);
        }
        Ok(())
    }

    /// Before `delete` removes port `id`: refused while in use, else
    /// what goes with it is removed too.
    pub(super) fn deleting_port(&self, id: &str, obj: &Value) -> Result<(), CloudError> {
        let owner = obj["device_owner"].as_str().unwrap_or_default();
        let of_router = obj["device_id"]
            .as_str()
            .is_some_and(|r| self.find(&Kind::Router, r).is_some());
        if (of_router && super::routers::is_router_port_owner(owner)) || owner == "Octavia" {
            return Err(conflict(format!(
                "Port {id} cannot be deleted directly via the port API: has device owner {owner}. (ServicePortInUse)"
            )));
        }
        Ok(())
    }
}

/// neutron-lib `AUTO_DELETE_PORT_OWNERS`: Neutron deletes these ports with
/// their network (`_ensure_network_not_in_use` ignores them).
fn is_auto_deleted(port: &Value) -> bool {
    matches!(
        port["device_owner"].as_str(),
        Some("network:dhcp" | "network:distributed" | "network:floatingip_agent_gateway")
    )
}
