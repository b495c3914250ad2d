//! A plugin built against a future contract: it implements the exports by
//! hand (no `export_plugin!`) and reports ABI version 999. The host must
//! refuse it at load time with `AbiMismatch`, before any hook runs.
// The raw bindings exist only for wasm32; on the host this crate is empty.
#![cfg(target_arch = "wasm32")]

use kuryr6_plugin_sdk::bindings::exports::kuryr6::plugin::{meta, naming, plan, policy};
use kuryr6_plugin_sdk::bindings::kuryr6::plugin::types::{
    Hook, Info, ResourceKind, Site, Violation,
};

struct WrongAbi;

impl meta::Guest for WrongAbi {
    fn describe() -> Info {
        Info {
            abi_version: 999,
            name: "wrong-abi".into(),
            hooks: vec![Hook::Naming],
        }
    }
    fn version() -> String {
        "0.0.0".into()
    }
}

impl plan::Guest for WrongAbi {
    fn transform(_: Vec<(String, String)>, plan: String) -> Result<String, String> {
        Ok(plan)
    }
}

impl naming::Guest for WrongAbi {
    fn name(_: ResourceKind, _: String, _: Vec<(String, String)>) -> Result<String, String> {
        Ok("renamed-by-a-plugin-that-should-never-run".into())
    }
}

impl policy::Guest for WrongAbi {
    fn check(_: Vec<Site>) -> Result<Vec<Violation>, String> {
        Ok(Vec::new())
    }
}

kuryr6_plugin_sdk::bindings::__export_kuryr6_plugin!(WrongAbi with_types_in kuryr6_plugin_sdk::bindings);
