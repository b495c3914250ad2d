//! The offline contract of the `kuryr6` binary: the bad-pipeline corpus,
//! mutations of the seed example, and the plan values the guide shows.
//! Runs the real binary; no cloud involved.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
#[path = "support/binary.rs"]
mod binary;
use binary::{SEED, SEED_KINDS, kuryr6, repo};

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The expected errors of a corpus file, from the comment lines at its top:
/// `# expect: LINE:COL CODE MESSAGE` for each error's primary location, each
/// followed by one `# also: LINE:COL MESSAGE` per secondary label, in the
/// order the error lists them. One string per error: the expect line, then
/// `\n  also: …` per label (the same form `error_string` builds).
fn expectations(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut v: Vec<String> = Vec::new();
    for l in text.lines() {
        if let Some(e) = l.strip_prefix("# expect: ") {
            v.push(e.to_string());
        } else if let Some(a) = l.strip_prefix("# also: ") {
            let last = v
                .last_mut()
                .unwrap_or_else(|| panic!("{}: `# also:` before any `# expect:`", path.display()));
            last.push_str(&format!("\n  also: {a}"));
        }
    }
    v.sort();
    v
}

/// One JSON error in the form of `expectations`; checks every label names
/// the same file as the error.
fn error_string(e: &Value) -> String {
    let mut s = format!(
        "{}:{} {} {}",
        e["line"],
        e["column"],
        e["code"].as_str().unwrap(),
        e["message"].as_str().unwrap()
    );
    for l in e["labels"]
        .as_array()
        .expect("every error has a labels array")
    {
        assert_eq!(l["file"], e["file"], "{e}");
        s.push_str(&format!(
            "\n  also: {}:{} {}",
            l["line"],
            l["column"],
            l["message"].as_str().unwrap()
        ));
    }
    s
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_pipeline_fails_with_exactly_its_expected_errors() {
    let files = corpus();
    assert!(files.len() >= 30, "corpus has {} files", files.len());
    for file in &files {
        let rel = file.strip_prefix(repo()).unwrap().to_str().unwrap();
        let expected = expectations(file);
        assert!(!expected.is_empty(), "{rel} has no `# expect:` line");

        let out = kuryr6(&["check", rel, "--format", "json"]);
        assert_eq!(out.status.code(), Some(2), "{rel}: exit code");
        let doc = json(&out);
        let mut got: Vec<String> = doc["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["file"], rel);
                error_string(e)
            })
            .collect();
        got.sort();
        assert_eq!(got, expected, "{rel}");

        // The text form names file:line:col for people and editors.
        let text = kuryr6(&["check", rel]);
        assert_eq!(text.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&text.stderr);
        let first = &expected[0];
        let (pos, rest) = first.split_once(' ').unwrap();
        let code = rest.split_once(' ').unwrap().0;
        assert!(
            stderr.contains(&format!("{rel}:{pos}: error[{code}]")),
            "{rel}: {stderr}"
        );
        assert!(
            stderr.contains("help:"),
            "{rel}: every error says what would be right:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{rel}: {stderr}");
        // Every secondary label is in the text too: its message, under an
        // excerpt of its line.
        for e in doc["errors"].as_array().unwrap() {
            for l in e["labels"].as_array().unwrap() {
                assert!(
                    stderr.contains(l["message"].as_str().unwrap()),
                    "{rel}: label {l} missing from\n{stderr}"
                );
                assert!(
                    shows_line(&stderr, l["line"].as_u64().unwrap()),
                    "{rel}: line of label {l} missing from\n{stderr}"
                );
            }
        }
    }
}

/// Whether a rendered excerpt shows source line `line` (codespan's gutter:
/// `NN │ text`).
fn shows_line(stderr: &str, line: u64) -> bool {
    stderr
        .lines()
        .any(|l| l.trim_start().starts_with(&format!("{line} │")))
}

#[test]
fn corpus_covers_every_validation_rule() {
    let mut codes = std::collections::BTreeSet::new();
    for file in corpus() {
        for e in expectations(&file) {
            codes.insert(e.split(' ').nth(1).unwrap().to_string());
        }
    }
    // E027 (unreadable file) has its own test below.
    let all: Vec<String> = (1..=26).map(|n| format!("E{n:03}")).collect();
    let missing: Vec<&String> = all.iter().filter(|c| !codes.contains(*c)).collect();
    assert!(missing.is_empty(), "no corpus file produces {missing:?}");
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let out = kuryr6(&["check", "no/such/pipeline.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no/such/pipeline.toml: error[E027]: cannot read"),
        "{stderr}"
    );
}

