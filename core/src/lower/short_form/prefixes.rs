//! Where the short form's prefixes come from: carved from a site's /48 and
//! number (`site_prefix`, `site_id`), or given as `pod_cidr` and
//! `service_cidr`. Exactly one of the two ways, each complete.

use crate::addr;
use crate::diag::{Code, Diagnostic};
use crate::lower::{DEFAULT_SERVICE_PREFIX_LEN, Lowerer, prefix_diag};
use crate::pipeline::*;
use crate::source::Span;
use ipnet::IpNet;

/// The pod and service prefixes, one per family, and where each side was
/// written: the fields derived from a prefix point there.
pub(super) struct Prefixes {
    pub(super) pods: Vec<IpNet>,
    pub(super) services: Vec<IpNet>,
    pub(super) pod_origin: Span,
    pub(super) service_origin: Span,
}

impl Prefixes {
    /// A side has more than one prefix: one per family.
    pub(super) fn dual(&self) -> bool {
        self.pods.len() > 1 || self.services.len() > 1
    }

    /// Every prefix is IPv4, so the IPv4 subnets take the plain names.
    pub(super) fn only_v4(&self) -> bool {
        self.pods
            .iter()
            .chain(&self.services)
            .all(|n| addr::net_version(n) == 4)
    }
}

/// The prefixes of `[plan]`, or `None` when a problem (reported) leaves none
/// to expand. Unparsable CIDRs are reported and left out.
pub(super) fn read(l: &mut Lowerer, plan: &S<RawShortPlan>) -> Option<Prefixes> {
    let p = plan.get_ref();
    match (&p.site_prefix, &p.pod_cidr, &p.service_cidr) {
        (Some(site), None, None) => from_site(l, p, site),
        (None, Some(pod), Some(svc)) => Some(from_cidrs(l, p, pod, svc)),
        (Some(site), _, _) => {
            l.err(
                Diagnostic::new(Code::E021, "site_prefix cannot be combined with pod_cidr or service_cidr")
                    .help("either derive both prefixes from site_prefix and site_id, or give pod_cidr and service_cidr")
                    .at(Some(site.span()))
                    .also(p.pod_cidr.as_ref().map(|c| c.span()), "pod_cidr given here")
                    .also(p.service_cidr.as_ref().map(|c| c.span()), "service_cidr given here"),
            );
            None
        }
        (None, pod, _) => {
            let missing = if pod.is_none() {
                "pod_cidr"
            } else {
                "service_cidr"
            };
            l.err(
                Diagnostic::new(Code::E002, format!("[plan] is missing `{missing}`"))
                    .help("the short form needs pod_cidr and service_cidr (e.g. \"fd10:0:0:1::/64\" and \"fd10:0:0:2::/112\"), or site_prefix and site_id")
                    .at(Some(plan.span())),
            );
            None
        }
    }
}

/// Site N of a /48 gets pods <prefix>:N*16+1::/64 and services
/// <prefix>:N*16+2::/<service_prefix_len>.
fn from_site(l: &mut Lowerer, p: &RawShortPlan, site: &S<String>) -> Option<Prefixes> {
    let prefix = l.prefix(site)?;
    let Some(site_id) = &p.site_id else {
        l.err(
            Diagnostic::new(Code::E021, "site_prefix needs a site_id")
                .help("add `site_id = N` (0 to 4095): site N gets pods <prefix>:N*16+1::/64 and services <prefix>:N*16+2::/112")
                .at(Some(site.span())),
        );
        return None;
    };
    let len = p
        .service_prefix_len
        .as_ref()
        .map(|s| *s.get_ref())
        .unwrap_or(DEFAULT_SERVICE_PREFIX_LEN);
    match addr::carve_site(&prefix, *site_id.get_ref(), len) {
        Ok((pod, svc)) => Some(Prefixes {
            pods: vec![pod],
            services: vec![svc],
            pod_origin: site.span(),
            service_origin: site.span(),
        }),
        Err(e) => {
            l.err(site_error(p, site, site_id, &e));
            None
        }
    }
}

/// Why a site cannot be carved, pointing at the value that is wrong.
fn site_error(
    p: &RawShortPlan,
    site: &S<String>,
    site_id: &S<i64>,
    e: &addr::SiteError,
) -> Diagnostic {
    let at = match e {
        addr::SiteError::NotSlash48(_) => site.span(),
        addr::SiteError::SiteIdRange(_) => site_id.span(),
        addr::SiteError::ServiceLen(_) => p
            .service_prefix_len
            .as_ref()
            .map(|s| s.span())
            .unwrap_or(site.span()),
    };
    let help = match e {
        addr::SiteError::NotSlash48(_) => {
            "use the site's /48, e.g. site_prefix = \"fd42:a1b2:c3d4::/48\""
        }
        addr::SiteError::SiteIdRange(_) => {
            "number sites from 0 to 4095: each gets its own 16 /64s of the /48"
        }
        addr::SiteError::ServiceLen(_) => "use service_prefix_len = 112, as the guide does",
    };
    Diagnostic::new(Code::E022, e.to_string())
        .help(help)
        .at(Some(at))
}

/// `pod_cidr` and `service_cidr` as given; the site-only keys are reported.
fn from_cidrs(
    l: &mut Lowerer,
    p: &RawShortPlan,
    pod: &S<toml::Value>,
    svc: &S<toml::Value>,
) -> Prefixes {
    for (key, s) in [
        ("site_id", p.site_id.as_ref().map(|s| s.span())),
        (
            "service_prefix_len",
            p.service_prefix_len.as_ref().map(|s| s.span()),
        ),
    ] {
        if let Some(span) = s {
            l.err(
                Diagnostic::new(Code::E021, format!("`{key}` only applies with site_prefix"))
                    .help("remove it, or replace pod_cidr and service_cidr with site_prefix and site_id")
                    .at(Some(span)),
            );
        }
    }
    Prefixes {
        pods: cidr_list(l, pod, "pod_cidr"),
        services: cidr_list(l, svc, "service_cidr"),
        pod_origin: pod.span(),
        service_origin: svc.span(),
    }
}

/// Reads a `string or [strings]` CIDR value of the short form.
fn cidr_list(l: &mut Lowerer, v: &S<toml::Value>, key: &str) -> Vec<IpNet> {
    let span = v.span();
    let texts: Vec<String> = match v.get_ref() {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(items) if items.iter().all(|i| i.is_str()) && !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => {
            l.err(
                Diagnostic::new(
                    Code::E001,
                    format!("`{key}` must be a CIDR string or a list of CIDR strings"),
                )
                .help(format!(
                    "e.g. {key} = \"fd10:0:0:2::/112\", or one per family for dual-stack"
                ))
                .at(Some(span)),
            );
            return Vec::new();
        }
    };
    texts
        .iter()
        .filter_map(|t| match addr::parse_prefix(t) {
            Ok(n) => Some(n),
            Err(e) => {
                l.err(prefix_diag(&e, span.clone()));
                None
            }
        })
        .collect()
}
