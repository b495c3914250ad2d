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
    /// IPv6 address modes on a subnet (DHCP on is warning W003).
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
    /// An API host's address cannot serve: not unicast, a family the
    /// pipeline lacks, or an address the plan gives to something else.
    E031,
    /// Warning: the service subnet's prefix length is not the guide's (/112
    /// for IPv6, /24 for IPv4).
    W001,
    /// Warning: a subnet's gateway or allocation pools differ from the
    /// guide's layout for its role (e.g. a service pool starting at ::8001).
    W002,
    /// Warning: DHCP is on for an IPv6 subnet (the guide uses --no-dhcp).
    W003,
    /// Warning: the pods' security group lacks the tcp, udp or sctp rule
    /// from the service subnet.
    W004,
    /// Warning: a plugin runs without a verified signature because its
    /// `[[plugin]]` table says `allow_unsigned = true`.
    W005,
    /// Warning: `member_mode = "L2"` without a listed group that admits
    /// tcp and udp from the pod subnet.
    W006,
}

/// How bad a diagnostic is. Warnings name a deviation from the guide that
/// works; they never fail a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// One problem in one pipeline, located by byte span when known.
///
/// `span` is the primary location: the value the message is about. A
/// problem that involves a second value (two overlapping prefixes, a gateway
/// and the pool it falls into) names that value's place in `labels`, because
/// the one the user changed may be either.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    pub span: Option<Span>,
    pub labels: Vec<Secondary>,
}

/// A second place that takes part in a problem, with what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Secondary {
    pub span: Span,
    pub message: String,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: terminal_safe(message.into()),
            help: None,
            span: None,
            labels: Vec::new(),
        }
    }

    /// A warning: a deviation from the guide that works as it is.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::new(code, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Adds a secondary location; `None` (a value with no place in the file,
    /// such as a default) adds nothing.
    pub fn also(mut self, span: Option<Span>, message: impl Into<String>) -> Self {
        if let Some(span) = span {
            self.labels.push(Secondary {
                span,
                message: terminal_safe(message.into()),
            });
        }
        self
    }

    /// The secondary labels worth showing: a label on the primary span, on a
    /// span already labelled, or on a span that encloses the primary (a
    /// whole step, where a value fell back to its step's place) says nothing
    /// the primary does not.
    pub fn shown_labels(&self) -> Vec<&Secondary> {
        let mut shown: Vec<&Secondary> = Vec::new();
        for l in &self.labels {
            let encloses_primary = self
                .span
                .as_ref()
                .is_some_and(|p| l.span.start <= p.start && p.end <= l.span.end);
            if !encloses_primary && !shown.iter().any(|s| s.span == l.span) {
                shown.push(l);
            }
        }
        shown
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(terminal_safe(help.into()));
        self
    }

    pub fn at(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }
}

/// Text for a terminal: control characters other than newline and tab
/// (escape sequences, carriage returns, backspaces) are shown escaped.
/// Diagnostics quote names and plugin output, which must not drive the
/// terminal or rewrite what was printed before.
pub fn terminal_safe(text: String) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text;
    }
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() && c != '\n' && c != '\t' {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// A diagnostic resolved against its file, ready to print or serialize.
/// `file`/`line`/`column` are the primary location; `labels` the secondary
/// ones (empty for most problems).
///
/// This is the one shape of every error kuryr6 prints as JSON: operational
/// errors (cloud, I/O, refusals) use it too, with a code such as
/// `cloud.auth` and no line (see `Located::operational`).
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    pub labels: Vec<LocatedLabel>,
}