#[test]
fn check_reports_all_errors_of_all_files() {
    let out = kuryr6(&[
        "check",
        "examples/seed-ipv6/pipeline.toml",
        "tests/bad/17-service-range-too-large.toml",
        "tests/bad/34-vip-in-pool.toml",
        "tests/bad/01-toml-syntax.toml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let errors = json(&out)["errors"].as_array().unwrap().clone();
    let files: std::collections::BTreeSet<&str> =
        errors.iter().map(|e| e["file"].as_str().unwrap()).collect();
    assert_eq!(files.len(), 3, "{errors:?}");
    assert_eq!(errors.len(), 4, "{errors:?}");
}

fn plan_json(path: &str) -> Value {
    let out = kuryr6(&["plan", path, "--offline", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut docs = json(&out);

    docs.as_array_mut().unwrap().remove(0)
}

#[test]
fn seed_plan_has_the_guides_values() {
    let out = kuryr6(&["plan", SEED, "--offline", "--format", "json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for value in [
        "fd10:0:0:2::fffe",
        "fd10:0:0:2::8000",
        "fd10:0:0:2::fffd",
        "fd10:0:0:2::/113",
        "\"fd10:0:0:2::1\"",
        "fd10:0:0:1::1",
        "\"pods\"",
        "\"pod_subnet\"",
        "\"services\"",
        "\"service_subnet\"",
        "\"k8s-ipv6\"",
        "\"service_pod_access_v6\"",
        "\"default/kubernetes\"",
        "\"fd10:0:0:3::10\"",
        "\"fd10:0:0:3::11\"",
    ] {
        assert!(text.contains(value), "plan lacks {value}");
    }
    let doc = plan_json(SEED);
    let steps = doc["steps"].as_array().unwrap();
    let svc = steps
        .iter()
        .find(|s| s["name"] == "service_subnet")
        .unwrap();
    assert_eq!(svc["gateway_ip"], "fd10:0:0:2::fffe");
    assert_eq!(svc["allocation_pools"][0]["start"], "fd10:0:0:2::8000");
    assert_eq!(svc["allocation_pools"][0]["end"], "fd10:0:0:2::fffd");
    assert_eq!(svc["kubernetes_service_range"], "fd10:0:0:2::/113");
    assert_eq!(svc["kubernetes_default_ip"], "fd10:0:0:2::1");
    assert_eq!(svc["ip_version"], 6);
    assert_eq!(svc["enable_dhcp"], false);
    let pod = steps.iter().find(|s| s["name"] == "pod_subnet").unwrap();
    assert_eq!(pod["gateway_ip"], "fd10:0:0:1::1");
    assert_eq!(pod["allocation_pools"][0]["start"], "fd10:0:0:1::2");
    assert_eq!(
        pod["allocation_pools"][0]["end"],
        "fd10::1:ffff:ffff:ffff:ffff"
    );
    assert_eq!(doc["service_cluster_ip_range"][0], "fd10:0:0:2::/113");
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, SEED_KINDS);
    // The guide's last step: the API load balancer, its VIP the range's
    // first address (kubernetes.default), one member per API host.
    let lb = steps.iter().find(|s| s["kind"] == "loadbalancer").unwrap();
    assert_eq!(lb["name"], "default/kubernetes");
    assert_eq!(lb["subnet"], "service_subnet");
    assert_eq!(lb["vip"], svc["kubernetes_default_ip"]);
    assert_eq!(lb["listener_port"], 443);
    assert_eq!(lb["member_port"], 6443);
    assert_eq!(
        lb["members"],
        serde_json::json!([
            { "name": "master-0", "address": "fd10:0:0:3::10" },
            { "name": "master-1", "address": "fd10:0:0:3::11" }
        ])
    );
}

#[test]
fn explicit_seed_gives_the_identical_plan() {
    let mut short = plan_json(SEED);
    let mut explicit = plan_json("examples/seed-ipv6-explicit/pipeline.toml");
    short.as_object_mut().unwrap().remove("file");
    explicit.as_object_mut().unwrap().remove("file");
    assert_eq!(short, explicit);
}

/// The content of the file `name` that the plan `doc`'s first output emits.
fn emitted<'a>(doc: &'a Value, name: &str) -> &'a str {
    let files = doc["outputs"][0]["files"].as_array().unwrap();
    let file = files.iter().find(|f| f["file"] == name);
    file.unwrap_or_else(|| panic!("no {name}"))["content"]
        .as_str()
        .unwrap()
}

#[test]
fn offline_outputs_mark_ids_as_placeholders() {
    let doc = plan_json(SEED);
    let conf = emitted(&doc, "kuryr.conf");
    assert!(
        conf.contains("pod_subnet = <offline:subnet:pod_subnet>"),
        "{conf}"
    );
    assert!(
        conf.contains("pod_security_groups = <offline:security_group:service_pod_access_v6>"),
        "{conf}"
    );
    let flags = |name: &str| emitted(&doc, name).to_string();
    // The generic flags bind the first API host; each host gets its own.
    assert_eq!(
        flags("kube-apiserver.flags"),
        "--service-cluster-ip-range=fd10:0:0:2::/113\n--bind-address=fd10:0:0:3::10\n--advertise-address=fd10:0:0:3::10\n"
    );
    assert_eq!(
        flags("kube-apiserver.master-1.flags"),
        "--service-cluster-ip-range=fd10:0:0:2::/113\n--bind-address=fd10:0:0:3::11\n--advertise-address=fd10:0:0:3::11\n"
    );
    let kubeadm = flags("kubeadm.yaml");
    assert!(
        kubeadm.contains("controlPlaneEndpoint: '[fd10:0:0:2::1]:443'"),
        "{kubeadm}"
    );
}

#[test]
fn dual_stack_emits_comma_forms() {
    let doc = plan_json("examples/dual-stack/pipeline.toml");
    assert_eq!(
        doc["service_cluster_ip_range"],
        serde_json::json!(["fd10:0:0:2::/113", "172.30.0.0/17"])
    );
    let kubeadm = emitted(&doc, "kubeadm.yaml");
    assert!(
        kubeadm.contains("serviceSubnet: fd10:0:0:2::/113,172.30.0.0/17"),
        "{kubeadm}"
    );
}

#[test]
fn sites_are_carved_disjoint_from_one_prefix() {
    let mut cidrs = Vec::new();
    for i in 1..=3 {
        let doc = plan_json(&format!("examples/sites/site-{i}.toml"));
        for s in doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "subnet")
        {
            cidrs.push(s["cidr"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(cidrs[0], "fd42:a1b2:c3d4:11::/64");
    assert_eq!(cidrs[5], "fd42:a1b2:c3d4:32::/112");
    let unique: std::collections::BTreeSet<_> = cidrs.iter().collect();
    assert_eq!(unique.len(), 6);
}

/// The seed with its service CIDR replaced: must fail with exit 2, naming
/// the service_cidr line.
fn mutate_seed(service_cidr: &str) -> (Output, usize, tempfile_dir::Dir) {
    let text = std::fs::read_to_string(repo().join(SEED)).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("service_cidr"))
        .unwrap()
        + 1;
    let mutated = text.replace("\"fd10:0:0:2::/112\"", &format!("\"{service_cidr}\""));
    assert_ne!(mutated, text);
    let dir = tempfile_dir::Dir::new();
    let path = dir.path().join("pipeline.toml");
    std::fs::write(&path, mutated).unwrap();
    let out = kuryr6(&["check", path.to_str().unwrap()]);
    (out, line, dir)
}

#[test]
fn seed_mutations_fail_naming_the_line() {
    for (cidr, code) in [
        ("fd10:0:0:2::/100", "E008"),
        ("10.96.0.0/24", "E015"),
        ("fd10:0:0:2::/129", "E003"),
        ("fd10:0:0:1::/112", "E014"),
    ] {
        let (out, line, dir) = mutate_seed(cidr);
        assert_eq!(out.status.code(), Some(2), "{cidr}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let path = dir.path().join("pipeline.toml");
        let at = format!("{}:{line}:", path.display());
        assert!(
            stderr.contains(&at) && stderr.contains(code),
            "{cidr}: expected {at} {code} in\n{stderr}"
        );
    }
}

/// The seed with its pod CIDR changed so that it clashes with the service
/// CIDR: the error stays on the service_cidr line (its primary place) and
/// also names the pod_cidr line, the one that changed, in text and JSON.
#[test]
fn seed_pod_mutations_name_both_lines() {
    let text = std::fs::read_to_string(repo().join(SEED)).unwrap();
    let line_of = |key: &str| text.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    let (pod_line, svc_line) = (line_of("pod_cidr"), line_of("service_cidr"));
    for (pod_cidr, code, label) in [
        (
            "fd10:0:0:2::/64",
            "E014",
            "subnet `pod_subnet` fd10:0:0:2::/64",
        ),
        (
            "10.244.0.0/16",
            "E015",
            "pod subnet `pod_subnet_v4` 10.244.0.0/16 is IPv4",
        ),
    ] {
        let mutated = text.replace("\"fd10:0:0:1::/64\"", &format!("\"{pod_cidr}\""));
        assert_ne!(mutated, text);
        let dir = tempfile_dir::Dir::new();
        let path = dir.path().join("pipeline.toml");
        std::fs::write(&path, mutated).unwrap();
        let path = path.to_str().unwrap();

        let out = kuryr6(&["check", path, "--format", "json"]);
        assert_eq!(out.status.code(), Some(2), "{pod_cidr}");
        let doc = json(&out);
        let errors = doc["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{pod_cidr}: {errors:?}");
        let e = &errors[0];
        assert_eq!(e["code"], code, "{e}");
        assert_eq!(e["file"], path, "{e}");
        assert_eq!(e["line"], svc_line, "{pod_cidr}: primary moved: {e}");
        assert_eq!(e["column"], 16, "{e}");
        assert_eq!(
            e["labels"],
            serde_json::json!([{
                "file": path, "line": pod_line, "column": 12, "message": label
            }]),
            "{pod_cidr}"
        );

        let out = kuryr6(&["check", path]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{path}:{svc_line}:16: error[{code}]")),
            "{stderr}"
        );
        for (line, shown) in [(svc_line, "service_cidr = "), (pod_line, "pod_cidr = ")] {
            assert!(
                stderr
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{line} │ {shown}"))),
                "{pod_cidr}: line {line} not excerpted in\n{stderr}"
            );
        }
        assert!(stderr.contains(label), "{stderr}");
    }
}

/// A temporary directory removed on drop (std only).
mod tempfile_dir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct Dir(PathBuf);
    static N: AtomicUsize = AtomicUsize::new(0);

    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!(
                "kuryr6-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
