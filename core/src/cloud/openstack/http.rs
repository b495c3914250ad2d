//! One request on the wire. Transient faults are retried here, never in
//! the engine: 429 and 503 after `Retry-After` (capped) or a backoff;
//! 500/502/504 and lost connections with bounded exponential backoff and
//! jitter. Requests that are not idempotent (creates, adding a router
//! interface) are repeated only when the server cannot have acted on them
//! (refused connection, 429), so a retry never makes a second resource;
//! their other faults, a 503 among them (a proxy's 503 may hide a server
//! that acted), come back as `Unavailable` and the engine reads back
//! whether the write landed (`engine::create`).
//!
//! Logging: one `debug` event per HTTP exchange with method, host, path,
//! status and time. Bodies are never logged; the token goes in a header
//! marked sensitive.

use super::OpenStack;
use crate::cloud::CloudError;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};

/// How a request takes its turn on its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    /// Behind the endpoint's gate and any pause a 429 set; retried.
    Queued,
    /// A lease renewal or its read-back: sent at once beside the queue and
    /// any pause, tried once within `URGENT_TIMEOUT`. A busy or throttled
    /// run must still renew before its record expires; the lease retries
    /// on its own clock, so a failure here costs nothing but one try.
    Urgent,
}

/// What to send, apart from where and with which token.
#[derive(Debug, Clone)]
pub(super) struct Request<'a> {
    pub(super) method: Method,
    pub(super) body: Option<&'a Value>,
    /// Whether it may be sent again after a fault that came once it could
    /// have reached the server (see the module's comment).
    pub(super) idempotent: bool,
    /// Extra headers (`If-Match`).
    pub(super) headers: &'a [(&'static str, String)],
    pub(super) lane: Lane,
}

impl<'a> Request<'a> {
    /// `method`, queued, with no body or extra header; idempotent unless
    /// it is a POST (a create, which a repeat could make twice).
    pub(super) fn new(method: Method) -> Self {
        Request {
            idempotent: method != Method::POST,
            method,
            body: None,
            headers: &[],
            lane: Lane::Queued,
        }
    }

    pub(super) fn body(self, body: &'a Value) -> Self {
        Request {
            body: Some(body),
            ..self
        }
    }

    /// Overrides what `new` decided from the method.
    pub(super) fn idempotent(self, idempotent: bool) -> Self {
        Request { idempotent, ..self }
    }

    pub(super) fn headers(self, headers: &'a [(&'static str, String)]) -> Self {
        Request { headers, ..self }
    }

    pub(super) fn lane(self, lane: Lane) -> Self {
        Request { lane, ..self }
    }
}

/// Limit for one `Lane::Urgent` request: well under the lease's renewal
/// period, so a hung renewal is retried in time.
const URGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP answer, body read in full.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) attempts: u32,
}

impl Reply {
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl OpenStack {
    /// One request with retries: returns whatever final answer came, or
    /// `Unavailable` when the connection kept failing. `request.idempotent`
    /// decides whether a fault after the request may have left the server
    /// can be retried; `request.lane` whether it waits its turn.
    pub(super) async fn exchange(
        &self,
        request: &Request<'_>,
        url: &Url,
        token: Option<&HeaderValue>,
    ) -> Result<Reply, CloudError> {
        let Request {
            method, idempotent, ..
        } = request;
        let idempotent = *idempotent;
        let (max, gate) = match request.lane {
            Lane::Queued => (
                self.options.max_attempts.max(1),
                self.options.gates.as_ref().map(|g| g.gate(&host(url))),
            ),
            Lane::Urgent => (1, None),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Held until the answer is read; released before any backoff.
            let permit = match &gate {
                Some(g) => g.enter().await,
                None => None,
            };
            let req = self.request(request, url, token);
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
                        // A 503 may come from a proxy in front of a server
                        // that did act (the gateway gave up waiting): a
                        // write that is not idempotent is read back by the
                        // engine instead (`engine::create`).
                        503 if !idempotent => None,
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

    /// One request as it goes on the wire (the token in a header marked
    /// sensitive by the session).
    fn request(
        &self,
        request: &Request<'_>,
        url: &Url,
        token: Option<&HeaderValue>,
    ) -> reqwest::RequestBuilder {
        let Request {
            method,
            body,
            headers,
            lane,
            ..
        } = request;
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header("Accept", "application/json");
        if let Some(token) = token {
            req = req.header("X-Auth-Token", token.clone());
        }
        for (name, value) in headers.iter() {
            req = req.header(*name, value.as_str());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        if *lane == Lane::Urgent {
            req = req.timeout(URGENT_TIMEOUT.min(self.options.request_timeout));
        }
        req
    }

    /// Delay before retry number `attempt` (1-based): exponential, capped,
    /// with "equal jitter" (half fixed, half random) so that concurrent
    /// tasks spread out but never retry instantly.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .options
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.options.backoff_max);
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
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

/// `Retry-After` as seconds or an HTTP date, capped at `max`.
pub(super) fn retry_after(headers: &HeaderMap, max: Duration) -> Option<Duration> {
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
pub(super) fn api_message(reply: &Reply) -> String {
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
pub(super) fn status_error(
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
        412 => CloudError::RevisionChanged { what: what() },
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

/// The query of the `next` link in a list answer's `{plural}_links`, if
/// any. Only the query is kept: the link's host and path are never
/// followed, so a link can never send the token to another host.
pub(super) fn next_page(doc: &Value, plural: &str) -> Option<Vec<(String, String)>> {
    doc.get(format!("{plural}_links"))
        .and_then(Value::as_array)
        .and_then(|links| {
            links
                .iter()
                .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))
        })
        .and_then(|l| l.get("href").and_then(Value::as_str))
        .and_then(|href| Url::parse(href).ok())
        .map(|link| link.query_pairs().into_owned().collect())
}
