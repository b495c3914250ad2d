//! The `[[plugin]]` tables (and `[plugins]`) of one pipeline, checked and
//! resolved into `Spec`s. Its own module, apart from running the hooks
//! (`hooks`), so that a loaded pipeline (`loaded::Loaded`) can keep its
//! specs without depending on the code that runs them.

use super::{
    Facts, Hook, Limits, MAX_DEADLINE_MS, MAX_MEMORY_MIB,
    dist::{self, OciSource, Policy},
    reference::Reference,
    signature::{self, TrustedKey},
};
use crate::diag::{Code, Diagnostic};
use crate::pipeline::{RawPipeline, RawPlugin, S};
use crate::source::Span;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One `[[plugin]]` table, checked and resolved.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `path` or `source` as written: how messages name the plugin.
    pub label: String,
    /// `path` resolved against the pipeline file's directory (unused for
    /// an `oci://` source).
    pub path: PathBuf,
    /// `source = "oci://…"`: loaded through the lock file and the store.
    pub oci: Option<OciSource>,
    /// Trusted keys and `allow_unsigned` for this plugin.
    pub policy: Policy,
    /// A path plugin must be signed: its table lists `trusted_keys`.
    pub signature_required: bool,
    pub allow_unsigned_span: Option<Span>,
    /// `kuryr6.lock` beside the pipeline.
    pub lock_path: PathBuf,
    pub sha256: Option<String>,
    /// `hooks` if given; else every hook the plugin declares.
    pub hooks: Option<Vec<Hook>>,
    pub limits: Limits,
    pub facts: Facts,
    pub span: Span,
    pub path_span: Span,
    pub sha256_span: Option<Span>,
}

/// Reads the `[[plugin]]` tables (and `[plugins]`); `Err` lists every
/// problem.
pub fn specs(raw: &RawPipeline, pipeline_dir: &Path) -> Result<Vec<Spec>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut out = Vec::new();
    // `[plugins]` alone is still checked: a bad key there is an error
    // now, not when the first `[[plugin]]` is added.
    if raw.plugins.is_empty() && raw.plugin_settings.is_none() {
        return Ok(out);
    }
    let pipeline_keys = raw
        .plugin_settings
        .as_ref()
        .and_then(|p| p.get_ref().trusted_keys.as_ref())
        .map(|l| read_keys(l, "[plugins] trusted_keys", pipeline_dir, &mut diags))
        .unwrap_or_default();
    let shared_keys = match signature::shared_keys() {
        _ if raw.plugins.is_empty() => Vec::new(),
        Ok(k) => k,
        Err(e) => {
            diags.push(
                Diagnostic::new(Code::E025, format!("shared trusted keys: {e}"))
                    .help("fix or remove that line of the shared trusted_keys file")
                    .at(Some(raw.plugins[0].span())),
            );
            Vec::new()
        }
    };
    let lock_path = dist::lock_path(pipeline_dir);
    for table in &raw.plugins {
        let r = table.get_ref();
        let deadline_ms = bounded(
            &r.deadline_ms,
            "deadline_ms",
            1,
            MAX_DEADLINE_MS,
            &mut diags,
        );
        let memory_mib = bounded(&r.memory_mib, "memory_mib", 1, MAX_MEMORY_MIB, &mut diags);
        let fuel = bounded(&r.fuel, "fuel", 1, i64::MAX as u64, &mut diags);
        let hooks = r.hooks.as_ref().map(|list| parse_hooks(list, &mut diags));
        let facts: BTreeMap<String, String> = r
            .facts
            .iter()
            .flat_map(|f| f.get_ref())
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect();
        let Some((label, label_span, oci)) = origin(table, &mut diags) else {
            continue;
        };
        if oci.is_none()
            && let Some(i) = &r.insecure
        {
            diags.push(
                Diagnostic::new(Code::E025, "`insecure` applies to an oci:// source only")
                    .help("remove insecure = … from this path plugin")
                    .at(Some(i.span())),
            );
        }
        let own_keys = r
            .trusted_keys
            .as_ref()
            .map(|l| read_keys(l, "[[plugin]] trusted_keys", pipeline_dir, &mut diags));
        let signature_required = own_keys.is_some();
        let keys =
            own_keys.unwrap_or_else(|| pipeline_keys.iter().chain(&shared_keys).cloned().collect());
        let defaults = Limits::default();
        out.push(Spec {
            path: pipeline_dir.join(&label),
            oci,
            policy: Policy {
                keys,
                allow_unsigned: r.allow_unsigned.as_ref().is_some_and(|a| *a.get_ref()),
            },
            signature_required,
            allow_unsigned_span: r.allow_unsigned.as_ref().map(|a| a.span()),
            lock_path: lock_path.clone(),
            label,
            sha256: r.sha256.as_ref().map(|s| s.get_ref().trim().to_string()),
            hooks,
            limits: Limits {
                deadline: deadline_ms
                    .map(Duration::from_millis)
                    .unwrap_or(defaults.deadline),
                memory_mib: memory_mib.unwrap_or(defaults.memory_mib),
                fuel,
            },
            facts: Facts(facts.into_iter().collect()),
            span: table.span(),
            path_span: label_span,
            sha256_span: r.sha256.as_ref().map(|s| s.span()),
        });
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        diags.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
        Err(diags)
    }
}

