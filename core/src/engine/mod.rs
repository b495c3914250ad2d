//! Converging a cloud to a plan: read what this pipeline owns, diff it
//! against the plan, apply the difference, and destroy what it owns.
//!
//! Ownership is carried by marks on the resources themselves (no state
//! file); `ownership` makes and recognises them.
//!
//! Order of work (`converge`): `observe` (the lease record first, then one
//! list call per resource type, concurrently) → `diff` (pure) → the lease,
//! only when something is to be written → `apply` (deletes in reverse
//! dependency order, then creates/updates in dependency waves, each wave
//! concurrent, the lease checked before each) → emit.

pub mod apply;
pub mod change;
pub mod converge;
pub mod create;
pub mod dedupe;
pub mod destroy;
pub mod diff;
pub mod diff_lb;
pub mod ids;
pub mod kind;
pub mod lb;
pub mod lb_tree;
pub mod lease;
pub mod observe;
pub mod ownership;
pub mod port_roles;
pub mod progress;
pub mod value;

use serde::Serialize;

pub use apply::{Applied, apply, apply_fenced};
pub use change::{Action, Change, ChangeSet, FieldChange, Target};
pub use destroy::{DestroyOptions, Destroyed, destroy, destroy_fenced};
pub use diff::diff;
pub use observe::{Observed, observe};
pub use ownership::Ownership;

/// What a run was asked to allow beyond the safe default.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RunOptions {
    /// Tag and manage same-named resources kuryr6 does not own.
    pub adopt: bool,
    /// Delete and re-create resources whose immutable fields changed.
    pub replace: bool,
}

/// Errors of the engine: the cloud's, or a refusal the operator must act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
    /// The pipeline cannot be applied as it stands (conflicts, refused
    /// replacements); nothing was changed.
    #[error("{}", .0.join("\n"))]
    Refused(Vec<String>),
    /// A resource did not reach a usable state in time.
    #[error("{0}")]
    Timeout(String),
    /// Something in the way that kuryr6 does not own (destroy).
    #[error("{}", .0.join("\n"))]
    Blocked(Vec<String>),
    /// The run no longer holds its pipeline's lease (a renewal failed for
    /// too long, or another run took the expired record): it stopped
    /// before its next write.
    #[error("{0}")]
    LeaseLost(String),
}

/// The error for the first change of a failed bulk call, a pointer to it
/// for the others (EngineError is not Clone: it may hold I/O errors).
pub(crate) fn one_error_for_all(
    e: EngineError,
    n: usize,
) -> Vec<Result<Option<String>, EngineError>> {
    let text = e.to_string();
    std::iter::once(Err(e))
        .chain((1..n).map(|_| {
            Err(EngineError::Refused(vec![format!(
                "not created: the bulk call failed ({text})"
            )]))
        }))
        .collect()
}

/// What a writer checks before each wave of writes and before emitting:
/// that it may still write. `lease::Lease` is the one that can say no.
pub trait Fence: Sync {
    fn check(&self) -> Result<(), EngineError>;
    /// The run sent a create again after an ambiguous failure whose
    /// read-back found nothing (`create`): its first copy may land later.
    fn note_resent(&self) {}
}

/// No lease to hold (tests, and work that the caller fences itself).
pub struct Unfenced;

impl Fence for Unfenced {
    fn check(&self) -> Result<(), EngineError> {
        Ok(())
    }
}

#[cfg(test)]
mod late_tests;
#[cfg(test)]
mod lb_tests;
#[cfg(test)]
mod provider_tests;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod rule_tests;
