//! Security-group rules as Neutron stores and compares them, so that a rule
//! kuryr6 wants and the rule Neutron stored for it compare equal.
//!
//! Written from Neutron 29's `neutron/db/securitygroups_db.py` and
//! neutron-lib's constants:
//! - the API lower-cases protocol names and turns `any` into no protocol;
//! - on an IPv6 rule, `icmp` and `icmpv6` are stored as `ipv6-icmp`, and
//!   protocol number 1 as 58 (`_make_canonical_ipv6_icmp_protocol`);
//! - a port range of exactly 1-65535 is stored as no range
//!   (`_make_canonical_port_range`);
//! - two rules are the same when their `_rule_to_key` matches: protocols
//!   compare as Neutron's `[name, number]` pair (so `tcp` = `6`, but `06`
//!   is only `06`), and a remote prefix of `0.0.0.0/0` or `::/0` equals
//!   none.
//!
//! Remote groups and remote address groups are part of a rule's identity;
//! a pipeline rule has neither, so a stored rule carrying one never equals
//! a pipeline rule.
//!
//! Remote prefixes compare by network (host bits cleared), as Neutron's
//! `normalized_cidr` and its firewall drivers do; pipeline prefixes never
//! carry host bits (validation refuses them).

use crate::plan::Rule;
use ipnet::IpNet;
use serde_json::Value;

/// neutron-lib `IP_PROTOCOL_MAP`: protocol name → number.
const IP_PROTOCOL_MAP: [(&str, u8); 25] = [
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// neutron-lib `IP_PROTOCOL_NUM_TO_NAME_MAP` (0 is `ip`, 58 `ipv6-icmp`).
fn name_of_number(n: &str) -> Option<&'static str> {
    let n: u8 = match n.parse::<u8>() {
        // Only the plain decimal text is a key of Neutron's map.
        Ok(v) if v.to_string() == n => v,
        _ => return None,
    };
    match n {
        0 => Some("ip"),
        58 => Some("ipv6-icmp"),
        _ => IP_PROTOCOL_MAP
            .iter()
            .find(|(name, num)| *num == n && *name != "hopopt" && *name != "icmpv6")
            .map(|(name, _)| *name),
    }
}

/// Protocols Neutron refuses on an IPv4 rule
/// (`_validate_ethertype_and_protocol`).
pub const IPV6_ONLY_PROTOCOLS: [&str; 13] = [
    "ipv6-encap",
    "ipv6-frag",
    "ipv6-icmp",
    "icmpv6",
    "ipv6-nonxt",
    "ipv6-opts",
    "ipv6-route",
    "41",
    "44",
    "58",
    "59",
    "60",
    "43",
];

/// Whether Neutron refuses `protocol` on a rule of `ethertype`.
pub fn protocol_refused(ethertype: &str, protocol: &str) -> bool {
    ethertype == "IPv4" && IPV6_ONLY_PROTOCOLS.contains(&protocol.to_ascii_lowercase().as_str())
}

/// The protocol text Neutron stores for one sent on a rule of `ethertype`:
/// None for no protocol or `any`.
pub fn stored_protocol(ethertype: &str, protocol: Option<&str>) -> Option<String> {
    let p = protocol?.to_ascii_lowercase();
    if p == "any" {
        return None;
    }
    if ethertype == "IPv6" {
        if p == "icmp" || p == "icmpv6" {
            return Some("ipv6-icmp".into());
        }
        if p == "1" {
            return Some("58".into());
        }
    }
    Some(p)
}

/// Neutron's `_get_ip_proto_name_and_num`: the `[name, number]` pair two
/// rules' protocols are compared by.
fn protocol_key(ethertype: &str, protocol: Option<&str>) -> Option<(String, String)> {
    let p = stored_protocol(ethertype, protocol)?;
    if let Some((name, num)) = IP_PROTOCOL_MAP.iter().find(|(name, _)| *name == p) {
        return Some((name.to_string(), num.to_string()));
    }
    if let Some(name) = name_of_number(&p) {
        return Some((name.to_string(), p));
    }
    Some((p.clone(), p))
}

/// Neutron stores a range of exactly 1-65535 as no range.
pub fn stored_ports(min: Option<u16>, max: Option<u16>) -> (Option<u16>, Option<u16>) {
    match (min, max) {
        (Some(1), Some(65535)) => (None, None),
        other => other,
    }
}

