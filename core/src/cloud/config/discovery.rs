//! Which cloud, from which files: the search for clouds.yaml and
//! secure.yaml, the choice between a named cloud, the `OS_*` variables and
//! the default cloud `openstack`, and the merge of secure.yaml over
//! clouds.yaml.

use super::env;
use super::model::CloudConfig;
use super::resolve::{Ctx, Raw};
use super::yaml::{cloud_entry, known_clouds, merge, read_yaml};
use crate::cloud::CloudError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
            None if self.var("OS_AUTH_URL").is_some() => env::load(|k| self.var(k)),
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
        env::fill_missing_secrets(&mut raw, |k| self.var(k));
        raw.resolve(Some(name.to_owned()), source, &ctx)
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}
