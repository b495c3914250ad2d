//! Settings as found (`Raw`, from a file or the environment) checked into
//! a usable `CloudConfig`: the auth method and what it needs, the domains
//! of user and project, the interface, TLS and the Keystone v3 URL. Errors
//! name the keys and variables to set, never a value.

use super::model::{Auth, CloudConfig, Domain, Interface, ProjectScope, User};
use super::secret::Secret;
use crate::cloud::{CloudError, Service};
use std::fmt;
use std::path::PathBuf;

/// Where a key came from, for messages.
pub(super) struct Ctx {
    pub(super) file: String,
    pub(super) cloud: String,
}

impl Ctx {
    pub(super) fn err(&self, what: impl fmt::Display) -> CloudError {
        CloudError::Config(format!("{} (cloud \"{}\"): {what}", self.file, self.cloud))
    }
}

/// The truth values openstacksdk accepts (`verify`, `insecure`, `OS_INSECURE`).
pub(super) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Settings as found, before checking they make a usable login.
#[derive(Default)]
pub(super) struct Raw {
    pub(super) auth_type: Option<String>,
    pub(super) auth_url: Option<String>,
    pub(super) username: Option<String>,
    pub(super) user_id: Option<String>,
    pub(super) password: Option<Secret>,
    pub(super) project_name: Option<String>,
    pub(super) project_id: Option<String>,
    pub(super) user_domain_name: Option<String>,
    pub(super) user_domain_id: Option<String>,
    pub(super) project_domain_name: Option<String>,
    pub(super) project_domain_id: Option<String>,
    pub(super) domain_name: Option<String>,
    pub(super) domain_id: Option<String>,
    pub(super) default_domain: Option<String>,
    pub(super) app_id: Option<String>,
    pub(super) app_name: Option<String>,
    pub(super) app_secret: Option<Secret>,
    pub(super) token: Option<Secret>,
    pub(super) region: Option<String>,
    pub(super) interface: Option<String>,
    pub(super) cacert: Option<String>,
    pub(super) verify: Option<bool>,
    pub(super) network_endpoint_override: Option<String>,
    pub(super) load_balancer_endpoint_override: Option<String>,
}

impl Raw {
    fn domain(&self, id: &Option<String>, name: &Option<String>) -> Option<Domain> {
        // openstacksdk: specific keys first, then `domain_*` for both user
        // and project, then `default_domain` (an id).
        id.clone()
            .map(Domain::Id)
            .or_else(|| name.clone().map(Domain::Name))
            .or_else(|| self.domain_id.clone().map(Domain::Id))
            .or_else(|| self.domain_name.clone().map(Domain::Name))
            .or_else(|| self.default_domain.clone().map(Domain::Id))
    }

    fn user(&self, ctx: &Ctx) -> Result<Option<User>, CloudError> {
        if let Some(id) = &self.user_id {
            return Ok(Some(User::Id(id.clone())));
        }
        let Some(name) = &self.username else {
            return Ok(None);
        };
        let domain = self
            .domain(&self.user_domain_id, &self.user_domain_name)
            .ok_or_else(|| {
                ctx.err("a user given by name needs its domain: set user_domain_name or user_domain_id (OS_USER_DOMAIN_NAME / OS_USER_DOMAIN_ID)")
            })?;
        Ok(Some(User::Name {
            name: name.clone(),
            domain,
        }))
    }

    fn project(&self, ctx: &Ctx) -> Result<ProjectScope, CloudError> {
        if let Some(id) = &self.project_id {
            return Ok(ProjectScope::Id(id.clone()));
        }
        let Some(name) = &self.project_name else {
            return Err(ctx.err(
                "no project: set project_name or project_id (OS_PROJECT_NAME / OS_PROJECT_ID); kuryr6 needs a project-scoped token",
            ));
        };
        let domain = self
            .domain(&self.project_domain_id, &self.project_domain_name)
            .ok_or_else(|| {
                ctx.err("a project given by name needs its domain: set project_domain_name or project_domain_id (OS_PROJECT_DOMAIN_NAME / OS_PROJECT_DOMAIN_ID)")
            })?;
        Ok(ProjectScope::Name {
            name: name.clone(),
            domain,
        })
    }

