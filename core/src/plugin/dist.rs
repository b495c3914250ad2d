//! Distribution of plugins through OCI registries: what `push`, `pull`,
//! `lock` and the pipeline loader do with a registry (oci.rs), the local
//! store (store.rs), the lock file (lock.rs) and signatures (signature.rs),
//! and the one decision of whether a plugin's bytes may run.
//!
//! Order for an `oci://` plugin of a pipeline (`load_locked`), all before
//! any cloud API call:
//! 1. its lock entry must exist (`LockMissing`) and agree with a digest
//!    the source pins (`LockMismatch`);
//! 2. the locked manifest and layer come from the store, each hashed
//!    against its name (`Tampered`); only when they are not there is the
//!    registry asked: the tag must still resolve to the locked manifest
//!    (`LockMismatch`), every blob must hash to its digest (`Tampered`);
//! 3. the layer must be the locked one (sha256 and size) and match a
//!    `sha256` the table pins;
//! 4. its signature must verify with a trusted key (`Unsigned`,
//!    `UntrustedSigner`, `BadSignature`) and be by the locked signer
//!    (`LockMismatch`), unless the table says `allow_unsigned = true` and
//!    the lock records it: then it runs with a warning, every time.
//!
//! With the lock and the store in agreement nothing contacts a registry.

use super::lock::{self, Entry, Lock};
use super::oci::{self, Client, Descriptor, Manifest, OciError};
use super::reference::Reference;
use super::signature::{self, KeyId, SigError, TrustedKey};
use super::store::{Store, StoreError};
use std::path::{Path, PathBuf};

/// An `oci://` source of a `[[plugin]]` table.
#[derive(Debug, Clone)]
pub struct OciSource {
    pub reference: Reference,
    /// As written in the pipeline: the lock file's key.
    pub text: String,
    /// Plain HTTP allowed to a registry off loopback.
    pub insecure: bool,
}

/// What the operator trusts for one plugin.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub keys: Vec<TrustedKey>,
    pub allow_unsigned: bool,
}

/// Why a distributed plugin is refused. `kind()` names each for scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistError {
    /// The lock file has no entry for this source.
    LockMissing {
        source: String,
        lock: PathBuf,
    },
    /// The registry, the store or the pipeline disagrees with the lock.
    LockMismatch {
        source: String,
        what: String,
    },
    /// The lock file cannot be read (file:line in the message).
    LockFile(String),
    /// Bytes that do not hash to their digest (registry or store).
    Tampered(String),
    /// No signature, and `allow_unsigned` is not set.
    Unsigned {
        source: String,
        trusted: usize,
    },
    /// Signed by a key that is not trusted.
    UntrustedSigner {
        source: String,
        key_id: KeyId,
    },
    /// A signature that does not verify, or is no minisign signature.
    BadSignature {
        source: String,
        reason: String,
    },
    Registry(OciError),
    Store(String),
}

/// Worded to follow the plugin's name: "plugin X has no entry in …".
impl std::fmt::Display for DistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DistError::LockMissing { lock, .. } => {
                write!(f, "has no entry in {}", lock.display())
            }
            DistError::LockMismatch { what, .. } => {
                write!(f, "disagrees with the lock file: {what}")
            }
            DistError::LockFile(m) => write!(f, "cannot be checked: {m}"),
            DistError::Store(m) => write!(f, "cannot be kept: {m}"),
            DistError::Tampered(m) => write!(f, "is refused: {m}"),
            DistError::Unsigned { trusted, .. } => {
                write!(f, "is not signed ({trusted} trusted key(s) configured)")
            }
            DistError::UntrustedSigner { key_id, .. } => write!(
                f,
                "is signed by key {key_id}, which is not among the trusted keys"
            ),
            DistError::BadSignature { reason, .. } => write!(f, "has a bad signature: {reason}"),
            DistError::Registry(e) => write!(f, "cannot be fetched: {e}"),
        }
    }
}

