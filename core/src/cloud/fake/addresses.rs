//! What the fake needs to behave like Neutron's IPAM: canonical text, pools
//! as (start, end) ranges read from JSON, Neutron's default pools. The
//! arithmetic itself is the plan's (`crate::addr`).

use crate::addr;
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;

/// Canonical text of an address (RFC 5952 for IPv6, as Neutron stores it).
pub(super) fn canon_ip(text: &str) -> Option<String> {
    text.trim().parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

pub(super) fn parse_ip(v: &Value) -> Option<IpAddr> {
    v.as_str()?.trim().parse().ok()
}

pub(super) fn parse_net(v: &Value) -> Option<IpNet> {
    v.as_str()?.trim().parse().ok()
}

/// `ip + n`, or `None` past the family's last address.
pub(super) fn ip_add(ip: IpAddr, n: u128) -> Option<IpAddr> {
    addr::checked_offset(ip, i128::try_from(n).ok()?)
}

fn ip_sub1(ip: IpAddr) -> Option<IpAddr> {
    addr::checked_offset(ip, -1)
}

/// A pool as (start, end), inclusive.
pub(super) type Pool = (IpAddr, IpAddr);

pub(super) fn pool_text(p: &Pool) -> String {
    format!("{}-{}", p.0, p.1)
}

pub(super) fn pools_of(subnet: &Value) -> Vec<Pool> {
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
pub(super) fn default_pools(net: &IpNet, gateway: Option<IpAddr>) -> Vec<Pool> {
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
