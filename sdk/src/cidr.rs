//! CIDR arithmetic for plugins: strict parsing, carving the n-th subnet of
//! a prefix, halves, containment and overlap, and the subnet layouts kuryr6
//! derives (so a plugin that moves a subnet produces exactly what the short
//! form would, and the host's validation passes).
//!
//! Family-agnostic: addresses are handled as `u128` offsets. Every function
//! is total: bad input gives `None`/`Err`, never a panic.

use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses `ADDRESS/LENGTH`, refusing host bits (a typo must not silently
/// shift a subnet), like kuryr6 does for pipeline files.
pub fn parse(text: &str) -> Result<IpNet, String> {
    let net: IpNet = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a CIDR such as fd10:0:0:2::/112"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has host bits set; the network is {}",
            net.trunc()
        ));
    }
    Ok(net)
}

pub fn version(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Rebuilds an address of `like`'s family; callers pass values inside a
/// prefix of that family, so the IPv4 narrowing cannot truncate.
fn from_u128(like: IpAddr, value: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// `addr + delta`, wrapping inside the family's address space.
pub fn offset(addr: IpAddr, delta: i128) -> IpAddr {
    from_u128(addr, (to_u128(addr) as i128).wrapping_add(delta) as u128)
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
    let bits = u32::from(new_len - len);
    let count = 1u128.checked_shl(bits);
    if count.is_some_and(|c| index >= c) {
        return Err(format!(
            "{parent} has {} subnets of length /{new_len}; index {index} is out of range",
            count.unwrap_or(0)
        ));
    }
    let host_bits = u32::from(max - new_len);
    let shifted = index.checked_shl(host_bits).unwrap_or(0);
    let base = to_u128(parent.network()) | shifted;
    let addr = from_u128(parent.addr(), base);
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
    version(outer) == version(inner)
        && outer.prefix_len() <= inner.prefix_len()
        && outer.contains(&inner.network())
}

/// The prefixes share at least one address (same family).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    contains(a, b) || contains(b, a)
}

/// RFC 4193 unique local addresses, fc00::/7.
pub fn is_ula(net: &IpNet) -> bool {
    match net {
        IpNet::V6(n) => n.network().segments()[0] & 0xfe00 == 0xfc00 && n.prefix_len() >= 7,
        IpNet::V4(_) => false,
    }
}

/// RFC 1918 private IPv4 space.
pub fn is_private_v4(net: &IpNet) -> bool {
    let IpNet::V4(n) = net else { return false };
    [
        Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 8),
        Ipv4Net::new(Ipv4Addr::new(172, 16, 0, 0), 12),
        Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16),
    ]
    .into_iter()
    .flatten()
    .any(|p| p.contains(n))
}

/// Number of addresses in a prefix (saturating for ::/0).
pub fn len(net: &IpNet) -> u128 {
    1u128
        .checked_shl(u32::from(net.max_prefix_len() - net.prefix_len()))
        .unwrap_or(u128::MAX)
}

/// A service subnet as kuryr6 lays it out (Kuryr's IPv6 guide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLayout {
    /// First half: `--service-cluster-ip-range`.
    pub kubernetes_range: IpNet,
    /// range::1, always the `kubernetes.default` service (the API VIP).
    pub kubernetes_default_ip: IpAddr,
    /// Last-but-one address.
    pub gateway: IpAddr,
    /// Second half up to the address before the gateway.
    pub pool_start: IpAddr,
    pub pool_end: IpAddr,
}

/// `None` when the subnet is too small to split.
pub fn service_layout(subnet: &IpNet) -> Option<ServiceLayout> {
    if subnet.prefix_len() >= subnet.max_prefix_len() - 1 {
        return None;
    }
    let (kubernetes_range, upper) = split(subnet)?;
    let gateway = offset(subnet.broadcast(), -1);
    Some(ServiceLayout {
        kubernetes_range,
        kubernetes_default_ip: offset(subnet.network(), 1),
        gateway,
        pool_start: upper.network(),
        pool_end: offset(gateway, -1),
    })
}

/// (gateway, pool start, pool end) of a pod or other subnet: gateway =
/// network + 1, pool = network + 2 to the last address (IPv4 keeps its
/// broadcast address out). `None` when too small.
pub fn pod_layout(subnet: &IpNet) -> Option<(IpAddr, IpAddr, IpAddr)> {
    if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
        return None;
    }
    let end = match subnet {
        IpNet::V4(_) => offset(subnet.broadcast(), -1),
        IpNet::V6(_) => subnet.broadcast(),
    };
    Some((
        offset(subnet.network(), 1),
        offset(subnet.network(), 2),
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
