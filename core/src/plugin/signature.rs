//! minisign signatures of plugins: trusted keys and verification.
//!
//! The format is minisign's: a vendor signs `plugin.wasm` with
//! `minisign -S -s key.sec -m plugin.wasm` and ships `plugin.wasm.minisig`;
//! the operator trusts the vendor's public key (`RWQ…`, or the `.pub`
//! file). Verification is `minisign-verify` (no dependencies). Only
//! pre-hashed signatures (minisign's default since 0.8) are accepted: the
//! legacy mode signs the raw file and is refused, as `minisign -V` does
//! unless asked.
//!
//! Trusted keys come from three places (see `Trust`): the `[[plugin]]`
//! table's `trusted_keys`, the pipeline's `[plugins] trusted_keys`, and a
//! shared file, `$KURYR6_TRUSTED_KEYS`, else
//! `$XDG_CONFIG_HOME/kuryr6/trusted_keys`, else
//! `~/.config/kuryr6/trusted_keys` (one key or key file per line, `#`
//! comments). A table's own list replaces the other two: it narrows trust
//! for that plugin to its vendor.

use base64::Engine as _;
use minisign_verify::{PublicKey, Signature};
use std::fmt;
use std::path::{Path, PathBuf};

/// Largest signature file read (a minisign signature is ~300 bytes plus
/// its trusted comment).
pub const MAX_SIGNATURE: usize = 16 * 1024;

/// A minisign key id, printed as minisign prints it: the little-endian
/// number in uppercase hex, without leading zeros (`%" PRIX64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", u64::from_le_bytes(self.0))
    }
}

impl KeyId {
    pub fn parse(s: &str) -> Option<KeyId> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16)
            .ok()
            .map(|n| KeyId(n.to_le_bytes()))
    }
}

/// A public key an operator trusts, and where it was listed.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub id: KeyId,
    key: PublicKey,
    /// "pipeline.toml", "/root/.config/kuryr6/trusted_keys" …: for messages.
    pub origin: String,
}

/// Why a plugin's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// Not a minisign signature (or a legacy one).
    Malformed(String),
    /// Signed with a key nobody listed as trusted.
    Untrusted { key_id: KeyId },
    /// Signed by a trusted key, but not these bytes (or the trusted
    /// comment was altered).
    Invalid { key_id: KeyId },
}

impl fmt::Display for SigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigError::Malformed(why) => {
                write!(f, "the signature is not a minisign signature: {why}")
            }
            SigError::Untrusted { key_id } => write!(
                f,
                "it is signed by key {key_id}, which is not among the trusted keys"
            ),
            SigError::Invalid { key_id } => write!(
                f,
                "its signature by trusted key {key_id} does not match its bytes (altered after signing)"
            ),
        }
    }
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: KeyId,
    /// The signed comment (minisign: timestamp and file name by default).
    pub trusted_comment: String,
    /// Where the key that verified it was listed.
    pub origin: String,
}

/// Reads one key: a base64 minisign public key (`RWQ…`), or a path
/// (relative to `base`) to a file holding one (`minisign.pub`).
pub fn parse_key(text: &str, base: &Path, origin: &str) -> Result<TrustedKey, String> {
    let text = text.trim();
    if let Ok(key) = PublicKey::from_base64(text) {
        return Ok(TrustedKey {
            id: key_id_of_base64(text, 2)?,
            key,
            origin: origin.to_string(),
        });
    }
    let path = base.join(text);
    let content = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "`{text}` is neither a minisign public key (RW… base64) nor a readable key file ({}: {e})",
            path.display()
        )
    })?;
    let line = key_line(&content).ok_or_else(|| {
        format!(
            "{} holds no minisign public key (expected a line of RW… base64)",
            path.display()
        )
    })?;
    let key = PublicKey::from_base64(line)
        .map_err(|e| format!("{}: not a minisign public key: {e}", path.display()))?;
    Ok(TrustedKey {
        id: key_id_of_base64(line, 2)?,
        key,
        origin: format!("{origin} ({})", path.display()),
    })
}

/// The key's base64 line of a `.pub` file (comments skipped).
fn key_line(content: &str) -> Option<&str> {
    content
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("untrusted comment:"))
}

/// Bytes 2..10 of a decoded key or signature line: its key id.
fn key_id_of_base64(b64: &str, at: usize) -> Result<KeyId, String> {
    let bin = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("bad base64: {e}"))?;
    let id: [u8; 8] = bin
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or("too short for a minisign key id")?;
    Ok(KeyId(id))
}

/// The shared trusted-keys file, by the rule in the module docs.
pub fn shared_keys_path() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("KURYR6_TRUSTED_KEYS") {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = env("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("kuryr6").join("trusted_keys"));
    }
    env("HOME").map(|h| {
        PathBuf::from(h)
            .join(".config")
            .join("kuryr6")
            .join("trusted_keys")
    })
}

/// Keys of the shared file; none if it does not exist. `Err` names the
/// file and line of a key that cannot be read.
pub fn shared_keys() -> Result<Vec<TrustedKey>, String> {
    let Some(path) = shared_keys_path() else {
        return Ok(Vec::new());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("untrusted comment:") {
            continue;
        }
        let origin = format!("{}:{}", path.display(), n + 1);
        keys.push(parse_key(line, base, &origin).map_err(|e| format!("{origin}: {e}"))?);
    }
    Ok(keys)
}

