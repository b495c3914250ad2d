//! The lease against the `FakeCloud`, whose security groups keep Neutron's
//! `revision_number` and answer a stale `If-Match` with 412. Unit tests run
//! with a 3 s `TTL` (see the constants), so a lease can expire in a test.

use super::*;
use crate::cloud::FakeCloud;
use crate::cloud::fake::{Fault, Verb};

fn quiet() -> Progress {
    Progress::new(false)
}

fn no_wait() -> LeaseOptions {
    LeaseOptions {
        wait: Duration::ZERO,
    }
}

/// Another run's holder: this process with another token, boot id and PID
/// namespace unless given.
fn other_holder(expires: u64) -> Holder {
    Holder {
        token: Some("0123456789abcdef0123456789abcdef".into()),
        boot: Some("00000000-0000-4000-8000-000000000000".into()),
        pidns: Some(1),
        ..this_process(expires)
    }
}

/// `taken` is a refusal whose first line says the lease is held, naming
/// the holder's `record`; if `taken` is no refusal, the test fails with
/// `otherwise`.
#[track_caller]
fn assert_refused_naming_the_record<T>(
    taken: Result<T, EngineError>,
    record: &Value,
    otherwise: &str,
) {
    let Err(EngineError::Refused(lines)) = taken else {
        panic!("{otherwise}");
    };
    let first = &lines[0];
    assert!(
        first.contains("holds its lease") && first.contains(str_of(record, "id")),
        "{lines:?}"
    );
}

/// Takes the lease of `pipeline` at once, then frees it.
async fn take_and_release(cloud: &FakeCloud, pipeline: &str) {
    let taken = take(cloud, pipeline, None, no_wait(), &quiet()).await;
    taken.unwrap().lease.release(cloud).await;
}

/// The pipeline's record as a run of `holder` left it (tagged, as `take`
/// makes it).
async fn record_held_by(cloud: &FakeCloud, pipeline: &str, holder: &Holder) -> Value {
    let made = cloud
        .create(
            &Kind::SecurityGroup,
            json!({ "name": lease_name(pipeline), "description": holder.describe() }),
        )
        .await
        .unwrap();
    let id = str_of(&made, "id").to_string();
    cloud
        .set_new_tags(&Kind::SecurityGroup, &id, &[lease_tag(pipeline)])
        .await
        .unwrap();
    cloud.get(&Kind::SecurityGroup, &id).await.unwrap()
}

fn records(cloud: &FakeCloud, pipeline: &str) -> Vec<Value> {
    cloud
        .snapshot(&Kind::SecurityGroup)
        .into_iter()
        .filter(|v| str_of(v, "name") == lease_name(pipeline))
        .collect()
}

#[test]
fn holder_round_trips_and_older_releases_read_a_free_record_as_expired() {
    let h = this_process(12345);
    assert_eq!(Holder::parse(&h.describe()), Some(h.clone()));
    assert!(
        h.describe().len() < 255,
        "fits Neutron's description: {}",
        h.describe()
    );
    assert_eq!(Holder::parse("made by hand"), None);
    assert_eq!(Holder::parse(FREE), None, "free");
    // What a release before this lease wrote: still a holder.
    let old = Holder::parse("kuryr6 lease: host=h pid=7 start=1 user=u expires=99").unwrap();
    assert_eq!(old.token, None);
    assert_eq!(old.expires, 99);
    // How such a release parses the free record: host, pid, start, user
    // and an expiry of 0, which it takes as dead.
    let field = |k: &str| {
        FREE.strip_prefix("kuryr6 lease: ")
            .unwrap()
            .split(' ')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
    };
    for k in ["host", "pid", "start", "user"] {
        assert!(field(k).is_some(), "{k}");
    }
    assert_eq!(field("expires"), Some("0"));
}

