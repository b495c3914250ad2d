//! The one door between the engine and a cloud.
//!
//! The engine sees OpenStack as JSON resources in collections (`Kind`) and a
//! handful of verbs (`Cloud`). The real client (`openstack`) speaks HTTP to
//! Keystone, Neutron and Octavia; `fake` (feature `fake`, or `cfg(test)`) keeps
//! resources in memory for fast unit tests. Bodies are the APIs' own JSON objects (the inner object, not
//! the `{"network": …}` envelope), so nothing is lost in translation.

pub mod config;
// Test support, not product: see the `fake` feature in Cargo.toml.
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod gate;
pub mod openstack;

pub use config::{CloudConfig, Discovery, Secret};
#[cfg(any(test, feature = "fake"))]
pub use fake::FakeCloud;
pub use openstack::{ConnectOptions, OpenStack};

use serde_json::Value;
use std::fmt;

/// Which API a collection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Neutron, catalog type `network`.
    Network,
    /// Octavia, catalog type `load-balancer`.
    LoadBalancer,
}

impl Service {
    /// The service's type in the Keystone catalog.
    pub fn catalog_type(self) -> &'static str {
        match self {
            Service::Network => "network",
            Service::LoadBalancer => "load-balancer",
        }
    }
}

/// A collection of resources. `Member` lives under its pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    Network,
    Subnet,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Port,
    LoadBalancer,
    Listener,
    Pool,
    Member { pool_id: String },
}

impl Kind {
    pub fn service(&self) -> Service {
        match self {
            Kind::LoadBalancer | Kind::Listener | Kind::Pool | Kind::Member { .. } => {
                Service::LoadBalancer
            }
            _ => Service::Network,
        }
    }

    /// Whether the API takes this kind's creates in one bulk POST
    /// (`{"networks": […]}`); the ones kuryr6 makes in numbers.
    pub fn bulk_create(&self) -> bool {
        matches!(self, Kind::Network | Kind::Subnet | Kind::SecurityGroupRule)
    }

    /// Path below the service endpoint (Neutron's `/v2.0` included).
    pub fn path(&self) -> String {
        match self {
            Kind::Network => "/v2.0/networks".into(),
            Kind::Subnet => "/v2.0/subnets".into(),
            Kind::Router => "/v2.0/routers".into(),
            Kind::SecurityGroup => "/v2.0/security-groups".into(),
            Kind::SecurityGroupRule => "/v2.0/security-group-rules".into(),
            Kind::Port => "/v2.0/ports".into(),
            Kind::LoadBalancer => "/v2/lbaas/loadbalancers".into(),
            Kind::Listener => "/v2/lbaas/listeners".into(),
            Kind::Pool => "/v2/lbaas/pools".into(),
            Kind::Member { pool_id } => format!("/v2/lbaas/pools/{pool_id}/members"),
        }
    }

    /// JSON envelope key of one resource (`{"network": {…}}`).
    pub fn singular(&self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Router => "router",
            Kind::SecurityGroup => "security_group",
            Kind::SecurityGroupRule => "security_group_rule",
            Kind::Port => "port",
            Kind::LoadBalancer => "loadbalancer",
            Kind::Listener => "listener",
            Kind::Pool => "pool",
            Kind::Member { .. } => "member",
        }
    }

    /// JSON envelope key of a list (`{"networks": […]}`).
    pub fn plural(&self) -> &'static str {
        match self {
            Kind::Network => "networks",
            Kind::Subnet => "subnets",
            Kind::Router => "routers",
            Kind::SecurityGroup => "security_groups",
            Kind::SecurityGroupRule => "security_group_rules",
            Kind::Port => "ports",
            Kind::LoadBalancer => "loadbalancers",
            Kind::Listener => "listeners",
            Kind::Pool => "pools",
            Kind::Member { .. } => "members",
        }
    }

    /// Whether resources of this kind carry tags (filterable with `?tags=`).
    pub fn taggable(&self) -> bool {
        !matches!(self, Kind::SecurityGroupRule)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.singular())
    }
}

/// What every `Cloud` call answers; short so that the trait's signatures
/// and their implementations read on one line.
pub type CloudResult<T> = Result<T, CloudError>;

/// What went wrong talking to the cloud. Never carries a secret: bodies of
/// requests are not included, only the API's error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// 401/403, or credentials the identity service refused.
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("{what} not found")]
    NotFound { what: String },
    /// 409: the API says the request conflicts with current state.
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// 400 and other refusals that retrying will not fix.
    #[error("{method} {path} was refused ({status}): {message}")]
    Rejected {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// 412: a conditional write (`Cloud::update_if`) found the resource at
    /// another revision: someone changed it since it was read.
    #[error("{what} changed since it was read (412)")]
    RevisionChanged { what: String },
    /// 5xx, 429 or a lost connection that outlived the retries.
    #[error("{0}")]
    Unavailable(String),
    /// Configuration: no such cloud, missing auth fields, bad CA file …
    #[error("{0}")]
    Config(String),
    /// The catalog has no endpoint for a service the pipeline needs.
    #[error("the service catalog has no {0} endpoint")]
    NoEndpoint(String),
}

