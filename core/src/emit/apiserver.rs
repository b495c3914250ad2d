//! `kube-apiserver.flags`: one flag per line, ready for a static pod
//! manifest or a systemd unit.

use crate::plan::{ApiHost, Plan};

pub fn apiserver_flags(plan: &Plan, host: Option<&ApiHost>) -> String {
    let ranges: Vec<String> = plan
        .service_ranges()
        .iter()
        .map(|r| r.to_string())
        .collect();
    let mut lines = vec![format!("--service-cluster-ip-range={}", ranges.join(","))];
    if let Some(h) = host {
        // The guide: the API server must bind on the host's IPv6 address.
        lines.push(format!("--bind-address={}", h.address));
        lines.push(format!("--advertise-address={}", h.address));
    }
    lines.push(String::new());
    lines.join("\n")
}
