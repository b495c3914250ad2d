//! A pipeline after loading: `Loaded` (passed every rule) or `Rejected`
//! (the diagnostics why not). Its own module so that loading (`load`) and
//! the plugins that rewrite a loaded plan (`plugin::apply`) both depend on
//! it, and not on each other.

use crate::diag::Diagnostic;
use crate::lower::Spans;
use crate::plan::Plan;
use crate::source::SourceFile;
use crate::validate;

/// A pipeline that passed every rule.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub source: SourceFile,
    pub plan: Plan,
    pub spans: Spans,
    /// Deviations from the guide (`validate::deviations`); never errors.
    pub warnings: Vec<crate::diag::Diagnostic>,
    /// The pipeline's `[cloud]` table, if it names one.
    pub cloud: Option<crate::cloud_choice::CloudRef>,
    /// Its `[[plugin]]` tables, checked (`plugin::spec`): the policy gate
    /// runs across files after loading and reads them here, not from the
    /// text again.
    pub plugins: Vec<crate::plugin::spec::Spec>,
}

/// A pipeline that did not; `diagnostics` is never empty.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub source: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Re-checks a plan that something other than the file produced (a
    /// plugin): the same rules, with errors pointing at the original file.
    pub fn revalidate(&self, plan: Plan) -> Result<Loaded, Rejected> {
        let diagnostics = validate::plan(&plan, &self.spans);
        if diagnostics.is_empty() {
            Ok(Loaded {
                source: self.source.clone(),
                warnings: validate::deviations(&plan, &self.spans),
                plan,
                spans: self.spans.clone(),
                cloud: self.cloud.clone(),
                plugins: self.plugins.clone(),
            })
        } else {
            Err(Rejected {
                source: self.source.clone(),
                diagnostics,
            })
        }
    }
}