impl DistError {
    pub fn kind(&self) -> &'static str {
        match self {
            DistError::LockMissing { .. } => "LockMissing",
            DistError::LockMismatch { .. } => "LockMismatch",
            DistError::LockFile(_) => "LockFile",
            DistError::Tampered(_) => "Tampered",
            DistError::Unsigned { .. } => "Unsigned",
            DistError::UntrustedSigner { .. } => "UntrustedSigner",
            DistError::BadSignature { .. } => "BadSignature",
            DistError::Registry(OciError::Digest { .. }) => "Tampered",
            DistError::Registry(_) => "Registry",
            DistError::Store(_) => "Store",
        }
    }

    pub fn help(&self) -> String {
        match self {
            DistError::LockMissing { .. } => {
                "run `kuryr6 plugin lock <pipeline>` to resolve the source and record it in kuryr6.lock".into()
            }
            DistError::LockMismatch { .. } => {
                "if the vendor really published this, review it, then `kuryr6 plugin lock --update <pipeline>`; otherwise pin the source by digest (oci://…@sha256:…)".into()
            }
            DistError::LockFile(_) => {
                "write the lock file again with `kuryr6 plugin lock <pipeline>`".into()
            }
            DistError::Tampered(_) | DistError::Registry(OciError::Digest { .. }) => {
                "the bytes are not what was published and locked; do not run them. Report it to the registry's operator; a store entry can be removed and pulled again".into()
            }
            DistError::Unsigned { .. } => {
                "ask the vendor for a minisign signature (`minisign -Sm plugin.wasm`, then `kuryr6 plugin push … --signature`), or set allow_unsigned = true on this [[plugin]] (recorded in kuryr6.lock, warned on every run)".into()
            }
            DistError::UntrustedSigner { .. } => {
                "if this is your vendor's key, add it to trusted_keys (on the [[plugin]], in [plugins], or in the shared trusted_keys file); otherwise do not run it".into()
            }
            DistError::BadSignature { .. } => {
                "the plugin was altered after signing, or the signature belongs to other bytes; do not run it".into()
            }
            DistError::Registry(_) => {
                "check the registry address and that it is up (HTTPS unless it is on loopback or the source says insecure = true / --insecure); a pipeline whose lock and store agree needs no registry".into()
            }
            DistError::Store(_) => {
                "the plugin store is $KURYR6_PLUGIN_STORE, else $XDG_CACHE_HOME/kuryr6/store, else ~/.cache/kuryr6/store; it must be yours and not writable by others".into()
            }
        }
    }
}

impl From<OciError> for DistError {
    fn from(e: OciError) -> Self {
        match e {
            OciError::Digest { .. } => DistError::Tampered(e.to_string()),
            e => DistError::Registry(e),
        }
    }
}

impl From<StoreError> for DistError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Tampered { .. } => {
                DistError::Tampered(format!("in the local plugin store: {e}"))
            }
            StoreError::Unusable(_) => DistError::Store(e.to_string()),
        }
    }
}

/// How a plugin's signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trusted {
    /// Verified with this trusted key (and where the key was listed).
    Signed { key_id: KeyId, origin: String },
    /// Runs unsigned under `allow_unsigned`; the reason, for the warning.
    Unsigned(String),
    /// A local path plugin pinned by sha256, with no signature asked for.
    Pinned,
}

impl Trusted {
    pub fn signer(&self) -> Option<KeyId> {
        match self {
            Trusted::Signed { key_id, .. } => Some(*key_id),
            Trusted::Unsigned(_) | Trusted::Pinned => None,
        }
    }
}

/// Applies the signature policy to a plugin's bytes.
pub fn check_signature(
    source: &str,
    bytes: &[u8],
    signature: Option<&str>,
    policy: &Policy,
) -> Result<Trusted, DistError> {
    let refused = match signature {
        None => DistError::Unsigned {
            source: source.to_string(),
            trusted: policy.keys.len(),
        },
        Some(sig) => match signature::verify(bytes, sig, &policy.keys) {
            Ok(v) => {
                return Ok(Trusted::Signed {
                    key_id: v.key_id,
                    origin: v.origin,
                });
            }
            Err(SigError::Untrusted { key_id }) => DistError::UntrustedSigner {
                source: source.to_string(),
                key_id,
            },
            Err(e) => DistError::BadSignature {
                source: source.to_string(),
                reason: e.to_string(),
            },
        },
    };
    if policy.allow_unsigned {
        Ok(Trusted::Unsigned(refused.to_string()))
    } else {
        Err(refused)
    }
}

/// A plugin ready to load, and how it got here.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub entry: Entry,
    pub trusted: Trusted,
    /// False when the lock and the store agreed (no registry contact).
    pub from_registry: bool,
}

