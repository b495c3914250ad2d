//! Octavia calls for the Kubernetes API load balancer. Octavia accepts one
//! change at a time per load balancer: every call waits for the LB to leave
//! PENDING_*, and a 409 meaning "busy" is waited out, within bounds.

use super::EngineError;
use super::change::{Action, Change, Target};
use super::create;
use super::diff_lb::listener_name;
use super::ids::IdMap;
use super::observe::{Observed, str_of};
use super::ownership::{LOADBALANCER_DESCRIPTION, Ownership};
use crate::cloud::{Cloud, CloudError, Kind};
use crate::plan::{Loadbalancer, Plan, Step, StepKind};
use serde_json::json;
use std::time::{Duration, Instant};

/// Longest wait for a load balancer to become ACTIVE (amphorae can take
/// minutes on a real cloud).
pub const ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(250);
const BUSY_RETRIES: usize = 40;

/// Polls until provisioning_status is ACTIVE; ERROR and the timeout are
/// errors naming the load balancer.
pub async fn wait_active<C: Cloud>(cloud: &C, lb_id: &str, name: &str) -> Result<(), EngineError> {
    let start = Instant::now();
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
                // Every ~5 s, say what is being waited for.
                if waited.as_millis() / 5000 != (waited + POLL).as_millis() / 5000 {
                    super::progress::waiting(&format!(
                        "load balancer `{name}` is {status} after {} s",
                        (waited + POLL).as_secs()
                    ));
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Runs an Octavia write once the LB is ACTIVE, waiting out "busy" 409s.
async fn when_active<C, T, F, Fut>(
    cloud: &C,
    lb_id: &str,
    name: &str,
    call: F,
) -> Result<T, EngineError>
where
    C: Cloud,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    for _ in 0..BUSY_RETRIES {
        wait_active(cloud, lb_id, name).await?;
        match call().await {
            Err(CloudError::Conflict { message })
                if message.contains("PENDING") || message.contains("immutable") =>
            {
                tokio::time::sleep(POLL).await;
            }
            other => return Ok(other?),
        }
    }
    Err(EngineError::Timeout(format!(
        "load balancer `{name}` stayed busy through {BUSY_RETRIES} attempts"
    )))
}

fn lb_step<'a>(plan: &'a Plan, name: &str) -> Option<&'a Loadbalancer> {
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

fn need(what: &str, id: Option<&str>) -> Result<String, EngineError> {
    id.map(str::to_string).ok_or_else(|| {
        EngineError::Refused(vec![format!(
            "{what} has no id: an earlier step did not create it"
        )])
    })
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
            let pool_id = need(
                &format!("pool `{pool}`"),
                ids.get_target(&Target::Pool {
                    loadbalancer: loadbalancer.clone(),
                    name: pool.clone(),
                }),
            )?;
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
            let body = json!({ "name": name, "vip_subnet_id": subnet_id, "vip_address": lb.vip.to_string(), "tags": tags, "description": LOADBALANCER_DESCRIPTION });
            let made = create::create(cloud, &Kind::LoadBalancer, body, None, own).await?;
            let id = str_of(&made, "id").to_string();
            wait_active(cloud, &id, name).await?;
            Ok(Some(id))
        }
        Target::Pool { loadbalancer, name } => {
            let (lb, lb_id) = lb_and_id(plan, ids, loadbalancer)?;
            if matches!(c.action, Action::Update | Action::Adopt) {
                let id = c.id.clone().unwrap_or_default();
                when_active(cloud, &lb_id, loadbalancer, || {
                    cloud.update(&Kind::Pool, &id, json!({ "lb_algorithm": lb.algorithm }))
                })
                .await?;
                return Ok(Some(id));
            }
            let body = json!({ "name": name, "protocol": "HTTPS", "lb_algorithm": lb.algorithm, "loadbalancer_id": lb_id, "tags": tags });
            let made = when_active(cloud, &lb_id, loadbalancer, || {
                create::create(cloud, &Kind::Pool, body.clone(), None, own)
            })
            .await?;
            Ok(Some(str_of(&made, "id").to_string()))
        }
        Target::Listener { loadbalancer, name } => {
            let (lb, lb_id) = lb_and_id(plan, ids, loadbalancer)?;
            let pool = Target::Pool {
                loadbalancer: loadbalancer.clone(),
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
            debug_assert_eq!(*name, listener_name(lb));
            let body = json!({ "name": name, "protocol": "HTTPS", "protocol_port": lb.listener_port, "loadbalancer_id": lb_id, "default_pool_id": pool_id, "tags": tags });
            let made = when_active(cloud, &lb_id, loadbalancer, || {
                create::create(cloud, &Kind::Listener, body.clone(), None, own)
            })
            .await?;
            Ok(Some(str_of(&made, "id").to_string()))
        }
        Target::Member {
            loadbalancer,
            pool,
            name,
        } => {
            let (lb, lb_id) = lb_and_id(plan, ids, loadbalancer)?;
            let pool_id = need(
                &format!("pool `{pool}`"),
                ids.get_target(&Target::Pool {
                    loadbalancer: loadbalancer.clone(),
                    name: pool.clone(),
                }),
            )?;
            let kind = Kind::Member { pool_id };
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
            let body = json!({ "name": name, "address": host.address.to_string(), "protocol_port": lb.member_port, "tags": tags });
            let made = when_active(cloud, &lb_id, loadbalancer, || {
                create::create(cloud, &kind, body.clone(), None, own)
            })
            .await?;
            wait_active(cloud, &lb_id, loadbalancer).await?;
            Ok(Some(str_of(&made, "id").to_string()))
        }
        _ => Ok(None),
    }
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
            if let Ok(lb) = cloud.get(&Kind::LoadBalancer, &id).await
                && str_of(&lb, "provisioning_status").starts_with("PENDING")
            {
                wait_active(cloud, &id, name).await?;
            }
            cloud.delete(&Kind::LoadBalancer, &id).await?;
            // The VIP port goes with the LB, asynchronously: wait until gone
            // so the subnet delete that follows is not blocked by it.
            let start = Instant::now();
            while start.elapsed() < ACTIVE_TIMEOUT {
                match cloud.get(&Kind::LoadBalancer, &id).await {
                    Err(CloudError::NotFound { .. }) => return Ok(()),
                    Ok(v) if str_of(&v, "provisioning_status") == "DELETED" => return Ok(()),
                    Ok(_) => tokio::time::sleep(POLL).await,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(EngineError::Timeout(format!(
                "load balancer `{name}` ({id}) was not deleted within {} s",
                ACTIVE_TIMEOUT.as_secs()
            )))
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