/// The tags `resource` has plus the missing ones of `tags`; `None` when
/// none is missing (nothing to write).
pub fn with_tags(resource: &Value, tags: &[String]) -> Option<Vec<String>> {
    let mut all: Vec<String> = resource["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let missing: Vec<String> = tags.iter().filter(|t| !all.contains(t)).cloned().collect();
    if missing.is_empty() {
        return None;
    }
    all.extend(missing);
    Some(all)
}

/// Query parameters; keys may repeat (`?name=a&name=b` means a OR b).
pub type Query = Vec<(String, String)>;

/// Everything the engine needs from a cloud. Implementations retry
/// transient faults themselves (429 with Retry-After, 5xx and resets for
/// requests that are safe to repeat); an `Err` is final for this call.
///
/// Creates are the exception: a create is sent at most once unless the
/// server cannot have acted on it, so `Unavailable` from `create`,
/// `create_many` or adding a router interface is *ambiguous*: the write may
/// or may not have landed. The engine reads back and decides
/// (`engine::create`); implementations never repeat such a write blindly.
///
/// Tags on create: Neutron refuses `tags` in a POST body (400 "Attribute
/// 'tags' not allowed in POST") for every kind but ports, so the engine
/// creates Neutron resources without tags and adds them with `add_tags`
/// right after; Octavia takes `tags` in the create body, and the engine
/// sends them there. Implementations pass bodies through unchanged.
#[allow(async_fn_in_trait)]
pub trait Cloud {
    /// Project id of the authenticated scope (goes into kuryr.conf).
    async fn project_id(&self) -> CloudResult<String>;
    /// Whether the catalog offers this service.
    async fn has_service(&self, service: Service) -> CloudResult<bool>;
    async fn list(&self, kind: &Kind, query: &Query) -> CloudResult<Vec<Value>>;
    async fn get(&self, kind: &Kind, id: &str) -> CloudResult<Value>;
    /// One POST of `body` (the inner object); returns the created resource.
    /// See the trait's notes on ambiguous failures and tags.
    async fn create(&self, kind: &Kind, body: Value) -> CloudResult<Value>;
    /// Creates several resources of one kind; the result is in the order of
    /// `bodies`. Neutron creates networks, subnets and rules in one call;
    /// elsewhere this is one create after the other. After an ambiguous
    /// failure any subset of `bodies` may exist.
    async fn create_many(&self, kind: &Kind, bodies: Vec<Value>) -> CloudResult<Vec<Value>> {
        let mut made = Vec::with_capacity(bodies.len());
        for body in bodies {
            made.push(self.create(kind, body).await?);
        }
        Ok(made)
    }
    async fn update(&self, kind: &Kind, id: &str, body: Value) -> CloudResult<Value>;
    /// `update`, applied only if the resource is still at revision `rev`
    /// (Neutron's `revision_number`, sent as `If-Match:
    /// revision_number=N`): a compare-and-swap. `RevisionChanged` when it
    /// moved. Retried like any update, so a write that landed but whose
    /// answer was lost answers `RevisionChanged` on its retry: the caller
    /// reads back to tell whose write it was.
    async fn update_if(&self, kind: &Kind, id: &str, body: Value, rev: u64) -> CloudResult<Value>;
    /// `update_if` for a lease renewal: sent at once, never queued behind
    /// this client's other requests or the pause a 429 set, and tried once
    /// with a short time limit, so that a busy or throttled run renews
    /// before its record expires. The lease retries on its own clock.
    async fn renew(&self, kind: &Kind, id: &str, body: Value, rev: u64) -> CloudResult<Value> {
        self.update_if(kind, id, body, rev).await
    }
    /// `get` in the lane of `renew` (a renewal's read-back).
    async fn get_now(&self, kind: &Kind, id: &str) -> CloudResult<Value> {
        self.get(kind, id).await
    }
    /// The names of the load-balancer providers Octavia enables (`GET
    /// /v2/lbaas/providers`), asked only by a pipeline that names one.
    async fn lb_providers(&self) -> CloudResult<Vec<String>>;
    /// A resource already gone counts as deleted.
    async fn delete(&self, kind: &Kind, id: &str) -> CloudResult<()>;
    /// Deletes a load balancer with everything under it in one call
    /// (Octavia: `DELETE /v2/lbaas/loadbalancers/{id}?cascade=true` takes
    /// its listeners, pools, members, health monitors and L7 policies).
    /// Octavia finishes the work after answering: the load balancer stays
    /// `PENDING_DELETE` until it is gone. Already gone counts as deleted.
    async fn delete_cascade(&self, lb_id: &str) -> CloudResult<()>;
    /// Octavia's batch member update, additive only (`PUT
    /// /v2/lbaas/pools/{id}/members?additive_only=true`): `members` (create
    /// bodies) join the pool, matched with the ones it has by address and
    /// port (a match is updated, not made anew); the others stay. Answered
    /// before the work is done: wait for the load balancer. Safe to repeat:
    /// it names an end state.
    async fn add_members(&self, pool_id: &str, members: Vec<Value>) -> CloudResult<()>;
    /// Sets the tags of a resource that has none yet (one just created):
    /// one call where the API replaces a tag set at once (Neutron:
    /// `PUT …/{id}/tags`). On a resource with tags it would drop them: use
    /// `add_tags` there.
    async fn set_new_tags(&self, kind: &Kind, id: &str, tags: &[String]) -> CloudResult<()> {
        self.add_tags(kind, id, tags).await
    }
    /// Adds tags to a resource, keeping the ones it has (Neutron:
    /// `PUT …/{id}/tags/{tag}`; Octavia: an update of `tags`). Safe to
    /// repeat.
    async fn add_tags(&self, kind: &Kind, id: &str, tags: &[String]) -> CloudResult<()> {
        let current = self.get(kind, id).await?;
        match with_tags(&current, tags) {
            // `tags` in an update replace the resource's tags (see `update`).
            Some(all) => self
                .update(kind, id, serde_json::json!({ "tags": all }))
                .await
                .map(|_| ()),
            None => Ok(()),
        }
    }
    /// `PUT /v2.0/routers/{id}/add_router_interface` (or remove) by subnet id.
    async fn router_interface(&self, router: &str, subnet: &str, add: bool) -> CloudResult<()>;
}
