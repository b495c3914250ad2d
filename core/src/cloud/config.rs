//! Where credentials come from, the way the `openstack` CLI finds them.
//!
//! A cloud named by `--os-cloud` or `OS_CLOUD` is read from the first
//! `clouds.yaml` found (`OS_CLIENT_CONFIG_FILE`, `./`, the user's
//! `~/.config/openstack/`, `/etc/openstack/`) with the same cloud of the first
//! `secure.yaml` (`OS_CLIENT_SECURE_FILE`, same places) merged over it. With no
//! cloud named, the plain `OS_*` variables describe one; failing that, a cloud
//! called `openstack` in `clouds.yaml` is used, as openstacksdk does.
//!
//! Discovery reads an explicit [`Discovery`] (variables, working directory,
//! system directory) rather than the process environment, so tests never
//! touch global state. Secrets live in [`Secret`], whose `Debug` and
//! `Display` print `***`; no error message built here quotes a value from a
//! file, only names of keys, files and clouds.

use super::CloudError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use yaml_serde::{Mapping, Value};

/// A password, application-credential secret or token. Never printed: both
/// `Debug` and `Display` show `***`; [`Secret::expose`] is the one way out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Keystone domain given by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    Id(String),
    Name(String),
}

/// A Keystone user given by id (unique) or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    Id(String),
    Name { name: String, domain: Domain },
}

/// The project a password or token login is scoped to. Application
/// credentials carry their own scope and have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    Id(String),
    Name { name: String, domain: Domain },
}

/// How to get a token. Invariant: every variant holds what Keystone needs for
/// a project-scoped token (password and token logins always have a project).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Password {
        user: User,
        password: Secret,
        project: ProjectScope,
    },
    /// By id alone, or by name together with its owner.
    ApplicationCredential {
        id: Option<String>,
        name: Option<String>,
        user: Option<User>,
        secret: Secret,
    },
    Token {
        token: Secret,
        project: ProjectScope,
    },
}

/// Which catalog endpoint of a service to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    /// Accepts the names openstacksdk accepts (`public`, `publicURL`, …).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().trim_end_matches("url") {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// One cloud, fully resolved: enough to authenticate and pick endpoints.
/// `Debug` is safe to print: secrets show as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// The cloud's name in clouds.yaml, or `None` for `OS_*` variables.
    pub name: Option<String>,
    /// Where it came from, for messages ("clouds.yaml /etc/…", "OS_* variables").
    pub source: String,
    /// Keystone v3 base, always ending in `/v3` (no trailing slash).
    pub auth_url: String,
    pub auth: Auth,
    pub region: Option<String>,
    pub interface: Interface,
    /// Extra CA bundle (PEM) to trust besides the system roots.
    pub cacert: Option<PathBuf>,
    /// TLS certificates are verified unless this is false (`verify: false`,
    /// `insecure: true`, `OS_INSECURE=true` or the caller's explicit switch).
    pub verify_tls: bool,
    /// Endpoints used instead of the catalog's (`network_endpoint_override`,
    /// `load_balancer_endpoint_override` in clouds.yaml, as openstacksdk
    /// reads them): for clouds behind a proxy, and for fault-injection tests.
    pub endpoint_overrides: Vec<(super::Service, String)>,
}

impl CloudConfig {
    /// Short label for messages: `cloud "name"` or `the OS_* variables`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("cloud \"{name}\""),
            None => "the OS_* environment variables".into(),
        }
    }
}

/// What discovery looks at. Build it from the process with
/// [`Discovery::from_process`], or by hand in tests.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Environment variables (only `OS_*`, `HOME` and `XDG_CONFIG_HOME` are read).
    pub vars: BTreeMap<String, String>,
    /// Directory searched first for clouds.yaml and secure.yaml.
    pub cwd: PathBuf,
    /// The system-wide directory, `/etc/openstack` outside tests.
    pub system_dir: PathBuf,
}

impl Discovery {
    pub fn from_process() -> Self {
        Discovery {
            vars: std::env::vars().collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            system_dir: PathBuf::from("/etc/openstack"),
        }
    }

