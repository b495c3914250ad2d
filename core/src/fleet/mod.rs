//! Many sites in one command: `kuryr6 plan|run|destroy FILES…`.
//!
//! Every file is loaded, validated and run through its plugins, and the
//! cross-site policy judges them together (`load::load_many`), before any
//! site touches a cloud. Then the sites converge side by side (`run`),
//! bounded by `--parallel` and by a per-endpoint limit on requests in flight
//! (`cloud::gate`), and a summary says what happened to each (`summary`).
//! `shard` splits a fleet over machines without a scheduler.

pub mod run;
pub mod shard;
pub mod summary;

pub use run::{Connected, Connector, FleetOptions, Job, Site, converge};
pub use shard::Shard;
pub use summary::{SiteReport, Status, Summary};

use crate::cloud::config::Interface;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    const BASE: &str = "[pipeline]\nname = \"s\"\n[plan]\npod_cidr = \"fd10:0:0:1::/64\"\nservice_cidr = \"fd10:0:0:2::/112\"\n";

    fn load(extra: &str) -> Result<crate::load::Loaded, crate::load::Rejected> {
        crate::load::load_source(SourceFile::new("s.toml", format!("{BASE}{extra}")))
    }

    #[test]
    fn cloud_table_is_read_and_checked() {
        let l =
            load("[cloud]\nname = \"east\"\nregion = \"R2\"\ninterface = \"internal\"\n").unwrap();
        assert_eq!(
            l.cloud,
            Some(CloudRef {
                name: "east".into(),
                region: Some("R2".into()),
                interface: Some("internal".into())
            })
        );
        assert_eq!(load("").unwrap().cloud, None);
        let bad = load("[cloud]\nname = \"east\"\ninterface = \"private\"\n").unwrap_err();
        assert_eq!(bad.diagnostics[0].code, Code::E025);
        assert!(bad.diagnostics[0].message.contains("private"));
        let none = load("[cloud]\nregion = \"R2\"\n").unwrap_err();
        assert_eq!(none.diagnostics[0].code, Code::E002);
        let unknown = load("[cloud]\nname = \"east\"\nproject = \"x\"\n").unwrap_err();
        assert_eq!(unknown.diagnostics[0].code, Code::E001);
    }

    #[test]
    fn precedence_single_versus_fleet() {
        let f = CloudRef {
            name: "file".into(),
            region: Some("R2".into()),
            interface: None,
        };
        // Single pipeline: the command line wins, and drops the file's region.
        let k = CloudKey::resolve(Some(&f), Some("cli"), false);
        assert_eq!((k.name.as_deref(), k.region), (Some("cli"), None));
        // Fleet: the file wins.
        let k = CloudKey::resolve(Some(&f), Some("cli"), true);
        assert_eq!(
            (k.name.as_deref(), k.region.as_deref()),
            (Some("file"), Some("R2"))
        );
        // Nothing on the command line: the file.
        assert_eq!(
            CloudKey::resolve(Some(&f), None, false).name.as_deref(),
            Some("file")
        );
        // No [cloud]: the command line, or the default.
        assert_eq!(
            CloudKey::resolve(None, Some("cli"), true).name.as_deref(),
            Some("cli")
        );
        assert_eq!(CloudKey::resolve(None, None, true).name, None);
    }
}
