//! Runs that race on one pipeline, each seen through a `Witness`: a view of
//! the shared `FakeCloud` that logs every write that took effect with the
//! run that made it. The log is the proof that runs never write in the
//! same wave: each run's writes form one unbroken block. The lease
//! record's own writes are left out of it (a race of first runs makes two
//! records, and the newer one's run deletes it again).

use super::*;
use crate::cloud::fake::FakeCloud;
use crate::cloud::{CloudError, Kind, Query, Service};
use crate::engine::lease::lease_name;
use crate::engine::tests::{SEED, load};
use crate::engine::{DestroyOptions, destroy_fenced, lease::with_lease};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// One write that took effect: which run, what.
#[derive(Debug, Clone)]
struct Write {
    run: &'static str,
    /// For the failure message.
    #[allow(dead_code)]
    what: String,
}

#[derive(Default)]
struct Log {
    writes: Mutex<Vec<Write>>,
    /// Ids of lease records seen, so their writes stay out of the log.
    records: Mutex<HashSet<String>>,
}

impl Log {
    fn writes(&self) -> Vec<Write> {
        self.writes.lock().unwrap().clone()
    }

    /// The order in which runs wrote, one entry per unbroken block.
    fn blocks(&self) -> Vec<&'static str> {
        let mut blocks: Vec<&'static str> = Vec::new();
        for w in self.writes() {
            if blocks.last() != Some(&w.run) {
                blocks.push(w.run);
            }
        }
        blocks
    }
}

struct Witness<'a> {
    cloud: &'a FakeCloud,
    run: &'static str,
    log: &'a Log,
    /// Each write of this run takes this long (a slow run, so that a
    /// lease can run out under it).
    write_time: Duration,
    /// Renewals fail as if the cloud answered 500 to each.
    renewals_fail: bool,
    renewals_failed: Mutex<usize>,
}

impl<'a> Witness<'a> {
    fn new(cloud: &'a FakeCloud, run: &'static str, log: &'a Log) -> Self {
        Witness {
            cloud,
            run,
            log,
            write_time: Duration::ZERO,
            renewals_fail: false,
            renewals_failed: Mutex::new(0),
        }
    }

    fn note_records(&self, values: &[Value]) {
        let mut records = self.log.records.lock().unwrap();
        for v in values {
            if v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kuryr6-lease"))
            {
                records.insert(v["id"].as_str().unwrap_or_default().to_string());
            }
        }
    }

    fn is_record(&self, kind: &Kind, id: &str) -> bool {
        *kind == Kind::SecurityGroup && self.log.records.lock().unwrap().contains(id)
    }

    async fn wrote<T>(
        &self,
        what: String,
        lease: bool,
        r: Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        if r.is_ok() && !lease {
            self.log.writes.lock().unwrap().push(Write {
                run: self.run,
                what,
            });
            tokio::time::sleep(self.write_time).await;
        }
        r
    }
}