#[test]
fn a_holder_is_freed_early_only_on_its_own_machine_and_namespace() {
    let me = this_process(0);
    let now = now_secs();
    assert!(this_process(now + 60).live(now, &me), "this very process");
    assert!(!this_process(now - 1).live(now, &me), "expired");
    let gone_here = Holder {
        pid: u32::MAX - 1,
        token: Some("another".into()),
        ..this_process(now + 60)
    };
    assert!(!gone_here.live(now, &me), "gone, same boot and namespace");
    // Same host name, another machine or PID namespace: the pid means
    // nothing here, so only expiry frees it.
    let other_boot = Holder {
        boot: Some("another-boot".into()),
        ..gone_here.clone()
    };
    assert!(other_boot.live(now, &me));
    let other_ns = Holder {
        pidns: me.pidns.map(|n| n + 1),
        ..gone_here.clone()
    };
    assert!(other_ns.live(now, &me));
    let older_release = Holder {
        boot: None,
        pidns: None,
        token: None,
        ..gone_here
    };
    assert!(older_release.live(now, &me), "no boot id: only expiry");
}

#[test]
fn a_killed_but_unreaped_holder_is_dead() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = process_start(pid).expect("a running child has a start time");
    assert!(process_alive(pid, start));
    assert!(
        !process_alive(pid, start + 1),
        "a recycled pid is not the holder"
    );
    child.kill().unwrap();
    // Not reaped yet: the kernel keeps a zombie entry in /proc.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!process_alive(pid, start), "a zombie holds nothing");
    child.wait().unwrap();
    assert!(!process_alive(pid, start));
}

#[tokio::test]
async fn one_record_per_pipeline_taken_and_freed_by_compare_and_swap() {
    let cloud = FakeCloud::new();
    let first = take(&cloud, "p", None, LeaseOptions::default(), &quiet())
        .await
        .unwrap();
    assert!(
        !first.undisturbed,
        "a record made now proves no earlier read"
    );
    let [record] = records(&cloud, "p").try_into().unwrap();
    assert!(held_by(&record, &holding(&first.lease.token, 0)));
    assert!(super::super::ownership::has_tag(&record, &lease_tag("p")));
    assert!(
        !super::super::Ownership::new("p").is_tagged(&record),
        "not one of the pipeline's groups"
    );
    // Another pipeline is not affected.
    let other = take(&cloud, "q", None, no_wait(), &quiet()).await.unwrap();
    first.lease.release(&cloud).await;
    other.lease.release(&cloud).await;
    let [record] = records(&cloud, "p").try_into().unwrap();
    assert_eq!(str_of(&record, "description"), FREE, "kept, free");

    // The next run takes the same record from the revision it read: one
    // conditional update, no create, no list.
    let seen = read(&cloud, "p").await.unwrap();
    cloud.reset_calls();
    let again = take(&cloud, "p", Some(seen), no_wait(), &quiet())
        .await
        .unwrap();
    assert!(again.undisturbed);
    assert_eq!(cloud.calls(Verb::Update, &Kind::SecurityGroup), 1);
    assert_eq!(cloud.calls(Verb::Create, &Kind::SecurityGroup), 0);
    assert_eq!(cloud.calls(Verb::List, &Kind::SecurityGroup), 0);
    assert_eq!(again.lease.id(), str_of(&record, "id"));
    again.lease.release(&cloud).await;
    assert_eq!(records(&cloud, "p").len(), 1);
}

#[tokio::test]
async fn a_record_moved_since_it_was_read_is_read_again_and_the_take_is_not_undisturbed() {
    let cloud = FakeCloud::new();
    take_and_release(&cloud, "p").await;
    let seen = read(&cloud, "p").await.unwrap();
    // Another run took and released it in between: its revision moved.
    let id = str_of(&seen[0], "id").to_string();
    cloud
        .update(&Kind::SecurityGroup, &id, json!({ "description": FREE }))
        .await
        .unwrap();
    cloud.reset_calls();
    let taken = take(&cloud, "p", Some(seen), no_wait(), &quiet())
        .await
        .unwrap();
    assert!(
        !taken.undisturbed,
        "the first read is stale: read the cloud again"
    );
    assert_eq!(
        cloud.calls(Verb::Update, &Kind::SecurityGroup),
        2,
        "a refused swap, then one that held"
    );
    taken.lease.release(&cloud).await;
}

