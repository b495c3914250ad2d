//! Address arithmetic for the plan: strict prefix parsing, the service
//! subnet split, the pod subnet layout, site-prefix carving and overlap.
//!
//! It lives in the `kuryr6-plan` crate, so plugins (through the SDK's
//! `cidr`) compute exactly what the host validates.

pub use kuryr6_plan::addr::*;
