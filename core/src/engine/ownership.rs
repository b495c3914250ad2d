//! Ownership: how kuryr6 marks what a pipeline made, and how it recognises
//! those marks again. One value per run, made from the pipeline's name;
//! every tag, marker and description kuryr6 writes for ownership comes from
//! here, and so does every test of them.
//!
//! There is no state file: the marks on the resources are the state. The
//! strings below are on real clouds already, so they never change:
//! - every resource kuryr6 manages carries the tags `kuryr6` and
//!   `kuryr6:pipeline=<name>` (Octavia in the create body; Neutron right
//!   after the create, which refuses tags in a POST);
//! - a Neutron resource carries the creation marker
//!   `made by kuryr6 (kuryr6:pipeline=<name>)` in its description from the
//!   create call on, so a create cut before its tagging is still found;
//! - a security-group rule takes no tags: one kuryr6 made has the
//!   description `kuryr6:pipeline=<name>`;
//! - the pipeline's lease record (`lease`) is the security group
//!   `kuryr6-lease:<name>`, tagged `kuryr6-lease=<name>` and never with
//!   the pipeline's tag.
//!
//! A leaf module (it depends on nothing else in the engine but `value`).

use super::value::str_of;
use crate::validate::RESERVED_NAME_PREFIX;
use serde_json::{Value, json};

/// Tag every kuryr6 resource carries, whichever pipeline owns it.
pub const OWNER_TAG: &str = "kuryr6";

/// What a pipeline tag starts with; the pipeline's name follows.
const PIPELINE_TAG_PREFIX: &str = "kuryr6:pipeline=";

/// The description of a load balancer kuryr6 creates (for people reading
/// `openstack loadbalancer list`; ownership is in its tags).
pub const LOADBALANCER_DESCRIPTION: &str = "Kubernetes API (kuryr6)";

/// The marks of one pipeline: what it writes on what it makes, and what
/// it recognises as its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pipeline: String,
    /// `kuryr6:pipeline=<name>`, made once.
    tag: String,
}

impl Ownership {
    pub fn new(pipeline: &str) -> Ownership {
        Ownership {
            pipeline: pipeline.to_string(),
            tag: format!("{PIPELINE_TAG_PREFIX}{pipeline}"),
        }
    }

    /// The pipeline's name.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The tag naming this pipeline as the owner (also the `?tags=` filter
    /// that lists what it owns).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The name of the pipeline's lease record (validation keeps the
    /// prefix from every step name).
    pub fn lease_name(&self) -> String {
        format!("{RESERVED_NAME_PREFIX}:{}", self.pipeline)
    }

    /// The tag that marks the pipeline's lease record.
    pub fn lease_tag(&self) -> String {
        format!("{RESERVED_NAME_PREFIX}={}", self.pipeline)
    }

    /// Whether `v` is the pipeline's lease record as `lease` makes it.
    pub fn is_lease_record(&self, v: &Value) -> bool {
        has_tag(v, &self.lease_tag())
    }

    /// Every tag a resource of this pipeline carries.
    pub fn tags(&self) -> Vec<String> {
        vec![OWNER_TAG.to_string(), self.tag.clone()]
    }

    /// The text in the description of every Neutron resource this pipeline
    /// creates, written by the create call itself (atomic, unlike tags).
    pub fn creation_marker(&self) -> String {
        format!("made by kuryr6 ({})", self.tag)
    }

    /// A security group's description: the pipeline's text and the
    /// creation marker.
    pub fn sg_description(&self, text: &str) -> String {
        format!("{text} [{}]", self.creation_marker())
    }

    /// The description of a security-group rule this pipeline creates.
    pub fn rule_marker(&self) -> &str {
        &self.tag
    }

    /// A Neutron create body with the creation marker, unless the body has
    /// a description of its own (which then carries it, see
    /// `sg_description`).
    pub fn mark_create(&self, mut body: Value) -> Value {
        if body.get("description").is_none() {
            body["description"] = json!(self.creation_marker());
        }
        body
    }