/// Where a rule lets traffic come from (or go to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// No prefix, `0.0.0.0/0` or `::/0`.
    Anywhere,
    Prefix(IpNet),
    Group(String),
    AddressGroup(String),
}

/// A rule reduced to what Neutron compares; equal keys are the same rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleKey {
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<(String, String)>,
    pub ports: (Option<u16>, Option<u16>),
    pub remote: Remote,
}

fn prefix_remote(p: Option<IpNet>) -> Remote {
    match p.map(|p| p.trunc()) {
        Some(p) if p.prefix_len() != 0 => Remote::Prefix(p),
        _ => Remote::Anywhere,
    }
}

/// The key of a rule as the pipeline wants it.
pub fn wanted_key(r: &Rule) -> RuleKey {
    RuleKey {
        direction: r.direction.clone(),
        ethertype: r.ethertype.clone(),
        protocol: protocol_key(&r.ethertype, r.protocol.as_deref()),
        ports: stored_ports(r.port_range_min, r.port_range_max),
        remote: prefix_remote(r.remote_ip_prefix),
    }
}

/// The key of a rule as the Neutron API returned it.
pub fn stored_key(v: &Value) -> RuleKey {
    let text = |k: &str| v[k].as_str().filter(|s| !s.is_empty());
    let port = |k: &str| v[k].as_u64().and_then(|p| u16::try_from(p).ok());
    let ethertype = text("ethertype").unwrap_or_default().to_string();
    // Neutron answers with text; a number is read as its decimal text.
    let protocol = match &v["protocol"] {
        Value::Number(n) => Some(n.to_string()),
        p => p.as_str().map(str::to_string),
    };
    let remote = if let Some(g) = text("remote_group_id") {
        Remote::Group(g.into())
    } else if let Some(g) = text("remote_address_group_id") {
        Remote::AddressGroup(g.into())
    } else {
        match text("remote_ip_prefix") {
            None => Remote::Anywhere,
            Some(p) => match p.parse::<IpNet>() {
                Ok(net) => prefix_remote(Some(net)),
                // Unreadable: equal to nothing kuryr6 could want.
                Err(_) => Remote::Group(format!("unreadable prefix {p}")),
            },
        }
    };
    RuleKey {
        direction: text("direction").unwrap_or_default().into(),
        protocol: protocol_key(&ethertype, protocol.as_deref()),
        ethertype,
        ports: stored_ports(port("port_range_min"), port("port_range_max")),
        remote,
    }
}

