//! The `Cloud` verbs for Neutron and Octavia: collection and item URLs
//! (ids pushed as encoded path segments), the `{"network": …}` envelopes,
//! bulk creates, pagination, and tags, which Neutron takes only through
//! `…/{id}/tags` and Octavia in the body.

use super::OpenStack;
use super::http::{Lane, Request, next_page};
use crate::cloud::{Cloud, CloudError, CloudResult, Kind, Query, Service};
use reqwest::{Method, Url};
use serde_json::{Value, json};

impl OpenStack {
    /// `PUT {collection}/{id}/tags`: replaces all tags; returns them.
    async fn put_tags(&self, kind: &Kind, id: &str, tags: &Value) -> CloudResult<Value> {
        let body = json!({ "tags": tags });
        let doc = self
            .service_call(
                kind.service(),
                Request::new(Method::PUT).body(&body),
                |base| {
                    let mut url = Self::item_url(base, kind, id)?;
                    url.path_segments_mut()
                        .map_err(|_| bad_url(base))?
                        .push("tags");
                    Ok(url)
                },
                || format!("{kind} {id}"),
            )
            .await?;
        Ok(doc.get("tags").cloned().unwrap_or_else(|| tags.clone()))
    }

    /// `POST` of `envelope` (one object or a bulk list) to `kind`'s
    /// collection; not idempotent, so repeated only where the server cannot
    /// have acted (see `http`).
    async fn post_collection(&self, kind: &Kind, envelope: Value) -> CloudResult<Value> {
        self.service_call(
            kind.service(),
            Request::new(Method::POST).body(&envelope),
            |base| Self::list_url(base, kind),
            || match kind {
                Kind::Member { pool_id } => format!("pool {pool_id}"),
                _ => format!("the {} collection", kind.plural()),
            },
        )
        .await
    }

    /// `PUT` of `body` in its envelope, in `lane`; with `revision`, only
    /// while the resource is at it (`If-Match: revision_number=N`).
    async fn put(
        &self,
        kind: &Kind,
        id: &str,
        body: Value,
        revision: Option<u64>,
        lane: Lane,
    ) -> CloudResult<Value> {
        let envelope = json!({ kind.singular(): body });
        let if_match: Vec<(&'static str, String)> = revision
            .map(|r| ("If-Match", format!("revision_number={r}")))
            .into_iter()
            .collect();
        let doc = self
            .service_call(
                kind.service(),
                Request::new(Method::PUT)
                    .body(&envelope)
                    .headers(&if_match)
                    .lane(lane),
                |base| Self::item_url(base, kind, id),
                || format!("{kind} {id}"),
            )
            .await?;
        unwrap_envelope(doc, kind, "PUT")
    }

    fn list_url(base: &str, kind: &Kind) -> CloudResult<Url> {
        let mut url = parse_url(&format!("{base}{}", collection_path(kind)))?;
        if let Kind::Member { pool_id } = kind {
            url.path_segments_mut()
                .map_err(|_| bad_url(base))?
                .push(pool_id)
                .push("members");
        }
        Ok(url)
    }

    fn item_url(base: &str, kind: &Kind, id: &str) -> CloudResult<Url> {
        let mut url = Self::list_url(base, kind)?;
        url.path_segments_mut().map_err(|_| bad_url(base))?.push(id);
        Ok(url)
    }
}

impl Cloud for OpenStack {
    async fn project_id(&self) -> CloudResult<String> {
        Ok(self.current().project_id.clone())
    }

    async fn has_service(&self, service: Service) -> CloudResult<bool> {
        Ok(self.current().endpoints.contains_key(&service))
    }

    /// Follows `…_links` `next` pages, re-using only their query so that a
    /// link can never send the token to another host.
    async fn list(&self, kind: &Kind, query: &Query) -> CloudResult<Vec<Value>> {
        let mut out = Vec::new();
        let mut page_query: Vec<(String, String)> = query.clone();
        for _page in 0..10_000 {
            let doc = self
                .service_call(
                    kind.service(),
                    Request::new(Method::GET),
                    |base| {
                        let mut url = Self::list_url(base, kind)?;
                        if !page_query.is_empty() {
                            url.query_pairs_mut().extend_pairs(page_query.iter());
                        }
                        Ok(url)
                    },
                    || format!("the {} collection", kind.plural()),
                )
                .await?;
            match doc.get(kind.plural()) {
                Some(Value::Array(items)) => out.extend(items.iter().cloned()),
                _ => {
                    return Err(CloudError::Rejected {
                        method: "GET".into(),
                        path: kind.path(),
                        status: 200,
                        message: format!("the answer has no `{}` list", kind.plural()),
                    });
                }
            }
            match next_page(&doc, kind.plural()) {
                Some(next) => page_query = next,
                None => return Ok(out),
            }
        }
        Err(CloudError::Unavailable(format!(
            "listing {} did not end after 10000 pages",
            kind.plural()
        )))
    }

