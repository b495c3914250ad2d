//! The pipeline file format (`pipeline.toml`) as written by people, with the
//! byte span of every value kept for error messages.
//!
//! Two forms exist. The explicit form is an ordered list of `[[step]]`
//! tables. The short form is one `[plan]` table from which `lower` derives
//! the guide's whole topology. Unknown keys are rejected everywhere.
//! Nothing here computes addresses; see `lower` and `addr`.

use serde::Deserialize;
use serde_spanned::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub pipeline: Option<S<RawHeader>>,
    pub kubernetes: Option<S<RawKubernetes>>,
    pub plan: Option<S<RawShortPlan>>,
    #[serde(default, rename = "step")]
    pub steps: Vec<S<RawStep>>,
    /// WebAssembly plugins run on this pipeline's plan (see `crate::plugin`).
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<S<RawPlugin>>,
    /// Settings for all of this pipeline's plugins (`[plugins]`).
    #[serde(rename = "plugins")]
    pub plugin_settings: Option<S<RawPluginSettings>>,
    /// The cloud this pipeline converges (a fleet names one per site).
    pub cloud: Option<S<RawCloud>>,
}

/// `[cloud]`: a `clouds.yaml` entry, optionally narrowed to a region and an
/// endpoint interface. `--os-cloud` / `OS_CLOUD` override `name` for a
/// single pipeline (README, "A fleet of sites").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloud {
    pub name: Option<S<String>>,
    pub region: Option<S<String>>,
    pub interface: Option<S<String>>,
}

/// `[plugins]`: what applies to every `[[plugin]]` of the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginSettings {
    /// minisign public keys (`RW…`) or key files (relative to the
    /// pipeline file) whose signatures this pipeline accepts.
    pub trusted_keys: Option<S<Vec<S<String>>>>,
}

/// One `[[plugin]]`: a WebAssembly component, either a local file pinned
/// by sha256 (`path`) or an OCI artefact locked in `kuryr6.lock`
/// (`source`); exactly one of the two. Limits are optional (defaults in
/// `crate::plugin`); `facts` is a string table the plugin receives (site
/// id, prefix table, naming scheme …).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    /// Path of the `.wasm`, relative to the pipeline file.
    pub path: Option<S<String>>,
    /// `oci://HOST/NS/NAME:TAG` or `oci://HOST/NS/NAME@sha256:…`.
    pub source: Option<S<String>>,
    /// Required with `path`: a missing pin is reported with the file's
    /// actual sha256. Optional with `source` (the lock pins it).
    pub sha256: Option<S<String>>,
    /// Keys this plugin's signature may be made with; replaces the
    /// pipeline's and the shared list for this plugin.
    pub trusted_keys: Option<S<Vec<S<String>>>>,
    /// Run without a verified signature (recorded in the lock file,
    /// warned about on every load).
    pub allow_unsigned: Option<S<bool>>,
    /// Plain HTTP to a registry that is not on loopback.
    pub insecure: Option<S<bool>>,
    /// Subset of the hooks the plugin implements; default all of them.
    pub hooks: Option<S<Vec<S<String>>>>,
    pub deadline_ms: Option<S<i64>>,
    pub memory_mib: Option<S<i64>>,
    pub fuel: Option<S<i64>>,
    pub facts: Option<S<std::collections::BTreeMap<String, S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    pub name: Option<S<String>>,
    pub description: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    pub version: Option<S<String>>,
    pub multi_cidr_service_allocator: Option<S<bool>>,
    pub api_hosts: Option<S<Vec<S<RawApiHost>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiHost {
    pub name: S<String>,
    pub address: S<String>,
}

/// The short form: the guide derived from two CIDRs (or a site prefix).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShortPlan {
    /// One CIDR, or a list of one per family for dual-stack.
    pub pod_cidr: Option<S<toml::Value>>,
    pub service_cidr: Option<S<toml::Value>>,
    /// Alternative to the CIDRs: carve both from a /48 and a site number.
    pub site_prefix: Option<S<String>>,
    pub site_id: Option<S<i64>>,
    pub service_prefix_len: Option<S<i64>>,
    pub lb_algorithm: Option<S<String>>,
    /// The API load balancer's Octavia provider and protocol.
    pub lb_provider: Option<S<String>>,
    pub lb_protocol: Option<S<String>>,
    pub names: Option<S<RawNames>>,
    pub emit: Option<S<RawShortEmit>>,
}