#[tokio::test]
async fn a_live_holder_is_waited_for_with_reads_only_and_named() {
    let cloud = FakeCloud::new();
    let holder = other_holder(now_secs() + 60);
    let record = record_held_by(&cloud, "p", &holder).await;
    cloud.reset_calls();
    let refused = take(
        &cloud,
        "p",
        None,
        LeaseOptions {
            wait: Duration::from_millis(900),
        },
        &quiet(),
    )
    .await;
    assert_refused_naming_the_record(
        refused,
        &record,
        "a live holder must be waited for, then refused",
    );
    assert!(
        cloud.calls(Verb::List, &Kind::SecurityGroup) >= 2,
        "it read while it waited"
    );
    for verb in [Verb::Create, Verb::Update, Verb::Delete] {
        assert_eq!(
            cloud.calls(verb, &Kind::SecurityGroup),
            0,
            "waiting writes nothing: {verb:?}"
        );
    }
}

#[tokio::test]
async fn two_holders_of_one_host_name_never_free_each_others_live_record() {
    let cloud = FakeCloud::new();
    // Same host name and a pid that is not running here, but another boot
    // id (another machine called the same) or PID namespace (a container):
    // live until it expires.
    for (boot, pidns) in [
        (Some("another-boot".to_string()), pid_namespace()),
        (boot_id(), pid_namespace().map(|n| n + 1)),
    ] {
        let cloud = FakeCloud::new();
        let holder = Holder {
            pid: u32::MAX - 1,
            boot,
            pidns,
            ..other_holder(now_secs() + 60)
        };
        record_held_by(&cloud, "p", &holder).await;
        assert!(take(&cloud, "p", None, no_wait(), &quiet()).await.is_err());
        assert_eq!(cloud.calls(Verb::Delete, &Kind::SecurityGroup), 0);
    }
    // The same machine and namespace, the process gone: taken at once.
    let gone = Holder {
        pid: u32::MAX - 1,
        boot: boot_id(),
        pidns: pid_namespace(),
        ..other_holder(now_secs() + 60)
    };
    record_held_by(&cloud, "p", &gone).await;
    let taken = take(&cloud, "p", None, no_wait(), &quiet()).await.unwrap();
    assert_eq!(records(&cloud, "p").len(), 1, "taken over, not made anew");
    taken.lease.release(&cloud).await;
}

#[tokio::test]
async fn concurrent_takes_never_overlap() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Every call takes a moment, so that the four first takes interleave:
    // all make a record, all read the others' (a race of first runs).
    let cloud = FakeCloud::new().with_latency(Duration::from_millis(3));
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let progress = quiet();
    let one = || async {
        with_lease(
            &cloud,
            "p",
            LeaseOptions::default(),
            &progress,
            false,
            async |_| {
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .await
    };
    let results = futures::future::join_all((0..4).map(|_| one())).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().filter(|r| r.is_err()).count()
    );
    assert_eq!(most.load(Ordering::SeqCst), 1, "one holder at a time");
    // Four runs, one record: the race to make it left no second one.
    assert_eq!(records(&cloud, "p").len(), 1);
}

/// The race CI met on the real cloud: run B read before run A made the
/// record, A read back before B made its own, and B's record sorts first
/// (Neutron's ids are random and `created_at` has whole seconds). B must
/// yield to A's live record, though its own is "the oldest". A holds for a
/// minute, so a slow machine cannot let its record expire mid-test.
#[tokio::test]
async fn a_first_run_whose_record_sorts_first_yields_to_a_live_one_made_before_it() {
    let cloud = FakeCloud::new().with_ids_counting_down();
    let stale_read = read(&cloud, "p").await.unwrap();
    assert!(stale_read.is_empty());
    let a = record_held_by(&cloud, "p", &other_holder(now_secs() + 60)).await;
    // What is made after A's record sorts before it, as B's will.
    let later = cloud
        .create(&Kind::SecurityGroup, json!({ "name": "later" }))
        .await
        .unwrap();
    assert!(str_of(&later, "id") < str_of(&a, "id"));
    cloud.reset_calls();
    let b = take(&cloud, "p", Some(stale_read), no_wait(), &quiet()).await;
    // B made its record (sorting first): the race happened as in CI.
    assert_eq!(cloud.calls(Verb::Create, &Kind::SecurityGroup), 1);
    assert_refused_naming_the_record(b, &a, "B must not hold the lease while A does");
    assert_eq!(
        cloud.calls(Verb::Delete, &Kind::SecurityGroup),
        1,
        "B deleted the record it made"
    );
    let [left] = records(&cloud, "p").try_into().unwrap();
    for field in ["id", "description", "revision_number"] {
        assert_eq!(left[field], a[field], "A's record, untouched: {field}");
    }
}

