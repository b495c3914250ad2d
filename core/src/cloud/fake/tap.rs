//! The fake seen by one run through a tap, for tests of what happens
//! between runs and the network: a write log naming the run that made
//! each write, a slow run, renewals that fail, and a create whose POST
//! lands late (it answers 504 and takes effect only on `land`). One
//! delegating `Cloud` for all of them, so that each test states only its
//! fault.

use super::FakeCloud;
use crate::cloud::{Cloud, CloudError, CloudResult, Kind, Query, Service};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// One write that took effect: which run, what.
#[derive(Debug, Clone)]
pub struct Write {
    pub run: &'static str,
    pub what: String,
}

/// The writes of every tap that shares it, in the order they took effect.
/// Writes to a pipeline's lease record are left out (a race of first
/// runs makes two records, and the newer one's run deletes it again).
#[derive(Default)]
pub struct WriteLog {
    writes: Mutex<Vec<Write>>,
    /// Ids of lease records seen.
    records: Mutex<HashSet<String>>,
}

impl WriteLog {
    pub fn writes(&self) -> Vec<Write> {
        self.writes.lock().unwrap().clone()
    }

    /// The order in which runs wrote, one entry per unbroken block.
    pub fn blocks(&self) -> Vec<&'static str> {
        let mut blocks: Vec<&'static str> = Vec::new();
        for w in self.writes() {
            if blocks.last() != Some(&w.run) {
                blocks.push(w.run);
            }
        }
        blocks
    }
}

/// The Neutron kinds whose late copies can hide: their tags come after
/// the create (Octavia's objects are tagged in it; Neutron refuses a
/// duplicate rule).
pub const LATE_KINDS: [Kind; 4] = [
    Kind::Network,
    Kind::Subnet,
    Kind::Router,
    Kind::SecurityGroup,
];

fn is_lease_record_name(v: &Value) -> bool {
    v["name"]
        .as_str()
        .is_some_and(|n| n.starts_with(crate::validate::RESERVED_NAME_PREFIX))
}

/// `FakeCloud::tap`.
pub struct Tap<'a> {
    cloud: &'a FakeCloud,
    run: &'static str,
    log: Option<&'a WriteLog>,
    /// Each write of this run takes this long after it took effect.
    pub write_time: Duration,
    /// Renewals fail as if the cloud answered 500 to each.
    pub renewals_fail: bool,
    renewals_failed: Mutex<usize>,
    /// The nth create of a `LATE_KINDS` resource (lease records apart)
    /// answers 504 and is held until `land`; 0: none.
    pub late_create: usize,
    creates: Mutex<usize>,
    held: Mutex<Vec<(Kind, Value)>>,
}

impl FakeCloud {
    /// This fake as run `run` sees it, logging its writes to `log`.
    pub fn tap<'a>(&'a self, run: &'static str, log: Option<&'a WriteLog>) -> Tap<'a> {
        Tap {
            cloud: self,
            run,
            log,
            write_time: Duration::ZERO,
            renewals_fail: false,
            renewals_failed: Mutex::new(0),
            late_create: 0,
            creates: Mutex::new(0),
            held: Mutex::new(Vec::new()),
        }
    }
}

impl Tap<'_> {
    /// Renewals that failed so far.
    pub fn renewals_failed(&self) -> usize {
        *self.renewals_failed.lock().unwrap()
    }

    /// Creates of `LATE_KINDS` resources so far (lease records apart).
    pub fn late_kind_creates(&self) -> usize {
        *self.creates.lock().unwrap()
    }

    /// The held POST reaches the server's database now: the copy, or the
    /// server's refusal (a second subnet of one CIDR on one network
    /// overlaps the first, so Neutron never holds both).
    pub async fn land(&self) -> Vec<Result<Value, CloudError>> {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        let mut made = Vec::new();
        for (kind, body) in held {
            made.push(self.cloud.create(&kind, body).await);
        }
        made
    }

    fn note_records(&self, values: &[Value]) {
        if let Some(log) = self.log {
            let mut records = log.records.lock().unwrap();
            for v in values.iter().filter(|v| is_lease_record_name(v)) {
                records.insert(v["id"].as_str().unwrap_or_default().to_string());
            }
        }
    }

    fn is_record(&self, kind: &Kind, id: &str) -> bool {
        *kind == Kind::SecurityGroup
            && self
                .log
                .is_some_and(|log| log.records.lock().unwrap().contains(id))
    }

    async fn wrote<T>(
        &self,
        what: String,
        record: bool,
        r: Result<T, CloudError>,
    ) -> CloudResult<T> {
        if r.is_ok() && !record {
            if let Some(log) = self.log {
                log.writes.lock().unwrap().push(Write {
                    run: self.run,
                    what,
                });
            }
            tokio::time::sleep(self.write_time).await;
        }
        r
    }
}

