//! Load balancers, listeners, pools and members: `PENDING_*` states that
//! settle on the next read, and a load balancer that refuses changes while
//! one of its objects is pending.

use super::addresses::*;
use super::{State, conflict, not_found, rejected};
use crate::cloud::{CloudError, Kind};
use serde_json::{Map, Value, json};

impl State {
    /// `GET /v2/lbaas/providers`, names only; no Octavia, no endpoint.
    pub(super) fn lb_providers(&self) -> Result<Vec<String>, CloudError> {
        if !self.services.contains(&crate::cloud::Service::LoadBalancer) {
            return Err(CloudError::NoEndpoint(
                crate::cloud::Service::LoadBalancer.catalog_type().into(),
            ));
        }
        Ok(self.lb_providers.clone())
    }

    /// The load balancer an Octavia object belongs to.
    pub(super) fn lb_of(&self, kind: &Kind, obj: &Value) -> Option<String> {
        match kind {
            Kind::LoadBalancer => obj["id"].as_str().map(str::to_owned),
            Kind::Listener | Kind::Pool => {
                obj["loadbalancers"][0]["id"].as_str().map(str::to_owned)
            }
            Kind::Member { pool_id } => self
                .find(&Kind::Pool, pool_id)
                .and_then(|p| p["loadbalancers"][0]["id"].as_str().map(str::to_owned)),
            _ => None,
        }
    }

    /// Octavia refuses changes while the load balancer is busy.
    pub(super) fn lb_must_be_active(&self, lb_id: &str) -> Result<(), CloudError> {
        let lb = self
            .find(&Kind::LoadBalancer, lb_id)
            .ok_or_else(|| not_found(&Kind::LoadBalancer, lb_id))?;
        if lb["provisioning_status"] != "ACTIVE" {
            return Err(conflict(format!(
                "Load Balancer {lb_id} is immutable and cannot be updated."
            )));
        }
        Ok(())
    }

    /// The id of pool `pool_id`'s load balancer, which must take changes now
    /// (a member's change needs both).
    pub(super) fn active_lb_of_pool(&self, pool_id: &str) -> Result<String, CloudError> {
        let pool = self
            .find(&Kind::Pool, pool_id)
            .ok_or_else(|| not_found(&Kind::Pool, pool_id))?;
        let lb_id = pool["loadbalancers"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.lb_must_be_active(&lb_id)?;
        Ok(lb_id)
    }

    pub(super) fn set_lb_status(&mut self, lb_id: &str, status: &str) {
        if let Some(lb) = self.find_mut(&Kind::LoadBalancer, lb_id) {
            lb["provisioning_status"] = json!(status);
        }
    }

    pub(super) fn new_lb(
        &mut self,
        kind: &Kind,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CloudError> {
        let subnet_id = Self::required(obj, kind, "vip_subnet_id")?;
        let subnet_id = subnet_id.as_str().unwrap_or_default().to_owned();
        let subnet = self
            .find(&Kind::Subnet, &subnet_id)
            .cloned()
            .ok_or_else(|| {
                rejected(
                    "POST",
                    kind,
                    format!("Validation failure: Subnet {subnet_id} not found."),
                )
            })?;
        // Octavia's API (`_get_provider`): a named provider must be enabled.
        let provider = obj["provider"].as_str().unwrap_or("amphora").to_owned();
        if !self.lb_providers.contains(&provider) {
            return Err(rejected(
                "POST",
                kind,
                format!("Provider '{provider}' is not enabled."),
            ));
        }
        let network_id = subnet["network_id"].as_str().unwrap_or_default().to_owned();
        let want = match obj.get("vip_address") {
            Some(v) if !v.is_null() => json!([{"subnet_id": subnet_id, "ip_address": v}]),
            _ => json!([{"subnet_id": subnet_id}]),
        };
        let fixed = self.fixed_ips(kind, &network_id, Some(&want))?;
        let vip = fixed[0]["ip_address"].clone();
        // A real amphora LB owns a Neutron port for its VIP: it takes the
        // address and keeps the network from being deleted.
        let lb_id = obj["id"].as_str().unwrap_or_default().to_owned();
        // The OVN provider makes its own VIP port (ovn_octavia_provider/
        // helper.py, `create_vip_port`), and has no amphora.
        let ovn = provider == "ovn";
        let (port_name, owner) = if ovn {
            (format!("ovn-lb-vip-{lb_id}"), "ovn-lb:vip")
        } else {
            (format!("octavia-lb-{lb_id}"), "Octavia")
        };
        let mut port = self.build(
            &Kind::Port,
            json!({
                "network_id": network_id,
                "name": port_name,
                "device_owner": owner,
                "device_id": format!("lb-{lb_id}"),
            }),
        )?;
        port.insert("fixed_ips".into(), fixed);
        port.insert("mac_address".into(), json!("fa:16:3e:00:00:01"));
        let port_id = port["id"].clone();
        self.push(&Kind::Port, Value::Object(port));
        if self.vrrp_ports && !ovn {
            self.new_vrrp_port(&network_id, &subnet_id, &vip)?;
        }
        obj.insert("vip_address".into(), vip);
        obj.insert("vip_network_id".into(), json!(network_id));
        obj.insert("vip_port_id".into(), port_id);
        Ok(())
    }

    /// The amphora's VRRP port (allowed_address_pairs.py, `_plug_amphora_vip`):
    /// an address of its own on the VIP subnet, the VIP as an allowed pair,
    /// attached by Nova to the amphora's server.
    fn new_vrrp_port(
        &mut self,
        network_id: &str,
        subnet_id: &str,
        vip: &Value,
    ) -> Result<(), CloudError> {
        let amphora = self.new_id();
        let want = json!([{ "subnet_id": subnet_id }]);
        let fixed = self.fixed_ips(&Kind::Port, network_id, Some(&want))?;
        let mut port = self.build(
            &Kind::Port,
            json!({
                "network_id": network_id,
                "name": format!("octavia-lb-vrrp-{amphora}"),
                "device_owner": "compute:nova",
                "device_id": amphora,
                "allowed_address_pairs": [{ "ip_address": vip }],
            }),
        )?;
        port.insert("fixed_ips".into(), fixed);
        self.push(&Kind::Port, Value::Object(port));
        Ok(())
    }

    /// Octavia's `deallocate_vip`: the VIP port and the amphorae's VRRP
    /// ports go with the load balancer.
    pub(super) fn remove_lb_ports(&mut self, lb: &Value) {
        if let Some(port) = lb["vip_port_id"].as_str() {
            self.remove(&Kind::Port, port);
        }
        let vip = lb["vip_address"].clone();
        for port in self.port_ids(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("octavia-lb-vrrp-"))
                && p["allowed_address_pairs"]
                    .as_array()
                    .is_some_and(|pairs| pairs.iter().any(|a| a["ip_address"] == vip))
        }) {
            self.remove(&Kind::Port, &port);
        }
    }

