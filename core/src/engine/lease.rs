//! A lease that lets one run of a pipeline write at a time.
//!
//! Neutron has no unique names and no locks, so two runs of one pipeline
//! (two operators, a CI retry) could both create a resource. The lease is a
//! record in the cloud itself, visible to every runner of the project: a
//! security group named `kuryr6-lease:<pipeline>` whose description names
//! the holder and an expiry. Security groups are the one cheap, dataplane-
//! free object every project member may create.
//!
//! Acquiring is "write, then read": a run creates its own record, then
//! lists all records of the pipeline. If its own is the only live one, it
//! holds the lease; otherwise it deletes its record and waits (jittered) or
//! gives up, naming the holder. Invariant: two runs never both hold it.
//! Each run's record is committed before its list, so of two overlapping
//! runs the later lister always sees the earlier record. Both may yield at
//! once; the jitter breaks that tie.
//!
//! A record is dead when its expiry passed (the holder renews it while it
//! works) or when its holder ran on this host and that process is gone
//! (killed runs do not block the next one for a whole expiry). Expiry is
//! compared with this machine's clock: runners need clocks in sync (NTP)
//! within a fraction of `TTL`.

use super::EngineError;
use super::observe::{in_project, str_of};
use super::progress::Progress;
use crate::cloud::{Cloud, CloudError, Kind, Query};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a record lives without renewal.
pub const TTL: Duration = Duration::from_secs(90);
/// How often the holder renews its record.
const RENEW_EVERY: Duration = Duration::from_secs(30);

/// The name of the lease records of `pipeline`.
pub fn lease_name(pipeline: &str) -> String {
    format!("kuryr6-lease:{pipeline}")
}

/// Who holds (or held) a lease, parsed from a record's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// The process' start time (clock ticks since boot, from /proc), so a
    /// recycled pid is not taken for the holder.
    pub start: u64,
    /// Unix seconds after which the record is dead.
    pub expires: u64,
    /// User-facing text: who and since when.
    pub user: String,
}

impl Holder {
    fn describe(&self) -> String {
        format!(
            "kuryr6 lease: host={} pid={} start={} user={} expires={}",
            self.host, self.pid, self.start, self.user, self.expires
        )
    }

    /// Parses a description written by `describe`.
    pub fn parse(description: &str) -> Option<Holder> {
        let rest = description.strip_prefix("kuryr6 lease: ")?;
        let field = |k: &str| {
            rest.split(' ')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Holder {
            host: field("host")?,
            pid: field("pid")?.parse().ok()?,
            start: field("start")?.parse().ok()?,
            user: field("user")?,
            expires: field("expires")?.parse().ok()?,
        })
    }

    /// Whether this record still excludes others at time `now`.
    fn live(&self, now: u64, me: &Holder) -> bool {
        if self.expires <= now {
            return false;
        }
        // A holder on this host whose process is gone (killed) is dead now.
        self.host != me.host || process_alive(self.pid, self.start)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
        .replace(' ', "_")
}

/// Start time of a running process in clock ticks since boot (field 22 of
/// /proc/PID/stat); `None` when there is no such process or it has exited
/// (a zombie whose parent has not reaped it yet).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its ')' are plain.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

fn process_alive(pid: u32, start: u64) -> bool {
    if !std::path::Path::new("/proc/self/stat").exists() {
        // No /proc: cannot tell, so only the expiry frees the lease.
        return true;
    }
    match process_start(pid) {
        Some(s) => start == 0 || s == start,
        None => false,
    }
}

fn this_process(expires: u64) -> Holder {
    let pid = std::process::id();
    Holder {
        host: hostname(),
        pid,
        start: process_start(pid).unwrap_or(0),
        expires,
        user: std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty() && !u.contains(' '))
            .unwrap_or_else(|| "unknown".into()),
    }
}

/// How long a run waits for another run's lease.
#[derive(Debug, Clone, Copy)]
pub struct LeaseOptions {
    /// Zero: refuse at once when another run holds the lease.
    pub wait: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            wait: Duration::from_secs(300),
        }
    }
}

/// A held lease: renew it while working, release it when done.
pub struct Lease {
    id: String,
    holder: Holder,
}

/// The records of `pipeline`'s lease in the token's project.
async fn records<C: Cloud>(
    cloud: &C,
    project_id: &str,
    pipeline: &str,
) -> Result<Vec<Value>, CloudError> {
    let q: Query = in_project(project_id, vec![("name".into(), lease_name(pipeline))]);
    cloud.list(&Kind::SecurityGroup, &q).await
}

fn describe_other(v: &Value) -> String {
    match Holder::parse(str_of(v, "description")) {
        Some(h) => format!(
            "{} (pid {} on {}, since {}, record {})",
            h.user,
            h.pid,
            h.host,
            str_of(v, "created_at"),
            str_of(v, "id")
        ),
        None => format!("record {} ({})", str_of(v, "id"), str_of(v, "description")),
    }
}

