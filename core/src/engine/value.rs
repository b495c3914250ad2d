//! Reading the cloud's JSON resources: the few field accessors every part
//! of the engine shares. A leaf module: it depends on nothing in the
//! engine, so observe, diff and apply can all use it without a cycle.

use serde_json::Value;

/// A string field, or "" when it is absent or not a string.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// Whether a listener or pool hangs off the load balancer `lb_id`.
pub fn belongs(v: &Value, lb_id: &str) -> bool {
    v["loadbalancers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|l| l["id"] == lb_id))
        || v["loadbalancer_id"] == lb_id
}
