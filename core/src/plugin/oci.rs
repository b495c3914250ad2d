//! The few OCI distribution-API calls kuryr6 needs, on the reqwest client
//! the cloud code already uses: push and pull of a WebAssembly plugin in
//! the CNCF wasm OCI layout, and of its minisign signature.
//!
//! Why not `oci-client`/`oci-wasm`: both (0.17/0.18, 0.6) are built on
//! reqwest 0.13, a second HTTP/TLS stack next to our reqwest 0.12 + rustls;
//! `oci-wasm` also brings its own wasm-tools and sha2 majors. The calls are
//! few (GET/PUT manifest, HEAD/GET blob, POST+PUT upload, the token
//! dance), so they live here.
//!
//! The layout (what `push` writes, what `pull` accepts):
//! - manifest `application/vnd.oci.image.manifest.v1+json`;
//! - config `application/vnd.wasm.config.v0+json` with `architecture:
//!   "wasm"`, `os: "wasip2"`, `created` and `layerDigests`;
//! - exactly one layer, `application/wasm`: the component.
//!
//! The signature is a separate artefact in the same repository, tagged
//! `sha256-<plugin manifest hex>.minisig` (cosign's tag convention; a
//! registry without the OCI 1.1 referrers API, like distribution 2.8,
//! finds it by tag): config is the OCI empty descriptor, its one layer
//! `application/vnd.kuryr6.minisign.signature.v1` holds the `.minisig`
//! file, `subject` points at the plugin's manifest. So the plugin's
//! manifest stays the plain wasm layout, and a vendor can sign after push.
//!
//! Transport: plain HTTP only for a loopback registry or with `insecure`
//! (the operator's explicit choice for that source); otherwise HTTPS with
//! certificates verified against the system's roots, never skipped.
//! Credentials belong to one registry (`host[:port]`, exactly as the
//! reference names it): `KURYR6_REGISTRY_AUTH_<registry>` = `user:password`
//! (the registry upper-cased, every other character `_`), or
//! `KURYR6_REGISTRY_USERNAME` + `KURYR6_REGISTRY_PASSWORD` for the one
//! registry `KURYR6_REGISTRY_HOST` names, else the registry's `auth` in
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. They are sent
//! as Basic or traded for a Bearer token as that registry asks (401 +
//! WWW-Authenticate), never to another registry, never over plain HTTP
//! off loopback, to a token realm only on the registry's own host or one
//! the operator named (`KURYR6_REGISTRY_TOKEN_HOSTS`), and never printed
//! or logged.
//! Every blob and manifest is hashed on arrival and refused unless it is
//! the digest asked for.

use super::reference::{Reference, check_digest};
use super::store::sha256_digest;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const WASM_CONFIG_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER_TYPE: &str = "application/wasm";
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.kuryr6.plugin.signature.v1";
pub const SIGNATURE_LAYER_TYPE: &str = "application/vnd.kuryr6.minisign.signature.v1";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";
/// Bound on a manifest or config read from a registry.
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;
/// Bound on a token service's answer (real ones are a few KiB of JWT).
pub const MAX_TOKEN_ANSWER: usize = 1024 * 1024;
/// Bound on a plugin layer read from a registry.
pub const MAX_LAYER: usize = super::store::MAX_BLOB as usize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Manifest {
    /// The one `application/wasm` layer of a plugin manifest, or why this
    /// is not one.
    pub fn wasm_layer(&self) -> Result<&Descriptor, String> {
        if self.schema_version != 2 {
            return Err(format!("schemaVersion {} (want 2)", self.schema_version));
        }
        if self.config.media_type != WASM_CONFIG_TYPE {
            return Err(format!(
                "its config is {}, not {WASM_CONFIG_TYPE}: not a WebAssembly artefact",
                self.config.media_type
            ));
        }
        match self.layers.as_slice() {
            [l] if l.media_type == WASM_LAYER_TYPE => {
                check_digest(&l.digest)?;
                Ok(l)
            }
            [l] => Err(format!(
                "its layer is {}, not {WASM_LAYER_TYPE}",
                l.media_type
            )),
            ls => Err(format!(
                "it has {} layers; a plugin has exactly one {WASM_LAYER_TYPE} layer",
                ls.len()
            )),
        }
    }
}

