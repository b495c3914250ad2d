//! The local content-addressed store of pulled plugins, so that a locked
//! pipeline runs without its registry. Files only; what to fetch and what
//! to trust is dist.rs's.
//!
//! Layout under `default_dir()`:
//!
//! - `blobs/sha256/<hex>`: manifests, configs and `.wasm` layers, each
//!   under the sha256 of its bytes;
//! - `signatures/<manifest hex>.minisig`: the vendor's signature of that
//!   manifest's layer, as pulled.
//!
//! Every read hashes the bytes again and compares them with the name, so a
//! blob altered on disk is refused (`Tampered`), never used; signatures are
//! verified against the trusted keys on every load. The directory must be
//! ours and not group/other-writable, files must be ours and no symlinks
//! (the checks of the compiled-plugin cache, cache.rs): the bytes are
//! hashed in memory and used from that same buffer.

use super::cache::{Miss, check_dir, create_private_dir, open_private, write_atomic};
use super::reference::check_digest;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest blob kept (a Python plugin is ~40 MB).
pub const MAX_BLOB: u64 = 256 * 1024 * 1024;

/// `$KURYR6_PLUGIN_STORE`, else `$XDG_CACHE_HOME/kuryr6/store`, else
/// `~/.cache/kuryr6/store`.
pub fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(v) = env("KURYR6_PLUGIN_STORE") {
        return Some(PathBuf::from(v));
    }
    if let Some(x) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("kuryr6").join("store"));
    }
    env("HOME").map(|h| PathBuf::from(h).join(".cache").join("kuryr6").join("store"))
}

/// What went wrong with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A blob's bytes do not hash to its name: altered on disk.
    Tampered { path: PathBuf, actual: String },
    /// Ownership, mode, symlink, or I/O.
    Unusable(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Tampered { path, actual } => write!(
                f,
                "{} holds bytes with digest {actual}: altered after it was pulled",
                path.display()
            ),
            StoreError::Unusable(why) => write!(f, "the plugin store is not usable: {why}"),
        }
    }
}

fn miss(m: Miss) -> StoreError {
    StoreError::Unusable(m.to_string())
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// An opened, checked store directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store at `default_dir()`.
    pub fn open_default() -> Result<Store, StoreError> {
        let dir = default_dir().ok_or_else(|| {
            StoreError::Unusable(
                "no store directory: set KURYR6_PLUGIN_STORE, XDG_CACHE_HOME or HOME".into(),
            )
        })?;
        Store::open(&dir)
    }

    /// Creates the directory (0700) if needed and checks it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(dir)
            .map_err(|e| StoreError::Unusable(format!("{}: {e}", dir.display())))?;
        check_dir(dir).map_err(miss)?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs").join("sha256").join(hex)
    }

    fn signature_path(&self, manifest: &str) -> PathBuf {
        let hex = manifest.strip_prefix("sha256:").unwrap_or(manifest);
        self.dir.join("signatures").join(format!("{hex}.minisig"))
    }

    /// The blob's bytes, checked against `digest`; `Ok(None)` if absent.
    pub fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_digest(digest).map_err(StoreError::Unusable)?;
        let Some(bytes) = self.read_private(&self.blob_path(digest))? else {
            return Ok(None);
        };
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(StoreError::Tampered {
                path: self.blob_path(digest),
                actual,
            });
        }
        Ok(Some(bytes))
    }

    /// Stores bytes under their digest; refuses bytes that are not `digest`.
    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = sha256_digest(bytes);
        if actual != digest {
            return Err(StoreError::Unusable(format!(
                "refusing to store {actual} under {digest}"
            )));
        }
        write_atomic(&self.blob_path(digest), bytes)
            .map_err(|e| StoreError::Unusable(format!("{}: {e}", self.dir.display())))
    }

    pub fn signature(&self, manifest: &str) -> Result<Option<String>, StoreError> {
        let Some(bytes) = self.read_private(&self.signature_path(manifest))? else {
            return Ok(None);
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| StoreError::Unusable("a stored signature is not UTF-8".into()))
    }

    pub fn put_signature(&self, manifest: &str, text: &str) -> Result<(), StoreError> {
        write_atomic(&self.signature_path(manifest), text.as_bytes())
            .map_err(|e| StoreError::Unusable(format!("{}: {e}", self.dir.display())))
    }

    fn read_private(&self, path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
        check_dir(&self.dir).map_err(miss)?;
        let (mut file, meta) = match open_private(path) {
            Ok(f) => f,
            Err(Miss::Absent) => return Ok(None),
            Err(m) => return Err(miss(m)),
        };
        if meta.len() > MAX_BLOB {
            return Err(StoreError::Unusable(format!(
                "{} is larger than {MAX_BLOB} bytes",
                path.display()
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| StoreError::Unusable(format!("{}: {e}", path.display())))?;
        Ok(Some(bytes))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_checked_against_their_names() {
        let dir = std::env::temp_dir().join(format!("kuryr6-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let d = sha256_digest(b"plugin");
        assert_eq!(store.get(&d).unwrap(), None);
        assert!(store.put(&d, b"other").is_err());
        store.put(&d, b"plugin").unwrap();
        assert_eq!(store.get(&d).unwrap().as_deref(), Some(&b"plugin"[..]));
        std::fs::write(store.blob_path(&d), b"swapped").unwrap();
        assert!(matches!(store.get(&d), Err(StoreError::Tampered { .. })));
        // A directory others may write is not used.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(store.get(&d), Err(StoreError::Unusable(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