impl Cloud for Tap<'_> {
    async fn project_id(&self) -> CloudResult<String> {
        self.cloud.project_id().await
    }
    async fn has_service(&self, service: Service) -> CloudResult<bool> {
        self.cloud.has_service(service).await
    }
    async fn lb_providers(&self) -> CloudResult<Vec<String>> {
        self.cloud.lb_providers().await
    }
    async fn list(&self, kind: &Kind, query: &Query) -> CloudResult<Vec<Value>> {
        let r = self.cloud.list(kind, query).await?;
        self.note_records(&r);
        Ok(r)
    }
    async fn get(&self, kind: &Kind, id: &str) -> CloudResult<Value> {
        self.cloud.get(kind, id).await
    }
    async fn create(&self, kind: &Kind, body: Value) -> CloudResult<Value> {
        let record = is_lease_record_name(&body);
        if LATE_KINDS.contains(kind) && !record {
            let n = {
                let mut creates = self.creates.lock().unwrap();
                *creates += 1;
                *creates
            };
            if n == self.late_create {
                self.held.lock().unwrap().push((kind.clone(), body));
                return Err(CloudError::Unavailable(
                    "POST answered 504 Gateway Timeout".into(),
                ));
            }
        }
        let r = self.cloud.create(kind, body).await;
        if let Ok(v) = &r {
            self.note_records(std::slice::from_ref(v));
        }
        self.wrote(format!("create {kind}"), record, r).await
    }
    async fn update(&self, kind: &Kind, id: &str, body: Value) -> CloudResult<Value> {
        let r = self.cloud.update(kind, id, body).await;
        self.wrote(format!("update {kind} {id}"), self.is_record(kind, id), r)
            .await
    }
    async fn update_if(&self, kind: &Kind, id: &str, body: Value, rev: u64) -> CloudResult<Value> {
        let r = self.cloud.update_if(kind, id, body, rev).await;
        self.wrote(format!("update {kind} {id}"), self.is_record(kind, id), r)
            .await
    }
    async fn renew(&self, kind: &Kind, id: &str, body: Value, rev: u64) -> CloudResult<Value> {
        if self.renewals_fail {
            *self.renewals_failed.lock().unwrap() += 1;
            return Err(CloudError::Unavailable(
                "PUT answered 500 after 1 attempt".into(),
            ));
        }
        self.update_if(kind, id, body, rev).await
    }
    async fn delete(&self, kind: &Kind, id: &str) -> CloudResult<()> {
        let r = self.cloud.delete(kind, id).await;
        self.wrote(format!("delete {kind} {id}"), self.is_record(kind, id), r)
            .await
    }
    async fn delete_cascade(&self, lb_id: &str) -> CloudResult<()> {
        let r = self.cloud.delete_cascade(lb_id).await;
        self.wrote(format!("cascade {lb_id}"), false, r).await
    }
    async fn add_members(&self, pool_id: &str, members: Vec<Value>) -> CloudResult<()> {
        let r = self.cloud.add_members(pool_id, members).await;
        self.wrote(format!("members {pool_id}"), false, r).await
    }
    async fn router_interface(&self, router: &str, subnet: &str, add: bool) -> CloudResult<()> {
        let r = self.cloud.router_interface(router, subnet, add).await;
        self.wrote(format!("interface {router} {subnet} {add}"), false, r)
            .await
    }
}