/// A plugin as the registry serves it now.
struct Remote {
    manifest: Vec<u8>,
    manifest_digest: String,
    layer: Descriptor,
    bytes: Vec<u8>,
    signature: Option<String>,
}

/// Reads `reference` from its registry; with `expect`, refuses a manifest
/// or layer other than the locked one before downloading the layer.
async fn fetch(
    client: &Client,
    reference: &Reference,
    source: &str,
    expect: Option<&Entry>,
) -> Result<Remote, DistError> {
    let repo = &reference.repository;
    let (manifest, manifest_digest) = client
        .manifest(repo, reference.manifest_ref())
        .await?
        .ok_or_else(|| {
            DistError::Registry(OciError::NotFound(format!(
                "registry {} has no {} in {repo}",
                reference.registry,
                reference.manifest_ref()
            )))
        })?;
    if let Some(e) = expect
        && e.manifest != manifest_digest
    {
        return Err(DistError::LockMismatch {
            source: source.to_string(),
            what: format!(
                "{} now resolves to manifest {manifest_digest}, the lock says {} (the tag was moved to other content)",
                reference.manifest_ref(),
                e.manifest
            ),
        });
    }
    let parsed: Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| OciError::NotAPlugin(format!("its manifest is not OCI JSON: {e}")))?;
    let layer = parsed.wasm_layer().map_err(OciError::NotAPlugin)?.clone();
    if let Some(e) = expect
        && e.layer != layer.digest
    {
        return Err(DistError::LockMismatch {
            source: source.to_string(),
            what: format!("its layer is {}, the lock says {}", layer.digest, e.layer),
        });
    }
    // The manifest says how big the layer is: a registry sending more is
    // cut off there, not at MAX_LAYER.
    if layer.size > oci::MAX_LAYER as u64 {
        return Err(OciError::NotAPlugin(format!(
            "its layer is {} bytes, more than the {} a plugin may have",
            layer.size,
            oci::MAX_LAYER
        ))
        .into());
    }
    let bytes = client
        .blob(repo, &layer.digest, layer.size as usize)
        .await?;
    let signature = oci::pull_signature(client, repo, &manifest_digest).await?;
    Ok(Remote {
        manifest,
        manifest_digest,
        layer,
        bytes,
        signature,
    })
}

fn keep(store: &Store, r: &Remote) -> Result<(), DistError> {
    store.put(&r.manifest_digest, &r.manifest)?;
    store.put(&r.layer.digest, &r.bytes)?;
    if let Some(sig) = &r.signature {
        store.put_signature(&r.manifest_digest, sig)?;
    }
    Ok(())
}

/// The lock file beside a pipeline directory, read and checked.
pub fn read_lock(lock_path: &Path) -> Result<Option<Lock>, DistError> {
    Lock::read(lock_path).map_err(DistError::LockFile)
}

