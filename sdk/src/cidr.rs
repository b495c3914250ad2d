//! CIDR arithmetic for plugins: strict parsing, carving the n-th subnet of
//! a prefix, halves, containment and overlap, and the subnet layouts kuryr6
//! derives. It is the host's own (`kuryr6-plan`'s `addr`), so a plugin
//! that moves a subnet produces exactly what the short form would, and the
//! host's validation passes.
//!
//! Family-agnostic: addresses are handled as `u128` offsets. Every function
//! is total: bad input gives `None`/`Err`, never a panic.

pub use kuryr6_plan::addr::*;
