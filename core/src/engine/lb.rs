//! Octavia calls for the Kubernetes API load balancer, one object at a
//! time. Octavia accepts one change at a time per load balancer: a write is
//! sent at once, a 409 meaning "busy" waits for the load balancer to leave
//! `PENDING_*` and sends it again (within bounds), and every write waits
//! for `ACTIVE` before it returns, so the next one finds the load balancer
//! free. The calls that change a whole tree at once (fully populated
//! create, cascade delete, batch members) are in `lb_tree`.

use super::EngineError;
use super::change::{Action, Change, Target};
use super::create;
use super::ids::IdMap;
use super::observe::{Observed, str_of};
use super::ownership::{LOADBALANCER_DESCRIPTION, Ownership};
use crate::cloud::{Cloud, CloudError, Kind};
use crate::plan::{ApiHost, Loadbalancer, Plan, Step, StepKind};
use serde_json::json;
use std::time::{Duration, Instant};

/// Longest wait for a load balancer to become ACTIVE (amphorae can take
/// minutes on a real cloud).
pub const ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);
/// The first pause after a write: a provider that works in place (the
/// OVN provider, a no-op amphora) is done within tens of milliseconds.
const POLL_FIRST: Duration = Duration::from_millis(40);
/// The longest pause between two polls while a change is young: the
/// local Octavia takes about a second for the seed's tree, seen ACTIVE at
/// most this late in six polls (200 ms took eight; 500 ms wasted up to
/// half a second).
const POLL_CEILING_SOON: Duration = Duration::from_millis(300);
/// How long a change counts as young.
const POLL_SOON_FOR: Duration = Duration::from_secs(3);
/// The longest pause after that: an amphora that boots for minutes costs
/// one request a second.
const POLL_CEILING: Duration = Duration::from_secs(1);
const BUSY_RETRIES: usize = 40;

/// When to poll: `POLL_FIRST` after the start, each pause then doubling up
/// to `POLL_CEILING_SOON` for the first `POLL_SOON_FOR`, then up to
/// `POLL_CEILING`. The pauses run on a clock from the start, not from
/// each answer: a poll's own time does not push the next one later (the
/// fifth was seen 0.15 s late), though the next poll never comes sooner
/// than half a pause after an answer.
pub(super) struct Poll {
    next: Duration,
    started: tokio::time::Instant,
    due: tokio::time::Instant,
}

impl Poll {
    pub(super) fn new() -> Poll {
        let now = tokio::time::Instant::now();
        Poll {
            next: POLL_FIRST,
            started: now,
            due: now,
        }
    }

    /// The pause the next `sleep` takes, counted from the last due time.
    pub(super) fn next(&self) -> Duration {
        self.next
    }

    pub(super) async fn sleep(&mut self) {
        let now = tokio::time::Instant::now();
        self.due = (self.due + self.next).max(now + self.next / 2);
        tokio::time::sleep_until(self.due).await;
        let ceiling = if self.started.elapsed() < POLL_SOON_FOR {
            POLL_CEILING_SOON
        } else {
            POLL_CEILING
        };
        self.next = (self.next * 2).min(ceiling);
    }
}

/// When the first look at the load balancer is worth its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// Now: its state is not known.
    Now,
    /// After a first pause: this run just changed it, so it is pending.
    AfterWrite,
}

/// Polls until provisioning_status is ACTIVE; ERROR and the timeout are
/// errors naming the load balancer.
pub(super) async fn wait_active<C: Cloud>(
    cloud: &C,
    lb_id: &str,
    name: &str,
    look: Look,
) -> Result<(), EngineError> {
    let start = Instant::now();
    let mut poll = Poll::new();
    if look == Look::AfterWrite {
        poll.sleep().await;
    }
    loop {
        let lb = cloud.get(&Kind::LoadBalancer, lb_id).await?;
        match str_of(&lb, "provisioning_status") {
            "ACTIVE" => return Ok(()),
            "ERROR" => {
                return Err(EngineError::Timeout(format!(
                    "load balancer `{name}` ({lb_id}) is in provisioning status ERROR (operating status {}); see the Octavia logs, then delete it or run `kuryr6 run --replace`",
                    str_of(&lb, "operating_status")
                )));
            }
            status => {
                if start.elapsed() > ACTIVE_TIMEOUT {
                    return Err(EngineError::Timeout(format!(
                        "load balancer `{name}` ({lb_id}) still {status} after {} s",
                        ACTIVE_TIMEOUT.as_secs()
                    )));
                }
                let waited = start.elapsed();
                let then = waited + poll.next();
                // Every ~5 s, say what is being waited for.
                if waited.as_millis() / 5000 != then.as_millis() / 5000 {
                    super::progress::waiting(&format!(
                        "load balancer `{name}` is {status} after {} s",
                        then.as_secs()
                    ));
                }
                poll.sleep().await;
            }
        }
    }
}

