//! Address arithmetic for the plan: parsing prefixes strictly, the service
//! subnet split, the pod subnet layout, site-prefix carving and overlap.
//!
//! Everything here is pure and family-agnostic: addresses are handled as
//! `u128` offsets so IPv4 and IPv6 follow one code path. Addresses are
//! compared as values, never as text (Neutron returns canonical forms).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a prefix string was refused; each case says what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("`{0}` is not a CIDR: expected ADDRESS/LENGTH, e.g. fd10:0:0:2::/112")]
    NoSlash(String),
    #[error("`{0}` is not a valid IPv4 or IPv6 address")]
    BadAddress(String),
    #[error("prefix length `{len}` is not valid for {family}: expected 0 to {max}")]
    BadLength {
        len: String,
        family: &'static str,
        max: u8,
    },
    #[error("`{given}` has host bits set; the network address is {network}")]
    HostBits { given: String, network: IpNet },
}

/// Parses `ADDRESS/LENGTH`, refusing host bits so a typo cannot silently
/// shift a subnet.
pub fn parse_prefix(text: &str) -> Result<IpNet, PrefixError> {
    let (addr_text, len_text) = text
        .split_once('/')
        .ok_or_else(|| PrefixError::NoSlash(text.to_string()))?;
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| PrefixError::BadAddress(addr_text.to_string()))?;
    let (family, max) = match addr {
        IpAddr::V4(_) => ("IPv4", 32u8),
        IpAddr::V6(_) => ("IPv6", 128u8),
    };
    let len: u8 =
        len_text
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| PrefixError::BadLength {
                len: len_text.to_string(),
                family,
                max,
            })?;
    let net = IpNet::new(addr, len).expect("length checked against family maximum");
    if net.trunc() != net {
        return Err(PrefixError::HostBits {
            given: text.to_string(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

pub fn parse_addr(text: &str) -> Result<IpAddr, PrefixError> {
    text.parse()
        .map_err(|_| PrefixError::BadAddress(text.to_string()))
}

pub fn ip_version(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }
}

pub fn net_version(net: &IpNet) -> u8 {
    ip_version(net.addr())
}

pub fn family_name(version: u8) -> &'static str {
    if version == 4 { "IPv4" } else { "IPv6" }
}

fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Rebuilds an address of `like`'s family. Callers only pass values inside a
/// prefix of that family, so the IPv4 narrowing cannot truncate.
fn from_u128(like: IpAddr, value: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// `addr + delta` (delta may be negative), within the same family.
pub fn offset(addr: IpAddr, delta: i128) -> IpAddr {
    from_u128(addr, (to_u128(addr) as i128 + delta) as u128)
}

/// Number of addresses in a prefix (saturating at u128::MAX for ::/0).
pub fn size(net: &IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// Number of addresses from `start` to `end` inclusive (0 if reversed).
pub fn span_len(start: IpAddr, end: IpAddr) -> u128 {
    let (s, e) = (to_u128(start), to_u128(end));
    if e < s { 0 } else { (e - s).saturating_add(1) }
}

pub fn lt(a: IpAddr, b: IpAddr) -> bool {
    ip_version(a) == ip_version(b) && to_u128(a) < to_u128(b)
}

/// Inclusive range membership, families compared as values.
pub fn in_range(addr: IpAddr, start: IpAddr, end: IpAddr) -> bool {
    ip_version(addr) == ip_version(start)
        && to_u128(start) <= to_u128(addr)
        && to_u128(addr) <= to_u128(end)
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    net_version(a) == net_version(b) && (a.contains(&b.network()) || b.contains(&a.network()))
}

pub fn ranges_overlap(a: (IpAddr, IpAddr), b: (IpAddr, IpAddr)) -> bool {
    ip_version(a.0) == ip_version(b.0)
        && to_u128(a.0) <= to_u128(b.1)
        && to_u128(b.0) <= to_u128(a.1)
}

/// Last address of a prefix (IPv4: the broadcast address).
pub fn last(net: &IpNet) -> IpAddr {
    net.broadcast()
}

/// The layout of a service subnet, as the guide computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLayout {
    /// First half: `--service-cluster-ip-range`.
    pub kubernetes_range: IpNet,
    /// First address of the range, always taken by `kubernetes.default`.
    pub kubernetes_default_ip: IpAddr,
    /// Last-but-one address of the subnet.
    pub gateway: IpAddr,
    /// Second half, from its first address to the one before the gateway.
    pub pool_start: IpAddr,
    pub pool_end: IpAddr,
}

/// Splits a service subnet. `None` when the subnet is too small to split
/// (a host prefix); validation reports that case with a clear message.
pub fn service_layout(subnet: &IpNet) -> Option<ServiceLayout> {
    if subnet.prefix_len() >= subnet.max_prefix_len() - 1 {
        return None;
    }
    let kubernetes_range = IpNet::new(subnet.network(), subnet.prefix_len() + 1).ok()?;
    let half = size(&kubernetes_range) as i128;
    let gateway = offset(last(subnet), -1);
    Some(ServiceLayout {
        kubernetes_range,
        kubernetes_default_ip: offset(subnet.network(), 1),
        gateway,
        pool_start: offset(subnet.network(), half),
        pool_end: offset(gateway, -1),
    })
}

/// Gateway and pool of a pod subnet as the guide's output shows them:
/// gateway = network + 1, pool = network + 2 … last usable address.
pub fn pod_layout(subnet: &IpNet) -> Option<(IpAddr, IpAddr, IpAddr)> {
    if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
        return None;
    }
    let gateway = offset(subnet.network(), 1);
    let end = match subnet {
        // IPv4 keeps its broadcast address out of the pool.
        IpNet::V4(_) => offset(last(subnet), -1),
        IpNet::V6(_) => last(subnet),
    };
    Some((gateway, offset(subnet.network(), 2), end))
}

/// How a site prefix is carved: the 16-bit subnet id below a /48 is
/// `site_id * 16 + role` (role 1 = pods, 2 = services), so site 0 of
/// `fd10::/48` is exactly the guide's `fd10:0:0:1::/64` and `fd10:0:0:2::/…`.
pub const SITE_ROLE_POD: u16 = 1;
pub const SITE_ROLE_SERVICE: u16 = 2;
pub const MAX_SITE_ID: u16 = 4095;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    #[error(
        "site prefix {0} must be an IPv6 prefix of length 48 or shorter (e.g. a ULA fdXX:XXXX:XXXX::/48)"
    )]
    NotSlash48(IpNet),
    #[error("site id {0} is out of range: expected 0 to {MAX_SITE_ID}")]
    SiteIdRange(i64),
    #[error("service prefix length /{0} must be between /65 and /126")]
    ServiceLen(i64),
}

