//! Octavia's one-call operations, written from Octavia's API controllers:
//!
//! - the fully populated create (`_graph_create` in
//!   `octavia/api/v2/controllers/load_balancer.py`): one POST carries the
//!   load balancer's `listeners` and `pools` (a listener's full
//!   `default_pool` is moved to the top, a pool named alone is a reference;
//!   pools must be named and unique), pools are made before listeners, and
//!   all of it is one transaction: any refusal leaves nothing behind;
//! - the cascade delete (`delete(id, cascade)` there): the load balancer
//!   with every child;
//! - the batch member update (`MembersController.put` in `member.py`):
//!   members matched with the pool's by address and port; new ones made,
//!   matched ones updated, the others deleted unless `additive_only`.

use super::{State, rejected};
use crate::cloud::{CloudError, Kind};
use serde_json::{Map, Value, json};

/// Octavia's 400 for a fully populated create it refuses.
fn invalid(message: impl Into<String>) -> CloudError {
    rejected(
        "POST",
        &Kind::LoadBalancer,
        format!("Validation failure: {}", message.into()),
    )
}

fn take_list(
    obj: &mut Map<String, Value>,
    key: &str,
) -> Result<Vec<Map<String, Value>>, CloudError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::Object(o) => Ok(o),
                _ => Err(invalid(format!("`{key}` must be a list of objects"))),
            })
            .collect(),
        Some(_) => Err(invalid(format!("`{key}` must be a list"))),
    }
}

impl State {
    /// A load balancer POST that may carry its tree. All of it is made, or
    /// nothing (the store is restored on any refusal).
    pub(super) fn create_lb_graph(&mut self, body: Value) -> Result<Value, CloudError> {
        let Value::Object(mut body) = body else {
            return Err(invalid("the request body must be a JSON object"));
        };
        let listeners = take_list(&mut body, "listeners")?;
        let pools = take_list(&mut body, "pools")?;
        if listeners.is_empty() && pools.is_empty() {
            return self.create_one(&Kind::LoadBalancer, Value::Object(body));
        }
        let saved = self.store.clone();
        let made = self.graph(Value::Object(body), listeners, pools);
        if made.is_err() {
            self.store = saved;
        }
        made
    }

    fn graph(
        &mut self,
        body: Value,
        mut listeners: Vec<Map<String, Value>>,
        mut pools: Vec<Map<String, Value>>,
    ) -> Result<Value, CloudError> {
        let mut referenced = Vec::new();
        for li in &mut listeners {
            let Some(Value::Object(pool)) = li.get("default_pool").cloned() else {
                continue;
            };
            let Some(name) = pool.get("name").and_then(Value::as_str).map(str::to_owned) else {
                return Err(invalid(
                    "Pools must be named when creating a fully populated loadbalancer.",
                ));
            };
            if pool.len() > 1 {
                pools.push(pool);
                li.insert("default_pool".into(), json!({ "name": name }));
            } else {
                referenced.push(name);
            }
        }
        let names: Vec<&str> = pools
            .iter()
            .map(|p| p.get("name").and_then(Value::as_str).unwrap_or_default())
            .collect();
        let unique: std::collections::HashSet<&&str> = names.iter().collect();
        if unique.len() != names.len() {
            return Err(invalid(
                "Pool names must be unique when creating a fully populated loadbalancer.",
            ));
        }
        if let Some(missing) = referenced.iter().find(|r| !names.contains(&r.as_str())) {
            return Err(invalid(format!(
                "Pool '{missing}' was referenced but no full definition was found."
            )));
        }
        let lb = self.create_one(&Kind::LoadBalancer, body)?;
        let lb_id = lb["id"].as_str().unwrap_or_default().to_owned();
        // The children are made in the load balancer's own transaction,
        // before any provider sees it: nothing is pending for them yet.
        let mut pool_ids = std::collections::HashMap::new();
        for mut pool in pools {
            let members = take_list(&mut pool, "members")?;
            pool.insert("loadbalancer_id".into(), json!(lb_id));
            let name = pool
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            self.set_lb_status(&lb_id, "ACTIVE");
            let made = self.create_one(&Kind::Pool, Value::Object(pool))?;
            let pool_id = made["id"].as_str().unwrap_or_default().to_owned();
            for m in members {
                self.set_lb_status(&lb_id, "ACTIVE");
                self.create_one(
                    &Kind::Member {
                        pool_id: pool_id.clone(),
                    },
                    Value::Object(m),
                )?;
            }
            pool_ids.insert(name, pool_id);
        }
        for mut li in listeners {
            if let Some(pool) = li.remove("default_pool") {
                let name = pool["name"].as_str().unwrap_or_default();
                li.insert("default_pool_id".into(), json!(pool_ids[name]));
            }
            li.insert("loadbalancer_id".into(), json!(lb_id));
            self.set_lb_status(&lb_id, "ACTIVE");
            self.create_one(&Kind::Listener, Value::Object(li))?;
        }
        self.set_lb_status(&lb_id, "PENDING_CREATE");
        Ok(self.render_full(&lb_id))
    }

