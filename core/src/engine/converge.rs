//! One run of one pipeline against one cloud, as `kuryr6 run` and each
//! site of a fleet do it: read (the lease record first), diff, and only
//! when something is to be written take the lease, apply under it, and
//! emit while still holding it. The one place that orders these steps.
//!
//! Reads: a lease taken from the revision read before the cloud proves
//! that read current, so the cloud is read once (and so does a first run
//! that found nothing and made the record); only a run that had to wait,
//! or lost a race for the record, reads it again under the lease. A
//! run with nothing to write takes no lease, but does not emit while
//! another run holds it (that run may be deleting what kuryr.conf would
//! name): it waits, then reads again.

use super::lease::{self, LeaseOptions};
use super::progress::Progress;
use super::{Applied, ChangeSet, EngineError, Fence, RunOptions, Unfenced};
use crate::cloud::Cloud;
use crate::plan::Plan;

/// What a converge did, and what its `emit` returned.
pub struct Converged<T> {
    pub set: ChangeSet,
    pub applied: Applied,
    pub emitted: T,
}

/// How often a run with nothing to write reads again after waiting for
/// another run, before it takes the lease to settle it.
const READS_AFTER_WAITING: usize = 2;

/// Converges `plan` on `cloud`. `show` gets the change set that is about
/// to be applied; `emit` runs after the writes, under the lease if one was
/// taken (and only while it is still held).
pub async fn converge<C, T, E>(
    cloud: &C,
    plan: &Plan,
    options: RunOptions,
    lease_options: LeaseOptions,
    progress: &Progress,
    show: impl Fn(&ChangeSet),
    emit: impl FnOnce(&Applied) -> Result<T, E>,
) -> Result<Converged<T>, E>
where
    C: Cloud,
    E: From<EngineError>,
{
    let mut reads = 0;
    let (obs, set) = loop {
        let obs = super::observe(cloud, plan)
            .await
            .map_err(EngineError::from)?;
        let set = super::diff(plan, &obs, options);
        if !set.refusals.is_empty() {
            return Err(EngineError::Refused(set.refusals.clone()).into());
        }
        reads += 1;
        if set.pending() || reads > READS_AFTER_WAITING {
            break (obs, set);
        }
        if !lease::wait_free(cloud, &plan.pipeline, &obs.lease, lease_options, progress).await? {
            show(&set);
            let applied = super::apply_fenced(cloud, plan, &obs, &set, progress, &Unfenced).await?;
            let emitted = emit(&applied)?;
            return Ok(Converged {
                set,
                applied,
                emitted,
            });
        }
    };
    let seen = Some(obs.lease.clone());
    let taken = lease::take(cloud, &plan.pipeline, seen, lease_options, progress).await?;
    let lease = taken.lease;
    // A record made now proves nothing of the time before; but a pipeline
    // of which the first read found nothing, not even a record, can only
    // have been touched since by a run that made a record too (this take
    // would have found it) or by one that also removed everything again.
    let current =
        taken.undisturbed || (taken.made_now && obs.lease.is_empty() && obs.owns_nothing());
    let work = async {
        let (obs, set) = if current {
            (obs, set)
        } else {
            // Another run may have written since the first read.
            let obs = super::observe(cloud, plan).await?;
            let set = super::diff(plan, &obs, options);
            if !set.refusals.is_empty() {
                return Err(EngineError::Refused(set.refusals.clone()));
            }
            (obs, set)
        };
        show(&set);
        let applied = super::apply_fenced(cloud, plan, &obs, &set, progress, &lease).await?;
        lease.check()?;
        Ok((set, applied))
    };
    let done = lease.hold(cloud, work).await;
    let result = match done {
        Ok((set, applied)) => emit(&applied).map(|emitted| Converged {
            set,
            applied,
            emitted,
        }),
        Err(e) => Err(e.into()),
    };
    lease.release(cloud).await;
    result
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod race_tests;
