//! Address arithmetic for the plan: parsing prefixes strictly, carving the
//! n-th subnet of a prefix, halves, containment and overlap, the service
//! subnet split, the pod subnet layout and site-prefix carving. The host's
//! validation and the short form use it, and so do plugins (through the
//! SDK's `cidr`), so a plugin that moves a subnet produces exactly what the
//! short form would.
//!
//! Everything here is pure, total (bad input gives `None`/`Err`, never a
//! panic) and family-agnostic: addresses are handled as `u128` offsets so
//! IPv4 and IPv6 follow one code path. Addresses are compared as values,
//! never as text (Neutron returns canonical forms).

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
    let net = IpNet::new(addr, len).map_err(|_| PrefixError::BadLength {
        len: len_text.to_string(),
        family,
        max,
    })?;
    if net.trunc() != net {
        return Err(PrefixError::HostBits {
            given: text.to_string(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

/// [`parse_prefix`] for plugin facts: surrounding blanks allowed, the error
/// as text.
pub fn parse(text: &str) -> Result<IpNet, String> {
    parse_prefix(text.trim()).map_err(|e| e.to_string())
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

/// The SDK's name for [`net_version`].
pub use net_version as version;

pub fn family_name(version: u8) -> &'static str {
    if version == 4 { "IPv4" } else { "IPv6" }
}

fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
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

/// `addr + delta` (delta may be negative), wrapping inside the family's
/// address space.
pub fn offset(addr: IpAddr, delta: i128) -> IpAddr {
    from_u128(addr, (to_u128(addr) as i128).wrapping_add(delta) as u128)
}

/// `addr + delta`, or `None` when that leaves the family's address space.
pub fn checked_offset(addr: IpAddr, delta: i128) -> Option<IpAddr> {
    let max = match addr {
        IpAddr::V4(_) => u128::from(u32::MAX),
        IpAddr::V6(_) => u128::MAX,
    };
    let value = to_u128(addr);
    let moved = if delta < 0 {
        value.checked_sub(delta.unsigned_abs())?
    } else {
        value.checked_add(delta.unsigned_abs())?
    };
    (moved <= max).then(|| from_u128(addr, moved))
}

/// Number of addresses in a prefix (saturating at u128::MAX for ::/0).
pub fn size(net: &IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// The SDK's name for [`size`].
pub use size as len;

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

/// The `index`-th subnet of length `new_len` inside `parent` (index 0 is
/// the first). `Err` if `new_len` is shorter than the parent's or too long
/// for the family, or the index does not fit.
pub fn carve(parent: &IpNet, new_len: u8, index: u128) -> Result<IpNet, String> {
    let (len, max) = (parent.prefix_len(), parent.max_prefix_len());
    if new_len < len || new_len > max {
        return Err(format!(
            "cannot carve a /{new_len} from {parent}: expected /{len} to /{max}"
        ));
    }
    let count = 1u128.checked_shl(u32::from(new_len - len));
    if count.is_some_and(|c| index >= c) {
        return Err(format!(
            "{parent} has {} subnets of length /{new_len}; index {index} is out of range",
            count.unwrap_or(0)
        ));
    }
    let shifted = index.checked_shl(u32::from(max - new_len)).unwrap_or(0);
    let addr = from_u128(parent.addr(), to_u128(parent.network()) | shifted);
    IpNet::new(addr, new_len).map_err(|e| e.to_string())
}

/// The `index`-th /64 of a /48 (or shorter IPv6 prefix): subnet id `index`.
pub fn carve_64(prefix: &IpNet, index: u128) -> Result<IpNet, String> {
    match prefix {
        IpNet::V6(p) if p.prefix_len() <= 48 => carve(prefix, 64, index),
        _ => Err(format!("{prefix} is not an IPv6 /48 or shorter")),
    }
}

/// The two halves of a prefix; `None` for a single address.
pub fn split(net: &IpNet) -> Option<(IpNet, IpNet)> {
    if net.prefix_len() >= net.max_prefix_len() {
        return None;
    }
    let lo = carve(net, net.prefix_len() + 1, 0).ok()?;
    let hi = carve(net, net.prefix_len() + 1, 1).ok()?;
    Some((lo, hi))
}

/// `outer` contains all of `inner` (same family).
pub fn contains(outer: &IpNet, inner: &IpNet) -> bool {
    net_version(outer) == net_version(inner)
        && outer.prefix_len() <= inner.prefix_len()
        && outer.contains(&inner.network())
}

/// The prefixes share at least one address (same family).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    contains(a, b) || contains(b, a)
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
    let (kubernetes_range, upper) = split(subnet)?;
    let gateway = offset(last(subnet), -1);
    Some(ServiceLayout {
        kubernetes_range,
        kubernetes_default_ip: offset(subnet.network(), 1),
        gateway,
        pool_start: upper.network(),
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
    let net = |role: u16, len: u8| Ipv6Net::new(Ipv6Addr::from(subnet_id(role)), len);
    let (Ok(pod), Ok(service)) = (
        net(SITE_ROLE_POD, 64),
        net(SITE_ROLE_SERVICE, service_len as u8),
    ) else {
        return Err(SiteError::ServiceLen(service_len));
    };
    Ok((IpNet::V6(pod), IpNet::V6(service)))
}

/// RFC 4193 unique local addresses: fc00::/7 (fd00::/8 when locally
/// assigned); a shorter prefix such as fc00::/6 reaches beyond it.
pub fn is_ula(net: &IpNet) -> bool {
    match net {
        IpNet::V6(n) => (n.network().segments()[0] & 0xfe00) == 0xfc00 && n.prefix_len() >= 7,
        IpNet::V4(_) => false,
    }
}

/// Private IPv4 space (RFC 1918) for the IPv4 half of dual-stack plans.
pub fn is_private_v4(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => {
            let privates = [
                Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 8),
                Ipv4Net::new(Ipv4Addr::new(172, 16, 0, 0), 12),
                Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16),
            ];
            privates.into_iter().flatten().any(|p| p.contains(n))
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

    fn n(s: &str) -> IpNet {
        parse(s).unwrap()
    }

    #[test]
    fn carve_by_index() {
        let p = n("fd12:3456:789a::/48");
        assert_eq!(carve_64(&p, 0x11).unwrap(), n("fd12:3456:789a:11::/64"));
        assert_eq!(
            carve(&p, 112, 0x12 << 48).unwrap(),
            n("fd12:3456:789a:12::/112")
        );
        assert!(carve_64(&p, 1 << 16).is_err());
        assert!(carve(&p, 40, 0).is_err());
        assert!(carve(&p, 129, 0).is_err());
        assert!(carve_64(&n("10.0.0.0/8"), 0).is_err());
        assert_eq!(carve(&n("10.0.0.0/8"), 24, 3).unwrap(), n("10.0.3.0/24"));
        assert_eq!(carve(&n("::/0"), 1, 1).unwrap(), n("8000::/1"));
    }

    #[test]
    fn halves_and_overlap() {
        let (lo, hi) = split(&n("fd10:0:0:2::/112")).unwrap();
        assert_eq!((lo, hi), (n("fd10:0:0:2::/113"), n("fd10:0:0:2::8000/113")));
        assert!(split(&n("fd10::1/128")).is_none());
        assert!(contains(&n("fd10::/48"), &lo) && !contains(&lo, &n("fd10::/48")));
        assert!(overlaps(&lo, &n("fd10:0:0:2::/112")) && !overlaps(&lo, &hi));
        assert!(!overlaps(&n("10.0.0.0/8"), &n("::/0")));
    }

    #[test]
    fn strict_parsing() {
        assert!(parse("fd10::5/112").is_err());
        assert!(parse("fd10::").is_err());
        assert!(parse("fd10::/129").is_err());
    }

    #[test]
    fn address_classes() {
        assert!(is_ula(&n("fd10::/48")) && is_ula(&n("fc00::/7")));
        assert!(!is_ula(&n("2001:db8::/32")) && !is_ula(&n("::/0")));
        assert!(is_private_v4(&n("10.96.0.0/24")) && !is_private_v4(&n("8.8.8.0/24")));
    }

    #[test]
    fn guide_layouts() {
        let l = service_layout(&n("fd10:0:0:2::/112")).unwrap();
        assert_eq!(l.kubernetes_range, n("fd10:0:0:2::/113"));
        assert_eq!(l.gateway.to_string(), "fd10:0:0:2::fffe");
        assert_eq!(l.pool_start.to_string(), "fd10:0:0:2::8000");
        assert_eq!(l.pool_end.to_string(), "fd10:0:0:2::fffd");
        let (gw, start, end) = pod_layout(&n("10.1.0.0/16")).unwrap();
        assert_eq!(
            (gw.to_string(), start.to_string(), end.to_string()),
            ("10.1.0.1".into(), "10.1.0.2".into(), "10.1.255.254".into())
        );
    }
}
