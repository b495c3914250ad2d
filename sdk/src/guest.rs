//! Guest side of the contract (wasm32 only): the bindings wit-bindgen
//! generates from `wit/plugin.wit`, and the adapters `export_plugin!` calls
//! to convert between them and the SDK's own types.

use crate::{Facts, Hook, Plan, Plugin, ResourceKind, Severity, Site};

/// Raw bindings, for plugins that implement the exports by hand (tests of
/// the host's ABI checks do).
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_kuryr6_plugin",
        default_bindings_module: "kuryr6_plugin_sdk::bindings",
        runtime_path: "kuryr6_plugin_sdk::guest::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt;

use bindings::kuryr6::plugin::types as wit;

pub fn describe<P: Plugin>() -> wit::Info {
    wit::Info {
        abi_version: crate::ABI_VERSION,
        name: P::NAME.to_string(),
        hooks: P::HOOKS
            .iter()
            .map(|h| match h {
                Hook::Plan => wit::Hook::Plan,
                Hook::Naming => wit::Hook::Naming,
                Hook::Policy => wit::Hook::Policy,
            })
            .collect(),
    }
}

pub fn transform<P: Plugin>(facts: Vec<(String, String)>, plan: String) -> Result<String, String> {
    let plan = Plan::from_json(&plan)?;
    P::plan(&Facts(facts), plan).map(|p| p.to_json())
}

pub fn name<P: Plugin>(
    kind: wit::ResourceKind,
    default_name: String,
    context: Vec<(String, String)>,
) -> Result<String, String> {
    let kind = match kind {
        wit::ResourceKind::Network => ResourceKind::Network,
        wit::ResourceKind::Subnet => ResourceKind::Subnet,
        wit::ResourceKind::Router => ResourceKind::Router,
        wit::ResourceKind::SecurityGroup => ResourceKind::SecurityGroup,
        wit::ResourceKind::Loadbalancer => ResourceKind::Loadbalancer,
        wit::ResourceKind::Emit => ResourceKind::Emit,
    };
    P::name(kind, &default_name, &Facts(context))
}

pub fn check<P: Plugin>(sites: Vec<wit::Site>) -> Result<Vec<wit::Violation>, String> {
    let sites = sites
        .into_iter()
        .map(|s| {
            Ok(Site {
                plan: Plan::from_json(&s.plan).map_err(|e| format!("site {}: {e}", s.name))?,
                name: s.name,
                facts: Facts(s.facts),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(P::check(&sites)?
        .into_iter()
        .map(|v| wit::Violation {
            severity: match v.severity {
                Severity::Error => wit::Severity::Error,
                Severity::Warning => wit::Severity::Warning,
            },
            code: v.code,
            message: v.message,
            site: v.site,
            step: v.step,
        })
        .collect())
}
