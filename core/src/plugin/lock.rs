//! `kuryr6.lock`: what every `oci://` plugin source of the pipelines in a
//! directory resolved to. Reading, checking and writing the file only.
//!
//! The model is Terraform's `.terraform.lock.hcl`: written by a command
//! (`kuryr6 plugin lock`), committed beside the pipelines, and checked on
//! every load, so a tag that moves, a registry that serves other bytes or a
//! signature by another key is refused rather than run. One entry per
//! source as written in the pipelines:
//!
//! ```toml
//! version = 1
//!
//! [[plugin]]
//! source = "oci://registry.example.com/vendor/naming:1.2.0"
//! manifest = "sha256:…"        # the manifest the tag resolved to
//! layer = "sha256:…"           # sha256 of the .wasm (the one layer)
//! size = 123456                # bytes of the .wasm
//! signer = "5F1E2D3C4B5A6978"  # minisign key id that signed the .wasm
//! ```
//!
//! An entry without a verified signature says `allow_unsigned = true`
//! instead of `signer`, so the exception is recorded where reviewers see it.

use super::reference::{Reference, check_digest};
use super::signature::KeyId;
use serde::Deserialize;
use serde_spanned::Spanned;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "kuryr6.lock";
const VERSION: i64 = 1;

/// One locked source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The `source` as the pipeline writes it.
    pub source: String,
    pub manifest: String,
    pub layer: String,
    pub size: u64,
    /// `None` only with `allow_unsigned`.
    pub signer: Option<KeyId>,
    pub allow_unsigned: bool,
}

/// A lock file's entries, sorted by source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: Spanned<i64>,
    #[serde(default)]
    plugin: Vec<Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    source: Spanned<String>,
    manifest: Spanned<String>,
    layer: Spanned<String>,
    size: Spanned<i64>,
    signer: Option<Spanned<String>>,
    allow_unsigned: Option<Spanned<bool>>,
}