#[tokio::test]
async fn renewals_that_keep_failing_trip_the_fence_before_the_next_write() {
    let cloud = FakeCloud::new();
    let taken = take(&cloud, "p", None, no_wait(), &quiet()).await.unwrap();
    let lease = taken.lease;
    assert!(lease.check().is_ok());
    // Every renewal meets a 429 or a 500 that outlived the retries.
    for i in 0..100 {
        cloud.add_fault(Fault {
            verb: Some(Verb::Update),
            kind: Some(Kind::SecurityGroup),
            nth: 1,
            error: CloudError::Unavailable(if i % 2 == 0 {
                "PUT answered 429 after 5 attempts".into()
            } else {
                "PUT answered 500 after 5 attempts".into()
            }),
            after_effect: false,
        });
    }
    let plan = crate::load::load_source(crate::source::SourceFile::new(
        "p.toml",
        include_str!("../../../../examples/seed-ipv6/pipeline.toml"),
    ))
    .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
    .plan;
    let obs = super::super::observe(&cloud, &plan).await.unwrap();
    let set = super::super::diff(&plan, &obs, Default::default());
    cloud.reset_calls();
    // The work outlasts TTL - MARGIN: every renewal fails meanwhile.
    let result = lease
        .hold(&cloud, async {
            tokio::time::sleep(TTL - MARGIN + Duration::from_millis(300)).await;
            super::super::apply_fenced(&cloud, &plan, &obs, &set, &quiet(), &lease).await
        })
        .await;
    let Err(EngineError::LeaseLost(msg)) = result else {
        panic!(
            "the fence must stop the run: {:?}",
            result.map(|a| a.created)
        );
    };
    assert!(msg.contains("running again finishes"), "{msg}");
    assert!(
        cloud.calls(Verb::Update, &Kind::SecurityGroup) >= 2,
        "renewals were tried and failed"
    );
    for verb in [Verb::Create, Verb::RouterInterface] {
        assert_eq!(
            cloud.calls_of(verb),
            0,
            "no write after the lease was lost: {verb:?}"
        );
    }
}

#[tokio::test]
async fn a_record_another_run_took_after_expiry_is_lost_at_the_next_renewal() {
    let cloud = FakeCloud::new();
    let lease = take(&cloud, "p", None, no_wait(), &quiet())
        .await
        .unwrap()
        .lease;
    // Another run took the (expired) record.
    let thief = other_holder(now_secs() + 60);
    cloud
        .update(
            &Kind::SecurityGroup,
            lease.id(),
            json!({ "description": thief.describe() }),
        )
        .await
        .unwrap();
    let result = lease
        .hold(&cloud, async {
            tokio::time::sleep(RENEW_EVERY * 2).await;
            lease.check()
        })
        .await;
    assert!(
        matches!(result, Err(EngineError::LeaseLost(ref m)) if m.contains("another run took it")),
        "{result:?}"
    );
    lease.release(&cloud).await;
    let [record] = records(&cloud, "p").try_into().unwrap();
    assert_eq!(
        str_of(&record, "description"),
        thief.describe(),
        "a lost lease frees nothing"
    );
}

#[tokio::test]
async fn unlock_removes_held_records_only() {
    let cloud = FakeCloud::new();
    record_held_by(&cloud, "p", &other_holder(now_secs() + 60)).await;
    // A group someone made by hand under that name is not a lease.
    cloud
        .create(
            &Kind::SecurityGroup,
            json!({ "name": lease_name("p"), "description": "allow ssh" }),
        )
        .await
        .unwrap();
    let removed = unlock(&cloud, "p").await.unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    let left = records(&cloud, "p");
    assert_eq!(left.len(), 1);
    assert_eq!(str_of(&left[0], "description"), "allow ssh");
}