/// A registry failure, worded for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciError {
    /// Connection, TLS, or an unexpected HTTP status.
    Http(String),
    /// The registry has no such manifest or blob.
    NotFound(String),
    /// Bytes that are not what their digest says.
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    /// Something that is not a plugin in the wasm layout.
    NotAPlugin(String),
}

impl std::fmt::Display for OciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OciError::Http(m) | OciError::NotFound(m) => f.write_str(m),
            OciError::Digest {
                what,
                expected,
                actual,
            } => write!(
                f,
                "the registry served a {what} whose bytes hash to {actual}, not to {expected}: altered in the registry or on the way"
            ),
            OciError::NotAPlugin(m) => write!(f, "not a kuryr6 plugin artefact: {m}"),
        }
    }
}

/// Registry credentials. Debug never shows them.
#[derive(Clone)]
enum Credentials {
    None,
    /// base64 of `user:password`, as in ~/.docker/config.json.
    Basic(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Basic(_) => "Basic(<redacted>)",
        })
    }
}

/// The environment variable that holds `registry`'s credentials.
pub fn auth_variable(registry: &str) -> String {
    let key: String = registry
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("KURYR6_REGISTRY_AUTH_{key}")
}

/// `registry`'s credentials, from `env` (the process environment) and the
/// docker config it names. Only those tied to this very registry.
fn credentials_for(registry: &str, env: impl Fn(&str) -> Option<String>) -> Credentials {
    use base64::Engine as _;
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let basic = |user_password: String| {
        Credentials::Basic(base64::engine::general_purpose::STANDARD.encode(user_password))
    };
    if let Some(up) = env(&auth_variable(registry)).filter(|v| v.contains(':')) {
        return basic(up);
    }
    if let (Some(u), Some(p), Some(host)) = (
        env("KURYR6_REGISTRY_USERNAME"),
        env("KURYR6_REGISTRY_PASSWORD"),
        env("KURYR6_REGISTRY_HOST"),
    ) && host.eq_ignore_ascii_case(registry)
    {
        return basic(format!("{u}:{p}"));
    }
    let config = env("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"));
    let Some(text) = config.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return Credentials::None;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Credentials::None;
    };
    let auths = &json["auths"];
    [registry.to_string(), format!("https://{registry}")]
        .iter()
        .find_map(|k| auths[k]["auth"].as_str())
        .filter(|a| !a.is_empty())
        .map(|a| Credentials::Basic(a.to_string()))
        .unwrap_or(Credentials::None)
}

/// A client for one registry.
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// Plain HTTP allowed off loopback (the source's `insecure`).
    insecure: bool,
    registry: String,
    credentials: Credentials,
    /// The Authorization header that last worked (Basic or Bearer).
    authorization: std::sync::Mutex<Option<String>>,
}

impl Client {
    /// `insecure` allows plain HTTP to a registry off loopback; loopback is
    /// always plain HTTP (no certificates exist for it).
    pub fn new(reference: &Reference, insecure: bool) -> Result<Client, OciError> {
        let scheme = if reference.is_loopback() || insecure {
            "http"
        } else {
            "https"
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("kuryr6/", env!("CARGO_PKG_VERSION")))
            // Redirects (to blob storage) keep TLS verification and the
            // transport rule: no step down to plain HTTP off loopback
            // unless `insecure`. reqwest drops Authorization on a
            // redirect to another host.
            .redirect(reqwest::redirect::Policy::custom(move |a| {
                if a.previous().len() >= 5 {
                    a.error("more than 5 redirects")
                } else if transport_allowed(a.url(), insecure) {
                    a.follow()
                } else {
                    a.error("a redirect to plain HTTP off loopback (the source is not insecure)")
                }
            }))
            .build()
            .map_err(|e| OciError::Http(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: format!("{scheme}://{}", reference.registry),
            insecure,
            registry: reference.registry.clone(),
            credentials: credentials_for(&reference.registry, |k| std::env::var(k).ok()),
            authorization: std::sync::Mutex::new(None),
        })
    }

