//! The container image (Containerfile, scripts/image.sh) and the Kubernetes
//! manifests that run it (deploy/kubernetes/), checked for real:
//!
//! - `scripts/image.sh --push` builds the image and pushes it to the local
//!   registry (scripts/registry/up.sh, `KURYR6_REGISTRY`); the registry serves
//!   the digest it printed and the image pulls back by that digest, into
//!   separate storage, as the same image id.
//! - The image's binary is static (its ELF has no interpreter and needs no
//!   shared library), its user is not root, `/kuryr6` is its only executable.
//! - Its exported root filesystem is the whole world of the runs below: the
//!   binary runs in a chroot of it as the image's user (no running container
//!   here: crun refuses this machine's cgroups). It plans the seed offline
//!   exactly as the host build does, and runs the Indexed Job's, the drift
//!   CronJob's and the merge steps' own arguments (read from the manifests,
//!   `$(JOB_COMPLETION_INDEX)` expanded as Kubernetes does) against the local
//!   cloud for one site with `--shard 0/1`, then destroys it.
//! - The manifests parse as YAML, name this version's image, the shard index
//!   variable and the merge step, and pass the API's own schemas offline
//!   (scripts/k8s/validate.sh).
//!
//! Needs root (chroot, and a file owner other than us), podman (image.sh
//! installs it), the local cloud and the registry: scripts/test.sh provides
//! them. Nothing is skipped: a missing piece fails the test.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use support::{LocalCloud, assert_ok, holds, repo, stderr, stdout, strs, strs_of};

/// What `scripts/image.sh --push` printed, and the image's exported root.
struct Built {
    id: String,
    size: u64,
    pushed: String,
    inspect: Value,
    rootfs: PathBuf,
    /// The exported files and their modes, before any test added its own.
    files: Vec<(PathBuf, u32)>,
}

const TAG: &str = "localhost/kuryr6:e2e";

fn registry() -> String {
    std::env::var("KURYR6_REGISTRY").unwrap_or_else(|_| {
        panic!("KURYR6_REGISTRY is not set: start the registry with `bash scripts/registry/up.sh` (scripts/test.sh does)")
    })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn podman(args: &[&str]) -> Output {
    run(Command::new("podman").args(args))
}

/// Builds, pushes and exports once for every test of this binary.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dest = format!("oci://{}/kuryr6:e2e", registry());
        let out = run(Command::new("bash")
            .arg(repo().join("scripts/image.sh"))
            .args(["--tag", TAG, "--push", &dest]));
        assert_ok(&out);
        let printed: BTreeMap<String, String> = stdout(&out)
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for key in ["image", "id", "digest", "size", "pushed"] {
            assert!(
                printed.contains_key(key),
                "image.sh printed no {key}:\n{}",
                stdout(&out)
            );
        }
        assert_eq!(printed["image"], TAG);
        let size: u64 = printed["size"]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("size: {}", printed["size"]));

        let inspect = podman(&["image", "inspect", TAG]);
        assert_ok(&inspect);
        let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        let inspect = inspect[0].clone();

        // The root filesystem as a container of the image has it.
        let rootfs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image-e2e-rootfs");
        let _ = std::fs::remove_dir_all(&rootfs);
        std::fs::create_dir_all(&rootfs).unwrap();
        let container = format!("kuryr6-e2e-{}", std::process::id());
        assert_ok(&podman(&["create", "--name", &container, TAG]));
        let tar = rootfs.with_extension("tar");
        let exported = podman(&["export", "--output", tar.to_str().unwrap(), &container]);
        let _ = podman(&["rm", &container]);
        assert_ok(&exported);
        assert_ok(&run(Command::new("tar").args([
            "-xf",
            tar.to_str().unwrap(),
            "-C",
            rootfs.to_str().unwrap(),
        ])));
        std::fs::remove_file(&tar).unwrap();
        // The chroot's user must be able to walk in.
        std::fs::set_permissions(&rootfs, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut files = Vec::new();
        let mut stack = vec![rootfs.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let meta = std::fs::symlink_metadata(e.path()).unwrap();
                if meta.is_dir() {
                    stack.push(e.path());
                } else {
                    files.push((
                        e.path().strip_prefix(&rootfs).unwrap().to_path_buf(),
                        meta.mode(),
                    ));
                }
            }
        }
        files.sort();

        Built {
            id: printed["id"].clone(),
            size,
            pushed: printed["pushed"].clone(),
            inspect,
            rootfs,
            files,
        }
    })
}

