//! A plugin built against `kuryr6:plugin@1.0.0`, a major version no kuryr6
//! speaks yet. The host must refuse it with `AbiMismatch` naming the
//! versions it runs, before any of its code runs (its naming hook would
//! rename everything if it were ever called).
// The bindings exist only for wasm32; on the host this crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "plugin", path: "wit" });

use exports::kuryr6::plugin::{meta, naming};
use kuryr6::plugin::types::{Hook, Info, ResourceKind};

struct Future;

impl meta::Guest for Future {
    fn describe() -> Info {
        Info {
            abi_version: 1,
            name: "future-abi".into(),
            hooks: vec![Hook::Naming],
        }
    }
}

impl naming::Guest for Future {
    fn name(_: ResourceKind, _: String, _: Vec<(String, String)>) -> Result<String, String> {
        Ok("renamed-by-a-plugin-from-the-future".into())
    }
}

export!(Future);
