//! The real cloud: Keystone v3, Neutron and Octavia over HTTPS with reqwest.
//!
//! One client per cloud, shared by every task (`&self`). Its rooms:
//! - `auth`: the Keystone token (login, re-login once on 401, the
//!   catalog's endpoints) and the authenticated call every verb goes through;
//! - `http`: one request on the wire (retries, backoff, `Retry-After`,
//!   endpoint gates, pagination links, error mapping, request logs);
//! - `resources`: the `Cloud` verbs for Neutron and Octavia (URLs,
//!   envelopes, bulk creates, tag emulation).
//!
//! They depend in one direction: resources → auth → http.

mod auth;
mod http;
mod resources;

use super::CloudError;
use super::config::{CloudConfig, Discovery};
use auth::Session;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
            session: RwLock::new(Arc::new(Session::none())),
            relogin: tokio::sync::Mutex::new(()),
        };
        client.relogin(0).await?;
        if !config.verify_tls {
            eprintln!("{}", client.unverified_warning());
        }
        Ok(client)
    }

    /// The one warning a connection without TLS verification prints (as the
    /// `openstack` CLI's InsecureRequestWarning does), naming where it goes.
    fn unverified_warning(&self) -> String {
        let mut endpoints: Vec<String> = self.current().endpoints.values().cloned().collect();
        endpoints.sort();
        endpoints.insert(0, self.config.auth_url.clone());
        format!(
            "warning: TLS certificates are not verified for {} (--insecure, or insecure / verify: false in clouds.yaml): {}; anyone on the path can read the token and change answers",
            self.config.label(),
            endpoints.join(", ")
        )
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
}

#[cfg(test)]
mod tests;

#[cfg(all(test, feature = "cloud-tests"))]
mod live;