/// The image's user as `uid:gid`, numeric.
fn image_user(b: &Built) -> (u32, u32) {
    let user = b.inspect["Config"]["User"].as_str().unwrap_or_default();
    let (u, g) = user
        .split_once(':')
        .unwrap_or_else(|| panic!("image user {user:?} is not uid:gid"));
    (u.parse().unwrap(), g.parse().unwrap())
}

/// `/kuryr6 ARGS` in a chroot of the exported image as its user, with only
/// `env` (a container sees the image's env and the pod's, nothing of ours).
fn in_image(b: &Built, args: &[String], env: &[(String, String)]) -> Output {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "running the image's binary in a chroot as its user needs root (CI runs as root)"
    );
    let (uid, gid) = image_user(b);
    // Found here: the cleared environment has no PATH, and it is in sbin.
    let chroot = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("chroot"))
        .find(|p| p.is_file())
        .expect("chroot (coreutils)");
    let mut cmd = Command::new(chroot);
    cmd.arg(format!("--userspec={uid}:{gid}"))
        .arg(&b.rootfs)
        .arg("/kuryr6")
        .args(args)
        .env_clear();
    for e in b.inspect["Config"]["Env"].as_array().unwrap() {
        let (k, v) = e.as_str().unwrap().split_once('=').unwrap();
        cmd.env(k, v);
    }
    // HOME as a container runtime sets it: the user's entry in the image's passwd.
    let passwd = std::fs::read_to_string(b.rootfs.join("etc/passwd")).unwrap();
    let home = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() == 7 && f[2] == uid.to_string())
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| panic!("no passwd entry for {uid}"));
    cmd.env("HOME", home);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    run(&mut cmd)
}