    /// The OVN provider's driver refuses protocols and algorithms it
    /// cannot balance (ovn_octavia_provider/driver.py,
    /// `_check_for_supported_protocols` / `_algorithms`), which Octavia's
    /// API answers with 501.
    fn provider_takes(
        &self,
        kind: &Kind,
        lb_id: &str,
        obj: &Map<String, Value>,
    ) -> Result<(), CloudError> {
        let on_ovn = self
            .find(&Kind::LoadBalancer, lb_id)
            .is_some_and(|lb| lb["provider"] == "ovn");
        if !on_ovn {
            return Ok(());
        }
        let refuse = |what: String| CloudError::Rejected {
            method: "POST".into(),
            path: kind.path(),
            status: 501,
            message: format!("Provider 'ovn' does not support a requested option: {what}"),
        };
        let protocol = obj["protocol"].as_str().unwrap_or_default();
        if !["TCP", "UDP", "SCTP"].contains(&protocol) {
            return Err(refuse(format!(
                "OVN provider does not support {protocol} protocol"
            )));
        }
        match obj.get("lb_algorithm").and_then(Value::as_str) {
            Some(a) if !["SOURCE_IP_PORT", "SOURCE_IP"].contains(&a) => Err(refuse(format!(
                "OVN provider does not support {a} algorithm"
            ))),
            _ => Ok(()),
        }
    }

