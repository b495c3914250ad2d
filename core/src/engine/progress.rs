//! Progress on stderr: one line per finished change with its duration, so
//! a person sees what happens and how long it takes; silent for `--quiet`
//! and when stdout carries JSON for machines.

use super::change::{Action, Target};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Whether the current command shows progress; set by `Progress::new`, read
/// by long waits deep in the engine (load balancers) that have no handle.
static SHOWN: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    /// `[site] ` while a fleet's site is being polled (`fleet::run`), so that
    /// `waiting`, which has no `Progress` at hand, names the site too.
    pub static SITE_PREFIX: String;
}

/// A line about a long wait, shown when progress is on.
pub fn waiting(line: &str) {
    tracing::info!("{line}");
    if SHOWN.load(Ordering::Relaxed) {
        let prefix = SITE_PREFIX.try_with(String::clone).unwrap_or_default();
        eprintln!("{prefix}    … {line}");
    }
}

pub struct Progress {
    enabled: bool,
    /// `[site] ` in a fleet, so interleaved lines say whose they are.
    prefix: String,
    /// Changes that succeeded so far: created, updated, deleted, adopted.
    /// `apply` returns its counts only when every change succeeded; a
    /// fleet's summary still has to say what a failed site changed.
    done: [AtomicUsize; 4],
}

/// What `Progress` saw succeed (`Progress::succeeded`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Succeeded {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub adopted: usize,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        SHOWN.store(enabled, Ordering::Relaxed);
        Progress {
            enabled,
            prefix: String::new(),
            done: Default::default(),
        }
    }

    /// The changes reported done and successful so far.
    pub fn succeeded(&self) -> Succeeded {
        let n = |i: usize| self.done[i].load(Ordering::Relaxed);
        Succeeded {
            created: n(0),
            updated: n(1),
            deleted: n(2),
            adopted: n(3),
        }
    }

    /// Progress of one site of a fleet: every line starts with `[site] `.
    pub fn for_site(site: &str, enabled: bool) -> Progress {
        Progress {
            prefix: format!("[{site}] "),
            ..Progress::new(enabled)
        }
    }

    pub fn done(&self, target: &Target, action: Action, took: Duration, ok: bool) {
        tracing::info!(%target, ?action, ms = took.as_millis() as u64, ok, "change applied");
        // As `apply` counts: a replacement's new resource is a creation.
        let slot = match action {
            Action::Create | Action::Replace => Some(0),
            Action::Update => Some(1),
            Action::Delete => Some(2),
            Action::Adopt => Some(3),
            Action::NoOp => None,
        };
        if let (true, Some(i)) = (ok, slot) {
            self.done[i].fetch_add(1, Ordering::Relaxed);
        }
        if !self.enabled {
            return;
        }
        let sign = match action {
            Action::Create | Action::Replace => "+",
            Action::Delete => "-",
            Action::Adopt => "&",
            Action::Update => "~",
            Action::NoOp => " ",
        };
        let status = if ok { "" } else { "  FAILED" };
        eprintln!(
            "{}  {sign} {target}  ({:.2} s){status}",
            self.prefix,
            took.as_secs_f64()
        );
    }

    pub fn note(&self, line: &str) {
        if self.enabled {
            eprintln!("{}{line}", self.prefix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SITE_PREFIX;

    /// Sites interleave in one task: each still sees its own prefix.
    #[tokio::test]
    async fn interleaved_sites_each_see_their_own_prefix() {
        let site = |name: &'static str| {
            SITE_PREFIX.scope(format!("[{name}] "), async move {
                let mut seen = Vec::new();
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                    seen.push(SITE_PREFIX.with(String::clone));
                }
                seen
            })
        };
        let (a, b) = futures::join!(site("a"), site("b"));
        assert_eq!(a, ["[a] "; 3]);
        assert_eq!(b, ["[b] "; 3]);
        assert!(
            SITE_PREFIX.try_with(String::clone).is_err(),
            "no prefix outside a site"
        );
    }
}
