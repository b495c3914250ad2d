//! A lease that lets one run of a pipeline write at a time.
//!
//! Neutron has no unique names and no locks, so two runs of one pipeline
//! (two operators, a CI retry) could both create a resource. The lease is a
//! record in the cloud itself, visible to every runner of the project: one
//! security group per pipeline, named `kuryr6-lease:<pipeline>` and tagged
//! `kuryr6-lease=<pipeline>` (never with the pipeline's own tag: it is not
//! one of the pipeline's groups). Its description says who holds it until
//! when, or that it is free. Security groups are the one cheap,
//! dataplane-free object every project member may create.
//!
//! The record lives across runs, and every change to it is a compare-and-
//! swap: Neutron applies a `PUT` sent with `If-Match: revision_number=N`
//! only while the record is at revision N (else 412). Taking, renewing and
//! releasing are such writes, so two runs never both hold the lease, and
//! waiting is reading: nothing is written until the record is free.
//!
//! One read serves twice. `observe` reads the record before anything else;
//! a take conditioned on that revision proves that no other kuryr6 writer
//! held the lease between that read and the take, so what observe read
//! still stands and the run applies it without reading the cloud again
//! (`Taken::undisturbed`). Any other way to the lease (it was held, the
//! record was just made, another run moved it) reads the cloud again.
//!
//! A held record names its holder by a random token of that process, and
//! by its host, boot id, PID namespace, pid and process start time. Another
//! run frees it before it expires only when boot id and PID namespace are
//! its own and that process is gone (a killed run on this machine); two
//! hosts of one name (pods with `hostNetwork`, `localhost` VMs) never free
//! each other's record. Expiry is compared with this machine's clock:
//! runners need clocks in sync (NTP) within a fraction of `TTL`.
//!
//! Fencing: the holder renews every `RENEW_EVERY`, in the cloud client's
//! urgent lane (`Cloud::renew`): never queued behind the run's own
//! requests or a 429's pause, so a busy run renews in time. `Lease::check`, which
//! `apply` calls before each wave of writes and the run before emitting,
//! fails once the last renewal is older than `TTL - MARGIN` or a renewal
//! found the record in another run's hands. The run then stops before its
//! next write; running again finishes the job.
//!
//! Records of kuryr6 releases before this lease (made and deleted per run,
//! never tagged) are found by name and respected until they expire; the
//! free record's text reads as expired to those releases.

use super::observe::{in_project, str_of};
use super::ownership::{FREE, Ownership, record_field, sweep_until, unix_now};
use super::progress::Progress;
use super::{EngineError, Fence};
use crate::cloud::{Cloud, CloudError, Kind, Query};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a record lives without renewal.
#[cfg(not(test))]
pub const TTL: Duration = Duration::from_secs(90);
/// How often the holder renews its record.
#[cfg(not(test))]
const RENEW_EVERY: Duration = Duration::from_secs(30);
/// A failed renewal is tried again this soon.
#[cfg(not(test))]
const RENEW_RETRY: Duration = Duration::from_secs(5);
/// The holder stops writing this long before its record could expire: a
/// write already sent still lands in time.
#[cfg(not(test))]
const MARGIN: Duration = Duration::from_secs(20);
// Unit tests let a lease expire: seconds, not minutes.
#[cfg(test)]
pub const TTL: Duration = Duration::from_secs(3);
#[cfg(test)]
const RENEW_EVERY: Duration = Duration::from_millis(300);
#[cfg(test)]
const RENEW_RETRY: Duration = Duration::from_millis(100);
#[cfg(test)]
const MARGIN: Duration = Duration::from_secs(1);
/// Pauses between two reads of a held record.
const WAIT_FIRST: Duration = Duration::from_millis(250);
const WAIT_MAX: Duration = Duration::from_secs(4);

/// The name of `pipeline`'s lease record (`Ownership::lease_name`).
pub fn lease_name(pipeline: &str) -> String {
    Ownership::new(pipeline).lease_name()
}

