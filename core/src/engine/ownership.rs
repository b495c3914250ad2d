//! Ownership: how kuryr6 marks what a pipeline made, and how it recognises
//! those marks again. One value per run, made from the pipeline's name;
//! every tag, marker and description kuryr6 writes for ownership comes from
//! here, and so does every test of them.
//!
//! There is no state file: the marks on the resources are the state. The
//! strings below are on real clouds already, so they never change:
//! - every resource kuryr6 manages carries the tags `kuryr6` and
//!   `kuryr6:pipeline=<name>` (Octavia in the create body; Neutron after
//!   the create, which refuses tags in a POST: see `owe_tags`);
//! - a Neutron resource carries the creation marker
//!   `made by kuryr6 (kuryr6:pipeline=<name>)` in its description from the
//!   create call on, so a create cut before its tagging is still found;
//! - a security-group rule takes no tags: one kuryr6 made has the
//!   description `kuryr6:pipeline=<name>`;
//! - the pipeline's lease record (`lease`) is the security group
//!   `kuryr6-lease:<name>`, tagged `kuryr6-lease=<name>` and never with
//!   the pipeline's tag. Free, its description is `FREE`. Free or held, it
//!   may end in ` sweep=<unix seconds>` while the next runs must look for
//!   late copies of a create (`sweep_wanted`).
//!
//! A leaf module (it depends on nothing else in the engine but `value`).

use super::value::str_of;
use crate::cloud::Kind;
use crate::validate::RESERVED_NAME_PREFIX;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Tag every kuryr6 resource carries, whichever pipeline owns it.
pub const OWNER_TAG: &str = "kuryr6";

/// What a pipeline tag starts with; the pipeline's name follows.
const PIPELINE_TAG_PREFIX: &str = "kuryr6:pipeline=";

/// The description of a load balancer kuryr6 creates (for people reading
/// `openstack loadbalancer list`; ownership is in its tags).
pub const LOADBALANCER_DESCRIPTION: &str = "Kubernetes API (kuryr6)";

/// The marks of one pipeline: what it writes on what it makes, and what
/// it recognises as its own.
#[derive(Debug, Clone)]
pub struct Ownership {
    pipeline: String,
    /// `kuryr6:pipeline=<name>`, made once.
    tag: String,
    /// Set when a create of this run was sent again because the read-back
    /// after an ambiguous failure found nothing: the first copy may still
    /// land, later, with the creation marker and no tags (`create`). The
    /// lease then asks the next runs to look for it (`lease`).
    resent: Arc<AtomicBool>,
    /// Neutron resources this run made that do not carry its tags yet.
    /// Nothing a later write needs is in a tag, so the tagging waits for
    /// the run's last wave, where it keeps Neutron busy while Octavia
    /// works, instead of holding up the creates the load balancer waits
    /// for (`apply`). Until then the creation marker identifies them.
    owed: Arc<Mutex<Vec<(Kind, Value)>>>,
}

impl Ownership {
    pub fn new(pipeline: &str) -> Ownership {
        Ownership {
            pipeline: pipeline.to_string(),
            tag: format!("{PIPELINE_TAG_PREFIX}{pipeline}"),
            resent: Arc::default(),
            owed: Arc::default(),
        }
    }

    /// `made` (of `kind`) is to be tagged before the run ends (see `owed`).
    pub fn owe_tags(&self, kind: &Kind, made: Value) {
        self.owed
            .lock()
            .expect("not poisoned")
            .push((kind.clone(), made));
    }

    /// The resources owed their tags so far; the ledger is empty after.
    pub fn take_owed_tags(&self) -> Vec<(Kind, Value)> {
        std::mem::take(&mut *self.owed.lock().expect("not poisoned"))
    }

    /// A create carrying these marks was sent again after an ambiguous
    /// failure (see `resent`).
    pub fn note_resent(&self) {
        self.resent.store(true, Ordering::Relaxed);
    }

    pub fn any_resent(&self) -> bool {
        self.resent.load(Ordering::Relaxed)
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
/// The description of a free lease record. Releases before the
/// compare-and-swap lease parse it as a holder that expired at 0, so they
/// too see the lease free.
pub const FREE: &str = "kuryr6 lease: host=- pid=0 start=0 user=- expires=0 free";

/// The value of `key` in a lease record's text (`kuryr6 lease: k=v k=v`).
pub fn record_field(description: &str, key: &str) -> Option<String> {
    description
        .strip_prefix("kuryr6 lease: ")?
        .split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
}

/// Whether a run must look for late copies of its creates (`observe`),
/// from its pipeline's lease records: a record asks for a sweep until a
/// time not yet past (` sweep=<unix seconds>`, written by a run that
/// re-sent a create, and carried on by the runs after it), or its holder
/// expired without freeing it (a run died, maybe while a POST of it was
/// in flight). A plain free record, a live holder's, or none costs no
/// extra read.
pub fn sweep_wanted(records: &[Value]) -> bool {
    let now = unix_now();
    records.iter().any(|r| {
        let text = str_of(r, "description");
        let expires: Option<u64> = record_field(text, "expires").and_then(|e| e.parse().ok());
        sweep_until(text) > now || expires.is_some_and(|e| e != 0 && e <= now)
    })
}

/// The end of the sweep a lease record asks for (`sweep_wanted`), 0 for
/// none.
pub fn sweep_until(description: &str) -> u64 {
    record_field(description, "sweep")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// The clock lease records are written in: Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

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
    fn a_sweep_is_wanted_after_a_re_sent_create_or_a_holder_that_died() {
        let now = unix_now();
        let record = |text: String| json!({ "description": text });
        assert!(!sweep_wanted(&[]));
        assert!(!sweep_wanted(&[record(FREE.into())]));
        assert!(sweep_wanted(&[record(format!(
            "{FREE} sweep={}",
            now + 60
        ))]));
        assert!(!sweep_wanted(&[record(format!(
            "{FREE} sweep={}",
            now - 1
        ))]));
        let held = |expires: u64, sweep: &str| {
            record(format!(
                "kuryr6 lease: host=h pid=1 start=2 user=u expires={expires} token=t{sweep}"
            ))
        };
        // A live holder that re-sent nothing: no extra read.
        assert!(!sweep_wanted(&[held(now + 60, "")]));
        assert!(sweep_wanted(&[held(
            now + 60,
            &format!(" sweep={}", now + 60)
        )]));
        // A holder that expired without freeing the record died writing.
        assert!(sweep_wanted(&[held(now - 1, "")]));
        assert_eq!(record_field(FREE, "expires").as_deref(), Some("0"));
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
