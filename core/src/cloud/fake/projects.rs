//! Another project on the same fake cloud, seen through a member token:
//! what it creates belongs to it, and Neutron and Octavia show a member
//! only its own project's resources (those of no project, such as an HA
//! network, stay hidden too). Calls count and faults fire as on the fake.

use super::{FakeCloud, State, Verb, not_found};
use crate::cloud::{Cloud, CloudError, CloudResult, Kind, Query, Service};
use serde_json::Value;

/// `FakeCloud::as_project`.
pub struct ProjectView<'a> {
    pub(super) fake: &'a FakeCloud,
    pub(super) project_id: String,
}

impl State {
    /// Runs `f` with `project` as the token's project.
    fn as_project<T>(&mut self, project: &str, f: impl FnOnce(&mut State) -> T) -> T {
        let saved = std::mem::replace(&mut self.project_id, project.to_string());
        let out = f(self);
        self.project_id = saved;
        out
    }

    fn served(&self, kind: &Kind) -> CloudResult<()> {
        if self.services.contains(&kind.service()) {
            Ok(())
        } else {
            Err(CloudError::NoEndpoint(kind.service().catalog_type().into()))
        }
    }

    /// The resource, if `project` may see it.
    fn visible(&self, kind: &Kind, id: &str, project: &str) -> CloudResult<()> {
        match self.find(kind, id) {
            Some(v) if v["project_id"] == project => Ok(()),
            _ => Err(not_found(kind, id)),
        }
    }
}

impl ProjectView<'_> {
    fn run<T>(
        &self,
        verb: Verb,
        kind: Option<&Kind>,
        f: impl FnOnce(&mut State, &str) -> CloudResult<T>,
    ) -> CloudResult<T> {
        let p = self.project_id.as_str();
        self.fake
            .call(verb, kind, |st| st.as_project(p, |st| f(st, p)))
    }
}

impl Cloud for ProjectView<'_> {
    async fn project_id(&self) -> CloudResult<String> {
        self.fake.pause().await;
        self.run(Verb::ProjectId, None, |st, _| Ok(st.project_id.clone()))
    }

    async fn has_service(&self, service: Service) -> CloudResult<bool> {
        self.fake.pause().await;
        self.run(Verb::HasService, None, |st, _| {
            Ok(st.services.contains(&service))
        })
    }

    async fn lb_providers(&self) -> CloudResult<Vec<String>> {
        self.fake.pause().await;
        self.run(Verb::Providers, None, |st, _| st.lb_providers())
    }

    async fn list(&self, kind: &Kind, query: &Query) -> CloudResult<Vec<Value>> {
        self.fake.pause().await;
        self.run(Verb::List, Some(kind), |st, p| {
            st.served(kind)?;
            if let Kind::Member { pool_id } = kind {
                st.visible(&Kind::Pool, pool_id, p)?;
            }
            let all = st.list(kind, query)?;
            Ok(all.into_iter().filter(|v| v["project_id"] == p).collect())
        })
    }

    async fn get(&self, kind: &Kind, id: &str) -> CloudResult<Value> {
        self.fake.pause().await;
        self.run(Verb::Get, Some(kind), |st, p| {
            st.served(kind)?;
            st.visible(kind, id, p)?;
            // Octavia objects settle on a get, as on the fake.
            if let Some(obj) = st.find(kind, id).cloned()
                && super::is_octavia(kind)
                && let Some(lb) = st.lb_of(kind, &obj)
            {
                st.settle(&lb);
            }
            st.render(kind, id).ok_or_else(|| not_found(kind, id))
        })
    }

    async fn create(&self, kind: &Kind, body: Value) -> CloudResult<Value> {
        self.fake.pause().await;
        self.run(Verb::Create, Some(kind), |st, _| {
            st.served(kind)?;
            st.create(kind, body)
        })
    }

    async fn update(&self, kind: &Kind, id: &str, body: Value) -> CloudResult<Value> {
        self.fake.pause().await;
        self.run(Verb::Update, Some(kind), |st, p| {
            st.visible(kind, id, p)?;
            st.update(kind, id, body)
        })
    }

    async fn update_if(&self, kind: &Kind, id: &str, body: Value, rev: u64) -> CloudResult<Value> {
        self.fake.pause().await;
        self.run(Verb::Update, Some(kind), |st, p| {
            st.visible(kind, id, p)?;
            st.revision_is(kind, id, rev)?;
            st.update(kind, id, body)
        })
    }

    async fn delete(&self, kind: &Kind, id: &str) -> CloudResult<()> {
        self.fake.pause().await;
        self.run(Verb::Delete, Some(kind), |st, p| {
            if st.find(kind, id).is_none() {
                return Ok(());
            }
            st.visible(kind, id, p)?;
            st.delete(kind, id)
        })
    }

    async fn delete_cascade(&self, lb_id: &str) -> CloudResult<()> {
        self.fake.pause().await;
        self.run(Verb::DeleteCascade, Some(&Kind::LoadBalancer), |st, p| {
            if st.find(&Kind::LoadBalancer, lb_id).is_none() {
                return Ok(());
            }
            st.visible(&Kind::LoadBalancer, lb_id, p)?;
            st.delete_cascade(lb_id)
        })
    }

    async fn add_members(&self, pool_id: &str, members: Vec<Value>) -> CloudResult<()> {
        self.fake.pause().await;
        let kind = Kind::Member {
            pool_id: pool_id.to_string(),
        };
        self.run(Verb::AddMembers, Some(&kind), |st, p| {
            st.visible(&Kind::Pool, pool_id, p)?;
            st.add_members(pool_id, members)
        })
    }

    async fn router_interface(&self, router: &str, subnet: &str, add: bool) -> CloudResult<()> {
        self.fake.pause().await;
        self.run(Verb::RouterInterface, Some(&Kind::Router), |st, p| {
            st.visible(&Kind::Router, router, p)?;
            st.router_interface(router, subnet, add)
        })
    }
}