/// Derives (pod /64, service /`service_len`) for a site from a /48.
pub fn carve_site(
    prefix: &IpNet,
    site_id: i64,
    service_len: i64,
) -> Result<(IpNet, IpNet), SiteError> {
    let IpNet::V6(p) = prefix else {
        return Err(SiteError::NotSlash48(*prefix));
    };
    if p.prefix_len() > 48 {
        return Err(SiteError::NotSlash48(*prefix));
    }
    if !(0..=i64::from(MAX_SITE_ID)).contains(&site_id) {
        return Err(SiteError::SiteIdRange(site_id));
    }
    if !(65..=126).contains(&service_len) {
        return Err(SiteError::ServiceLen(service_len));
    }
    let base = u128::from(p.network());
    let subnet_id = |role: u16| base | (u128::from(site_id as u16 * 16 + role) << 64);
    let pod = Ipv6Net::new(Ipv6Addr::from(subnet_id(SITE_ROLE_POD)), 64).expect("64 ≤ 128");
    let service = Ipv6Net::new(
        Ipv6Addr::from(subnet_id(SITE_ROLE_SERVICE)),
        service_len as u8,
    )
    .expect("length checked");
    Ok((IpNet::V6(pod), IpNet::V6(service)))
}

/// RFC 4193 unique local addresses: fc00::/7 (fd00::/8 when locally assigned).
pub fn is_ula(net: &IpNet) -> bool {
    match net {
        IpNet::V6(n) => (n.network().segments()[0] & 0xfe00) == 0xfc00,
        IpNet::V4(_) => false,
    }
}

