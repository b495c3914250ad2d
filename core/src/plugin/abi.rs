//! Which versions of the contract (`kuryr6:plugin@X.Y.Z`, sdk/wit/) this
//! host runs, and which one a component was built against.
//!
//! The version is read from the component's export names
//! (`kuryr6:plugin/meta@0.1.0`) before anything is instantiated, so a
//! plugin from an unknown version is refused by name rather than by a
//! linker error. Policy (sdk/README.md, "Versions and compatibility"): a
//! minor version only adds, so the host serves every minor of major 0 it
//! knows; a new major, or a newer minor than this host knows, is refused.

use std::fmt;

/// Minors of major 0 this host runs, oldest first. Adding a minor: append
/// it here, freeze its WIT in sdk/wit-frozen/, keep a plugin built against
/// it in tests/fixtures/abi-0.<minor>.0/.
pub const SUPPORTED_MINORS: &[u32] = &[1, 2];

/// The newest version: the one sdk/wit/plugin.wit declares and the SDK
/// builds, and the version of the imports the host provides.
pub const NEWEST: &str = kuryr6_plan::abi::WIT_VERSION;

/// The interface whose export tells the version.
const META_PREFIX: &str = "kuryr6:plugin/meta@";

/// A contract version this host runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    /// As the component's export names spell it, e.g. "0.1.0".
    pub version: String,
    pub minor: u32,
}

impl Contract {
    /// The export name of `interface` at this version.
    pub fn export(&self, interface: &str) -> String {
        format!("kuryr6:plugin/{interface}@{}", self.version)
    }

    /// `meta.version` exists since 0.2.0.
    pub fn has_plugin_version(&self) -> bool {
        self.minor >= 2
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kuryr6:plugin@{}", self.version)
    }
}

/// What a component's exports say about its contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    Supported(Contract),
    /// Built against a version this host does not run (newer minor, other
    /// major, or not a version at all); the version as exported.
    Unsupported(String),
    /// No `kuryr6:plugin/meta` export at all.
    NotAPlugin,
}

/// "kuryr6:plugin 0.1.x and 0.2.x": what messages say this host runs.
pub fn supported() -> String {
    let minors: Vec<String> = SUPPORTED_MINORS
        .iter()
        .map(|m| format!("0.{m}.x"))
        .collect();
    let list = match minors.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => minors.join(""),
    };
    format!("kuryr6:plugin {list}")
}

/// Reads the contract version from a component's export names. Several
/// `meta` exports (a component built for two versions at once) pick the
/// newest this host runs.
pub fn detect<'a>(export_names: impl IntoIterator<Item = &'a str>) -> Detected {
    let mut best: Option<Contract> = None;
    let mut unsupported: Option<String> = None;
    for version in export_names
        .into_iter()
        .filter_map(|n| n.strip_prefix(META_PREFIX))
    {
        match parse(version) {
            Some((0, minor, _)) if SUPPORTED_MINORS.contains(&minor) => {
                if best.as_ref().is_none_or(|b| b.minor < minor) {
                    best = Some(Contract {
                        version: version.to_string(),
                        minor,
                    });
                }
            }
            _ => {
                unsupported.get_or_insert_with(|| version.to_string());
            }
        }
    }
    match (best, unsupported) {
        (Some(c), _) => Detected::Supported(c),
        (None, Some(v)) => Detected::Unsupported(v),
        (None, None) => Detected::NotAPlugin,
    }
}

/// `MAJOR.MINOR.PATCH`, digits only: a pre-release or build suffix is not
/// a released contract.
fn parse(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.split('.');
    let mut number = || -> Option<u32> {
        let p = parts.next()?;
        // SemVer: no leading zeros ("0.02.0" is not 0.2.0).
        if p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || (p.len() > 1 && p.starts_with('0'))
        {
            return None;
        }
        p.parse().ok()
    };
    let v = (number()?, number()?, number()?);
    parts.next().is_none().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(version: &str, minor: u32) -> Detected {
        Detected::Supported(Contract {
            version: version.into(),
            minor,
        })
    }

    #[test]
    fn every_known_minor_is_served_with_its_own_export_names() {
        assert_eq!(detect(["kuryr6:plugin/meta@0.1.0"]), contract("0.1.0", 1));
        assert_eq!(detect(["kuryr6:plugin/meta@0.2.0"]), contract("0.2.0", 2));
        // A later patch release of a known minor: same functions.
        assert_eq!(detect(["kuryr6:plugin/meta@0.2.3"]), contract("0.2.3", 2));
        let Detected::Supported(c) = detect(["kuryr6:plugin/meta@0.1.0"]) else {
            unreachable!()
        };
        assert_eq!(c.export("naming"), "kuryr6:plugin/naming@0.1.0");
        assert!(!c.has_plugin_version());
    }

    #[test]
    fn unknown_versions_are_named_as_exported() {
        for v in [
            "0.3.0",
            "1.0.0",
            "0.0.1",
            "2.1.0",
            "0.2.0-rc1",
            "0.2.0+build",
            "0.2",
            "x",
            "0.02.0",
            "00.2.0",
            "0.2.00",
        ] {
            assert_eq!(
                detect([format!("kuryr6:plugin/meta@{v}").as_str()]),
                Detected::Unsupported(v.into()),
                "{v}"
            );
        }
    }

    #[test]
    fn the_newest_known_meta_export_wins() {
        assert_eq!(
            detect([
                "kuryr6:plugin/meta@1.0.0",
                "kuryr6:plugin/meta@0.1.0",
                "kuryr6:plugin/meta@0.2.0",
            ]),
            contract("0.2.0", 2)
        );
    }

    #[test]
    fn no_meta_export_is_not_a_plugin() {
        assert_eq!(detect([]), Detected::NotAPlugin);
        assert_eq!(
            detect(["kuryr6:plugin/naming@0.2.0", "wasi:cli/run@0.2.0"]),
            Detected::NotAPlugin
        );
    }

    #[test]
    fn the_supported_list_reads_as_a_sentence() {
        assert_eq!(supported(), "kuryr6:plugin 0.1.x and 0.2.x");
        assert_eq!(
            format!("kuryr6:plugin@{NEWEST}"),
            format!(
                "kuryr6:plugin@0.{}.0",
                SUPPORTED_MINORS.last().copied().unwrap_or(0)
            )
        );
    }
}