impl Cloud for Witness<'_> {
    async fn project_id(&self) -> Result<String, CloudError> {
        self.cloud.project_id().await
    }
    async fn has_service(&self, service: Service) -> Result<bool, CloudError> {
        self.cloud.has_service(service).await
    }
    async fn list(&self, kind: &Kind, query: &Query) -> Result<Vec<Value>, CloudError> {
        let r = self.cloud.list(kind, query).await?;
        self.note_records(&r);
        Ok(r)
    }
    async fn get(&self, kind: &Kind, id: &str) -> Result<Value, CloudError> {
        self.cloud.get(kind, id).await
    }
    async fn create(&self, kind: &Kind, body: Value) -> Result<Value, CloudError> {
        let record = body["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("kuryr6-lease"));
        let r = self.cloud.create(kind, body).await;
        if let Ok(v) = &r {
            self.note_records(std::slice::from_ref(v));
        }
        self.wrote(format!("create {kind}"), record, r).await
    }
    async fn update(&self, kind: &Kind, id: &str, body: Value) -> Result<Value, CloudError> {
        let r = self.cloud.update(kind, id, body).await;
        self.wrote(format!("update {kind} {id}"), self.is_record(kind, id), r)
            .await
    }
    async fn update_if(
        &self,
        kind: &Kind,
        id: &str,
        body: Value,
        revision: u64,
    ) -> Result<Value, CloudError> {
        let r = self.cloud.update_if(kind, id, body, revision).await;
        self.wrote(format!("update {kind} {id}"), self.is_record(kind, id), r)
            .await
    }
    async fn update_if_now(
        &self,
        kind: &Kind,
        id: &str,
        body: Value,
        revision: u64,
    ) -> Result<Value, CloudError> {
        if self.renewals_fail {
            *self.renewals_failed.lock().unwrap() += 1;
            return Err(CloudError::Unavailable(
                "PUT answered 500 after 1 attempt".into(),
            ));
        }
        self.update_if(kind, id, body, revision).await
    }
    async fn delete(&self, kind: &Kind, id: &str) -> Result<(), CloudError> {
        let r = self.cloud.delete(kind, id).await;
        self.wrote(format!("delete {kind} {id}"), self.is_record(kind, id), r)
            .await
    }
    async fn delete_cascade(&self, lb_id: &str) -> Result<(), CloudError> {
        let r = self.cloud.delete_cascade(lb_id).await;
        self.wrote(format!("cascade {lb_id}"), false, r).await
    }
    async fn set_members(
        &self,
        pool_id: &str,
        members: Vec<Value>,
        additive_only: bool,
    ) -> Result<(), CloudError> {
        let r = self
            .cloud
            .set_members(pool_id, members, additive_only)
            .await;
        self.wrote(format!("members {pool_id}"), false, r).await
    }
    async fn router_interface(
        &self,
        router_id: &str,
        subnet_id: &str,
        add: bool,
    ) -> Result<(), CloudError> {
        let r = self.cloud.router_interface(router_id, subnet_id, add).await;
        self.wrote(format!("interface {router_id} {subnet_id} {add}"), false, r)
            .await
    }
}

fn quiet() -> Progress {
    Progress::new(false)
}

async fn converge_on<C: Cloud>(cloud: &C, plan: &Plan) -> Result<usize, EngineError> {
    converge(
        cloud,
        plan,
        RunOptions::default(),
        LeaseOptions {
            wait: Duration::from_secs(30),
        },
        &quiet(),
        |_| {},
        |applied: &Applied| Ok::<_, EngineError>(applied.created),
    )
    .await
    .map(|c| c.emitted)
}

async fn destroy_on<C: Cloud>(cloud: &C, plan: &Plan) -> Result<usize, EngineError> {
    let progress = quiet();
    with_lease(
        cloud,
        &plan.pipeline,
        LeaseOptions {
            wait: Duration::from_secs(30),
        },
        &progress,
        true,
        async |lease| {
            destroy_fenced(cloud, plan, DestroyOptions::default(), &progress, lease).await
        },
    )
    .await
    .map(|d| d.deleted)
}