/// Step 1-4 of the module docs: the locked plugin's bytes, or why not.
pub fn load_locked(
    src: &OciSource,
    lock_path: &Path,
    store: &Store,
    policy: &Policy,
    pin: Option<&str>,
) -> Result<Fetched, DistError> {
    let source = src.text.as_str();
    let lock = read_lock(lock_path)?;
    let entry = lock
        .as_ref()
        .and_then(|l| l.get(source))
        .cloned()
        .ok_or_else(|| DistError::LockMissing {
            source: source.to_string(),
            lock: lock_path.to_path_buf(),
        })?;
    let mismatch = |what: String| DistError::LockMismatch {
        source: source.to_string(),
        what,
    };
    if let Some(d) = &src.reference.digest
        && *d != entry.manifest
    {
        return Err(mismatch(format!(
            "the pipeline pins manifest {d}, the lock says {}",
            entry.manifest
        )));
    }

    let stored = match (store.get(&entry.manifest)?, store.get(&entry.layer)?) {
        (Some(manifest), Some(bytes)) => Some((manifest, bytes)),
        _ => None,
    };
    let (bytes, signature, from_registry) = match stored {
        Some((manifest, bytes)) => {
            // Content-addressed, so it is the locked manifest; its layer
            // must be the locked one unless the lock was edited by hand.
            let layer = serde_json::from_slice::<Manifest>(&manifest)
                .map_err(|e| e.to_string())
                .and_then(|m| m.wasm_layer().map(|l| l.digest.clone()));
            match layer {
                Ok(l) if l == entry.layer => {}
                Ok(l) => {
                    return Err(mismatch(format!(
                        "manifest {} has layer {l}, the lock says {}",
                        entry.manifest, entry.layer
                    )));
                }
                Err(e) => return Err(DistError::Registry(OciError::NotAPlugin(e))),
            }
            (bytes, store.signature(&entry.manifest)?, false)
        }
        None => {
            let client = Client::new(&src.reference, src.insecure)?;
            let remote = oci::block_on(fetch(&client, &src.reference, source, Some(&entry)))?;
            keep(store, &remote)?;
            (remote.bytes, remote.signature, true)
        }
    };

    // `bytes` hash to `entry.layer`: the store re-hashed them against
    // their name, the registry client against the digest it asked for
    // (hashing 200 KB again would cost a warm start ~0.15 ms).
    let actual = &entry.layer;
    if bytes.len() as u64 != entry.size {
        return Err(DistError::Tampered(format!(
            "its .wasm is {} bytes, the lock says {} bytes",
            bytes.len(),
            entry.size
        )));
    }
    if let Some(pin) = pin {
        let pin = pin.trim().to_ascii_lowercase();
        if actual.strip_prefix("sha256:") != Some(pin.as_str()) {
            return Err(mismatch(format!(
                "the [[plugin]] table pins sha256 {pin}, the locked .wasm is {actual}"
            )));
        }
    }
    let trusted = check_signature(source, &bytes, signature.as_deref(), policy)?;
    match (&trusted, entry.signer) {
        (Trusted::Signed { key_id, .. }, Some(locked)) if *key_id != locked => {
            return Err(mismatch(format!(
                "it is signed by key {key_id}, the lock records signer {locked}"
            )));
        }
        (Trusted::Signed { key_id, .. }, None) => {
            return Err(mismatch(format!(
                "it is signed by key {key_id}, the lock records it as unsigned; lock it again"
            )));
        }
        (Trusted::Unsigned(_) | Trusted::Pinned, Some(locked)) => {
            return Err(mismatch(format!(
                "the lock records signer {locked}, but it has no valid signature by that key"
            )));
        }
        _ => {}
    }
    Ok(Fetched {
        bytes,
        entry,
        trusted,
        from_registry,
    })
}

/// Resolves a source at its registry now (for `kuryr6 plugin lock`),
/// keeps it in the store and returns its lock entry. With `existing`, a
/// different manifest is `LockMismatch` unless `update`.
pub fn resolve(
    src: &OciSource,
    store: &Store,
    policy: &Policy,
    existing: Option<&Entry>,
    update: bool,
) -> Result<Fetched, DistError> {
    let source = src.text.as_str();
    let client = Client::new(&src.reference, src.insecure)?;
    let remote = oci::block_on(fetch(&client, &src.reference, source, None))?;
    if let Some(e) = existing
        && !update
        && e.manifest != remote.manifest_digest
    {
        return Err(DistError::LockMismatch {
            source: source.to_string(),
            what: format!(
                "{} now resolves to manifest {}, the lock says {} (the tag was moved to other content)",
                src.reference.manifest_ref(),
                remote.manifest_digest,
                e.manifest
            ),
        });
    }
    let trusted = check_signature(source, &remote.bytes, remote.signature.as_deref(), policy)?;
    keep(store, &remote)?;
    let entry = Entry {
        source: source.to_string(),
        manifest: remote.manifest_digest.clone(),
        layer: remote.layer.digest.clone(),
        size: remote.bytes.len() as u64,
        signer: trusted.signer(),
        allow_unsigned: trusted.signer().is_none(),
    };
    Ok(Fetched {
        bytes: remote.bytes,
        entry,
        trusted,
        from_registry: true,
    })
}

/// What `push` published.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub manifest: String,
    pub layer: String,
    pub size: u64,
    pub signature_tag: Option<String>,
}

