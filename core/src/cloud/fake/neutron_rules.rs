//! How Neutron 29 turns a security-group rule POST into the stored rule,
//! and when it calls two rules the same. Transcribed from Neutron's
//! `neutron/extensions/securitygroup.py` (the API's converters) and
//! `neutron/db/securitygroups_db.py` (`_validate_base_security_group_rule_attributes`,
//! `_rule_to_key`), independently of the engine's `rule_canon`: engine
//! tests against the fake then check `rule_canon` against Neutron's rules
//! rather than against itself.

use serde_json::{Map, Value, json};

/// neutron-lib `IP_PROTOCOL_MAP` (kept here on purpose, see the module doc).
const PROTOCOLS: [(&str, u8); 25] = [
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

/// neutron-lib `IP_PROTOCOL_NUM_TO_NAME_MAP`, keyed by the exact text.
fn num_to_name(text: &str) -> Option<&'static str> {
    const MAP: [(&str, &str); 23] = [
        ("51", "ah"),
        ("33", "dccp"),
        ("8", "egp"),
        ("50", "esp"),
        ("47", "gre"),
        ("0", "ip"),
        ("1", "icmp"),
        ("2", "igmp"),
        ("4", "ipip"),
        ("41", "ipv6-encap"),
        ("44", "ipv6-frag"),
        ("58", "ipv6-icmp"),
        ("59", "ipv6-nonxt"),
        ("60", "ipv6-opts"),
        ("43", "ipv6-route"),
        ("89", "ospf"),
        ("113", "pgm"),
        ("46", "rsvp"),
        ("132", "sctp"),
        ("6", "tcp"),
        ("17", "udp"),
        ("136", "udplite"),
        ("112", "vrrp"),
    ];
    MAP.iter().find(|(n, _)| *n == text).map(|(_, name)| *name)
}

/// Python's `int(text)` for what a pipeline could send (sign, digits,
/// surrounding blanks).
fn py_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.strip_prefix('+').unwrap_or(t).parse().ok()
}

/// `convert_protocol`: None or `any` → None; 0-255 kept as sent (text);
/// a known name lower-cased; anything else refused.
fn convert_protocol(v: &Value) -> Result<Value, String> {
    let refused = |p: &Value| {
        format!(
            "Security group rule protocol {p} not supported. Only protocol values [None, 'any', 'ah', 'dccp', …] and integer representations [0 to 255] are supported."
        )
    };
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if s == "any" => Ok(Value::Null),
        Value::Number(n) => match n.as_i64() {
            Some(i) if (0..=255).contains(&i) => Ok(json!(i.to_string())),
            _ => Err(refused(v)),
        },
        Value::String(s) => match py_int(s) {
            Some(i) if (0..=255).contains(&i) => Ok(json!(s)),
            Some(_) => Err(refused(v)),
            None => {
                let lower = s.to_lowercase();
                if lower == "any" || PROTOCOLS.iter().any(|(n, _)| *n == lower) {
                    Ok(json!(lower))
                } else {
                    Err(refused(v))
                }
            }
        },
        _ => Err(refused(v)),
    }
}

/// `convert_validate_port_value`.
fn convert_port(v: &Value) -> Result<Value, String> {
    let n = match v {
        Value::Null => return Ok(Value::Null),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => py_int(s),
        _ => None,
    };
    match n {
        Some(p) if (0..=65535).contains(&p) => Ok(json!(p)),
        _ => Err(format!("Invalid value for port {v}")),
    }
}

/// `_get_ip_proto_number`.
fn proto_number(p: &str) -> Option<i64> {
    if p == "any" {
        return None;
    }
    let p = if p == "icmpv6" { "ipv6-icmp" } else { p };
    match PROTOCOLS.iter().find(|(n, _)| *n == p) {
        Some((_, num)) => Some(i64::from(*num)),
        None => py_int(p),
    }
}

/// Why Neutron does not store a rule.
pub(super) enum Refusal {
    /// 400, with Neutron's message.
    Invalid(String),
    /// 500: the object layer's `IpProtocolEnum` takes only protocol names
    /// and the plain decimal numbers 0-255, but the API lets `06`, `+6` or
    /// ` 6` through (measured on Neutron 29).
    ServerError,
}

impl From<String> for Refusal {
    fn from(m: String) -> Self {
        Refusal::Invalid(m)
    }
}

impl From<&str> for Refusal {
    fn from(m: &str) -> Self {
        Refusal::Invalid(m.to_string())
    }
}