/// Name overrides for the short form; defaults are the guide's names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNames {
    pub pod_network: Option<S<String>>,
    pub service_network: Option<S<String>>,
    pub pod_subnet: Option<S<String>>,
    pub service_subnet: Option<S<String>>,
    pub pod_subnet_v4: Option<S<String>>,
    pub service_subnet_v4: Option<S<String>>,
    pub router: Option<S<String>>,
    pub security_group: Option<S<String>>,
    pub loadbalancer: Option<S<String>>,
    /// The group `member_mode = "L2"` derives (Kuryr's `octavia_pod_access`).
    pub octavia_pod_access: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShortEmit {
    pub dir: Option<S<String>>,
    pub ovs_bridge: Option<S<String>>,
    pub member_mode: Option<S<String>>,
    pub resource_tags: Option<S<Vec<String>>>,
    pub octavia_provider: Option<S<String>>,
}

/// Declares `RawStep` once: each optional field with its TOML key and the
/// step kinds that take it. The struct, `fields_allowed` and
/// `present_fields` are all derived from this one list, so a new key is one
/// line here (plus what reads it in `lower/steps.rs`).
macro_rules! step_fields {
    ($($(#[$doc:meta])* $field:ident $(as $key:literal)?: $ty:ty => [$($kind:ident),+];)*) => {
        /// One `[[step]]`: every field any kind may take; `lower` rejects the
        /// fields that do not belong to the step's kind, naming the field.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawStep {
            pub kind: S<String>,
            pub name: S<String>,
            $($(#[$doc])* $(#[serde(rename = $key)])? pub $field: Option<S<$ty>>,)*
        }

        /// Every optional step key, with the kinds that accept it (`kind` and
        /// `name` are always accepted).
        const STEP_KEYS: &[(&str, &[crate::plan::StepKind])] = &[
            $((step_fields!(@key $field $($key)?), &[$(crate::plan::StepKind::$kind),+]),)*
        ];

        impl RawStep {
            /// The optional fields this step sets, with their spans, in file order.
            pub fn present_fields(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
                let mut v = Vec::new();
                $(if let Some(x) = &self.$field {
                    v.push((step_fields!(@key $field $($key)?), x.span()));
                })*
                v.sort_by_key(|(_, s)| s.start);
                v
            }
        }
    };
    (@key $field:ident $key:literal) => { $key };
    (@key $field:ident) => { stringify!($field) };
}

step_fields! {
    network: String => [Subnet];
    role: String => [Subnet];
    cidr: String => [Subnet];
    ip_version: i64 => [Subnet];
    enable_dhcp: bool => [Subnet];
    gateway: String => [Subnet];
    allocation_pools: Vec<S<RawPool>> => [Subnet];
    ipv6_address_mode: String => [Subnet];
    ipv6_ra_mode: String => [Subnet];
    interfaces: Vec<S<String>> => [Router];
    description: String => [SecurityGroup];
    rules as "rule": Vec<S<RawRule>> => [SecurityGroup];
    subnet: String => [Loadbalancer];
    vip: String => [Loadbalancer];
    algorithm: String => [Loadbalancer];
    listener_port: i64 => [Loadbalancer];
    member_port: i64 => [Loadbalancer];
    pool_name: String => [Loadbalancer];
    provider: String => [Loadbalancer];
    protocol: String => [Loadbalancer];
    dir: String => [Emit];
    pod_subnet: String => [Emit];
    service_subnet: String => [Emit];
    security_groups: Vec<S<String>> => [Emit];
    ovs_bridge: String => [Emit];
    member_mode: String => [Emit];
    resource_tags: Vec<String> => [Emit];
    loadbalancer: String => [Emit];
    octavia_provider: String => [Emit];
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub start: S<String>,
    pub end: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub direction: Option<S<String>>,
    pub ethertype: Option<S<String>>,
    pub protocol: Option<S<String>>,
    pub remote_ip_prefix: Option<S<String>>,
    pub port_range_min: Option<S<i64>>,
    pub port_range_max: Option<S<i64>>,
}

/// Which step kinds accept which optional fields (`kind` and `name` are
/// always accepted), in declaration order.
pub fn fields_allowed(kind: crate::plan::StepKind) -> Vec<&'static str> {
    STEP_KEYS
        .iter()
        .filter(|(_, kinds)| kinds.contains(&kind))
        .map(|(key, _)| *key)
        .collect()
}
