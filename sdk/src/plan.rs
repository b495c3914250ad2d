//! The plan as a plugin sees it: `kuryr6-plan`'s types (the host's own),
//! with [`Extra`] for the fields a struct does not know.
//!
//! Every struct keeps the fields this SDK version does not know in `extra`
//! and writes them back unchanged, so a plugin built with an older SDK
//! carries new host fields through instead of dropping them. The host
//! still parses the returned plan strictly and validates it: a plugin
//! cannot invent fields or return an invalid plan.

pub use kuryr6_plan::{Extra, Role, StepKind};

/// Declares `pub type X = kuryr6_plan::X<Extra>;` for each name given.
macro_rules! keeping_extra {
    ($($name:ident),* $(,)?) => {$(
        #[doc = concat!("[`kuryr6_plan::", stringify!($name), "`], keeping unknown fields in [`Extra`].")]
        pub type $name = kuryr6_plan::$name<Extra>;
    )*};
}

keeping_extra!(
    Plan,
    Kubernetes,
    ApiHost,
    Step,
    Network,
    Subnet,
    Pool,
    Router,
    SecurityGroup,
    Rule,
    Loadbalancer,
    Emit,
);
