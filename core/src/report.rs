//! How a plan is shown: the JSON document for machines (its shape is
//! documented in README.md) and the text view for people. Both show every
//! step with every computed field, and the files the emit steps produce.

use crate::addr;
use crate::emit::{self, Ids, Output};
use crate::load::Loaded;
use crate::plan::{Role, Step};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct PlanDocument {
    pub file: String,
    #[serde(flatten)]
    pub plan: serde_json::Value,
    /// `--service-cluster-ip-range`, one range per family.
    pub service_cluster_ip_range: Vec<String>,
    /// Per emit step: its name and rendered files.
    pub outputs: Vec<EmitOutputs>,
}

#[derive(Debug, Serialize)]
pub struct EmitOutputs {
    pub step: String,
    pub files: Vec<Output>,
}

/// The plan as JSON: the plan's own fields, plus for each service subnet its
/// computed Kubernetes range and `kubernetes.default` address.
pub fn document(loaded: &Loaded, ids: &dyn Ids) -> PlanDocument {
    let plan = &loaded.plan;
    let mut value = serde_json::to_value(plan).expect("plans serialize");
    if let Some(steps) = value.get_mut("steps").and_then(|s| s.as_array_mut()) {
        for (json, step) in steps.iter_mut().zip(&plan.steps) {
            if let Step::Subnet(s) = step
                && s.role == Role::Service
                && let Some(l) = addr::service_layout(&s.cidr)
            {
                json["kubernetes_service_range"] = l.kubernetes_range.to_string().into();
                json["kubernetes_default_ip"] = l.kubernetes_default_ip.to_string().into();
            }
        }
    }
    PlanDocument {
        file: loaded.source.display_path(),
        plan: value,
        service_cluster_ip_range: plan
            .service_ranges()
            .iter()
            .map(|r| r.to_string())
            .collect(),
        outputs: plan
            .emits()
            .map(|e| EmitOutputs {
                step: e.name.clone(),
                files: emit::render(plan, e, ids),
            })
            .collect(),
    }
}

/// The text view of an offline plan.
pub fn text(loaded: &Loaded, ids: &dyn Ids) -> String {
    let plan = &loaded.plan;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pipeline {} ({}), Kubernetes {}",
        plan.pipeline,
        loaded.source.display_path(),
        plan.kubernetes.version
    );
    for h in &plan.kubernetes.api_hosts {
        let _ = writeln!(out, "  api host {} {}", h.name, h.address);
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(out, "{:>3}. {:<15} {}", i + 1, step.kind(), step.name());
        let mut field = |k: &str, v: String| {
            let _ = writeln!(out, "       {k:<26} {v}");
        };
        match step {
            Step::Network(_) => {}
            Step::Subnet(s) => {
                field("network", s.network.clone());
                field("role", format!("{:?}", s.role).to_lowercase());
                field("cidr", s.cidr.to_string());
                field("ip_version", s.ip_version.to_string());
                field("enable_dhcp", s.enable_dhcp.to_string());
                field("gateway_ip", s.gateway_ip.to_string());
                for p in &s.allocation_pools {
                    field("allocation_pool", format!("{} - {}", p.start, p.end));
                }
                if s.role == Role::Service
                    && let Some(l) = addr::service_layout(&s.cidr)
                {
                    field("kubernetes_service_range", l.kubernetes_range.to_string());
                    field("kubernetes_default_ip", l.kubernetes_default_ip.to_string());
                }
            }
            Step::Router(r) => field("interfaces", r.interfaces.join(", ")),
            Step::SecurityGroup(sg) => {
                field("description", sg.description.clone());
                for r in &sg.rules {
                    let ports = match (r.port_range_min, r.port_range_max) {
                        (None, None) => String::new(),
                        (lo, hi) => format!(
                            " ports {}-{}",
                            lo.map(|p| p.to_string()).unwrap_or_default(),
                            hi.map(|p| p.to_string()).unwrap_or_default()
                        ),
                    };
                    let remote = r
                        .remote_ip_prefix
                        .map(|p| format!(" from {p}"))
                        .unwrap_or_default();
                    field(
                        "rule",
                        format!(
                            "{} {} {}{remote}{ports}",
                            r.direction,
                            r.ethertype,
                            r.protocol.as_deref().unwrap_or("any")
                        ),
                    );
                }
            }
            Step::Loadbalancer(lb) => {
                field("subnet", lb.subnet.clone());
                field("vip", lb.vip.to_string());
                field("listener", format!("HTTPS {}", lb.listener_port));
                field("pool", format!("{} ({})", lb.pool_name, lb.algorithm));
                for m in &lb.members {
                    field(
                        "member",
                        // [v6]:port, so the port is not read as the address's last group.
                        format!(
                            "{} {}",
                            m.name,
                            std::net::SocketAddr::new(m.address, lb.member_port)
                        ),
                    );
                }
            }
            Step::Emit(e) => {
                field("dir", e.dir.clone());
                for o in emit::render(plan, e, ids) {
                    let _ = writeln!(out, "       --- {} ---", o.file);
                    for line in o.content.lines() {
                        let _ = writeln!(out, "       {line}");
                    }
                }
            }
        }
    }
    out
}
