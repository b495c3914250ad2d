//! Which cloud a pipeline converges: its `[cloud]` table (`CloudRef`),
//! and the key a command resolves from it and the command line
//! (`CloudKey`), with the precedence documented in README ("A fleet of
//! sites"). Used by loading (to check the table), by single-pipeline
//! commands and by the fleet.

use crate::cloud::CloudError;
use crate::cloud::config::{CloudConfig, Interface};
use crate::diag::{Code, Diagnostic};
use crate::pipeline::RawPipeline;

/// A pipeline's `[cloud]` table: which `clouds.yaml` entry it converges,
/// optionally narrowed to a region and an endpoint interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloudRef {
    pub name: String,
    pub region: Option<String>,
    pub interface: Option<String>,
}

impl CloudRef {
    /// The file's `[cloud]` table, checked: `name` present and non-empty,
    /// `interface` one of public, internal, admin.
    pub fn read(raw: &RawPipeline) -> Result<Option<CloudRef>, Vec<Diagnostic>> {
        let Some(table) = &raw.cloud else {
            return Ok(None);
        };
        let t = table.get_ref();
        let mut diags = Vec::new();
        let name = match &t.name {
            Some(n) if !n.get_ref().trim().is_empty() => n.get_ref().clone(),
            Some(n) => {
                diags.push(
                    Diagnostic::new(Code::E002, "`[cloud] name` is empty")
                        .help("name the clouds.yaml entry this site converges, e.g. `name = \"site-1\"`")
                        .at(Some(n.span())),
                );
                String::new()
            }
            None => {
                diags.push(
                    Diagnostic::new(Code::E002, "[cloud] is missing `name`")
                        .help("name the clouds.yaml entry this site converges, e.g. `name = \"site-1\"`")
                        .at(Some(table.span())),
                );
                String::new()
            }
        };
        if let Some(i) = &t.interface
            && Interface::parse(i.get_ref()).is_none()
        {
            diags.push(
                Diagnostic::new(
                    Code::E025,
                    format!(
                        "`[cloud] interface` \"{}\" is not an endpoint interface",
                        i.get_ref()
                    ),
                )
                .help("use one of public, internal, admin")
                .at(Some(i.span())),
            );
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        Ok(Some(CloudRef {
            name,
            region: t.region.as_ref().map(|r| r.get_ref().clone()),
            interface: t.interface.as_ref().map(|i| i.get_ref().clone()),
        }))
    }
}

/// The cloud a site uses, after the command line had its say. Sites with
/// equal keys share one login (one token, one HTTP client).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloudKey {
    /// clouds.yaml entry; `None`: the default (OS_CLOUD, then the OS_* variables).
    pub name: Option<String>,
    pub region: Option<String>,
    pub interface: Option<String>,
}

impl CloudKey {
    /// The precedence (README, "A fleet of sites"): for a single pipeline,
    /// `--os-cloud` / `OS_CLOUD` (`command_line`) beat the file's `[cloud]`,
    /// so one pipeline can be pointed elsewhere; in a fleet, the file's
    /// `[cloud]` beats them, and they name the cloud of sites without one.
    /// Region and interface come from `[cloud]` only when its name is used.
    pub fn resolve(file: Option<&CloudRef>, command_line: Option<&str>, fleet: bool) -> CloudKey {
        let command_line = command_line.filter(|c| !c.is_empty());
        match (file, command_line) {
            (Some(f), Some(c)) if !fleet && c != f.name => CloudKey {
                name: Some(c.to_string()),
                region: None,
                interface: None,
            },
            (Some(f), _) => CloudKey {
                name: Some(f.name.clone()),
                region: f.region.clone(),
                interface: f.interface.clone(),
            },
            (None, c) => CloudKey {
                name: c.map(str::to_string),
                region: None,
                interface: None,
            },
        }
    }

    /// For the summary: the entry name, with region/interface if narrowed.
    pub fn label(&self) -> String {
        let mut s = self.name.clone().unwrap_or_else(|| "OS_* variables".into());
        if let Some(r) = &self.region {
            s.push_str(&format!("/{r}"));
        }
        if let Some(i) = &self.interface {
            s.push_str(&format!(" ({i})"));
        }
        s
    }

    /// `[cloud] region / interface` over what clouds.yaml says.
    pub fn apply_to(&self, config: &mut CloudConfig) -> Result<(), CloudError> {
        if let Some(r) = &self.region {
            config.region = Some(r.clone());
        }
        if let Some(i) = &self.interface {
            config.interface = Interface::parse(i).ok_or_else(|| {
                CloudError::Config(format!(
                    "interface \"{i}\" is not one of public, internal, admin"
                ))
            })?;
        }
        Ok(())
    }
}