    async fn get(&self, kind: &Kind, id: &str) -> CloudResult<Value> {
        let doc = self
            .service_call(
                kind.service(),
                Request::new(Method::GET),
                |base| Self::item_url(base, kind, id),
                || format!("{kind} {id}"),
            )
            .await?;
        unwrap_envelope(doc, kind, "GET")
    }

    /// One POST with `body` as given. Neutron refuses `tags` in it (400,
    /// "Attribute 'tags' not allowed in POST") for every kind but ports:
    /// the engine tags after the create (see `engine::create`).
    async fn create(&self, kind: &Kind, body: Value) -> CloudResult<Value> {
        let doc = self
            .post_collection(kind, json!({ kind.singular(): body }))
            .await?;
        unwrap_envelope(doc, kind, "POST")
    }

    /// One bulk POST (`{"networks": […]}`) where Neutron has bulk create.
    async fn create_many(&self, kind: &Kind, bodies: Vec<Value>) -> CloudResult<Vec<Value>> {
        if !kind.bulk_create() || bodies.len() < 2 {
            let mut made = Vec::with_capacity(bodies.len());
            for body in bodies {
                made.push(self.create(kind, body).await?);
            }
            return Ok(made);
        }
        let n = bodies.len();
        let doc = self
            .post_collection(kind, json!({ kind.plural(): bodies }))
            .await?;
        match doc.get(kind.plural()) {
            Some(Value::Array(items)) if items.len() == n => Ok(items.clone()),
            _ => Err(CloudError::Rejected {
                method: "POST".into(),
                path: kind.path(),
                status: 201,
                message: format!(
                    "the bulk answer has no `{}` list of {n} items",
                    kind.plural()
                ),
            }),
        }
    }

    /// Neutron: one `PUT …/{id}/tags/{tag}` per tag (adds, keeps the
    /// others, safe to repeat, on every Neutron release); Octavia: the
    /// trait's read-then-update.
    async fn set_new_tags(&self, kind: &Kind, id: &str, tags: &[String]) -> CloudResult<()> {
        if !tags_separate(kind) {
            return self.add_tags(kind, id, tags).await;
        }
        self.put_tags(kind, id, &json!(tags)).await.map(|_| ())
    }

    async fn add_tags(&self, kind: &Kind, id: &str, tags: &[String]) -> CloudResult<()> {
        if kind.service() != Service::Network {
            let current = self.get(kind, id).await?;
            return match crate::cloud::with_tags(&current, tags) {
                Some(all) => self
                    .update(kind, id, json!({ "tags": all }))
                    .await
                    .map(|_| ()),
                None => Ok(()),
            };
        }
        let puts = tags.iter().map(|tag| {
            self.service_call(
                Service::Network,
                Request::new(Method::PUT),
                move |base| {
                    let mut url = Self::item_url(base, kind, id)?;
                    url.path_segments_mut()
                        .map_err(|_| bad_url(base))?
                        .push("tags")
                        .push(tag);
                    Ok(url)
                },
                move || format!("{kind} {id}"),
            )
        });
        for done in futures::future::join_all(puts).await {
            done?;
        }
        Ok(())
    }

    /// `tags` in `body` replace the resource's tags (through `…/tags` where
    /// the API does not take them in the body).
    async fn update(&self, kind: &Kind, id: &str, mut body: Value) -> CloudResult<Value> {
        let tags = if tags_separate(kind) {
            body.as_object_mut().and_then(|b| b.remove("tags"))
        } else {
            None
        };
        if let Some(tags) = &tags {
            self.put_tags(kind, id, tags).await?;
            if body.as_object().is_some_and(|b| b.is_empty()) {
                return self.get(kind, id).await;
            }
        }
        self.put(kind, id, body, None, Lane::Queued).await
    }

    async fn update_if(&self, kind: &Kind, id: &str, body: Value, rev: u64) -> CloudResult<Value> {
        self.put(kind, id, body, Some(rev), Lane::Queued).await
    }

