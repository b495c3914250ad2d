//! The real cloud: Keystone v3, Neutron and Octavia over HTTPS with reqwest.
//!
//! One token per client, shared by every task (`&self`); a 401 from a
//! service means the token expired or was revoked, so the client logs in
//! again once (one task does it, the others reuse the new token) and repeats
//! the request. Transient faults are retried here, never in the engine:
//! 429 and 503 after `Retry-After` (capped) or a backoff; 500/502/504 and
//! lost connections with bounded exponential backoff and jitter. Requests
//! that are not idempotent (creates, adding a router interface) are repeated
//! only when the server cannot have acted on them (refused connection, 429,
//! 503), so a retry never makes a second resource; their other faults come
//! back as `Unavailable` and the engine reads back whether the write landed
//! (`engine::create`).
//!
//! Logging: one `debug` event per HTTP exchange with method, path, status and
//! time. Tokens go in a header marked sensitive; request bodies are never
//! logged, and Keystone's answers are scrubbed of the secret that was sent.

use super::config::{Auth, CloudConfig, Discovery, Domain, ProjectScope, Secret, User};
use super::{Cloud, CloudError, Kind, Query, Service};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Network behaviour of a client. `Default` suits a real cloud.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limit for establishing a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Limit for one whole request, body included.
    pub request_timeout: Duration,
    /// Tries per request, the first included (1 = never retry).
    pub max_attempts: u32,
    /// First backoff delay; doubles per retry up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured; a longer one is cut to this.
    pub retry_after_max: Duration,
    /// Per-endpoint limits shared with other clients (a fleet's sites on one
    /// cloud); `None`: no limit beyond the engine's own.
    pub gates: Option<Arc<super::gate::EndpointGates>>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(20),
            retry_after_max: Duration::from_secs(60),
            gates: None,
        }
    }
}

/// A logged-in client. Cheap to share behind `&`; every method may run
/// concurrently from many tasks.
pub struct OpenStack {
    http: reqwest::Client,
    config: CloudConfig,
    options: ConnectOptions,
    session: RwLock<Arc<Session>>,
    /// Serialises re-authentication so a burst of 401s logs in once.
    relogin: tokio::sync::Mutex<()>,
}

/// What one token gives: itself, its project and the catalog's endpoints.
struct Session {
    token: HeaderValue,
    project_id: String,
    /// Service → endpoint base URL without a trailing slash or API version.
    endpoints: HashMap<Service, String>,
    /// Incremented on every login; lets concurrent 401s see a newer token.
    generation: u64,
}