/// Polls until load balancer `lb_id` is gone (its VIP port goes with it,
/// asynchronously: the subnet delete that follows must not meet it).
pub(super) async fn wait_gone<C: Cloud>(
    cloud: &C,
    lb_id: &str,
    name: &str,
) -> Result<(), EngineError> {
    let start = Instant::now();
    let mut poll = Poll::new();
    while start.elapsed() < ACTIVE_TIMEOUT {
        poll.sleep().await;
        match cloud.get(&Kind::LoadBalancer, lb_id).await {
            Err(CloudError::NotFound { .. }) => return Ok(()),
            Ok(v) if str_of(&v, "provisioning_status") == "DELETED" => return Ok(()),
            Ok(v) if str_of(&v, "provisioning_status") == "ERROR" => {
                return Err(EngineError::Timeout(format!(
                    "load balancer `{name}` ({lb_id}) went to provisioning status ERROR while being deleted; see the Octavia logs"
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(EngineError::Timeout(format!(
        "load balancer `{name}` ({lb_id}) was not deleted within {} s",
        ACTIVE_TIMEOUT.as_secs()
    )))
}

/// Whether Octavia refused a write because the load balancer is busy.
fn is_busy(e: &CloudError) -> bool {
    matches!(e, CloudError::Conflict { message }
        if message.contains("PENDING") || message.contains("immutable"))
}

/// Runs an Octavia write on load balancer `lb_id`: sent at once; a "busy"
/// 409 waits for ACTIVE and sends it again. Returns once the load balancer
/// is ACTIVE again (or gone, for its own delete: `wait` false).
pub(super) async fn write<C: Cloud, T>(
    cloud: &C,
    lb_id: &str,
    name: &str,
    wait: bool,
    call: impl AsyncFn() -> Result<T, CloudError>,
) -> Result<T, EngineError> {
    for _ in 0..BUSY_RETRIES {
        match call().await {
            Err(e) if is_busy(&e) => wait_active(cloud, lb_id, name, Look::Now).await?,
            Err(e) => return Err(e.into()),
            Ok(v) => {
                if wait {
                    wait_active(cloud, lb_id, name, Look::AfterWrite).await?;
                }
                return Ok(v);
            }
        }
    }
    Err(EngineError::Timeout(format!(
        "load balancer `{name}` stayed busy through {BUSY_RETRIES} attempts"
    )))
}

/// `write`, waiting for ACTIVE after it.
pub(super) async fn when_active<C: Cloud, T>(
    cloud: &C,
    lb_id: &str,
    name: &str,
    call: impl AsyncFn() -> Result<T, CloudError>,
) -> Result<T, EngineError> {
    write(cloud, lb_id, name, true, call).await
}

pub(super) fn lb_step<'a>(plan: &'a Plan, name: &str) -> Option<&'a Loadbalancer> {
    match plan.step(name) {
        Some(Step::Loadbalancer(lb)) => Some(lb),
        _ => None,
    }
}

/// The load balancer step named `name` and its cloud id (made earlier in
/// this run or found by observe).
fn lb_and_id<'a>(
    plan: &'a Plan,
    ids: &IdMap,
    name: &str,
) -> Result<(&'a Loadbalancer, String), EngineError> {
    let lb = lb_step(plan, name)
        .ok_or_else(|| EngineError::Refused(vec![format!("no loadbalancer step `{name}`")]))?;
    let id = need(
        &format!("load balancer `{name}`"),
        ids.get(StepKind::Loadbalancer, name),
    )?;
    Ok((lb, id))
}

pub(super) fn need(what: &str, id: Option<&str>) -> Result<String, EngineError> {
    id.map(str::to_string).ok_or_else(|| {
        EngineError::Refused(vec![format!(
            "{what} has no id: an earlier step did not create it"
        )])
    })
}

/// The id of pool `pool` of load balancer `loadbalancer`, which a member's
/// change needs made or found first.
fn pool_id(ids: &IdMap, loadbalancer: &str, pool: &str) -> Result<String, EngineError> {
    need(
        &format!("pool `{pool}`"),
        ids.get_target(&Target::Pool {
            loadbalancer: loadbalancer.to_string(),
            name: pool.to_string(),
        }),
    )
}

/// Tags an Octavia object found under another owner (`--adopt`), when its
/// load balancer takes changes.
async fn adopt<C: Cloud>(
    cloud: &C,
    ids: &IdMap,
    c: &Change,
    tags: &[String],
) -> Result<(), EngineError> {
    let id = c.id.clone().unwrap_or_default();
    let (kind, lb_name) = match &c.target {
        Target::Loadbalancer { name } => (Kind::LoadBalancer, name),
        Target::Listener { loadbalancer, .. } => (Kind::Listener, loadbalancer),
        Target::Pool { loadbalancer, .. } => (Kind::Pool, loadbalancer),
        Target::Member {
            loadbalancer, pool, ..
        } => {
            let pool_id = pool_id(ids, loadbalancer, pool)?;
            (Kind::Member { pool_id }, loadbalancer)
        }
        _ => return Ok(()),
    };
    let lb_id = match &c.target {
        Target::Loadbalancer { .. } => id.clone(),
        _ => need(
            &format!("load balancer `{lb_name}`"),
            ids.get(StepKind::Loadbalancer, lb_name),
        )?,
    };
    when_active(cloud, &lb_id, lb_name, || cloud.add_tags(&kind, &id, tags)).await?;
    Ok(())
}

/// The create body of load balancer `lb` alone; `lb_tree` adds its
/// children for a fully populated create.
pub(super) fn lb_body(lb: &Loadbalancer, subnet_id: &str, own: &Ownership) -> serde_json::Value {
    let mut body = json!({
        "name": lb.name,
        "vip_subnet_id": subnet_id,
        "vip_address": lb.vip.to_string(),
        "tags": own.tags(),
        "description": LOADBALANCER_DESCRIPTION,
    });
    // Unnamed: Octavia's default_provider_driver decides.
    if let Some(provider) = &lb.provider {
        body["provider"] = json!(provider);
    }
    body
}

/// The create body of `lb`'s pool (without its parent).
pub(super) fn pool_body(lb: &Loadbalancer, own: &Ownership) -> serde_json::Value {
    json!({ "name": lb.pool_name, "protocol": lb.protocol(), "lb_algorithm": lb.algorithm, "tags": own.tags() })
}

/// The create body of `lb`'s listener (without its parent and pool).
pub(super) fn listener_body(lb: &Loadbalancer, own: &Ownership) -> serde_json::Value {
    json!({ "name": lb.listener_name(), "protocol": lb.protocol(), "protocol_port": lb.listener_port, "tags": own.tags() })
}

/// The create body of the member for API host `host`.
pub(super) fn member_body(lb: &Loadbalancer, host: &ApiHost, own: &Ownership) -> serde_json::Value {
    json!({ "name": host.name, "address": host.address.to_string(), "protocol_port": lb.member_port, "tags": own.tags() })
}

pub async fn upsert<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    own: &Ownership,
    ids: &IdMap,
    c: &Change,
) -> Result<Option<String>, EngineError> {
    // Octavia takes tags in the create body; they also mark the create for
    // the read-back after an ambiguous answer (`create`).
    let tags = own.tags();
    if c.action == Action::Adopt {
        adopt(cloud, ids, c, &tags).await?;
        // An adopted pool or listener that also differs is then updated.
        if c.fields.is_empty() {
            return Ok(c.id.clone());
        }
    }
    match &c.target {
        Target::Loadbalancer { name } => {
            let lb = lb_step(plan, name).ok_or_else(|| {
                EngineError::Refused(vec![format!("no loadbalancer step `{name}`")])
            })?;
            let subnet_id = need(
                &format!("subnet `{}`", lb.subnet),
                ids.get(StepKind::Subnet, &lb.subnet),
            )?;
            let made = create::create(
                cloud,
                &Kind::LoadBalancer,
                lb_body(lb, &subnet_id, own),
                None,
                own,
            )
            .await?;
            let id = str_of(&made, "id").to_string();
            wait_active(cloud, &id, name, Look::AfterWrite).await?;
            Ok(Some(id))
        }
        Target::Pool { loadbalancer, .. } => {
            let (lb, lb_id) = lb_and_id(plan, ids, loadbalancer)?;
            if matches!(c.action, Action::Update | Action::Adopt) {
                let id = c.id.clone().unwrap_or_default();
                when_active(cloud, &lb_id, loadbalancer, || {
                    cloud.update(&Kind::Pool, &id, json!({ "lb_algorithm": lb.algorithm }))
                })
                .await?;
                return Ok(Some(id));
            }
            let mut body = pool_body(lb, own);
            body["loadbalancer_id"] = json!(lb_id);
            let made = when_active(cloud, &lb_id, loadbalancer, || {
                create::create(cloud, &Kind::Pool, body.clone(), None, own)
            })
            .await?;
            Ok(Some(str_of(&made, "id").to_string()))
        }
        Target::Listener { loadbalancer, name } => {
            upsert_listener(cloud, plan, own, ids, c, loadbalancer, name).await
        }
        Target::Member {
            loadbalancer,
            pool,
            name,
        } => upsert_member(cloud, plan, own, ids, c, (loadbalancer, pool, name)).await,
        _ => Ok(None),
    }
}

/// The listener: an update of its default pool, or a create (after
/// deleting the one it replaces).
async fn upsert_listener<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    own: &Ownership,
    ids: &IdMap,
    c: &Change,
    loadbalancer: &str,
    name: &str,
) -> Result<Option<String>, EngineError> {
    let (lb, lb_id) = lb_and_id(plan, ids, loadbalancer)?;
    let pool = Target::Pool {
        loadbalancer: loadbalancer.to_string(),
        name: lb.pool_name.clone(),
    };
    let pool_id = need(&format!("pool `{}`", lb.pool_name), ids.get_target(&pool))?;
    if matches!(c.action, Action::Update | Action::Adopt) {
        let id = c.id.clone().unwrap_or_default();
        when_active(cloud, &lb_id, loadbalancer, || {
            cloud.update(&Kind::Listener, &id, json!({ "default_pool_id": pool_id }))
        })
        .await?;
        return Ok(Some(id));
    }
    if c.action == Action::Replace
        && let Some(old) = &c.id
    {
        when_active(cloud, &lb_id, loadbalancer, || {
            cloud.delete(&Kind::Listener, old)
        })
        .await?;
    }
    debug_assert_eq!(name, lb.listener_name());
    let mut body = listener_body(lb, own);
    body["loadbalancer_id"] = json!(lb_id);
    body["default_pool_id"] = json!(pool_id);
    let made = when_active(cloud, &lb_id, loadbalancer, || {
        create::create(cloud, &Kind::Listener, body.clone(), None, own)
    })
    .await?;
    Ok(Some(str_of(&made, "id").to_string()))
}

/// One API host's member: a create (after deleting the one it replaces).
async fn upsert_member<C: Cloud>(
    cloud: &C,
    plan: &Plan,
    own: &Ownership,
    ids: &IdMap,
    c: &Change,
    (loadbalancer, pool, name): (&String, &String, &String),
) -> Result<Option<String>, EngineError> {
    let (lb, lb_id) = lb_and_id(plan, ids, loadbalancer)?;
    let kind = Kind::Member {
        pool_id: pool_id(ids, loadbalancer, pool)?,
    };
    if c.action == Action::Replace
        && let Some(old) = &c.id
    {
        when_active(cloud, &lb_id, loadbalancer, || cloud.delete(&kind, old)).await?;
    }
    let host = lb
        .members
        .iter()
        .find(|h| h.name == *name)
        .ok_or_else(|| EngineError::Refused(vec![format!("no API host `{name}`")]))?;
    let body = member_body(lb, host, own);
    let made = when_active(cloud, &lb_id, loadbalancer, || {
        create::create(cloud, &kind, body.clone(), None, own)
    })
    .await?;
    Ok(Some(str_of(&made, "id").to_string()))
}

/// Deletes one Octavia object (children before parents, by wave order).
/// Already gone, or its load balancer gone (children go with it), is done.
pub async fn delete<C: Cloud>(cloud: &C, obs: &Observed, c: &Change) -> Result<(), EngineError> {
    match delete_one(cloud, obs, c).await {
        Err(EngineError::Cloud(CloudError::NotFound { .. })) => Ok(()),
        other => other,
    }
}

async fn delete_one<C: Cloud>(cloud: &C, obs: &Observed, c: &Change) -> Result<(), EngineError> {
    let id = c.id.clone().unwrap_or_default();
    let lb_of = |name: &str| {
        obs.loadbalancers
            .iter()
            .find(|l| l["name"] == name)
            .map(|l| str_of(l, "id").to_string())
    };
    match &c.target {
        Target::Loadbalancer { name } => {
            // Sent at once: a busy 409 waits for ACTIVE and sends it again.
            write(cloud, &id, name, false, || {
                cloud.delete(&Kind::LoadBalancer, &id)
            })
            .await?;
            wait_gone(cloud, &id, name).await
        }
        Target::Listener { loadbalancer, .. } | Target::Pool { loadbalancer, .. } => {
            // Both have a collection of their own in the kind table.
            let Some(kind) = c.target.kind().collection() else {
                return Ok(());
            };
            match lb_of(loadbalancer) {
                Some(lb_id) => {
                    when_active(cloud, &lb_id, loadbalancer, || cloud.delete(&kind, &id)).await
                }
                None => Ok(cloud.delete(&kind, &id).await?),
            }
        }
        Target::Member {
            loadbalancer, pool, ..
        } => {
            let pool_id = obs
                .pools
                .iter()
                .find(|p| p["name"] == pool.as_str())
                .map(|p| str_of(p, "id").to_string())
                .unwrap_or_default();
            let kind = Kind::Member { pool_id };
            match lb_of(loadbalancer) {
                Some(lb_id) => {
                    when_active(cloud, &lb_id, loadbalancer, || cloud.delete(&kind, &id)).await
                }
                None => Ok(cloud.delete(&kind, &id).await?),
            }
        }
        _ => Ok(()),
    }
}