    fn var(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Candidate paths for `base` (`clouds` or `secure`), in priority order.
    pub fn candidates(&self, base: &str, override_var: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(file) = self.var(override_var) {
            out.push(PathBuf::from(file));
        }
        let mut dirs = vec![self.cwd.clone()];
        if let Some(config) = self.var("XDG_CONFIG_HOME") {
            dirs.push(Path::new(config).join("openstack"));
        } else if let Some(home) = self.var("HOME") {
            dirs.push(Path::new(home).join(".config/openstack"));
        }
        dirs.push(self.system_dir.clone());
        for dir in dirs {
            for ext in ["yaml", "yml"] {
                out.push(dir.join(format!("{base}.{ext}")));
            }
        }
        out
    }

    fn first_existing(&self, base: &str, override_var: &str) -> Option<PathBuf> {
        self.candidates(base, override_var)
            .into_iter()
            .find(|p| p.is_file())
    }

    /// Resolves the cloud to use. `cloud` is `--os-cloud`; `None` falls back
    /// to `OS_CLOUD`, then to the `OS_*` variables, then to a cloud named
    /// `openstack`.
    pub fn load(&self, cloud: Option<&str>) -> Result<CloudConfig, CloudError> {
        let named = cloud
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .or_else(|| self.var("OS_CLOUD").map(str::to_owned));
        match named {
            Some(name) => self.load_named(&name),
            None if self.var("OS_AUTH_URL").is_some() => self.load_env(),
            None => {
                let clouds = self.first_existing("clouds", "OS_CLIENT_CONFIG_FILE");
                let known = match &clouds {
                    Some(path) => known_clouds(&read_yaml(path, "clouds.yaml")?),
                    None => Vec::new(),
                };
                if known.iter().any(|c| c == "openstack") {
                    return self.load_named("openstack");
                }
                let hint = match &clouds {
                    Some(path) => format!("; {} knows: {}", path.display(), list_or_none(&known)),
                    None => "; no clouds.yaml was found".into(),
                };
                Err(CloudError::Config(format!(
                    "no cloud selected: pass --os-cloud NAME, set OS_CLOUD, or set OS_AUTH_URL and the other OS_* variables{hint}"
                )))
            }
        }
    }

    fn load_named(&self, name: &str) -> Result<CloudConfig, CloudError> {
        let Some(path) = self.first_existing("clouds", "OS_CLIENT_CONFIG_FILE") else {
            let looked: Vec<String> = self
                .candidates("clouds", "OS_CLIENT_CONFIG_FILE")
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            return Err(CloudError::Config(format!(
                "cloud \"{name}\" was asked for but no clouds.yaml exists (looked at {})",
                looked.join(", ")
            )));
        };
        let doc = read_yaml(&path, "clouds.yaml")?;
        let known = known_clouds(&doc);
        let Some(entry) = cloud_entry(&doc, name, &path)? else {
            return Err(CloudError::Config(format!(
                "{}: no cloud named \"{name}\"; known clouds: {}",
                path.display(),
                list_or_none(&known)
            )));
        };
        let mut entry = entry.clone();
        let mut source = format!("clouds.yaml {}", path.display());
        if let Some(secure_path) = self.first_existing("secure", "OS_CLIENT_SECURE_FILE") {
            let secure = read_yaml(&secure_path, "secure.yaml")?;
            if let Some(over) = cloud_entry(&secure, name, &secure_path)? {
                merge(&mut entry, over);
                source.push_str(&format!(" + secure.yaml {}", secure_path.display()));
            }
        }
        let ctx = Ctx {
            file: path.display().to_string(),
            cloud: name.to_owned(),
        };
        let mut raw = Raw::from_yaml(&entry, &ctx)?;
        // The CLI lets OS_PASSWORD supply a password a clouds.yaml leaves out;
        // only missing secrets are filled, nothing is overridden.
        if raw.password.is_none() {
            raw.password = self.var("OS_PASSWORD").map(Secret::new);
        }
        if raw.app_secret.is_none() {
            raw.app_secret = self
                .var("OS_APPLICATION_CREDENTIAL_SECRET")
                .map(Secret::new);
        }
        raw.resolve(Some(name.to_owned()), source, &ctx)
    }

    fn load_env(&self) -> Result<CloudConfig, CloudError> {
        let v = |k: &str| self.var(k).map(str::to_owned);
        let raw = Raw {
            auth_type: v("OS_AUTH_TYPE"),
            auth_url: v("OS_AUTH_URL"),
            username: v("OS_USERNAME"),
            user_id: v("OS_USER_ID"),
            password: v("OS_PASSWORD").map(Secret::new),
            project_name: v("OS_PROJECT_NAME").or_else(|| v("OS_TENANT_NAME")),
            project_id: v("OS_PROJECT_ID").or_else(|| v("OS_TENANT_ID")),
            user_domain_name: v("OS_USER_DOMAIN_NAME"),
            user_domain_id: v("OS_USER_DOMAIN_ID"),
            project_domain_name: v("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: v("OS_PROJECT_DOMAIN_ID"),
            domain_name: v("OS_DOMAIN_NAME"),
            domain_id: v("OS_DOMAIN_ID"),
            default_domain: v("OS_DEFAULT_DOMAIN"),
            app_id: v("OS_APPLICATION_CREDENTIAL_ID"),
            app_name: v("OS_APPLICATION_CREDENTIAL_NAME"),
            app_secret: v("OS_APPLICATION_CREDENTIAL_SECRET").map(Secret::new),
            token: v("OS_TOKEN").map(Secret::new),
            region: v("OS_REGION_NAME"),
            interface: v("OS_INTERFACE").or_else(|| v("OS_ENDPOINT_TYPE")),
            cacert: v("OS_CACERT"),
            network_endpoint_override: None,
            load_balancer_endpoint_override: None,
            verify: match v("OS_INSECURE") {
                Some(text) => Some(!parse_bool(&text).ok_or_else(|| {
                    CloudError::Config("OS_INSECURE must be true or false".into())
                })?),
                None => None,
            },
        };
        let ctx = Ctx {
            file: "environment".into(),
            cloud: "OS_* variables".into(),
        };
        raw.resolve(None, "OS_* environment variables".into(), &ctx)
    }
}

/// Where a key came from, for messages.
struct Ctx {
    file: String,
    cloud: String,
}

impl Ctx {
    fn err(&self, what: impl fmt::Display) -> CloudError {
        CloudError::Config(format!("{} (cloud \"{}\"): {what}", self.file, self.cloud))
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

/// Reads and parses a YAML file. A syntax error names the file and position;
/// libyaml's messages describe the grammar, not the content, so no value leaks.
fn read_yaml(path: &Path, what: &str) -> Result<Value, CloudError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CloudError::Config(format!("{what} {}: cannot read: {e}", path.display())))?;
    yaml_serde::from_str::<Value>(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        CloudError::Config(format!("{what} {} is not valid YAML{at}", path.display()))
    })
}

fn known_clouds(doc: &Value) -> Vec<String> {
    let mut names: Vec<String> = doc
        .get("clouds")
        .and_then(Value::as_mapping)
        .map(|m| m.keys().filter_map(scalar).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The mapping of cloud `name` under `clouds:`, or `None` when absent.
fn cloud_entry<'a>(
    doc: &'a Value,
    name: &str,
    path: &Path,
) -> Result<Option<&'a Value>, CloudError> {
    let clouds = match doc.get("clouds") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            return Err(CloudError::Config(format!(
                "{}: `clouds` must be a mapping of cloud names to settings",
                path.display()
            )));
        }
    };
    match clouds.get(name) {
        None => Ok(None),
        Some(v @ Value::Mapping(_)) => Ok(Some(v)),
        Some(_) => Err(CloudError::Config(format!(
            "{}: cloud \"{name}\" must be a mapping of settings",
            path.display()
        ))),
    }
}