    async fn renew(&self, kind: &Kind, id: &str, body: Value, rev: u64) -> CloudResult<Value> {
        self.put(kind, id, body, Some(rev), Lane::Urgent).await
    }

    async fn get_now(&self, kind: &Kind, id: &str) -> CloudResult<Value> {
        let doc = self
            .service_call(
                kind.service(),
                Request::new(Method::GET).lane(Lane::Urgent),
                |base| Self::item_url(base, kind, id),
                || format!("{kind} {id}"),
            )
            .await?;
        unwrap_envelope(doc, kind, "GET")
    }

    async fn delete(&self, kind: &Kind, id: &str) -> CloudResult<()> {
        match self
            .service_call(
                kind.service(),
                Request::new(Method::DELETE),
                |base| Self::item_url(base, kind, id),
                || format!("{kind} {id}"),
            )
            .await
        {
            Ok(_) | Err(CloudError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn lb_providers(&self) -> CloudResult<Vec<String>> {
        let answer = self
            .service_call(
                Service::LoadBalancer,
                Request::new(Method::GET),
                |base| parse_url(&format!("{base}/v2/lbaas/providers")),
                || "load-balancer providers".into(),
            )
            .await?;
        Ok(answer["providers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect())
    }

    async fn delete_cascade(&self, lb_id: &str) -> CloudResult<()> {
        let kind = Kind::LoadBalancer;
        match self
            .service_call(
                kind.service(),
                Request::new(Method::DELETE),
                |base| {
                    let mut url = Self::item_url(base, &kind, lb_id)?;
                    url.query_pairs_mut().append_pair("cascade", "true");
                    Ok(url)
                },
                || format!("{kind} {lb_id}"),
            )
            .await
        {
            Ok(_) | Err(CloudError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn add_members(&self, pool_id: &str, members: Vec<Value>) -> CloudResult<()> {
        let kind = Kind::Member {
            pool_id: pool_id.to_string(),
        };
        let body = json!({ "members": members });
        // The same end state again: safe to repeat (a PUT).
        self.service_call(
            kind.service(),
            Request::new(Method::PUT).body(&body),
            |base| {
                let mut url = Self::list_url(base, &kind)?;
                url.query_pairs_mut().append_pair("additive_only", "true");
                Ok(url)
            },
            || format!("pool {pool_id}"),
        )
        .await
        .map(|_| ())
    }

    async fn router_interface(&self, router: &str, subnet: &str, add: bool) -> CloudResult<()> {
        let action = if add {
            "add_router_interface"
        } else {
            "remove_router_interface"
        };
        let body = json!({ "subnet_id": subnet });
        let result = self
            .service_call(
                Service::Network,
                // Adding twice is refused (400), so only removal is safe to repeat.
                Request::new(Method::PUT).body(&body).idempotent(!add),
                |base| {
                    let mut url = Self::item_url(base, &Kind::Router, router)?;
                    url.path_segments_mut()
                        .map_err(|_| bad_url(base))?
                        .push(action);
                    Ok(url)
                },
                || format!("router {router} or subnet {subnet}"),
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            // Removing an interface that is not there: already done.
            Err(CloudError::NotFound { .. }) if !add => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn unwrap_envelope(mut doc: Value, kind: &Kind, method: &str) -> CloudResult<Value> {
    match doc.get_mut(kind.singular()).map(Value::take) {
        Some(v @ Value::Object(_)) => Ok(v),
        _ => Err(CloudError::Rejected {
            method: method.into(),
            path: kind.path(),
            status: 200,
            message: format!("the answer has no `{}` object", kind.singular()),
        }),
    }
}

/// Whether an update's tags must go through `…/{id}/tags` rather than the
/// body: Neutron's rule for every taggable kind; Octavia takes them in the
/// body.
fn tags_separate(kind: &Kind) -> bool {
    kind.service() == Service::Network && kind.taggable()
}

/// `Kind::path` without the member's pool id, which is pushed as an encoded
/// segment so that no id can change the path.
fn collection_path(kind: &Kind) -> String {
    match kind {
        Kind::Member { .. } => "/v2/lbaas/pools".into(),
        other => other.path(),
    }
}

fn parse_url(text: &str) -> CloudResult<Url> {
    Url::parse(text).map_err(|_| bad_url(text))
}

fn bad_url(text: &str) -> CloudError {
    CloudError::Config(format!("the catalog endpoint {text} is not a usable URL"))
}
