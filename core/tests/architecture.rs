//! The module graph of every crate of the workspace has no cycles, and the
//! crates guests compile stay free of the host's heavy dependencies
//! (ARCHITECTURE.md).
//!
//! A module depends on another when its non-test code names it through
//! `crate::…` or `super::…`. A parent and its own children are one room and
//! are not counted; any other loop is a knot that makes modules impossible
//! to understand, test or move alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `engine/diff.rs` → `engine::diff`, `engine/mod.rs` → `engine`.
fn module_name(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The code before the file's `#[cfg(test)] mod tests`.
fn without_tests(text: &str) -> &str {
    let mut at = text.len();
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]") {
        let start = from + i;
        if text[start + 12..].trim_start().starts_with("mod ") {
            at = start;
            break;
        }
        from = start + 12;
    }
    &text[..at]
}

/// Paths that follow `prefix` in `code`, e.g. `engine::diff::Action` after
/// `crate::`, with `{a, b::c}` groups expanded to their first segments.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let first = item.trim().split("::").next().unwrap_or("");
                if !first.is_empty() {
                    found.push(vec![first]);
                }
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(after.len());
            found.push(after[..end].split("::").filter(|s| !s.is_empty()).collect());
        }
        rest = &rest[i + prefix.len()..];
    }
    found
}

fn graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(root, &mut files);
    let modules: BTreeMap<String, String> = files
        .iter()
        .map(|f| (module_name(root, f), std::fs::read_to_string(f).unwrap()))
        .filter(|(m, _)| {
            m != "lib" && m != "main" && !m.rsplit("::").next().unwrap().contains("test")
        })
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in &modules {
        let code = without_tests(text);
        let parent = name.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        let mut deps = BTreeSet::new();
        let mut resolve = |base: &str, segments: &[&str]| {
            for k in (1..=segments.len()).rev() {
                let candidate = if base.is_empty() {
                    segments[..k].join("::")
                } else {
                    format!("{base}::{}", segments[..k].join("::"))
                };
                if modules.contains_key(&candidate) && candidate != *name {
                    deps.insert(candidate);
                    return;
                }
            }
        };
        for p in paths_after(code, "crate::") {
            resolve("", &p);
        }
        for p in paths_after(code, "super::") {
            resolve(parent, &p);
        }
        edges.insert(name.clone(), deps);
    }
    edges
}

fn related(a: &str, b: &str) -> bool {
    b.starts_with(&format!("{a}::")) || a.starts_with(&format!("{b}::"))
}

/// A path from `to` back to `from`, if any (depth-first).
fn path_back(
    edges: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if to == from {
        return Some(vec![from.to_string()]);
    }
    if !seen.insert(to.to_string()) {
        return None;
    }
    for next in edges.get(to).into_iter().flatten() {
        if related(to, next) {
            continue;
        }
        if let Some(mut p) = path_back(edges, from, next, seen) {
            p.insert(0, to.to_string());
            return Some(p);
        }
    }
    None
}

/// Every loop in the module graph of the crate whose sources are `root`.
fn cycles(root: &Path) -> Vec<String> {
    let edges = graph(root);
    let mut cycles = Vec::new();
    for (module, deps) in &edges {
        for dep in deps {
            if related(module, dep) {
                continue;
            }
            if let Some(back) = path_back(&edges, module, dep, &mut BTreeSet::new()) {
                cycles.push(format!("{module} -> {}", back.join(" -> ")));
            }
        }
    }
    cycles
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_library_has_no_import_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&root);
    assert!(
        edges.len() > 40,
        "the module scan found too little: {edges:?}"
    );
    assert!(
        edges["engine::diff"].contains("engine::change"),
        "the scan must see `use super::change::…`: {:?}",
        edges["engine::diff"]
    );
    let cycles = cycles(&root);
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn no_other_crate_of_the_workspace_has_import_cycles() {
    let mut roots = vec![workspace().join("plan/src"), workspace().join("sdk/src")];
    for entry in std::fs::read_dir(workspace().join("plugins")).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            roots.push(src);
        }
    }
    let plan = graph(&roots[0]);
    assert!(
        plan["types"].contains("addr") && plan["abi"].contains("types"),
        "the scan must see the plan crate's own imports: {plan:?}"
    );
    for root in roots {
        let cycles = cycles(&root);
        assert!(
            cycles.is_empty(),
            "{}: import cycles:\n{}",
            root.display(),
            cycles.join("\n")
        );
    }
}

