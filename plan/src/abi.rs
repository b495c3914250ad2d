//! The plugin contract's constants and small value types, named by both
//! sides of it: the host (`kuryr6::plugin`) and guests (the SDK). The WIT
//! file, `sdk/wit/plugin.wit`, is the contract; these mirror its package
//! version and its enums, and a test holds them to the file.

use serde::Serialize;

/// What a plugin's `describe().abi-version` says: 1 for every 0.x contract.
/// The host refuses any other value. Since 0.2.0 the WIT package version
/// alone says what a plugin is compatible with (sdk/README.md, "Versions
/// and compatibility"); a change of meaning that would need a new
/// abi-version is made as a new major WIT version instead, so this stays 1.
pub const ABI_VERSION: u32 = 1;

/// The newest WIT package version: the one the SDK builds against.
pub const WIT_VERSION: &str = "0.2.0";

/// The WIT package every import and export name of a plugin built with
/// the SDK carries.
pub const WIT_PACKAGE: &str = "kuryr6:plugin@0.2.0";

/// The hooks of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// Rewrite one site's plan.
    Plan,
    /// Name each step.
    Naming,
    /// Judge one or many sites.
    Policy,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::Plan, Hook::Naming, Hook::Policy];

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Plan => "plan",
            Hook::Naming => "naming",
            Hook::Policy => "policy",
        }
    }

    pub fn parse(s: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a step as the naming hook receives it: the plan's own kinds.
pub use crate::types::StepKind as ResourceKind;

/// `Error` stops kuryr6 before any API call; `Warning` is only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One policy finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub severity: Severity,
    /// Stable identifier users and tests match on, e.g. "overlap".
    pub code: String,
    pub message: String,
    /// The name of the site concerned; "" = all sites.
    pub site: String,
    /// Step name inside that site; "" = the site as a whole.
    pub step: String,
}

impl Violation {
    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            severity: Severity::Error,
            code: code.into(),
            message: message.into(),
            site: String::new(),
            step: String::new(),
        }
    }

    pub fn warning(code: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            severity: Severity::Warning,
            ..Violation::error(code, message)
        }
    }

    /// Locates the finding: site name and step name.
    pub fn at(mut self, site: impl Into<String>, step: impl Into<String>) -> Self {
        self.site = site.into();
        self.step = step.into();
        self
    }
}

/// A site's `[plugin.facts]`, sorted by key (the order the plugin sees).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts(pub Vec<(String, String)>);

impl Facts {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The fact, or an error message naming the missing key.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("fact `{key}` is missing: add it to [plugin.facts]"))
    }

    /// The fact parsed as `T`, `default` when absent, an error when unparsable.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("fact `{key}` = {v:?} is not a valid value")),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants say what the contract file says.
    #[test]
    fn constants_match_the_wit_file() {
        assert_eq!(WIT_PACKAGE, format!("kuryr6:plugin@{WIT_VERSION}"));
        let wit = include_str!("../../sdk/wit/plugin.wit");
        assert!(wit.contains(&format!("package {WIT_PACKAGE};")));
        for hook in Hook::ALL {
            assert!(wit.contains(hook.as_str()), "{hook}");
        }
        for kind in crate::StepKind::ALL {
            let wit_name = kind.as_str().replace('_', "-");
            assert!(wit.contains(&wit_name), "{kind}");
        }
        assert_eq!(Hook::parse("naming"), Some(Hook::Naming));
        assert_eq!(Hook::parse("nope"), None);
    }

    #[test]
    fn facts_name_what_is_missing_or_wrong() {
        let facts = Facts(vec![("n".into(), " 7 ".into()), ("x".into(), "y".into())]);
        assert_eq!(facts.parse_or("n", 0u32), Ok(7));
        assert_eq!(facts.parse_or("absent", 3u32), Ok(3));
        assert!(facts.parse_or::<u32>("x", 0).unwrap_err().contains("`x`"));
        assert!(
            facts
                .require("site")
                .unwrap_err()
                .contains("fact `site` is missing")
        );
    }
}
