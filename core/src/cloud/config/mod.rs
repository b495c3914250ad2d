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
//!
//! Rooms: `discovery` (which files, which cloud), `yaml` (reading and
//! merging clouds.yaml/secure.yaml), `env` (the `OS_*` variables),
//! `resolve` (checking raw settings into a `CloudConfig`), `model` (the
//! resolved config) and `secret` (the redacting wrapper). They depend in one
//! direction: discovery → yaml, env → resolve → model → secret.

mod discovery;
mod env;
mod model;
mod resolve;
mod secret;
mod yaml;

pub use discovery::Discovery;
pub use model::{Auth, CloudConfig, Domain, Interface, ProjectScope, User};
pub use secret::Secret;

#[cfg(test)]
mod tests;
