//! `kuryr6 plugin new`: a vendor's first plugin crate, ready to build for
//! wasm32-wasip2, to test itself with `cargo test` against JSON fixtures,
//! and to run in a pipeline. The files are templates in scaffold/; the
//! plugin code (src/lib.rs) is assembled here from one example per hook.

use super::Hook;
use std::path::{Path, PathBuf};

/// What to scaffold.
#[derive(Debug, Clone)]
pub struct Options {
    /// The crate's (and the plugin's) name.
    pub name: String,
    /// Where; must not exist, or be an empty directory.
    pub dir: PathBuf,
    pub hooks: Vec<Hook>,
    /// kuryr6-plugin-sdk as a path dependency: a kuryr6 checkout's sdk/.
    /// `None` names it from a registry (version = this kuryr6's).
    pub sdk: Option<PathBuf>,
}

/// Why nothing was scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "`{name}` is not a valid plugin crate name: {why}; use 1 to 64 lowercase letters, digits, '-' and '_', starting with a letter (e.g. acme-naming)"
    )]
    Name { name: String, why: String },
    #[error("{} already exists and is not an empty directory; choose another --dir or remove it", dir.display())]
    NotEmpty { dir: PathBuf },
    #[error("{} is not a kuryr6-plugin-sdk directory (no Cargo.toml naming that package)", dir.display())]
    Sdk { dir: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Names cargo refuses or reserves, and Rust keywords (a crate named like
/// one cannot be used as a path).
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "alloc",
    "core",
    "std",
    "test",
    "proc-macro",
    "proc_macro",
    "build",
    "deps",
    "examples",
    "incremental",
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "lpt1",
    "kuryr6",
    "kuryr6-plugin-sdk",
    "kuryr6_plugin_sdk",
];

/// Checks `name` as a crate name (cargo's rules, a little stricter: ASCII
/// lowercase, so the plugin name, the crate and its file agree) and
/// kuryr6's name rule (the plugin reports it as its name).
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let err = |why: String| ScaffoldError::Name {
        name: name.escape_debug().to_string(),
        why,
    };
    let Some(first) = name.chars().next() else {
        return Err(err("it is empty".into()));
    };
    if name.len() > 64 {
        return Err(err(format!("it has {} bytes", name.len())));
    }
    if !first.is_ascii_lowercase() {
        return Err(err(format!("it starts with {first:?}")));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(err(format!("it contains {bad:?}")));
    }
    if RESERVED.contains(&name) {
        return Err(err(
            "it is a Rust keyword or a name cargo or kuryr6 reserves".into(),
        ));
    }
    Ok(())
}

/// `acme-naming` → `AcmeNaming`: the plugin's type.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The plugin: one example per hook, each a few lines a vendor replaces.
fn lib_rs(name: &str, hooks: &[Hook]) -> String {
    let ty = type_name(name);
    let has = |h: Hook| hooks.contains(&h);
    let mut imports = vec!["Facts", "Hook", "Plugin"];
    if has(Hook::Plan) {
        imports.push("Plan");
    }
    if has(Hook::Naming) {
        imports.push("ResourceKind");
    }
    if has(Hook::Policy) {
        imports.extend(["Site", "Violation"]);
    }
    if has(Hook::Plan) || has(Hook::Policy) {
        imports.push("cidr");
    }
    imports.push("export_plugin");
    // rustfmt's order: types (capitalized) first, then the rest.
    imports.sort_by_key(|i| (i.starts_with(|c: char| c.is_ascii_lowercase()), *i));
    let hook_list: Vec<String> = hooks
        .iter()
        .map(|h| {
            format!(
                "Hook::{}",
                match h {
                    Hook::Plan => "Plan",
                    Hook::Naming => "Naming",
                    Hook::Policy => "Policy",
                }
            )
        })
        .collect();
    let mut s = format!(
        "//! {name}: a kuryr6 plugin. Each hook is a pure function of its arguments:\n\
         //! the sandbox has no files, network or environment. See README.md.\n\n"
    );
    if has(Hook::Plan) {
        s.push_str("use kuryr6_plugin_sdk::plan::Role;\n");
    }
    // As rustfmt would write it: one line if it fits in 100 columns.
    let one_line = format!("use kuryr6_plugin_sdk::{{{}}};\n", imports.join(", "));
    if one_line.len() <= 101 {
        s.push_str(&one_line);
    } else {
        s.push_str(&format!(
            "use kuryr6_plugin_sdk::{{\n    {},\n}};\n",
            imports.join(", ")
        ));
    }
    s.push_str(&format!(
        "\nstruct {ty};\n\nimpl Plugin for {ty} {{\n    const NAME: &'static str = \"{name}\";\n    const HOOKS: &'static [Hook] = &[{}];\n",
        hook_list.join(", ")
    ));
    if has(Hook::Plan) {
        s.push_str(PLAN_HOOK);
    }
    if has(Hook::Naming) {
        s.push_str(NAMING_HOOK);
    }
    if has(Hook::Policy) {
        s.push_str(POLICY_HOOK);
    }
    s.push_str(&format!("}}\n\nexport_plugin!({ty});\n"));
    s
}

