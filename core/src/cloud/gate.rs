//! One limit per API endpoint, shared by every client that talks to it.
//!
//! In a fleet, sites on one cloud use separate logins (one per project) but
//! the same Neutron: each `OpenStack` client asks the shared `EndpointGates`
//! for the endpoint's gate before each request. The gate bounds requests in
//! flight, and a 429 seen by any client pauses every client of that endpoint
//! for the `Retry-After` the server asked for, so a fleet slows down as one
//! instead of each site finding the limit by itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The gates of every endpoint (`host:port`), made on first use.
#[derive(Debug)]
pub struct EndpointGates {
    limit: usize,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

impl EndpointGates {
    /// `limit`: requests in flight per endpoint (at least 1).
    pub fn new(limit: usize) -> Arc<EndpointGates> {
        Arc::new(EndpointGates {
            limit: limit.max(1),
            gates: Mutex::new(HashMap::new()),
        })
    }

    pub fn gate(&self, endpoint: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates
            .entry(endpoint.to_string())
            .or_insert_with(|| {
                Arc::new(Gate {
                    slots: Semaphore::new(self.limit),
                    resume_at: Mutex::new(None),
                    throttled: AtomicU64::new(0),
                })
            })
            .clone()
    }
}

#[derive(Debug)]
pub struct Gate {
    slots: Semaphore,
    /// No request leaves before this instant (set by a 429).
    resume_at: Mutex<Option<Instant>>,
    throttled: AtomicU64,
}

impl Gate {
    /// Waits out any pause, then for a free slot; the slot is held until the
    /// permit drops (after the answer arrived).
    pub async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        loop {
            if let Some(at) = self.paused_until() {
                tokio::time::sleep_until(at).await;
            }
            // The semaphore is never closed; `None` would only mean "no limit".
            let permit = self.slots.acquire().await.ok();
            // A 429 may have arrived while this request queued for a slot.
            if self.paused_until().is_none() {
                return permit;
            }
        }
    }

    /// Every client of this endpoint waits `wait` before its next request.
    pub fn throttle(&self, wait: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + wait;
        let mut at = self.resume_at.lock().unwrap_or_else(|p| p.into_inner());
        if at.is_none_or(|a| a < until) {
            *at = Some(until);
        }
    }

    /// How many 429s this endpoint answered so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    fn paused_until(&self) -> Option<Instant> {
        let at = *self.resume_at.lock().unwrap_or_else(|p| p.into_inner());
        at.filter(|a| *a > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn bounds_requests_in_flight_per_endpoint() {
        let gates = EndpointGates::new(3);
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..20 {
            // Two endpoints: each has its own limit of 3.
            let gate = gates.gate(if i % 2 == 0 { "a:1" } else { "b:1" });
            let (now, peak) = (now.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let _p = gate.enter().await;
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            6,
            "3 per endpoint, both endpoints busy"
        );
    }

    #[tokio::test]
    async fn a_429_pauses_every_client_of_the_endpoint_only() {
        let gates = EndpointGates::new(8);
        // What one site's client saw…
        gates
            .gate("neutron:9696")
            .throttle(Duration::from_millis(300));
        let started = Instant::now();
        // …slows another site's client on the same endpoint,
        drop(gates.gate("neutron:9696").enter().await);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(280), "{waited:?}");
        // but not a client of another endpoint.
        let started = Instant::now();
        drop(gates.gate("other:9696").enter().await);
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(gates.gate("neutron:9696").throttled(), 1);
    }
}
