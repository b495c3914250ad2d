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

use super::{Cloud, CloudError, Kind, Query, Service};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

/// The trait's verbs, for call counts and fault matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    ProjectId,
    HasService,
    List,
    Get,
    Create,
    Update,
    Delete,
    /// Counted under `Kind::Router`.
    RouterInterface,
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
    /// Ids of address groups rules may name (`add_address_group`).
    address_groups: HashSet<String>,
    services: HashSet<Service>,
    next_id: u64,
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
                address_groups: HashSet::new(),
                services: [Service::Network, Service::LoadBalancer].into(),
                next_id: 0,
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

    /// Calls of `verb` on `kind` so far (`Member` counts per pool).
    pub fn calls(&self, verb: Verb, kind: &Kind) -> usize {
        self.lock()
            .calls
            .get(&(verb, Some(kind.clone())))
            .copied()
            .unwrap_or(0)
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
        op: impl FnOnce(&mut State) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
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

// ------------------------------------------------------------ addresses ---

/// Canonical text of an address (RFC 5952 for IPv6, as Neutron stores it).
fn canon_ip(text: &str) -> Option<String> {
    text.trim().parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

fn parse_ip(v: &Value) -> Option<IpAddr> {
    v.as_str()?.trim().parse().ok()
}

fn parse_net(v: &Value) -> Option<IpNet> {
    v.as_str()?.trim().parse().ok()
}

fn ip_add(ip: IpAddr, n: u128) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a)
            .checked_add(u32::try_from(n).ok()?)
            .map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(a) => u128::from(a).checked_add(n).map(|x| IpAddr::V6(x.into())),
    }
}

fn ip_sub1(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a).checked_sub(1).map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(a) => u128::from(a).checked_sub(1).map(|x| IpAddr::V6(x.into())),
    }
}

/// A pool as (start, end), inclusive.
type Pool = (IpAddr, IpAddr);

fn pool_text(p: &Pool) -> String {
    format!("{}-{}", p.0, p.1)
}

