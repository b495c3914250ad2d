//! The Keystone token's lifecycle: log in (`POST /v3/auth/tokens`), pick
//! each service's endpoint from the catalog, and log in again when a
//! service answers 401 (the token expired or was revoked). One task logs in
//! again; the others waiting on the same 401 reuse its new token.
//!
//! The login body holds the secret: it is never logged, and the secret is
//! scrubbed from any message Keystone returns. The token travels in a
//! header marked sensitive.

use super::OpenStack;
use super::http::{Request, api_message, status_error};
use crate::cloud::config::{Auth, CloudConfig, Domain, ProjectScope, Secret, User};
use crate::cloud::{CloudError, Service};
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// What one token gives: itself, its project and the catalog's endpoints.
pub(super) struct Session {
    pub(super) token: HeaderValue,
    pub(super) project_id: String,
    /// Service → endpoint base URL without a trailing slash or API version.
    pub(super) endpoints: HashMap<Service, String>,
    /// Incremented on every login; lets concurrent 401s see a newer token.
    pub(super) generation: u64,
}

impl Session {
    /// The placeholder before the first login (generation 0).
    pub(super) fn none() -> Self {
        Session {
            token: HeaderValue::from_static(""),
            project_id: String::new(),
            endpoints: HashMap::new(),
            generation: 0,
        }
    }
}

impl OpenStack {
    /// The session in use (possibly with an expired token).
    pub(super) fn current(&self) -> Arc<Session> {
        // A poisoned lock only means a panic elsewhere; the Arc inside is whole.
        match self.session.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Logs in again unless another task already did since `seen`.
    pub(super) async fn relogin(&self, seen: u64) -> Result<Arc<Session>, CloudError> {
        let _guard = self.relogin.lock().await;
        let current = self.current();
        if current.generation != seen {
            return Ok(current);
        }
        let mut session = self.login().await?;
        session.generation = seen + 1;
        let session = Arc::new(session);
        match self.session.write() {
            Ok(mut s) => *s = session.clone(),
            Err(p) => *p.into_inner() = session.clone(),
        }
        Ok(session)
    }

    /// `POST /v3/auth/tokens`. The request body holds the secret: it is never
    /// logged, and the secret is scrubbed from any message Keystone returns.
    async fn login(&self) -> Result<Session, CloudError> {
        let (body, secret) = auth_body(&self.config.auth);
        let url = Url::parse(&format!("{}/auth/tokens", self.config.auth_url)).map_err(|e| {
            CloudError::Config(format!("{}: bad auth_url: {e}", self.config.label()))
        })?;
        let started = Instant::now();
        // A login makes nothing: safe to repeat.
        let reply = self
            .exchange(
                &Request::new(Method::POST).body(&body).idempotent(true),
                &url,
                None,
            )
            .await?;
        let scrub = |text: String| text.replace(secret.expose(), "***");
        if !reply.status.is_success() {
            let message = scrub(api_message(&reply));
            return Err(match reply.status.as_u16() {
                400 | 401 | 403 | 404 => CloudError::Auth(format!(
                    "Keystone at {} refused the credentials of {} ({}): {message}",
                    self.config.auth_url,
                    self.config.label(),
                    reply.status.as_u16()
                )),
                _ => status_error(&reply, &Method::POST, url.path(), message, || {
                    "Keystone's token API".into()
                }),
            });
        }
        let mut token = reply
            .headers
            .get("x-subject-token")
            .cloned()
            .ok_or_else(|| CloudError::Auth("Keystone answered without X-Subject-Token".into()))?;
        token.set_sensitive(true);
        let doc = reply.json();
        let project_id = doc
            .pointer("/token/project/id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                CloudError::Auth(format!(
                    "the token for {} is not scoped to a project",
                    self.config.label()
                ))
            })?
            .to_owned();
        let catalog = doc
            .pointer("/token/catalog")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut endpoints = HashMap::new();
        for (service, kind) in [
            (Service::Network, "network"),
            (Service::LoadBalancer, "load-balancer"),
        ] {
            if let Some(url) = pick_endpoint(&catalog, kind, &self.config) {
                endpoints.insert(service, url);
            }
        }
        for (service, url) in &self.config.endpoint_overrides {
            endpoints.insert(*service, url.clone());
        }
        tracing::debug!(
            cloud = %self.config.label(),
            project_id = %project_id,
            services = endpoints.len(),
            ms = started.elapsed().as_millis() as u64,
            "authenticated"
        );
        Ok(Session {
            token,
            project_id,
            endpoints,
            generation: 0,
        })
    }

    /// `request` to `service` at `url(endpoint)` with the current token,
    /// logging in again once on 401. Returns only 2xx answers; every other
    /// status becomes an error through `what` (what to call the missing
    /// thing) and `status_error`.
    pub(super) async fn service_call(
        &self,
        service: Service,
        request: Request<'_>,
        url: impl Fn(&str) -> Result<Url, CloudError>,
        what: impl Fn() -> String,
    ) -> Result<Value, CloudError> {
        let mut session = self.current();
        let mut relogged = false;
        loop {
            let base = session
                .endpoints
                .get(&service)
                .ok_or_else(|| CloudError::NoEndpoint(service.catalog_type().into()))?;
            let url = url(base)?;
            let reply = self.exchange(&request, &url, Some(&session.token)).await?;
            if reply.status == StatusCode::UNAUTHORIZED && !relogged {
                tracing::debug!("token refused; logging in again");
                session = self.relogin(session.generation).await?;
                relogged = true;
                continue;
            }
            if reply.status.is_success() {
                return Ok(reply.json());
            }
            let message = api_message(&reply);
            return Err(status_error(
                &reply,
                &request.method,
                url.path(),
                message,
                what,
            ));
        }
    }
}

