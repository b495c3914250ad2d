//! Creating on a cloud that may fail a write ambiguously.
//!
//! A 500, a 502/503/504 that outlived the client's retries, a lost answer or
//! a reset connection on a POST (the client's `CloudError::Unavailable`)
//! leaves it open whether the resource was made. Every create carries
//! kuryr6's mark in the create call itself (Neutron: the creation marker in
//! `description`; rules: the pipeline tag as description; Octavia: the
//! ownership tags), so the answer can be read back.
//!
//! Invariant: **no duplicate, no orphan.** After an ambiguous failure the
//! engine reads back (by name + mark in the token's project, a rule by its
//! group and value, an interface by the router's ports): found means take
//! it; absent means create again after a bounded, jittered backoff. A
//! first POST still in the server's hands can land after that read-back:
//! a second copy, with the marker and no tags. Such a re-send is noted on
//! the run's `Ownership`, and the lease asks the next runs to look for
//! marked copies of every step (`lease::sweep_wanted`, `observe`), which
//! `plan` reports as duplicates and `dedupe` and `destroy` remove.
//! A Neutron resource is tagged after its create (Neutron refuses tags in a
//! POST), late in the run (`Ownership::owe_tags`, `tag_owed`); if tagging
//! fails, the error names the id, and the marker lets the next run find
//! it and tag it. At every point a resource this run made is tagged or
//! carries the marker.

use super::diff::same_rule_value;
use super::observe::str_of;
use super::ownership::Ownership;
use crate::cloud::{Cloud, CloudError, Kind, Query, Service};
use crate::plan::Rule;
use futures::stream::{self, StreamExt};
use serde_json::Value;
use std::time::Duration;

/// Tries of one create (the first included) before the run gives up.
pub const CREATE_ATTEMPTS: u32 = 5;

// Unit tests inject dozens of faults: they wait milliseconds, not seconds.
#[cfg(not(test))]
const BACKOFF_BASE: Duration = Duration::from_millis(500);
#[cfg(test)]
const BACKOFF_BASE: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Whether a failed write may nevertheless have landed.
pub fn is_ambiguous(e: &CloudError) -> bool {
    matches!(e, CloudError::Unavailable(_))
}

/// Delay before retry `attempt` (1-based): exponential, capped, half of it
/// random so that concurrent creates spread out.
fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let half = exp.min(BACKOFF_MAX) / 2;
    half + half.mul_f64(fastrand::f64())
}

/// What to call the thing being created in messages.
fn label(kind: &Kind, body: &Value) -> String {
    match body["name"].as_str() {
        Some(name) => format!("{kind} `{name}`"),
        None => kind.to_string(),
    }
}

fn gave_up(what: &str, attempts: u32, last: &CloudError) -> CloudError {
    CloudError::Unavailable(format!(
        "creating {what} kept failing: {attempts} attempts, and after each a read-back found nothing made; last answer: {last}"
    ))
}

fn read_back_failed(what: &str, first: &CloudError, read: CloudError) -> CloudError {
    CloudError::Unavailable(format!(
        "creating {what} failed ambiguously ({first}) and reading back whether it was made failed too ({read}); the next run finds it by its marker if it was"
    ))
}

/// The resource an ambiguous create of `body` may have made, if it exists.
/// Neutron: same name and description (the marker) in the token's project
/// (and the same network for a subnet); a rule: its group's rules, by value
/// (`rule`); Octavia: same name with the pipeline's tag in the project, under
/// the same load balancer.
pub async fn find_made<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    body: &Value,
    rule: Option<&Rule>,
) -> Result<Option<Value>, CloudError> {
    if let (Kind::SecurityGroupRule, Some(rule)) = (kind, rule) {
        let q: Query = vec![(
            "security_group_id".into(),
            str_of(body, "security_group_id").into(),
        )];
        let rules = cloud.list(kind, &q).await?;
        return Ok(rules.into_iter().find(|r| same_rule_value(r, rule)));
    }
    let mut q: Query = vec![("name".into(), str_of(body, "name").into())];
    // Members are listed under their pool and carry no loadbalancer field.
    if !matches!(kind, Kind::Member { .. }) {
        q.push(("project_id".into(), cloud.project_id().await?));
    }
    let tags: Vec<String> = body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    if kind.service() == Service::LoadBalancer && !tags.is_empty() {
        q.push(("tags".into(), tags.join(",")));
    }
    let found = cloud.list(kind, &q).await?;
    let parent = str_of(body, "loadbalancer_id");
    let same = |v: &Value| {
        if kind.service() == Service::LoadBalancer {
            let lb = v["loadbalancers"]
                .as_array()
                .and_then(|a| a.first())
                .map(|l| str_of(l, "id"))
                .unwrap_or_else(|| str_of(v, "loadbalancer_id"));
            parent.is_empty() || lb == parent
        } else {
            v["description"] == body["description"]
                && (body.get("network_id").is_none() || v["network_id"] == body["network_id"])
        }
    };
    Ok(found.into_iter().find(same))
}

/// Creates one resource: one POST; after an ambiguous failure, read back
/// and retry only when nothing landed; then owes its tags (Neutron kinds
/// that take tags). `rule` identifies a security-group rule on read-back.
pub async fn create<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    body: Value,
    rule: Option<&Rule>,
    own: &Ownership,
) -> Result<Value, CloudError> {
    let what = label(kind, &body);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match cloud.create(kind, body.clone()).await {
            Ok(made) => return Ok(owe_tags(kind, made, own)),
            Err(e) if is_ambiguous(&e) => e,
            Err(e) => return Err(e),
        };
        match find_made(cloud, kind, &body, rule).await {
            Ok(Some(made)) => {
                tracing::debug!(%kind, attempt, "ambiguous create had landed; taking it");
                return Ok(owe_tags(kind, made, own));
            }
            Ok(None) if attempt >= CREATE_ATTEMPTS => {
                return Err(gave_up(&what, attempt, &error));
            }
            Ok(None) => {
                own.note_resent();
                tokio::time::sleep(backoff(attempt)).await
            }
            Err(read) => return Err(read_back_failed(&what, &error, read)),
        }
    }
}

