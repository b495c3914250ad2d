//! Errors found in pipeline files, as values: a code, a message that says what
//! is wrong, a help text that says what would be right, and where.
//!
//! Rendering (terminal or JSON) lives here too, so every command reports the
//! same way. Invariant: a `Diagnostic` never contains a secret; it is built
//! only from pipeline text and computed plan values.

use crate::source::{LineCol, SourceFile, Span};
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;
use serde::Serialize;

/// Stable error codes: tests and users match on them, so never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Code {
    /// TOML syntax, unknown key, or wrong value type.
    E001,
    /// A required field is missing.
    E002,
    /// Not a valid address or CIDR.
    E003,
    /// CIDR with host bits set.
    E004,
    /// ip_version missing or not matching the CIDR.
    E005,
    /// Name used twice or not a valid name.
    E006,
    /// A reference that does not resolve.
    E007,
    /// Kubernetes service range too large for the Kubernetes version.
    E008,
    /// Kubernetes service range with fewer than 8 addresses.
    E009,
    /// Gateway outside its subnet.
    E010,
    /// Gateway inside an allocation pool.
    E011,
    /// Empty or reversed allocation pool.
    E012,
    /// Allocation pool outside its subnet.
    E013,
    /// Two prefixes overlap.
    E014,
    /// Address families inconsistent.
    E015,
    /// DHCP or address modes on an IPv6 subnet.
    E016,
    /// Field not valid for this kind of step, or unknown step kind.
    E017,
    /// Neutron could allocate addresses of the Kubernetes service range.
    E018,
    /// Load balancer VIP not usable.
    E019,
    /// Invalid Kubernetes version.
    E020,
    /// Conflicting or incomplete short-form settings.
    E021,
    /// Site prefix or site id not usable.
    E022,
    /// Pipeline lacks a step the others need.
    E023,
    /// Invalid security-group rule.
    E024,
    /// Invalid value for an enumerated or bounded field.
    E025,
    /// Allocation pools overlap each other.
    E026,
    /// File cannot be read.
    E027,
    /// A plugin cannot be used: missing file, sha256 pin, not a plugin, ABI.
    E028,
    /// A plugin failed while running a hook (deadline, memory, crash,
    /// invalid output, or its own error).
    E029,
    /// A policy plugin reported a violation.
    E030,
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// One problem in one pipeline, located by byte span when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub help: Option<String>,
    pub span: Option<Span>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            help: None,
            span: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn at(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }
}

/// A diagnostic resolved against its file, ready to print or serialize.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub code: Code,
    pub message: String,
    pub help: Option<String>,
}

impl Located {
    pub fn new(file: &SourceFile, d: &Diagnostic) -> Self {
        let pos: Option<LineCol> = d.span.as_ref().map(|s| file.line_col(s.start));
        Located {
            file: file.display_path(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            code: d.code,
            message: d.message.clone(),
            help: d.help.clone(),
        }
    }

    /// `file:line:col: error[CODE]: message` — the one-line form scripts grep for.
    pub fn headline(&self) -> String {
        let at = match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            _ => self.file.clone(),
        };
        format!("{at}: error[{}]: {}", self.code, self.message)
    }
}

/// Renders diagnostics of one file for a terminal: per problem a headline
/// (`file:line:col: error[CODE]: message`), then the source excerpt with the
/// offending text underlined and the help.
pub fn render(file: &SourceFile, diags: &[Diagnostic]) -> String {
    let config = term::Config::default();
    let simple = SimpleFile::new(file.display_path(), file.text.as_str());
    let mut out = String::new();
    for d in diags {
        out.push_str(&Located::new(file, d).headline());
        out.push('\n');
        let mut cs = CsDiagnostic::error().with_code(d.code.to_string());
        if let Some(span) = &d.span {
            cs = cs.with_labels(vec![Label::primary((), span.clone())]);
        }
        if let Some(help) = &d.help {
            cs = cs.with_notes(vec![format!("help: {help}")]);
        }
        if let Ok(excerpt) = term::emit_into_string(&config, &simple, &cs) {
            // The excerpt repeats the headline's message; keep only the source view.
            out.extend(excerpt.lines().skip(1).map(|l| format!("{l}\n")));
        }
    }
    out
}
