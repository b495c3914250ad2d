//! Reading a pipeline file into a validated plan: parse (TOML, with spans)
//! → lower (short form expansion, defaults) → validate (all rules).
//! All problems of a file are returned together; a file with any problem
//! yields no plan, so nothing can act on a half-valid pipeline.

use crate::diag::{Code, Diagnostic};
use crate::lower;
use crate::pipeline::RawPipeline;
use crate::source::SourceFile;
use crate::validate;
use std::path::Path;

pub use crate::loaded::{Loaded, Rejected};

/// Loads one pipeline, plugins and policy hooks included.
pub fn load(path: &Path) -> Result<Loaded, Rejected> {
    let mut results = load_many(&[path]);
    results.pop().unwrap_or_else(|| load_file(path))
}

/// Loads several pipelines, then runs their policy plugins across all of
/// them (a policy sees every site that names it), so `kuryr6 check
/// sites/*.toml` judges the sites together before any API call.
pub fn load_many<P: AsRef<Path>>(paths: &[P]) -> Vec<Result<Loaded, Rejected>> {
    let mut results: Vec<_> = paths.iter().map(|p| load_file(p.as_ref())).collect();
    crate::plugin::policy_gate(&mut results);
    results
}

fn load_file(path: &Path) -> Result<Loaded, Rejected> {
    match SourceFile::read(path) {
        Ok(source) => load_source(source),
        Err(e) => Err(Rejected {
            source: SourceFile::new(path, ""),
            diagnostics: vec![Diagnostic::new(Code::E027, format!("cannot read {}: {e}", path.display()))
                .help("check the path; kuryr6 takes pipeline files such as examples/seed-ipv6/pipeline.toml")],
        }),
    }
}

pub fn load_source(source: SourceFile) -> Result<Loaded, Rejected> {
    let raw: RawPipeline = match toml::from_str(&source.text) {
        Ok(raw) => raw,
        Err(e) => {
            let d = Diagnostic::new(Code::E001, e.message().trim().to_string())
                .help("see the pipeline.toml reference in README.md for the keys each table takes")
                .at(e.span());
            return Err(Rejected {
                source,
                diagnostics: vec![d],
            });
        }
    };
    let cloud = crate::cloud_choice::CloudRef::read(&raw);
    let lowered = match lower::lower(&raw) {
        Ok(l) => l,
        Err(mut diagnostics) => {
            diagnostics.extend(cloud.err().unwrap_or_default());
            return Err(Rejected {
                source,
                diagnostics,
            });
        }
    };
    let mut diagnostics = validate::plan(&lowered.plan, &lowered.spans);
    let cloud = match cloud {
        Ok(c) => c,
        Err(d) => {
            diagnostics.extend(d);
            None
        }
    };
    if diagnostics.is_empty() {
        // Plugins see only plans that are valid as written; their output is
        // validated again (`Loaded::revalidate`).
        crate::plugin::apply(
            &raw,
            Loaded {
                source,
                plan: lowered.plan,
                spans: lowered.spans,
                warnings: Vec::new(),
                cloud,
                // Set by `plugin::apply` from the `[[plugin]]` tables.
                plugins: Vec::new(),
            },
        )
        .map(|mut l| {
            // Judged on the final plan, after any plugin changed it; after
            // the plugins' own warnings (an unsigned plugin, W005).
            l.warnings.extend(validate::deviations(&l.plan, &l.spans));
            l
        })
    } else {
        Err(Rejected {
            source,
            diagnostics,
        })
    }
}