fn pools_of(subnet: &Value) -> Vec<Pool> {
    subnet
        .get("allocation_pools")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| Some((parse_ip(p.get("start")?)?, parse_ip(p.get("end")?)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Neutron's default pools: the CIDR minus the network address (and the
/// broadcast address for IPv4), minus the gateway.
fn default_pools(net: &IpNet, gateway: Option<IpAddr>) -> Vec<Pool> {
    let first = ip_add(net.network(), 1);
    let last = match net {
        IpNet::V4(_) => ip_sub1(net.broadcast()),
        IpNet::V6(_) => Some(net.broadcast()),
    };
    let (Some(first), Some(last)) = (first, last) else {
        return vec![];
    };
    if first > last {
        return vec![];
    }
    match gateway {
        Some(g) if g >= first && g <= last => {
            let mut out = vec![];
            if g > first
                && let Some(b) = ip_sub1(g)
            {
                out.push((first, b));
            }
            if g < last
                && let Some(a) = ip_add(g, 1)
            {
                out.push((a, last));
            }
            out
        }
        _ => vec![(first, last)],
    }
}

// ------------------------------------------------------------- templates ---

/// Fields a new resource gets when the body leaves them out; the keys are
/// also the attributes the API knows (others are refused on create and as
/// filters). `None` means required.
fn template(kind: &Kind) -> Vec<(&'static str, Option<Value>)> {
    let common_neutron = [
        ("name", Some(json!(""))),
        ("description", Some(json!(""))),
        ("tags", Some(json!([]))),
        ("project_id", None),
        ("tenant_id", None),
        ("revision_number", None),
        ("created_at", None),
        ("updated_at", None),
    ];
    let common_octavia = [
        ("name", Some(json!(""))),
        ("description", Some(json!(""))),
        ("tags", Some(json!([]))),
        ("project_id", None),
        ("admin_state_up", Some(json!(true))),
        ("provisioning_status", None),
        ("operating_status", None),
        ("created_at", None),
        ("updated_at", None),
    ];
    let mut fields: Vec<(&'static str, Option<Value>)> = match kind {
        Kind::Network => vec![
            ("admin_state_up", Some(json!(true))),
            ("status", Some(json!("ACTIVE"))),
            ("shared", Some(json!(false))),
            ("subnets", Some(json!([]))),
            ("mtu", Some(json!(1450))),
            ("port_security_enabled", Some(json!(true))),
            ("router:external", Some(json!(false))),
            ("availability_zone_hints", Some(json!([]))),
            ("availability_zones", Some(json!([]))),
            ("ipv4_address_scope", Some(Value::Null)),
            ("ipv6_address_scope", Some(Value::Null)),
            ("provider:network_type", Some(json!("vxlan"))),
            ("provider:physical_network", Some(Value::Null)),
            ("provider:segmentation_id", Some(Value::Null)),
            ("dns_domain", Some(json!(""))),
        ],
        Kind::Subnet => vec![
            ("network_id", None),
            ("ip_version", None),
            ("cidr", None),
            ("gateway_ip", None),
            ("allocation_pools", None),
            ("enable_dhcp", Some(json!(true))),
            ("dns_nameservers", Some(json!([]))),
            ("host_routes", Some(json!([]))),
            ("ipv6_ra_mode", Some(Value::Null)),
            ("ipv6_address_mode", Some(Value::Null)),
            ("subnetpool_id", Some(Value::Null)),
            ("service_types", Some(json!([]))),
            ("segment_id", Some(Value::Null)),
            ("dns_publish_fixed_ip", Some(json!(false))),
        ],
        Kind::Router => vec![
            ("admin_state_up", Some(json!(true))),
            ("status", Some(json!("ACTIVE"))),
            ("external_gateway_info", Some(Value::Null)),
            ("routes", Some(json!([]))),
            ("distributed", Some(json!(false))),
            ("ha", Some(json!(false))),
            ("flavor_id", Some(Value::Null)),
            ("availability_zone_hints", Some(json!([]))),
            ("availability_zones", Some(json!([]))),
        ],
        Kind::SecurityGroup => vec![
            ("security_group_rules", None),
            ("stateful", Some(json!(true))),
            ("shared", Some(json!(false))),
        ],
        Kind::SecurityGroupRule => vec![
            ("security_group_id", None),
            ("direction", None),
            ("ethertype", Some(json!("IPv4"))),
            ("protocol", Some(Value::Null)),
            ("port_range_min", Some(Value::Null)),
            ("port_range_max", Some(Value::Null)),
            ("remote_ip_prefix", Some(Value::Null)),
            ("remote_group_id", Some(Value::Null)),
            ("remote_address_group_id", Some(Value::Null)),
            ("normalized_cidr", None),
            ("belongs_to_default_sg", Some(json!(false))),
        ],
        Kind::Port => vec![
            ("network_id", None),
            ("admin_state_up", Some(json!(true))),
            ("status", Some(json!("DOWN"))),
            ("mac_address", None),
            ("fixed_ips", None),
            ("device_id", Some(json!(""))),
            ("device_owner", Some(json!(""))),
            ("security_groups", Some(json!([]))),
            ("allowed_address_pairs", Some(json!([]))),
            ("binding:vnic_type", Some(json!("normal"))),
            ("binding:host_id", Some(json!(""))),
            ("port_security_enabled", Some(json!(true))),
        ],
        Kind::LoadBalancer => vec![
            ("vip_subnet_id", None),
            ("vip_network_id", None),
            ("vip_address", None),
            ("vip_port_id", None),
            ("provider", Some(json!("amphora"))),
            ("flavor_id", Some(Value::Null)),
            ("availability_zone", Some(Value::Null)),
            ("listeners", Some(json!([]))),
            ("pools", Some(json!([]))),
        ],
        Kind::Listener => vec![
            ("loadbalancer_id", None),
            ("protocol", None),
            ("protocol_port", None),
            ("default_pool_id", Some(Value::Null)),
            ("connection_limit", Some(json!(-1))),
            ("loadbalancers", None),
            ("allowed_cidrs", Some(Value::Null)),
            ("timeout_client_data", Some(json!(50000))),
            ("timeout_member_data", Some(json!(50000))),
            ("default_tls_container_ref", Some(Value::Null)),
        ],
        Kind::Pool => vec![
            ("loadbalancer_id", Some(Value::Null)),
            ("listener_id", Some(Value::Null)),
            ("protocol", None),
            ("lb_algorithm", None),
            ("session_persistence", Some(Value::Null)),
            ("healthmonitor_id", Some(Value::Null)),
            ("loadbalancers", None),
            ("listeners", None),
            ("members", None),
        ],
        Kind::Member { .. } => vec![
            ("address", None),
            ("protocol_port", None),
            ("subnet_id", Some(Value::Null)),
            ("weight", Some(json!(1))),
            ("backup", Some(json!(false))),
            ("monitor_address", Some(Value::Null)),
            ("monitor_port", Some(Value::Null)),
        ],
    };
    if is_octavia(kind) {
        fields.extend(common_octavia);
    } else if matches!(kind, Kind::SecurityGroupRule) {
        fields.extend(
            common_neutron
                .into_iter()
                .filter(|(k, _)| *k != "name" && *k != "tags"),
        );
    } else {
        fields.extend(common_neutron);
    }
    fields
}

/// Neutron's limits: unique strings of at most 255 characters, at most 50.
fn check_tags(method: &str, kind: &Kind, tags: &Value) -> Result<(), CloudError> {
    let Some(list) = tags.as_array() else {
        return Err(rejected(
            method,
            kind,
            "Invalid input for tags: must be a list of strings",
        ));
    };
    let mut seen = HashSet::new();
    for t in list {
        match t.as_str() {
            Some(s) if !s.is_empty() && s.len() <= 255 && seen.insert(s) => {}
            _ => {
                return Err(rejected(
                    method,
                    kind,
                    format!(
                        "Invalid input for tags: {t} is not a unique string of 1 to 255 characters"
                    ),
                ));
            }
        }
    }
    if list.len() > 50 {
        return Err(rejected(
            method,
            kind,
            "The number of tags exceed the per-resource limit of 50",
        ));
    }
    Ok(())
}

/// Attributes the caller may send on create (the rest are computed).
fn creatable(kind: &Kind, key: &str) -> bool {
    const COMPUTED: &[&str] = &[
        "revision_number",
        "created_at",
        "updated_at",
        "status",
        "subnets",
        "security_group_rules",
        "normalized_cidr",
        "belongs_to_default_sg",
        "provisioning_status",
        "operating_status",
        "listeners",
        "pools",
        "loadbalancers",
        "members",
        "availability_zones",
        "vip_port_id",
        "vip_network_id",
    ];
    template(kind).iter().any(|(k, _)| *k == key) && !COMPUTED.contains(&key) || key == "id"
}

/// Attributes an update may change.
fn updatable(kind: &Kind, key: &str) -> bool {
    // Tags are updatable through the trait on every taggable kind (the real
    // client uses Neutron's `…/tags` API where the body cannot carry them).
    const COMMON: &[&str] = &["name", "description", "admin_state_up", "tags"];
    let specific: &[&str] = match kind {
        Kind::Network => &["shared", "mtu", "port_security_enabled", "dns_domain"],
        Kind::Subnet => &[
            "gateway_ip",
            "allocation_pools",
            "enable_dhcp",
            "dns_nameservers",
            "host_routes",
            "service_types",
        ],
        Kind::Router => &["external_gateway_info", "routes"],
        Kind::SecurityGroup => &["stateful"],
        Kind::SecurityGroupRule => &[],
        Kind::Port => &[
            "fixed_ips",
            "device_id",
            "device_owner",
            "security_groups",
            "allowed_address_pairs",
            "port_security_enabled",
            "binding:host_id",
        ],
        Kind::LoadBalancer => &[],
        Kind::Listener => &[
            "default_pool_id",
            "connection_limit",
            "allowed_cidrs",
            "timeout_client_data",
            "timeout_member_data",
        ],
        Kind::Pool => &["lb_algorithm", "session_persistence"],
        Kind::Member { .. } => &["weight", "backup", "monitor_address", "monitor_port"],
    };
    if matches!(kind, Kind::SecurityGroupRule) {
        return key == "description";
    }
    COMMON.contains(&key) || specific.contains(&key)
}

// ---------------------------------------------------------------- state ---

impl State {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            0x6b79_7236u32, self.next_id
        )
    }

    fn all(&self, kind: &Kind) -> &[Value] {
        self.store.get(kind).map(Vec::as_slice).unwrap_or(&[])
    }

    fn find(&self, kind: &Kind, id: &str) -> Option<&Value> {
        self.all(kind).iter().find(|v| v["id"] == id)
    }

    fn find_mut(&mut self, kind: &Kind, id: &str) -> Option<&mut Value> {
        self.store.get_mut(kind)?.iter_mut().find(|v| v["id"] == id)
    }

    fn remove(&mut self, kind: &Kind, id: &str) -> Option<Value> {
        let list = self.store.get_mut(kind)?;
        let i = list.iter().position(|v| v["id"] == id)?;
        Some(list.remove(i))
    }

    fn push(&mut self, kind: &Kind, v: Value) {
        self.store.entry(kind.clone()).or_default().push(v);
    }

    fn exists(&self, kind: &Kind, v: &Value) -> bool {
        v.as_str().is_some_and(|id| self.find(kind, id).is_some())
    }

    /// Fills the template, refusing unknown attributes and missing required
    /// ones. `computed` supplies required fields the API computes.
    fn build(&mut self, kind: &Kind, body: Value) -> Result<Map<String, Value>, CloudError> {
        let Value::Object(body) = body else {
            return Err(rejected(
                "POST",
                kind,
                "The request body must be a JSON object",
            ));
        };
        let unknown: Vec<&str> = body
            .keys()
            .map(String::as_str)
            .filter(|k| !creatable(kind, k))
            .collect();
        if !unknown.is_empty() {
            return Err(rejected(
                "POST",
                kind,
                format!(
                    "Unrecognized attribute(s) '{}' (HTTPBadRequest)",
                    unknown.join(", ")
                ),
            ));
        }
        // Neutron 29's tag API takes tags on create for ports only (bulk
        // port creation); elsewhere it answers exactly this.
        if body.contains_key("tags") && !is_octavia(kind) && !matches!(kind, Kind::Port) {
            return Err(rejected(
                "POST",
                kind,
                "Attribute 'tags' not allowed in POST (HTTPBadRequest)",
            ));
        }
        if let Some(tags) = body.get("tags") {
            check_tags("POST", kind, tags)?;
        }
        let mut obj = Map::new();
        let id = self.new_id();
        obj.insert("id".into(), json!(id));
        for (key, default) in template(kind) {
            if let Some(v) = body.get(key) {
                obj.insert(key.into(), v.clone());
            } else if let Some(d) = default {
                obj.insert(key.into(), d);
            }
        }
        obj.insert("project_id".into(), json!(self.project_id));
        if !is_octavia(kind) {
            obj.insert("tenant_id".into(), json!(self.project_id));
            // As measured on Neutron 29: a new network shows 1, the rest 0.
            let first = if matches!(kind, Kind::Network) { 1 } else { 0 };
            obj.insert("revision_number".into(), json!(first));
        }
        obj.insert("created_at".into(), json!("2025-01-01T00:00:00Z"));
        obj.insert("updated_at".into(), json!("2025-01-01T00:00:00Z"));
        Ok(obj)
    }

    fn required(obj: &Map<String, Value>, kind: &Kind, key: &str) -> Result<Value, CloudError> {
        match obj.get(key) {
            Some(v) if !v.is_null() => Ok(v.clone()),
            _ => Err(rejected(
                "POST",
                kind,
                format!(
                    "Failed to parse request. Required attribute '{key}' not specified (HTTPBadRequest)"
                ),
            )),
        }
    }

    // --------------------------------------------------------- create ---

    fn create(&mut self, kind: &Kind, body: Value) -> Result<Value, CloudError> {
        let mut obj = self.build(kind, body)?;
        match kind {
            Kind::Network => {}
            Kind::Router => self.new_router(&mut obj)?,
            Kind::Subnet => self.new_subnet(kind, &mut obj)?,
            Kind::SecurityGroup => {
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
                return out.ok_or_else(|| not_found(kind, &id));
            }
            Kind::SecurityGroupRule => obj = self.new_rule(obj)?,
            Kind::Port => self.new_port(kind, &mut obj)?,
            Kind::LoadBalancer => self.new_lb(kind, &mut obj)?,
            Kind::Listener => self.new_listener(kind, &mut obj)?,
            Kind::Pool => self.new_pool(kind, &mut obj)?,
            Kind::Member { pool_id } => self.new_member(kind, pool_id, &mut obj)?,
        }
        if is_octavia(kind) {
            obj.insert("provisioning_status".into(), json!("PENDING_CREATE"));
            obj.insert("operating_status".into(), json!("OFFLINE"));
        }
        let id = obj["id"].as_str().unwrap_or_default().to_owned();
        self.push(kind, Value::Object(obj));
        self.render(kind, &id).ok_or_else(|| not_found(kind, &id))
    }

    fn new_subnet(&mut self, kind: &Kind, obj: &mut Map<String, Value>) -> Result<(), CloudError> {
        let network_id = Self::required(obj, kind, "network_id")?;
        if !self.exists(&Kind::Network, &network_id) {
            return Err(CloudError::NotFound {
                what: format!("network {}", network_id.as_str().unwrap_or("?")),
            });
        }
        let version = Self::required(obj, kind, "ip_version")?;
        let version = match version.as_u64() {
            Some(v @ (4 | 6)) => v,
            _ => {
                return Err(rejected(
                    "POST",
                    kind,
                    "Invalid input for ip_version. Reason: must be 4 or 6.",
                ));
            }
        };
        let cidr_text = Self::required(obj, kind, "cidr")?;
        let net = parse_net(&cidr_text).ok_or_else(|| {
            rejected(
                "POST",
                kind,
                format!(
                    "Invalid input for cidr. Reason: '{}' is not a valid IP subnet.",
                    cidr_text.as_str().unwrap_or("?")
                ),
            )
        })?;
        // Neutron 29 accepts host bits and stores the network (measured).
        let net = net.trunc();
        let family = if net.addr().is_ipv4() { 4 } else { 6 };
        if family != version {
            return Err(rejected(
                "POST",
                kind,
                format!(
                    "Invalid input for operation: Cannot use IPv{family} cidr {net} with ip_version {version}."
                ),
            ));
        }
        for other in self.all(&Kind::Subnet) {
            if other["network_id"] == network_id
                && let Some(o) = parse_net(&other["cidr"])
                && (o.contains(&net.network()) || net.contains(&o.network()))
            {
                return Err(rejected(
                    "POST",
                    kind,
                    format!(
                        "Invalid input for operation: Requested subnet with cidr: {net} for network: {} overlaps with another subnet. (InvalidInput)",
                        network_id.as_str().unwrap_or("?")
                    ),
                ));
            }
        }
        obj.insert("cidr".into(), json!(net.to_string()));
        // Neutron 29's default gateway: first host for IPv4, the
        // subnet-router anycast address (the network address) for IPv6.
        let gateway = match obj.get("gateway_ip") {
            None => Some(match net {
                IpNet::V4(_) => ip_add(net.network(), 1).unwrap_or(net.network()),
                IpNet::V6(_) => net.network(),
            }),
            Some(Value::Null) => None,
            Some(v) => Some(parse_ip(v).ok_or_else(|| {
                rejected(
                    "POST",
                    kind,
                    "Invalid input for gateway_ip. Reason: not a valid IP address.",
                )
            })?),
        };
        obj.insert("gateway_ip".into(), json!(gateway.map(|g| g.to_string())));
        if !obj.contains_key("allocation_pools") || obj["allocation_pools"].is_null() {
            let pools: Vec<Value> = default_pools(&net, gateway)
                .iter()
                .map(|(s, e)| json!({"start": s.to_string(), "end": e.to_string()}))
                .collect();
            obj.insert("allocation_pools".into(), json!(pools));
        }
        let pools = Self::check_pools("POST", kind, &net, gateway, &obj["allocation_pools"])?;
        obj.insert("allocation_pools".into(), pools);
        let id = obj["id"].clone();
        if let Some(n) = network_id
            .as_str()
            .and_then(|n| self.find_mut(&Kind::Network, n))
            && let Some(subnets) = n["subnets"].as_array_mut()
        {
            subnets.push(id);
        }
        Ok(())
    }

    /// Validates pools like Neutron and returns them canonical.
    fn check_pools(
        method: &str,
        kind: &Kind,
        net: &IpNet,
        gateway: Option<IpAddr>,
        pools: &Value,
    ) -> Result<Value, CloudError> {
        let Some(list) = pools.as_array() else {
            return Err(rejected(
                method,
                kind,
                "Invalid input for allocation_pools. Reason: must be a list.",
            ));
        };
        let mut parsed: Vec<Pool> = Vec::new();
        for p in list {
            let (Some(s), Some(e)) = (
                p.get("start").and_then(parse_ip),
                p.get("end").and_then(parse_ip),
            ) else {
                return Err(rejected(
                    method,
                    kind,
                    format!("The allocation pool {p} is not valid."),
                ));
            };
            if s.is_ipv4() != net.addr().is_ipv4() || s > e {
                return Err(rejected(
                    method,
                    kind,
                    format!("The allocation pool {} is not valid.", pool_text(&(s, e))),
                ));
            }
            if !net.contains(&s) || !net.contains(&e) {
                return Err(rejected(
                    method,
                    kind,
                    format!(
                        "The allocation pool {} spans beyond the subnet cidr {net}. (OutOfBoundsAllocationPool)",
                        pool_text(&(s, e))
                    ),
                ));
            }
            parsed.push((s, e));
        }
        for (i, a) in parsed.iter().enumerate() {
            for b in &parsed[i + 1..] {
                if a.0 <= b.1 && b.0 <= a.1 {
                    return Err(rejected(
                        method,
                        kind,
                        format!(
                            "Found overlapping allocation pools: {} {} for subnet {net}.",
                            pool_text(a),
                            pool_text(b)
                        ),
                    ));
                }
            }
        }
        if let Some(g) = gateway
            && let Some(p) = parsed.iter().find(|p| g >= p.0 && g <= p.1)
        {
            return Err(conflict(format!(
                "Gateway ip {g} conflicts with allocation pool {}. (GatewayConflictWithAllocationPools)",
                pool_text(p)
            )));
        }
        Ok(json!(
            parsed
                .iter()
                .map(|(s, e)| json!({"start": s.to_string(), "end": e.to_string()}))
                .collect::<Vec<_>>()
        ))
    }

    fn new_rule(&mut self, mut obj: Map<String, Value>) -> Result<Map<String, Value>, CloudError> {
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

    /// Addresses in use on a subnet (ports' fixed IPs).
    fn used_ips(&self, subnet_id: &str) -> HashSet<IpAddr> {
        self.all(&Kind::Port)
            .iter()
            .flat_map(|p| p["fixed_ips"].as_array().cloned().unwrap_or_default())
            .filter(|f| f["subnet_id"] == subnet_id)
            .filter_map(|f| parse_ip(&f["ip_address"]))
            .collect()
    }

    /// The lowest free address of the subnet's pools.
    fn allocate(&self, subnet: &Value) -> Option<IpAddr> {
        let used = self.used_ips(subnet["id"].as_str().unwrap_or_default());
        for (start, end) in pools_of(subnet) {
            let mut ip = start;
            loop {
                if !used.contains(&ip) {
                    return Some(ip);
                }
                if ip >= end {
                    break;
                }
                ip = ip_add(ip, 1)?;
            }
        }
        None
    }

    /// Resolves requested fixed IPs (or one per subnet of the network when
    /// none are asked for) into canonical `{subnet_id, ip_address}`.
    fn fixed_ips(
        &self,
        kind: &Kind,
        network_id: &str,
        requested: Option<&Value>,
    ) -> Result<Value, CloudError> {
        let subnets: Vec<Value> = self
            .all(&Kind::Subnet)
            .iter()
            .filter(|s| s["network_id"] == network_id)
            .cloned()
            .collect();
        let wanted: Vec<Value> = match requested {
            Some(Value::Array(list)) => list.clone(),
            Some(Value::Null) | None => {
                // One address per family, first subnet of each.
                let mut seen = HashSet::new();
                subnets
                    .iter()
                    .filter(|s| seen.insert(s["ip_version"].clone()))
                    .map(|s| json!({"subnet_id": s["id"]}))
                    .collect()
            }
            Some(_) => {
                return Err(rejected(
                    "POST",
                    kind,
                    "Invalid input for fixed_ips. Reason: must be a list.",
                ));
            }
        };
        let mut out = Vec::new();
        let mut taken: HashSet<(String, IpAddr)> = HashSet::new();
        for want in wanted {
            let subnet = match (want.get("subnet_id"), want.get("ip_address").and_then(parse_ip)) {
                (Some(id), _) => subnets.iter().find(|s| &s["id"] == id).cloned().ok_or_else(|| {
                    rejected("POST", kind, format!("Invalid input for operation: Failed to create port on network {network_id}, because fixed_ips included invalid subnet {}.", id.as_str().unwrap_or("?")))
                })?,
                (None, Some(ip)) => subnets
                    .iter()
                    .find(|s| parse_net(&s["cidr"]).is_some_and(|n| n.contains(&ip)))
                    .cloned()
                    .ok_or_else(|| rejected("POST", kind, format!("IP address {ip} is not a valid IP for the specified subnet.")))?,
                (None, None) => return Err(rejected("POST", kind, "Invalid input for fixed_ips: need subnet_id or ip_address.")),
            };
            let subnet_id = subnet["id"].as_str().unwrap_or_default().to_owned();
            let ip = match want.get("ip_address") {
                Some(v) if !v.is_null() => {
                    let ip = parse_ip(v)
                        .ok_or_else(|| rejected("POST", kind, "Invalid input for ip_address."))?;
                    if !parse_net(&subnet["cidr"]).is_some_and(|n| n.contains(&ip)) {
                        return Err(rejected(
                            "POST",
                            kind,
                            format!("IP address {ip} is not a valid IP for the specified subnet."),
                        ));
                    }
                    if self.used_ips(&subnet_id).contains(&ip)
                        || taken.contains(&(subnet_id.clone(), ip))
                    {
                        return Err(conflict(format!(
                            "IP address {ip} already allocated in subnet {subnet_id} (IpAddressAlreadyAllocated)"
                        )));
                    }
                    ip
                }
                _ => self.allocate(&subnet).ok_or_else(|| {
                    conflict(format!(
                        "No more IP addresses available on network {network_id}."
                    ))
                })?,
            };
            taken.insert((subnet_id.clone(), ip));
            out.push(json!({"subnet_id": subnet_id, "ip_address": ip.to_string()}));
        }
        Ok(json!(out))
    }

    fn new_port(&mut self, kind: &Kind, obj: &mut Map<String, Value>) -> Result<(), CloudError> {
        let network_id = Self::required(obj, kind, "network_id")?;
        let network_id = network_id.as_str().unwrap_or_default().to_owned();
        if self.find(&Kind::Network, &network_id).is_none() {
            return Err(not_found(&Kind::Network, &network_id));
        }
        let fixed = self.fixed_ips(kind, &network_id, obj.get("fixed_ips"))?;
        obj.insert("fixed_ips".into(), fixed);
        if let Some(sgs) = obj["security_groups"].as_array() {
            for sg in sgs {
                if !self.exists(&Kind::SecurityGroup, sg) {
                    return Err(CloudError::NotFound {
                        what: format!("security_group {}", sg.as_str().unwrap_or("?")),
                    });
                }
            }
        }
        if !obj.contains_key("mac_address") || obj["mac_address"].is_null() {
            let n = self.next_id;
            obj.insert(
                "mac_address".into(),
                json!(format!(
                    "fa:16:3e:{:02x}:{:02x}:{:02x}",
                    (n >> 16) & 0xff,
                    (n >> 8) & 0xff,
                    n & 0xff
                )),
            );
        }
        Ok(())
    }

    // ------------------------------------------------------- octavia ---

    /// The load balancer an Octavia object belongs to.
    fn lb_of(&self, kind: &Kind, obj: &Value) -> Option<String> {
        match kind {
            Kind::LoadBalancer => obj["id"].as_str().map(str::to_owned),
            Kind::Listener | Kind::Pool => {
                obj["loadbalancers"][0]["id"].as_str().map(str::to_owned)
            }
            Kind::Member { pool_id } => self
                .find(&Kind::Pool, pool_id)
                .and_then(|p| p["loadbalancers"][0]["id"].as_str().map(str::to_owned)),
            _ => None,
        }
    }

    /// Octavia refuses changes while the load balancer is busy.
    fn lb_must_be_active(&self, lb_id: &str) -> Result<(), CloudError> {
        let lb = self
            .find(&Kind::LoadBalancer, lb_id)
            .ok_or_else(|| not_found(&Kind::LoadBalancer, lb_id))?;
        if lb["provisioning_status"] != "ACTIVE" {
            return Err(conflict(format!(
                "Load Balancer {lb_id} is immutable and cannot be updated."
            )));
        }
        Ok(())
    }

    fn set_lb_status(&mut self, lb_id: &str, status: &str) {
        if let Some(lb) = self.find_mut(&Kind::LoadBalancer, lb_id) {
            lb["provisioning_status"] = json!(status);
        }
    }

    fn new_lb(&mut self, kind: &Kind, obj: &mut Map<String, Value>) -> Result<(), CloudError> {
        let subnet_id = Self::required(obj, kind, "vip_subnet_id")?;
        let subnet_id = subnet_id.as_str().unwrap_or_default().to_owned();
        let subnet = self
            .find(&Kind::Subnet, &subnet_id)
            .cloned()
            .ok_or_else(|| {
                rejected(
                    "POST",
                    kind,
                    format!("Validation failure: Subnet {subnet_id} not found."),
                )
            })?;
        let network_id = subnet["network_id"].as_str().unwrap_or_default().to_owned();
        let want = match obj.get("vip_address") {
            Some(v) if !v.is_null() => json!([{"subnet_id": subnet_id, "ip_address": v}]),
            _ => json!([{"subnet_id": subnet_id}]),
        };
        let fixed = self.fixed_ips(kind, &network_id, Some(&want))?;
        let vip = fixed[0]["ip_address"].clone();
        // A real amphora LB owns a Neutron port for its VIP: it takes the
        // address and keeps the network from being deleted.
        let lb_id = obj["id"].as_str().unwrap_or_default().to_owned();
        let mut port = self.build(
            &Kind::Port,
            json!({
                "network_id": network_id,
                "name": format!("octavia-lb-{lb_id}"),
                "device_owner": "Octavia",
                "device_id": format!("lb-{lb_id}"),
            }),
        )?;
        port.insert("fixed_ips".into(), fixed);
        port.insert("mac_address".into(), json!("fa:16:3e:00:00:01"));
        let port_id = port["id"].clone();
        self.push(&Kind::Port, Value::Object(port));
        obj.insert("vip_address".into(), vip);
        obj.insert("vip_network_id".into(), json!(network_id));
        obj.insert("vip_port_id".into(), port_id);
        Ok(())
    }

    fn new_listener(
        &mut self,
        kind: &Kind,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CloudError> {
        let lb_id = Self::required(obj, kind, "loadbalancer_id")?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Self::required(obj, kind, "protocol")?;
        let port = Self::required(obj, kind, "protocol_port")?;
        self.lb_must_be_active(&lb_id)?;
        if let Some(other) = self
            .all(&Kind::Listener)
            .iter()
            .find(|l| l["loadbalancers"][0]["id"] == lb_id.as_str() && l["protocol_port"] == port)
        {
            return Err(conflict(format!(
                "Another Listener on this Load Balancer is already using protocol {} and protocol_port {port}",
                other["protocol"].as_str().unwrap_or("?")
            )));
        }
        let id = obj["id"].clone();
        if let Some(pool_id) = obj["default_pool_id"].as_str().map(str::to_owned) {
            let pool = self.find_mut(&Kind::Pool, &pool_id).ok_or_else(|| {
                rejected(
                    "POST",
                    kind,
                    format!("Validation failure: Pool {pool_id} not found."),
                )
            })?;
            if pool["loadbalancers"][0]["id"] != lb_id.as_str() {
                return Err(rejected(
                    "POST",
                    kind,
                    format!("Validation failure: Pool {pool_id} is on another load balancer."),
                ));
            }
            if let Some(ls) = pool["listeners"].as_array_mut() {
                ls.push(json!({"id": id}));
            }
        }
        obj.remove("loadbalancer_id");
        obj.insert("loadbalancers".into(), json!([{"id": lb_id}]));
        if let Some(ls) = self
            .find_mut(&Kind::LoadBalancer, &lb_id)
            .and_then(|lb| lb["listeners"].as_array_mut())
        {
            ls.push(json!({"id": id}));
        }
        self.set_lb_status(&lb_id, "PENDING_UPDATE");
        Ok(())
    }

    fn new_pool(&mut self, kind: &Kind, obj: &mut Map<String, Value>) -> Result<(), CloudError> {
        Self::required(obj, kind, "protocol")?;
        Self::required(obj, kind, "lb_algorithm")?;
        let listener_id = obj
            .remove("listener_id")
            .and_then(|v| v.as_str().map(str::to_owned));
        let lb_id = match (
            obj.remove("loadbalancer_id")
                .and_then(|v| v.as_str().map(str::to_owned)),
            &listener_id,
        ) {
            (Some(lb), _) => lb,
            (None, Some(l)) => self
                .find(&Kind::Listener, l)
                .and_then(|l| l["loadbalancers"][0]["id"].as_str().map(str::to_owned))
                .ok_or_else(|| {
                    rejected(
                        "POST",
                        kind,
                        format!("Validation failure: Listener {l} not found."),
                    )
                })?,
            (None, None) => {
                return Err(rejected(
                    "POST",
                    kind,
                    "Validation failure: either listener_id or loadbalancer_id must be specified.",
                ));
            }
        };
        self.lb_must_be_active(&lb_id)?;
        let id = obj["id"].clone();
        obj.insert("loadbalancers".into(), json!([{"id": lb_id}]));
        obj.insert("members".into(), json!([]));
        obj.insert("listeners".into(), json!([]));
        if let Some(l) = listener_id {
            let listener = self
                .find_mut(&Kind::Listener, &l)
                .ok_or_else(|| not_found(&Kind::Listener, &l))?;
            if !listener["default_pool_id"].is_null() {
                return Err(conflict(format!("Listener {l} already has a default pool")));
            }
            listener["default_pool_id"] = id.clone();
            obj.insert("listeners".into(), json!([{"id": l}]));
        }
        if let Some(ps) = self
            .find_mut(&Kind::LoadBalancer, &lb_id)
            .and_then(|lb| lb["pools"].as_array_mut())
        {
            ps.push(json!({"id": id}));
        }
        self.set_lb_status(&lb_id, "PENDING_UPDATE");
        Ok(())
    }

    fn new_member(
        &mut self,
        kind: &Kind,
        pool_id: &str,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CloudError> {
        let address = Self::required(obj, kind, "address")?;
        let port = Self::required(obj, kind, "protocol_port")?;
        // Octavia validates the address but stores it as sent (measured:
        // `fd10:0:0:1:0::10` comes back unchanged), and its duplicate check
        // compares that text.
        let address = address.as_str().unwrap_or_default().to_owned();
        if canon_ip(&address).is_none() {
            return Err(rejected(
                "POST",
                kind,
                "Invalid input for field/attribute address.",
            ));
        }
        let pool = self
            .find(&Kind::Pool, pool_id)
            .cloned()
            .ok_or_else(|| not_found(&Kind::Pool, pool_id))?;
        let lb_id = pool["loadbalancers"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.lb_must_be_active(&lb_id)?;
        if let Some(s) = obj.get("subnet_id").filter(|s| !s.is_null())
            && !self.exists(&Kind::Subnet, s)
        {
            return Err(rejected(
                "POST",
                kind,
                format!(
                    "Validation failure: Subnet {} not found.",
                    s.as_str().unwrap_or("?")
                ),
            ));
        }
        if self
            .all(kind)
            .iter()
            .any(|m| m["address"] == address.as_str() && m["protocol_port"] == port)
        {
            return Err(conflict(format!(
                "Another member on this pool is already using ip {address} on protocol_port {port}"
            )));
        }
        obj.insert("address".into(), json!(address));
        let id = obj["id"].clone();
        if let Some(ms) = self
            .find_mut(&Kind::Pool, pool_id)
            .and_then(|p| p["members"].as_array_mut())
        {
            ms.push(json!({"id": id}));
        }
        self.set_lb_status(&lb_id, "PENDING_UPDATE");
        Ok(())
    }

    /// Completes pending Octavia work on the tree of `lb_id` (what the
    /// worker would have finished by the time anyone looks).
    fn settle(&mut self, lb_id: &str) {
        let mut kinds = vec![Kind::LoadBalancer, Kind::Listener, Kind::Pool];
        kinds.extend(
            self.store
                .keys()
                .filter(|k| matches!(k, Kind::Member { .. }))
                .cloned(),
        );
        for kind in kinds {
            let members_lb = self.lb_of(&kind, &json!({}));
            let Some(list) = self.store.get_mut(&kind) else {
                continue;
            };
            for obj in list.iter_mut() {
                let owner = match &kind {
                    Kind::LoadBalancer => obj["id"].as_str().map(str::to_owned),
                    Kind::Member { .. } => members_lb.clone(),
                    _ => obj["loadbalancers"][0]["id"].as_str().map(str::to_owned),
                };
                if owner.as_deref() != Some(lb_id) {
                    continue;
                }
                if obj["provisioning_status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("PENDING"))
                {
                    obj["provisioning_status"] = json!("ACTIVE");
                    obj["operating_status"] = json!(match kind {
                        Kind::Member { .. } => "NO_MONITOR",
                        _ => "ONLINE",
                    });
                }
            }
        }
    }

    // ------------------------------------------------------------ read ---

    /// The resource as the API shows it (security groups embed their rules).
    fn render(&self, kind: &Kind, id: &str) -> Option<Value> {
        let mut v = self.find(kind, id)?.clone();
        if matches!(kind, Kind::SecurityGroup) {
            let rules: Vec<Value> = self
                .all(&Kind::SecurityGroupRule)
                .iter()
                .filter(|r| r["security_group_id"] == id)
                .cloned()
                .collect();
            v["security_group_rules"] = json!(rules);
        }
        Some(v)
    }

    fn list(&self, kind: &Kind, query: &Query) -> Result<Vec<Value>, CloudError> {
        let known: HashSet<&str> = template(kind)
            .iter()
            .map(|(k, _)| *k)
            .chain(["id"])
            .collect();
        let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
        for (k, v) in query {
            match k.as_str() {
                "fields" | "limit" | "marker" | "sort_key" | "sort_dir" | "page_reverse" => {}
                "tags" | "tags-any" | "not-tags" | "not-tags-any" if kind.taggable() => {
                    filters.entry(k.as_str()).or_default().push(v)
                }
                key if known.contains(key) => filters.entry(key).or_default().push(v),
                key => {
                    return Err(CloudError::Rejected {
                        method: "GET".into(),
                        path: kind.path(),
                        status: 400,
                        message: format!(
                            "['{key}'] is invalid attribute for filtering (HTTPBadRequest)"
                        ),
                    });
                }
            }
        }
        let ids: Vec<String> = self
            .all(kind)
            .iter()
            .filter(|obj| filters.iter().all(|(k, vs)| matches_filter(obj, k, vs)))
            .filter_map(|o| o["id"].as_str().map(str::to_owned))
            .collect();
        Ok(ids.iter().filter_map(|id| self.render(kind, id)).collect())
    }

    // ---------------------------------------------------------- update ---

    fn update(&mut self, kind: &Kind, id: &str, body: Value) -> Result<Value, CloudError> {
        let Value::Object(body) = body else {
            return Err(rejected(
                "PUT",
                kind,
                "The request body must be a JSON object",
            ));
        };
        let current = self
            .find(kind, id)
            .cloned()
            .ok_or_else(|| not_found(kind, id))?;
        for key in body.keys() {
            if !updatable(kind, key) {
                return Err(rejected(
                    "PUT",
                    kind,
                    format!("Cannot update read-only attribute {key} (HTTPBadRequest)"),
                ));
            }
        }
        if let Some(tags) = body.get("tags") {
            check_tags("PUT", kind, tags)?;
        }
        let lb = if is_octavia(kind) {
            let lb = self.lb_of(kind, &current).unwrap_or_default();
            self.lb_must_be_active(&lb)?;
            Some(lb)
        } else {
            None
        };
        let mut next = current.clone();
        for (k, v) in &body {
            next[k] = v.clone();
        }
        match kind {
            Kind::Subnet => {
                let net = parse_net(&next["cidr"])
                    .ok_or_else(|| rejected("PUT", kind, "stored cidr is invalid"))?;
                let gateway =
                    match &next["gateway_ip"] {
                        Value::Null => None,
                        v => Some(parse_ip(v).ok_or_else(|| {
                            rejected("PUT", kind, "Invalid input for gateway_ip.")
                        })?),
                    };
                next["gateway_ip"] = json!(gateway.map(|g| g.to_string()));
                next["allocation_pools"] =
                    Self::check_pools("PUT", kind, &net, gateway, &next["allocation_pools"])?;
            }
            Kind::Port if body.contains_key("fixed_ips") => {
                let network_id = next["network_id"].as_str().unwrap_or_default().to_owned();
                // Addresses the port keeps are not "in use" by someone else.
                let saved = self.remove(kind, id);
                let fixed = self.fixed_ips(kind, &network_id, Some(&body["fixed_ips"]));
                if let Some(saved) = saved {
                    self.push(kind, saved);
                }
                next["fixed_ips"] = fixed?;
            }
            _ => {}
        }
        if let Some(n) = next.get("revision_number").and_then(Value::as_u64) {
            next["revision_number"] = json!(n + 1);
        }
        if is_octavia(kind) {
            next["provisioning_status"] = json!("PENDING_UPDATE");
        }
        if let Some(slot) = self.find_mut(kind, id) {
            *slot = next;
        }
        if matches!(kind, Kind::Router) && body.contains_key("external_gateway_info") {
            self.gateway_changed(id)?;
        }
        if let Some(lb) = lb {
            self.set_lb_status(&lb, "PENDING_UPDATE");
        }
        self.render(kind, id).ok_or_else(|| not_found(kind, id))
    }

    // ---------------------------------------------------------- delete ---

    fn port_ids(&self, pick: impl Fn(&Value) -> bool) -> Vec<String> {
        self.all(&Kind::Port)
            .iter()
            .filter(|p| pick(p))
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect()
    }

    fn delete(&mut self, kind: &Kind, id: &str) -> Result<(), CloudError> {
        let Some(obj) = self.find(kind, id).cloned() else {
            return Ok(());
        };
        match kind {
            Kind::Network => {
                let ports = self.port_ids(|p| p["network_id"] == id);
                if !ports.is_empty() {
                    return Err(conflict(format!(
                        "Unable to complete operation on network {id}. There are one or more ports still in use on the network, id for these ports is: {}. (NetworkInUse)",
                        ports.join(",")
                    )));
                }
                // Neutron deletes the network's subnets with it.
                let subnets: Vec<String> = self
                    .all(&Kind::Subnet)
                    .iter()
                    .filter(|s| s["network_id"] == id)
                    .filter_map(|s| s["id"].as_str().map(str::to_owned))
                    .collect();
                for s in subnets {
                    self.remove(&Kind::Subnet, &s);
                }
            }
            Kind::Subnet => {
                if !self.used_ips(id).is_empty() {
                    return Err(conflict(format!(
                        "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet. (SubnetInUse)"
                    )));
                }
                if let Some(n) = obj["network_id"].as_str().map(str::to_owned)
                    && let Some(net) = self.find_mut(&Kind::Network, &n)
                    && let Some(list) = net["subnets"].as_array_mut()
                {
                    list.retain(|s| s != id);
                }
            }
            Kind::Router => {
                let ports = self.port_ids(|p| {
                    p["device_id"] == id
                        && routers::INTERFACE_OWNERS
                            .iter()
                            .any(|o| p["device_owner"] == *o)
                });
                if !ports.is_empty() {
                    return Err(conflict(format!(
                        "Router {id} has ports still attached: {} (RouterInUse)",
                        ports.join(", ")
                    )));
                }
                self.router_deleted(id);
            }
            Kind::SecurityGroup => {
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
            }
            Kind::Port => {
                let owner = obj["device_owner"].as_str().unwrap_or_default();
                let of_router = obj["device_id"]
                    .as_str()
                    .is_some_and(|r| self.find(&Kind::Router, r).is_some());
                if (of_router && routers::is_router_port_owner(owner)) || owner == "Octavia" {
                    return Err(conflict(format!(
                        "Port {id} cannot be deleted directly via the port API: has device owner {owner}. (ServicePortInUse)"
                    )));
                }
            }
            Kind::LoadBalancer => {
                self.lb_must_be_active(id)?;
                let has_children = obj["listeners"].as_array().is_some_and(|l| !l.is_empty())
                    || obj["pools"].as_array().is_some_and(|p| !p.is_empty());
                if has_children {
                    return Err(rejected(
                        "DELETE",
                        kind,
                        format!(
                            "Validation failure: Cannot delete Load Balancer {id} - it has children"
                        ),
                    ));
                }
                if let Some(port) = obj["vip_port_id"].as_str() {
                    self.remove(&Kind::Port, port);
                }
            }
            Kind::Listener | Kind::Pool | Kind::Member { .. } => {
                let lb = self.lb_of(kind, &obj).unwrap_or_default();
                self.lb_must_be_active(&lb)?;
                let key = match kind {
                    Kind::Listener => "listeners",
                    Kind::Pool => "pools",
                    _ => "",
                };
                if matches!(kind, Kind::Pool) {
                    let members = Kind::Member {
                        pool_id: id.to_owned(),
                    };
                    self.store.remove(&members);
                    for l in self.store.entry(Kind::Listener).or_default() {
                        if l["default_pool_id"] == id {
                            l["default_pool_id"] = Value::Null;
                        }
                    }
                }
                if matches!(kind, Kind::Listener)
                    && let Some(pool) = obj["default_pool_id"].as_str().map(str::to_owned)
                    && let Some(p) = self.find_mut(&Kind::Pool, &pool)
                    && let Some(ls) = p["listeners"].as_array_mut()
                {
                    ls.retain(|l| l["id"] != id);
                }
                if let Kind::Member { pool_id } = kind
                    && let Some(p) = self.find_mut(&Kind::Pool, pool_id)
                    && let Some(ms) = p["members"].as_array_mut()
                {
                    ms.retain(|m| m["id"] != id);
                }
                if let Some(lbv) = self.find_mut(&Kind::LoadBalancer, &lb) {
                    if let Some(list) = lbv.get_mut(key).and_then(Value::as_array_mut) {
                        list.retain(|x| x["id"] != id);
                    }
                    lbv["provisioning_status"] = json!("PENDING_UPDATE");
                }
            }
            Kind::SecurityGroupRule => {}
        }
        self.remove(kind, id);
        Ok(())
    }

    // ------------------------------------------------- router interface ---

    fn router_interface(
        &mut self,
        router_id: &str,
        subnet_id: &str,
        add: bool,
    ) -> Result<(), CloudError> {
        let router = &Kind::Router;
        if self.find(router, router_id).is_none() {
            return if add {
                Err(not_found(router, router_id))
            } else {
                Ok(())
            };
        }
        let is_iface = |p: &Value| {
            p["device_id"] == router_id
                && routers::INTERFACE_OWNERS
                    .iter()
                    .any(|o| p["device_owner"] == *o)
        };
        let on_subnet = |p: &Value| {
            p["fixed_ips"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["subnet_id"] == subnet_id))
        };
        if !add {
            // By subnet: drop that subnet's address; the port goes when empty.
            let Some(port) = self
                .all(&Kind::Port)
                .iter()
                .find(|p| is_iface(p) && on_subnet(p))
                .cloned()
            else {
                return Ok(());
            };
            let port_id = port["id"].as_str().unwrap_or_default().to_owned();
            let remaining: Vec<Value> = port["fixed_ips"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter(|f| f["subnet_id"] != subnet_id)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            self.interface_removed(router_id, subnet_id);
            if remaining.is_empty() {
                self.remove(&Kind::Port, &port_id);
            } else if let Some(p) = self.find_mut(&Kind::Port, &port_id) {
                p["fixed_ips"] = json!(remaining);
                let rev = p["revision_number"].as_u64().unwrap_or(0);
                p["revision_number"] = json!(rev + 1);
            }
            return Ok(());
        }
        let subnet = self
            .find(&Kind::Subnet, subnet_id)
            .cloned()
            .ok_or_else(|| not_found(&Kind::Subnet, subnet_id))?;
        let bad = |m: String| CloudError::Rejected {
            method: "PUT".into(),
            path: format!("/v2.0/routers/{router_id}/add_router_interface"),
            status: 400,
            message: m,
        };
        if self
            .all(&Kind::Port)
            .iter()
            .any(|p| is_iface(p) && on_subnet(p))
        {
            return Err(bad(format!(
                "Bad router request: Router already has a port on subnet {subnet_id}. (BadRequest)"
            )));
        }
        let Some(gateway) = subnet["gateway_ip"].as_str().map(str::to_owned) else {
            return Err(bad(
                "Bad router request: Subnet for router interface must have a gateway IP.".into(),
            ));
        };
        if self
            .used_ips(subnet_id)
            .contains(&gateway.parse().map_err(|_| bad("bad gateway".into()))?)
        {
            return Err(conflict(format!(
                "IP address {gateway} already allocated in subnet {subnet_id} (IpAddressAlreadyAllocated)"
            )));
        }
        let network_id = subnet["network_id"].as_str().unwrap_or_default().to_owned();
        let fixed = json!({"subnet_id": subnet_id, "ip_address": gateway});
        // Neutron puts IPv6 subnets of one network on one router port.
        if subnet["ip_version"] == 6
            && let Some(port) = self
                .all(&Kind::Port)
                .iter()
                .find(|p| {
                    is_iface(p)
                        && p["network_id"] == network_id.as_str()
                        && p["fixed_ips"].as_array().is_some_and(|f| {
                            f.iter()
                                .all(|f| f["ip_address"].as_str().is_some_and(|a| a.contains(':')))
                        })
                })
                .cloned()
        {
            let port_id = port["id"].as_str().unwrap_or_default().to_owned();
            if let Some(p) = self.find_mut(&Kind::Port, &port_id) {
                if let Some(f) = p["fixed_ips"].as_array_mut() {
                    f.push(fixed);
                }
                let rev = p["revision_number"].as_u64().unwrap_or(0);
                p["revision_number"] = json!(rev + 1);
            }
            return self.interface_added(router_id, subnet_id);
        }
        let mut port = self.build(
            &Kind::Port,
            json!({
                "network_id": network_id,
                "device_owner": routers::interface_owner_of(&self.find(router, router_id).cloned().unwrap_or_default()),
                "device_id": router_id,
            }),
        )?;
        port.insert("fixed_ips".into(), json!([fixed]));
        port.insert("status".into(), json!("ACTIVE"));
        let n = self.next_id;
        port.insert(
            "mac_address".into(),
            json!(format!(
                "fa:16:3e:ff:{:02x}:{:02x}",
                (n >> 8) & 0xff,
                n & 0xff
            )),
        );
        self.push(&Kind::Port, Value::Object(port));
        self.interface_added(router_id, subnet_id)
    }
}

/// One filter key against one object; repeated values mean "any of".
fn matches_filter(obj: &Value, key: &str, values: &[&str]) -> bool {
    let tags: HashSet<&str> = obj["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let split = || {
        values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|t| !t.is_empty())
    };
    match key {
        "tags" => split().all(|t| tags.contains(t)),
        "tags-any" => split().any(|t| tags.contains(t)),
        "not-tags" => !split().all(|t| tags.contains(t)),
        "not-tags-any" => !split().any(|t| tags.contains(t)),
        "fixed_ips" => values.iter().all(|v| {
            let (k, want) = v.split_once('=').unwrap_or(("", v));
            obj["fixed_ips"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| value_matches(&f[k], want)))
        }),
        _ => values.iter().any(|want| value_matches(&obj[key], want)),
    }
}

/// Equality as Neutron's query parsing sees it: booleans in any case,
/// numbers as text, addresses as values.
fn value_matches(v: &Value, want: &str) -> bool {
    match v {
        Value::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == want,
        Value::String(s) => {
            s == want
                || matches!((s.parse::<IpAddr>(), want.parse::<IpAddr>()), (Ok(a), Ok(b)) if a == b)
                || matches!((s.parse::<IpNet>(), want.parse::<IpNet>()), (Ok(a), Ok(b)) if a == b)
        }
        Value::Null => want.is_empty() || want.eq_ignore_ascii_case("none"),
        _ => false,
    }
}

impl Cloud for FakeCloud {
    async fn project_id(&self) -> Result<String, CloudError> {
        self.pause().await;
        self.call(Verb::ProjectId, None, |st| Ok(st.project_id.clone()))
    }

    async fn has_service(&self, service: Service) -> Result<bool, CloudError> {
        self.pause().await;
        self.call(Verb::HasService, None, |st| {
            Ok(st.services.contains(&service))
        })
    }

    async fn list(&self, kind: &Kind, query: &Query) -> Result<Vec<Value>, CloudError> {
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

    async fn get(&self, kind: &Kind, id: &str) -> Result<Value, CloudError> {
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

    async fn create(&self, kind: &Kind, body: Value) -> Result<Value, CloudError> {
        self.pause().await;
        self.call(Verb::Create, Some(kind), |st| {
            if !st.services.contains(&kind.service()) {
                return Err(CloudError::NoEndpoint(kind.service().catalog_type().into()));
            }
            st.create(kind, body)
        })
    }

    async fn update(&self, kind: &Kind, id: &str, body: Value) -> Result<Value, CloudError> {
        self.pause().await;
        self.call(Verb::Update, Some(kind), |st| st.update(kind, id, body))
    }

    async fn delete(&self, kind: &Kind, id: &str) -> Result<(), CloudError> {
        self.pause().await;
        self.call(Verb::Delete, Some(kind), |st| st.delete(kind, id))
    }

    async fn router_interface(
        &self,
        router_id: &str,
        subnet_id: &str,
        add: bool,
    ) -> Result<(), CloudError> {
        self.pause().await;
        self.call(Verb::RouterInterface, Some(&Kind::Router), |st| {
            st.router_interface(router_id, subnet_id, add)
        })
    }
}

mod neutron_rules;
mod projects;
mod routers;

pub use projects::ProjectView;
pub use routers::RouterMode;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_neutron;
