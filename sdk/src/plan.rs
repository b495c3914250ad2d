//! The plan as a plugin sees it: `kuryr6-plan`'s types (the host's own),
//! with [`Extra`] for the fields a struct does not know.
//!
//! Every struct keeps the fields this SDK version does not know in `extra`
//! and writes them back unchanged, so a plugin built with an older SDK
//! carries new host fields through instead of dropping them. The host
//! still parses the returned plan strictly and validates it: a plugin
//! cannot invent fields or return an invalid plan.

pub use kuryr6_plan::{Extra, Role, StepKind};

pub type Plan = kuryr6_plan::Plan<Extra>;
pub type Kubernetes = kuryr6_plan::Kubernetes<Extra>;
pub type ApiHost = kuryr6_plan::ApiHost<Extra>;
pub type Step = kuryr6_plan::Step<Extra>;
pub type Network = kuryr6_plan::Network<Extra>;
pub type Subnet = kuryr6_plan::Subnet<Extra>;
pub type Pool = kuryr6_plan::Pool<Extra>;
pub type Router = kuryr6_plan::Router<Extra>;
pub type SecurityGroup = kuryr6_plan::SecurityGroup<Extra>;
pub type Rule = kuryr6_plan::Rule<Extra>;
pub type Loadbalancer = kuryr6_plan::Loadbalancer<Extra>;
pub type Emit = kuryr6_plan::Emit<Extra>;
