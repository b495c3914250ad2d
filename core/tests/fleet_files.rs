//! What a container with no shell needs of the command line (the image of
//! Containerfile, run by deploy/kubernetes/): a directory stands for its
//! pipelines (`/sites`, a ConfigMap volume) or summaries, and `--summary FILE`
//! writes the fleet's JSON summary where a shell would have redirected it.
//! No cloud: a site whose cloud does not answer fails, and that is a summary
//! too.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn site(i: usize) -> String {
    format!(
        "[pipeline]\nname = \"site-{i}\"\n[cloud]\nname = \"nowhere\"\n[plan]\nsite_prefix = \"fd42:a1b2:c3d4::/48\"\nsite_id = {i}\n"
    )
}

fn kuryr6(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kuryr6"))
        .args(args)
        .current_dir(dir)
        .env_remove("OS_CLOUD")
        .env("OS_CLIENT_CONFIG_FILE", dir.join("clouds.yaml"))
        .env("OS_CLIENT_SECURE_FILE", dir.join("secure.yaml"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `sites/` as a ConfigMap volume lays it out (`..data` → a timestamped
/// directory, a link per key), with things beside it that are not sites.
fn sites_dir(root: &Path) -> PathBuf {
    let sites = root.join("sites");
    let stamp = sites.join("..2026_01_01_00_00_00.000000001");
    std::fs::create_dir_all(&stamp).unwrap();
    for i in [2, 1] {
        std::fs::write(stamp.join(format!("site-{i}.toml")), site(i)).unwrap();
        std::os::unix::fs::symlink(
            format!("..data/site-{i}.toml"),
            sites.join(format!("site-{i}.toml")),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("..2026_01_01_00_00_00.000000001", sites.join("..data")).unwrap();
    std::fs::write(sites.join(".hidden.toml"), "not = \"a pipeline\"").unwrap();
    std::fs::write(sites.join("README.md"), "notes").unwrap();
    std::fs::create_dir_all(sites.join("nested.toml")).unwrap();
    sites
}

#[test]
fn a_directory_stands_for_its_pipelines_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    sites_dir(dir.path());
    let o = kuryr6(
        dir.path(),
        &["plan", "sites", "--offline", "--format", "json"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let plans: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pipeline"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["site-1", "site-2"]);
    let o = kuryr6(dir.path(), &["check", "sites"]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = kuryr6(dir.path(), &["check", "empty"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("empty holds no *.toml file"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn summary_writes_the_fleet_summary_and_removes_an_old_one_first() {
    let dir = tempfile::tempdir().unwrap();
    let sites = sites_dir(dir.path());
    // A cloud that refuses every connection: the sites fail, fast.
    std::fs::write(
        dir.path().join("clouds.yaml"),
        "clouds:\n  nowhere:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n      username: u\n      project_name: p\n      user_domain_name: Default\n      project_domain_name: Default\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("secure.yaml"),
        "clouds:\n  nowhere:\n    auth:\n      password: not-a-real-one\n",
    )
    .unwrap();
    let summary = dir.path().join("reports/fleet/shard-0.json");
    let o = kuryr6(
        dir.path(),
        &[
            "plan",
            sites.to_str().unwrap(),
            "--shard",
            "0/1",
            "--summary",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    // stdout keeps its format (a table); the file is the JSON summary.
    assert!(serde_json::from_slice::<Value>(&o.stdout).is_err());
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(written["command"], "plan");
    assert_eq!(written["shards"], serde_json::json!(["0/1"]));
    assert_eq!(written["sites"].as_array().unwrap().len(), 2);
    assert_eq!(written["ok"], false);
    assert!(
        !std::fs::read_to_string(&summary)
            .unwrap()
            .contains("not-a-real-one")
    );
    // Nothing but the summary is left beside it.
    let beside: Vec<_> = std::fs::read_dir(summary.parent().unwrap())
        .unwrap()
        .collect();
    assert_eq!(beside.len(), 1);

    // One file with --summary is a fleet of one (a summary, not the single
    // command's output).
    let one = dir.path().join("one.json");
    let o = kuryr6(
        dir.path(),
        &[
            "plan",
            "sites/site-1.toml",
            "--summary",
            one.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&one).unwrap()).unwrap();
    assert_eq!(written["sites"][0]["site"], "site-1");

    // A run that stops before any site (an invalid file) leaves no summary:
    // the old one must not pass for this run's.
    std::fs::write(sites.join("..data/site-2.toml"), "[pipeline]\nname = 7\n").unwrap();
    let o = kuryr6(
        dir.path(),
        &["plan", "sites", "--summary", summary.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!summary.exists());

    let o = kuryr6(
        dir.path(),
        &["plan", "sites", "--offline", "--summary", "x.json"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--summary"), "{}", text(&o.stderr));
}

#[test]
fn report_merge_reads_a_directory_of_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    for (shard, name) in [("0/2", "s1"), ("1/2", "s2")] {
        let mut r = kuryr6::fleet::SiteReport::new(name, &format!("{name}.toml"), "c");
        r.status = kuryr6::fleet::Status::Ok;
        let s = kuryr6::fleet::Summary::new("run", vec![shard.into()], vec![r], 1.0);
        std::fs::write(
            reports.join(format!("shard-{}.json", &shard[..1])),
            serde_json::to_string(&s).unwrap(),
        )
        .unwrap();
    }
    // Emitted files beside them are not summaries.
    std::fs::create_dir_all(reports.join("emitted/s1")).unwrap();
    std::fs::write(reports.join("notes.txt"), "x").unwrap();
    let o = kuryr6(
        dir.path(),
        &["report", "merge", "reports", "--format", "json"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let merged: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(merged["shards"], serde_json::json!(["0/2", "1/2"]));
    assert_eq!(merged["sites"].as_array().unwrap().len(), 2);
}
