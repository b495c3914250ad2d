//! From the file form (`pipeline::RawPipeline`) to a `Plan`: the short form
//! is expanded into the guide's steps, omitted gateways and pools are
//! computed from each subnet's role, and every plan field is mapped back to
//! the span it came from (`Spans`) so later errors point into the file.
//!
//! Lowering reports what it cannot even represent (unparsable addresses,
//! unknown kinds, misplaced fields); the semantic rules live in `validate`.
//!
//! This module holds the entry point and what both forms share (the
//! `Lowerer`, the header and `[kubernetes]`); `short_form` expands `[plan]`,
//! `steps` lowers `[[step]]` tables, `layout` computes what the guide
//! derives from a subnet's role, `spans` maps plan fields to the file.

mod layout;
mod short_form;
mod spans;
mod steps;

pub use layout::{default_resource_tags, laid_out_subnet, pod_access_rules, service_access_rules};
pub use spans::Spans;

use crate::addr::{self, PrefixError};
use crate::diag::{Code, Diagnostic};
use crate::pipeline::*;
use crate::plan::*;
use crate::source::Span;
use ipnet::IpNet;
use std::net::IpAddr;

pub const DEFAULT_OVS_BRIDGE: &str = "br-int";
pub const DEFAULT_MEMBER_MODE: &str = "L3";
/// The group `member_mode = "L2"` adds (Kuryr devstack's name).
pub const DEFAULT_POD_ACCESS_GROUP: &str = "octavia_pod_access";
pub const DEFAULT_LB_ALGORITHM: &str = "LEAST_CONNECTIONS";
pub const DEFAULT_LB_NAME: &str = "default/kubernetes";
pub const DEFAULT_SERVICE_PREFIX_LEN: i64 = 112;

/// An optional text key's value, without its span.
pub(super) fn text(v: &Option<S<String>>) -> Option<String> {
    v.as_ref().map(|s| s.get_ref().clone())
}

struct Lowerer {
    diags: Vec<Diagnostic>,
    spans: Spans,
}

fn prefix_diag(e: &PrefixError, span: Span) -> Diagnostic {
    let code = match e {
        PrefixError::HostBits { .. } => Code::E004,
        _ => Code::E003,
    };
    let help = match e {
        PrefixError::HostBits { network, .. } => format!("write `{network}`"),
        PrefixError::BadLength { family, max, .. } => {
            format!("an {family} prefix length is a number from 0 to {max}")
        }
        _ => "write an address and a prefix length, e.g. `fd10:0:0:2::/112`".into(),
    };
    Diagnostic::new(code, e.to_string())
        .help(help)
        .at(Some(span))
}

impl Lowerer {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn prefix(&mut self, s: &S<String>) -> Option<IpNet> {
        match addr::parse_prefix(s.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.err(prefix_diag(&e, s.span()));
                None
            }
        }
    }

    fn address(&mut self, s: &S<String>) -> Option<IpAddr> {
        match addr::parse_addr(s.get_ref()) {
            Ok(a) => Some(a),
            Err(e) => {
                self.err(
                    Diagnostic::new(Code::E003, e.to_string())
                        .help("write a single address such as `fd10:0:0:2::1`")
                        .at(Some(s.span())),
                );
                None
            }
        }
    }

    fn port(&mut self, s: &Option<S<i64>>, default: u16, what: &str) -> u16 {
        let Some(p) = s else { return default };
        match u16::try_from(*p.get_ref()) {
            Ok(v) if v > 0 => v,
            _ => {
                self.err(
                    Diagnostic::new(
                        Code::E025,
                        format!("{what} {} is not a TCP port", p.get_ref()),
                    )
                    .help("use a port from 1 to 65535")
                    .at(Some(p.span())),
                );
                default
            }
        }
    }
}

/// Output of lowering: the plan and where its fields came from.
pub struct Lowered {
    pub plan: Plan,
    pub spans: Spans,
}

/// Lowers a parsed file. `Err` holds every problem found, in file order.
pub fn lower(raw: &RawPipeline) -> Result<Lowered, Vec<Diagnostic>> {
    let mut l = Lowerer {
        diags: Vec::new(),
        spans: Spans::default(),
    };
    let pipeline = lower_header(&mut l, raw);
    let kubernetes = lower_kubernetes(&mut l, raw);
    let steps = match (&raw.plan, raw.steps.is_empty()) {
        (Some(plan), true) => short_form::expand_short_form(&mut l, plan, &pipeline, &kubernetes),
        (None, false) => steps::lower_steps(&mut l, &raw.steps, &pipeline, &kubernetes),
        (Some(plan), false) => {
            l.err(
                Diagnostic::new(Code::E021, "a pipeline has either a [plan] table or [[step]] tables, not both")
                    .help("keep [plan] for the guide's topology, or spell every step out with [[step]] and remove [plan]")
                    .at(Some(plan.span())),
            );
            Vec::new()
        }
        (None, true) => {
            l.err(
                Diagnostic::new(Code::E023, "the pipeline has no steps")
                    .help("add a [plan] table with pod_cidr and service_cidr, or [[step]] tables")
                    .at(Some(0..0)),
            );
            Vec::new()
        }
    };
    let plan = Plan {
        pipeline,
        kubernetes,
        steps,
        extra: Strict,
    };
    if l.diags.is_empty() {
        Ok(Lowered {
            plan,
            spans: l.spans,
        })
    } else {
        l.diags.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
        Err(l.diags)
    }
}

fn lower_header(l: &mut Lowerer, raw: &RawPipeline) -> String {
    let name = raw
        .pipeline
        .as_ref()
        .and_then(|h| h.get_ref().name.as_ref());
    match name {
        Some(n) => {
            l.spans.set("", "pipeline.name", n.span());
            n.get_ref().clone()
        }
        None => {
            let at = raw.pipeline.as_ref().map(|h| h.span()).unwrap_or(0..0);
            l.err(
                Diagnostic::new(Code::E002, "missing pipeline name")
                    .help("add `[pipeline]` with `name = \"my-cluster\"`: the name goes into the ownership tag of every resource")
                    .at(Some(at)),
            );
            String::new()
        }
    }
}

fn lower_kubernetes(l: &mut Lowerer, raw: &RawPipeline) -> Kubernetes {
    let mut k = Kubernetes {
        version: DEFAULT_KUBERNETES_VERSION.to_string(),
        multi_cidr_service_allocator: false,
        api_hosts: Vec::new(),
        extra: Strict,
    };
    let Some(rk) = &raw.kubernetes else { return k };
    let rk = rk.get_ref();
    if let Some(v) = &rk.version {
        l.spans.set("", "kubernetes.version", v.span());
        k.version = v.get_ref().clone();
    }
    if let Some(m) = &rk.multi_cidr_service_allocator {
        l.spans
            .set("", "kubernetes.multi_cidr_service_allocator", m.span());
        k.multi_cidr_service_allocator = *m.get_ref();
    }
    for (i, h) in rk.api_hosts.iter().flat_map(|v| v.get_ref()).enumerate() {
        let h = h.get_ref();
        l.spans
            .set("", &format!("api_hosts[{i}].name"), h.name.span());
        l.spans
            .set("", &format!("api_hosts[{i}].address"), h.address.span());
        if let Some(address) = l.address(&h.address) {
            k.api_hosts.push(ApiHost {
                name: h.name.get_ref().clone(),
                address,
                extra: Strict,
            });
        }
    }
    k
}
