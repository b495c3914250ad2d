//! The seed example as the binary's offline tests (core/tests/{cli,offline}.rs)
//! read it: its path, and the kinds of the steps its plan lists.

/// The guide's pipeline, relative to the repo root.
pub const SEED: &str = "examples/seed-ipv6/pipeline.toml";

/// The step kinds of the seed's plan, in order: the whole guide up to the
/// API load balancer, then the emitted files.
pub const SEED_KINDS: [&str; 8] = [
    "network",
    "subnet",
    "network",
    "subnet",
    "router",
    "security_group",
    "loadbalancer",
    "emit",
];
