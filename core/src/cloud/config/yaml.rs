//! Reading clouds.yaml and secure.yaml: parse a file without quoting its
//! content in errors, find a cloud's entry, merge two entries, and turn an
//! entry into raw settings (`Raw::from_yaml`).

use super::resolve::{Ctx, Raw, parse_bool};
use super::secret::Secret;
use crate::cloud::CloudError;
use std::path::Path;
use yaml_serde::{Mapping, Value};

/// Reads and parses a YAML file. A syntax error names the file and position;
/// libyaml's messages describe the grammar, not the content, so no value leaks.
pub(super) fn read_yaml(path: &Path, what: &str) -> Result<Value, CloudError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CloudError::Config(format!("{what} {}: cannot read: {e}", path.display())))?;
    yaml_serde::from_str::<Value>(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        CloudError::Config(format!("{what} {} is not valid YAML{at}", path.display()))
    })
}

pub(super) fn known_clouds(doc: &Value) -> Vec<String> {
    let mut names: Vec<String> = doc
        .get("clouds")
        .and_then(Value::as_mapping)
        .map(|m| m.keys().filter_map(scalar).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The mapping of cloud `name` under `clouds:`, or `None` when absent.
pub(super) fn cloud_entry<'a>(
    doc: &'a Value,
    name: &str,
    path: &Path,
) -> Result<Option<&'a Value>, CloudError> {
    let clouds = match doc.get("clouds") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            return Err(CloudError::Config(format!(
                "{}: `clouds` must be a mapping of cloud names to settings",
                path.display()
            )));
        }
    };
    match clouds.get(name) {
        None => Ok(None),
        Some(v @ Value::Mapping(_)) => Ok(Some(v)),
        Some(_) => Err(CloudError::Config(format!(
            "{}: cloud \"{name}\" must be a mapping of settings",
            path.display()
        ))),
    }
}

/// Deep merge: mappings merge key by key, anything else in `over` wins.
pub(super) fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A scalar as text (YAML reads `project_id: 1234` as a number).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Raw {
    pub(super) fn from_yaml(entry: &Value, ctx: &Ctx) -> Result<Self, CloudError> {
        let empty = Mapping::new();
        let top = entry.as_mapping().unwrap_or(&empty);
        let auth = match top.get("auth") {
            None | Some(Value::Null) => &empty,
            Some(Value::Mapping(m)) => m,
            Some(_) => return Err(ctx.err("`auth` must be a mapping")),
        };
        if top.get("profile").is_some() {
            return Err(ctx.err(
                "`profile` (vendor defaults from clouds-public.yaml) is not supported; write the settings into the cloud",
            ));
        }
        let text = |m: &Mapping, key: &str, prefix: &str| -> Result<Option<String>, CloudError> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match scalar(v) {
                    Some(s) if s.is_empty() => Ok(None),
                    Some(s) => Ok(Some(s)),
                    None => Err(ctx.err(format!("`{prefix}{key}` must be a string"))),
                },
            }
        };
        let a = |key: &str| text(auth, key, "auth.");
        let t = |key: &str| text(top, key, "");
        let boolean = |key: &str| -> Result<Option<bool>, CloudError> {
            match top.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(v) => scalar(v)
                    .as_deref()
                    .and_then(parse_bool)
                    .map(Some)
                    .ok_or_else(|| ctx.err(format!("`{key}` must be true or false"))),
            }
        };
        // `verify` may also be a CA path (requests' convention).
        let (verify, verify_path) = match top.get("verify") {
            Some(Value::String(s)) if parse_bool(s).is_none() => (None, Some(s.clone())),
            _ => (boolean("verify")?, None),
        };
        let insecure = boolean("insecure")?;
        let region = match t("region_name")? {
            Some(r) => Some(r),
            None => match top.get("regions") {
                Some(Value::Sequence(list)) if list.len() == 1 => match &list[0] {
                    Value::Mapping(m) => text(m, "name", "regions[0].")?,
                    v => scalar(v),
                },
                Some(Value::Sequence(list)) if list.len() > 1 => {
                    return Err(ctx.err(
                        "`regions` lists several regions; choose one with `region_name` (or OS_REGION_NAME)",
                    ));
                }
                _ => None,
            },
        };
        Ok(Raw {
            auth_type: t("auth_type")?,
            auth_url: a("auth_url")?,
            username: a("username")?,
            user_id: a("user_id")?,
            password: a("password")?.map(Secret::new),
            project_name: a("project_name")?.or(a("tenant_name")?),
            project_id: a("project_id")?.or(a("tenant_id")?),
            user_domain_name: a("user_domain_name")?,
            user_domain_id: a("user_domain_id")?,
            project_domain_name: a("project_domain_name")?,
            project_domain_id: a("project_domain_id")?,
            domain_name: a("domain_name")?,
            domain_id: a("domain_id")?,
            default_domain: a("default_domain")?.or(t("default_domain")?),
            app_id: a("application_credential_id")?,
            app_name: a("application_credential_name")?,
            app_secret: a("application_credential_secret")?.map(Secret::new),
            token: a("token")?.map(Secret::new),
            region,
            interface: t("interface")?.or(t("endpoint_type")?),
            cacert: t("cacert")?.or(verify_path),
            network_endpoint_override: t("network_endpoint_override")?,
            load_balancer_endpoint_override: t("load_balancer_endpoint_override")?,
            verify: match (verify, insecure) {
                (Some(false), _) | (_, Some(true)) => Some(false),
                (Some(true), _) | (_, Some(false)) => Some(true),
                (None, None) => None,
            },
        })
    }
}