/// The tag that marks `pipeline`'s lease record (`Ownership::lease_tag`).
pub fn lease_tag(pipeline: &str) -> String {
    Ownership::new(pipeline).lease_tag()
}

/// Who holds (or held) a record, parsed from its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// The process' start time (clock ticks since boot, from /proc), so a
    /// recycled pid is not taken for the holder.
    pub start: u64,
    pub user: String,
    /// Unix seconds after which the record is dead.
    pub expires: u64,
    /// The holding process' random token; absent in records of releases
    /// before this lease.
    pub token: Option<String>,
    /// `/proc/sys/kernel/random/boot_id` of the holder's machine.
    pub boot: Option<String>,
    /// The inode of the holder's PID namespace.
    pub pidns: Option<u64>,
    /// Until when the runs after this one must sweep for late creates
    /// (`ownership::sweep_wanted`); 0: no sweep.
    pub sweep: u64,
}

/// How long after a run that re-sent a create (`Fence::note_resent`) the
/// next runs look for a late copy of every step: far beyond the longest a
/// request can take (the client's 120 s limit), so the first POST has
/// landed or died by then.
const SWEEP_FOR: Duration = Duration::from_secs(600);

impl Holder {
    fn describe(&self) -> String {
        let mut text = format!(
            "kuryr6 lease: host={} pid={} start={} user={} expires={}",
            self.host, self.pid, self.start, self.user, self.expires
        );
        if let Some(t) = &self.token {
            text.push_str(&format!(" token={t}"));
        }
        if let Some(b) = &self.boot {
            text.push_str(&format!(" boot={b}"));
        }
        if let Some(n) = self.pidns {
            text.push_str(&format!(" pidns={n}"));
        }
        if self.sweep != 0 {
            text.push_str(&format!(" sweep={}", self.sweep));
        }
        text
    }

    /// Parses a description written by `describe` (or by a release before
    /// this lease); `None` for anything else, and for a free record.
    pub fn parse(description: &str) -> Option<Holder> {
        let field = |k: &str| record_field(description, k);
        let h = Holder {
            host: field("host")?,
            pid: field("pid")?.parse().ok()?,
            start: field("start")?.parse().ok()?,
            user: field("user")?,
            expires: field("expires")?.parse().ok()?,
            token: field("token"),
            boot: field("boot"),
            pidns: field("pidns").and_then(|n| n.parse().ok()),
            sweep: sweep_until(description),
        };
        (h.expires != 0).then_some(h)
    }

    /// Whether this record still excludes `me` at time `now`.
    fn live(&self, now: u64, me: &Holder) -> bool {
        if self.expires <= now {
            return false;
        }
        if self.token.is_some() && self.token == me.token {
            return true;
        }
        // Freed early only on this very machine and PID namespace, when the
        // holding process is gone: a pid means nothing anywhere else.
        match (&self.boot, self.pidns, &me.boot, me.pidns) {
            (Some(b), Some(n), Some(mb), Some(mn)) if b == mb && n == mn => {
                process_alive(self.pid, self.start)
            }
            _ => true,
        }
    }
}

fn now_secs() -> u64 {
    unix_now()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
        .replace(' ', "_")
        .chars()
        .take(48)
        .collect()
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty() && !b.contains(' '))
}

fn pid_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
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

/// A new random token: one per take, so that even two takes of one
/// process (a fleet, a test) tell their records apart.
fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// This process: host, pid, start time, user, boot id and PID namespace,
/// read once (they do not change while it runs); the token and expiry are
/// the take's (`holding`).
fn process_identity() -> &'static Holder {
    static ME: std::sync::OnceLock<Holder> = std::sync::OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        Holder {
            host: hostname(),
            pid,
            start: process_start(pid).unwrap_or(0),
            expires: 0,
            user: std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty() && !u.contains(' '))
                .map(|u| u.chars().take(32).collect())
                .unwrap_or_else(|| "unknown".into()),
            token: None,
            boot: boot_id(),
            pidns: pid_namespace(),
            sweep: 0,
        }
    })
}