/// Private IPv4 space (RFC 1918) for the IPv4 half of dual-stack plans.
pub fn is_private_v4(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => {
            let privates: [Ipv4Net; 3] = [
                "10.0.0.0/8".parse().unwrap(),
                "172.16.0.0/12".parse().unwrap(),
                "192.168.0.0/16".parse().unwrap(),
            ];
            privates.iter().any(|p| p.contains(n))
        }
        IpNet::V6(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn guide_service_subnet_split() {
        let l = service_layout(&parse_prefix("fd10:0:0:2::/112").unwrap()).unwrap();
        assert_eq!(l.kubernetes_range.to_string(), "fd10:0:0:2::/113");
        assert_eq!(l.kubernetes_default_ip, a("fd10:0:0:2::1"));
        assert_eq!(l.gateway, a("fd10:0:0:2::fffe"));
        assert_eq!(l.pool_start, a("fd10:0:0:2::8000"));
        assert_eq!(l.pool_end, a("fd10:0:0:2::fffd"));
    }

    #[test]
    fn guide_pod_subnet_layout() {
        let (gw, start, end) = pod_layout(&parse_prefix("fd10:0:0:1::/64").unwrap()).unwrap();
        assert_eq!(gw, a("fd10:0:0:1::1"));
        assert_eq!(start, a("fd10:0:0:1::2"));
        assert_eq!(end, a("fd10:0:0:1:ffff:ffff:ffff:ffff"));
        assert_eq!(end.to_string(), "fd10::1:ffff:ffff:ffff:ffff");
    }

    #[test]
    fn ipv4_layouts_keep_broadcast_out() {
        let l = service_layout(&parse_prefix("10.96.0.0/24").unwrap()).unwrap();
        assert_eq!(l.kubernetes_range.to_string(), "10.96.0.0/25");
        assert_eq!(l.gateway, a("10.96.0.254"));
        assert_eq!(
            (l.pool_start, l.pool_end),
            (a("10.96.0.128"), a("10.96.0.253"))
        );
        let (_, _, end) = pod_layout(&parse_prefix("10.1.0.0/16").unwrap()).unwrap();
        assert_eq!(end, a("10.1.255.254"));
    }

    #[test]
    fn strict_prefix_parsing() {
        assert!(matches!(
            parse_prefix("fd10::/129"),
            Err(PrefixError::BadLength { .. })
        ));
        assert!(matches!(
            parse_prefix("fd10::5/112"),
            Err(PrefixError::HostBits { .. })
        ));
        assert!(matches!(
            parse_prefix("fd10::"),
            Err(PrefixError::NoSlash(_))
        ));
        assert!(matches!(
            parse_prefix("fz10::/64"),
            Err(PrefixError::BadAddress(_))
        ));
        assert_eq!(
            parse_prefix("fd10:0:0:2:0:0:0:0/112").unwrap().to_string(),
            "fd10:0:0:2::/112"
        );
    }

    #[test]
    fn site_zero_of_fd10_is_the_guide() {
        let (pod, svc) = carve_site(&parse_prefix("fd10::/48").unwrap(), 0, 112).unwrap();
        assert_eq!(pod.to_string(), "fd10:0:0:1::/64");
        assert_eq!(svc.to_string(), "fd10:0:0:2::/112");
        let (pod, svc) = carve_site(&parse_prefix("fd12:3456:789a::/48").unwrap(), 3, 112).unwrap();
        assert_eq!(pod.to_string(), "fd12:3456:789a:31::/64");
        assert_eq!(svc.to_string(), "fd12:3456:789a:32::/112");
        assert!(carve_site(&parse_prefix("fd10::/56").unwrap(), 0, 112).is_err());
        assert!(carve_site(&parse_prefix("fd10::/48").unwrap(), 4096, 112).is_err());
    }

    #[test]
    fn overlap_is_by_value() {
        let x = parse_prefix("fd10:0:0:2::/112").unwrap();
        let y = parse_prefix("fd10:0:0:2::8000/113").unwrap();
        let z = parse_prefix("fd10:0:0:3::/112").unwrap();
        assert!(overlaps(&x, &y) && overlaps(&y, &x));
        assert!(!overlaps(&x, &z));
        assert!(is_ula(&x) && !is_ula(&parse_prefix("2001:db8::/32").unwrap()));
    }
}
