//! The resolved plan: what kuryr6 will make, as plain data.
//!
//! The types live in the `kuryr6-plan` crate, which the plugin SDK shares,
//! so the plan exists once. The host uses them with [`Strict`] (the
//! default): a field it does not know — from a plugin, say — is an error.
//! Invariants once `validate::plan` returned no error: names are unique,
//! every reference names an earlier step of the right kind, every address
//! and pool lies inside its subnet.

pub use kuryr6_plan::Strict;
pub use kuryr6_plan::types::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// What a plugin returns is parsed with these types: a field the host
    /// does not know is refused by name, at any depth.
    #[test]
    fn the_host_refuses_fields_it_does_not_know() {
        let loaded = crate::load::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/seed-ipv6/pipeline.toml"
        )))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
        let json = serde_json::to_value(&loaded.plan).unwrap();
        let back: Plan = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, loaded.plan);
        let mut invented = json.clone();
        invented["steps"][1]["dns_nameservers"] = serde_json::json!(["fd10::53"]);
        let err = serde_json::from_value::<Plan>(invented).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `dns_nameservers`"),
            "{err}"
        );
        let mut invented = json;
        invented["kubernetes"]["feature_gates"] = serde_json::json!({});
        assert!(serde_json::from_value::<Plan>(invented).is_err());
    }
}