const PLAN_HOOK: &str = r#"
    /// Moves the pod subnet to the `pod_cidr` fact, when it is set.
    fn plan(facts: &Facts, mut plan: Plan) -> Result<Plan, String> {
        if let Some(pod_cidr) = facts.get("pod_cidr") {
            let pod_cidr = cidr::parse(pod_cidr)?;
            for subnet in plan.subnets_mut().filter(|s| s.role == Role::Pod) {
                subnet.relayout(pod_cidr)?;
            }
        }
        Ok(plan)
    }
"#;

const NAMING_HOOK: &str = r#"
    /// Names every resource `<site>-<name>`. Load balancers keep theirs:
    /// Kuryr finds the API's by its Kubernetes name.
    fn name(kind: ResourceKind, default_name: &str, facts: &Facts) -> Result<String, String> {
        if matches!(kind, ResourceKind::Loadbalancer | ResourceKind::Emit) {
            return Ok(default_name.to_string());
        }
        let site = facts.require("site")?.to_ascii_lowercase();
        Ok(format!("{site}-{}", default_name.replace('_', "-")))
    }
"#;

const POLICY_HOOK: &str = r#"
    /// Warns about every IPv6 subnet outside the unique local range.
    fn check(sites: &[Site]) -> Result<Vec<Violation>, String> {
        let mut found = Vec::new();
        for site in sites {
            for s in site.plan.subnets() {
                if s.ip_version == 6 && !cidr::is_ula(&s.cidr) {
                    let message = format!("{} is not a unique local (fc00::/7) prefix", s.cidr);
                    found.push(Violation::warning("not-ula", message).at(&site.name, &s.name));
                }
            }
        }
        Ok(found)
    }
"#;

/// Fixtures (input, expected output) that the examples above pass.
fn fixtures(hooks: &[Hook]) -> Vec<(&'static str, &'static str)> {
    let mut f = Vec::new();
    if hooks.contains(&Hook::Plan) {
        f.push((
            "plan-pod-cidr.json",
            r#"{"facts": {"pod_cidr": "fd99:0:0:1::/64"}, "pipeline": "seed.toml"}"#,
        ));
        f.push((
            "plan-pod-cidr.expected.json",
            r#"{"steps": [{"name": "pods"}, {"name": "pod_subnet", "cidr": "fd99:0:0:1::/64", "gateway_ip": "fd99:0:0:1::1"}]}"#,
        ));
        f.push((
            "plan-unchanged.json",
            r#"{"facts": {}, "pipeline": "seed.toml"}"#,
        ));
        f.push((
            "plan-unchanged.expected.json",
            r#"{"steps": [{"name": "pods"}, {"name": "pod_subnet", "cidr": "fd10:0:0:1::/64"}]}"#,
        ));
    }
    if hooks.contains(&Hook::Naming) {
        f.push((
            "naming-subnet.json",
            r#"{"facts": {"site": "AMS1"}, "kind": "subnet", "name": "pod_subnet"}"#,
        ));
        f.push((
            "naming-subnet.expected.json",
            r#"{"name": "ams1-pod-subnet"}"#,
        ));
        f.push((
            "naming-loadbalancer.json",
            r#"{"facts": {"site": "ams1"}, "kind": "loadbalancer", "name": "default/kubernetes"}"#,
        ));
        f.push((
            "naming-loadbalancer.expected.json",
            r#"{"name": "default/kubernetes"}"#,
        ));
    }
    if hooks.contains(&Hook::Policy) {
        f.push((
            "policy-sites.json",
            r#"{"sites": [{"name": "ams1", "pipeline": "seed.toml"}, {"name": "lab", "pipeline": "seed-global.toml"}]}"#,
        ));
        f.push((
            "policy-sites.expected.json",
            r#"{"violations": [{"severity": "warning", "code": "not-ula", "site": "lab", "step": "pod_subnet"}, {"code": "not-ula", "site": "lab", "step": "service_subnet"}]}"#,
        ));
    }
    f
}

fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(template.to_string(), |t, (k, v)| {
        t.replace(&format!("{{{{{k}}}}}"), v)
    })
}

/// Whether `dir` holds the SDK's Cargo.toml.
pub fn is_sdk_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|t| t.contains("name = \"kuryr6-plugin-sdk\""))
}

/// The SDK of the source tree this kuryr6 was built from, if it is still
/// there (running from a checkout).
pub fn own_sdk() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    if is_sdk_dir(&dir) {
        dir.canonicalize().ok()
    } else {
        None
    }
}

/// Writes the crate; returns the files written, relative to `dir`.
pub fn scaffold(opts: &Options) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(&opts.name)?;
    let mut hooks = opts.hooks.clone();
    hooks.sort();
    hooks.dedup();
    if hooks.is_empty() {
        hooks.push(Hook::Naming);
    }
    let sdk = match &opts.sdk {
        Some(dir) if !is_sdk_dir(dir) => return Err(ScaffoldError::Sdk { dir: dir.clone() }),
        Some(dir) => Some(dir.canonicalize().map_err(|source| ScaffoldError::Io {
            path: dir.clone(),
            source,
        })?),
        None => None,
    };
    check_empty(&opts.dir)?;

    let version = env!("CARGO_PKG_VERSION");
    let (sdk_dep, sdk_note, sdk_where) = match &sdk {
        Some(dir) => {
            let d = dir.display().to_string();
            (
                format!("kuryr6-plugin-sdk = {{ path = {d:?} }}"),
                "Here: the kuryr6 checkout it was scaffolded from.".to_string(),
                format!("by path ({d})"),
            )
        }
        None => (
            format!("kuryr6-plugin-sdk = \"{version}\""),
            "Here: from a registry (no kuryr6 checkout was found).".to_string(),
            "from a registry".to_string(),
        ),
    };
    let krate = opts.name.replace('-', "_");
    let hook_names: Vec<&str> = hooks.iter().map(|h| h.as_str()).collect();
    let first_hook = hook_names.first().copied().unwrap_or("naming");
    let first_fixture = fixtures(&hooks)
        .first()
        .map(|(f, _)| f.to_string())
        .unwrap_or_default();
    let contract = format!("kuryr6:plugin@{}", super::WIT_VERSION);
    let vars = [
        ("name", opts.name.as_str()),
        ("crate", krate.as_str()),
        ("sdk_dep", sdk_dep.as_str()),
        ("sdk_note", sdk_note.as_str()),
        ("sdk_where", sdk_where.as_str()),
        ("kuryr6_version", version),
        ("hooks", &hook_names.join(", ")),
        ("first_hook", first_hook),
        ("first_fixture", &first_fixture),
        ("contract", &contract),
    ];

    let mut files: Vec<(PathBuf, String)> = vec![
        (
            "Cargo.toml".into(),
            fill(include_str!("scaffold/Cargo.toml.in"), &vars),
        ),
        (
            "README.md".into(),
            fill(include_str!("scaffold/README.md.in"), &vars),
        ),
        (
            "rust-toolchain.toml".into(),
            include_str!("../../../rust-toolchain.toml").to_string(),
        ),
        (
            ".gitignore".into(),
            include_str!("scaffold/gitignore.in").into(),
        ),
        ("src/lib.rs".into(), lib_rs(&opts.name, &hooks)),
        (
            "tests/fixtures.rs".into(),
            include_str!("scaffold/fixtures.rs.in").into(),
        ),
        (
            "pipeline.toml".into(),
            fill(include_str!("scaffold/pipeline.toml.in"), &vars),
        ),
        (
            "fixtures/seed.toml".into(),
            include_str!("scaffold/seed.toml.in").into(),
        ),
    ];
    if hooks.contains(&Hook::Policy) {
        files.push((
            "fixtures/seed-global.toml".into(),
            include_str!("scaffold/seed.toml.in")
                .replace("(Kuryr's IPv6 guide)", "with global (non-ULA) prefixes")
                .replace("fd10:0:0:", "2001:db8:0:"),
        ));
    }
    for (file, text) in fixtures(&hooks) {
        files.push((PathBuf::from("fixtures").join(file), format!("{text}\n")));
    }
    // The SDK's own dependency versions, as tested with it: cargo starts
    // from this lock (and drops what the plugin does not use).
    if let Some(lock) = sdk
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("../Cargo.lock")).ok())
    {
        files.push(("Cargo.lock".into(), lock));
    }

    write_all(&opts.dir, &files)?;
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// The new crate's folder is new or empty: nothing of someone's is
/// overwritten.
fn check_empty(dir: &Path) -> Result<(), ScaffoldError> {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    if empty {
        Ok(())
    } else {
        Err(ScaffoldError::NotEmpty {
            dir: dir.to_path_buf(),
        })
    }
}

