//! Router modes as Neutron's L3 plugins build them. Every port of a router
//! carries the router's id as `device_id`; its owner tells what it is:
//! - legacy: interfaces are `network:router_interface`;
//! - DVR: interfaces are `network:router_interface_distributed`, and a
//!   router with a gateway gets one `network:router_centralized_snat` port
//!   per interface subnet (on that subnet, of no project, removed with the
//!   interface);
//! - L3-HA: interfaces are `network:ha_router_replicated_interface`, and
//!   the router has `network:router_ha_interface` ports (one per L3 agent)
//!   on the project's HA network, which belongs to no project.
//!
//! A gateway adds a `network:router_gateway` port on the external network.
//! Ports other than interfaces go with the router when it is deleted.

use super::{State, conflict, not_found, rejected};
use crate::cloud::{CloudError, Kind};
use serde_json::{Value, json};

/// How new routers of the fake are built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RouterMode {
    #[default]
    Legacy,
    /// DVR (`distributed: true`).
    Distributed,
    /// L3-HA (`ha: true`) with two L3 agents.
    Ha,
}

/// neutron-lib `ROUTER_INTERFACE_OWNERS`.
pub(super) const INTERFACE_OWNERS: [&str; 3] = [
    "network:router_interface",
    "network:ha_router_replicated_interface",
    "network:router_interface_distributed",
];
const SNAT: &str = "network:router_centralized_snat";
const GATEWAY: &str = "network:router_gateway";
const HA_PORT: &str = "network:router_ha_interface";

/// neutron-lib `ROUTER_PORT_OWNERS`: ports the port API refuses to delete.
pub(super) fn is_router_port_owner(owner: &str) -> bool {
    INTERFACE_OWNERS.contains(&owner) || owner == SNAT || owner == GATEWAY
}

/// The owner of a new interface of `router`, from the router's own mode.
pub(super) fn interface_owner_of(router: &Value) -> &'static str {
    if router["ha"] == true {
        INTERFACE_OWNERS[1]
    } else if router["distributed"] == true {
        INTERFACE_OWNERS[2]
    } else {
        INTERFACE_OWNERS[0]
    }
}

impl State {
    /// A port owned by `owner` of router `router_id` on `network_id`;
    /// `subnet_id` picks the subnet its address comes from.
    fn router_port(
        &mut self,
        network_id: &str,
        subnet_id: Option<&str>,
        owner: &str,
        router_id: &str,
        project_id: &str,
    ) -> Result<String, CloudError> {
        let mut body = json!({
            "network_id": network_id,
            "device_owner": owner,
            "device_id": router_id,
        });
        if let Some(s) = subnet_id {
            body["fixed_ips"] = json!([{ "subnet_id": s }]);
        }
        let mut port = self.build(&Kind::Port, body)?;
        self.new_port(&Kind::Port, &mut port)?;
        port.insert("project_id".into(), json!(project_id));
        port.insert("tenant_id".into(), json!(project_id));
        port.insert("status".into(), json!("ACTIVE"));
        let id = port["id"].as_str().unwrap_or_default().to_owned();
        self.push(&Kind::Port, Value::Object(port));
        Ok(id)
    }

    /// Mode attributes and, for L3-HA, the router's HA ports.
    pub(super) fn new_router(
        &mut self,
        router: &mut serde_json::Map<String, Value>,
    ) -> Result<(), CloudError> {
        let mode = self.router_mode;
        router.insert("distributed".into(), json!(mode == RouterMode::Distributed));
        router.insert("ha".into(), json!(mode == RouterMode::Ha));
        if mode != RouterMode::Ha {
            return Ok(());
        }
        let router_id = router["id"].as_str().unwrap_or_default().to_owned();
        let name = format!("HA network tenant {}", self.project_id);
        let ha_net = match self
            .all(&Kind::Network)
            .iter()
            .find(|n| n["name"] == name.as_str())
        {
            Some(n) => n["id"].as_str().unwrap_or_default().to_owned(),
            None => {
                let net = self.create(&Kind::Network, json!({ "name": name }))?;
                let net_id = net["id"].as_str().unwrap_or_default().to_owned();
                self.create(
                    &Kind::Subnet,
                    json!({"name": format!("HA subnet tenant {}", self.project_id),
                           "network_id": net_id, "ip_version": 4, "cidr": "169.254.192.0/18",
                           "gateway_ip": null, "enable_dhcp": false,
                           "allocation_pools": [{"start": "169.254.192.1", "end": "169.254.255.254"}]}),
                )?;
                for kind in [Kind::Network, Kind::Subnet] {
                    if let Some(list) = self.store.get_mut(&kind) {
                        for v in list.iter_mut().filter(|v| {
                            v["network_id"] == net_id.as_str() || v["id"] == net_id.as_str()
                        }) {
                            v["project_id"] = json!("");
                            v["tenant_id"] = json!("");
                        }
                    }
                }
                net_id
            }
        };
        for _agent in 0..2 {
            self.router_port(&ha_net, None, HA_PORT, &router_id, "")?;
        }
        Ok(())
    }