/// Publishes a `.wasm` (and its minisign signature) at `target`'s tag.
pub fn push(
    bytes: &[u8],
    target: &Reference,
    signature: Option<&str>,
    insecure: bool,
) -> Result<Pushed, DistError> {
    let Some(tag) = target.tag.clone().filter(|_| target.digest.is_none()) else {
        return Err(DistError::Registry(OciError::Http(format!(
            "push needs a tag and no digest: oci://{}/{}:TAG",
            target.registry, target.repository
        ))));
    };
    let client = Client::new(target, insecure)?;
    let created = oci::rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let repo = target.repository.clone();
    oci::block_on(async move {
        let layer = client.push_blob(&repo, oci::WASM_LAYER_TYPE, bytes).await?;
        let config_bytes = oci::wasm_config(&layer.digest, &created);
        let config = client
            .push_blob(&repo, oci::WASM_CONFIG_TYPE, &config_bytes)
            .await?;
        let manifest = oci::plugin_manifest(config, layer.clone(), &created);
        let digest = client.push_manifest(&repo, &tag, &manifest).await?;
        let signature_tag = match signature {
            Some(sig) => {
                let subject = Descriptor {
                    media_type: oci::MANIFEST_TYPE.into(),
                    digest: digest.clone(),
                    size: manifest.len() as u64,
                    annotations: None,
                };
                oci::push_signature(&client, &repo, subject, sig).await?;
                Some(oci::signature_tag(&digest))
            }
            None => None,
        };
        Ok(Pushed {
            manifest: digest,
            layer: layer.digest,
            size: layer.size,
            signature_tag,
        })
    })
}

/// What `pull` fetched into the store.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub manifest: String,
    pub layer: String,
    pub size: u64,
    pub signature: Option<String>,
    pub bytes: Vec<u8>,
}

/// Fetches `reference` into the store (no lock, no trust decision: that
/// is made when a pipeline loads it).
pub fn pull(reference: &Reference, insecure: bool, store: &Store) -> Result<Pulled, DistError> {
    let client = Client::new(reference, insecure)?;
    let source = reference.to_string();
    let remote = oci::block_on(fetch(&client, reference, &source, None))?;
    keep(store, &remote)?;
    Ok(Pulled {
        manifest: remote.manifest_digest,
        layer: remote.layer.digest,
        size: remote.bytes.len() as u64,
        signature: remote.signature,
        bytes: remote.bytes,
    })
}

