//! A cloud fully resolved: how to log in (`Auth`) and which endpoints to
//! use. What the client consumes; discovery and checks produce it.

use super::Secret;
use crate::cloud::Service;
use std::path::PathBuf;

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
    pub endpoint_overrides: Vec<(Service, String)>,
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