    /// After an interface on `subnet_id` was added: DVR's SNAT port when the
    /// router has a gateway.
    pub(super) fn interface_added(
        &mut self,
        router_id: &str,
        subnet_id: &str,
    ) -> Result<(), CloudError> {
        let Some(router) = self.find(&Kind::Router, router_id).cloned() else {
            return Ok(());
        };
        if router["distributed"] != true || router["external_gateway_info"].is_null() {
            return Ok(());
        }
        let subnet = self
            .find(&Kind::Subnet, subnet_id)
            .cloned()
            .ok_or_else(|| not_found(&Kind::Subnet, subnet_id))?;
        let network_id = subnet["network_id"].as_str().unwrap_or_default().to_owned();
        // Neutron makes SNAT ports with no project (l3_dvr_db.py).
        self.router_port(&network_id, Some(subnet_id), SNAT, router_id, "")?;
        Ok(())
    }

    /// After an interface on `subnet_id` was removed: its SNAT port goes.
    pub(super) fn interface_removed(&mut self, router_id: &str, subnet_id: &str) {
        let snat: Vec<String> = self.port_ids(|p| {
            p["device_id"] == router_id
                && p["device_owner"] == SNAT
                && p["fixed_ips"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f["subnet_id"] == subnet_id))
        });
        for id in snat {
            self.remove(&Kind::Port, &id);
        }
    }

    /// After `external_gateway_info` changed: the gateway port, and DVR's
    /// SNAT ports for the interfaces the router already has.
    pub(super) fn gateway_changed(&mut self, router_id: &str) -> Result<(), CloudError> {
        let Some(router) = self.find(&Kind::Router, router_id).cloned() else {
            return Ok(());
        };
        for id in self.port_ids(|p| {
            p["device_id"] == router_id
                && (p["device_owner"] == GATEWAY || p["device_owner"] == SNAT)
        }) {
            self.remove(&Kind::Port, &id);
        }
        let Some(ext) = router["external_gateway_info"]["network_id"].as_str() else {
            return Ok(());
        };
        match self.find(&Kind::Network, ext) {
            Some(n) if n["router:external"] == true => {}
            Some(_) => {
                return Err(rejected(
                    "PUT",
                    &Kind::Router,
                    format!(
                        "Bad router request: Network {ext} is not an external network. (BadRequest)"
                    ),
                ));
            }
            None => return Err(not_found(&Kind::Network, ext)),
        }
        self.router_port(ext, None, GATEWAY, router_id, "")?;
        let subnets: Vec<String> = self
            .all(&Kind::Port)
            .iter()
            .filter(|p| {
                p["device_id"] == router_id
                    && INTERFACE_OWNERS.iter().any(|o| p["device_owner"] == *o)
            })
            .flat_map(|p| p["fixed_ips"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["subnet_id"].as_str().map(str::to_owned))
            .collect();
        for s in subnets {
            self.interface_added(router_id, &s)?;
        }
        Ok(())
    }

    /// When the router is deleted: its ports other than interfaces go too.
    pub(super) fn router_deleted(&mut self, router_id: &str) {
        for id in self.port_ids(|p| p["device_id"] == router_id) {
            self.remove(&Kind::Port, &id);
        }
    }

    /// `PUT /routers/{id}/add_router_interface` and `…/remove_router_interface`.
    pub(super) fn router_interface(
        &mut self,
        router_id: &str,
        subnet_id: &str,
        add: bool,
    ) -> Result<(), CloudError> {
        let router = &Kind::Router;
        if self.find(router, router_id).is_none() {
            return if add {
                Err(not_found(router, router_id))
            } else {
                Ok(())
            };
        }
        let is_iface = |p: &Value| {
            p["device_id"] == router_id && INTERFACE_OWNERS.iter().any(|o| p["device_owner"] == *o)
        };
        let on_subnet = |p: &Value| {
            p["fixed_ips"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["subnet_id"] == subnet_id))
        };
        if !add {
            // By subnet: drop that subnet's address; the port goes when empty.
            let Some(port) = self
                .all(&Kind::Port)
                .iter()
                .find(|p| is_iface(p) && on_subnet(p))
                .cloned()
            else {
                return Ok(());
            };
            let port_id = port["id"].as_str().unwrap_or_default().to_owned();
            let remaining: Vec<Value> = port["fixed_ips"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter(|f| f["subnet_id"] != subnet_id)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            self.interface_removed(router_id, subnet_id);
            if remaining.is_empty() {
                self.remove(&Kind::Port, &port_id);
            } else if let Some(p) = self.find_mut(&Kind::Port, &port_id) {
                p["fixed_ips"] = json!(remaining);
                let rev = p["revision_number"].as_u64().unwrap_or(0);
                p["revision_number"] = json!(rev + 1);
            }
            return Ok(());
        }
        let subnet = self
            .find(&Kind::Subnet, subnet_id)
            .cloned()
            .ok_or_else(|| not_found(&Kind::Subnet, subnet_id))?;
        let bad = |m: String| CloudError::Rejected {
            method: "PUT".into(),
            path: format!("/v2.0/routers/{router_id}/add_router_interface"),
            status: 400,
            message: m,
        };
        if self
            .all(&Kind::Port)
            .iter()
            .any(|p| is_iface(p) && on_subnet(p))
        {
            return Err(bad(format!(
                "Bad router request: Router already has a port on subnet {subnet_id}. (BadRequest)"
            )));
        }
        let Some(gateway) = subnet["gateway_ip"].as_str().map(str::to_owned) else {
            return Err(bad(
                "Bad router request: Subnet for router interface must have a gateway IP.".into(),
            ));
        };
        if self
            .used_ips(subnet_id)
            .contains(&gateway.parse().map_err(|_| bad("bad gateway".into()))?)
        {
            return Err(conflict(format!(
                "IP address {gateway} already allocated in subnet {subnet_id} (IpAddressAlreadyAllocated)"
            )));
        }
        let network_id = subnet["network_id"].as_str().unwrap_or_default().to_owned();
        let fixed = json!({"subnet_id": subnet_id, "ip_address": gateway});
        // Neutron puts IPv6 subnets of one network on one router port.
        if subnet["ip_version"] == 6
            && let Some(port) = self
                .all(&Kind::Port)
                .iter()
                .find(|p| {
                    is_iface(p)
                        && p["network_id"] == network_id.as_str()
                        && p["fixed_ips"].as_array().is_some_and(|f| {
                            f.iter()
                                .all(|f| f["ip_address"].as_str().is_some_and(|a| a.contains(':')))
                        })
                })
                .cloned()
        {
            let port_id = port["id"].as_str().unwrap_or_default().to_owned();
            if let Some(p) = self.find_mut(&Kind::Port, &port_id) {
                if let Some(f) = p["fixed_ips"].as_array_mut() {
                    f.push(fixed);
                }
                let rev = p["revision_number"].as_u64().unwrap_or(0);
                p["revision_number"] = json!(rev + 1);
            }
            return self.interface_added(router_id, subnet_id);
        }
        let mut port = self.build(
            &Kind::Port,
            json!({
                "network_id": network_id,
                "device_owner": interface_owner_of(&self.find(router, router_id).cloned().unwrap_or_default()),
                "device_id": router_id,
            }),
        )?;
        port.insert("fixed_ips".into(), json!([fixed]));
        port.insert("status".into(), json!("ACTIVE"));
        let n = self.next_id;
        port.insert(
            "mac_address".into(),
            json!(format!(
                "fa:16:3e:ff:{:02x}:{:02x}",
                (n >> 8) & 0xff,
                n & 0xff
            )),
        );
        self.push(&Kind::Port, Value::Object(port));
        self.interface_added(router_id, subnet_id)
    }

    /// Before `delete` removes router `id`: refused while in use, else
    /// what goes with it is removed too.
    pub(super) fn deleting_router(&mut self, id: &str) -> Result<(), CloudError> {
        let ports = self.port_ids(|p| {
            p["device_id"] == id && INTERFACE_OWNERS.iter().any(|o| p["device_owner"] == *o)
        });
        if !ports.is_empty() {
            return Err(conflict(format!(
                "Router {id} has ports still attached: {} (RouterInUse)",
                ports.join(", ")
            )));
        }
        self.router_deleted(id);
        Ok(())
    }
}
