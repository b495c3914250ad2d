//! Security groups and their rules: a new group's default egress rules,
//! a rule stored as Neutron stores it (`neutron_rules`), duplicates refused.

use super::{State, conflict, neutron_rules, not_found, rejected};
use crate::cloud::{CloudError, Kind};
use serde_json::{Map, Value, json};

impl State {
    pub(super) fn new_rule(
        &mut self,
        mut obj: Map<String, Value>,
    ) -> Result<Map<String, Value>, CloudError> {
        let kind = &Kind::SecurityGroupRule;
        let sg = Self::required(&obj, kind, "security_group_id")?;
        if !self.exists(&Kind::SecurityGroup, &sg) {
            return Err(CloudError::NotFound {
                what: format!("security_group {}", sg.as_str().unwrap_or("?")),
            });
        }
        let direction = Self::required(&obj, kind, "direction")?;
        if !matches!(direction.as_str(), Some("ingress" | "egress")) {
            return Err(rejected(
                "POST",
                kind,
                "Invalid input for direction. Reason: must be ingress or egress.",
            ));
        }
        // Neutron's own conversions, checks and duplicate test (see
        // `neutron_rules`), not the engine's.
        neutron_rules::store(&mut obj).map_err(|r| match r {
            neutron_rules::Refusal::Invalid(m) => rejected("POST", kind, m),
            neutron_rules::Refusal::ServerError => CloudError::Unavailable(
                "POST /v2.0/security-group-rules answered 500: Request Failed: internal server error while processing your request.".into(),
            ),
        })?;
        for key in ["remote_group_id", "remote_address_group_id"] {
            if let Some(g) = obj.get(key).and_then(Value::as_str) {
                let known = if key == "remote_group_id" {
                    self.find(&Kind::SecurityGroup, g).is_some()
                } else {
                    self.address_groups.contains(g)
                };
                if !known {
                    return Err(CloudError::NotFound {
                        what: format!("{key} {g}"),
                    });
                }
            }
        }
        let mine = neutron_rules::rule_key(&obj);
        if let Some(dup) = self
            .all(kind)
            .iter()
            .filter_map(Value::as_object)
            .find(|r| neutron_rules::rule_key(r) == mine)
        {
            return Err(conflict(format!(
                "Security group rule already exists. Rule id is {}. (SecurityGroupRuleExists)",
                dup["id"].as_str().unwrap_or("?")
            )));
        }
        Ok(obj)
    }

    /// A new group, stored with the default rules Neutron gives it.
    pub(super) fn new_security_group(
        &mut self,
        kind: &Kind,
        mut obj: Map<String, Value>,
    ) -> Result<Value, CloudError> {
        obj.insert("security_group_rules".into(), json!([]));
        let id = obj["id"].as_str().unwrap_or_default().to_owned();
        self.push(kind, Value::Object(obj));
        // Neutron's default templates: egress to anywhere, both families.
        for ethertype in ["IPv4", "IPv6"] {
            let rule = json!({
                "security_group_id": id,
                "direction": "egress",
                "ethertype": ethertype,
            });
            let built = self.build(&Kind::SecurityGroupRule, rule)?;
            let built = self.new_rule(built)?;
            self.push(&Kind::SecurityGroupRule, Value::Object(built));
        }
        let out = self.render(kind, &id);
        out.ok_or_else(|| not_found(kind, &id))
    }

    /// Before `delete` removes security group `id`: refused while in use, else
    /// what goes with it is removed too.
    pub(super) fn deleting_security_group(&mut self, id: &str) -> Result<(), CloudError> {
        if self.all(&Kind::Port).iter().any(|p| {
            p["security_groups"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s == id))
        }) {
            return Err(conflict(format!(
                "Security Group {id} in use. (SecurityGroupInUse)"
            )));
        }
        let rules: Vec<String> = self
            .all(&Kind::SecurityGroupRule)
            .iter()
            .filter(|r| r["security_group_id"] == id)
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        for r in rules {
            self.remove(&Kind::SecurityGroupRule, &r);
        }
        Ok(())
    }
}
