//! The `kuryr6 plugin push|pull|lock|verify` commands (part of the kuryr6
//! binary, not the library): arguments in, kuryr6::plugin::dist calls,
//! text out. Exit codes: 0 done, 1 registry or store unusable, 2 refused
//! (bad input, lock disagreement, untrusted or missing signature).

use kuryr6::diag;
use kuryr6::pipeline::RawPipeline;
use kuryr6::plugin::dist::{self, DistError, Policy, Trusted};
use kuryr6::plugin::lock::Lock;
use kuryr6::plugin::reference::Reference;
use kuryr6::plugin::signature;
use kuryr6::plugin::store::{Store, sha256_digest};
use kuryr6::plugin::{PluginError, hooks};
use kuryr6::source::SourceFile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn fail(subject: &str, e: &DistError) -> ExitCode {
    eprintln!("error[{}]: {subject} {e}\nhelp: {}", e.kind(), e.help());
    match e {
        DistError::Registry(_) | DistError::Store(_) => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

fn usage(message: String) -> ExitCode {
    eprintln!("kuryr6 plugin: {message}");
    ExitCode::from(2)
}

fn describe(t: &Trusted) -> String {
    match t {
        Trusted::Signed { key_id, origin } => format!("signed by {key_id} (trusted: {origin})"),
        Trusted::Unsigned(why) => format!("NOT VERIFIED, runs under allow_unsigned: {why}"),
        Trusted::Pinned => "pinned by sha256; no signature asked for (path plugin)".into(),
    }
}

pub fn push(wasm: &Path, target: &str, signature: Option<&Path>, insecure: bool) -> ExitCode {
    let reference = match Reference::parse(target) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let bytes = match std::fs::read(wasm) {
        Ok(b) => b,
        Err(e) => return usage(format!("cannot read {}: {e}", wasm.display())),
    };
    // A component starts with the wasm magic and layer 1 (a core module
    // has layer 0): refuse anything else before it reaches a registry.
    if bytes.get(..8) != Some(&[0, b'a', b's', b'm', 0x0d, 0, 1, 0][..]) {
        return usage(format!(
            "{} is not a WebAssembly component (build it for wasm32-wasip2 with kuryr6-plugin-sdk)",
            wasm.display()
        ));
    }
    let sig_path = signature.map(Path::to_path_buf).or_else(|| {
        let mut p = wasm.as_os_str().to_owned();
        p.push(".minisig");
        Some(PathBuf::from(p)).filter(|p| p.exists())
    });
    let sig = match &sig_path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) if signature::signer_of(&t).is_some() => Some(t),
            Ok(_) => return usage(format!("{} is not a minisign signature", p.display())),
            Err(e) => return usage(format!("cannot read {}: {e}", p.display())),
        },
        None => None,
    };
    match dist::push(&bytes, &reference, sig.as_deref(), insecure) {
        Ok(p) => {
            println!("pushed    {reference}");
            println!("manifest  {}", p.manifest);
            println!("layer     {} ({} bytes)", p.layer, p.size);
            match (
                &p.signature_tag,
                sig.as_deref().and_then(signature::signer_of),
            ) {
                (Some(tag), Some(id)) => println!("signature {tag} (key {id})"),
                _ => println!(
                    "signature none: operators must trust it with allow_unsigned = true (sign with minisign -Sm {} and push again)",
                    wasm.display()
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&reference.to_string(), &e),
    }
}

fn open_store() -> Result<Store, ExitCode> {
    Store::open_default().map_err(|e| fail("the plugin store", &e.into()))
}

pub fn pull(source: &str, insecure: bool) -> ExitCode {
    let reference = match Reference::parse(source) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let store = match open_store() {
        Ok(s) => s,
        Err(c) => return c,
    };
    let keys = match signature::shared_keys() {
        Ok(k) => k,
        Err(e) => return usage(e),
    };
    match dist::pull(&reference, insecure, &store) {
        Ok(p) => {
            println!("pulled    {reference}");
            println!("manifest  {}", p.manifest);
            println!("layer     {} ({} bytes)", p.layer, p.size);
            println!("store     {}", store.blob_path(&p.layer).display());
            let policy = Policy {
                keys,
                allow_unsigned: false,
            };
            let verdict =
                match dist::check_signature(source, &p.bytes, p.signature.as_deref(), &policy) {
                    Ok(t) => describe(&t),
                    Err(e) => format!("it {e} [{}]", e.kind()),
                };
            println!("signature {verdict}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(source, &e),
    }
}

/// A pipeline's `[[plugin]]` tables, or the rendered reason it has none.
fn pipeline_specs(path: &Path) -> Result<(SourceFile, Vec<hooks::Spec>), ExitCode> {
    let source = SourceFile::read(path).map_err(|e| {
        eprintln!("kuryr6 plugin: cannot read {}: {e}", path.display());
        ExitCode::from(2)
    })?;
    let raw: RawPipeline = match toml::from_str(&source.text) {
        Ok(r) => r,
        Err(e) => {
            let d = diag::Diagnostic::new(diag::Code::E001, e.message().trim().to_string())
                .at(e.span());
            eprint!("{}", diag::render(&source, &[d]));
            return Err(ExitCode::from(2));
        }
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    match hooks::specs(&raw, &dir) {
        Ok(specs) => Ok((source, specs)),
        Err(diags) => {
            eprint!("{}", diag::render(&source, &diags));
            Err(ExitCode::from(2))
        }
    }
}

fn report(source: &SourceFile, spec: &hooks::Spec, e: PluginError) {
    let d = hooks::diagnostic(spec, &e);
    eprint!("{}", diag::render(source, &[d]));
}

pub fn lock(pipelines: &[PathBuf], update: bool) -> ExitCode {
    let store = match open_store() {
        Ok(s) => s,
        Err(c) => return c,
    };
    let mut by_dir: BTreeMap<PathBuf, Vec<&PathBuf>> = BTreeMap::new();
    for p in pipelines {
        by_dir
            .entry(p.parent().map(Path::to_path_buf).unwrap_or_default())
            .or_default()
            .push(p);
    }
    let mut code = ExitCode::SUCCESS;
    for (dir, files) in by_dir {
        let lock_path = dist::lock_path(&dir);
        let old = match dist::read_lock(&lock_path) {
            Ok(l) => l.unwrap_or_default(),
            Err(e) => {
                code = fail(&lock_path.display().to_string(), &e);
                continue;
            }
        };
        let mut new = Lock::default();
        let mut ok = true;
        for file in files {
            let (source, specs) = match pipeline_specs(file) {
                Ok(x) => x,
                Err(c) => {
                    code = c;
                    ok = false;
                    continue;
                }
            };
            for spec in &specs {
                let Some(oci) = &spec.oci else { continue };
                match dist::resolve(oci, &store, &spec.policy, old.get(&oci.text), update) {
                    Ok(f) => {
                        println!("locked    {}", oci.text);
                        println!("  manifest  {}", f.entry.manifest);
                        println!("  layer     {} ({} bytes)", f.entry.layer, f.entry.size);
                        println!("  signature {}", describe(&f.trusted));
                        new.put(f.entry);
                    }
                    Err(error) => {
                        code = match error {
                            DistError::Registry(_) | DistError::Store(_) => ExitCode::from(1),
                            _ => ExitCode::from(2),
                        };
                        report(
                            &source,
                            spec,
                            PluginError::Distribution {
                                plugin: spec.label.clone(),
                                error,
                            },
                        );
                        ok = false;
                    }
                }
            }
        }
        if !ok {
            eprintln!("kuryr6 plugin lock: {} not written", lock_path.display());
            continue;
        }
        // An entry no pipeline given here names is kept while another
        // pipeline of the directory names it, and dropped (and said so)
        // once none does, as `terraform init` drops unused providers. If a
        // pipeline of the directory cannot be read, nothing is dropped.
        let resolved: Vec<String> = new.entries.iter().map(|e| e.source.clone()).collect();
        let (named, unreadable) = hooks::sources_named_in(&dir);
        let shown = if dir.as_os_str().is_empty() {
            Path::new(".").display()
        } else {
            dir.display()
        };
        let unreadable: Vec<String> = unreadable.iter().map(|p| p.display().to_string()).collect();
        for e in new.carry_over(old, |s| named.contains(s) || !unreadable.is_empty()) {
            println!(
                "dropped   {} (no pipeline in {shown} names it any more)",
                e.source
            );
        }
        if !unreadable.is_empty() {
            for e in &new.entries {
                if !named.contains(&e.source) && !resolved.contains(&e.source) {
                    println!(
                        "kept      {} (no pipeline given names it; {} cannot be read and may)",
                        e.source,
                        unreadable.join(", ")
                    );
                }
            }
        }
        match new.write(&lock_path) {
            Ok(()) => println!(
                "wrote {} ({} source(s))",
                lock_path.display(),
                new.entries.len()
            ),
            Err(e) => {
                eprintln!(
                    "kuryr6 plugin lock: cannot write {}: {e}",
                    lock_path.display()
                );
                code = ExitCode::from(1);
            }
        }
    }
    code
}

pub fn verify(target: &Path, extra_keys: &[String]) -> ExitCode {
    if target.extension().is_some_and(|e| e == "toml") {
        return verify_pipeline(target);
    }
    let bytes = match std::fs::read(target) {
        Ok(b) => b,
        Err(e) => return usage(format!("cannot read {}: {e}", target.display())),
    };
    let mut keys = match signature::shared_keys() {
        Ok(k) => k,
        Err(e) => return usage(e),
    };
    for k in extra_keys {
        match signature::parse_key(k, Path::new("."), "--key") {
            Ok(key) => keys.push(key),
            Err(e) => return usage(e),
        }
    }
    let mut sig_path = target.as_os_str().to_owned();
    sig_path.push(".minisig");
    let sig = std::fs::read_to_string(PathBuf::from(&sig_path)).ok();
    println!("file      {}", target.display());
    println!("sha256    {}", sha256_digest(&bytes));
    let label = target.display().to_string();
    let policy = Policy {
        keys,
        allow_unsigned: false,
    };
    match dist::check_signature(&label, &bytes, sig.as_deref(), &policy) {
        Ok(t) => {
            println!("signature {}", describe(&t));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&label, &e),
    }
}

fn verify_pipeline(path: &Path) -> ExitCode {
    let (source, specs) = match pipeline_specs(path) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let lock = specs
        .first()
        .and_then(|s| dist::read_lock(&s.lock_path).ok().flatten());
    let mut code = ExitCode::SUCCESS;
    for spec in &specs {
        match hooks::verified_bytes(spec) {
            Ok((bytes, trusted)) => {
                println!("ok        {}", spec.label);
                println!("  sha256    {}", sha256_digest(&bytes));
                if let Some(e) = spec.oci.as_ref().and_then(|o| lock.as_ref()?.get(&o.text)) {
                    println!("  manifest  {} (as locked)", e.manifest);
                }
                println!("  signature {}", describe(&trusted));
            }
            Err(e) => {
                code = ExitCode::from(2);
                report(&source, spec, e);
            }
        }
    }
    if specs.is_empty() {
        println!("{}: no [[plugin]] tables", path.display());
    }
    code
}