/// Whether a rule the cloud returned is the pipeline rule `r`.
pub fn same(v: &Value, r: &Rule) -> bool {
    stored_key(v) == wanted_key(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Strict;
    use serde_json::json;

    fn rule(ethertype: &str, protocol: Option<&str>, prefix: Option<&str>) -> Rule {
        Rule {
            direction: "ingress".into(),
            ethertype: ethertype.into(),
            protocol: protocol.map(str::to_string),
            remote_ip_prefix: prefix.map(|p| p.parse().unwrap()),
            port_range_min: None,
            port_range_max: None,
            extra: Strict,
        }
    }

    fn stored(ethertype: &str, protocol: Value, prefix: Value) -> Value {
        json!({"direction": "ingress", "ethertype": ethertype, "protocol": protocol,
               "remote_ip_prefix": prefix, "port_range_min": null, "port_range_max": null,
               "remote_group_id": null, "remote_address_group_id": null})
    }

    #[test]
    fn ipv6_icmp_spellings_are_one_stored_protocol() {
        for p in ["icmp", "icmpv6", "ipv6-icmp", "ICMP", "58"] {
            assert!(
                same(
                    &stored("IPv6", json!("ipv6-icmp"), json!(null)),
                    &rule("IPv6", Some(p), None)
                ),
                "{p}"
            );
        }
        assert_eq!(
            stored_protocol("IPv6", Some("icmp")).as_deref(),
            Some("ipv6-icmp")
        );
        assert_eq!(stored_protocol("IPv6", Some("1")).as_deref(), Some("58"));
        // On IPv4, icmp stays icmp and is not ipv6-icmp.
        assert_eq!(
            stored_protocol("IPv4", Some("icmp")).as_deref(),
            Some("icmp")
        );
        assert!(!same(
            &stored("IPv4", json!("icmp"), json!(null)),
            &rule("IPv4", Some("58"), None)
        ));
    }

    #[test]
    fn names_and_numbers_compare_as_neutrons_pair() {
        // (ethertype, protocol as Neutron stored it, as the pipeline says it, same rule?)
        let cases = [
            ("IPv6", "6", "tcp", true),
            ("IPv6", "tcp", "6", true),
            ("IPv6", "51", "ah", true),
            ("IPv4", "ip", "0", true),
            // Neutron's map is keyed by plain decimal text: 06 is not tcp.
            ("IPv6", "tcp", "06", false),
            ("IPv6", "06", "06", true),
            ("IPv6", "udp", "tcp", false),
        ];
        for (ethertype, stored_as, wanted, equal) in cases {
            assert_eq!(
                same(
                    &stored(ethertype, json!(stored_as), json!(null)),
                    &rule(ethertype, Some(wanted), None)
                ),
                equal,
                "{ethertype}: stored {stored_as} against {wanted}"
            );
        }
    }

    #[test]
    fn any_is_no_protocol_but_zero_is_a_protocol() {
        assert!(same(
            &stored("IPv6", json!(null), json!(null)),
            &rule("IPv6", Some("any"), None)
        ));
        assert!(same(
            &stored("IPv6", json!(null), json!(null)),
            &rule("IPv6", None, None)
        ));
        assert!(!same(
            &stored("IPv6", json!("0"), json!(null)),
            &rule("IPv6", None, None)
        ));
    }

    #[test]
    fn everywhere_prefixes_equal_no_prefix() {
        let none = stored("IPv6", json!("tcp"), json!(null));
        let all6 = stored("IPv6", json!("tcp"), json!("::/0"));
        assert!(same(&none, &rule("IPv6", Some("tcp"), Some("::/0"))));
        assert!(same(&all6, &rule("IPv6", Some("tcp"), None)));
        let all4 = stored("IPv4", json!("tcp"), json!("0.0.0.0/0"));
        assert!(same(&all4, &rule("IPv4", Some("tcp"), None)));
        let net = stored("IPv6", json!("tcp"), json!("fd00:0:0:1::/64"));
        assert!(same(
            &net,
            &rule("IPv6", Some("tcp"), Some("fd00:0:0:1::/64"))
        ));
        assert!(!same(&net, &rule("IPv6", Some("tcp"), None)));
        // Hand-made host bits: the same network to the firewall.
        let host = stored("IPv4", json!("tcp"), json!("10.0.0.5/24"));
        assert!(same(&host, &rule("IPv4", Some("tcp"), Some("10.0.0.0/24"))));
    }

    #[test]
    fn a_remote_group_rule_never_equals_a_pipeline_rule() {
        for key in ["remote_group_id", "remote_address_group_id"] {
            let mut v = stored("IPv6", json!("tcp"), json!(null));
            v[key] = json!("6b797236-0000-4000-8000-000000000001");
            assert!(!same(&v, &rule("IPv6", Some("tcp"), None)), "{key}");
            assert!(!same(&v, &rule("IPv6", Some("tcp"), Some("::/0"))), "{key}");
        }
    }

    #[test]
    fn the_full_port_range_is_stored_as_none() {
        let v = stored("IPv6", json!("tcp"), json!(null));
        let mut r = rule("IPv6", Some("tcp"), None);
        (r.port_range_min, r.port_range_max) = (Some(1), Some(65535));
        assert!(same(&v, &r));
        (r.port_range_min, r.port_range_max) = (Some(1), Some(65534));
        assert!(!same(&v, &r));
        let mut v = v;
        (v["port_range_min"], v["port_range_max"]) = (json!(1), json!(65534));
        assert!(same(&v, &r));
    }

    #[test]
    fn ipv6_only_protocols_are_refused_on_ipv4_only() {
        for p in ["ipv6-icmp", "icmpv6", "58", "IPv6-ICMP", "ipv6-frag", "43"] {
            assert!(protocol_refused("IPv4", p), "{p}");
            assert!(!protocol_refused("IPv6", p), "{p}");
        }
        assert!(!protocol_refused("IPv4", "icmp"));
        assert!(!protocol_refused("IPv4", "1"));
    }
}