/// The normal dependencies of a package as `cargo tree` lists them.
fn dependency_names(args: &[&str]) -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args(["tree", "--locked", "-e", "normal", "--prefix", "none"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The plan crate is pure, and guests compile only it and the SDK's guest
/// side: never the runtime, HTTP, async or TOML of the host.
#[test]
fn guests_compile_none_of_the_hosts_heavy_dependencies() {
    const HOST_ONLY: [&str; 6] = ["wasmtime", "reqwest", "tokio", "toml", "hyper", "kuryr6"];
    let plan = dependency_names(&["-p", "kuryr6-plan"]);
    assert!(
        plan.contains("ipnet") && plan.contains("serde_json"),
        "{plan:?}"
    );
    let mut checked = 0;
    for entry in std::fs::read_dir(workspace().join("plugins")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let manifest = manifest.to_string_lossy().into_owned();
        let deps = dependency_names(&["--manifest-path", &manifest, "--target", "wasm32-wasip2"]);
        assert!(
            deps.contains("kuryr6-plan") && deps.contains("wit-bindgen"),
            "{manifest}: {deps:?}"
        );
        for heavy in HOST_ONLY {
            assert!(!deps.contains(heavy), "{manifest} compiles {heavy}");
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} plugins found");
    for heavy in HOST_ONLY {
        assert!(!plan.contains(heavy), "kuryr6-plan depends on {heavy}");
    }
}

#[test]
fn the_scan_finds_a_cycle_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("engine")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod engine;\npub mod load;\n").unwrap();
    std::fs::write(src.join("engine/mod.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(src.join("engine/a.rs"), "use super::b::Thing;\n").unwrap();
    std::fs::write(
        src.join("engine/b.rs"),
        "use super::{a, c};\n#[cfg(test)]\nmod tests { use crate::load::X; }\n",
    )
    .unwrap();
    std::fs::write(src.join("load.rs"), "use crate::engine::a::Y;\n").unwrap();
    let edges = graph(src);
    assert!(edges["engine::a"].contains("engine::b"));
    assert!(edges["engine::b"].contains("engine::a"));
    assert!(
        !edges["engine::b"].contains("load"),
        "test code is not counted"
    );
    assert!(path_back(&edges, "engine::a", "engine::b", &mut BTreeSet::new()).is_some());
    assert!(path_back(&edges, "load", "engine::a", &mut BTreeSet::new()).is_none());
}

/// Every source file of the library is named in ARCHITECTURE.md, the
/// newcomer's map: a backticked path that ends the file's path
/// (`engine/lease.rs`, `lease.rs`), its module's name (`lease`), or for a
/// `mod.rs` its folder (`fake/`).
#[test]
fn every_library_file_is_named_in_the_architecture_map() {
    let root = workspace();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut named: BTreeSet<String> = BTreeSet::new();
    for quoted in map.split('`').skip(1).step_by(2) {
        for word in quoted.split([' ', ',', '(', ')']) {
            named.insert(word.to_string());
        }
    }
    let src = root.join("core/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut missing = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = rel.split('/').collect();
        let suffixes = (0..parts.len()).map(|i| parts[i..].join("/"));
        let stem = parts.last().unwrap().trim_end_matches(".rs");
        let mut names: Vec<String> = suffixes.collect();
        if stem == "mod" && parts.len() >= 2 {
            let dir = parts[..parts.len() - 1].join("/");
            names.push(format!("{dir}/"));
            names.push(format!("{}/", parts[parts.len() - 2]));
        } else {
            names.push(stem.to_string());
        }
        if !names.iter().any(|n| named.contains(n)) {
            missing.push(rel);
        }
    }
    assert!(
        missing.is_empty(),
        "files ARCHITECTURE.md does not name (add them to their room):\n{}",
        missing.join("\n")
    );
}

/// The functions of `text` (outside its `#[cfg(test)] mod`) with more
/// than `max` lines: (name, first line, lines).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let code = without_tests(text);
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let signature = trimmed
            .split("fn ")
            .nth(1)
            .filter(|_| {
                let head = trimmed.split("fn ").next().unwrap_or("");
                head.split_whitespace().all(|w| {
                    [
                        "pub",
                        "pub(crate)",
                        "pub(super)",
                        "async",
                        "const",
                        "unsafe",
                    ]
                    .contains(&w)
                })
            })
            .and_then(|rest| rest.split(['(', '<']).next())
            .filter(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            });
        let Some(name) = signature else {
            i += 1;
            continue;
        };
        // From the signature to the brace that closes its body.
        let (mut depth, mut opened, mut j) = (0i32, false, i);
        while j < lines.len() {
            for ch in lines[j].chars() {
                match ch {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && lines[j].trim_end().ends_with(';')) {
                break;
            }
            j += 1;
        }
        let n = j - i + 1;
        if opened && n > max {
            long.push((name.to_string(), i + 1, n));
        }
        i = j + 1;
    }
    long
}

/// No product function is longer than 120 lines: a longer one is split by
/// the steps it already has. Test support (the fake cloud, the live probe,
/// test files) is not product.
#[test]
fn no_product_function_is_over_120_lines() {
    let src = workspace().join("core/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for krate in ["plan/src", "sdk/src"] {
        sources(&workspace().join(krate), &mut files);
    }
    let mut long = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(workspace())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let support = rel.contains("/cloud/fake/")
            || rel.ends_with("/openstack/live.rs")
            || rel.ends_with("tests.rs")
            || rel.ends_with("test_seed.rs");
        if support {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (name, line, n) in long_functions(&text, 120) {
            long.push(format!("{rel}:{line} {name}: {n} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "functions over 120 lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_scan_finds_a_long_function() {
    let body = "    let x = 1;\n".repeat(130);
    let text = format!("pub async fn long_one(a: u8) -> u8 {{\n{body}    a\n}}\nfn short() {{}}\n");
    let found = long_functions(&text, 120);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "long_one");
    assert_eq!(found[0].2, 133);
}

/// The step keys a README table row names: backticked words that are a
/// step key of some kind (values like `pod` and rule keys are not).
fn keys_in_row(row: &str, every_key: &BTreeSet<&str>) -> BTreeSet<String> {
    row.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| {
            let word: String = code
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            every_key.contains(word.as_str()).then_some(word)
        })
        .collect()
}

#[test]
fn the_readme_step_table_names_exactly_the_keys_each_kind_takes() {
    use kuryr6::pipeline::fields_allowed;
    use kuryr6::plan::StepKind;
    let kinds = StepKind::ALL;
    let every_key: BTreeSet<&str> = kinds.iter().flat_map(|k| fields_allowed(*k)).collect();
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    for kind in kinds {
        let prefix = format!("| `{kind}` |");
        let row = readme
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("README's explicit-form table has no row {prefix}"));
        let in_readme = keys_in_row(&row[prefix.len()..], &every_key);
        let in_code: BTreeSet<String> =
            fields_allowed(kind).iter().map(|k| k.to_string()).collect();
        assert_eq!(in_readme, in_code, "README row for `{kind}` vs pipeline.rs");
    }
}