/// Deep merge: mappings merge key by key, anything else in `over` wins.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A scalar as text (YAML reads `project_id: 1234` as a number).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Settings as found, before checking they make a usable login.
#[derive(Default)]
struct Raw {
    auth_type: Option<String>,
    auth_url: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
    password: Option<Secret>,
    project_name: Option<String>,
    project_id: Option<String>,
    user_domain_name: Option<String>,
    user_domain_id: Option<String>,
    project_domain_name: Option<String>,
    project_domain_id: Option<String>,
    domain_name: Option<String>,
    domain_id: Option<String>,
    default_domain: Option<String>,
    app_id: Option<String>,
    app_name: Option<String>,
    app_secret: Option<Secret>,
    token: Option<Secret>,
    region: Option<String>,
    interface: Option<String>,
    cacert: Option<String>,
    verify: Option<bool>,
    network_endpoint_override: Option<String>,
    load_balancer_endpoint_override: Option<String>,
}

impl Raw {
    fn from_yaml(entry: &Value, ctx: &Ctx) -> Result<Self, CloudError> {
        let empty = Mapping::new();
        let top = entry.as_mapping().unwrap_or(&empty);
        let auth = match top.get("auth") {
            None | Some(Value::Null) => &empty,
            Some(Value::Mapping(m)) => m,
            Some(_) => return Err(ctx.err("`auth` must be a mapping")),
        };
        if top.get("profile").is_some() {
            return Err(ctx.err(
                "`profile` (vendor defaults from clouds-public.yaml) is not supported; write the settings into the cloud",
            ));
        }
        let text = |m: &Mapping, key: &str, prefix: &str| -> Result<Option<String>, CloudError> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match scalar(v) {
                    Some(s) if s.is_empty() => Ok(None),
                    Some(s) => Ok(Some(s)),
                    None => Err(ctx.err(format!("`{prefix}{key}` must be a string"))),
                },
            }
        };
        let a = |key: &str| text(auth, key, "auth.");
        let t = |key: &str| text(top, key, "");
        let boolean = |key: &str| -> Result<Option<bool>, CloudError> {
            match top.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(v) => scalar(v)
                    .as_deref()
                    .and_then(parse_bool)
                    .map(Some)
                    .ok_or_else(|| ctx.err(format!("`{key}` must be true or false"))),
            }
        };
        // `verify` may also be a CA path (requests' convention).
        let (verify, verify_path) = match top.get("verify") {
            Some(Value::String(s)) if parse_bool(s).is_none() => (None, Some(s.clone())),
            _ => (boolean("verify")?, None),
        };
        let insecure = boolean("insecure")?;
        let region = match t("region_name")? {
            Some(r) => Some(r),
            None => match top.get("regions") {
                Some(Value::Sequence(list)) if list.len() == 1 => match &list[0] {
                    Value::Mapping(m) => text(m, "name", "regions[0].")?,
                    v => scalar(v),
                },
                Some(Value::Sequence(list)) if list.len() > 1 => {
                    return Err(ctx.err(
                        "`regions` lists several regions; choose one with `region_name` (or OS_REGION_NAME)",
                    ));
                }
                _ => None,
            },
        };
        Ok(Raw {
            auth_type: t("auth_type")?,
            auth_url: a("auth_url")?,
            username: a("username")?,
            user_id: a("user_id")?,
            password: a("password")?.map(Secret::new),
            project_name: a("project_name")?.or(a("tenant_name")?),
            project_id: a("project_id")?.or(a("tenant_id")?),
            user_domain_name: a("user_domain_name")?,
            user_domain_id: a("user_domain_id")?,
            project_domain_name: a("project_domain_name")?,
            project_domain_id: a("project_domain_id")?,
            domain_name: a("domain_name")?,
            domain_id: a("domain_id")?,
            default_domain: a("default_domain")?.or(t("default_domain")?),
            app_id: a("application_credential_id")?,
            app_name: a("application_credential_name")?,
            app_secret: a("application_credential_secret")?.map(Secret::new),
            token: a("token")?.map(Secret::new),
            region,
            interface: t("interface")?.or(t("endpoint_type")?),
            cacert: t("cacert")?.or(verify_path),
            network_endpoint_override: t("network_endpoint_override")?,
            load_balancer_endpoint_override: t("load_balancer_endpoint_override")?,
            verify: match (verify, insecure) {
                (Some(false), _) | (_, Some(true)) => Some(false),
                (Some(true), _) | (_, Some(false)) => Some(true),
                (None, None) => None,
            },
        })
    }

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

    fn resolve(
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
                (super::Service::Network, self.network_endpoint_override),
                (
                    super::Service::LoadBalancer,
                    self.load_balancer_endpoint_override,
                ),
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
fn keystone_v3(url: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            for d in ["cwd", "home/.config/openstack", "etc"] {
                fs::create_dir_all(dir.path().join(d)).unwrap();
            }
            Fixture { dir }
        }
        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.path(rel);
            fs::write(&p, text).unwrap();
            p
        }
        fn discovery(&self, vars: &[(&str, &str)]) -> Discovery {
            let mut map: BTreeMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            map.insert("HOME".into(), self.path("home").display().to_string());
            Discovery {
                vars: map,
                cwd: self.path("cwd"),
                system_dir: self.path("etc"),
            }
        }
    }

    const CLOUDS: &str = r#"
