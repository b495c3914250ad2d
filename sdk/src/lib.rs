//! # kuryr6-plugin-sdk
//!
//! Everything a kuryr6 plugin author depends on:
//!
//! - [`Plugin`], the trait a plugin implements (one method per hook), and
//!   [`export_plugin!`], which turns an implementation into the exports of
//!   the WIT world `kuryr6:plugin/plugin@0.2.0` (`sdk/wit/plugin.wit`);
//! - [`log`], lines into kuryr6's own log (bounded by the host);
//! - [`plan`], the plan types a hook reads and returns;
//! - [`cidr`], prefix arithmetic (carve, split, contains, overlap, layouts);
//! - on the host only, [`testing`]: run a built `.wasm` on a JSON fixture
//!   from `cargo test`, through kuryr6's own host (same sandbox and limits).
//!
//! A plugin is a `cdylib` built with `cargo build --release --target
//! wasm32-wasip2`; see sdk/README.md. Guests never compile kuryr6 or
//! wasmtime: host-only parts are behind `cfg(not(target_arch = "wasm32"))`.

// The generated bindings name this crate by its path from plugin crates;
// let the same path work inside the SDK.
extern crate self as kuryr6_plugin_sdk;

pub mod cidr;
pub mod log;
pub mod plan;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;
#[cfg(target_arch = "wasm32")]
pub use guest::bindings;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use plan::Plan;

/// The contract's constants and value types, shared with the host:
/// [`ABI_VERSION`] (what `describe().abi-version` reports), [`WIT_PACKAGE`]
/// (the WIT package every import and export name carries), the hooks, the
/// kinds a naming hook receives, and policy findings.
pub use kuryr6_plan::abi::{
    ABI_VERSION, Facts, Hook, ResourceKind, Severity, Violation, WIT_PACKAGE,
};

/// One site as the policy hook sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The pipeline file as the user named it; unique within one call.
    pub name: String,
    pub facts: Facts,
    pub plan: Plan,
}

/// A kuryr6 plugin. Implement the hooks you list in `HOOKS`; the others
/// keep their defaults (an error the host never triggers, because it only
/// calls the hooks a plugin declares). Every method is a pure function of
/// its arguments: the sandbox has no files, network or environment, and its
/// clocks and random numbers are fixed, so the same input gives the same
/// output.
pub trait Plugin {
    /// Shown in messages, e.g. "naming".
    const NAME: &'static str;
    /// The hooks implemented.
    const HOOKS: &'static [Hook];
    /// The plugin's own version, shown by `kuryr6 plugin info`; `None` =
    /// the plugin crate's `version` from its Cargo.toml.
    const VERSION: Option<&'static str> = None;

    /// `plan` hook: return the modified plan, or why it cannot be made.
    fn plan(facts: &Facts, plan: Plan) -> Result<Plan, String> {
        let _ = (facts, plan);
        Err(not_implemented(Self::NAME, Hook::Plan))
    }

    /// `naming` hook: the name for a step of `kind` currently `default_name`.
    fn name(kind: ResourceKind, default_name: &str, context: &Facts) -> Result<String, String> {
        let _ = (kind, default_name, context);
        Err(not_implemented(Self::NAME, Hook::Naming))
    }

    /// `policy` hook: every violation across `sites` (empty = compliant).
    fn check(sites: &[Site]) -> Result<Vec<Violation>, String> {
        let _ = sites;
        Err(not_implemented(Self::NAME, Hook::Policy))
    }
}

fn not_implemented(plugin: &str, hook: Hook) -> String {
    format!(
        "plugin `{plugin}` does not implement the {} hook",
        hook.as_str()
    )
}

/// Exports a [`Plugin`] implementation as the plugin's component exports.
///
/// ```ignore
/// struct Naming;
/// impl kuryr6_plugin_sdk::Plugin for Naming { /* … */ }
/// kuryr6_plugin_sdk::export_plugin!(Naming);
/// ```
///
/// Only meaningful on `wasm32`. On the host (where `cargo test
/// --workspace` and clippy build plugin crates too) nothing is exported; the
/// hooks are only referenced, so the plugin's code counts as used and its
/// pure logic can be unit-tested.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            #[allow(dead_code)]
            fn __kuryr6_plugin_hooks() {
                let _ = <$plugin as $crate::Plugin>::plan;
                let _ = <$plugin as $crate::Plugin>::name;
                let _ = <$plugin as $crate::Plugin>::check;
            }
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::exports::kuryr6::plugin as __exports;
            use $crate::bindings::kuryr6::plugin::types as __types;

            struct __Kuryr6Export;

            impl __exports::meta::Guest for __Kuryr6Export {
                fn describe() -> __types::Info {
                    $crate::guest::describe::<$plugin>()
                }
                // `env!` expands in the plugin crate: its own version.
                fn version() -> ::std::string::String {
                    <$plugin as $crate::Plugin>::VERSION
                        .unwrap_or(::core::env!("CARGO_PKG_VERSION"))
                        .to_string()
                }
            }
            impl __exports::plan::Guest for __Kuryr6Export {
                fn transform(
                    facts: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    plan: ::std::string::String,
                ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                    $crate::guest::transform::<$plugin>(facts, plan)
                }
            }
            impl __exports::naming::Guest for __Kuryr6Export {
                fn name(
                    kind: __types::ResourceKind,
                    default_name: ::std::string::String,
                    context: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                    $crate::guest::name::<$plugin>(kind, default_name, context)
                }
            }
            impl __exports::policy::Guest for __Kuryr6Export {
                fn check(
                    sites: ::std::vec::Vec<__types::Site>,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<__types::Violation>,
                    ::std::string::String,
                > {
                    $crate::guest::check::<$plugin>(sites)
                }
            }

            $crate::bindings::__export_kuryr6_plugin!(__Kuryr6Export with_types_in $crate::bindings);
        };
    };
}