/// Creates several resources of one kind in bulk calls: after an ambiguous
/// failure each body is read back, and only the missing ones are sent
/// again. The outer error means nothing more can be said (the bulk call was
/// refused or kept failing); otherwise one result per body, in order.
pub async fn create_many<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    bodies: &[Value],
    rules: &[Option<&Rule>],
    own: &Ownership,
) -> Result<Vec<Result<Value, CloudError>>, CloudError> {
    let mut made: Vec<Option<Value>> = vec![None; bodies.len()];
    let mut attempt = 0;
    loop {
        attempt += 1;
        let todo: Vec<usize> = (0..bodies.len()).filter(|i| made[*i].is_none()).collect();
        if todo.is_empty() {
            break;
        }
        let batch: Vec<Value> = todo.iter().map(|i| bodies[*i].clone()).collect();
        let error = match cloud.create_many(kind, batch).await {
            Ok(vs) => {
                for (i, v) in todo.iter().zip(vs) {
                    made[*i] = Some(v);
                }
                break;
            }
            Err(e) if is_ambiguous(&e) => e,
            Err(e) => return Err(e),
        };
        let what = format!("{} {}", todo.len(), kind.plural());
        for &i in &todo {
            let rule = rules.get(i).copied().flatten();
            match find_made(cloud, kind, &bodies[i], rule).await {
                Ok(found) => made[i] = found,
                Err(read) => return Err(read_back_failed(&what, &error, read)),
            }
        }
        if made.iter().all(Option::is_some) {
            break;
        }
        if attempt >= CREATE_ATTEMPTS {
            return Err(gave_up(&what, attempt, &error));
        }
        own.note_resent();
        tokio::time::sleep(backoff(attempt)).await;
    }
    Ok(made
        .into_iter()
        .map(|m| match m {
            Some(v) => Ok(owe_tags(kind, v, own)),
            None => Err(CloudError::Unavailable(format!(
                "a {kind} of a bulk create was neither made nor found"
            ))),
        })
        .collect())
}

/// Notes that `made` is to be tagged, unless it carries the tags already
/// or its kind takes them in the create (Octavia) or not at all (rules).
fn owe_tags(kind: &Kind, made: Value, own: &Ownership) -> Value {
    let neutron_tagged = kind.service() == Service::Network && kind.taggable();
    if neutron_tagged && !own.is_tagged(&made) {
        own.owe_tags(kind, made.clone());
    }
    made
}

/// Tags what `owed` lists (`Ownership::take_owed_tags`), side by side; the
/// first failure is returned once every tagging has ended.
pub async fn tag_owed<C: Cloud>(
    cloud: &C,
    owed: Vec<(Kind, Value)>,
    own: &Ownership,
    concurrency: usize,
) -> Result<(), CloudError> {
    let results: Vec<Result<(), CloudError>> = stream::iter(owed)
        .map(|(kind, made)| async move { tag_one(cloud, &kind, &made, own).await })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Tags one resource this run made. A failed tagging leaves it with the
/// creation marker, which the next run finds (and tags); the error names it.
async fn tag_one<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    made: &Value,
    own: &Ownership,
) -> Result<(), CloudError> {
    let id = str_of(made, "id");
    let tags = own.tags();
    // A fresh resource has no tags: one call sets them all. One found
    // after an ambiguous create might have gained some: keep those.
    let fresh = made["tags"].as_array().is_none_or(Vec::is_empty);
    let tagged = if fresh {
        cloud.set_new_tags(kind, id, &tags).await
    } else {
        cloud.add_tags(kind, id, &tags).await
    };
    tagged.map_err(|cause| {
        CloudError::Unavailable(format!(
            "{} ({id}) was created but tagging it failed ({cause}); it carries kuryr6's creation marker, so the next run finds and tags it",
            label(kind, made)
        ))
    })
}

/// Attaches a subnet to a router. After an ambiguous answer the router's
/// ports (by `device_id`, whatever their owner) tell whether the interface
/// exists; if not, the call is retried with backoff. "Already has a port on
/// subnet" means an earlier call landed.
pub async fn add_interface<C: Cloud>(
    cloud: &C,
    router_id: &str,
    subnet_id: &str,
) -> Result<(), CloudError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match cloud.router_interface(router_id, subnet_id, true).await {
            Ok(()) => return Ok(()),
            Err(CloudError::Rejected { message, .. }) | Err(CloudError::Conflict { message })
                if message.contains("already") =>
            {
                return Ok(());
            }
            Err(e) if is_ambiguous(&e) => e,
            Err(e) => return Err(e),
        };
        let what = format!("the interface of router {router_id} on subnet {subnet_id}");
        let q: Query = vec![("device_id".into(), router_id.into())];
        let ports = match cloud.list(&Kind::Port, &q).await {
            Ok(p) => p,
            Err(read) => return Err(read_back_failed(&what, &error, read)),
        };
        let attached = ports.iter().any(|p| {
            p["fixed_ips"]
                .as_array()
                .is_some_and(|ips| ips.iter().any(|ip| ip["subnet_id"] == subnet_id))
        });
        if attached {
            return Ok(());
        }
        if attempt >= CREATE_ATTEMPTS {
            return Err(gave_up(&what, attempt, &error));
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
}
