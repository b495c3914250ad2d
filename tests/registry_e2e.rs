//! Plugin distribution against a real OCI registry (Debian's
//! docker-registry, started by scripts/registry/up.sh; scripts/test.sh
//! exports its address as KURYR6_REGISTRY) with the real `minisign` CLI as
//! the vendor's signing tool: push → lock → check / plan --offline, and
//! every refusal the lock file and signatures promise. A missing registry
//! or minisign fails the tests; nothing is skipped.
//!
//! Tests that damage or stop a registry start one of their own
//! (`OwnRegistry`), so the shared one stays intact for the others.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../core/tests/support/plugins.rs"]
mod plugin_support;
use plugin_support::{assert_success, repo, sh_block, wasm};

/// The shared registry: KURYR6_REGISTRY, else the address up.sh recorded.
fn registry() -> String {
    if let Ok(a) = std::env::var("KURYR6_REGISTRY")
        && !a.is_empty()
    {
        return a;
    }
    let file = repo(".registry/address");
    let addr = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "no OCI registry: KURYR6_REGISTRY is unset and {} is unreadable ({e}). Start one with `bash scripts/registry/up.sh` or run the suite with `bash scripts/test.sh`",
            file.display()
        )
    });
    let addr = addr.trim().to_string();
    let code = v2_status(&addr);
    assert_eq!(
        code, "200",
        "the registry at {addr} does not answer GET /v2/"
    );
    addr
}