/// Everything of the pipeline that is left, by kind (lease records apart).
fn left(cloud: &FakeCloud, pipeline: &str) -> Vec<String> {
    let tag = format!("kuryr6-pipeline={pipeline}");
    [
        Kind::Network,
        Kind::Subnet,
        Kind::Router,
        Kind::SecurityGroup,
        Kind::LoadBalancer,
    ]
    .iter()
    .flat_map(|k| cloud.snapshot(k).into_iter().map(move |v| (k.clone(), v)))
    .filter(|(_, v)| {
        v["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == tag.as_str()))
    })
    .map(|(k, v)| format!("{k} {}", v["name"]))
    .collect()
}

#[tokio::test]
async fn two_runs_and_a_destroy_never_write_in_the_same_wave() {
    let plan = load(SEED).plan;
    let mut contended = 0;
    for round in 0..4 {
        let cloud = FakeCloud::new().with_latency(Duration::from_millis(2));
        let log = Log::default();
        let (a, b, d) = (
            Witness::new(&cloud, "a", &log),
            Witness::new(&cloud, "b", &log),
            Witness::new(&cloud, "d", &log),
        );
        // The destroy leaves at a different moment each round: before,
        // during and after the runs' writes.
        let (ra, rb, rd) = tokio::join!(converge_on(&a, &plan), converge_on(&b, &plan), async {
            tokio::time::sleep(Duration::from_millis(40 * round)).await;
            destroy_on(&d, &plan).await
        });
        let (ra, rb, rd) = (ra.unwrap(), rb.unwrap(), rd.unwrap());
        let blocks = log.blocks();
        let mut seen = HashSet::new();
        for run in &blocks {
            assert!(
                seen.insert(*run),
                "round {round}: run {run} wrote again after another run wrote: {blocks:?}"
            );
        }
        assert!(ra + rb > 0, "round {round}: a run built the pipeline");
        if rd > 0 && blocks.len() >= 2 {
            contended += 1;
        }
        // Whole or nothing: the pipeline is complete (a run came last) or
        // gone (the destroy came last).
        let remaining = left(&cloud, &plan.pipeline);
        if blocks.last() == Some(&"d") {
            assert!(
                remaining.is_empty(),
                "round {round}: a half is left: {remaining:?}"
            );
        } else {
            let obs = crate::engine::observe(&cloud, &plan).await.unwrap();
            let set = crate::engine::diff(&plan, &obs, Default::default());
            assert!(
                !set.pending(),
                "round {round}: the last run left the pipeline incomplete"
            );
        }
        let records = cloud
            .snapshot(&Kind::SecurityGroup)
            .into_iter()
            .filter(|v| v["name"] == lease_name(&plan.pipeline).as_str())
            .count();
        assert!(records <= 1, "round {round}: {records} lease records");
    }
    // In most rounds the destroy met what a run had built.
    assert!(
        contended >= 2,
        "the runs and the destroy contended in {contended} rounds"
    );
}

#[tokio::test]
async fn a_run_whose_renewals_fail_stops_and_the_next_holder_writes_alone() {
    let plan = load(SEED).plan;
    let cloud = FakeCloud::new();
    let log = Log::default();
    let mut a = Witness::new(&cloud, "a", &log);
    // Slow enough that the lease runs out under the run's writes.
    a.write_time = Duration::from_millis(600);
    a.renewals_fail = true;
    let b = Witness::new(&cloud, "b", &log);
    let (ra, rb) = tokio::join!(converge_on(&a, &plan), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        converge_on(&b, &plan).await
    });
    let Err(EngineError::LeaseLost(why)) = &ra else {
        panic!("run a must stop on its lost lease: {:?}", ra.map(|_| ()));
    };
    assert!(why.contains("running again finishes"), "{why}");
    assert!(
        *a.renewals_failed.lock().unwrap() >= 2,
        "a's renewals were tried and failed"
    );
    rb.expect("b finishes the job once a's record expired");
    let writes = log.writes();
    let a_writes = writes.iter().filter(|w| w.run == "a").count();
    assert!(a_writes > 0, "a began writing before it lost the lease");
    assert_eq!(
        log.blocks(),
        ["a", "b"],
        "no write of a after b's first: {writes:?}"
    );
    let obs = crate::engine::observe(&cloud, &plan).await.unwrap();
    assert!(!crate::engine::diff(&plan, &obs, Default::default()).pending());
    let nets: Vec<_> = cloud.snapshot(&Kind::Network);
    let names: HashSet<_> = nets.iter().map(|n| n["name"].to_string()).collect();
    assert_eq!(names.len(), nets.len(), "no duplicate network: {names:?}");
}