fn write_all(dir: &Path, files: &[(PathBuf, String)]) -> Result<(), ScaffoldError> {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| ScaffoldError::Io { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_are_checked_before_anything_is_written() {
        for ok in ["acme-naming", "a", "x_1", "site2-prefix"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("Acme", "starts with 'A'"),
            ("1up", "starts with '1'"),
            ("-x", "starts with '-'"),
            ("acme naming", "contains ' '"),
            ("acme.naming", "contains '.'"),
            ("acmé", "contains 'é'"),
            ("fn", "keyword"),
            ("test", "reserves"),
            ("kuryr6-plugin-sdk", "reserves"),
        ] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains("lowercase letters, digits"), "{e}");
        }
        let long = "a".repeat(65);
        assert!(check_name(&long).is_err());
        // Control characters are shown escaped, never raw.
        let e = check_name("a\u{1b}[2J").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}') && e.contains("\\u{1b}"), "{e}");
    }

    #[test]
    fn the_type_name_is_the_camel_case_crate_name() {
        assert_eq!(type_name("acme-naming"), "AcmeNaming");
        assert_eq!(type_name("x_1__b"), "X1B");
    }

    #[test]
    fn each_hook_brings_its_example_and_its_fixtures() {
        let naming = lib_rs("acme", &[Hook::Naming]);
        assert!(naming.contains("fn name(") && !naming.contains("fn plan("));
        assert!(naming.contains("&[Hook::Naming]"));
        let all = lib_rs("acme", &[Hook::Plan, Hook::Naming, Hook::Policy]);
        assert!(all.contains("fn plan(") && all.contains("fn name(") && all.contains("fn check("));
        let files: Vec<&str> = fixtures(&[Hook::Plan, Hook::Policy])
            .iter()
            .map(|(f, _)| *f)
            .collect();
        assert!(files.contains(&"plan-pod-cidr.json") && files.contains(&"policy-sites.json"));
        assert!(!files.iter().any(|f| f.starts_with("naming-")));
        for (f, text) in fixtures(&[Hook::Plan, Hook::Naming, Hook::Policy]) {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{f}"
            );
        }
    }

    #[test]
    fn an_existing_non_empty_directory_is_refused_and_left_alone() {
        let dir = std::env::temp_dir().join(format!("kuryr6-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep.txt"), "mine").unwrap();
        let opts = Options {
            name: "acme".into(),
            dir: dir.clone(),
            hooks: vec![Hook::Naming],
            sdk: None,
        };
        let e = scaffold(&opts).unwrap_err();
        assert!(matches!(e, ScaffoldError::NotEmpty { .. }), "{e}");
        assert!(e.to_string().contains("not an empty directory"));
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1);
        // An empty one is fine.
        std::fs::remove_file(dir.join("keep.txt")).unwrap();
        let files = scaffold(&opts).unwrap();
        assert!(files.contains(&PathBuf::from("src/lib.rs")));
        let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(toml.contains("name = \"acme\"") && toml.contains("kuryr6-plugin-sdk = \""));
        assert!(!toml.contains("{{"), "unfilled template: {toml}");
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(!readme.contains("{{"), "unfilled template");
        // A vendor who follows it in order signs before pushing.
        let (sign, push) = (
            readme.find("minisign -S "),
            readme.find("kuryr6 plugin push "),
        );
        assert!(sign.is_some() && sign < push, "sign before push:\n{readme}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
