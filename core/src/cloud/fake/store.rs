//! The generic half of the fake's state: ids, the store, building a
//! resource from its template, and the verbs (create, read, update, delete)
//! dispatching to the family files for what is particular to a kind.

use super::addresses::{parse_ip, parse_net};
use super::schema::{check_tags, creatable, template, updatable};
use super::{State, conflict, is_octavia, not_found, rejected, routers};
use crate::cloud::{CloudError, Kind, Query};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

impl State {
    pub(super) fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            0x6b79_7236u32, self.next_id
        )
    }

    pub(super) fn all(&self, kind: &Kind) -> &[Value] {
        self.store.get(kind).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(super) fn find(&self, kind: &Kind, id: &str) -> Option<&Value> {
        self.all(kind).iter().find(|v| v["id"] == id)
    }

    pub(super) fn find_mut(&mut self, kind: &Kind, id: &str) -> Option<&mut Value> {
        self.store.get_mut(kind)?.iter_mut().find(|v| v["id"] == id)
    }

    pub(super) fn remove(&mut self, kind: &Kind, id: &str) -> Option<Value> {
        let list = self.store.get_mut(kind)?;
        let i = list.iter().position(|v| v["id"] == id)?;
        Some(list.remove(i))
    }

    pub(super) fn push(&mut self, kind: &Kind, v: Value) {
        self.store.entry(kind.clone()).or_default().push(v);
    }

    pub(super) fn exists(&self, kind: &Kind, v: &Value) -> bool {
        v.as_str().is_some_and(|id| self.find(kind, id).is_some())
    }

    /// Fills the template, refusing unknown attributes and missing required
    /// ones. `computed` supplies required fields the API computes.
    pub(super) fn build(
        &mut self,
        kind: &Kind,
        body: Value,
    ) -> Result<Map<String, Value>, CloudError> {
        let Value::Object(body) = body else {
            return Err(rejected(
                "POST",
                kind,
                "The request body must be a JSON object",
            ));
        };
        let unknown: Vec<&str> = body
            .keys()
            .map(String::as_str)
            .filter(|k| !creatable(kind, k))
            .collect();
        if !unknown.is_empty() {
            return Err(rejected(
                "POST",
                kind,
                format!(
                    "Unrecognized attribute(s) '{}' (HTTPBadRequest)",
                    unknown.join(", ")
                ),
            ));
        }
        // Neutron 29's tag API takes tags on create for ports only (bulk
        // port creation); elsewhere it answers exactly this.
        if body.contains_key("tags") && !is_octavia(kind) && !matches!(kind, Kind::Port) {
            return Err(rejected(
                "POST",
                kind,
                "Attribute 'tags' not allowed in POST (HTTPBadRequest)",
            ));
        }
        if let Some(tags) = body.get("tags") {
            check_tags("POST", kind, tags)?;
        }
        let mut obj = Map::new();
        let id = self.new_id();
        obj.insert("id".into(), json!(id));
        for (key, default) in template(kind) {
            if let Some(v) = body.get(key) {
                obj.insert(key.into(), v.clone());
            } else if let Some(d) = default {
                obj.insert(key.into(), d);
            }
        }
        obj.insert("project_id".into(), json!(self.project_id));
        if !is_octavia(kind) {
            obj.insert("tenant_id".into(), json!(self.project_id));
            // As measured on Neutron 29: a new network shows 1, the rest 0.
            let first = if matches!(kind, Kind::Network) { 1 } else { 0 };
            obj.insert("revision_number".into(), json!(first));
        }
        obj.insert("created_at".into(), json!("2025-01-01T00:00:00Z"));
        obj.insert("updated_at".into(), json!("2025-01-01T00:00:00Z"));
        Ok(obj)
    }

    pub(super) fn required(
        obj: &Map<String, Value>,
        kind: &Kind,
        key: &str,
    ) -> Result<Value, CloudError> {
        match obj.get(key) {
            Some(v) if !v.is_null() => Ok(v.clone()),
            _ => Err(rejected(
                "POST",
                kind,
                format!(
                    "Failed to parse request. Required attribute '{key}' not specified (HTTPBadRequest)"
                ),
            )),
        }
    }

    // --------------------------------------------------------- create ---

    pub(super) fn create(&mut self, kind: &Kind, body: Value) -> Result<Value, CloudError> {
        let mut obj = self.build(kind, body)?;
        match kind {
            Kind::Network => {}
            Kind::Router => self.new_router(&mut obj)?,
            Kind::Subnet => self.new_subnet(kind, &mut obj)?,
            Kind::SecurityGroup => {
                obj.insert("security_group_rules".into(), json!([]));
                let id = obj["id"].as_str().unwrap_or_default().to_owned();
                self.push(kind, Value::Object(obj));
                // Neutron's default templates: egress to anywhere, both families.
                for ethertype in ["IPv4", "IPv6"] {
                    let rule = json!({
                        "security_group_id": id,
                        "direction": "egress",
                        "ethertype": ethertype,
                    });
                    let built = self.build(&Kind::SecurityGroupRule, rule)?;
                    let built = self.new_rule(built)?;
                    self.push(&Kind::SecurityGroupRule, Value::Object(built));
                }
                let out = self.render(kind, &id);
                return out.ok_or_else(|| not_found(kind, &id));
            }
            Kind::SecurityGroupRule => obj = self.new_rule(obj)?,
            Kind::Port => self.new_port(kind, &mut obj)?,
            Kind::LoadBalancer => self.new_lb(kind, &mut obj)?,
            Kind::Listener => self.new_listener(kind, &mut obj)?,
            Kind::Pool => self.new_pool(kind, &mut obj)?,
            Kind::Member { pool_id } => self.new_member(kind, pool_id, &mut obj)?,
        }
        if is_octavia(kind) {
            obj.insert("provisioning_status".into(), json!("PENDING_CREATE"));
            obj.insert("operating_status".into(), json!("OFFLINE"));
        }
        let id = obj["id"].as_str().unwrap_or_default().to_owned();
        self.push(kind, Value::Object(obj));
        self.render(kind, &id).ok_or_else(|| not_found(kind, &id))
    }

    // ------------------------------------------------------------ read ---

    /// The resource as the API shows it (security groups embed their rules).
    pub(super) fn render(&self, kind: &Kind, id: &str) -> Option<Value> {
        let mut v = self.find(kind, id)?.clone();
        if matches!(kind, Kind::SecurityGroup) {
            let rules: Vec<Value> = self
                .all(&Kind::SecurityGroupRule)
                .iter()
                .filter(|r| r["security_group_id"] == id)
                .cloned()
                .collect();
            v["security_group_rules"] = json!(rules);
        }
        Some(v)
    }

    pub(super) fn list(&self, kind: &Kind, query: &Query) -> Result<Vec<Value>, CloudError> {
        let known: HashSet<&str> = template(kind)
            .iter()
            .map(|(k, _)| *k)
            .chain(["id"])
            .collect();
        let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
        for (k, v) in query {
            match k.as_str() {
                "fields" | "limit" | "marker" | "sort_key" | "sort_dir" | "page_reverse" => {}
                "tags" | "tags-any" | "not-tags" | "not-tags-any" if kind.taggable() => {
                    filters.entry(k.as_str()).or_default().push(v)
                }
                key if known.contains(key) => filters.entry(key).or_default().push(v),
                key => {
                    return Err(CloudError::Rejected {
                        method: "GET".into(),
                        path: kind.path(),
                        status: 400,
                        message: format!(
                            "['{key}'] is invalid attribute for filtering (HTTPBadRequest)"
                        ),
                    });
                }
            }
        }
        let ids: Vec<String> = self
            .all(kind)
            .iter()
            .filter(|obj| filters.iter().all(|(k, vs)| matches_filter(obj, k, vs)))
            .filter_map(|o| o["id"].as_str().map(str::to_owned))
            .collect();
        Ok(ids.iter().filter_map(|id| self.render(kind, id)).collect())
    }

    // ---------------------------------------------------------- update ---

    pub(super) fn update(
        &mut self,
        kind: &Kind,
        id: &str,
        body: Value,
    ) -> Result<Value, CloudError> {
        let Value::Object(body) = body else {
            return Err(rejected(
                "PUT",
                kind,
                "The request body must be a JSON object",
            ));
        };
        let current = self
            .find(kind, id)
            .cloned()
            .ok_or_else(|| not_found(kind, id))?;
        for key in body.keys() {
            if !updatable(kind, key) {
                return Err(rejected(
                    "PUT",
                    kind,
                    format!("Cannot update read-only attribute {key} (HTTPBadRequest)"),
                ));
            }
        }
        if let Some(tags) = body.get("tags") {
            check_tags("PUT", kind, tags)?;
        }
        let lb = if is_octavia(kind) {
            let lb = self.lb_of(kind, &current).unwrap_or_default();
            self.lb_must_be_active(&lb)?;
            Some(lb)
        } else {
            None
        };
        let mut next = current.clone();
        for (k, v) in &body {
            next[k] = v.clone();
        }
        match kind {
            Kind::Subnet => {
                let net = parse_net(&next["cidr"])
                    .ok_or_else(|| rejected("PUT", kind, "stored cidr is invalid"))?;
                let gateway =
                    match &next["gateway_ip"] {
                        Value::Null => None,
                        v => Some(parse_ip(v).ok_or_else(|| {
                            rejected("PUT", kind, "Invalid input for gateway_ip.")
                        })?),
                    };
                next["gateway_ip"] = json!(gateway.map(|g| g.to_string()));
                next["allocation_pools"] =
                    Self::check_pools("PUT", kind, &net, gateway, &next["allocation_pools"])?;
            }
            Kind::Port if body.contains_key("fixed_ips") => {
                let network_id = next["network_id"].as_str().unwrap_or_default().to_owned();
                // Addresses the port keeps are not "in use" by someone else.
                let saved = self.remove(kind, id);
                let fixed = self.fixed_ips(kind, &network_id, Some(&body["fixed_ips"]));
                if let Some(saved) = saved {
                    self.push(kind, saved);
                }
                next["fixed_ips"] = fixed?;
            }
            _ => {}
        }
        if let Some(n) = next.get("revision_number").and_then(Value::as_u64) {
            next["revision_number"] = json!(n + 1);
        }
        if is_octavia(kind) {
            next["provisioning_status"] = json!("PENDING_UPDATE");
        }
        if let Some(slot) = self.find_mut(kind, id) {
            *slot = next;
        }
        if matches!(kind, Kind::Router) && body.contains_key("external_gateway_info") {
            self.gateway_changed(id)?;
        }
        if let Some(lb) = lb {
            self.set_lb_status(&lb, "PENDING_UPDATE");
        }
        self.render(kind, id).ok_or_else(|| not_found(kind, id))
    }

    // ---------------------------------------------------------- delete ---

    pub(super) fn port_ids(&self, pick: impl Fn(&Value) -> bool) -> Vec<String> {
        self.all(&Kind::Port)
            .iter()
            .filter(|p| pick(p))
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect()
    }

    pub(super) fn delete(&mut self, kind: &Kind, id: &str) -> Result<(), CloudError> {
        let Some(obj) = self.find(kind, id).cloned() else {
            return Ok(());
        };
        match kind {
            Kind::Network => {
                let ports = self.port_ids(|p| p["network_id"] == id);
                if !ports.is_empty() {
                    return Err(conflict(format!(
                        "Unable to complete operation on network {id}. There are one or more ports still in use on the network, id for these ports is: {}. (NetworkInUse)",
                        ports.join(",")
                    )));
                }
                // Neutron deletes the network's subnets with it.
                let subnets: Vec<String> = self
                    .all(&Kind::Subnet)
                    .iter()
                    .filter(|s| s["network_id"] == id)
                    .filter_map(|s| s["id"].as_str().map(str::to_owned))
                    .collect();
                for s in subnets {
                    self.remove(&Kind::Subnet, &s);
                }
            }
            Kind::Subnet => {
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
            }
            Kind::Router => {
                let ports = self.port_ids(|p| {
                    p["device_id"] == id
                        && routers::INTERFACE_OWNERS
                            .iter()
                            .any(|o| p["device_owner"] == *o)
                });
                if !ports.is_empty() {
                    return Err(conflict(format!(
                        "Router {id} has ports still attached: {} (RouterInUse)",
                        ports.join(", ")
                    )));
                }
                self.router_deleted(id);
            }
            Kind::SecurityGroup => {
                if self.all(&Kind::Port).iter().any(|p| {
                    p["security_groups"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s == id))
                }) {
                    return Err(conflict(format!(
                        "Security Group {id} in use. (SecurityGroupInUse)"
                    )));
                }
                let rules: Vec<String> = self
                    .all(&Kind::SecurityGroupRule)
                    .iter()
                    .filter(|r| r["security_group_id"] == id)
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect();
                for r in rules {
                    self.remove(&Kind::SecurityGroupRule, &r);
                }
            }
            Kind::Port => {
                let owner = obj["device_owner"].as_str().unwrap_or_default();
                let of_router = obj["device_id"]
                    .as_str()
                    .is_some_and(|r| self.find(&Kind::Router, r).is_some());
                if (of_router && routers::is_router_port_owner(owner)) || owner == "Octavia" {
                    return Err(conflict(format!(
                        "Port {id} cannot be deleted directly via the port API: has device owner {owner}. (ServicePortInUse)"
                    )));
                }
            }
            Kind::LoadBalancer => {
                self.lb_must_be_active(id)?;
                let has_children = obj["listeners"].as_array().is_some_and(|l| !l.is_empty())
                    || obj["pools"].as_array().is_some_and(|p| !p.is_empty());
                if has_children {
                    return Err(rejected(
                        "DELETE",
                        kind,
                        format!(
                            "Validation failure: Cannot delete Load Balancer {id} - it has children"
                        ),
                    ));
                }
                if let Some(port) = obj["vip_port_id"].as_str() {
                    self.remove(&Kind::Port, port);
                }
            }
            Kind::Listener | Kind::Pool | Kind::Member { .. } => {
                let lb = self.lb_of(kind, &obj).unwrap_or_default();
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
            }
            Kind::SecurityGroupRule => {}
        }
        self.remove(kind, id);
        Ok(())
    }
}