/// The API's converters, then `_validate_base_security_group_rule_attributes`
/// in Neutron's order, then the object layer: `obj` becomes the rule
/// Neutron stores, or the refusal is returned.
pub(super) fn store(obj: &mut Map<String, Value>) -> Result<(), Refusal> {
    let ethertype = match obj.get("ethertype").and_then(Value::as_str) {
        Some(e) if e.eq_ignore_ascii_case("ipv4") => "IPv4",
        Some(e) if e.eq_ignore_ascii_case("ipv6") => "IPv6",
        other => {
            return Err(Refusal::Invalid(format!(
                "Invalid input for ethertype. Reason: '{}' is not in ['IPv4', 'IPv6'].",
                other.unwrap_or("")
            )));
        }
    };
    obj.insert("ethertype".into(), json!(ethertype));
    let protocol = convert_protocol(obj.get("protocol").unwrap_or(&Value::Null))?;
    obj.insert("protocol".into(), protocol);
    for k in ["port_range_min", "port_range_max"] {
        let p = convert_port(obj.get(k).unwrap_or(&Value::Null))?;
        obj.insert(k.into(), p);
    }
    // _make_canonical_ipv6_icmp_protocol
    if ethertype == "IPv6" {
        match obj["protocol"].as_str() {
            Some("icmp" | "icmpv6") => {
                obj.insert("protocol".into(), json!("ipv6-icmp"));
            }
            Some("1") => {
                obj.insert("protocol".into(), json!("58"));
            }
            _ => {}
        }
    }
    // _make_canonical_port_range
    if obj["port_range_min"] == 1 && obj["port_range_max"] == 65535 {
        obj.insert("port_range_min".into(), Value::Null);
        obj.insert("port_range_max".into(), Value::Null);
    }
    // _validate_port_range
    let (lo, hi) = (
        obj["port_range_min"].as_i64(),
        obj["port_range_max"].as_i64(),
    );
    if lo.is_some() || hi.is_some() {
        let Some(p) = obj["protocol"].as_str() else {
            return Err("Must also specify protocol if port range is given.".into());
        };
        match proto_number(p) {
            Some(33 | 132 | 6 | 17 | 136) => {
                if lo == Some(0) || hi == Some(0) {
                    return Err("Invalid value for port 0".into());
                }
                if !matches!((lo, hi), (Some(l), Some(h)) if l <= h) {
                    return Err(
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max".into(),
                    );
                }
            }
            Some(1 | 58) => {
                for (v, field, attr) in [
                    (lo, "type", "port_range_min"),
                    (hi, "code", "port_range_max"),
                ] {
                    if let Some(v) = v
                        && !(0..=255).contains(&v)
                    {
                        return Err(format!(
                            "Invalid value for ICMP {field} ({attr}): {v}. It must be 0 to 255."
                        )
                        .into());
                    }
                }
                if let (None, Some(h)) = (lo, hi) {
                    return Err(format!("ICMP code (port-range-max) {h} is provided but ICMP type (port-range-min) is missing.").into());
                }
            }
            other => {
                return Err(format!(
                    "Ports cannot be specified for protocol {}. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.",
                    other.map_or("None".to_string(), |n| n.to_string())
                )
                .into());
            }
        }
    }
    // _validate_ip_prefix (the API's converter added the mask)
    if let Some(p) = obj.get("remote_ip_prefix").and_then(Value::as_str) {
        let net: ipnet::IpNet = p
            .parse()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                Refusal::Invalid(format!(
                    "Invalid input for remote_ip_prefix. Reason: '{p}' is not a valid IP subnet."
                ))
            })?;
        let family = if net.addr().is_ipv4() { "IPv4" } else { "IPv6" };
        if family != ethertype {
            return Err(format!("Conflicting value ethertype {ethertype} for CIDR {p}").into());
        }
        obj.insert("remote_ip_prefix".into(), json!(net.to_string()));
        obj.insert("normalized_cidr".into(), json!(net.trunc().to_string()));
    } else {
        obj.insert("normalized_cidr".into(), Value::Null);
    }
    // _validate_ethertype_and_protocol
    const IPV6_ONLY: [&str; 13] = [
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
    if let Some(p) = obj["protocol"].as_str()
        && ethertype == "IPv4"
        && IPV6_ONLY.contains(&p)
    {
        return Err(format!("Invalid ethertype {ethertype} for protocol {p}.").into());
    }
    // _validate_multiple_remote_entites
    let remotes = [
        "remote_ip_prefix",
        "remote_group_id",
        "remote_address_group_id",
    ]
    .iter()
    .filter(|k| obj.get(**k).is_some_and(|v| !v.is_null()))
    .count();
    if remotes > 1 {
        return Err("Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.".into());
    }
    // The object layer (IpProtocolEnum).
    if let Some(p) = obj["protocol"].as_str() {
        let plain_number = p.parse::<u8>().is_ok_and(|n| n.to_string() == p);
        if !plain_number && !PROTOCOLS.iter().any(|(n, _)| *n == p) {
            return Err(Refusal::ServerError);
        }
    }
    Ok(())
}

/// `_rule_to_key`: equal keys are the same rule to Neutron.
pub(super) fn rule_key(r: &Map<String, Value>) -> Vec<String> {
    let ethertype = r.get("ethertype").and_then(Value::as_str).unwrap_or("");
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "+".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    // _get_ip_proto_name_and_num
    let protocol = match r.get("protocol") {
        None | Some(Value::Null) => "+".to_string(),
        Some(p) => {
            let mut p = text(Some(p));
            if p == "any" {
                "None".to_string()
            } else {
                if ethertype == "IPv6" {
                    if p == "icmp" || p == "icmpv6" {
                        p = "ipv6-icmp".into();
                    } else if p == "1" {
                        p = "58".into();
                    }
                }
                if let Some((name, num)) = PROTOCOLS.iter().find(|(n, _)| *n == p) {
                    format!("['{name}', '{num}']")
                } else if let Some(name) = num_to_name(&p) {
                    format!("['{name}', '{p}']")
                } else {
                    format!("['{p}', '{p}']")
                }
            }
        }
    };
    let prefix = match r.get("remote_ip_prefix").and_then(Value::as_str) {
        None | Some("0.0.0.0/0" | "::/0") => "+".to_string(),
        Some(p) => p.to_string(),
    };
    vec![
        text(r.get("direction")),
        ethertype.to_string(),
        text(r.get("port_range_max")),
        text(r.get("port_range_min")),
        protocol,
        text(r.get("remote_group_id")),
        text(r.get("remote_address_group_id")),
        prefix,
        text(r.get("security_group_id")),
    ]
}