/// The lock file path for pipelines in `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    lock::path_in(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::plugin::store::sha256_digest;

    /// A store holding one plugin (made-up bytes) and a lock entry for it,
    /// at a registry address nothing listens on: whatever succeeds here
    /// did not contact a registry.
    fn setup(tag: &str) -> (PathBuf, Store, OciSource, Entry, Vec<u8>) {
        let dir =
            std::env::temp_dir().join(format!("kuryr6-dist-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("store")).unwrap();
        let bytes = b"\0asm\x0d\0\x01\0 not really a component".to_vec();
        let layer = Descriptor {
            media_type: oci::WASM_LAYER_TYPE.into(),
            digest: sha256_digest(&bytes),
            size: bytes.len() as u64,
            annotations: None,
        };
        let config = oci::wasm_config(&layer.digest, "2026-01-01T00:00:00Z");
        let config = Descriptor {
            media_type: oci::WASM_CONFIG_TYPE.into(),
            digest: sha256_digest(&config),
            size: config.len() as u64,
            annotations: None,
        };
        let manifest = oci::plugin_manifest(config, layer.clone(), "2026-01-01T00:00:00Z");
        let manifest_digest = sha256_digest(&manifest);
        store.put(&manifest_digest, &manifest).unwrap();
        store.put(&layer.digest, &bytes).unwrap();
        let text = "oci://127.0.0.1:1/vendor/p:1.0.0".to_string();
        let src = OciSource {
            reference: Reference::parse(&text).unwrap(),
            text: text.clone(),
            insecure: false,
        };
        let entry = Entry {
            source: text,
            manifest: manifest_digest,
            layer: layer.digest,
            size: bytes.len() as u64,
            signer: None,
            allow_unsigned: true,
        };
        (dir, store, src, entry, bytes)
    }

    fn write_lock(dir: &Path, entry: &Entry) -> PathBuf {
        let path = lock::path_in(dir);
        Lock {
            entries: vec![entry.clone()],
        }
        .write(&path)
        .unwrap();
        path
    }

    fn unsigned_ok() -> Policy {
        Policy {
            keys: Vec::new(),
            allow_unsigned: true,
        }
    }

    /// A registry whose manifest says 16 bytes and whose blob endpoint
    /// streams on: the download stops at the manifest's size.
    #[test]
    fn a_layer_is_read_no_further_than_its_manifest_says() {
        let (dir, store, _, _, _) = setup("stream");
        let layer = Descriptor {
            media_type: oci::WASM_LAYER_TYPE.into(),
            digest: sha256_digest(b"0123456789abcdef"),
            size: 16,
            annotations: None,
        };
        let config = Descriptor {
            media_type: oci::WASM_CONFIG_TYPE.into(),
            digest: sha256_digest(b"{}"),
            size: 2,
            annotations: None,
        };
        let manifest = oci::plugin_manifest(config, layer, "2026-01-01T00:00:00Z");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = oci::tests::serve(listener, 2, move |head| {
            if head.contains("/manifests/") {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    oci::MANIFEST_TYPE,
                    manifest.len(),
                    String::from_utf8_lossy(&manifest)
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}",
                    "x".repeat(4 * 1024 * 1024)
                )
            }
        });
        let reference = Reference::parse(&format!("oci://127.0.0.1:{port}/ns/p:1")).unwrap();
        let e = pull(&reference, false, &store).unwrap_err();
        assert!(e.to_string().contains("larger than 16 bytes"), "{e}");
        let _ = server.join();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_locked_plugin_loads_from_the_store_without_a_registry() {
        let (dir, store, src, entry, bytes) = setup("store");
        let lock_path = write_lock(&dir, &entry);
        let f = load_locked(&src, &lock_path, &store, &unsigned_ok(), None).unwrap();
        assert_eq!(f.bytes, bytes);
        assert!(!f.from_registry);
        assert!(matches!(f.trusted, Trusted::Unsigned(_)));
        // The table's own sha256 pin is checked against the locked layer.
        let pin = entry.layer.trim_start_matches("sha256:");
        load_locked(&src, &lock_path, &store, &unsigned_ok(), Some(pin)).unwrap();
        let e = load_locked(
            &src,
            &lock_path,
            &store,
            &unsigned_ok(),
            Some(&"0".repeat(64)),
        )
        .unwrap_err();
        assert_eq!(e.kind(), "LockMismatch", "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn disagreements_with_the_lock_are_named_before_any_fetch() {
        let (dir, store, src, entry, _) = setup("refusals");
        let lock_path = lock::path_in(&dir);
        let e = load_locked(&src, &lock_path, &store, &unsigned_ok(), None).unwrap_err();
        assert_eq!(e.kind(), "LockMissing", "{e}");

        write_lock(&dir, &entry);
        // Unsigned, and the pipeline no longer allows it.
        let strict = Policy::default();
        let e = load_locked(&src, &lock_path, &store, &strict, None).unwrap_err();
        assert_eq!(e.kind(), "Unsigned", "{e}");
        // The lock says a vendor signed it, but nothing verifies.
        let signed = Entry {
            signer: Some(KeyId([1; 8])),
            allow_unsigned: false,
            ..entry.clone()
        };
        write_lock(&dir, &signed);
        let e = load_locked(&src, &lock_path, &store, &unsigned_ok(), None).unwrap_err();
        assert_eq!(e.kind(), "LockMismatch", "{e}");
        // A pipeline pinning another manifest than the lock.
        write_lock(&dir, &entry);
        let other = OciSource {
            reference: src
                .reference
                .at_digest(&format!("sha256:{}", "a".repeat(64))),
            ..src.clone()
        };
        let e = load_locked(&other, &lock_path, &store, &unsigned_ok(), None).unwrap_err();
        assert_eq!(e.kind(), "LockMismatch", "{e}");
        // The store's copy altered on disk.
        std::fs::write(store.blob_path(&entry.layer), b"other bytes").unwrap();
        let e = load_locked(&src, &lock_path, &store, &unsigned_ok(), None).unwrap_err();
        assert_eq!(e.kind(), "Tampered", "{e}");
        // Without the store copy the registry is asked, and it is not there.
        std::fs::remove_file(store.blob_path(&entry.layer)).unwrap();
        let e = load_locked(&src, &lock_path, &store, &unsigned_ok(), None).unwrap_err();
        assert_eq!(e.kind(), "Registry", "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