/// The lock file of the pipelines in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Lock {
    /// `Ok(None)` when there is no lock file.
    pub fn read(path: &Path) -> Result<Option<Lock>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Parses and checks a lock file; errors say `file:line: what`.
    pub fn parse(text: &str, path: &Path) -> Result<Lock, String> {
        let at = |offset: usize, msg: String| {
            format!("{}:{}: {msg}", path.display(), line_of(text, offset))
        };
        let raw: RawLock = toml::from_str(text).map_err(|e| {
            at(
                e.span().map(|s| s.start).unwrap_or(0),
                format!(
                    "{} (the lock file is written by `kuryr6 plugin lock`; write it again rather than by hand)",
                    e.message().trim()
                ),
            )
        })?;
        if *raw.version.get_ref() != VERSION {
            return Err(at(
                raw.version.span().start,
                format!(
                    "lock file version {} is not supported (this kuryr6 writes version {VERSION})",
                    raw.version.get_ref()
                ),
            ));
        }
        let mut entries: Vec<Entry> = Vec::new();
        for e in raw.plugin {
            let start = e.span().start;
            let e = e.into_inner();
            Reference::parse(e.source.get_ref()).map_err(|m| at(e.source.span().start, m))?;
            for d in [&e.manifest, &e.layer] {
                check_digest(d.get_ref()).map_err(|m| at(d.span().start, m))?;
            }
            let size = u64::try_from(*e.size.get_ref())
                .map_err(|_| at(e.size.span().start, "size must not be negative".into()))?;
            let signer = match &e.signer {
                Some(s) => Some(KeyId::parse(s.get_ref()).ok_or_else(|| {
                    at(
                        s.span().start,
                        format!(
                            "`{}` is not a minisign key id (up to 16 hex digits)",
                            s.get_ref()
                        ),
                    )
                })?),
                None => None,
            };
            let allow_unsigned = e.allow_unsigned.as_ref().is_some_and(|a| *a.get_ref());
            if signer.is_some() == allow_unsigned {
                return Err(at(
                    start,
                    "an entry has either `signer` or `allow_unsigned = true`, not both and not neither".into(),
                ));
            }
            if entries.iter().any(|x| &x.source == e.source.get_ref()) {
                return Err(at(
                    e.source.span().start,
                    format!("`{}` is locked twice", e.source.get_ref()),
                ));
            }
            entries.push(Entry {
                source: e.source.into_inner(),
                manifest: e.manifest.into_inner(),
                layer: e.layer.into_inner(),
                size,
                signer,
                allow_unsigned,
            });
        }
        entries.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(Lock { entries })
    }

    pub fn get(&self, source: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.source == source)
    }

    /// Adds or replaces the entry of `entry.source`.
    pub fn put(&mut self, entry: Entry) {
        self.entries.retain(|e| e.source != entry.source);
        self.entries.push(entry);
        self.entries.sort_by(|a, b| a.source.cmp(&b.source));
    }

    /// Carries the entries of `old` this lock does not have over, when
    /// `in_use` says a pipeline still names their source; returns the
    /// others, dropped (Terraform drops providers nothing requires).
    pub fn carry_over(&mut self, old: Lock, in_use: impl Fn(&str) -> bool) -> Vec<Entry> {
        let mut dropped = Vec::new();
        for e in old.entries {
            if self.get(&e.source).is_some() {
                continue;
            }
            if in_use(&e.source) {
                self.put(e);
            } else {
                dropped.push(e);
            }
        }
        dropped
    }

    /// The file's text; the same entries always give the same bytes.
    pub fn render(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::from(
            "# kuryr6.lock: written by `kuryr6 plugin lock`; commit it beside the pipelines.\n\
             # kuryr6 refuses an oci:// plugin that disagrees with its entry here.\n\
             version = 1\n",
        );
        for e in &self.entries {
            out.push_str(&format!(
                "\n[[plugin]]\nsource = {}\nmanifest = {}\nlayer = {}\nsize = {}\n",
                q(&e.source),
                q(&e.manifest),
                q(&e.layer),
                e.size
            ));
            match e.signer {
                Some(id) => out.push_str(&format!("signer = \"{id}\"\n")),
                None => out.push_str("allow_unsigned = true\n"),
            }
        }
        out
    }

    /// Writes the file atomically (a reader never sees half a lock).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("lock.{}.tmp", std::process::id()));
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const L: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn entry(source: &str, signer: Option<KeyId>) -> Entry {
        Entry {
            source: source.into(),
            manifest: M.into(),
            layer: L.into(),
            size: 42,
            allow_unsigned: signer.is_none(),
            signer,
        }
    }

    #[test]
    fn round_trips_sorted_and_stable() {
        let mut lock = Lock::default();
        lock.put(entry(
            "oci://h:1/ns/b:1",
            Some(KeyId([1, 2, 3, 4, 5, 6, 7, 8])),
        ));
        lock.put(entry("oci://h:1/ns/a:1", None));
        lock.put(entry("oci://h:1/ns/a:1", None));
        let text = lock.render();
        let back = Lock::parse(&text, Path::new("kuryr6.lock")).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.entries[0].source, "oci://h:1/ns/a:1");
        assert!(back.entries[0].allow_unsigned);
        assert_eq!(
            back.get("oci://h:1/ns/b:1")
                .unwrap()
                .signer
                .unwrap()
                .to_string(),
            "807060504030201"
        );
        assert_eq!(back.render(), text);
    }

    #[test]
    fn entries_no_pipeline_names_are_dropped_and_returned() {
        let mut old = Lock::default();
        for s in ["oci://h/ns/a:1", "oci://h/ns/b:1", "oci://h/ns/gone:1"] {
            old.put(entry(s, None));
        }
        let mut new = Lock::default();
        let fresh = Entry {
            size: 7,
            ..entry("oci://h/ns/a:1", None)
        };
        new.put(fresh.clone());
        let dropped = new.carry_over(old, |s| s != "oci://h/ns/gone:1");
        assert_eq!(
            dropped
                .iter()
                .map(|e| e.source.as_str())
                .collect::<Vec<_>>(),
            ["oci://h/ns/gone:1"]
        );
        assert_eq!(
            new.get("oci://h/ns/a:1"),
            Some(&fresh),
            "the new entry wins"
        );
        assert!(new.get("oci://h/ns/b:1").is_some(), "still named: kept");
        assert_eq!(new.entries.len(), 2);
    }

    #[test]
    fn errors_name_file_and_line() {
        let good = Lock {
            entries: vec![entry("oci://h:1/ns/a:1", None)],
        }
        .render();
        let cases = [
            (good.replace("version = 1", "version = 2"), 3, "version 2"),
            (good.replace(M, "sha256:12"), 7, "not a digest"),
            (
                good.replace("oci://h:1/ns/a:1", "oci://h/ns/a"),
                6,
                "neither a tag",
            ),
            (good.replace("size = 42", "size = -1"), 9, "negative"),
            (
                good.replace("allow_unsigned = true", "signer = \"XYZ\""),
                10,
                "key id",
            ),
            (
                good.replace("allow_unsigned = true", "allow_unsigned = false"),
                5,
                "either `signer`",
            ),
            (
                good.replace("size = 42", "size = 42\nextra = 1"),
                10,
                "unknown field",
            ),
            (
                format!("{good}{}", &good[good.find("\n[[plugin]]").unwrap()..]),
                13,
                "locked twice",
            ),
        ];
        for (text, line, what) in cases {
            let e = Lock::parse(&text, Path::new("dir/kuryr6.lock")).unwrap_err();
            assert!(
                e.starts_with(&format!("dir/kuryr6.lock:{line}: ")) && e.contains(what),
                "want line {line} and `{what}`, got: {e}\n{text}"
            );
        }
    }
}