/// The holder a take with `token` writes: this process, until `expires`.
fn holding(token: &str, expires: u64) -> Holder {
    Holder {
        token: Some(token.to_string()),
        expires,
        sweep: 0,
        ..process_identity().clone()
    }
}

/// The sweep a run that takes a record found as `found` must carry on:
/// the one the record asks for, or, when it still names a holder (a run
/// that never freed it: it died, maybe mid-create, whether its record
/// expired or its process is gone from this machine), one from now.
fn carried_sweep(found: &str) -> u64 {
    let mut until = sweep_until(found);
    if Holder::parse(found).is_some() {
        until = until.max(now_secs() + SWEEP_FOR.as_secs());
    }
    until
}

/// This process as a holder with a token of its own (it holds nothing:
/// any record with another token is someone else's).
fn this_process(expires: u64) -> Holder {
    holding(&new_token(), expires)
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

/// Whether `v` is one of `pipeline`'s lease records: tagged as one, or a
/// record of a release before this lease (by name, with a holder's text).
fn is_record(v: &Value, pipeline: &str) -> bool {
    super::ownership::has_tag(v, &lease_tag(pipeline))
        || (str_of(v, "name") == lease_name(pipeline)
            && Holder::parse(str_of(v, "description")).is_some_and(|h| h.token.is_none()))
}

/// The lease records among `groups`.
fn records_in(groups: &[Value], pipeline: &str) -> Vec<Value> {
    groups
        .iter()
        .filter(|v| is_record(v, pipeline))
        .cloned()
        .collect()
}

/// `pipeline`'s lease records in the token's project.
pub async fn read<C: Cloud>(cloud: &C, pipeline: &str) -> Result<Vec<Value>, CloudError> {
    let project_id = cloud.project_id().await?;
    let q: Query = in_project(&project_id, vec![("name".into(), lease_name(pipeline))]);
    let named = cloud.list(&Kind::SecurityGroup, &q).await?;
    Ok(records_in(&named, pipeline))
}

/// The record that is the lease: the oldest tagged one (a race of two
/// first runs can make two; the later one is dropped by its maker).
fn the_record(records: &[Value], pipeline: &str) -> Option<Value> {
    records
        .iter()
        .filter(|v| super::ownership::has_tag(v, &lease_tag(pipeline)))
        .min_by_key(|v| {
            (
                str_of(v, "created_at").to_string(),
                str_of(v, "id").to_string(),
            )
        })
        .cloned()
}

/// A live holder of the lease other than `me`, if any: of the record that
/// is the lease, or of a record of an older release. A newer tagged record
/// is a loser of a race of first runs, which its maker deletes: it holds
/// nothing (or two first runs would each yield to the other for ever).
fn live_other(records: &[Value], pipeline: &str, me: &Holder) -> Option<Value> {
    let now = now_secs();
    let lease = the_record(records, pipeline);
    let tag = lease_tag(pipeline);
    records
        .iter()
        .filter(|v| {
            !super::ownership::has_tag(v, &tag)
                || lease.as_ref().is_some_and(|l| l["id"] == v["id"])
        })
        .find(|v| {
            Holder::parse(str_of(v, "description"))
                .is_some_and(|h| h.token != me.token && h.live(now, me))
        })
        .cloned()
}

fn revision(v: &Value) -> u64 {
    v["revision_number"].as_u64().unwrap_or(0)
}

fn held_by(v: &Value, me: &Holder) -> bool {
    Holder::parse(str_of(v, "description"))
        .is_some_and(|h| h.token.is_some() && h.token == me.token)
}

fn describe_other(v: &Value) -> String {
    match Holder::parse(str_of(v, "description")) {
        Some(h) => format!(
            "{} (pid {} on {}, until {}, record {})",
            h.user,
            h.pid,
            h.host,
            h.expires,
            str_of(v, "id")
        ),
        None => format!("record {} ({})", str_of(v, "id"), str_of(v, "description")),
    }
}

/// A held lease: renew it while working (`hold`), release it when done.
pub struct Lease {
    id: String,
    pipeline: String,
    /// This take's token, which the record names while it holds.
    token: String,
    /// The record's revision after this run's last write to it.
    revision: Mutex<u64>,
    /// When the record last said this run holds it until `TTL` later.
    renewed: Mutex<Instant>,
    /// Why the lease was lost, once a renewal found it taken.
    lost: Mutex<Option<String>>,
    /// A create of this run was sent again after an ambiguous failure
    /// (`Fence::note_resent`): the release asks the next runs to sweep.
    resent: AtomicBool,
    /// Until when the record asks the next runs to sweep: carried on from
    /// the record this run took, pushed on by a re-sent create; written by
    /// every renewal and the release.
    sweep_until: Mutex<u64>,
}

/// What `take` got.
pub struct Taken {
    pub lease: Lease,
    /// The lease was taken from the revision read before the cloud was
    /// read: no other writer came in between, so that read still stands.
    pub undisturbed: bool,
    /// The record did not exist and this take made it (the pipeline's
    /// first run, or the first after a destroy).
    pub made_now: bool,
}

impl Lease {
    /// `sweep`: what its text asks for (`carried_sweep`).
    fn new(
        id: &str,
        pipeline: &str,
        token: &str,
        revision: u64,
        since: Instant,
        sweep: u64,
    ) -> Lease {
        Lease {
            id: id.to_string(),
            pipeline: pipeline.to_string(),
            token: token.to_string(),
            revision: Mutex::new(revision),
            renewed: Mutex::new(since),
            lost: Mutex::new(None),
            resent: AtomicBool::new(false),
            sweep_until: Mutex::new(sweep),
        }
    }

    /// The record's id (for tests and messages).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn lose(&self, why: String) {
        self.lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(why);
    }

    /// One renewal: a conditional update of this run's own revision.
    async fn renew<C: Cloud>(&self, cloud: &C) -> Result<(), CloudError> {
        let at = Instant::now();
        let rev = *self.revision.lock().unwrap_or_else(|p| p.into_inner());
        let text = Holder {
            sweep: self.sweep(),
            ..holding(&self.token, now_secs() + TTL.as_secs())
        }
        .describe();
        let body = json!({ "description": text });
        match cloud.renew(&Kind::SecurityGroup, &self.id, body, rev).await {
            Ok(v) => {
                self.renewed_at(at, revision(&v));
                Ok(())
            }
            Err(e @ (CloudError::RevisionChanged { .. } | CloudError::Unavailable(_))) => {
                // This very write may have landed with its answer lost: the
                // record says whether it did, and whose it is now.
                let v = cloud.get_now(&Kind::SecurityGroup, &self.id).await?;
                if revision(&v) != rev && str_of(&v, "description") == text {
                    self.renewed_at(at, revision(&v));
                    Ok(())
                } else if held_by(&v, &holding(&self.token, 0)) {
                    *self.revision.lock().unwrap_or_else(|p| p.into_inner()) = revision(&v);
                    Err(e)
                } else {
                    self.lose(format!("another run took it: {}", describe_other(&v)));
                    Ok(())
                }
            }
            Err(CloudError::NotFound { .. }) => {
                self.lose("its record was deleted (`kuryr6 unlock`?)".into());
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The sweep this run's writes to the record ask for.
    fn sweep(&self) -> u64 {
        let mut until = self.sweep_until.lock().unwrap_or_else(|p| p.into_inner());
        if self.resent.load(Ordering::Relaxed) {
            *until = (*until).max(now_secs() + SWEEP_FOR.as_secs());
        }
        *until
    }

    fn renewed_at(&self, at: Instant, rev: u64) {
        *self.revision.lock().unwrap_or_else(|p| p.into_inner()) = rev;
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// Renews the record every `RENEW_EVERY` (sooner after a failure) until
    /// it is lost; never returns while it holds.
    async fn keep_alive<C: Cloud>(&self, cloud: &C) {
        let mut pause = RENEW_EVERY;
        loop {
            tokio::time::sleep(pause).await;
            pause = match self.renew(cloud).await {
                Ok(()) => RENEW_EVERY,
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew the pipeline lease; trying again");
                    RENEW_RETRY
                }
            };
            if self.check().is_err() {
                // Nothing to renew any more: the fence stops the work.
                return futures::future::pending().await;
            }
        }
    }

    /// Runs `work` while renewing the lease beside it.
    pub async fn hold<C: Cloud, T>(
        &self,
        cloud: &C,
        work: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        let keep = self.keep_alive(cloud);
        futures::pin_mut!(keep);
        futures::pin_mut!(work);
        match futures::future::select(work, keep).await {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right(((), _)) => unreachable!("keep_alive never ends"),
        }
    }

    /// Frees the record for the next run. A failure only delays that run
    /// until the record expires (or at once on this machine, this process
    /// being gone).
    pub async fn release<C: Cloud>(self, cloud: &C) {
        if self
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return;
        }
        let rev = *self.revision.lock().unwrap_or_else(|p| p.into_inner());
        let until = self.sweep();
        let text = if until > now_secs() {
            format!("{FREE} sweep={until}")
        } else {
            FREE.to_string()
        };
        let free = json!({ "description": text });
        if let Err(e) = cloud
            .update_if(&Kind::SecurityGroup, &self.id, free, rev)
            .await
        {
            tracing::warn!(error = %e, id = %self.id, "could not free the pipeline lease record; it expires by itself");
        }
    }

    /// Deletes the record: the pipeline is gone (`destroy`), so is its lease.
    pub async fn release_deleting<C: Cloud>(self, cloud: &C) {
        if let Err(e) = cloud.delete(&Kind::SecurityGroup, &self.id).await {
            tracing::warn!(error = %e, id = %self.id, "could not delete the pipeline lease record; it expires by itself");
        }
    }
}

impl Fence for Lease {
    fn note_resent(&self) {
        self.resent.store(true, Ordering::Relaxed);
    }

    fn check(&self) -> Result<(), EngineError> {
        let why = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let age = self
            .renewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        let why = why.or_else(|| {
            (age > TTL.saturating_sub(MARGIN)).then(|| {
                format!(
                    "it was last renewed {} s ago and may have expired",
                    age.as_secs()
                )
            })
        });
        match why {
            None => Ok(()),
            Some(why) => Err(EngineError::LeaseLost(format!(
                "stopped before the next write: this run no longer holds the lease of pipeline `{}` ({why}); what it applied stays, and running again finishes the job",
                self.pipeline
            ))),
        }
    }
}

/// Makes the first record of `pipeline`, held by this run. `None` when
/// another run made one at the same time (the oldest is the lease, and
/// this run's is deleted again) or a release before this lease holds it.
async fn create_record<C: Cloud>(
    cloud: &C,
    pipeline: &str,
    token: &str,
) -> Result<Option<Lease>, EngineError> {
    let me = holding(token, now_secs() + TTL.as_secs());
    let since = Instant::now();
    let body = json!({ "name": lease_name(pipeline), "description": me.describe() });
    let mut attempt = 0;
    let made = loop {
        attempt += 1;
        match cloud.create(&Kind::SecurityGroup, body.clone()).await {
            Ok(made) => break made,
            // A 500 on a loaded cloud: the description is this process'
            // alone, so a read-back tells whether it landed.
            Err(e)
                if super::create::is_ambiguous(&e) && attempt < super::create::CREATE_ATTEMPTS =>
            {
                if let Some(made) =
                    super::create::find_made(cloud, &Kind::SecurityGroup, &body, None).await?
                {
                    break made;
                }
                tokio::time::sleep(Duration::from_millis(
                    200 + fastrand::u64(0..300) * u64::from(attempt),
                ))
                .await;
            }
            Err(e) => {
                return Err(CloudError::Unavailable(format!(
                    "cannot take the lease of pipeline `{pipeline}` (a security group `{}` in the project; is the security-group quota used up?): {e}",
                    lease_name(pipeline)
                ))
                .into());
            }
        }
    };
    let id = str_of(&made, "id").to_string();
    if let Err(e) = cloud
        .set_new_tags(&Kind::SecurityGroup, &id, &[lease_tag(pipeline)])
        .await
    {
        let _ = cloud.delete(&Kind::SecurityGroup, &id).await;
        return Err(e.into());
    }
    // One read after the create settles a race of first runs and a release
    // before this lease at work. This run keeps its record only when no
    // other record is live: Neutron's `created_at` has whole seconds, so
    // "the oldest" cannot tell two records of one second apart, and a run
    // that read before the other's create already holds its own (seen in
    // CI: both kept theirs). Both may yield; the jittered pause and the
    // next read then let one of them through. (`rival` covers what
    // `live_other` would find here: an older release's untagged record.)
    let records = read(cloud, pipeline).await?;
    let now = now_secs();
    let rival = records.iter().any(|v| {
        str_of(v, "id") != id
            && Holder::parse(str_of(v, "description"))
                .is_some_and(|h| h.token != me.token && h.live(now, &me))
    });
    match the_record(&records, pipeline) {
        Some(r) if str_of(&r, "id") == id && !rival => Ok(Some(Lease::new(
            &id,
            pipeline,
            token,
            revision(&r),
            since,
            0,
        ))),
        _ => {
            let _ = cloud.delete(&Kind::SecurityGroup, &id).await;
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..50))).await;
            Ok(None)
        }
    }
}

