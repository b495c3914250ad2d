//! Progress on stderr: one line per finished change with its duration, so
//! a person sees what happens and how long it takes; silent for `--quiet`
//! and when stdout carries JSON for machines.

use super::diff::{Action, Target};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether the current command shows progress; set by `Progress::new`, read
/// by long waits deep in the engine (load balancers) that have no handle.
static SHOWN: AtomicBool = AtomicBool::new(false);

/// A line about a long wait, shown when progress is on.
pub fn waiting(line: &str) {
    tracing::info!("{line}");
    if SHOWN.load(Ordering::Relaxed) {
        eprintln!("    … {line}");
    }
}

pub struct Progress {
    enabled: bool,
    /// `[site] ` in a fleet, so interleaved lines say whose they are.
    prefix: String,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        SHOWN.store(enabled, Ordering::Relaxed);
        Progress {
            enabled,
            prefix: String::new(),
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