/// A secondary label resolved against its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocatedLabel {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Located {
    pub fn new(file: &SourceFile, d: &Diagnostic) -> Self {
        let pos: Option<LineCol> = d.span.as_ref().map(|s| file.line_col(s.start));
        Located {
            file: file.display_path(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            code: d.code.to_string(),
            severity: d.severity,
            message: d.message.clone(),
            help: d.help.clone(),
            labels: d
                .shown_labels()
                .into_iter()
                .map(|l| {
                    let pos = file.line_col(l.span.start);
                    LocatedLabel {
                        file: file.display_path(),
                        line: pos.line,
                        column: pos.column,
                        message: l.message.clone(),
                    }
                })
                .collect(),
        }
    }

    /// An error that is not about a place in a file: the cloud refused, a
    /// file could not be written. `code` is a stable word (`cloud.auth`,
    /// `refused` …), `file` the pipeline the command worked on.
    pub fn operational(file: &str, code: &str, message: String, help: Option<String>) -> Self {
        Located {
            file: file.to_string(),
            line: None,
            column: None,
            code: code.to_string(),
            severity: Severity::Error,
            message,
            help,
            labels: Vec::new(),
        }
    }

    /// `file:line:col: error[CODE]: message` (or `warning[CODE]`) — the
    /// one-line form scripts grep for.
    pub fn headline(&self) -> String {
        let at = match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            _ => self.file.clone(),
        };
        format!(
            "{at}: {}[{}]: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

/// Renders diagnostics of one file for a terminal: per problem a headline
/// (`file:line:col: error[CODE]: message`), then the source excerpt with the
/// offending text underlined, the other values involved labelled, and the
/// help.
pub fn render(file: &SourceFile, diags: &[Diagnostic]) -> String {
    let config = term::Config::default();
    let simple = SimpleFile::new(file.display_path(), file.text.as_str());
    let mut out = String::new();
    for d in diags {
        out.push_str(&Located::new(file, d).headline());
        out.push('\n');
        let cs = match d.severity {
            Severity::Error => CsDiagnostic::error(),
            Severity::Warning => CsDiagnostic::warning(),
        };
        let mut cs = cs.with_code(d.code.to_string());
        let mut labels = Vec::new();
        if let Some(span) = &d.span {
            labels.push(Label::primary((), span.clone()));
        }
        for l in d.shown_labels() {
            labels.push(Label::secondary((), l.span.clone()).with_message(&l.message));
        }
        cs = cs.with_labels(labels);
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[plan]\npod_cidr = \"fd10::/64\"\nservice_cidr = \"fd10::/112\"\n";

    fn span_of(needle: &str) -> Span {
        let start = TEXT.find(needle).unwrap();
        start..start + needle.len()
    }

    fn two_values() -> Diagnostic {
        Diagnostic::new(Code::E014, "overlap")
            .help("pick another")
            .at(Some(span_of("\"fd10::/112\"")))
            .also(Some(span_of("\"fd10::/64\"")), "pod subnet")
    }

    #[test]
    fn labels_that_add_no_place_are_not_shown() {
        let d = two_values()
            .also(Some(span_of("\"fd10::/112\"")), "the primary again")
            .also(Some(span_of("\"fd10::/64\"")), "a second label there")
            .also(Some(0..TEXT.len()), "encloses the primary")
            .also(None, "a default with no place");
        let shown: Vec<&str> = d
            .shown_labels()
            .iter()
            .map(|l| l.message.as_str())
            .collect();
        assert_eq!(shown, ["pod subnet"]);
    }

    #[test]
    fn located_keeps_the_primary_and_adds_labels() {
        let file = SourceFile::new("p.toml", TEXT);
        let l = Located::new(&file, &two_values());
        assert_eq!((l.line, l.column), (Some(3), Some(16)));
        assert_eq!(
            l.labels,
            [LocatedLabel {
                file: "p.toml".into(),
                line: 2,
                column: 12,
                message: "pod subnet".into(),
            }]
        );
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["line"], 3);
        assert_eq!(json["labels"][0]["line"], 2);
        assert_eq!(json["labels"][0]["file"], "p.toml");
        let plain = Located::new(&file, &Diagnostic::new(Code::E001, "x"));
        assert_eq!(
            serde_json::to_value(&plain).unwrap()["labels"],
            serde_json::json!([])
        );
    }

    #[test]
    fn text_shows_both_lines_and_the_label() {
        let file = SourceFile::new("p.toml", TEXT);
        let out = render(&file, &[two_values()]);
        assert!(
            out.starts_with("p.toml:3:16: error[E014]: overlap\n"),
            "{out}"
        );
        assert!(out.contains("2 │ pod_cidr"), "{out}");
        assert!(out.contains("3 │ service_cidr"), "{out}");
        assert!(out.contains("- pod subnet"), "{out}");
    }
}
