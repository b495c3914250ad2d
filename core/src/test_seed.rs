//! Test helper: the seed (examples/seed-ipv6) is the whole guide, API load
//! balancer included. Tests about the Neutron part alone derive the
//! network-only pipeline from it, so there stays one seed.

/// The `api_hosts` block exactly as the seed writes it.
pub const API_HOSTS: &str = r#"api_hosts = [
  { name = "master-0", address = "fd10:0:0:3::10" },
  { name = "master-1", address = "fd10:0:0:3::11" },
]
"#;

/// `text` without its API hosts, hence without the API load balancer.
/// Panics when the block is not there, so a changed seed fails loudly
/// instead of silently keeping the load balancer.
pub fn without_api_hosts(text: &str) -> String {
    assert!(
        text.contains(API_HOSTS),
        "the seed no longer has the api_hosts block this helper removes"
    );
    text.replacen(API_HOSTS, "", 1)
}