/// One filter key against one object; repeated values mean "any of".
fn matches_filter(obj: &Value, key: &str, values: &[&str]) -> bool {
    let tags: HashSet<&str> = obj["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let split = || {
        values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|t| !t.is_empty())
    };
    match key {
        "tags" => split().all(|t| tags.contains(t)),
        "tags-any" => split().any(|t| tags.contains(t)),
        "not-tags" => !split().all(|t| tags.contains(t)),
        "not-tags-any" => !split().any(|t| tags.contains(t)),
        "fixed_ips" => values.iter().all(|v| {
            let (k, want) = v.split_once('=').unwrap_or(("", v));
            obj["fixed_ips"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| value_matches(&f[k], want)))
        }),
        _ => values.iter().any(|want| value_matches(&obj[key], want)),
    }
}

/// Equality as Neutron's query parsing sees it: booleans in any case,
/// numbers as text, addresses as values.
fn value_matches(v: &Value, want: &str) -> bool {
    match v {
        Value::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == want,
        Value::String(s) => {
            s == want
                || matches!((s.parse::<IpAddr>(), want.parse::<IpAddr>()), (Ok(a), Ok(b)) if a == b)
                || matches!((s.parse::<IpNet>(), want.parse::<IpNet>()), (Ok(a), Ok(b)) if a == b)
        }
        Value::Null => want.is_empty() || want.eq_ignore_ascii_case("none"),
        _ => false,
    }
}
