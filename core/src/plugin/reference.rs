//! `oci://HOST[:PORT]/NAMESPACE/NAME(:TAG|@sha256:HEX)`: where a plugin
//! lives in an OCI registry. Parsing and printing only.
//!
//! The grammar is the distribution spec's, stricter where it helps: the
//! repository is lowercase `[a-z0-9]` components joined by `.`, `_`, `__`
//! or `-`, separated by `/`; a tag is `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`;
//! a digest is `sha256:` and 64 lowercase hex digits. A reference must name
//! a tag or a digest (no implicit `latest`: what runs is written down).

use std::fmt;

pub const SCHEME: &str = "oci://";

/// A parsed `oci://` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `host` or `host:port`, as written (`[::1]:5000` keeps its brackets).
    pub registry: String,
    /// `namespace/name`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>` of the manifest.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, String> {
        let rest = s.strip_prefix(SCHEME).ok_or_else(|| {
            format!("`{s}` is not an oci:// reference (write oci://HOST/NAMESPACE/NAME:TAG)")
        })?;
        let (registry, path) = rest.split_once('/').ok_or_else(|| {
            format!(
                "`{s}` has no repository after the registry (write oci://HOST/NAMESPACE/NAME:TAG)"
            )
        })?;
        // `user:password@host` is not a reference kuryr6 takes, and the
        // text after `oci://` up to `@` may be a password: never echoed.
        if let Some((_, host)) = registry.rsplit_once('@') {
            return Err(format!(
                "`oci://<credentials>@{host}/…` carries credentials, which kuryr6 does not take in a reference (and does not print); set KURYR6_REGISTRY_AUTH_<registry>=<user>:<password>, or log in so ~/.docker/config.json has them"
            ));
        }
        check_registry(registry).map_err(|e| format!("`{s}`: {e}"))?;
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => {
                check_digest(d).map_err(|e| format!("`{s}`: {e}"))?;
                (p, Some(d.to_string()))
            }
            None => (path, None),
        };
        // A tag follows the last ':' after the last '/'.
        let last = path.rsplit('/').next().unwrap_or(path);
        let (repository, tag) = match last.split_once(':') {
            Some((_, t)) => (&path[..path.len() - t.len() - 1], Some(t.to_string())),
            None => (path, None),
        };
        check_repository(repository).map_err(|e| format!("`{s}`: {e}"))?;
        if let Some(t) = &tag {
            check_tag(t).map_err(|e| format!("`{s}`: {e}"))?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(format!(
                "`{s}` names neither a tag nor a digest: add :TAG (e.g. :1.0.0) or @sha256:… so the lock file knows what to pin"
            ));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The host without the port (brackets removed for IPv6).
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(inner) = r.strip_prefix('[') {
            return inner.split(']').next().unwrap_or(inner);
        }
        r.split(':').next().unwrap_or(r)
    }

    /// True for registries on this machine: plain HTTP is allowed for them
    /// (nothing crosses a network).
    pub fn is_loopback(&self) -> bool {
        let h = self.host();
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// What the registry's manifest endpoint takes: the digest if pinned,
    /// else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository at another digest.
    pub fn at_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn check_registry(r: &str) -> Result<(), String> {
    if r.is_empty() {
        return Err("the registry host is empty".into());
    }
    let (host, port) = if let Some(inner) = r.strip_prefix('[') {
        let (h, rest) = inner
            .split_once(']')
            .ok_or("an IPv6 registry address needs its closing ]")?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{h}` is not an IPv6 address"))?;
        (h, rest.strip_prefix(':'))
    } else {
        match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        }
    };
    let host_ok = host
        .split('.')
        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        || host.contains(':');
    if !host_ok {
        return Err(format!("`{host}` is not a registry host name"));
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|n| n > 0)
    {
        return Err(format!("`{p}` is not a port (1-65535)"));
    }
    Ok(())
}

fn check_repository(repo: &str) -> Result<(), String> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        !b.is_empty()
            && alnum(&b[0])
            && alnum(&b[b.len() - 1])
            && b.iter()
                .all(|x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
            && !c.contains("..")
            && !c.contains("___")
    };
    if repo.len() > 255 {
        return Err("the repository name is longer than 255 characters".into());
    }
    if !repo.split('/').all(component_ok) {
        return Err(format!(
            "`{repo}` is not a repository name: lowercase letters and digits, joined by . _ or -, components separated by /"
        ));
    }
    Ok(())
}

fn check_tag(t: &str) -> Result<(), String> {
    let b = t.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{t}` is not a tag: up to 128 of A-Z a-z 0-9 . _ -, not starting with . or -"
        ))
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn check_digest(d: &str) -> Result<(), String> {
    match d.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{d}` is not a digest: write sha256: and 64 lowercase hex digits"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_tags_digests_ports_and_namespaces() {
        let r = Reference::parse("oci://127.0.0.1:5050/vendor/naming:1.0.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5050");
        assert_eq!(r.host(), "127.0.0.1");
        assert_eq!(r.repository, "vendor/naming");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert_eq!(r.digest, None);
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "oci://127.0.0.1:5050/vendor/naming:1.0.0");

        let r = Reference::parse(&format!("oci://registry.example.com/a/b/c@{D}")).unwrap();
        assert_eq!((r.repository.as_str(), r.tag.as_deref()), ("a/b/c", None));
        assert_eq!(r.manifest_ref(), D);
        assert!(!r.is_loopback());

        let r = Reference::parse(&format!("oci://[::1]:5000/ns/p:v2@{D}")).unwrap();
        assert_eq!(r.host(), "::1");
        assert!(r.is_loopback());
        assert_eq!(r.tag.as_deref(), Some("v2"));
        assert_eq!(r.manifest_ref(), D, "the digest wins over the tag");
        assert!(
            Reference::parse("oci://localhost/ns/p:t")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn refuses_what_a_registry_would_not_take_and_says_why() {
        for (bad, why) in [
            ("https://h/ns/p:1", "not an oci://"),
            ("oci://h", "no repository"),
            ("oci://h/ns/p", "neither a tag nor a digest"),
            ("oci://h/NS/p:1", "not a repository name"),
            ("oci://h/ns//p:1", "not a repository name"),
            ("oci://h/ns/p:-x", "not a tag"),
            ("oci://h/ns/p@sha256:abc", "not a digest"),
            ("oci://h/ns/p@md5:0123", "not a digest"),
            ("oci://h:0/ns/p:1", "not a port"),
            ("oci://h:99999/ns/p:1", "not a port"),
            ("oci://h_x/ns/p:1", "not a registry host"),
            ("oci://[::1/ns/p:1", "closing ]"),
            ("oci://u:s3cr3t@h:5000/ns/p:1", "carries credentials"),
            ("oci://s3cr3t@h/ns/p@sha256:abc", "carries credentials"),
        ] {
            let e = Reference::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("s3cr3t"), "a password is never echoed: {e}");
        }
    }
}