/// Creates this run's record. After an ambiguous answer (a 500 on a loaded
/// cloud) it reads back by name and description, which is unique to this
/// process and moment, and retries only if nothing was made. The record is
/// never tagged: tags would make it look like one of the pipeline's groups.
async fn create_record<C: Cloud>(
    cloud: &C,
    pipeline: &str,
    me: &Holder,
) -> Result<Value, CloudError> {
    let body = json!({ "name": lease_name(pipeline), "description": me.describe() });
    let mut attempt = 0;
    loop {
        attempt += 1;
        match cloud.create(&Kind::SecurityGroup, body.clone()).await {
            Ok(made) => return Ok(made),
            Err(e)
                if super::create::is_ambiguous(&e) && attempt < super::create::CREATE_ATTEMPTS =>
            {
                if let Some(made) =
                    super::create::find_made(cloud, &Kind::SecurityGroup, &body, None).await?
                {
                    return Ok(made);
                }
                tokio::time::sleep(Duration::from_millis(
                    200 + fastrand::u64(0..300) * u64::from(attempt),
                ))
                .await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Takes `pipeline`'s lease, waiting up to `options.wait` for another run.
pub async fn acquire<C: Cloud>(
    cloud: &C,
    pipeline: &str,
    options: LeaseOptions,
    progress: &Progress,
) -> Result<Lease, EngineError> {
    let project_id = cloud.project_id().await?;
    let started = std::time::Instant::now();
    let mut announced = false;
    loop {
        let me = this_process(now_secs() + TTL.as_secs());
        let mine = create_record(cloud, pipeline, &me).await.map_err(|e| {
            CloudError::Unavailable(format!(
                "cannot take the lease of pipeline `{pipeline}` (a security group `{}` in the project; is the security-group quota used up?): {e}",
                lease_name(pipeline)
            ))
        })?;
        let my_id = str_of(&mine, "id").to_string();
        let all = match records(cloud, &project_id, pipeline).await {
            Ok(all) => all,
            Err(e) => {
                let _ = cloud.delete(&Kind::SecurityGroup, &my_id).await;
                return Err(e.into());
            }
        };
        let now = now_secs();
        let mut others = Vec::new();
        for v in all.iter().filter(|v| str_of(v, "id") != my_id) {
            let live = Holder::parse(str_of(v, "description")).is_none_or(|h| h.live(now, &me));
            if live {
                others.push(v);
            } else {
                // A dead record (expired, or its process is gone): clear it.
                let _ = cloud.delete(&Kind::SecurityGroup, str_of(v, "id")).await;
            }
        }
        if others.is_empty() {
            return Ok(Lease {
                id: my_id,
                holder: me,
            });
        }
        let _ = cloud.delete(&Kind::SecurityGroup, &my_id).await;
        let holders: Vec<String> = others.iter().map(|v| describe_other(v)).collect();
        if started.elapsed() >= options.wait {
            return Err(EngineError::Refused(vec![format!(
                "another run of pipeline `{pipeline}` holds its lease: {}. Wait for it (--lock-wait SECONDS), or if that run is gone for good, `kuryr6 unlock` this pipeline",
                holders.join("; ")
            )]));
        }
        if !announced {
            progress.note(&format!(
                "waiting for another run of pipeline {pipeline}: {}",
                holders.join("; ")
            ));
            announced = true;
        }
        // Jitter breaks the tie of two runs that saw each other.
        let pause = Duration::from_millis(500 + fastrand::u64(0..1500));
        tokio::time::sleep(pause.min(options.wait.saturating_sub(started.elapsed()))).await;
    }
}

impl Lease {
    /// The record's id (for tests and messages).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Renews the record every `RENEW_EVERY`, forever: run it beside the
    /// work and drop it when the work ends.
    pub async fn keep_alive<C: Cloud>(&self, cloud: &C) {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let renewed = Holder {
                expires: now_secs() + TTL.as_secs(),
                ..self.holder.clone()
            };
            if let Err(e) = cloud
                .update(
                    &Kind::SecurityGroup,
                    &self.id,
                    json!({ "description": renewed.describe() }),
                )
                .await
            {
                tracing::warn!(error = %e, "could not renew the pipeline lease");
            }
        }
    }

    /// Deletes the record. A failure only delays the next run until the
    /// record expires (or at once on this host, its process being gone).
    pub async fn release<C: Cloud>(self, cloud: &C) {
        if let Err(e) = cloud.delete(&Kind::SecurityGroup, &self.id).await {
            tracing::warn!(error = %e, id = %self.id, "could not delete the pipeline lease record; it expires by itself");
        }
    }
}

/// Runs `work` while holding `pipeline`'s lease, renewing it meanwhile.
pub async fn with_lease<C, T, F>(
    cloud: &C,
    pipeline: &str,
    options: LeaseOptions,
    progress: &Progress,
    work: F,
) -> Result<T, EngineError>
where
    C: Cloud,
    F: std::future::Future<Output = Result<T, EngineError>>,
{
    let lease = acquire(cloud, pipeline, options, progress).await?;
    let result = {
        let keep = lease.keep_alive(cloud);
        futures::pin_mut!(keep);
        futures::pin_mut!(work);
        match futures::future::select(work, keep).await {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right(_) => unreachable!("keep_alive never ends"),
        }
    };
    lease.release(cloud).await;
    result
}

/// Deletes every lease record of `pipeline` in the project, whoever holds
/// them: for a holder that is gone for good on another host. Returns the
/// holders that were removed.
pub async fn unlock<C: Cloud>(cloud: &C, pipeline: &str) -> Result<Vec<String>, EngineError> {
    let project_id = cloud.project_id().await?;
    let mut removed = Vec::new();
    for v in records(cloud, &project_id, pipeline).await? {
        cloud.delete(&Kind::SecurityGroup, str_of(&v, "id")).await?;
        removed.push(describe_other(&v));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips_through_the_description() {
        let h = this_process(12345);
        assert_eq!(Holder::parse(&h.describe()), Some(h.clone()));
        assert!(h.describe().len() < 255, "fits Neutron's description");
        assert_eq!(Holder::parse("made by hand"), None);
    }

    #[test]
    fn expired_or_vanished_holders_are_dead() {
        let me = this_process(0);
        let now = now_secs();
        let alive = this_process(now + 60);
        assert!(alive.live(now, &me), "this very process holds it");
        let expired = this_process(now - 1);
        assert!(!expired.live(now, &me));
        let gone = Holder {
            pid: u32::MAX - 1,
            ..this_process(now + 60)
        };
        assert!(!gone.live(now, &me), "no such process on this host");
        let elsewhere = Holder {
            host: "another-host".into(),
            ..gone.clone()
        };
        assert!(elsewhere.live(now, &me), "other hosts only expire");
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
    async fn one_run_at_a_time_and_release_frees_it() {
        let cloud = crate::cloud::FakeCloud::new();
        let progress = Progress::new(false);
        let first = acquire(&cloud, "p", LeaseOptions::default(), &progress)
            .await
            .unwrap();
        let refused = acquire(
            &cloud,
            "p",
            LeaseOptions {
                wait: Duration::ZERO,
            },
            &progress,
        )
        .await;
        let Err(EngineError::Refused(lines)) = refused else {
            panic!("second acquire must be refused");
        };
        assert!(lines[0].contains("holds its lease"), "{lines:?}");
        assert!(lines[0].contains(first.id()), "names the holder's record");
        // Another pipeline is not affected.
        let other = acquire(&cloud, "q", LeaseOptions::default(), &progress)
            .await
            .unwrap();
        first.release(&cloud).await;
        other.release(&cloud).await;
        let again = acquire(&cloud, "p", LeaseOptions::default(), &progress)
            .await
            .unwrap();
        again.release(&cloud).await;
        assert!(
            cloud
                .snapshot(&Kind::SecurityGroup)
                .iter()
                .all(|v| !str_of(v, "name").starts_with("kuryr6-lease")),
            "no lease record left"
        );
    }

    #[tokio::test]
    async fn an_ambiguous_record_create_is_read_back_not_repeated() {
        use crate::cloud::fake::{Fault, Verb};
        for after_effect in [true, false] {
            let cloud = crate::cloud::FakeCloud::new();
            cloud.add_fault(Fault {
                verb: Some(Verb::Create),
                kind: Some(Kind::SecurityGroup),
                nth: 1,
                error: CloudError::Unavailable("POST answered 500: database is locked".into()),
                after_effect,
            });
            let progress = Progress::new(false);
            let lease = acquire(&cloud, "p", LeaseOptions::default(), &progress)
                .await
                .unwrap();
            let records: Vec<Value> = cloud
                .snapshot(&Kind::SecurityGroup)
                .into_iter()
                .filter(|v| str_of(v, "name") == lease_name("p"))
                .collect();
            assert_eq!(
                records.len(),
                1,
                "after_effect {after_effect}: {records:#?}"
            );
            assert_eq!(str_of(&records[0], "id"), lease.id());
            lease.release(&cloud).await;
        }
    }

    #[tokio::test]
    async fn a_dead_record_does_not_block() {
        let cloud = crate::cloud::FakeCloud::new();
        let dead = Holder {
            pid: u32::MAX - 1,
            ..this_process(now_secs() + 60)
        };
        cloud
            .create(
                &Kind::SecurityGroup,
                json!({ "name": lease_name("p"), "description": dead.describe() }),
            )
            .await
            .unwrap();
        let progress = Progress::new(false);
        let lease = acquire(
            &cloud,
            "p",
            LeaseOptions {
                wait: Duration::ZERO,
            },
            &progress,
        )
        .await
        .unwrap();
        lease.release(&cloud).await;
        assert!(
            cloud
                .snapshot(&Kind::SecurityGroup)
                .iter()
                .all(|v| !str_of(v, "name").starts_with("kuryr6-lease"))
        );
    }

    #[tokio::test]
    async fn concurrent_acquires_never_overlap() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cloud = crate::cloud::FakeCloud::new();
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let progress = Progress::new(false);
        let one = || async {
            with_lease(&cloud, "p", LeaseOptions::default(), &progress, async {
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
            .await
        };
        let results = futures::future::join_all((0..4).map(|_| one())).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(most.load(Ordering::SeqCst), 1, "one holder at a time");
    }
}