/// One HTTP answer, body read in full.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    attempts: u32,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl OpenStack {
    /// Builds the HTTP client and logs in. Errors: `Config` (bad CA file),
    /// `Auth` (credentials refused), `Unavailable` (Keystone unreachable).
    pub async fn connect(
        config: &CloudConfig,
        options: ConnectOptions,
    ) -> Result<Self, CloudError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("kuryr6/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(!config.verify_tls);
        if let Some(path) = &config.cacert {
            let pem = std::fs::read(path).map_err(|e| {
                CloudError::Config(format!(
                    "{}: cannot read cacert {}: {e}",
                    config.label(),
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                CloudError::Config(format!(
                    "{}: cacert {} is not a PEM bundle: {e}",
                    config.label(),
                    path.display()
                ))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| CloudError::Config(format!("cannot build the HTTP client: {e}")))?;
        let client = OpenStack {
            http,
            config: config.clone(),
            options,
            session: RwLock::new(Arc::new(Session {
                token: HeaderValue::from_static(""),
                project_id: String::new(),
                endpoints: HashMap::new(),
                generation: 0,
            })),
            relogin: tokio::sync::Mutex::new(()),
        };
        client.relogin(0).await?;
        Ok(client)
    }

    /// Connects to the local test cloud that `scripts/cloud/up.sh` wrote to
    /// `state_dir` (its clouds.yaml + secure.yaml, cloud `kuryr6-local`).
    /// `Ok(None)` when that directory has no clouds.yaml: the cloud is not up.
    /// For integration tests and examples only.
    pub async fn local(state_dir: &Path) -> Result<Option<Self>, CloudError> {
        let clouds = state_dir.join("clouds.yaml");
        if !clouds.is_file() {
            return Ok(None);
        }
        let discovery = Discovery {
            vars: [
                ("OS_CLIENT_CONFIG_FILE", clouds),
                ("OS_CLIENT_SECURE_FILE", state_dir.join("secure.yaml")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.display().to_string()))
            .collect(),
            cwd: state_dir.to_owned(),
            system_dir: state_dir.to_owned(),
        };
        let config = discovery.load(Some("kuryr6-local"))?;
        Ok(Some(
            Self::connect(&config, ConnectOptions::default()).await?,
        ))
    }

    pub fn config(&self) -> &CloudConfig {
        &self.config
    }

    fn current(&self) -> Arc<Session> {
        // A poisoned lock only means a panic elsewhere; the Arc inside is whole.
        match self.session.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Logs in again unless another task already did since `seen`.
    async fn relogin(&self, seen: u64) -> Result<Arc<Session>, CloudError> {
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
        let reply = self
            .exchange(Method::POST, &url, None, Some(&body), true)
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

    /// One request with retries: returns whatever final answer came, or
    /// `Unavailable` when the connection kept failing. `idempotent` decides
    /// whether a fault after the request may have left the server can be
    /// retried.
    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        token: Option<&HeaderValue>,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Reply, CloudError> {
        let max = self.options.max_attempts.max(1);
        let gate = self.options.gates.as_ref().map(|g| g.gate(&host(url)));
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Held until the answer is read; released before any backoff.
            let permit = match &gate {
                Some(g) => g.enter().await,
                None => None,
            };
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header("Accept", "application/json");
            if let Some(token) = token {
                req = req.header("X-Auth-Token", token.clone());
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let started = Instant::now();
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(bytes) => Ok((status, headers, bytes.to_vec())),
                        Err(e) => Err((e, true)),
                    }
                }
                Err(e) => Err((e, false)),
            };
            drop(permit);
            let ms = started.elapsed().as_millis() as u64;
            let last = attempt >= max;
            match outcome {
                Ok((status, headers, body)) => {
                    tracing::debug!(
                        method = %method,
                        host = %host(url),
                        path = %url.path(),
                        status = status.as_u16(),
                        ms,
                        attempt,
                        "openstack request"
                    );
                    let wait = match status.as_u16() {
                        429 | 503 => Some(
                            retry_after(&headers, self.options.retry_after_max)
                                .unwrap_or_else(|| self.backoff(attempt)),
                        ),
                        500 | 502 | 504 if idempotent => Some(self.backoff(attempt)),
                        _ => None,
                    };
                    if let (429, Some(g), Some(wait)) = (status.as_u16(), &gate, wait) {
                        // Every client of this endpoint slows down, not only this one.
                        g.throttle(wait);
                    }
                    match wait {
                        Some(wait) if !last => tokio::time::sleep(wait).await,
                        _ => {
                            return Ok(Reply {
                                status,
                                headers,
                                body,
                                attempts: attempt,
                            });
                        }
                    }
                }
                Err((error, sent)) => {
                    // A refused or unestablished connection never reached the
                    // server; anything later may have been acted on.
                    let unsent = !sent && error.is_connect();
                    tracing::debug!(
                        method = %method,
                        host = %host(url),
                        path = %url.path(),
                        error = %error_chain(&error),
                        ms,
                        attempt,
                        "openstack request failed"
                    );
                    if last || !(unsent || idempotent) {
                        let tries = if attempt > 1 {
                            format!(" after {attempt} attempts")
                        } else {
                            String::new()
                        };
                        return Err(CloudError::Unavailable(format!(
                            "{method} {url}{tries}: {}",
                            error_chain(&error)
                        )));
                    }
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
            }
        }
    }

    /// Delay before retry number `attempt` (1-based): exponential, capped,
    /// with "equal jitter" (half fixed, half random) so that concurrent
    /// tasks spread out but never retry instantly.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .options
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.options.backoff_max);
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// A request to a service with the current token, logging in again once
    /// on 401. Returns only 2xx answers; every other status becomes an error
    /// through `on_404` (what to call the missing thing) and `status_error`.
    async fn service_call(
        &self,
        service: Service,
        method: Method,
        url: impl Fn(&str) -> Result<Url, CloudError>,
        body: Option<&Value>,
        idempotent: bool,
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
            let reply = self
                .exchange(method.clone(), &url, Some(&session.token), body, idempotent)
                .await?;
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
            return Err(status_error(&reply, &method, url.path(), message, what));
        }
    }

    /// `PUT {collection}/{id}/tags`: replaces all tags; returns them.
    async fn put_tags(&self, kind: &Kind, id: &str, tags: &Value) -> Result<Value, CloudError> {
        let body = json!({ "tags": tags });
        let doc = self
            .service_call(
                kind.service(),
                Method::PUT,
                |base| {
                    let mut url = Self::item_url(base, kind, id)?;
                    url.path_segments_mut()
                        .map_err(|_| bad_url(base))?
                        .push("tags");
                    Ok(url)
                },
                Some(&body),
                true,
                || format!("{kind} {id}"),
            )
            .await?;
        Ok(doc.get("tags").cloned().unwrap_or_else(|| tags.clone()))
    }

    fn list_url(base: &str, kind: &Kind) -> Result<Url, CloudError> {
        let mut url = parse_url(&format!("{base}{}", collection_path(kind)))?;
        if let Kind::Member { pool_id } = kind {
            url.path_segments_mut()
                .map_err(|_| bad_url(base))?
                .push(pool_id)
                .push("members");
        }
        Ok(url)
    }

    fn item_url(base: &str, kind: &Kind, id: &str) -> Result<Url, CloudError> {
        let mut url = Self::list_url(base, kind)?;
        url.path_segments_mut().map_err(|_| bad_url(base))?.push(id);
        Ok(url)
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

/// `host:port` for logs (never the path's query or any credential).
fn host(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

fn parse_url(text: &str) -> Result<Url, CloudError> {
    Url::parse(text).map_err(|_| bad_url(text))
}

fn bad_url(text: &str) -> CloudError {
    CloudError::Config(format!("the catalog endpoint {text} is not a usable URL"))
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

/// `Retry-After` as seconds or an HTTP date, capped at `max`.
fn retry_after(headers: &HeaderMap, max: Duration) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = text.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = httpdate::parse_http_date(text).ok()?;
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(max))
}

/// The API's own explanation from an error body: Neutron's
/// `{"NeutronError": {"type", "message"}}`, Octavia's `faultstring` or
/// `description`, Keystone's `{"error": {"message"}}`, else the text itself
/// (shortened), else the status's reason.
fn api_message(reply: &Reply) -> String {
    let doc = reply.json();
    let pick = |ptr: &str| {
        doc.pointer(ptr)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let found = pick("/NeutronError/message")
        .map(|m| match pick("/NeutronError/type") {
            Some(t) => format!("{m} ({t})"),
            None => m,
        })
        .or_else(|| pick("/faultstring"))
        .or_else(|| pick("/description"))
        .or_else(|| pick("/error/message"))
        .or_else(|| pick("/message"));
    if let Some(m) = found {
        return m;
    }
    let text = String::from_utf8_lossy(&reply.body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        return reply
            .status
            .canonical_reason()
            .unwrap_or("no message")
            .to_owned();
    }
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// Maps a final non-2xx answer to the error the engine acts on.
fn status_error(
    reply: &Reply,
    method: &Method,
    path: &str,
    message: String,
    what: impl Fn() -> String,
) -> CloudError {
    let status = reply.status.as_u16();
    match status {
        401 | 403 => CloudError::Auth(format!("{method} {path} ({status}): {message}")),
        404 => CloudError::NotFound { what: what() },
        409 => CloudError::Conflict { message },
        429 | 500..=599 => {
            let tries = if reply.attempts > 1 {
                format!(" after {} attempts", reply.attempts)
            } else {
                String::new()
            };
            CloudError::Unavailable(format!(
                "{method} {path} answered {status}{tries}: {message}"
            ))
        }
        _ => CloudError::Rejected {
            method: method.to_string(),
            path: path.to_owned(),
            status,
            message,
        },
    }
}

/// An error with its causes ("error sending request: … : Connection refused").
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

impl Cloud for OpenStack {
    async fn project_id(&self) -> Result<String, CloudError> {
        Ok(self.current().project_id.clone())
    }

    async fn has_service(&self, service: Service) -> Result<bool, CloudError> {
        Ok(self.current().endpoints.contains_key(&service))
    }

    /// Follows `…_links` `next` pages, re-using only their query so that a
    /// link can never send the token to another host.
    async fn list(&self, kind: &Kind, query: &Query) -> Result<Vec<Value>, CloudError> {
        let mut out = Vec::new();
        let mut page_query: Vec<(String, String)> = query.clone();
        for _page in 0..10_000 {
            let doc = self
                .service_call(
                    kind.service(),
                    Method::GET,
                    |base| {
                        let mut url = Self::list_url(base, kind)?;
                        if !page_query.is_empty() {
                            url.query_pairs_mut().extend_pairs(page_query.iter());
                        }
                        Ok(url)
                    },
                    None,
                    true,
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
            let next = doc
                .get(format!("{}_links", kind.plural()))
                .and_then(Value::as_array)
                .and_then(|links| {
                    links
                        .iter()
                        .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))
                })
                .and_then(|l| l.get("href").and_then(Value::as_str))
                .and_then(|href| Url::parse(href).ok());
            match next {
                Some(link) => {
                    page_query = link.query_pairs().into_owned().collect();
                }
                None => return Ok(out),
            }
        }
        Err(CloudError::Unavailable(format!(
            "listing {} did not end after 10000 pages",
            kind.plural()
        )))
    }

    async fn get(&self, kind: &Kind, id: &str) -> Result<Value, CloudError> {
        let doc = self
            .service_call(
                kind.service(),
                Method::GET,
                |base| Self::item_url(base, kind, id),
                None,
                true,
                || format!("{kind} {id}"),
            )
            .await?;
        unwrap_envelope(doc, kind, "GET")
    }

    /// One POST with `body` as given. Neutron refuses `tags` in it (400,
    /// "Attribute 'tags' not allowed in POST") for every kind but ports:
    /// the engine tags after the create (see `engine::create`).
    async fn create(&self, kind: &Kind, body: Value) -> Result<Value, CloudError> {
        let envelope = json!({ kind.singular(): body });
        let doc = self
            .service_call(
                kind.service(),
                Method::POST,
                |base| Self::list_url(base, kind),
                Some(&envelope),
                false,
                || match kind {
                    Kind::Member { pool_id } => format!("pool {pool_id}"),
                    _ => format!("the {} collection", kind.plural()),
                },
            )
            .await?;
        unwrap_envelope(doc, kind, "POST")
    }

    /// One bulk POST (`{"networks": […]}`) where Neutron has bulk create.
    async fn create_many(&self, kind: &Kind, bodies: Vec<Value>) -> Result<Vec<Value>, CloudError> {
        let bulk = matches!(kind, Kind::Network | Kind::Subnet | Kind::SecurityGroupRule);
        if !bulk || bodies.len() < 2 {
            let mut made = Vec::with_capacity(bodies.len());
            for body in bodies {
                made.push(self.create(kind, body).await?);
            }
            return Ok(made);
        }
        let n = bodies.len();
        let envelope = json!({ kind.plural(): bodies });
        let doc = self
            .service_call(
                kind.service(),
                Method::POST,
                |base| Self::list_url(base, kind),
                Some(&envelope),
                false,
                || format!("the {} collection", kind.plural()),
            )
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
    async fn set_new_tags(&self, kind: &Kind, id: &str, tags: &[String]) -> Result<(), CloudError> {
        if !tags_separate(kind) {
            return self.add_tags(kind, id, tags).await;
        }
        self.put_tags(kind, id, &json!(tags)).await.map(|_| ())
    }

    async fn add_tags(&self, kind: &Kind, id: &str, tags: &[String]) -> Result<(), CloudError> {
        if kind.service() != Service::Network {
            let current = self.get(kind, id).await?;
            return match super::with_tags(&current, tags) {
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
                Method::PUT,
                move |base| {
                    let mut url = Self::item_url(base, kind, id)?;
                    url.path_segments_mut()
                        .map_err(|_| bad_url(base))?
                        .push("tags")
                        .push(tag);
                    Ok(url)
                },
                None,
                true,
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
    async fn update(&self, kind: &Kind, id: &str, mut body: Value) -> Result<Value, CloudError> {
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
        let envelope = json!({ kind.singular(): body });
        let doc = self
            .service_call(
                kind.service(),
                Method::PUT,
                |base| Self::item_url(base, kind, id),
                Some(&envelope),
                true,
                || format!("{kind} {id}"),
            )
            .await?;
        unwrap_envelope(doc, kind, "PUT")
    }

    async fn delete(&self, kind: &Kind, id: &str) -> Result<(), CloudError> {
        match self
            .service_call(
                kind.service(),
                Method::DELETE,
                |base| Self::item_url(base, kind, id),
                None,
                true,
                || format!("{kind} {id}"),
            )
            .await
        {
            Ok(_) | Err(CloudError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn router_interface(
        &self,
        router_id: &str,
        subnet_id: &str,
        add: bool,
    ) -> Result<(), CloudError> {
        let action = if add {
            "add_router_interface"
        } else {
            "remove_router_interface"
        };
        let body = json!({ "subnet_id": subnet_id });
        let result = self
            .service_call(
                Service::Network,
                Method::PUT,
                |base| {
                    let mut url = Self::item_url(base, &Kind::Router, router_id)?;
                    url.path_segments_mut()
                        .map_err(|_| bad_url(base))?
                        .push(action);
                    Ok(url)
                },
                Some(&body),
                // Adding twice is refused (400), so only removal is safe to repeat.
                !add,
                || format!("router {router_id} or subnet {subnet_id}"),
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

fn unwrap_envelope(mut doc: Value, kind: &Kind, method: &str) -> Result<Value, CloudError> {
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

#[cfg(test)]
mod tests;

#[cfg(all(test, feature = "cloud-tests"))]
mod live;