    fn registry_host(&self) -> &str {
        let r = self.registry.as_str();
        match r.strip_prefix('[') {
            Some(inner) => inner.split(']').next().unwrap_or(inner),
            None => r.split(':').next().unwrap_or(r),
        }
    }

    fn is_loopback(&self) -> bool {
        is_loopback_host(self.registry_host())
    }

    fn url(&self, repo: &str, tail: &str) -> String {
        format!("{}/v2/{repo}/{tail}", self.base)
    }

    fn auth_header(&self) -> Option<String> {
        self.authorization
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends a request, answering one 401 challenge (Basic or Bearer).
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        scope: &str,
    ) -> Result<reqwest::Response, OciError> {
        let net = |e: reqwest::Error| {
            OciError::Http(format!(
                "registry {} cannot be reached: {}",
                self.registry,
                without_url(e)
            ))
        };
        // The URL may be the registry's word (an upload Location): it
        // obeys the transport rule, and our Authorization goes only to the
        // registry's own origin, never to a host it names.
        let attempt = |auth: Option<String>| async {
            let mut req = build(&self.http).build().map_err(net)?;
            if !transport_allowed(req.url(), self.insecure) {
                return Err(OciError::Http(format!(
                    "registry {} sends kuryr6 to plain HTTP off loopback (the source is not insecure)",
                    self.registry
                )));
            }
            if let Some(a) = auth
                && same_origin(req.url(), &self.base)
            {
                let mut v = reqwest::header::HeaderValue::from_str(&a).map_err(|_| {
                    OciError::Http(format!(
                        "registry {}: its token is not a valid header value",
                        self.registry
                    ))
                })?;
                v.set_sensitive(true);
                req.headers_mut().insert(reqwest::header::AUTHORIZATION, v);
            }
            self.http.execute(req).await.map_err(net)
        };
        let resp = attempt(self.auth_header()).await?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let auth = self.answer(&challenge, scope).await?;
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth.clone());
        attempt(Some(auth)).await
    }

    /// The Authorization header for a challenge: our Basic credentials, or
    /// a token from the realm it names.
    async fn answer(&self, challenge: &str, scope: &str) -> Result<String, OciError> {
        let denied = || {
            OciError::Http(format!(
                "registry {} asks for credentials: set {}=<user>:<password> (or KURYR6_REGISTRY_USERNAME, KURYR6_REGISTRY_PASSWORD and KURYR6_REGISTRY_HOST={}), or log in so ~/.docker/config.json has them",
                self.registry,
                auth_variable(&self.registry),
                self.registry
            ))
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return match &self.credentials {
                Credentials::Basic(_) if self.base.starts_with("http:") && !self.is_loopback() => {
                    Err(OciError::Http(format!(
                        "registry {} asks for credentials over plain HTTP (the source is insecure); kuryr6 sends them only over HTTPS or to a registry on this machine",
                        self.registry
                    )))
                }
                Credentials::Basic(b) => Ok(format!("Basic {b}")),
                Credentials::None => Err(denied()),
            };
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(OciError::Http(format!(
                "registry {} asks for `{scheme}` authentication, which kuryr6 does not speak (Basic and Bearer)",
                self.registry
            )));
        }
        let params = challenge_params(params);
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let realm = param("realm").ok_or_else(|| {
            OciError::Http(format!(
                "registry {}: a Bearer challenge without realm",
                self.registry
            ))
        })?;
        let mut query = vec![("scope", param("scope").unwrap_or_else(|| scope.to_string()))];
        if let Some(service) = param("service") {
            query.push(("service", service));
        }
        let realm_url = reqwest::Url::parse(&realm).map_err(|_| {
            OciError::Http(format!(
                "registry {} names a token realm that is not a URL",
                self.registry
            ))
        })?;
        let mut rb = self.http.get(realm_url.clone()).query(&query);
        // The realm is the registry's word: our credentials go there only
        // on the registry's own host or one the operator named, and only
        // over HTTPS or on this machine.
        let named = std::env::var("KURYR6_REGISTRY_TOKEN_HOSTS").unwrap_or_default();
        if let Credentials::Basic(b) = &self.credentials
            && realm_may_have_credentials(&realm_url, self.registry_host(), &named)
        {
            rb = rb.header(reqwest::header::AUTHORIZATION, format!("Basic {b}"));
        }
        let resp = rb.send().await.map_err(|e| {
            OciError::Http(format!(
                "token service of {}: {}",
                self.registry,
                without_url(e)
            ))
        })?;
        if !resp.status().is_success() {
            return Err(denied());
        }
        // Bounded like every other answer: a token service is the
        // registry's word too, and could stream without end.
        let body = self.body(resp, MAX_TOKEN_ANSWER, "token answer").await?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| OciError::Http(format!("token service of {}: {e}", self.registry)))?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or_else(denied)?;
        Ok(format!("Bearer {token}"))
    }

    /// A manifest by tag or digest, with its digest (sha256 of its bytes;
    /// checked against the digest asked for, and against the registry's
    /// Docker-Content-Digest when it sends one). `Ok(None)`: no such tag.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String)>, OciError> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let resp = self
            .send(
                |h| h.get(&url).header(reqwest::header::ACCEPT, MANIFEST_TYPE),
                &format!("repository:{repo}:pull"),
            )
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = self.body(resp, MAX_MANIFEST, "manifest").await?;
        let actual = sha256_digest(&bytes);
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            header_digest
        };
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(OciError::Digest {
                what: format!("manifest for {repo}@{reference}"),
                expected,
                actual,
            });
        }
        Ok(Some((bytes, actual)))
    }

    /// A blob, refused unless its bytes hash to `digest`.
    pub async fn blob(&self, repo: &str, digest: &str, max: usize) -> Result<Vec<u8>, OciError> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let resp = self
            .send(|h| h.get(&url), &format!("repository:{repo}:pull"))
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(OciError::NotFound(format!(
                "registry {} has no blob {digest} in {repo}",
                self.registry
            )));
        }
        let bytes = self.body(resp, max, "blob").await?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(OciError::Digest {
                what: format!("blob of {repo}"),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    async fn body(
        &self,
        resp: reqwest::Response,
        max: usize,
        what: &str,
    ) -> Result<Vec<u8>, OciError> {
        let status = resp.status();
        if !status.is_success() {
            return Err(OciError::Http(format!(
                "registry {} answered {status} for a {what}",
                self.registry
            )));
        }
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(OciError::Http(format!(
                "registry {} offers a {what} larger than {max} bytes",
                self.registry
            )));
        }
        let mut resp = resp;
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            OciError::Http(format!("registry {}: {}", self.registry, without_url(e)))
        })? {
            if out.len() + chunk.len() > max {
                return Err(OciError::Http(format!(
                    "registry {} sent a {what} larger than {max} bytes",
                    self.registry
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Uploads a blob unless the registry has it; returns its descriptor.
    pub async fn push_blob(
        &self,
        repo: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Descriptor, OciError> {
        let digest = sha256_digest(bytes);
        let scope = format!("repository:{repo}:pull,push");
        let desc = Descriptor {
            media_type: media_type.to_string(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            annotations: None,
        };
        let head = self.url(repo, &format!("blobs/{digest}"));
        let resp = self.send(|h| h.head(&head), &scope).await?;
        if resp.status().is_success() {
            return Ok(desc);
        }
        let start = self.url(repo, "blobs/uploads/");
        let resp = self.send(|h| h.post(&start), &scope).await?;
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (true, Some(location)) = (resp.status().is_success(), location) else {
            return Err(self.status_error("starting a blob upload", resp.status()));
        };
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let resp = self
            .send(
                |h| {
                    h.put(&put)
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .body(bytes.to_vec())
                },
                &scope,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error("uploading a blob", resp.status()));
        }
        Ok(desc)
    }

    /// Stores a manifest under a tag; returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        tag: &str,
        bytes: &[u8],
    ) -> Result<String, OciError> {
        let url = self.url(repo, &format!("manifests/{tag}"));
        let resp = self
            .send(
                |h| {
                    h.put(&url)
                        .header(reqwest::header::CONTENT_TYPE, MANIFEST_TYPE)
                        .body(bytes.to_vec())
                },
                &format!("repository:{repo}:pull,push"),
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            // The registry's text reaches a terminal: printable only.
            let body: String = body.chars().filter(|c| !c.is_control()).take(300).collect();
            return Err(OciError::Http(format!(
                "registry {} refused the manifest ({status}): {body}",
                self.registry
            )));
        }
        Ok(sha256_digest(bytes))
    }

    fn status_error(&self, what: &str, status: reqwest::StatusCode) -> OciError {
        OciError::Http(format!(
            "registry {} answered {status} when {what}",
            self.registry
        ))
    }
}

/// Whether a token realm named by a registry on `registry_host` may get
/// the registry's credentials: on that host or one in `named` (the
/// operator's comma-separated `host` or `host:port` list), over HTTPS, or
/// over plain HTTP on loopback only.
fn realm_may_have_credentials(realm: &reqwest::Url, registry_host: &str, named: &str) -> bool {
    let host = realm.host_str().unwrap_or("").trim_matches(['[', ']']);
    let authority = match realm.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let trusted = host.eq_ignore_ascii_case(registry_host)
        || named.split(',').map(str::trim).any(|n| {
            !n.is_empty() && (n.eq_ignore_ascii_case(host) || n.eq_ignore_ascii_case(&authority))
        });
    let transport =
        realm.scheme() == "https" || (realm.scheme() == "http" && is_loopback_host(host));
    trusted && transport
}

/// HTTPS always; plain HTTP only to loopback or when the operator said
/// `insecure` (the rule for the registry itself, applied to redirects).
fn transport_allowed(url: &reqwest::Url, insecure: bool) -> bool {
    url.scheme() == "https"
        || insecure
        || (url.scheme() == "http" && url.host_str().is_some_and(is_loopback_host))
}

/// `localhost` or a loopback address (brackets of an IPv6 one allowed).
fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Same scheme, host and port as `base` (the registry's URL).
fn same_origin(url: &reqwest::Url, base: &str) -> bool {
    reqwest::Url::parse(base).is_ok_and(|b| {
        b.scheme() == url.scheme()
            && b.host_str() == url.host_str()
            && b.port_or_known_default() == url.port_or_known_default()
    })
}

/// The `key=value` pairs of a WWW-Authenticate challenge (RFC 9110
/// auth-params). Values may be quoted strings holding commas: a push
/// challenge says `scope="repository:ns/p:pull,push"`, and splitting on
/// every comma would ask the token service for `pull` only.
fn challenge_params(params: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = params.trim_start();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// reqwest's errors print the URL; an upload location may hold a session
/// token, so messages keep the error's kind and causes only.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// The config blob of a plugin pushed now (`created` in RFC 3339, UTC).
pub fn wasm_config(layer_digest: &str, created: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "created": created,
        "layerDigests": [layer_digest],
    }))
    .unwrap_or_default()
}

/// RFC 3339 UTC for a time since the epoch (civil-from-days, proleptic
/// Gregorian calendar).
pub fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The plugin manifest for a pushed config and layer.
pub fn plugin_manifest(config: Descriptor, layer: Descriptor, created: &str) -> Vec<u8> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_TYPE.into()),
        artifact_type: None,
        config,
        layers: vec![layer],
        subject: None,
        annotations: Some(
            [(
                "org.opencontainers.image.created".to_string(),
                created.to_string(),
            )]
            .into(),
        ),
    };
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// The tag under which a plugin manifest's signature is kept.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!(
        "sha256-{}.minisig",
        manifest_digest
            .strip_prefix("sha256:")
            .unwrap_or(manifest_digest)
    )
}