/// Keys of a list, each a base64 key or a key file relative to the
/// pipeline; a bad one is reported at its string.
fn read_keys(
    list: &S<Vec<S<String>>>,
    origin: &str,
    pipeline_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Vec<TrustedKey> {
    let mut keys: Vec<TrustedKey> = Vec::new();
    for k in list.get_ref() {
        match signature::parse_key(k.get_ref(), pipeline_dir, origin) {
            Ok(key) => keys.push(key),
            Err(e) => diags.push(
                Diagnostic::new(Code::E025, format!("trusted key: {e}"))
                    .help("a trusted key is a minisign public key (the RW… line of the vendor's .pub file) or the path of that file")
                    .at(Some(k.span())),
            ),
        }
    }
    keys
}

/// A number `key` within `min..=max`, else reported at its value.
fn bounded(
    v: &Option<S<i64>>,
    key: &str,
    min: u64,
    max: u64,
    diags: &mut Vec<Diagnostic>,
) -> Option<u64> {
    let v = v.as_ref()?;
    match u64::try_from(*v.get_ref()) {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::E025,
                    format!("plugin {key} {} is out of range", v.get_ref()),
                )
                .help(format!("{key} is a number from {min} to {max}"))
                .at(Some(v.span())),
            );
            None
        }
    }
}

/// The hooks a table names, each once; unknown ones reported.
fn parse_hooks(list: &S<Vec<S<String>>>, diags: &mut Vec<Diagnostic>) -> Vec<Hook> {
    let mut parsed = Vec::new();
    for h in list.get_ref() {
        match Hook::parse(h.get_ref()) {
            Some(hook) if !parsed.contains(&hook) => parsed.push(hook),
            Some(_) => {}
            None => diags.push(
                Diagnostic::new(Code::E025, format!("unknown plugin hook `{}`", h.get_ref()))
                    .help("hooks are \"plan\", \"naming\" and \"policy\"")
                    .at(Some(h.span())),
            ),
        }
    }
    parsed
}

/// Where a table's plugin comes from: its label as written, the label's
/// span, and the registry source if it is one. `None` when the table has
/// neither or both of `path` and `source`, or a bad source (reported).
fn origin(
    table: &S<RawPlugin>,
    diags: &mut Vec<Diagnostic>,
) -> Option<(String, Span, Option<OciSource>)> {
    let r = table.get_ref();
    match (&r.path, &r.source) {
        (Some(p), None) => Some((p.get_ref().clone(), p.span(), None)),
        (None, Some(src)) => match Reference::parse(src.get_ref().trim()) {
            Ok(reference) => Some((
                src.get_ref().clone(),
                src.span(),
                Some(OciSource {
                    reference,
                    text: src.get_ref().trim().to_string(),
                    insecure: r.insecure.as_ref().is_some_and(|i| *i.get_ref()),
                }),
            )),
            Err(e) => {
                diags.push(
                    Diagnostic::new(Code::E025, format!("plugin source: {e}"))
                        .help("write source = \"oci://HOST[:PORT]/NAMESPACE/NAME:TAG\" or \"oci://…@sha256:<64 hex>\"")
                        .at(Some(src.span())),
                );
                None
            }
        },
        (p, src) => {
            let message = if p.is_some() {
                "a [[plugin]] has both `path` and `source`"
            } else {
                "a [[plugin]] has neither `path` nor `source`"
            };
            diags.push(
                Diagnostic::new(Code::E025, message)
                    .help("give exactly one: path = \"plugins/x.wasm\" (a local file, pinned by sha256) or source = \"oci://HOST/NS/NAME:TAG\" (locked in kuryr6.lock)")
                    .at(Some(src.as_ref().map(|s| s.span()).unwrap_or_else(|| table.span()))),
            );
            None
        }
    }
}
