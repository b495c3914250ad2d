//! An in-memory cloud for engine tests, faithful where the engine can trip.
//!
//! It behaves like Neutron 29 and Octavia on the points that matter to an
//! idempotent converger: uuid-like ids, `revision_number` bumped per update,
//! tag filters (`tags` = all of, `tags-any`, `not-tags`, `not-tags-any`),
//! repeatable `name=` (any of) and equality filters on any field (unknown
//! filter fields are refused, like Neutron's filter validation), unknown
//! attributes refused on create, read-only ones on update, addresses stored
//! in canonical compressed form, `tags` refused in a Neutron POST body
//! (ports excepted) with Neutron's 400, default egress rules on new security
//! groups, 409 for a duplicate rule, subnet gateway/pool checks, router
//! interfaces as ports, deletes refused while something uses the resource,
//! Octavia member addresses kept as sent (Octavia does not canonicalise),
//! and Octavia objects that start `PENDING_*` and settle on the next `get`
//! (while pending, their load balancer refuses changes with 409).
//!
//! Tests can count calls per verb and kind and inject faults: fail the Nth
//! matching call before it acts, or after it acted (a lost answer).

use super::{Cloud, CloudError, CloudResult, Kind, Query, Service};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

// Here: the handle, call counts, faults and the `Cloud` verbs. `impl State`
// is split by resource family: `store` (ids, templates filled, the verbs'
// dispatch, list filters), `schema` (attributes per kind), `addresses`
// (IPAM arithmetic), `neutron` (networks, subnets, ports), `security_groups`
// (+ `neutron_rules`), `routers`, `octavia` (load balancers and children),
// `octavia_batch` (fully populated create, cascade delete, batch members),
// `projects` (member-token views), `tap` (one run's view for race and
// late-create tests: a write log, slow writes, failing renewals, a held POST).
mod addresses;
mod neutron;
mod neutron_rules;
mod octavia;
mod octavia_batch;
mod projects;
mod routers;
mod schema;
mod security_groups;
mod store;
mod tap;

pub use projects::ProjectView;
pub use routers::RouterMode;
pub use tap::{LATE_KINDS, Tap, Write, WriteLog};
// The unit tests below reach it through `use super::*`.
#[cfg(test)]
use serde_json::json;

/// The trait's verbs, for call counts and fault matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    ProjectId,
    HasService,
    /// `lb_providers`.
    Providers,
    List,
    Get,
    Create,
    Update,
    Delete,
    /// Counted under `Kind::Router`.
    RouterInterface,
    /// `delete_cascade`, counted under `Kind::LoadBalancer`.
    DeleteCascade,
    /// `add_members` (batch member update), counted under the pool's
    /// `Kind::Member`.
    AddMembers,
}

/// A planned failure. `nth` counts calls matching `verb`/`kind` from when
/// the fault was added (1 = the next matching call).
#[derive(Debug, Clone)]
pub struct Fault {
    pub verb: Option<Verb>,
    pub kind: Option<Kind>,
    pub nth: usize,
    pub error: CloudError,
    /// Act first, then fail: the cloud changed but the caller saw an error.
    pub after_effect: bool,
}

/// The in-memory cloud. Shared by `&self` across tasks like the real one.
pub struct FakeCloud {
    state: Mutex<State>,
    /// Slept before every call (`with_latency`): a cloud far away, for
    /// benchmarks of concurrency. Zero by default.
    latency: std::time::Duration,
}

struct State {
    project_id: String,
    /// How routers created from now on are built.
    router_mode: RouterMode,
    /// ML2/OVN with metadata on: every new network gets its metadata port.
    ovn_metadata: bool,
    /// Octavia's allowed-address-pairs driver: every new load balancer
    /// gets an amphora VRRP port beside its VIP port.
    vrrp_ports: bool,
    /// Ids of address groups rules may name (`add_address_group`).
    address_groups: HashSet<String>,
    services: HashSet<Service>,
    /// Octavia's enabled providers (`with_lb_providers`).
    lb_providers: Vec<String>,
    next_id: u64,
    /// Ids count down (`with_ids_counting_down`).
    ids_count_down: bool,
    /// Per collection, in creation order (lists come back in that order).
    store: HashMap<Kind, Vec<Value>>,
    calls: HashMap<(Verb, Option<Kind>), usize>,
    faults: Vec<(Fault, usize)>,
}