/// Program-header and dynamic-section facts of an x86-64 ELF file: whether
/// it names a program interpreter, and how many shared libraries it needs.
fn elf_links(bytes: &[u8]) -> (bool, usize) {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[4], 2, "not ELF64");
    assert_eq!(bytes[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(u16_at(0x12), 0x3e, "not x86-64");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let mut interp = false;
    let mut needed = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(ph) {
            3 => interp = true, // PT_INTERP
            2 => {
                // PT_DYNAMIC: (tag, value) pairs up to DT_NULL.
                let (off, size) = (u64_at(ph + 8), u64_at(ph + 0x20));
                for e in (off..off + size).step_by(16) {
                    match u64_at(e) {
                        0 => break,
                        1 => needed += 1, // DT_NEEDED
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (interp, needed)
}

#[test]
fn the_image_is_static_non_root_and_labelled() {
    let b = built();
    let c = &b.inspect["Config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/kuryr6"]));
    let (uid, gid) = image_user(b);
    assert!(uid != 0 && gid != 0, "the image runs as {uid}:{gid}");
    assert_eq!(b.inspect["Os"], "linux");
    assert_eq!(b.inspect["Architecture"], "amd64");
    assert_eq!(
        format!("sha256:{}", b.inspect["Id"].as_str().unwrap()),
        b.id
    );
    assert_eq!(b.inspect["Size"].as_u64(), Some(b.size));

    // Labels: this build's version and source revision.
    let host_version = run(Command::new(env!("CARGO_BIN_EXE_kuryr6")).arg("--version"));
    let version = stdout(&host_version)
        .trim()
        .strip_prefix("kuryr6 ")
        .unwrap()
        .to_string();
    assert_eq!(
        c["Labels"]["org.opencontainers.image.version"],
        version.as_str()
    );
    // A source tree that is not a git checkout (an unpacked tarball) is
    // labelled "unknown", as image.sh says.
    let head = run(Command::new("git")
        .arg("-C")
        .arg(repo())
        .args(["rev-parse", "HEAD"]));
    let revision = if head.status.success() {
        let clean = run(Command::new("git")
            .arg("-C")
            .arg(repo())
            .args(["diff", "--quiet", "HEAD", "--"]));
        format!(
            "{}{}",
            stdout(&head).trim(),
            if clean.status.success() { "" } else { "-dirty" }
        )
    } else {
        "unknown".to_string()
    };
    assert_eq!(
        c["Labels"]["org.opencontainers.image.revision"],
        revision.as_str()
    );

    // Static: the parser sees the host build's glibc links, and none in the image's.
    let host = std::fs::read(env!("CARGO_BIN_EXE_kuryr6")).unwrap();
    let (interp, needed) = elf_links(&host);
    assert!(
        interp && needed > 0,
        "the host build should be dynamic: interp {interp}, needed {needed}"
    );
    let image_bin = std::fs::read(b.rootfs.join("kuryr6")).unwrap();
    assert_eq!(
        elf_links(&image_bin),
        (false, 0),
        "the image's /kuryr6 is not static"
    );

    // No shell, no other program: /kuryr6 is the only executable file, and
    // the CA bundle rustls reads is a real one.
    let executables: Vec<&PathBuf> = b
        .files
        .iter()
        .filter(|(_, mode)| mode & 0o111 != 0)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(executables, [&PathBuf::from("kuryr6")], "{:?}", b.files);
    assert!(
        holds(
            &c["Env"],
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
        ),
        "{}",
        c["Env"]
    );
    let bundle =
        std::fs::read_to_string(b.rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    let certs = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    assert!(certs > 50, "the CA bundle holds {certs} certificates");
    let passwd = std::fs::read_to_string(b.rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.split(':').nth(2) == Some(&uid.to_string())),
        "no passwd entry for {uid}: {passwd}"
    );
}

#[test]
fn the_image_is_pushed_and_pulled_back_by_digest() {
    let b = built();
    let registry = registry();
    let (reference, digest) = b.pushed.split_once('@').unwrap();
    assert_eq!(reference, format!("{registry}/kuryr6:e2e"));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    // The registry serves that digest for the tag...
    let head = run(Command::new("curl").args([
        "-sfI",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        &format!("http://{registry}/v2/kuryr6/manifests/e2e"),
    ]));
    assert_ok(&head);
    let served = stdout(&head)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Docker-Content-Digest: {}", stdout(&head)));
    assert_eq!(served, digest);

    // ...and it pulls back by digest, into storage of its own (so the bytes
    // come from the registry), as the very image that was built.
    let store = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image-e2e-pull");
    let _ = std::fs::remove_dir_all(&store);
    let root = store.join("root");
    let runroot = store.join("run");
    let by_digest = format!("{registry}/kuryr6@{digest}");
    let separate = |args: &[&str]| {
        run(Command::new("podman")
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs"])
            .args(args))
    };
    let pulled = separate(&["pull", "--quiet", "--tls-verify=false", &by_digest]);
    assert_ok(&pulled);
    assert_eq!(format!("sha256:{}", stdout(&pulled).trim()), b.id);
    let inspect = separate(&["image", "inspect", &by_digest]);
    assert_ok(&inspect);
    let pulled: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(pulled[0]["Digest"], digest);
    assert_eq!(pulled[0]["Config"]["User"], b.inspect["Config"]["User"]);
    // The digest names one content: another manifest digest is unknown there.
    let other = format!("{registry}/kuryr6@sha256:{}", "0".repeat(64));
    assert!(
        !separate(&["pull", "--quiet", "--tls-verify=false", &other])
            .status
            .success()
    );
    let _ = separate(&["rmi", "--all", "--force"]);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn the_exported_binary_plans_the_seed_offline_as_the_host_build_does() {
    let b = built();
    let seed = b.rootfs.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::copy(
        repo().join("examples/seed-ipv6/pipeline.toml"),
        seed.join("pipeline.toml"),
    )
    .unwrap();
    for format in ["text", "json"] {
        let args: Vec<String> = [
            "plan",
            "seed/pipeline.toml",
            "--offline",
            "--format",
            format,
        ]
        .map(String::from)
        .to_vec();
        // chroot starts in the image's /; the host build from the same place.
        let image = in_image(b, &args, &[]);
        assert_ok(&image);
        let host = run(Command::new(env!("CARGO_BIN_EXE_kuryr6"))
            .args(&args)
            .current_dir(&b.rootfs)
            .env_clear());
        assert_ok(&host);
        assert!(stdout(&image).contains("pipeline seed-ipv6") || format == "json");
        assert_eq!(stdout(&image), stdout(&host), "--format {format}");
    }
}

/// One YAML file of deploy/kubernetes, every document of it.
fn manifests(file: &str) -> Vec<Value> {
    let path = repo().join("deploy/kubernetes").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| {
            let v: yaml_serde::Value =
                serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
            serde_json::to_value(v).unwrap()
        })
        .collect()
}

/// The pod spec of a Job or of a CronJob's Job, and the Job spec.
fn job_parts(doc: &Value) -> (&Value, &Value) {
    let job = match doc["kind"].as_str() {
        Some("Job") => &doc["spec"],
        Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"],
        k => panic!("not a Job or CronJob: {k:?}"),
    };
    (job, &job["template"]["spec"])
}

/// `$(NAME)` replaced as the kubelet does in a container's args.
fn k8s_expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = arg.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    assert!(!out.contains("$("), "unexpanded variable in {arg}");
    out
}

/// A container's args for shard 0 of 1 (the manifest's N is checked against
/// its `completions`), and its env as the pod would have it.
fn shard_zero_of_one(doc: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let (job, pod) = job_parts(doc);
    assert_eq!(job["completionMode"], "Indexed");
    let n = job["completions"].as_u64().unwrap();
    let container = &pod["containers"][0];
    let mut env: BTreeMap<String, String> = container["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().into(),
                        e["value"].as_str().unwrap().into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // The Job controller's variable.
    env.insert("JOB_COMPLETION_INDEX".into(), "0".into());
    let mut args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| k8s_expand(a.as_str().unwrap(), &env))
        .collect();
    let shard = args.iter().position(|a| a == "--shard").expect("--shard") + 1;
    assert_eq!(
        args[shard],
        format!("0/{n}"),
        "--shard and completions disagree"
    );
    args[shard] = "0/1".into();
    env.remove("JOB_COMPLETION_INDEX");
    (args, env.into_iter().collect())
}

fn arg_after(args: &[String], flag: &str) -> String {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    args[i + 1].clone()
}

/// A path inside the image's root.
fn inside(b: &Built, path: &str) -> PathBuf {
    b.rootfs.join(path.trim_start_matches('/'))
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// Where the pod spec mounts the volume `name`.
fn mount_of(pod: &Value, name: &str) -> String {
    pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("no mount of {name}"))
        .to_string()
}

/// Lays `files` out as a ConfigMap volume does: a timestamped directory,
/// `..data` linking to it, and one link per key.
fn configmap_volume(dir: &Path, files: &[(&str, String)]) {
    let _ = std::fs::remove_dir_all(dir);
    let stamp = dir.join("..2026_01_01_00_00_00.000000001");
    std::fs::create_dir_all(&stamp).unwrap();
    for (name, text) in files {
        std::fs::write(stamp.join(name), text).unwrap();
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(stamp.file_name().unwrap(), dir.join("..data")).unwrap();
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no summary at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The one site of a summary.
fn only_site(summary: &Value) -> &Value {
    let sites = summary["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 1, "{summary}");
    &sites[0]
}

/// Tests that write under the image's /sites, /reports and /etc/openstack take turns.
static VOLUMES: Mutex<()> = Mutex::new(());

const SITE: &str = "image-e2e";

#[test]
fn the_image_runs_the_jobs_arguments_for_one_shard_against_the_local_cloud() {
    let _turn = VOLUMES.lock().unwrap_or_else(|p| p.into_inner());
    let b = built();
    let cloud = LocalCloud::get();
    let (uid, gid) = image_user(b);
    let fleet = &manifests("fleet-job.yaml")[0];
    let drift = &manifests("drift-cronjob.yaml")[0];
    let merge = &manifests("merge-job.yaml")[0];
    let drift_merge = &manifests("drift-cronjob.yaml")[1];
    let (_, pod) = job_parts(fleet);

    // The volumes, where the pod spec mounts them: the sites (a ConfigMap),
    // clouds.yaml and secure.yaml (the Secret, readable through the group as
    // defaultMode 0440 and fsGroup make them), the reports and the cache.
    let site = format!(
        "[pipeline]\nname = \"{SITE}\"\n[cloud]\nname = \"{}\"\n[kubernetes]\nversion = \"1.33\"\n[plan]\nsite_prefix = \"fd42:e2e0:6b6b::/48\"\nsite_id = 7\n",
        cloud.env["OS_CLOUD"]
    );
    let sites = inside(b, &mount_of(pod, "sites"));
    configmap_volume(&sites, &[(&format!("{SITE}.toml"), site.clone())]);
    let clouds = inside(b, &mount_of(pod, "clouds"));
    let _ = std::fs::remove_dir_all(&clouds);
    std::fs::create_dir_all(&clouds).unwrap();
    for (var, name) in [
        ("OS_CLIENT_CONFIG_FILE", "clouds.yaml"),
        ("OS_CLIENT_SECURE_FILE", "secure.yaml"),
    ] {
        let to = clouds.join(name);
        std::fs::copy(&cloud.env[var], &to).unwrap();
        chown(&to, 0, gid);
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o440)).unwrap();
    }
    for volume in ["reports", "cache"] {
        let dir = inside(b, &mount_of(pod, volume));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        chown(&dir, uid, gid);
    }
    // Whatever fails below, the site's resources go, and so does the copy
    // of the cloud's credentials.
    struct Cleanup(PathBuf, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let cloud = LocalCloud::get();
            let _ = cloud.kuryr6(
                self.0.parent().unwrap(),
                &["destroy", self.0.to_str().unwrap()],
            );
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _cleanup = Cleanup(sites.join(format!("{SITE}.toml")), clouds.clone());
    let password = cloud.admin_password();
    let check = |o: &Output, what: &str, code: i32| {
        assert_eq!(
            o.status.code(),
            Some(code),
            "{what}: stdout:\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        );
        assert!(
            !stdout(o).contains(&password) && !stderr(o).contains(&password),
            "{what} printed the password"
        );
    };

    // The drift CronJob before the first run: everything is pending (exit 3).
    let (drift_args, drift_env) = shard_zero_of_one(drift);
    assert_eq!(drift_args[0], "plan");
    assert!(drift_args.contains(&"--detailed-exitcode".to_string()));
    let drift_summary = inside(b, &arg_after(&drift_args, "--summary"));
    let o = in_image(b, &drift_args, &drift_env);
    check(&o, "drift plan before the run", 3);
    let s = json_file(&drift_summary);
    assert_eq!(s["command"], "plan");
    assert_eq!(s["shards"], serde_json::json!(["0/1"]));
    assert_eq!(only_site(&s)["status"], "pending");
    assert_eq!(s["pending"], serde_json::json!([SITE]));
    let (merge_args, merge_env) = container_args(drift_merge);
    let o = in_image(b, &merge_args, &merge_env);
    check(&o, "drift merge before the run", 3);

    // The fleet Job's pod 0 of 1.
    let (args, env) = shard_zero_of_one(fleet);
    assert_eq!(args[0], "run");
    let summary = inside(b, &arg_after(&args, "--summary"));
    let o = in_image(b, &args, &env);
    check(&o, "the Job's run", 0);
    let s = json_file(&summary);
    // The file holds what stdout shows with --format json.
    assert_eq!(s, serde_json::from_slice::<Value>(&o.stdout).unwrap());
    assert_eq!(s["command"], "run");
    assert_eq!(s["ok"], true);
    let site_report = only_site(&s);
    assert_eq!(site_report["site"], SITE);
    assert_eq!(site_report["status"], "ok");
    assert!(site_report["created"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(std::fs::metadata(&summary).unwrap().uid(), uid);
    // kuryr.conf, where --out puts it, names the subnets the run made.
    let subnets = cloud.openstack(&[
        "subnet",
        "list",
        "--tags",
        &format!("kuryr6:pipeline={SITE}"),
    ]);
    let subnet_ids = strs_of(&subnets, "ID");
    assert_eq!(subnet_ids.len(), 2, "{subnets}");
    let out = inside(b, &arg_after(&args, "--out"));
    let conf = std::fs::read_to_string(out.join(SITE).join("kuryr.conf")).unwrap();
    for id in &subnet_ids {
        assert!(
            conf.contains(id),
            "kuryr.conf does not name subnet {id}:\n{conf}"
        );
    }

    // The merge Job over the fleet's summaries.
    let (merge_args, merge_env) = container_args(merge);
    assert_eq!(merge_args[..2], ["report", "merge"]);
    let o = in_image(b, &merge_args, &merge_env);
    check(&o, "the merge Job", 0);
    let merged: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(only_site(&merged)["status"], "ok");
    assert_eq!(merged["missing_shards"], serde_json::json!([]));

    // The drift CronJob after the run: nothing drifted; its merge agrees.
    let o = in_image(b, &drift_args, &drift_env);
    check(&o, "drift plan after the run", 0);
    assert_eq!(only_site(&json_file(&drift_summary))["status"], "ok");
    let (merge_args, merge_env) = container_args(drift_merge);
    check(
        &in_image(b, &merge_args, &merge_env),
        "drift merge after the run",
        0,
    );

    // Destroy, as the Job's pod would: its arguments with `destroy`, no --out.
    let mut destroy = vec!["destroy".to_string()];
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--out" => {
                rest.next();
            }
            "--summary" => {
                rest.next();
                destroy.extend(["--summary".into(), "/reports/destroy/shard-0.json".into()]);
            }
            _ => destroy.push(a.clone()),
        }
    }
    let o = in_image(b, &destroy, &env);
    check(&o, "destroy", 0);
    let s = json_file(&inside(b, "/reports/destroy/shard-0.json"));
    assert_eq!(s["command"], "destroy");
    assert!(only_site(&s)["deleted"].as_u64().unwrap() > 0, "{s}");
    let nets = cloud.openstack(&[
        "network",
        "list",
        "--tags",
        &format!("kuryr6:pipeline={SITE}"),
    ]);
    assert_eq!(nets, serde_json::json!([]));
}

/// A plain (not indexed) Job's or CronJob's container args and env.
fn container_args(doc: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let (_, pod) = job_parts(doc);
    let container = &pod["containers"][0];
    let env = BTreeMap::new();
    let args = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| k8s_expand(a.as_str().unwrap(), &env))
        .collect();
    (args, vec![])
}

#[test]
fn the_example_sites_and_clouds_agree_and_check_in_the_image() {
    let _turn = VOLUMES.lock().unwrap_or_else(|p| p.into_inner());
    let b = built();
    let configmap = &manifests("sites-configmap.yaml")[0];
    let secret = &manifests("clouds-secret.yaml")[0];
    let sites: Vec<(&str, String)> = configmap["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap().to_string()))
        .collect();
    assert!(
        sites.len() >= 2,
        "the example fleet has {} site(s)",
        sites.len()
    );
    let clouds: Value = serde_json::to_value(
        yaml_serde::from_str::<yaml_serde::Value>(
            secret["stringData"]["clouds.yaml"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let secure: Value = serde_json::to_value(
        yaml_serde::from_str::<yaml_serde::Value>(
            secret["stringData"]["secure.yaml"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    // Every site's cloud is an entry of clouds.yaml with its secret in
    // secure.yaml, and every secret is a placeholder.
    for (name, text) in &sites {
        let parsed: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cloud = parsed["cloud"]["name"].as_str().unwrap();
        assert!(
            clouds["clouds"][cloud].is_object(),
            "{name}: no clouds.yaml entry {cloud}"
        );
        let secret = secure["clouds"][cloud]["auth"]["application_credential_secret"].as_str();
        assert_eq!(
            secret,
            Some("REPLACE-WITH-THE-CREDENTIAL-SECRET"),
            "{name}: {cloud}"
        );
    }
    // They pass every rule, checked by the image's binary, read from a
    // directory laid out as the ConfigMap volume.
    let dir = inside(b, "/sites");
    configmap_volume(&dir, &sites);
    let o = in_image(b, &["check".into(), "/sites".into()], &[]);
    assert_ok(&o);
    let o = in_image(
        b,
        &[
            "plan".into(),
            "/sites".into(),
            "--offline".into(),
            "--format".into(),
            "json".into(),
        ],
        &[],
    );
    assert_ok(&o);
    let plans: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        plans.as_array().unwrap().len(),
        sites.len(),
        "the ..data links are not read twice"
    );
}

#[test]
fn the_manifests_name_the_image_the_shard_index_and_the_merge_step() {
    let version = env!("CARGO_PKG_VERSION");
    let mut images = BTreeSet::new();
    let mut kinds = BTreeMap::<String, usize>::new();
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut merges = Vec::new();
    for file in &files {
        for doc in manifests(file) {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: no kind"))
                .to_string();
            *kinds.entry(kind.clone()).or_default() += 1;
            if kind != "Job" && kind != "CronJob" {
                continue;
            }
            let (job, pod) = job_parts(&doc);
            let container = &pod["containers"][0];
            images.insert(container["image"].as_str().unwrap().to_string());
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{file}");
            assert_eq!(
                container["securityContext"]["readOnlyRootFilesystem"], true,
                "{file}"
            );
            assert!(
                container.get("command").is_none(),
                "{file}: the image has no shell; use args"
            );
            let args = strs(&container["args"]);
            if args[..2] == ["report", "merge"] {
                merges.push((file.clone(), args[2].to_string()));
                continue;
            }
            // Every other Job is indexed, one pod per shard.
            assert_eq!(job["completionMode"], "Indexed", "{file}");
            let shard = args[args.iter().position(|a| *a == "--shard").unwrap() + 1];
            assert_eq!(
                shard,
                format!("$(JOB_COMPLETION_INDEX)/{}", job["completions"]),
                "{file}"
            );
            let summary = args[args.iter().position(|a| *a == "--summary").unwrap() + 1];
            assert!(
                summary.contains("$(JOB_COMPLETION_INDEX)"),
                "{file}: {summary}"
            );
            // Some merge step reads the directory this shard writes into.
            let summaries = Path::new(summary)
                .parent()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            merges.push((format!("{file} needs"), summaries));
        }
    }
    assert_eq!(
        images,
        BTreeSet::from([format!("registry.example/kuryr6:{version}")])
    );
    for kind in [
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "Job",
        "CronJob",
    ] {
        assert!(
            kinds.contains_key(kind),
            "no {kind} in deploy/kubernetes: {kinds:?}"
        );
    }
    let read: BTreeSet<&str> = merges
        .iter()
        .filter(|(f, _)| !f.ends_with("needs"))
        .map(|(_, d)| d.as_str())
        .collect();
    for (file, dir) in merges.iter().filter(|(f, _)| f.ends_with("needs")) {
        assert!(
            read.contains(dir.as_str()),
            "{file} a merge step over {dir}; merges read {read:?}"
        );
    }

    // The API's own schemas, strict, offline.
    let o = run(Command::new("bash")
        .arg(repo().join("scripts/k8s/validate.sh"))
        .arg(&dir));
    assert_ok(&o);
    let passed = stdout(&o)
        .lines()
        .filter(|l| l.contains(" passed "))
        .count()
        + stderr(&o)
            .lines()
            .filter(|l| l.contains(" passed "))
            .count();
    let docs: usize = kinds.values().sum();
    assert_eq!(
        passed,
        docs * 2,
        "every document against two versions:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
}