#[tokio::test]
async fn an_ambiguous_record_create_is_read_back_not_repeated() {
    for after_effect in [true, false] {
        let cloud = FakeCloud::new();
        cloud.add_fault(Fault {
            verb: Some(Verb::Create),
            kind: Some(Kind::SecurityGroup),
            nth: 1,
            error: CloudError::Unavailable("POST answered 500: database is locked".into()),
            after_effect,
        });
        let lease = take(&cloud, "p", None, LeaseOptions::default(), &quiet())
            .await
            .unwrap()
            .lease;
        let records = records(&cloud, "p");
        assert_eq!(
            records.len(),
            1,
            "after_effect {after_effect}: {records:#?}"
        );
        assert_eq!(str_of(&records[0], "id"), lease.id());
        lease.release(&cloud).await;
    }
}

#[test]
fn a_newer_record_of_a_race_of_first_runs_holds_nothing() {
    // Two first runs made a record each: the older is the lease; the newer
    // one's maker deletes it. Neither may take the other's for a holder,
    // or each yields to the other for ever.
    let mine = holding("mine", now_secs() + 60);
    let theirs = other_holder(now_secs() + 60);
    let record = |id: &str, created: &str, h: &Holder| {
        json!({ "id": id, "name": lease_name("p"), "created_at": created,
                "description": h.describe(), "tags": [lease_tag("p")], "revision_number": 1 })
    };
    // The records of `older` and then `newer`, a second apart.
    let race = |older: &Holder, newer: &Holder| {
        [
            record("a", "2026-01-01T00:00:00Z", older),
            record("b", "2026-01-01T00:00:01Z", newer),
        ]
    };
    let older_mine = race(&mine, &theirs);
    let newer_theirs = live_other(&older_mine, "p", &mine);
    assert!(newer_theirs.is_none(), "the newer record is no holder");
    let older_theirs = race(&theirs, &mine);
    assert!(
        live_other(&older_theirs, "p", &mine).is_some(),
        "the lease is theirs"
    );
    // A record of an older release (untagged) excludes while it lives.
    let legacy = json!({ "id": "c", "name": lease_name("p"), "created_at": "2026-01-01T00:00:02Z",
        "description": format!("kuryr6 lease: host=h pid=7 start=1 user=u expires={}", now_secs() + 60) });
    let with_legacy = [older_mine[0].clone(), legacy];
    assert!(live_other(&with_legacy, "p", &mine).is_some());
}

/// A record taken over from a holder that never freed it (it died,
/// maybe with a create in flight) asks the runs after it to sweep: in the
/// taker's text and after its release; a record freed plainly does not.
#[tokio::test]
async fn a_record_taken_from_a_dead_holder_asks_for_a_sweep_that_outlives_the_taker() {
    let cloud = FakeCloud::new();
    record_held_by(&cloud, "p", &other_holder(now_secs() - 1)).await;
    let lease = take(&cloud, "p", None, no_wait(), &quiet())
        .await
        .unwrap()
        .lease;
    let [held] = records(&cloud, "p").try_into().unwrap();
    assert!(
        sweep_until(str_of(&held, "description")) > now_secs(),
        "{held}"
    );
    lease.release(&cloud).await;
    let [freed] = records(&cloud, "p").try_into().unwrap();
    let text = str_of(&freed, "description");
    assert!(
        text.starts_with(FREE) && sweep_until(text) > now_secs(),
        "{text}"
    );
    assert!(crate::engine::ownership::sweep_wanted(
        std::slice::from_ref(&freed)
    ));

    // Taken from that free record and freed again: the sweep runs its time.
    take_and_release(&cloud, "p").await;
    let [again] = records(&cloud, "p").try_into().unwrap();
    assert_eq!(
        sweep_until(str_of(&again, "description")),
        sweep_until(text)
    );

    // A plainly freed record of another pipeline asks for nothing.
    take_and_release(&cloud, "q").await;
    let [plain] = records(&cloud, "q").try_into().unwrap();
    assert_eq!(str_of(&plain, "description"), FREE);
}