/// The HTTP status of the registry's `/v2/` at `addr` ("000": no answer).
fn v2_status(addr: &str) -> String {
    curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{addr}/v2/"),
    ])
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(args)
        .output()
        .expect("curl (installed by scripts/registry/up.sh)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A scratch directory: the operator's XDG dirs, the vendor's keys.
/// The `[plugins]` table that trusts only the vendor's key.
const TRUSTS_VENDOR: &str = "[plugins]\ntrusted_keys = [\"../vendor.pub\"]\n";

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("kuryr6-registry-e2e-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("site")).unwrap();
        Scratch { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    /// A unique repository per test and run.
    fn repo(&self, registry: &str, name: &str) -> String {
        format!("oci://{registry}/t{}/{}:1.0.0", std::process::id(), name)
    }

    /// kuryr6 as the operator runs it, with this scratch's store and config.
    fn kuryr6(&self, args: &[&str]) -> Output {
        self.kuryr6_with_cache(args, "cache")
    }

    fn kuryr6_with_cache(&self, args: &[&str], cache: &str) -> Output {
        self.kuryr6_env(args, cache, &[])
    }

    fn kuryr6_env(&self, args: &[&str], cache: &str, env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kuryr6"))
            .args(args)
            .current_dir(&self.dir)
            .env("XDG_CACHE_HOME", self.path(cache))
            .env("XDG_CONFIG_HOME", self.path("config"))
            // Compiled plugins are shared by all tests and runs (the cache
            // authenticates every artefact; one directory, not one per run).
            .env(
                "KURYR6_PLUGIN_CACHE",
                std::env::temp_dir().join("kuryr6-registry-e2e-cwasm"),
            )
            .env_remove("KURYR6_PLUGIN_STORE")
            .env_remove("KURYR6_TRUSTED_KEYS")
            .env_remove("KURYR6_REGISTRY_USERNAME")
            .env_remove("KURYR6_REGISTRY_PASSWORD")
            .env_remove("KURYR6_REGISTRY_HOST")
            .env_remove("KURYR6_REGISTRY_TOKEN_HOSTS")
            .env_remove("DOCKER_CONFIG")
            .env_remove("OS_CLOUD")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// A vendor key made with the real minisign CLI; returns its key id as
    /// minisign prints it.
    fn keygen(&self, name: &str) -> String {
        let out = Command::new("minisign")
            .args(["-G", "-W", "-f", "-p"])
            .arg(self.path(&format!("{name}.pub")))
            .arg("-s")
            .arg(self.path(&format!("{name}.sec")))
            .output()
            .expect("minisign (installed by scripts/registry/up.sh)");
        assert_success(&out);
        let pubkey = std::fs::read_to_string(self.path(&format!("{name}.pub"))).unwrap();
        pubkey
            .lines()
            .next()
            .and_then(|l| l.rsplit(' ').next())
            .unwrap()
            .to_string()
    }

    /// Copies a plugin here and signs it with the vendor's key.
    fn signed(&self, plugin: &str, key: &str) -> PathBuf {
        let file = self.unsigned(plugin);
        let out = Command::new("minisign")
            .args(["-S", "-s"])
            .arg(self.path(&format!("{key}.sec")))
            .arg("-m")
            .arg(&file)
            .output()
            .unwrap();
        assert_success(&out);
        file
    }

    fn unsigned(&self, plugin: &str) -> PathBuf {
        let file = self.path(&format!("{plugin}.wasm"));
        std::fs::copy(wasm(plugin), &file).unwrap();
        let _ = std::fs::remove_file(self.path(&format!("{plugin}.wasm.minisig")));
        file
    }

    fn push(&self, file: &Path, target: &str) -> Output {
        let out = self.kuryr6(&["plugin", "push", file.to_str().unwrap(), target]);
        assert!(out.status.success(), "push: {}", text(&out));
        out
    }

    /// The vendor's key made, its signed naming plugin pushed to `repo` of
    /// `registry`, and the seed pipeline using it, trusting the vendor,
    /// locked: (the plugin's source, the pipeline).
    fn vendor_plugin_locked(&self, registry: &str, repo: &str) -> (String, PathBuf) {
        self.keygen("vendor");
        let source = self.repo(registry, repo);
        self.push(&self.signed("naming", "vendor"), &source);
        let pipeline = self.pipeline(&source, "", TRUSTS_VENDOR);
        ok(self.kuryr6(&["plugin", "lock", pipeline.to_str().unwrap()]));
        (source, pipeline)
    }

    /// The seed pipeline with the naming plugin from `source`.
    fn pipeline(&self, source: &str, extra: &str, settings: &str) -> PathBuf {
        let p = self.path("site/pipeline.toml");
        std::fs::write(
            &p,
            format!(
                r#"[pipeline]
name = "seed-ipv6"
[plan]
pod_cidr = "fd10:0:0:1::/64"
service_cidr = "fd10:0:0:2::/112"
{settings}
[[plugin]]
source = "{source}"
hooks = ["naming"]
{extra}
[plugin.facts]
site = "ams1"
"#
            ),
        )
        .unwrap();
        p
    }

    fn lock_text(&self) -> String {
        std::fs::read_to_string(self.path("site/kuryr6.lock")).unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

/// Refused with exit 2 and the named error.
fn refused(o: Output, kind: &str) -> String {
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("[{kind}]")), "want [{kind}]: {t}");
    t
}

fn sha256_of(file: &Path) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(std::fs::read(file).unwrap());
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A registry of a test's own (another port, another state dir), stopped
/// by PID when dropped.
struct OwnRegistry {
    dir: PathBuf,
    addr: String,
}

impl OwnRegistry {
    fn start(tag: &str) -> OwnRegistry {
        OwnRegistry::start_with(tag, &[])
    }

    fn start_with(tag: &str, env: &[(&str, &str)]) -> OwnRegistry {
        let dir =
            std::env::temp_dir().join(format!("kuryr6-own-registry-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // A free port now; the registry binds it right after.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = Command::new("bash")
            .arg(repo("scripts/registry/up.sh"))
            .env("KURYR6_REGISTRY_DIR", &dir)
            .env("KURYR6_REGISTRY_PORT", port.to_string())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "own registry: {}", text(&out));
        OwnRegistry {
            addr: format!("127.0.0.1:{port}"),
            dir,
        }
    }

    fn stop(&self) {
        let out = Command::new("bash")
            .arg(repo("scripts/registry/down.sh"))
            .env("KURYR6_REGISTRY_DIR", &self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let code = v2_status(&self.addr);
        assert_eq!(code, "000", "the registry at {} still answers", self.addr);
    }

    /// The registry's file for a blob (distribution's filesystem layout).
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo("scripts/registry/down.sh"))
            .arg("--purge")
            .env("KURYR6_REGISTRY_DIR", &self.dir)
            .output();
    }
}

/// A registry of its own named `tag`, the vendor's signed naming plugin
/// pushed to it and a locked pipeline using it: (registry, scratch,
/// pipeline). The registry is the test's to stop or tamper with.
fn locked_on_own_registry(tag: &str) -> (OwnRegistry, Scratch, PathBuf) {
    let own = OwnRegistry::start(tag);
    let s = Scratch::new(tag);
    let (_, pipeline) = s.vendor_plugin_locked(&own.addr, tag);
    (own, s, pipeline)
}

fn lock_value(lock: &str, key: &str) -> String {
    lock.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no {key} in lock:\n{lock}"))
}

#[test]
fn push_lock_check_plan_verify_in_the_cncf_wasm_layout() {
    let reg = registry();
    let s = Scratch::new("happy");
    let key_id = s.keygen("vendor");
    let file = s.signed("naming", "vendor");
    let source = s.repo(&reg, "naming");
    let pushed = ok(s.kuryr6(&["plugin", "push", file.to_str().unwrap(), &source]));
    assert!(pushed.contains(&format!("(key {key_id})")), "{pushed}");

    // The registry holds the CNCF wasm layout, read back with plain curl.
    let path = source
        .trim_start_matches(&format!("oci://{reg}/"))
        .replace(":1.0.0", "");
    let manifest: Value = serde_json::from_str(&curl(&[
        "-s",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("http://{reg}/v2/{path}/manifests/1.0.0"),
    ]))
    .unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest["layers"][0]["digest"], sha256_of(&file).as_str());
    let config: Value = serde_json::from_str(&curl(&[
        "-s",
        "-L",
        &format!(
            "http://{reg}/v2/{path}/blobs/{}",
            manifest["config"]["digest"].as_str().unwrap()
        ),
    ]))
    .unwrap();
    assert_eq!(
        (config["architecture"].as_str(), config["os"].as_str()),
        (Some("wasm"), Some("wasip2"))
    );
    assert!(
        config["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{config}"
    );

    // Not locked yet: refused before anything runs.
    let pipeline = s.pipeline(&source, "", TRUSTS_VENDOR);
    let p = pipeline.to_str().unwrap();
    let t = refused(s.kuryr6(&["check", p]), "LockMissing");
    assert!(
        t.contains("site/pipeline.toml:9:1"),
        "names file:line of the [[plugin]]: {t}"
    );

    ok(s.kuryr6(&["plugin", "lock", p]));
    let lock = s.lock_text();
    assert_eq!(lock_value(&lock, "source"), source);
    assert_eq!(lock_value(&lock, "layer"), sha256_of(&file));
    assert_eq!(lock_value(&lock, "signer"), key_id);
    assert!(lock_value(&lock, "manifest").starts_with("sha256:"));

    let checked = ok(s.kuryr6(&["check", p]));
    assert!(checked.contains("ok (7 steps)"), "{checked}");
    let plan = ok(s.kuryr6(&["plan", "--offline", p]));
    assert!(plan.contains("ams1-pod-subnet"), "the plugin ran: {plan}");
    let verified = ok(s.kuryr6(&["plugin", "verify", p]));
    assert!(
        verified.contains(&format!("signed by {key_id}")),
        "{verified}"
    );
    assert!(
        verified.contains(&lock_value(&lock, "manifest")),
        "{verified}"
    );

    // A second operator with an empty store pulls it by the lock.
    let fresh = ok(s.kuryr6_with_cache(&["check", p], "cache2"));
    assert!(fresh.contains("ok (7 steps)"), "{fresh}");
    let pulled = ok(s.kuryr6(&["plugin", "pull", &source]));
    assert!(pulled.contains(&lock_value(&lock, "manifest")), "{pulled}");
    // Locking again with nothing changed writes the same file.
    ok(s.kuryr6(&["plugin", "lock", p]));
    assert_eq!(s.lock_text(), lock);
}

#[test]
fn retagged_image_is_refused() {
    let reg = registry();
    let s = Scratch::new("retag");
    let (source, pipeline) = s.vendor_plugin_locked(&reg, "retag");
    let p = pipeline.to_str().unwrap();
    let lock = s.lock_text();

    // The same tag now points at other (validly signed) content.
    s.push(&s.signed("site-prefix", "vendor"), &source);
    let t = refused(s.kuryr6_with_cache(&["check", p], "fresh"), "LockMismatch");
    assert!(t.contains("the tag was moved"), "{t}");
    assert!(t.contains(&lock_value(&lock, "manifest")), "{t}");
    refused(
        s.kuryr6_with_cache(&["plan", "--offline", p], "fresh"),
        "LockMismatch",
    );
    // `run` and a cloud `plan` refuse it too, before they look for a cloud
    // (none is configured here: a cloud error would mean it got that far).
    for cmd in [&["run", p][..], &["plan", p][..]] {
        let t = refused(
            s.kuryr6_env(cmd, "fresh", &[("OS_CLIENT_CONFIG_FILE", "/nonexistent")]),
            "LockMismatch",
        );
        assert!(!t.contains("clouds.yaml"), "{t}");
    }
    // `lock` does not follow the tag silently either.
    refused(s.kuryr6(&["plugin", "lock", p]), "LockMismatch");
    assert_eq!(s.lock_text(), lock, "the lock file is unchanged");
    // The operator's pulled copy is the locked content: still runs.
    ok(s.kuryr6(&["check", p]));
    // --update accepts the new content, by name.
    ok(s.kuryr6(&["plugin", "lock", "--update", p]));
    assert_ne!(
        lock_value(&s.lock_text(), "manifest"),
        lock_value(&lock, "manifest")
    );
    assert_eq!(
        lock_value(&s.lock_text(), "layer"),
        sha256_of(&s.path("site-prefix.wasm"))
    );
}

#[test]
fn tampered_layer_is_refused_from_the_registry_and_from_the_store() {
    let (own, s, pipeline) = locked_on_own_registry("tamper");
    let p = pipeline.to_str().unwrap();
    let layer = lock_value(&s.lock_text(), "layer");

    // The registry's storage now serves other bytes under the digest.
    let blob = own.blob_file(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let t = refused(s.kuryr6_with_cache(&["check", p], "fresh"), "Tampered");
    assert!(t.contains(&layer), "{t}");

    // The operator's own store, altered on disk after the pull.
    let stored = s
        .path("cache/kuryr6/store/blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut local = std::fs::read(&stored).unwrap();
    local[mid] ^= 0xff;
    std::fs::write(&stored, &local).unwrap();
    refused(s.kuryr6(&["check", p]), "Tampered");
    refused(s.kuryr6(&["plugin", "verify", p]), "Tampered");
}

#[test]
fn signatures_by_untrusted_keys_or_of_other_bytes_are_refused() {
    let reg = registry();
    let s = Scratch::new("untrusted");
    s.keygen("vendor");
    let mallory = s.keygen("mallory");
    let source = s.repo(&reg, "untrusted");
    s.push(&s.signed("naming", "mallory"), &source);
    let pipeline = s.pipeline(&source, "", TRUSTS_VENDOR);
    let p = pipeline.to_str().unwrap();
    let t = refused(s.kuryr6(&["plugin", "lock", p]), "UntrustedSigner");
    assert!(t.contains(&mallory), "names the signer's key id: {t}");
    assert!(!s.path("site/kuryr6.lock").exists(), "nothing was locked");

    // Trusted through the shared file instead: accepted.
    std::fs::create_dir_all(s.path("config/kuryr6")).unwrap();
    std::fs::write(
        s.path("config/kuryr6/trusted_keys"),
        format!("# the vendor's key\n{}\n", s.path("mallory.pub").display()),
    )
    .unwrap();
    let pipeline = s.pipeline(&source, "", "");
    let p = pipeline.to_str().unwrap();
    ok(s.kuryr6(&["plugin", "lock", p]));
    ok(s.kuryr6(&["check", p]));
    // A table's own trusted_keys narrows trust to that key only.
    s.pipeline(&source, "trusted_keys = [\"../vendor.pub\"]", "");
    refused(s.kuryr6(&["check", p]), "UntrustedSigner");

    // A trusted key's signature of other bytes.
    let other = s.signed("site-prefix", "vendor");
    let naming = s.unsigned("naming");
    std::fs::copy(
        s.path("site-prefix.wasm.minisig"),
        s.path("naming.wasm.minisig"),
    )
    .unwrap();
    let forged = s.repo(&reg, "forged");
    s.push(&naming, &forged);
    let pipeline = s.pipeline(&forged, "", TRUSTS_VENDOR);
    let t = refused(
        s.kuryr6(&["plugin", "lock", pipeline.to_str().unwrap()]),
        "BadSignature",
    );
    assert!(t.contains("does not match"), "{t}");
    // `plugin verify FILE` says the same about the local file.
    let verify = |file: &std::path::Path| {
        s.kuryr6(&[
            "plugin",
            "verify",
            file.to_str().unwrap(),
            "--key",
            "vendor.pub",
        ])
    };
    let t = text(&verify(&naming));
    assert!(t.contains("[BadSignature]"), "{t}");
    let t = ok(verify(&other));
    assert!(t.contains("signed by"), "{t}");
}

#[test]
fn unsigned_is_refused_unless_allowed_and_then_recorded_and_warned() {
    let reg = registry();
    let s = Scratch::new("unsigned");
    s.keygen("vendor");
    let source = s.repo(&reg, "unsigned");
    let pushed = s.push(&s.unsigned("naming"), &source);
    assert!(
        text(&pushed).contains("signature none"),
        "{}",
        text(&pushed)
    );
    let pipeline = s.pipeline(&source, "", TRUSTS_VENDOR);
    let p = pipeline.to_str().unwrap();
    refused(s.kuryr6(&["plugin", "lock", p]), "Unsigned");

    s.pipeline(&source, "allow_unsigned = true", TRUSTS_VENDOR);
    ok(s.kuryr6(&["plugin", "lock", p]));
    let lock = s.lock_text();
    assert!(
        lock.contains("allow_unsigned = true") && !lock.contains("signer"),
        "{lock}"
    );
    for _ in 0..2 {
        let t = ok(s.kuryr6(&["check", p]));
        assert!(
            t.contains("warning[W005]") && t.contains("without a verified signature"),
            "{t}"
        );
        assert!(
            t.contains("site/pipeline.toml:12:"),
            "at the allow_unsigned line: {t}"
        );
    }
    // Taking allow_unsigned away refuses it again, even though it is locked.
    s.pipeline(&source, "", TRUSTS_VENDOR);
    refused(s.kuryr6(&["check", p]), "Unsigned");
}

#[test]
fn locked_and_pulled_pipeline_runs_with_the_registry_stopped() {
    let (own, s, pipeline) = locked_on_own_registry("offline");
    let p = pipeline.to_str().unwrap();

    own.stop();
    let t = ok(s.kuryr6(&["check", p]));
    assert!(t.contains("ok (7 steps)"), "{t}");
    let plan = ok(s.kuryr6(&["plan", "--offline", p]));
    assert!(plan.contains("ams1-pod-subnet"), "{plan}");
    ok(s.kuryr6(&["plugin", "verify", p]));
    // Without the pulled copy the registry is needed, and its absence is
    // named (this is what the store saved us from above).
    let t = text(&s.kuryr6_with_cache(&["check", p], "empty"));
    assert!(
        t.contains("[Registry]") && t.contains("cannot be reached"),
        "{t}"
    );
}

#[test]
fn signed_path_plugins_are_checked_when_keys_are_given() {
    let s = Scratch::new("path");
    s.keygen("vendor");
    s.keygen("other");
    let file = s.signed("naming", "vendor");
    let sha = sha256_of(&file);
    let sha = sha.trim_start_matches("sha256:");
    let write = |keys: &str| {
        let p = s.path("site/pipeline.toml");
        std::fs::write(
            &p,
            format!(
                "[pipeline]\nname = \"seed-ipv6\"\n[plan]\npod_cidr = \"fd10:0:0:1::/64\"\nservice_cidr = \"fd10:0:0:2::/112\"\n[[plugin]]\npath = \"../naming.wasm\"\nsha256 = \"{sha}\"\nhooks = [\"naming\"]\n{keys}\n[plugin.facts]\nsite = \"ams1\"\n"
            ),
        )
        .unwrap();
        p
    };
    // Pinned, signed, keys trusted: verified.
    let p = write("trusted_keys = [\"../vendor.pub\"]");
    let t = ok(s.kuryr6(&["plugin", "verify", p.to_str().unwrap()]));
    assert!(t.contains("signed by"), "{t}");
    ok(s.kuryr6(&["check", p.to_str().unwrap()]));
    // The .minisig beside it is checked even with keys only in [plugins].
    let p = write("");
    std::fs::write(
        &p,
        std::fs::read_to_string(&p).unwrap() + "[plugins]\ntrusted_keys = [\"../other.pub\"]\n",
    )
    .unwrap();
    refused(s.kuryr6(&["check", p.to_str().unwrap()]), "UntrustedSigner");
    // Keys on the table with no .minisig: a signature is required.
    std::fs::remove_file(s.path("naming.wasm.minisig")).unwrap();
    let p = write("trusted_keys = [\"../vendor.pub\"]");
    refused(s.kuryr6(&["check", p.to_str().unwrap()]), "Unsigned");
    // No keys, no .minisig: a pinned path plugin works as before.
    let p = write("");
    ok(s.kuryr6(&["check", p.to_str().unwrap()]));
}

/// Credentials tied to one registry never reach another one: a second
/// "registry" on the same host, another port, that challenges with Basic
/// or with a Bearer realm of its own.
#[test]
fn credentials_of_one_registry_never_reach_another() {
    let s = Scratch::new("impostor");
    // The real local registry is the one the operator meant.
    let registry = std::env::var("KURYR6_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5050".into());
    let per_host = format!(
        "KURYR6_REGISTRY_AUTH_{}",
        registry.replace(['.', ':'], "_").to_uppercase()
    );
    let creds = [
        (per_host.as_str(), "vendor-ci:pw-e2e-77aa"),
        ("KURYR6_REGISTRY_USERNAME", "vendor-ci"),
        ("KURYR6_REGISTRY_PASSWORD", "pw-e2e-77aa"),
        ("KURYR6_REGISTRY_HOST", registry.as_str()),
    ];
    for basic in [true, false] {
        let impostor = TokenServer::start_challenging(basic);
        let source = s.repo(&impostor.addr(), "naming");
        let pipeline = s.pipeline(&source, "", "");
        let out = s.kuryr6_env(
            &["plugin", "lock", pipeline.to_str().unwrap()],
            "cache",
            &creds,
        );
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        let seen = impostor.requests.lock().unwrap().clone();
        assert!(
            seen.iter().any(|r| r.starts_with("GET /v2/")),
            "the impostor was asked and challenged: {seen:?}"
        );
        for r in &seen {
            let lower = r.to_ascii_lowercase();
            assert!(
                !lower.contains("authorization: basic"),
                "credentials reached the other registry: {r}"
            );
            // base64("vendor-ci:pw-e2e-77aa")
            assert!(!r.contains("dmVuZG9yLWNpOnB3LWUyZS03N2Fh"), "{r}");
        }
        if basic {
            assert!(t.contains("asks for credentials"), "{t}");
        }
        assert!(!t.contains("pw-e2e-77aa"), "a secret was printed: {t}");
    }
}

/// A token service for the registry's Bearer challenge: answers every
/// request with a token and keeps each request's head for the test.
/// `start_challenging` makes it a registry too, one that asks every `/v2/`
/// request for credentials (Basic, or Bearer with itself as the realm).
struct TokenServer {
    url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TokenServer {
    fn start() -> TokenServer {
        Self::serve(None)
    }

    fn start_challenging(basic: bool) -> TokenServer {
        Self::serve(Some(basic))
    }

    /// `host:port`.
    fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches("/token")
            .to_string()
    }

    fn serve(challenge: Option<bool>) -> TokenServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}/token");
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        // Ends with the test process; bounded by the test's own requests.
        std::thread::spawn(move || {
            for stream in listener.incoming().take(200) {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                seen.lock().unwrap().push(head.clone());
                if let Some(basic) = challenge
                    && head.starts_with("GET /v2/")
                {
                    let ask = if basic {
                        "Basic realm=\"impostor\"".to_string()
                    } else {
                        format!("Bearer realm=\"http://{addr}/token\",service=\"impostor\"")
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {ask}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    continue;
                }
                let body = r#"{"token":"tok-e2e-9f3a"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer { url, requests }
    }
}

#[test]
fn registry_credentials_are_traded_for_a_token_and_never_printed() {
    let tokens = TokenServer::start();
    let own = OwnRegistry::start_with(
        "auth",
        &[("KURYR6_REGISTRY_TOKEN_REALM", tokens.url.as_str())],
    );
    // The registry really asks: no token, no access.
    let code = v2_status(&own.addr);
    assert_eq!(code, "401");

    let s = Scratch::new("auth");
    s.keygen("vendor");
    let source = s.repo(&own.addr, "auth");
    // Tied to this registry (its address with port): the token service
    // shares its host.
    let creds = [
        ("KURYR6_REGISTRY_USERNAME", "vendor-ci"),
        ("KURYR6_REGISTRY_PASSWORD", "pw-e2e-5c1d"),
        ("KURYR6_REGISTRY_HOST", own.addr.as_str()),
    ];
    let file = s.signed("naming", "vendor");
    let mut outputs = vec![ok(s.kuryr6_env(
        &["plugin", "push", file.to_str().unwrap(), &source],
        "cache",
        &creds,
    ))];
    let pipeline = s.pipeline(&source, "", TRUSTS_VENDOR);
    let p = pipeline.to_str().unwrap();
    outputs.push(ok(s.kuryr6_env(&["plugin", "lock", p], "cache", &creds)));
    outputs.push(ok(s.kuryr6_env(&["-vv", "check", p], "fresh", &creds)));

    let seen = tokens.requests.lock().unwrap().clone();
    // base64("vendor-ci:pw-e2e-5c1d")
    let basic = "Basic dmVuZG9yLWNpOnB3LWUyZS01YzFk";
    assert!(
        seen.iter().any(|r| r.contains(basic)
            && r.contains("service=kuryr6-test")
            && r.contains(&format!(
                "scope=repository%3At{}%2Fauth%3A",
                std::process::id()
            ))),
        "the token service got the credentials, the service and the repository's scope: {seen:?}"
    );
    for out in &outputs {
        for secret in [
            "pw-e2e-5c1d",
            "dmVuZG9yLWNpOnB3LWUyZS01YzFk",
            "tok-e2e-9f3a",
        ] {
            assert!(!out.contains(secret), "a secret was printed: {out}");
        }
    }
}

/// `plugin new`'s README, "Ship it", run as a vendor and an operator would:
/// every command of its block in the order written (only the example
/// registry replaced by the local one), each one's success asserted, with
/// the pipeline edited as the block's comment says. (Pushed before it is
/// signed, the plugin would go out unsigned, and `plugin lock` refuses
/// that: `unsigned_is_refused_unless_allowed_and_then_recorded_and_warned`.)
/// The component is a shipped plugin in the place `cargo build` puts the
/// scaffold's (core/tests/scaffold.rs builds and tests the scaffold itself).
#[test]
fn the_scaffold_readme_ship_it_block_runs_as_written() {
    let reg = registry();
    let s = Scratch::new("readme-ship");
    let dir = s.path("acme-names");
    ok(s.kuryr6(&[
        "plugin",
        "new",
        "acme-names",
        "--dir",
        dir.to_str().unwrap(),
    ]));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let lines = sh_block(&readme, "## Ship it");
    let built = lines
        .iter()
        .find_map(|l| l.strip_prefix("minisign -S -s acme.key -m "))
        .expect("the block signs the built component")
        .to_string();
    std::fs::create_dir_all(dir.join(&built).parent().unwrap()).unwrap();
    std::fs::copy(wasm("naming"), dir.join(&built)).unwrap();
    // The key pair, as the block's first comment says (-W: no passphrase).
    let keygen = Command::new("minisign")
        .args(["-G", "-W", "-p", "acme.pub", "-s", "acme.key"])
        .current_dir(&dir)
        .output()
        .expect("minisign (installed by scripts/registry/up.sh)");
    assert_success(&keygen);

    let example = "oci://registry.example.com/acme/acme-names:0.1.0";
    let source = s.repo(&reg, "acme-names");
    let mut commands: Vec<String> = Vec::new();
    for line in &lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // What follows a command on its line is a comment.
        let command = line.split(" #").next().unwrap().trim();
        commands.push(command.replace(example, &source));
    }
    assert!(
        commands.iter().all(|c| !c.contains("example.com")),
        "a command names a registry the test did not replace: {commands:?}"
    );
    assert_eq!(
        commands
            .iter()
            .map(|c| c.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        [
            "minisign -S -s",
            "kuryr6 plugin push",
            "kuryr6 plugin pull",
            "kuryr6 plugin lock",
            "kuryr6 plugin verify",
        ],
        "the block's commands changed; this test runs them in order"
    );

    // The operator's edit, as the block's comment shows it.
    let pipeline = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    let plugin_table = pipeline
        .split("[[plugin]]")
        .nth(1)
        .and_then(|t| t.split("\n[").next())
        .expect("the scaffold's pipeline has a [[plugin]] table")
        .to_string();
    let pipeline = pipeline.replace(
        &plugin_table,
        &format!("\nsource = \"{source}\"\ntrusted_keys = [\"acme.pub\"]\n"),
    );
    std::fs::write(dir.join("pipeline.toml"), pipeline).unwrap();

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kuryr6")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in &commands {
        let out = Command::new("bash")
            .args(["-c", command])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("XDG_CACHE_HOME", s.path("cache"))
            .env("XDG_CONFIG_HOME", s.path("config"))
            .env_remove("KURYR6_PLUGIN_STORE")
            .env_remove("KURYR6_TRUSTED_KEYS")
            .output()
            .unwrap();
        assert!(out.status.success(), "`{command}` failed: {}", text(&out));
    }
    let lock = std::fs::read_to_string(dir.join("kuryr6.lock")).unwrap();
    assert!(lock.contains(&source), "{lock}");
    // The layer is the component the vendor built and signed, by its digest.
    assert_eq!(lock_value(&lock, "layer"), sha256_of(&dir.join(&built)));
    let key = std::fs::read_to_string(dir.join("acme.pub")).unwrap();
    assert!(
        key.lines()
            .next()
            .unwrap()
            .ends_with(&lock_value(&lock, "signer")),
        "signed by acme.key: {lock}"
    );
}
