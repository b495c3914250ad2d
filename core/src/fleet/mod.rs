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

pub use crate::cloud_choice::{CloudKey, CloudRef};
pub use run::{Connected, Connector, FleetOptions, Job, Site, converge};
pub use shard::Shard;
pub use summary::{SiteReport, Status, Summary};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Sites of a `run` whose emitted files would land in one directory: the
/// last writer would win, and every other site's kuryr.conf would name
/// someone else's networks. Found before any call; one (file, message) per
/// clash, the file being the later site's.
/// With `out` (`--out DIR`) each site writes into `DIR/<site>`, so only a
/// site name that leaves `DIR/<site>` (`.`, `..`) can clash.
pub fn emit_dir_clashes(
    loaded: &[crate::load::Loaded],
    out: Option<&Path>,
) -> Vec<(String, String)> {
    let mut messages = Vec::new();
    let mut owners: BTreeMap<PathBuf, (&str, String)> = BTreeMap::new();
    for l in loaded {
        let site = l.plan.pipeline.as_str();
        if out.is_some() && (site == "." || site == "..") {
            messages.push((l.source.display_path(), format!(
                "site \"{site}\" ({}): --out DIR writes each site into DIR/<site name>, and \"{site}\" is not a directory of its own; rename the pipeline",
                l.source.display_path()
            )));
            continue;
        }
        let site_out = out.map(|o| o.join(site));
        for e in l.plan.emits() {
            let dir = lexical(&crate::emit::out_dir(
                e,
                &l.source.path,
                site_out.as_deref(),
            ));
            match owners.get(&dir) {
                Some((other, other_file)) if *other != site => messages.push((l.source.display_path(), format!(
                    "sites \"{other}\" ({other_file}) and \"{site}\" ({}) both emit into {}: each site needs its own emit directory; set `[plan.emit] dir` per site (e.g. \"out/{site}\") or give --out DIR (each site writes into DIR/<site>)",
                    l.source.display_path(),
                    dir.display()
                ))),
                Some(_) => {}
                None => {
                    owners.insert(dir, (site, l.source.display_path()));
                }
            }
        }
    }
    messages
}

/// `dir` absolute and without `.` / `..`, so that `sites/out` and
/// `./sites/../sites/out` compare equal (no file system access: the
/// directories need not exist yet).
fn lexical(dir: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(dir)
    };
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;
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

    #[test]
    fn two_sites_emitting_into_one_directory_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let site = |file: &str, name: &str, emit: &str| {
            let path = dir.path().join(file);
            let text = BASE.replace("name = \"s\"", &format!("name = \"{name}\"")) + emit;
            crate::load::load_source(SourceFile::new(&path, text.as_str())).unwrap()
        };
        std::fs::create_dir_all(dir.path().join("east")).unwrap();
        // Both default to `out` next to their file: one directory.
        let a = site("a.toml", "a", "");
        let b = site("b.toml", "b", "");
        // The same directory spelled another way.
        let c = site("east/c.toml", "c", "[plan.emit]\ndir = \"../out\"\n");
        // Its own directory.
        let d = site("d.toml", "d", "[plan.emit]\ndir = \"out/d\"\n");
        let all = [a, b, c, d];
        let clashes = emit_dir_clashes(&all, None);
        assert_eq!(clashes.len(), 2, "{clashes:?}");
        assert!(
            clashes[0].1.contains("sites \"a\"") && clashes[0].1.contains("\"b\""),
            "{clashes:?}"
        );
        assert!(clashes[0].0.ends_with("b.toml"), "{clashes:?}");
        assert!(clashes[1].1.contains("\"c\""), "{clashes:?}");
        // --out DIR: DIR/<site> each.
        let out = dir.path().join("emitted");
        assert!(emit_dir_clashes(&all, Some(&out)).is_empty());
        // Sites in separate directories with the default `out`: no clash.
        let e = site("east/e.toml", "e", "");
        assert!(emit_dir_clashes(&[all[3].clone(), e], None).is_empty());
    }
}