    /// The load balancer as a fully populated create answers it: its
    /// listeners and pools (with their members) as whole objects.
    fn render_full(&self, lb_id: &str) -> Value {
        let mut lb = self.render(&Kind::LoadBalancer, lb_id).unwrap_or_default();
        let of_lb = |kind: &Kind| -> Vec<Value> {
            self.all(kind)
                .iter()
                .filter(|v| v["loadbalancers"][0]["id"] == lb_id)
                .cloned()
                .collect()
        };
        let pools: Vec<Value> = of_lb(&Kind::Pool)
            .into_iter()
            .map(|mut p| {
                let members = Kind::Member {
                    pool_id: p["id"].as_str().unwrap_or_default().to_owned(),
                };
                p["members"] = json!(self.all(&members));
                p
            })
            .collect();
        lb["listeners"] = json!(of_lb(&Kind::Listener));
        lb["pools"] = json!(pools);
        lb
    }

    /// `DELETE …/loadbalancers/{id}?cascade=true`.
    pub(super) fn delete_cascade(&mut self, lb_id: &str) -> Result<(), CloudError> {
        let Some(lb) = self.find(&Kind::LoadBalancer, lb_id).cloned() else {
            return Ok(());
        };
        self.lb_must_be_active(lb_id)?;
        for p in lb["pools"].as_array().into_iter().flatten() {
            let pool_id = p["id"].as_str().unwrap_or_default().to_owned();
            self.store.remove(&Kind::Member {
                pool_id: pool_id.clone(),
            });
            self.remove(&Kind::Pool, &pool_id);
        }
        for l in lb["listeners"].as_array().into_iter().flatten() {
            self.remove(&Kind::Listener, l["id"].as_str().unwrap_or_default());
        }
        self.remove_lb_ports(&lb);
        self.remove(&Kind::LoadBalancer, lb_id);
        Ok(())
    }

    /// `PUT /v2/lbaas/pools/{id}/members?additive_only=true`.
    pub(super) fn add_members(
        &mut self,
        pool_id: &str,
        members: Vec<Value>,
    ) -> Result<(), CloudError> {
        let kind = Kind::Member {
            pool_id: pool_id.to_owned(),
        };
        let lb_id = self.active_lb_of_pool(pool_id)?;
        let key = |m: &Value| (m["address"].to_string(), m["protocol_port"].to_string());
        let mut seen = std::collections::HashSet::new();
        for m in &members {
            if !seen.insert(key(m)) {
                return Err(rejected(
                    "PUT",
                    &kind,
                    "Validation failure: Member must be updated only once in the same request.",
                ));
            }
        }
        let old = self.all(&kind).to_vec();
        let new: Vec<&Value> = members
            .iter()
            .filter(|m| !old.iter().any(|o| key(o) == key(m)))
            .collect();
        let updated: Vec<(&Value, String)> = members
            .iter()
            .filter_map(|m| {
                old.iter()
                    .find(|o| key(o) == key(m))
                    .map(|o| (m, o["id"].as_str().unwrap_or_default().to_owned()))
            })
            .collect();
        // Each member is new or updated: an empty batch changes nothing.
        if members.is_empty() {
            return Ok(());
        }
        let saved = self.store.clone();
        for m in new {
            self.set_lb_status(&lb_id, "ACTIVE");
            if let Err(e) = self.create_one(&kind, m.clone()) {
                self.store = saved;
                return Err(e);
            }
        }
        for (m, id) in updated {
            if let Some(slot) = self.find_mut(&kind, &id) {
                for (k, v) in m.as_object().into_iter().flatten() {
                    slot[k] = v.clone();
                }
                slot["provisioning_status"] = json!("PENDING_UPDATE");
            }
        }
        self.set_lb_status(&lb_id, "PENDING_UPDATE");
        Ok(())
    }
}
