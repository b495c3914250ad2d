//! Reading a pipeline file into a validated plan: parse (TOML, with spans)
//! → lower (short form expansion, defaults) → validate (all rules).
//! All problems of a file are returned together; a file with any problem
//! yields no plan, so nothing can act on a half-valid pipeline.

use crate::diag::{Code, Diagnostic};
use crate::lower::{self, Spans};
use crate::pipeline::RawPipeline;
use crate::plan::Plan;
use crate::source::SourceFile;
use crate::validate;
use std::path::Path;

/// A pipeline that passed every rule.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub source: SourceFile,
    pub plan: Plan,
    pub spans: Spans,
}

/// A pipeline that did not; `diagnostics` is never empty.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub source: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn load(path: &Path) -> Result<Loaded, Rejected> {
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
    let lowered = match lower::lower(&raw, 0..source.text.len()) {
        Ok(l) => l,
        Err(diagnostics) => {
            return Err(Rejected {
                source,
                diagnostics,
            });
        }
    };
    let diagnostics = validate::plan(&lowered.plan, &lowered.spans);
    if diagnostics.is_empty() {
        Ok(Loaded {
            source,
            plan: lowered.plan,
            spans: lowered.spans,
        })
    } else {
        Err(Rejected {
            source,
            diagnostics,
        })
    }
}

impl Loaded {
    /// Re-checks a plan that something other than the file produced (a
    /// plugin): the same rules, with errors pointing at the original file.
    pub fn revalidate(&self, plan: Plan) -> Result<Loaded, Rejected> {
        let diagnostics = validate::plan(&plan, &self.spans);
        if diagnostics.is_empty() {
            Ok(Loaded {
                source: self.source.clone(),
                plan,
                spans: self.spans.clone(),
            })
        } else {
            Err(Rejected {
                source: self.source.clone(),
                diagnostics,
            })
        }
    }
}