/// The key id a signature names, if it is readable at all.
pub fn signer_of(signature: &str) -> Option<KeyId> {
    let line = signature.lines().nth(1)?;
    key_id_of_base64(line, 2).ok()
}

/// Verifies `bytes` against a minisign signature and the trusted keys.
pub fn verify(bytes: &[u8], signature: &str, keys: &[TrustedKey]) -> Result<Verified, SigError> {
    if signature.len() > MAX_SIGNATURE {
        return Err(SigError::Malformed(format!(
            "{} bytes, more than the {MAX_SIGNATURE} a signature takes",
            signature.len()
        )));
    }
    let sig = Signature::decode(signature).map_err(|e| SigError::Malformed(e.to_string()))?;
    let key_id = signer_of(signature).ok_or_else(|| SigError::Malformed("no key id".into()))?;
    // A key id is 8 bytes anyone can put in a key of their own: two
    // trusted keys may share one, so each is tried, not just the first.
    let mut candidates = keys.iter().filter(|k| k.id == key_id).peekable();
    if candidates.peek().is_none() {
        return Err(SigError::Untrusted { key_id });
    }
    let mut refusal = SigError::Invalid { key_id };
    for trusted in candidates {
        // `false`: legacy (non-prehashed) signatures are refused.
        match trusted.key.verify(bytes, &sig, false) {
            Ok(()) => {
                return Ok(Verified {
                    key_id,
                    trusted_comment: sig.trusted_comment().to_string(),
                    origin: trusted.origin.clone(),
                });
            }
            Err(minisign_verify::Error::UnexpectedAlgorithm) => {
                refusal = SigError::Malformed(
                    "a legacy (non-prehashed) signature; sign again with minisign 0.8 or later"
                        .into(),
                );
            }
            Err(_) => {}
        }
    }
    Err(refusal)
}

/// The trusted keys that apply to one plugin.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The `[[plugin]]` table's own list; replaces the others when given.
    pub plugin: Option<Vec<TrustedKey>>,
    /// `[plugins] trusted_keys` of the pipeline.
    pub pipeline: Vec<TrustedKey>,
    /// The shared file's keys.
    pub shared: Vec<TrustedKey>,
}

impl Trust {
    pub fn keys(&self) -> Vec<TrustedKey> {
        match &self.plugin {
            Some(own) => own.clone(),
            None => self.pipeline.iter().chain(&self.shared).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_print_as_minisign_prints_them() {
        let id = KeyId([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0xAB]);
        assert_eq!(id.to_string(), "AB07060504030201");
        assert_eq!(KeyId::parse("AB07060504030201"), Some(id));
        // minisign prints no leading zeros ("%" PRIX64).
        let small = KeyId([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0A]);
        assert_eq!(small.to_string(), "A07060504030201");
        assert_eq!(KeyId::parse("A07060504030201"), Some(small));
        assert_eq!(KeyId::parse("0A07060504030201"), Some(small));
        assert_eq!(KeyId::parse("AB070605040302011"), None);
        assert_eq!(KeyId::parse("XY"), None);
    }

    /// minisign-verify's own test vector: key, and a prehashed signature of
    /// b"test".
    const PK: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    const SIG: &str = "untrusted comment: signature from minisign secret key
RUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=
trusted comment: timestamp:1556193335\tfile:test
y/rUw2y8/hOUYjZU71eHp/Wo1KZ40fGy2VJEDl34XMJM+TX48Ss/17u3IvIfbVR1FkZZSNCisQbuQY+bHwhEBg==";

    #[test]
    fn an_impostor_key_with_the_same_id_neither_blocks_nor_takes_credit() {
        let real = parse_key(PK, Path::new("."), "real").unwrap();
        // Same key id, other public key: anyone can make one.
        let mut bin = base64::engine::general_purpose::STANDARD
            .decode(PK)
            .unwrap();
        bin[20] ^= 0xff;
        let forged = base64::engine::general_purpose::STANDARD.encode(&bin);
        let impostor = parse_key(&forged, Path::new("."), "impostor").unwrap();
        assert_eq!(impostor.id, real.id);
        let v = verify(b"test", SIG, &[impostor.clone(), real.clone()]).unwrap();
        assert_eq!((v.key_id, v.origin.as_str()), (real.id, "real"));
        assert_eq!(v.trusted_comment, "timestamp:1556193335\tfile:test");
        assert_eq!(
            verify(b"test", SIG, &[impostor]),
            Err(SigError::Invalid { key_id: real.id })
        );
        // The trusted comment is signed too: altering it is refused.
        let altered = SIG.replace("file:test", "file:other");
        assert_eq!(
            verify(b"test", &altered, std::slice::from_ref(&real)),
            Err(SigError::Invalid { key_id: real.id })
        );
        assert_eq!(
            verify(b"Test", SIG, std::slice::from_ref(&real)),
            Err(SigError::Invalid { key_id: real.id })
        );
    }

    #[test]
    fn a_key_that_is_not_one_is_named() {
        let e = parse_key("RWQnot-a-key", Path::new("/nonexistent"), "t").unwrap_err();
        assert!(e.contains("neither a minisign public key"), "{e}");
        assert!(matches!(
            verify(b"x", "garbage", &[]),
            Err(SigError::Malformed(_))
        ));
    }
}