    pub(super) fn resolve(
        self,
        name: Option<String>,
        source: String,
        ctx: &Ctx,
    ) -> Result<CloudConfig, CloudError> {
        let auth_type = match self.auth_type.as_deref() {
            Some(t) => t.to_ascii_lowercase(),
            // Like the CLI with OS_AUTH_TYPE unset, but a lone token or
            // application credential is clear enough to infer.
            None if self.password.is_none()
                && (self.app_id.is_some() || self.app_name.is_some()) =>
            {
                "v3applicationcredential".into()
            }
            None if self.password.is_none() && self.token.is_some() => "token".into(),
            None => "password".into(),
        };
        let auth = match auth_type.as_str() {
            "password" | "v3password" => {
                let user = self.user(ctx)?.ok_or_else(|| {
                    ctx.err("password login needs username or user_id (OS_USERNAME / OS_USER_ID)")
                })?;
                let password = self
                    .password
                    .clone()
                    .ok_or_else(|| ctx.err("password login needs a password (auth.password in clouds.yaml or secure.yaml, or OS_PASSWORD)"))?;
                Auth::Password {
                    user,
                    password,
                    project: self.project(ctx)?,
                }
            }
            "v3applicationcredential" | "applicationcredential" | "application_credential" => {
                let secret = self.app_secret.clone().ok_or_else(|| {
                    ctx.err("application credential login needs application_credential_secret (OS_APPLICATION_CREDENTIAL_SECRET)")
                })?;
                if self.app_id.is_none() && self.app_name.is_none() {
                    return Err(ctx.err(
                        "application credential login needs application_credential_id or application_credential_name",
                    ));
                }
                let user = if self.app_id.is_none() {
                    Some(self.user(ctx)?.ok_or_else(|| {
                        ctx.err("an application credential given by name needs its user (username + user domain, or user_id)")
                    })?)
                } else {
                    None
                };
                Auth::ApplicationCredential {
                    id: self.app_id.clone(),
                    name: self.app_name.clone(),
                    user,
                    secret,
                }
            }
            "token" | "v3token" => {
                let token = self
                    .token
                    .clone()
                    .ok_or_else(|| ctx.err("token login needs a token (auth.token or OS_TOKEN)"))?;
                Auth::Token {
                    token,
                    project: self.project(ctx)?,
                }
            }
            other => {
                return Err(ctx.err(format!(
                    "auth_type \"{other}\" is not supported (supported: password, v3applicationcredential, token)"
                )));
            }
        };
        let auth_url = self
            .auth_url
            .as_deref()
            .ok_or_else(|| ctx.err("no auth_url (auth.auth_url or OS_AUTH_URL)"))?;
        let auth_url = keystone_v3(auth_url)
            .ok_or_else(|| ctx.err("auth_url must be an http:// or https:// URL"))?;
        let interface = match self.interface.as_deref() {
            None => Interface::Public,
            Some(text) => Interface::parse(text).ok_or_else(|| {
                ctx.err(format!(
                    "interface \"{text}\" is not one of public, internal, admin"
                ))
            })?,
        };
        Ok(CloudConfig {
            name,
            source,
            auth_url,
            auth,
            region: self.region,
            interface,
            cacert: self.cacert.map(PathBuf::from),
            verify_tls: self.verify.unwrap_or(true),
            endpoint_overrides: [
                (Service::Network, self.network_endpoint_override),
                (Service::LoadBalancer, self.load_balancer_endpoint_override),
            ]
            .into_iter()
            .filter_map(|(service, url)| Some((service, url?.trim_end_matches('/').to_string())))
            .collect(),
        })
    }
}

/// Normalises an auth URL to Keystone's v3 base: `http://h:5000`,
/// `http://h:5000/`, `http://h/identity/v3/` → `…/v3`. A `/v2.0` suffix is
/// replaced, since only v3 exists today. `None` for a non-HTTP URL.
pub(super) fn keystone_v3(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    let mut base = url.trim_end_matches('/');
    for suffix in ["/v3", "/v2.0"] {
        if let Some(stripped) = base.strip_suffix(suffix) {
            base = stripped;
            break;
        }
    }
    Some(format!("{base}/v3"))
}