clouds:
  local:
    auth:
      auth_url: http://127.0.0.1:5000/v3/
      username: admin
      project_name: admin
      user_domain_id: default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
  other:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example:5000
      application_credential_id: abc
      application_credential_secret: s3cret-app
    verify: false
"#;

    #[test]
    fn clouds_yaml_merged_with_secure_yaml() {
        let f = Fixture::new();
        f.write("home/.config/openstack/clouds.yaml", CLOUDS);
        f.write(
            "etc/secure.yaml",
            "clouds:\n  local:\n    auth:\n      password: hunter2-secret\n",
        );
        let cfg = f.discovery(&[("OS_CLOUD", "local")]).load(None).unwrap();
        assert_eq!(cfg.name.as_deref(), Some("local"));
        assert_eq!(cfg.auth_url, "http://127.0.0.1:5000/v3");
        assert_eq!(cfg.region.as_deref(), Some("RegionOne"));
        assert_eq!(cfg.interface, Interface::Internal);
        assert!(cfg.verify_tls);
        assert!(cfg.source.contains("secure.yaml"));
        match &cfg.auth {
            Auth::Password {
                user,
                password,
                project,
            } => {
                assert_eq!(
                    user,
                    &User::Name {
                        name: "admin".into(),
                        domain: Domain::Id("default".into())
                    }
                );
                assert_eq!(password.expose(), "hunter2-secret");
                assert_eq!(
                    project,
                    &ProjectScope::Name {
                        name: "admin".into(),
                        domain: Domain::Name("Default".into())
                    }
                );
            }
            other => panic!("unexpected auth {other:?}"),
        }
        // Redaction: nothing that prints the config shows the password.
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("***"));
    }

    #[test]
    fn cli_argument_beats_os_cloud_and_app_credentials_parse() {
        let f = Fixture::new();
        f.write("cwd/clouds.yaml", CLOUDS);
        let cfg = f
            .discovery(&[("OS_CLOUD", "local")])
            .load(Some("other"))
            .unwrap();
        assert!(!cfg.verify_tls);
        assert_eq!(cfg.auth_url, "https://keystone.example:5000/v3");
        assert!(matches!(
            &cfg.auth,
            Auth::ApplicationCredential { id: Some(id), user: None, .. } if id == "abc"
        ));
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn search_order_env_file_then_cwd_then_home_then_etc() {
        let f = Fixture::new();
        let one =
            "clouds:\n  c:\n    auth: {auth_url: 'http://127.0.0.1:1', token: t, project_id: p1}\n";
        let two =
            "clouds:\n  c:\n    auth: {auth_url: 'http://127.0.0.1:2', token: t, project_id: p2}\n";
        f.write("etc/clouds.yaml", one);
        let d = f.discovery(&[]);
        assert_eq!(d.load(Some("c")).unwrap().auth_url, "http://127.0.0.1:1/v3");
        f.write("home/.config/openstack/clouds.yml", two);
        assert_eq!(d.load(Some("c")).unwrap().auth_url, "http://127.0.0.1:2/v3");
        f.write("cwd/clouds.yaml", one);
        assert_eq!(d.load(Some("c")).unwrap().auth_url, "http://127.0.0.1:1/v3");
        let explicit = f.write("explicit.yaml", two);
        let d = f.discovery(&[("OS_CLIENT_CONFIG_FILE", explicit.to_str().unwrap())]);
        let cfg = d.load(Some("c")).unwrap();
        assert_eq!(cfg.auth_url, "http://127.0.0.1:2/v3");
        assert!(
            matches!(cfg.auth, Auth::Token { project: ProjectScope::Id(ref p), .. } if p == "p2")
        );
    }

    #[test]
    fn unknown_cloud_names_file_and_known_clouds() {
        let f = Fixture::new();
        let path = f.write("cwd/clouds.yaml", CLOUDS);
        let err = f.discovery(&[]).load(Some("nope")).unwrap_err();
        let CloudError::Config(msg) = err else {
            panic!("not a config error")
        };
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("\"nope\""), "{msg}");
        assert!(msg.contains("local, other"), "{msg}");
    }

    #[test]
    fn broken_yaml_is_a_config_error_without_content() {
        let f = Fixture::new();
        let path = f.write(
            "cwd/clouds.yaml",
            "clouds:\n  local:\n    auth:\n      password: \"hunter2\n    x: [\n",
        );
        let err = f.discovery(&[]).load(Some("local")).unwrap_err();
        let CloudError::Config(msg) = err else {
            panic!("not a config error")
        };
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("not valid YAML"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        // A wrong type names the key, never the value.
        f.write(
            "cwd/clouds.yaml",
            "clouds:\n  local:\n    auth:\n      auth_url: http://127.0.0.1:5000\n      password: [hunter2]\n",
        );
        let msg = f
            .discovery(&[])
            .load(Some("local"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("auth.password"), "{msg}");
        assert!(msg.contains("\"local\""), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn endpoint_overrides_replace_the_catalog() {
        let f = Fixture::new();
        f.write(
            "cwd/clouds.yaml",
            "clouds:\n  local:\n    auth:\n      auth_url: http://127.0.0.1:5000\n      username: u\n      password: p\n      project_name: x\n      user_domain_name: Default\n      project_domain_name: Default\n    network_endpoint_override: http://127.0.0.1:19999/\n",
        );
        let cfg = f.discovery(&[]).load(Some("local")).unwrap();
        assert_eq!(
            cfg.endpoint_overrides,
            vec![(
                crate::cloud::Service::Network,
                "http://127.0.0.1:19999".to_string()
            )]
        );
    }

    #[test]
    fn plain_environment() {
        let f = Fixture::new();
        let d = f.discovery(&[
            ("OS_AUTH_URL", "http://127.0.0.1:5000"),
            ("OS_USERNAME", "demo"),
            ("OS_PASSWORD", "pw-from-env"),
            ("OS_PROJECT_ID", "0123"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_REGION_NAME", "RegionTwo"),
            ("OS_INSECURE", "true"),
            ("OS_CACERT", "/tmp/ca.pem"),
        ]);
        let cfg = d.load(None).unwrap();
        assert_eq!(cfg.name, None);
        assert_eq!(cfg.region.as_deref(), Some("RegionTwo"));
        assert_eq!(cfg.interface, Interface::Public);
        assert!(!cfg.verify_tls);
        assert_eq!(cfg.cacert, Some(PathBuf::from("/tmp/ca.pem")));
        assert!(
            matches!(cfg.auth, Auth::Password { project: ProjectScope::Id(ref p), .. } if p == "0123")
        );
        assert!(!format!("{cfg:?}").contains("pw-from-env"));

        let token = f
            .discovery(&[
                ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
                ("OS_AUTH_TYPE", "v3token"),
                ("OS_TOKEN", "tok-secret"),
                ("OS_PROJECT_NAME", "p"),
                ("OS_PROJECT_DOMAIN_ID", "default"),
            ])
            .load(None)
            .unwrap();
        assert!(matches!(token.auth, Auth::Token { .. }));
        assert!(!format!("{token:?}").contains("tok-secret"));
    }

    #[test]
    fn missing_pieces_are_explained() {
        let f = Fixture::new();
        let msg = f
            .discovery(&[
                ("OS_AUTH_URL", "http://127.0.0.1:5000"),
                ("OS_USERNAME", "u"),
            ])
            .load(None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("domain"), "{msg}");
        let msg = f
            .discovery(&[
                ("OS_AUTH_URL", "http://127.0.0.1:5000"),
                ("OS_USERNAME", "u"),
                ("OS_USER_DOMAIN_ID", "default"),
                ("OS_PROJECT_ID", "p"),
            ])
            .load(None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("password"), "{msg}");
        let msg = f
            .discovery(&[
                ("OS_AUTH_URL", "http://127.0.0.1:5000"),
                ("OS_AUTH_TYPE", "v3oidcpassword"),
            ])
            .load(None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not supported"), "{msg}");
        // Nothing selected at all.
        let msg = f.discovery(&[]).load(None).unwrap_err().to_string();
        assert!(msg.contains("no cloud selected"), "{msg}");
    }

    #[test]
    fn os_password_fills_a_password_clouds_yaml_leaves_out() {
        let f = Fixture::new();
        f.write("cwd/clouds.yaml", CLOUDS);
        let cfg = f
            .discovery(&[("OS_PASSWORD", "from-env")])
            .load(Some("local"))
            .unwrap();
        assert!(
            matches!(cfg.auth, Auth::Password { ref password, .. } if password.expose() == "from-env")
        );
    }

    #[test]
    fn cloud_named_openstack_is_the_default() {
        let f = Fixture::new();
        f.write(
            "cwd/clouds.yaml",
            "clouds:\n  openstack:\n    auth: {auth_url: 'http://127.0.0.1:5000', token: t, project_id: p}\n    insecure: true\n",
        );
        let cfg = f.discovery(&[]).load(None).unwrap();
        assert_eq!(cfg.name.as_deref(), Some("openstack"));
        assert!(!cfg.verify_tls);
    }

    #[test]
    fn auth_urls_normalise_to_v3() {
        assert_eq!(keystone_v3("http://h:5000").unwrap(), "http://h:5000/v3");
        assert_eq!(
            keystone_v3("http://h/identity/v3/").unwrap(),
            "http://h/identity/v3"
        );
        assert_eq!(keystone_v3("https://h/v2.0").unwrap(), "https://h/v3");
        assert_eq!(keystone_v3("h:5000"), None);
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("pw");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
    }
}