impl Default for FakeCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCloud {
    /// A cloud with Neutron and Octavia and project id
    /// `0c0ffee0c0ffee0c0ffee0c0ffee0001`.
    pub fn new() -> Self {
        FakeCloud {
            state: Mutex::new(State {
                project_id: "0c0ffee0c0ffee0c0ffee0c0ffee0001".into(),
                router_mode: RouterMode::Legacy,
                ovn_metadata: false,
                vrrp_ports: false,
                address_groups: HashSet::new(),
                services: [Service::Network, Service::LoadBalancer].into(),
                // As the local cloud's Octavia (scripts/cloud/up.sh).
                lb_providers: vec!["amphora".into()],
                next_id: 0,
                ids_count_down: false,
                store: HashMap::new(),
                calls: HashMap::new(),
                faults: Vec::new(),
            }),
            latency: std::time::Duration::ZERO,
        }
    }

    /// Every call first waits `latency` (on the tokio timer), as a remote
    /// API would; the state changes only after it.
    pub fn with_latency(mut self, latency: std::time::Duration) -> Self {
        self.latency = latency;
        self
    }

    async fn pause(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// The providers Octavia lists as enabled (default: `amphora`).
    pub fn with_lb_providers(self, providers: &[&str]) -> Self {
        self.lock().lb_providers = providers.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Removes a service from the catalog (e.g. a cloud without Octavia).
    pub fn without_service(self, service: Service) -> Self {
        self.lock().services.remove(&service);
        self
    }

    /// Routers created from now on are DVR or L3-HA routers (their
    /// interfaces carry that mode's device owner; see `routers`).
    pub fn with_router_mode(self, mode: RouterMode) -> Self {
        self.lock().router_mode = mode;
        self
    }

    /// Ids made from now on sort before the ones made earlier. Neutron's
    /// ids are random and its `created_at` has whole seconds, so two
    /// resources of one second may sort either way; the default, rising
    /// ids, shows only one of the two orders.
    pub fn with_ids_counting_down(self) -> Self {
        self.lock().ids_count_down = true;
        self
    }

    /// Networks created from now on get ML2/OVN's metadata port
    /// (`network:distributed`, `device_id` `ovnmeta-<network id>`), as
    /// Neutron's OVN driver makes with metadata on (`ovn_client.py`,
    /// `create_metadata_port`).
    pub fn with_ovn_metadata(self) -> Self {
        self.lock().ovn_metadata = true;
        self
    }

    /// Load balancers created from now on get an amphora VRRP port
    /// (`octavia-lb-vrrp-<amphora id>`, attached by Nova, the VIP in its
    /// allowed address pairs), as Octavia's allowed-address-pairs driver
    /// makes; it goes with the load balancer.
    pub fn with_vrrp_ports(self) -> Self {
        self.lock().vrrp_ports = true;
        self
    }

    /// A Neutron address group rules can name as `remote_address_group_id`.
    pub fn add_address_group(&self) -> String {
        let mut st = self.lock();
        let id = st.new_id();
        st.address_groups.insert(id.clone());
        id
    }

    /// The same cloud through a member token of project `project_id`: what
    /// it creates belongs to that project and its lists show only that
    /// project's resources. `FakeCloud` itself answers like an admin token:
    /// lists show every project's resources unless filtered by
    /// `project_id` / `tenant_id`.
    pub fn as_project(&self, project_id: &str) -> ProjectView<'_> {
        ProjectView {
            fake: self,
            project_id: project_id.to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails the `n`th call from now (any verb, any kind) with `error`.
    pub fn fail_nth(&self, n: usize, error: CloudError) {
        self.add_fault(Fault {
            verb: None,
            kind: None,
            nth: n,
            error,
            after_effect: false,
        });
    }

    pub fn add_fault(&self, fault: Fault) {
        self.lock().faults.push((fault, 0));
    }

    /// Faults added that have not fired yet (a test that injects one can
    /// assert that it happened).
    pub fn unfired_faults(&self) -> usize {
        self.lock().faults.len()
    }

    /// Calls of `verb` on `kind` so far (`Member` counts per pool).
    pub fn calls(&self, verb: Verb, kind: &Kind) -> usize {
        self.lock()
            .calls
            .get(&(verb, Some(kind.clone())))
            .copied()
            .unwrap_or(0)
    }

    /// Calls that change the cloud, of every writing verb.
    pub fn write_calls(&self) -> usize {
        [
            Verb::Create,
            Verb::Update,
            Verb::Delete,
            Verb::RouterInterface,
            Verb::DeleteCascade,
            Verb::AddMembers,
        ]
        .into_iter()
        .map(|v| self.calls_of(v))
        .sum()
    }

    /// Calls of `verb` on any kind.
    pub fn calls_of(&self, verb: Verb) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|((v, _), _)| *v == verb)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total_calls(&self) -> usize {
        self.lock().calls.values().sum()
    }

    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    /// Everything of `kind`, as stored, without counting a call.
    pub fn snapshot(&self, kind: &Kind) -> Vec<Value> {
        self.lock().store.get(kind).cloned().unwrap_or_default()
    }

    /// Runs `op` as one counted call, applying any fault that fires.
    fn call<T>(
        &self,
        verb: Verb,
        kind: Option<&Kind>,
        op: impl FnOnce(&mut State) -> CloudResult<T>,
    ) -> CloudResult<T> {
        let mut st = self.lock();
        *st.calls.entry((verb, kind.cloned())).or_default() += 1;
        let mut fired = None;
        let mut i = 0;
        while i < st.faults.len() {
            let (fault, seen) = &mut st.faults[i];
            let matches = fault.verb.is_none_or(|v| v == verb)
                && fault.kind.as_ref().is_none_or(|k| Some(k) == kind);
            if matches {
                *seen += 1;
                if *seen >= fault.nth && fired.is_none() {
                    fired = Some(st.faults.remove(i).0);
                    continue;
                }
            }
            i += 1;
        }
        match fired {
            Some(f) if !f.after_effect => Err(f.error),
            Some(f) => {
                op(&mut st)?;
                Err(f.error)
            }
            None => op(&mut st),
        }
    }
}

// ---------------------------------------------------------------- errors ---

fn rejected(method: &str, kind: &Kind, message: impl Into<String>) -> CloudError {
    CloudError::Rejected {
        method: method.into(),
        path: kind.path(),
        status: 400,
        message: message.into(),
    }
}

fn conflict(message: impl Into<String>) -> CloudError {
    CloudError::Conflict {
        message: message.into(),
    }
}

fn not_found(kind: &Kind, id: &str) -> CloudError {
    CloudError::NotFound {
        what: format!("{kind} {id}"),
    }
}

fn is_octavia(kind: &Kind) -> bool {
    kind.service() == Service::LoadBalancer
}

impl Cloud for FakeCloud {
    async fn project_id(&self) -> CloudResult<String> {
        self.pause().await;
        self.call(Verb::ProjectId, None, |st| Ok(st.project_id.clone()))
    }

    async fn has_service(&self, service: Service) -> CloudResult<bool> {
        self.pause().await;
        self.call(Verb::HasService, None, |st| {
            Ok(st.services.contains(&service))
        })
    }

    async fn lb_providers(&self) -> CloudResult<Vec<String>> {
        self.pause().await;
        self.call(Verb::Providers, None, |st| st.lb_providers())
    }

    async fn list(&self, kind: &Kind, query: &Query) -> CloudResult<Vec<Value>> {
        self.pause().await;
        self.call(Verb::List, Some(kind), |st| {
            if !st.services.contains(&kind.service()) {
                return Err(CloudError::NoEndpoint(kind.service().catalog_type().into()));
            }
            if let Kind::Member { pool_id } = kind
                && st.find(&Kind::Pool, pool_id).is_none()
            {
                return Err(not_found(&Kind::Pool, pool_id));
            }
            st.list(kind, query)
        })
    }

    async fn get(&self, kind: &Kind, id: &str) -> CloudResult<Value> {
        self.pause().await;
        self.call(Verb::Get, Some(kind), |st| {
            if !st.services.contains(&kind.service()) {
                return Err(CloudError::NoEndpoint(kind.service().catalog_type().into()));
            }
            let obj = st
                .find(kind, id)
                .cloned()
                .ok_or_else(|| not_found(kind, id))?;
            if is_octavia(kind)
                && let Some(lb) = st.lb_of(kind, &obj)
            {
                st.settle(&lb);
            }
            st.render(kind, id).ok_or_else(|| not_found(kind, id))
        })
    }

    /// One create per body (so call counts stay per resource), after the
    /// check Neutron makes of a bulk of rules first: all in one security
    /// group (`securitygroups_db.py`: `_validate_single_tenant_and_group`,
    /// `SecurityGroupNotSingleGroupRules`), else nothing is made.
    async fn create_many(&self, kind: &Kind, bodies: Vec<Value>) -> CloudResult<Vec<Value>> {
        if *kind == Kind::SecurityGroupRule {
            let groups: HashSet<&Value> = bodies.iter().map(|b| &b["security_group_id"]).collect();
            if groups.len() > 1 {
                return Err(rejected(
                    "POST",
                    kind,
                    "Only allowed to update rules for one security profile at a time",
                ));
            }
        }
        let mut made = Vec::with_capacity(bodies.len());
        for body in bodies {
            made.push(self.create(kind, body).await?);
        }
        Ok(made)
    }

    async fn create(&self, kind: &Kind, body: Value) -> CloudResult<Value> {
        self.pause().await;
        self.call(Verb::Create, Some(kind), |st| {
            if !st.services.contains(&kind.service()) {
                return Err(CloudError::NoEndpoint(kind.service().catalog_type().into()));
            }
            st.create(kind, body)
        })
    }

    async fn update(&self, kind: &Kind, id: &str, body: Value) -> CloudResult<Value> {
        self.pause().await;
        self.call(Verb::Update, Some(kind), |st| st.update(kind, id, body))
    }

    async fn update_if(&self, kind: &Kind, id: &str, body: Value, rev: u64) -> CloudResult<Value> {
        self.pause().await;
        self.call(Verb::Update, Some(kind), |st| {
            st.revision_is(kind, id, rev)?;
            st.update(kind, id, body)
        })
    }

    async fn delete(&self, kind: &Kind, id: &str) -> CloudResult<()> {
        self.pause().await;
        self.call(Verb::Delete, Some(kind), |st| st.delete(kind, id))
    }

    async fn delete_cascade(&self, lb_id: &str) -> CloudResult<()> {
        self.pause().await;
        self.call(Verb::DeleteCascade, Some(&Kind::LoadBalancer), |st| {
            st.delete_cascade(lb_id)
        })
    }

    async fn add_members(&self, pool_id: &str, members: Vec<Value>) -> CloudResult<()> {
        self.pause().await;
        let kind = Kind::Member {
            pool_id: pool_id.to_string(),
        };
        self.call(Verb::AddMembers, Some(&kind), |st| {
            st.add_members(pool_id, members)
        })
    }

    async fn router_interface(&self, router: &str, subnet: &str, add: bool) -> CloudResult<()> {
        self.pause().await;
        self.call(Verb::RouterInterface, Some(&Kind::Router), |st| {
            st.router_interface(router, subnet, add)
        })
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_neutron;