    /// Whether `v` carries this pipeline's tag.
    pub fn is_tagged(&self, v: &Value) -> bool {
        has_tag(v, &self.tag)
    }

    /// Untagged, but created by this pipeline: a create cut before its
    /// tagging (its creation marker is in the description).
    pub fn is_interrupted_create(&self, v: &Value) -> bool {
        !has_tag(v, OWNER_TAG) && str_of(v, "description").contains(&self.creation_marker())
    }

    /// Whether a security-group rule is one this pipeline made (only those
    /// are ever deleted: default and hand-made rules stay).
    pub fn made_rule(&self, rule: &Value) -> bool {
        str_of(rule, "description") == self.rule_marker()
    }

    /// The kuryr6 pipeline other than this one that owns `v`, if any.
    pub fn other_owner(&self, v: &Value) -> Option<String> {
        owner_of(v).filter(|o| *o != self.pipeline)
    }
}

/// Whether `v` carries `tag` (any tag: kuryr6's, or Kuryr's resource tags).
pub fn has_tag(v: &Value, tag: &str) -> bool {
    v["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == tag))
}

/// Which kuryr6 pipeline owns a resource, if any (for messages).
pub fn owner_of(v: &Value) -> Option<String> {
    v["tags"]
        .as_array()?
        .iter()
        .filter_map(|t| t.as_str())
        .find_map(|t| t.strip_prefix(PIPELINE_TAG_PREFIX).map(str::to_string))
        .or_else(|| has_tag(v, OWNER_TAG).then(|| "another kuryr6 pipeline".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_strings_are_the_ones_clouds_already_carry() {
        let o = Ownership::new("seed-ipv6");
        assert_eq!(o.tag(), "kuryr6:pipeline=seed-ipv6");
        assert_eq!(o.tags(), ["kuryr6", "kuryr6:pipeline=seed-ipv6"]);
        assert_eq!(
            o.creation_marker(),
            "made by kuryr6 (kuryr6:pipeline=seed-ipv6)"
        );
        assert_eq!(
            o.sg_description("pods"),
            "pods [made by kuryr6 (kuryr6:pipeline=seed-ipv6)]"
        );
        assert_eq!(o.rule_marker(), "kuryr6:pipeline=seed-ipv6");
    }

    #[test]
    fn recognises_its_own_marks_and_no_one_elses() {
        let o = Ownership::new("a");
        let mine = json!({"tags": ["kuryr6", "kuryr6:pipeline=a"]});
        let theirs = json!({"tags": ["kuryr6", "kuryr6:pipeline=b"]});
        let anon = json!({"tags": ["kuryr6"]});
        assert!(o.is_tagged(&mine) && !o.is_tagged(&theirs));
        assert_eq!(o.other_owner(&mine), None);
        assert_eq!(o.other_owner(&theirs).as_deref(), Some("b"));
        assert_eq!(owner_of(&anon).as_deref(), Some("another kuryr6 pipeline"));
        assert_eq!(owner_of(&json!({"tags": ["k8s"]})), None);

        let cut = json!({"description": o.creation_marker(), "tags": []});
        assert!(o.is_interrupted_create(&cut));
        assert!(!Ownership::new("b").is_interrupted_create(&cut));
        assert!(!o.is_interrupted_create(
            &json!({"description": o.creation_marker(), "tags": ["kuryr6"]})
        ));

        assert!(o.made_rule(&json!({"description": "kuryr6:pipeline=a"})));
        assert!(!o.made_rule(&json!({"description": "kuryr6:pipeline=ab"})));
        assert!(!o.made_rule(&json!({"description": ""})));
    }

    #[test]
    fn a_create_body_gets_the_marker_unless_it_has_a_description() {
        let o = Ownership::new("a");
        assert_eq!(
            o.mark_create(json!({"name": "n"}))["description"],
            "made by kuryr6 (kuryr6:pipeline=a)"
        );
        assert_eq!(
            o.mark_create(json!({"name": "n", "description": "x"}))["description"],
            "x"
        );
    }
}