/// The endpoint of `kind` for the configured interface and region, with any
/// API version suffix removed (`Kind::path` adds its own).
fn pick_endpoint(catalog: &[Value], kind: &str, config: &CloudConfig) -> Option<String> {
    let interface = config.interface.as_str();
    catalog
        .iter()
        .filter(|s| s.get("type").and_then(Value::as_str) == Some(kind))
        .flat_map(|s| {
            s.get("endpoints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .find(|e| {
            e.get("interface").and_then(Value::as_str) == Some(interface)
                && match &config.region {
                    None => true,
                    Some(r) => {
                        e.get("region_id").and_then(Value::as_str) == Some(r)
                            || e.get("region").and_then(Value::as_str) == Some(r)
                    }
                }
        })
        .and_then(|e| e.get("url").and_then(Value::as_str).map(str::to_owned))
        .map(|url| {
            let mut url = url.trim_end_matches('/');
            for suffix in ["/v2.0", "/v2"] {
                if let Some(stripped) = url.strip_suffix(suffix) {
                    url = stripped;
                    break;
                }
            }
            url.to_owned()
        })
}

/// Keystone's request body and the secret inside it (for scrubbing).
fn auth_body(auth: &Auth) -> (Value, Secret) {
    fn domain(d: &Domain) -> Value {
        match d {
            Domain::Id(id) => json!({ "id": id }),
            Domain::Name(name) => json!({ "name": name }),
        }
    }
    fn user(u: &User) -> Value {
        match u {
            User::Id(id) => json!({ "id": id }),
            User::Name { name, domain: d } => json!({ "name": name, "domain": domain(d) }),
        }
    }
    fn scope(p: &ProjectScope) -> Value {
        match p {
            ProjectScope::Id(id) => json!({ "project": { "id": id } }),
            ProjectScope::Name { name, domain: d } => {
                json!({ "project": { "name": name, "domain": domain(d) } })
            }
        }
    }
    match auth {
        Auth::Password {
            user: u,
            password,
            project,
        } => {
            let mut user = user(u);
            user["password"] = json!(password.expose());
            (
                json!({ "auth": {
                    "identity": { "methods": ["password"], "password": { "user": user } },
                    "scope": scope(project),
                }}),
                password.clone(),
            )
        }
        Auth::ApplicationCredential {
            id,
            name,
            user: u,
            secret,
        } => {
            let mut cred = json!({ "secret": secret.expose() });
            if let Some(id) = id {
                cred["id"] = json!(id);
            } else if let Some(name) = name {
                cred["name"] = json!(name);
                if let Some(u) = u {
                    cred["user"] = user(u);
                }
            }
            (
                json!({ "auth": { "identity": {
                    "methods": ["application_credential"],
                    "application_credential": cred,
                }}}),
                secret.clone(),
            )
        }
        Auth::Token { token, project } => (
            json!({ "auth": {
                "identity": { "methods": ["token"], "token": { "id": token.expose() } },
                "scope": scope(project),
            }}),
            token.clone(),
        ),
    }
}