/// Pushes the signature artefact of `subject` (a plugin manifest).
pub async fn push_signature(
    client: &Client,
    repo: &str,
    subject: Descriptor,
    minisig: &str,
) -> Result<String, OciError> {
    let config = client.push_blob(repo, EMPTY_TYPE, EMPTY_JSON).await?;
    let layer = client
        .push_blob(repo, SIGNATURE_LAYER_TYPE, minisig.as_bytes())
        .await?;
    let tag = signature_tag(&subject.digest);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_TYPE.into()),
        artifact_type: Some(SIGNATURE_ARTIFACT_TYPE.into()),
        config,
        layers: vec![layer],
        subject: Some(subject),
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    client.push_manifest(repo, &tag, &bytes).await
}

/// The signature of a plugin manifest, if the registry has one.
pub async fn pull_signature(
    client: &Client,
    repo: &str,
    manifest_digest: &str,
) -> Result<Option<String>, OciError> {
    let Some((bytes, _)) = client
        .manifest(repo, &signature_tag(manifest_digest))
        .await?
    else {
        return Ok(None);
    };
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| OciError::NotAPlugin(format!("signature manifest: {e}")))?;
    let layer = match m.layers.as_slice() {
        [l] if l.media_type == SIGNATURE_LAYER_TYPE => l,
        _ => {
            return Err(OciError::NotAPlugin(format!(
                "the signature manifest under {} has no {SIGNATURE_LAYER_TYPE} layer",
                signature_tag(manifest_digest)
            )));
        }
    };
    if m.subject.as_ref().map(|s| s.digest.as_str()) != Some(manifest_digest) {
        return Err(OciError::NotAPlugin(format!(
            "the signature under {} is about another manifest",
            signature_tag(manifest_digest)
        )));
    }
    let bytes = client
        .blob(repo, &layer.digest, super::signature::MAX_SIGNATURE)
        .await?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| OciError::NotAPlugin("the signature is not UTF-8 text".into()))
}

