//! The on-disk cache of compiled plugins. File handling and authentication
//! only; host.rs decides what to store and deserializes what `read` returns.
//!
//! A compiled artefact is native code: `Component::deserialize` runs it.
//! So nothing is deserialized unless this process, or another process of
//! the same user, wrote it for exactly this plugin:
//!
//! - every artefact carries an HMAC-SHA256 over the plugin's sha256, the
//!   engine key and the artefact bytes, under a 32-byte random key kept in
//!   `<dir>/key` (0600, made on first use). Someone who can write the
//!   directory but not read the key cannot make an artefact that verifies,
//!   and an artefact valid for another plugin (renamed) does not verify for
//!   this one;
//! - the directory must be ours and not group/other-writable, and neither
//!   the directory, the key nor an artefact may be a symlink or another
//!   user's file (then someone else could swap the key itself);
//! - the bytes are verified in memory and deserialized from that same
//!   buffer, so nothing can be swapped between the check and the use.
//!
//! Why the HMAC and not only ownership and modes: the modes say who could
//! have written a file, the HMAC says that we did. It also covers cases the
//! modes cannot see (a cache restored from a backup or shared through a
//! network file system, a file written by another tool as the same user).
//! Anything that does not check out is a miss (`Miss`, logged at debug
//! level by the host): the plugin is compiled again.
//!
//! Invariants: an artefact's name is `<plugin sha256>-<engine key>.cwasm`,
//! so a changed plugin, wasmtime version or engine config can never pick up
//! a stale artefact; artefacts appear by atomic rename, so a reader never
//! sees a partial file.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of an artefact file: format and version of this layout.
const MAGIC: &[u8; 8] = b"K6CWASM1";
/// The HMAC's domain, so the key can never authenticate anything else.
const DOMAIN: &[u8] = b"kuryr6 plugin cache v1\0";
const TAG_LEN: usize = 32;
const KEY_LEN: usize = 32;
const KEY_FILE: &str = "key";
/// Artefacts of our plugins are a few MB; a Python one ~60 MB.
const MAX_ARTEFACT: u64 = 512 * 1024 * 1024;

/// `$KURYR6_PLUGIN_CACHE` (empty or "off" disables caching), else
/// `$XDG_CACHE_HOME/kuryr6/plugins`, else `$HOME/.cache/kuryr6/plugins`.
pub fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(v) = std::env::var_os("KURYR6_PLUGIN_CACHE") {
        return (!v.is_empty() && v != "off").then(|| PathBuf::from(v));
    }
    if let Some(x) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("kuryr6").join("plugins"));
    }
    env("HOME").map(|h| {
        PathBuf::from(h)
            .join(".cache")
            .join("kuryr6")
            .join("plugins")
    })
}

pub fn artefact_path(dir: &Path, sha256: &str, engine_key: &str) -> PathBuf {
    dir.join(format!("{sha256}-{engine_key}.cwasm"))
}

/// Why a cached artefact was not used. Never an error for the user: the
/// plugin is compiled again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No artefact yet (the common case).
    Absent,
    /// The directory or the file may have been written by someone else.
    Untrusted(String),
    /// The artefact's HMAC does not verify: damaged, swapped, or made for
    /// another plugin or under another key.
    Unauthenticated(PathBuf),
    Io(String),
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Absent => f.write_str("no cached artefact"),
            Miss::Untrusted(why) => write!(f, "cache not trusted: {why}"),
            Miss::Unauthenticated(p) => write!(
                f,
                "cached artefact {} does not authenticate (damaged, swapped, or made for another plugin)",
                p.display()
            ),
            Miss::Io(e) => write!(f, "cache unreadable: {e}"),
        }
    }
}