/// Takes `pipeline`'s lease, waiting up to `options.wait` for another run.
/// `seen`: the records `observe` read before the cloud, if it did.
pub async fn take<C: Cloud>(
    cloud: &C,
    pipeline: &str,
    seen: Option<Vec<Value>>,
    options: LeaseOptions,
    progress: &Progress,
) -> Result<Taken, EngineError> {
    let started = Instant::now();
    let token = new_token();
    let mut undisturbed = seen.is_some();
    let mut records = match seen {
        Some(r) => r,
        None => read(cloud, pipeline).await?,
    };
    let mut pause = WAIT_FIRST;
    let mut announced = false;
    loop {
        let me = holding(&token, 0);
        let other = live_other(&records, pipeline, &me);
        if other.is_none() {
            match the_record(&records, pipeline) {
                None => {
                    if let Some(lease) = create_record(cloud, pipeline, &token).await? {
                        return Ok(Taken {
                            lease,
                            undisturbed: false,
                            made_now: true,
                        });
                    }
                }
                Some(record) => {
                    let since = Instant::now();
                    let id = str_of(&record, "id").to_string();
                    let sweep = carried_sweep(str_of(&record, "description"));
                    let body = json!({ "description": Holder { sweep, ..holding(&token, now_secs() + TTL.as_secs()) }.describe() });
                    let taken = |v: &Value, undisturbed: bool| Taken {
                        lease: Lease::new(&id, pipeline, &token, revision(v), since, sweep),
                        undisturbed,
                        made_now: false,
                    };
                    match cloud
                        .update_if(&Kind::SecurityGroup, &id, body, revision(&record))
                        .await
                    {
                        Ok(v) => return Ok(taken(&v, undisturbed)),
                        // Another run moved it, or this take landed with its
                        // answer lost: the record says which.
                        Err(CloudError::RevisionChanged { .. })
                        | Err(CloudError::Unavailable(_)) => {
                            let v = cloud.get(&Kind::SecurityGroup, &id).await?;
                            if held_by(&v, &me) {
                                return Ok(taken(&v, false));
                            }
                        }
                        Err(CloudError::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            undisturbed = false;
            records = read(cloud, pipeline).await?;
            continue;
        }
        // Held by another run: read until it is free, or give up.
        undisturbed = false;
        let holder = other.map(|v| describe_other(&v)).unwrap_or_default();
        if started.elapsed() >= options.wait {
            return Err(EngineError::Refused(vec![format!(
                "another run of pipeline `{pipeline}` holds its lease: {holder}. Wait for it (--lock-wait SECONDS), or if that run is gone for good, `kuryr6 unlock` this pipeline"
            )]));
        }
        if !announced {
            progress.note(&format!(
                "waiting for another run of pipeline {pipeline}: {holder}"
            ));
            announced = true;
        }
        let jittered = pause / 2 + pause.mul_f64(fastrand::f64() / 2.0);
        tokio::time::sleep(jittered.min(options.wait.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(WAIT_MAX);
        records = read(cloud, pipeline).await?;
    }
}

/// For a run that writes nothing: waits, reading, while another run holds
/// the lease (up to `options.wait`). True when it waited: what the run read
/// before may be stale, so it reads the cloud again.
pub async fn wait_free<C: Cloud>(
    cloud: &C,
    pipeline: &str,
    seen: &[Value],
    options: LeaseOptions,
    progress: &Progress,
) -> Result<bool, EngineError> {
    let me = this_process(0);
    if live_other(seen, pipeline, &me).is_none() {
        return Ok(false);
    }
    let started = Instant::now();
    let mut pause = WAIT_FIRST;
    let mut announced = false;
    loop {
        let records = read(cloud, pipeline).await?;
        let Some(other) = live_other(&records, pipeline, &me) else {
            return Ok(true);
        };
        if started.elapsed() >= options.wait {
            return Err(EngineError::Refused(vec![format!(
                "another run of pipeline `{pipeline}` holds its lease and may be changing what kuryr.conf would name: {}. Wait for it (--lock-wait SECONDS), or if that run is gone for good, `kuryr6 unlock` this pipeline",
                describe_other(&other)
            )]));
        }
        if !announced {
            progress.note(&format!(
                "waiting for another run of pipeline {pipeline}: {}",
                describe_other(&other)
            ));
            announced = true;
        }
        tokio::time::sleep(pause.min(options.wait.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(WAIT_MAX);
    }
}

/// Runs `work` while holding `pipeline`'s lease, renewing it meanwhile;
/// `work` gets the lease as its fence. `delete_after`: the record goes
/// when the work succeeded (destroy: the pipeline is gone).
pub async fn with_lease<C, T, F>(
    cloud: &C,
    pipeline: &str,
    options: LeaseOptions,
    progress: &Progress,
    delete_after: bool,
    work: F,
) -> Result<T, EngineError>
where
    C: Cloud,
    F: AsyncFnOnce(&Lease) -> Result<T, EngineError>,
{
    let lease = take(cloud, pipeline, None, options, progress).await?.lease;
    let result = lease.hold(cloud, work(&lease)).await;
    if delete_after && result.is_ok() {
        lease.release_deleting(cloud).await;
    } else {
        lease.release(cloud).await;
    }
    result
}

/// Deletes every held lease record of `pipeline` in the project, whoever
/// holds it: for a holder that is gone for good on another host. Only
/// records that are leases (tagged, or an older release's text) are
/// touched. Returns the holders that were removed.
pub async fn unlock<C: Cloud>(cloud: &C, pipeline: &str) -> Result<Vec<String>, EngineError> {
    let mut removed = Vec::new();
    for v in read(cloud, pipeline).await? {
        if Holder::parse(str_of(&v, "description")).is_some() {
            cloud.delete(&Kind::SecurityGroup, str_of(&v, "id")).await?;
            removed.push(describe_other(&v));
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