/// Runs a registry call to completion from synchronous code (the pipeline
/// loader), on a thread of its own so it also works inside a runtime.
pub fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(f))
        })
        .join()
    })
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
    .unwrap_or_else(|e| panic!("cannot start the async runtime: {e}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn challenge_scopes_keep_their_commas() {
        let p = challenge_params(
            r#"realm="https://auth.example.com/token",service="registry.example.com",scope="repository:ns/p:pull,push""#,
        );
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("realm"), Some("https://auth.example.com/token"));
        assert_eq!(get("service"), Some("registry.example.com"));
        assert_eq!(get("scope"), Some("repository:ns/p:pull,push"));
        // Unquoted values, spaces after commas, an escaped quote.
        let p = challenge_params(r#"realm=https://h/t, scope="a\"b", error=insufficient_scope"#);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("realm"), Some("https://h/t"));
        assert_eq!(get("scope"), Some("a\"b"));
        assert_eq!(get("error"), Some("insufficient_scope"));
    }

    #[test]
    fn credentials_belong_to_one_registry() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let none = |c: Credentials| matches!(c, Credentials::None);
        assert_eq!(
            auth_variable("127.0.0.1:5050"),
            "KURYR6_REGISTRY_AUTH_127_0_0_1_5050"
        );
        let per_host = env(&[
            ("KURYR6_REGISTRY_AUTH_127_0_0_1_5050", "u:p"),
            ("DOCKER_CONFIG", "/nonexistent"),
            ("HOME", "/nonexistent"),
        ]);
        assert!(
            matches!(credentials_for("127.0.0.1:5050", per_host), Credentials::Basic(b) if b == "dTpw")
        );
        // Another port, another host: nothing.
        assert!(none(credentials_for("127.0.0.1:5051", per_host)));
        assert!(none(credentials_for("other.example", per_host)));
        // The pair of variables belongs to the host it is tied to only.
        let untied = env(&[
            ("KURYR6_REGISTRY_USERNAME", "u"),
            ("KURYR6_REGISTRY_PASSWORD", "p"),
            ("HOME", "/nonexistent"),
        ]);
        assert!(none(credentials_for("registry.example", untied)));
        let tied = env(&[
            ("KURYR6_REGISTRY_USERNAME", "u"),
            ("KURYR6_REGISTRY_PASSWORD", "p"),
            ("KURYR6_REGISTRY_HOST", "registry.example"),
            ("HOME", "/nonexistent"),
        ]);
        assert!(!none(credentials_for("registry.example", tied)));
        assert!(none(credentials_for("registry.example:444", tied)));
        assert!(none(credentials_for("evil.example", tied)));
    }

    #[test]
    fn a_token_realm_gets_credentials_on_the_registry_host_or_a_named_one_only() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        let ok = |realm: &str, named: &str| {
            realm_may_have_credentials(&u(realm), "registry.example", named)
        };
        assert!(ok("https://registry.example/token", ""));
        assert!(ok("https://registry.example:8443/token", ""));
        assert!(!ok("https://auth.example/token", ""));
        assert!(ok("https://auth.example/token", "auth.example"));
        assert!(ok(
            "https://auth.example:444/token",
            "other, auth.example:444"
        ));
        assert!(!ok("https://auth.example:445/token", "auth.example:444"));
        // Never in clear text off loopback, named or not.
        assert!(!ok("http://registry.example/token", ""));
        assert!(!ok("http://auth.example/token", "auth.example"));
        let local = |realm: &str| realm_may_have_credentials(&u(realm), "127.0.0.1", "");
        assert!(local("http://127.0.0.1:5999/token"));
        assert!(!local("http://127.0.0.2:5999/token"));
    }

    #[test]
    fn redirects_do_not_step_down_to_plain_http() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(transport_allowed(&u("https://blobs.example.com/x"), false));
        assert!(transport_allowed(&u("http://127.0.0.1:5000/x"), false));
        assert!(transport_allowed(&u("http://[::1]:5000/x"), false));
        assert!(transport_allowed(&u("http://localhost/x"), false));
        assert!(!transport_allowed(&u("http://blobs.example.com/x"), false));
        assert!(!transport_allowed(&u("http://10.0.0.1/x"), false));
        assert!(!transport_allowed(&u("ftp://127.0.0.1/x"), false));
        assert!(transport_allowed(&u("http://blobs.example.com/x"), true));
    }

    /// A registry that asks for a Bearer token, and a token service on the
    /// same port that streams an answer far over the bound.
    #[test]
    fn an_endless_token_answer_is_cut_off() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let Ok((conn, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let mut conn = conn;
                if first.contains("/token") {
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"token\":\"",
                    );
                    let chunk = vec![b'a'; 64 * 1024];
                    for _ in 0..(8 * MAX_TOKEN_ANSWER / chunk.len()) {
                        if conn.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                    let _ = conn.write_all(b"\"}");
                    return;
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        let reference = Reference::parse(&format!("oci://127.0.0.1:{port}/ns/p:1")).unwrap();
        let client = Client::new(&reference, false).unwrap();
        let e = block_on(client.manifest("ns/p", "1")).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        drop(client);
        let _ = server.join();
    }

    /// Serves `n` connections, one request each: `answer(request head)`
    /// is the response; returns the request heads seen.
    pub(crate) fn serve(
        listener: std::net::TcpListener,
        n: usize,
        answer: impl Fn(&str) -> String + Send + 'static,
    ) -> std::thread::JoinHandle<Vec<String>> {
        use std::io::{BufRead, BufReader, Write};
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..n {
                let Ok((mut conn, _)) = listener.accept() else {
                    break;
                };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let _ = conn.write_all(answer(&head).as_bytes());
                seen.push(head);
            }
            seen
        })
    }

    /// A registry whose upload Location names another host: the upload
    /// goes there, our credentials do not.
    #[test]
    fn credentials_stay_with_the_registry_host() {
        let reg = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let other_port = other.local_addr().unwrap().port();
        let reference = Reference::parse(&format!(
            "oci://127.0.0.1:{}/ns/p:1",
            reg.local_addr().unwrap().port()
        ))
        .unwrap();
        let registry = serve(reg, 3, move |head| {
            let close = "Content-Length: 0\r\nConnection: close\r\n\r\n";
            if !head.to_ascii_lowercase().contains("authorization: basic") {
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n{close}"
                )
            } else if head.starts_with("HEAD") {
                format!("HTTP/1.1 404 Not Found\r\n{close}")
            } else {
                format!(
                    "HTTP/1.1 202 Accepted\r\nLocation: http://127.0.0.2:{other_port}/upload?s=1\r\n{close}"
                )
            }
        });
        let elsewhere = serve(other, 1, |_| {
            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        });
        let mut client = Client::new(&reference, false).unwrap();
        client.credentials = Credentials::Basic("dXNlcjpzZWNyZXQ=".into());
        block_on(client.push_blob("ns/p", WASM_LAYER_TYPE, b"\0asm")).unwrap();
        drop(client);
        let seen = registry.join().unwrap();
        assert!(
            seen[1].contains("dXNlcjpzZWNyZXQ="),
            "the registry gets them: {seen:?}"
        );
        let there = elsewhere.join().unwrap();
        assert_eq!(there.len(), 1);
        assert!(
            there[0].starts_with("PUT /upload?s=1&digest=sha256:")
                && !there[0].to_ascii_lowercase().contains("authorization"),
            "{there:?}"
        );
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(Duration::from_secs(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(1_798_761_599)),
            "2026-12-31T23:59:59Z"
        );
    }

    #[test]
    fn plugin_manifests_are_the_wasm_layout() {
        let layer_bytes = b"\0asm";
        let layer = Descriptor {
            media_type: WASM_LAYER_TYPE.into(),
            digest: sha256_digest(layer_bytes),
            size: 4,
            annotations: None,
        };
        let config = wasm_config(&layer.digest, "2026-01-01T00:00:00Z");
        let cfg: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(
            (cfg["architecture"].as_str(), cfg["os"].as_str()),
            (Some("wasm"), Some("wasip2"))
        );
        let desc = Descriptor {
            media_type: WASM_CONFIG_TYPE.into(),
            digest: sha256_digest(&config),
            size: config.len() as u64,
            annotations: None,
        };
        let bytes = plugin_manifest(desc, layer.clone(), "2026-01-01T00:00:00Z");
        let m: Manifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m.media_type.as_deref(), Some(MANIFEST_TYPE));
        assert_eq!(m.wasm_layer().unwrap(), &layer);
        let mut two = m.clone();
        two.layers.push(layer);
        assert!(two.wasm_layer().unwrap_err().contains("2 layers"));
        let mut image = m;
        image.config.media_type = "application/vnd.oci.image.config.v1+json".into();
        assert!(
            image
                .wasm_layer()
                .unwrap_err()
                .contains("not a WebAssembly")
        );
    }
}