/// An opened, checked cache directory with its key.
pub struct Cache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never printed.
        f.debug_struct("Cache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// Creates the directory (0700) if needed, checks it, and reads or
    /// makes its key. `Err` says why the cache cannot be trusted; the host
    /// then runs without one.
    pub fn open(dir: &Path) -> Result<Cache, Miss> {
        create_private_dir(dir).map_err(|e| Miss::Io(format!("{}: {e}", dir.display())))?;
        check_dir(dir)?;
        let key = load_or_make_key(dir)?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, sha256: &str, engine_key: &str) -> PathBuf {
        artefact_path(&self.dir, sha256, engine_key)
    }

    /// The authenticated artefact for this plugin and engine, or why not.
    pub fn read(&self, sha256: &str, engine_key: &str) -> Result<Vec<u8>, Miss> {
        // Again at every read: the directory may have changed since `open`.
        check_dir(&self.dir)?;
        let path = self.path(sha256, engine_key);
        let (mut file, meta) = open_private(&path)?;
        if meta.len() > MAX_ARTEFACT || meta.len() < (MAGIC.len() + TAG_LEN) as u64 {
            return Err(Miss::Unauthenticated(path));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| Miss::Io(format!("{}: {e}", path.display())))?;
        let (head, artefact) = bytes.split_at(MAGIC.len() + TAG_LEN);
        let (magic, tag) = head.split_at(MAGIC.len());
        if magic != MAGIC || !equal(tag, &self.tag(sha256, engine_key, artefact)) {
            return Err(Miss::Unauthenticated(path));
        }
        bytes.drain(..MAGIC.len() + TAG_LEN);
        Ok(bytes)
    }

    /// Stores an artefact with its HMAC, by atomic rename.
    pub fn write(&self, sha256: &str, engine_key: &str, artefact: &[u8]) -> std::io::Result<()> {
        let tag = self.tag(sha256, engine_key, artefact);
        let mut content = Vec::with_capacity(MAGIC.len() + TAG_LEN + artefact.len());
        content.extend_from_slice(MAGIC);
        content.extend_from_slice(&tag);
        content.extend_from_slice(artefact);
        write_atomic(&self.path(sha256, engine_key), &content)
    }

    fn tag(&self, sha256: &str, engine_key: &str, artefact: &[u8]) -> [u8; TAG_LEN] {
        hmac_sha256(
            &self.key,
            &[
                DOMAIN,
                sha256.as_bytes(),
                b"\0",
                engine_key.as_bytes(),
                b"\0",
                artefact,
            ],
        )
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts`; `key` ≤ 64 bytes.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..key.len().min(64)].copy_from_slice(&key[..key.len().min(64)]);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without stopping at the first difference (no timing oracle).
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The directory is ours, a real directory, not group/other-writable.
#[cfg(unix)]
pub(super) fn check_dir(dir: &Path) -> Result<(), Miss> {
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| Miss::Io(format!("{}: {e}", dir.display())))?;
    if meta.file_type().is_symlink() {
        return Err(Miss::Untrusted(format!("{} is a symlink", dir.display())));
    }
    check_owner_mode(dir, &meta, 0o022)
}

#[cfg(not(unix))]
pub(super) fn check_dir(dir: &Path) -> Result<(), Miss> {
    Err(Miss::Untrusted(format!(
        "{}: ownership cannot be checked on this platform",
        dir.display()
    )))
}

#[cfg(unix)]
fn check_owner_mode(path: &Path, meta: &std::fs::Metadata, forbidden: u32) -> Result<(), Miss> {
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != euid() {
        return Err(Miss::Untrusted(format!(
            "{} belongs to uid {}, not to this process's uid {}",
            path.display(),
            meta.uid(),
            euid()
        )));
    }
    if meta.mode() & forbidden != 0 {
        return Err(Miss::Untrusted(format!(
            "{} has mode {:o}: others could write it",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Opens a regular file of ours without following a symlink; checks it on
/// the open handle (fstat), so a swap after the check changes nothing.
#[cfg(unix)]
pub(super) fn open_private(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), Miss> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Miss::Absent
            } else if e.raw_os_error() == Some(libc::ELOOP) {
                Miss::Untrusted(format!("{} is a symlink", path.display()))
            } else {
                Miss::Io(format!("{}: {e}", path.display()))
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Miss::Io(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Miss::Untrusted(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    check_owner_mode(path, &meta, 0o022)?;
    Ok((file, meta))
}

#[cfg(not(unix))]
pub(super) fn open_private(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), Miss> {
    Err(Miss::Untrusted(format!("{}: not checked", path.display())))
}

/// The directory's key: read if it is there (ours, 0600, 32 bytes), else
/// made from the OS's random source. Two processes racing to make it: the
/// loser (`create_new` fails) reads the winner's.
#[cfg(unix)]
fn load_or_make_key(dir: &Path) -> Result<[u8; KEY_LEN], Miss> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(KEY_FILE);
    let io = |e: std::io::Error| Miss::Io(format!("{}: {e}", path.display()));
    let mut key = [0u8; KEY_LEN];
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            std::fs::File::open("/dev/urandom")
                .and_then(|mut r| r.read_exact(&mut key))
                .map_err(io)?;
            // A key only half written must not survive: remove on failure.
            if let Err(e) = f.write_all(&key).and_then(|()| f.sync_all()) {
                let _ = std::fs::remove_file(&path);
                return Err(io(e));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let (mut f, meta) = open_private(&path)?;
            check_owner_mode(&path, &meta, 0o077)?;
            if meta.len() != KEY_LEN as u64 {
                return Err(Miss::Untrusted(format!(
                    "{} is not a {KEY_LEN}-byte key",
                    path.display()
                )));
            }
            f.read_exact(&mut key).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(not(unix))]
fn load_or_make_key(dir: &Path) -> Result<[u8; KEY_LEN], Miss> {
    Err(Miss::Untrusted(format!("{}: no key", dir.display())))
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, creating the directory (0700) if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("cache path has no directory"))?;
    create_private_dir(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{}.{}.{nanos}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artefact"),
        std::process::id()
    ));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kuryr6-cache-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = scratch("atomic");
        let path = artefact_path(&dir, "ab", "cd");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files remain");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231, test case 2.
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[cfg(unix)]
    #[test]
    fn only_authenticated_artefacts_of_this_plugin_are_returned() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("auth");
        let cache = Cache::open(&dir).unwrap();
        let key_mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert_eq!(cache.read("aa", "e"), Err(Miss::Absent));
        cache.write("aa", "e", b"code of aa").unwrap();
        cache.write("bb", "e", b"code of bb").unwrap();
        assert_eq!(cache.read("aa", "e").unwrap(), b"code of aa");
        // The same key is read back by another opener.
        assert_eq!(
            Cache::open(&dir).unwrap().read("aa", "e").unwrap(),
            b"code of aa"
        );

        // bb's artefact under aa's name.
        std::fs::copy(cache.path("bb", "e"), cache.path("aa", "e")).unwrap();
        assert!(matches!(
            cache.read("aa", "e"),
            Err(Miss::Unauthenticated(_))
        ));
        // A flipped byte.
        let mut bytes = std::fs::read(cache.path("bb", "e")).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(cache.path("bb", "e"), &bytes).unwrap();
        assert!(matches!(
            cache.read("bb", "e"),
            Err(Miss::Unauthenticated(_))
        ));

        // A key others can read is not a key.
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert!(matches!(Cache::open(&dir), Err(Miss::Untrusted(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
