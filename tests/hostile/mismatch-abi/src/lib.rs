//! A plugin that claims `kuryr6:plugin@0.2.0` but whose `naming.name` has
//! another type. The host must refuse it when loading (`Load`, naming the
//! export), not crash on it mid-run.
// The bindings exist only for wasm32; on the host this crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "plugin", path: "wit" });

use exports::kuryr6::plugin::{meta, naming, plan, policy};
use kuryr6::plugin::types::{Hook, Info, ResourceKind, Site, Violation};

struct Mismatch;

impl meta::Guest for Mismatch {
    fn describe() -> Info {
        Info {
            abi_version: 1,
            name: "mismatch-abi".into(),
            hooks: vec![Hook::Naming],
        }
    }
    fn version() -> String {
        "0.0.1".into()
    }
}

impl plan::Guest for Mismatch {
    fn transform(_: Vec<(String, String)>, plan: String) -> Result<String, String> {
        Ok(plan)
    }
}

impl naming::Guest for Mismatch {
    fn name(_: ResourceKind, _: String) -> Result<String, String> {
        Ok("renamed-by-a-plugin-that-breaks-its-contract".into())
    }
}

impl policy::Guest for Mismatch {
    fn check(_: Vec<Site>) -> Result<Vec<Violation>, String> {
        Ok(Vec::new())
    }
}

export!(Mismatch);
