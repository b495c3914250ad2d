//! The generic half of the fake's state: ids, the store, building a
//! resource from its template, and the verbs (create, read, update, delete)
//! dispatching to the family files for what is particular to a kind.

use super::schema::{check_tags, creatable, template, updatable};
use super::{State, is_octavia, not_found, rejected};
use crate::cloud::{CloudError, Kind, Query};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

impl State {
    pub(super) fn new_id(&mut self) -> String {
        self.next_id += 1;
        let n = if self.ids_count_down {
            0xffff_ffff_ffff - self.next_id
        } else {
            self.next_id
        };
        format!("{:08x}-0000-4000-8000-{n:012x}", 0x6b79_7236u32)
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

    /// A POST: a load balancer may carry its tree (`octavia_batch`).
    pub(super) fn create(&mut self, kind: &Kind, body: Value) -> Result<Value, CloudError> {
        match kind {
            Kind::LoadBalancer => self.create_lb_graph(body),
            _ => self.create_one(kind, body),
        }
    }

    /// One resource from its create body.
    pub(super) fn create_one(&mut self, kind: &Kind, body: Value) -> Result<Value, CloudError> {
        let mut obj = self.build(kind, body)?;
        match kind {
            Kind::Network => {}
            Kind::Router => self.new_router(&mut obj)?,
            Kind::Subnet => self.new_subnet(kind, &mut obj)?,
            Kind::SecurityGroup => return self.new_security_group(kind, obj),
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
        if *kind == Kind::Network && self.ovn_metadata {
            self.new_metadata_port(&id)?;
        }
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

    /// Neutron's `If-Match: revision_number=N` check (its revision plugin
    /// answers 412 when the resource moved on).
    pub(super) fn revision_is(
        &self,
        kind: &Kind,
        id: &str,
        revision: u64,
    ) -> Result<(), CloudError> {
        let current = self.find(kind, id).ok_or_else(|| not_found(kind, id))?;
        match current["revision_number"].as_u64() {
            Some(n) if n == revision => Ok(()),
            _ => Err(CloudError::RevisionChanged {
                what: format!("{kind} {id}"),
            }),
        }
    }

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
            Kind::Subnet => Self::subnet_updated(kind, &mut next)?,
            Kind::Port if body.contains_key("fixed_ips") => {
                self.port_updated(kind, id, &mut next, &body["fixed_ips"])?
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
            Kind::Network => self.deleting_network(id)?,
            Kind::Subnet => self.deleting_subnet(id, &obj)?,
            Kind::Router => self.deleting_router(id)?,
            Kind::SecurityGroup => self.deleting_security_group(id)?,
            Kind::Port => self.deleting_port(id, &obj)?,
            Kind::LoadBalancer => self.deleting_lb(kind, id, &obj)?,
            Kind::Listener | Kind::Pool | Kind::Member { .. } => {
                self.deleting_lb_child(kind, id, &obj)?
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