    pub(super) fn new_listener(
        &mut self,
        kind: &Kind,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CloudError> {
        let lb_id = Self::required(obj, kind, "loadbalancer_id")?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Self::required(obj, kind, "protocol")?;
        let port = Self::required(obj, kind, "protocol_port")?;
        self.lb_must_be_active(&lb_id)?;
        self.provider_takes(kind, &lb_id, obj)?;
        if let Some(other) = self
            .all(&Kind::Listener)
            .iter()
            .find(|l| l["loadbalancers"][0]["id"] == lb_id.as_str() && l["protocol_port"] == port)
        {
            return Err(conflict(format!(
                "Another Listener on this Load Balancer is already using protocol {} and protocol_port {port}",
                other["protocol"].as_str().unwrap_or("?")
            )));
        }
        let id = obj["id"].clone();
        if let Some(pool_id) = obj["default_pool_id"].as_str().map(str::to_owned) {
            let pool = self.find_mut(&Kind::Pool, &pool_id).ok_or_else(|| {
                rejected(
                    "POST",
                    kind,
                    format!("Validation failure: Pool {pool_id} not found."),
                )
            })?;
            if pool["loadbalancers"][0]["id"] != lb_id.as_str() {
                return Err(rejected(
                    "POST",
                    kind,
                    format!("Validation failure: Pool {pool_id} is on another load balancer."),
                ));
            }
            if let Some(ls) = pool["listeners"].as_array_mut() {
                ls.push(json!({"id": id}));
            }
        }
        obj.remove("loadbalancer_id");
        obj.insert("loadbalancers".into(), json!([{"id": lb_id}]));
        if let Some(ls) = self
            .find_mut(&Kind::LoadBalancer, &lb_id)
            .and_then(|lb| lb["listeners"].as_array_mut())
        {
            ls.push(json!({"id": id}));
        }
        self.set_lb_status(&lb_id, "PENDING_UPDATE");
        Ok(())
    }

    pub(super) fn new_pool(
        &mut self,
        kind: &Kind,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CloudError> {
        Self::required(obj, kind, "protocol")?;
        Self::required(obj, kind, "lb_algorithm")?;
        let listener_id = obj
            .remove("listener_id")
            .and_then(|v| v.as_str().map(str::to_owned));
        let lb_id = match (
            obj.remove("loadbalancer_id")
                .and_then(|v| v.as_str().map(str::to_owned)),
            &listener_id,
        ) {
            (Some(lb), _) => lb,
            (None, Some(l)) => self
                .find(&Kind::Listener, l)
                .and_then(|l| l["loadbalancers"][0]["id"].as_str().map(str::to_owned))
                .ok_or_else(|| {
                    rejected(
                        "POST",
                        kind,
                        format!("Validation failure: Listener {l} not found."),
                    )
                })?,
            (None, None) => {
                return Err(rejected(
                    "POST",
                    kind,
                    "Validation failure: either listener_id or loadbalancer_id must be specified.",
                ));
            }
        };
        self.lb_must_be_active(&lb_id)?;
        self.provider_takes(kind, &lb_id, obj)?;
        let id = obj["id"].clone();
        obj.insert("loadbalancers".into(), json!([{"id": lb_id}]));
        obj.insert("members".into(), json!([]));
        obj.insert("listeners".into(), json!([]));
        if let Some(l) = listener_id {
            let listener = self
                .find_mut(&Kind::Listener, &l)
                .ok_or_else(|| not_found(&Kind::Listener, &l))?;
            if !listener["default_pool_id"].is_null() {
                return Err(conflict(format!("Listener {l} already has a default pool")));
            }
            listener["default_pool_id"] = id.clone();
            obj.insert("listeners".into(), json!([{"id": l}]));
        }
        if let Some(ps) = self
            .find_mut(&Kind::LoadBalancer, &lb_id)
            .and_then(|lb| lb["pools"].as_array_mut())
        {
            ps.push(json!({"id": id}));
        }
        self.set_lb_status(&lb_id, "PENDING_UPDATE");
        Ok(())
    }

    pub(super) fn new_member(
        &mut self,
        kind: &Kind,
        pool_id: &str,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CloudError> {
        let address = Self::required(obj, kind, "address")?;
        let port = Self::required(obj, kind, "protocol_port")?;
        // Octavia validates the address but stores it as sent (measured:
        // `fd10:0:0:1:0::10` comes back unchanged), and its duplicate check
        // compares that text.
        let address = address.as_str().unwrap_or_default().to_owned();
        if canon_ip(&address).is_none() {
            return Err(rejected(
                "POST",
                kind,
                "Invalid input for field/attribute address.",
            ));
        }
        let lb_id = self.active_lb_of_pool(pool_id)?;
        if let Some(s) = obj.get("subnet_id").filter(|s| !s.is_null())
            && !self.exists(&Kind::Subnet, s)
        {
            return Err(rejected(
                "POST",
                kind,
                format!(
                    "Validation failure: Subnet {} not found.",
                    s.as_str().unwrap_or("?")
                ),
            ));
        }
        if self
            .all(kind)
            .iter()
            .any(|m| m["address"] == address.as_str() && m["protocol_port"] == port)
        {
            return Err(conflict(format!(
                "Another member on this pool is already using ip {address} on protocol_port {port}"
            )));
        }
        obj.insert("address".into(), json!(address));
        let id = obj["id"].clone();
        if let Some(ms) = self
            .find_mut(&Kind::Pool, pool_id)
            .and_then(|p| p["members"].as_array_mut())
        {
            ms.push(json!({"id": id}));
        }
        self.set_lb_status(&lb_id, "PENDING_UPDATE");
        Ok(())
    }

    /// Completes pending Octavia work on the tree of `lb_id` (what the
    /// worker would have finished by the time anyone looks).
    pub(super) fn settle(&mut self, lb_id: &str) {
        let mut kinds = vec![Kind::LoadBalancer, Kind::Listener, Kind::Pool];
        kinds.extend(
            self.store
                .keys()
                .filter(|k| matches!(k, Kind::Member { .. }))
                .cloned(),
        );
        for kind in kinds {
            let members_lb = self.lb_of(&kind, &json!({}));
            let Some(list) = self.store.get_mut(&kind) else {
                continue;
            };
            for obj in list.iter_mut() {
                let owner = match &kind {
                    Kind::LoadBalancer => obj["id"].as_str().map(str::to_owned),
                    Kind::Member { .. } => members_lb.clone(),
                    _ => obj["loadbalancers"][0]["id"].as_str().map(str::to_owned),
                };
                if owner.as_deref() != Some(lb_id) {
                    continue;
                }
                if obj["provisioning_status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("PENDING"))
                {
                    obj["provisioning_status"] = json!("ACTIVE");
                    obj["operating_status"] = json!(match kind {
                        Kind::Member { .. } => "NO_MONITOR",
                        _ => "ONLINE",
                    });
                }
            }
        }
    }

    /// Before `delete` removes load balancer `id`: refused while in use, else
    /// what goes with it is removed too.
    pub(super) fn deleting_lb(
        &mut self,
        kind: &Kind,
        id: &str,
        obj: &Value,
    ) -> Result<(), CloudError> {
        self.lb_must_be_active(id)?;
        let has_children = obj["listeners"].as_array().is_some_and(|l| !l.is_empty())
            || obj["pools"].as_array().is_some_and(|p| !p.is_empty());
        if has_children {
            return Err(rejected(
                "DELETE",
                kind,
                format!("Validation failure: Cannot delete Load Balancer {id} - it has children"),
            ));
        }
        self.remove_lb_ports(obj);
        Ok(())
    }

    /// Before `delete` removes listener, pool or member `id`: refused while in use, else
    /// what goes with it is removed too.
    pub(super) fn deleting_lb_child(
        &mut self,
        kind: &Kind,
        id: &str,
        obj: &Value,
    ) -> Result<(), CloudError> {
        let lb = self.lb_of(kind, obj).unwrap_or_default();
        self.lb_must_be_active(&lb)?;
        let key = match kind {
            Kind::Listener => "listeners",
            Kind::Pool => "pools",
            _ => "",
        };
        if matches!(kind, Kind::Pool) {
            let members = Kind::Member {
                pool_id: id.to_owned(),
            };
            self.store.remove(&members);
            for l in self.store.entry(Kind::Listener).or_default() {
                if l["default_pool_id"] == id {
                    l["default_pool_id"] = Value::Null;
                }
            }
        }
        if matches!(kind, Kind::Listener)
            && let Some(pool) = obj["default_pool_id"].as_str().map(str::to_owned)
            && let Some(p) = self.find_mut(&Kind::Pool, &pool)
            && let Some(ls) = p["listeners"].as_array_mut()
        {
            ls.retain(|l| l["id"] != id);
        }
        if let Kind::Member { pool_id } = kind
            && let Some(p) = self.find_mut(&Kind::Pool, pool_id)
            && let Some(ms) = p["members"].as_array_mut()
        {
            ms.retain(|m| m["id"] != id);
        }
        if let Some(lbv) = self.find_mut(&Kind::LoadBalancer, &lb) {
            if let Some(list) = lbv.get_mut(key).and_then(Value::as_array_mut) {
                list.retain(|x| x["id"] != id);
            }
            lbv["provisioning_status"] = json!("PENDING_UPDATE");
        }
        Ok(())
    }
}
