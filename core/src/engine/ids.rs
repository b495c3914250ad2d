//! Cloud ids by (kind, name): what apply fills in as it creates, what the
//! load-balancer steps look their parents up in, and what emitted files
//! read their ids from.

use super::change::Target;
use super::kind::TargetKind;
use super::observe::{Observed, parent_name, str_of};
use crate::emit::Ids;
use crate::plan::StepKind;
use serde::Serialize;
use std::collections::HashMap;

/// Cloud ids by (kind, name), seeded from what was observed and grown by
/// what a run creates; also what emitted files read their ids from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdMap {
    pub project: String,
    ids: HashMap<String, String>,
}

impl IdMap {
    fn key(kind: StepKind, name: &str) -> String {
        format!("{kind}/{name}")
    }

    pub fn insert(&mut self, kind: StepKind, name: &str, id: &str) {
        self.ids.insert(Self::key(kind, name), id.to_string());
    }

    pub fn get(&self, kind: StepKind, name: &str) -> Option<&str> {
        self.ids.get(&Self::key(kind, name)).map(String::as_str)
    }

    /// Ids of things that are not steps (listeners, pools), by their target.
    pub fn insert_target(&mut self, target: &Target, id: &str) {
        self.ids.insert(format!("{target}"), id.to_string());
    }

    pub fn get_target(&self, target: &Target) -> Option<&str> {
        self.ids.get(&format!("{target}")).map(String::as_str)
    }

    /// Ids of everything observed that the plan refers to by name.
    pub fn from_observed(obs: &Observed) -> IdMap {
        let mut m = IdMap {
            project: obs.project_id.clone(),
            ..Default::default()
        };
        for kind in TargetKind::OWNED_NEUTRON {
            let (Some(step), Some(collection)) = (kind.step(), kind.collection()) else {
                continue;
            };
            for v in obs.owned(&collection) {
                m.insert(step, str_of(v, "name"), str_of(v, "id"));
            }
        }
        for lb in &obs.loadbalancers {
            m.insert(StepKind::Loadbalancer, str_of(lb, "name"), str_of(lb, "id"));
        }
        for p in &obs.pools {
            let lb = parent_name(obs, p);
            m.insert_target(
                &Target::Pool {
                    loadbalancer: lb,
                    name: str_of(p, "name").into(),
                },
                str_of(p, "id"),
            );
        }
        m
    }
}

impl Ids for IdMap {
    fn project(&self) -> String {
        self.project.clone()
    }
    fn id(&self, kind: StepKind, name: &str) -> String {
        self.get(kind, name).unwrap_or("<missing>").to_string()
    }
}
