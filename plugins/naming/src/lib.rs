//! `naming`: a vendor naming policy. Every resource is called
//! `<site>-<role>`: the site from the `site` fact, the role from the name
//! kuryr6 would use (`pod_subnet` → `pod-subnet`), all lowercase, at most
//! `max_len` characters (fact, default 63).
//!
//! Names that others rely on are kept: load balancers (Kuryr finds the API
//! load balancer by the Kubernetes service name, `default/kubernetes`) and
//! emit steps (not cloud resources). A name that is already site-prefixed
//! is kept, so running the plugin twice changes nothing.

use kuryr6_plugin_sdk::{Facts, Hook, Plugin, ResourceKind, export_plugin};

struct Naming;

impl Plugin for Naming {
    const NAME: &'static str = "naming";
    const HOOKS: &'static [Hook] = &[Hook::Naming];

    fn name(kind: ResourceKind, default_name: &str, context: &Facts) -> Result<String, String> {
        if matches!(kind, ResourceKind::Loadbalancer | ResourceKind::Emit) {
            return Ok(default_name.to_string());
        }
        let site = context.require("site")?.to_ascii_lowercase();
        if site.is_empty() || !site.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "fact `site` = {site:?} must be letters, digits and '-'"
            ));
        }
        let max_len: usize = context.parse_or("max_len", 63)?;
        let role: String = default_name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let prefix = format!("{site}-");
        let name = if role.starts_with(&prefix) {
            role
        } else {
            format!("{prefix}{role}")
        };
        if name.len() > max_len {
            return Err(format!(
                "{} name `{name}` is {} characters, the limit is {max_len}",
                kind.as_str(),
                name.len()
            ));
        }
        Ok(name)
    }
}

export_plugin!(Naming);
