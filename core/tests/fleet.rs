//! The fleet without a cloud: `--shard K/N` over 1,000 generated site files
//! (a partition for every N from 1 to 16, stable when a site is added), and
//! `kuryr6 report merge`.

use kuryr6::fleet::shard::owner;
use kuryr6::fleet::{Shard, SiteReport, Status, Summary};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn site_text(i: usize) -> String {
    format!(
        "[pipeline]\nname = \"site-{i:04}\"\n[cloud]\nname = \"region-{}\"\n[plan]\nsite_prefix = \"fd42:a1b2:c3d4::/48\"\nsite_id = {i}\n",
        i % 7
    )
}

fn generate(dir: &Path, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let p = dir.join(format!("site-{i:04}.toml"));
            std::fs::write(&p, site_text(i)).unwrap();
            p
        })
        .collect()
}

fn kuryr6(dir: &Path, args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kuryr6"))
        .args(args)
        .args(files)
        .current_dir(dir)
        .env_remove("OS_CLOUD")
        .output()
        .unwrap()
}

/// The stderr of `o`, which must have exited 2: refused before any work.
#[track_caller]
fn refused(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The pipelines `plan --offline --shard K/N` takes.
fn shard_sites(dir: &Path, shard: &str, files: &[PathBuf]) -> BTreeSet<String> {
    let o = kuryr6(
        dir,
        &["plan", "--offline", "--format", "json", "--shard", shard],
        files,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let docs: Value = serde_json::from_slice(&o.stdout).unwrap();
    docs.as_array()
        .unwrap()
        .iter()
        .map(|d| d["pipeline"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_site_lands_in_exactly_one_shard_for_n_1_to_16() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), 1000);
    // The files as kuryr6 loads them (validated, [cloud] read).
    let loaded: Vec<_> = kuryr6::load::load_many(&files)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{:?}", e.diagnostics)))
        .collect();
    assert!(loaded.iter().all(|l| l.cloud.is_some()));
    let names: Vec<&str> = loaded.iter().map(|l| l.plan.pipeline.as_str()).collect();
    for n in 1..=16u32 {
        let mut sizes = vec![0usize; n as usize];
        for name in &names {
            let takers: Vec<u32> = (0..n)
                .filter(|&k| Shard { index: k, count: n }.takes(name))
                .collect();
            assert_eq!(takers.len(), 1, "{name} with N={n}: taken by {takers:?}");
            sizes[takers[0] as usize] += 1;
        }
        // Balanced enough to be worth sharding: no shard over twice its share.
        let share = 1000 / n as usize;
        assert!(
            sizes.iter().all(|&s| s <= 2 * share + 10),
            "N={n}: {sizes:?}"
        );
    }
    // The binary agrees with the library, shard by shard (N = 3 here).
    let mut union = BTreeSet::new();
    for k in 0..3 {
        let got = shard_sites(dir.path(), &format!("{k}/3"), &files);
        let want: BTreeSet<String> = names
            .iter()
            .filter(|n| owner(n, 3) == k)
            .map(|n| n.to_string())
            .collect();
        assert_eq!(got, want, "shard {k}/3");
        assert!(union.is_disjoint(&got));
        union.extend(got);
    }
    assert_eq!(union.len(), 1000);
}

#[test]
fn adding_a_site_moves_only_that_site() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = generate(dir.path(), 1000);
    let before: Vec<BTreeSet<String>> = (0..4)
        .map(|k| shard_sites(dir.path(), &format!("{k}/4"), &files))
        .collect();
    let extra = dir.path().join("site-1000.toml");
    std::fs::write(&extra, site_text(1000)).unwrap();
    files.push(extra);
    let after: Vec<BTreeSet<String>> = (0..4)
        .map(|k| shard_sites(dir.path(), &format!("{k}/4"), &files))
        .collect();
    let mut grew = 0;
    for (b, a) in before.iter().zip(&after) {
        assert!(b.is_subset(a), "a site left its shard");
        let new: Vec<_> = a.difference(b).collect();
        assert!(new.is_empty() || new == ["site-1000"], "{new:?}");
        grew += new.len();
    }
    assert_eq!(grew, 1);
}

#[test]
fn a_bad_shard_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), 2);
    let o = kuryr6(dir.path(), &["plan", "--offline", "--shard", "4/4"], &files);
    assert!(refused(&o).contains("0 ≤ K < N"));
}

#[test]
fn two_files_of_one_pipeline_name_are_refused_before_any_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    std::fs::write(&a, site_text(1)).unwrap();
    std::fs::write(&b, site_text(1).replace("site_id = 1", "site_id = 2")).unwrap();
    let o = kuryr6(dir.path(), &["run"], &[a, b]);
    let err = refused(&o);
    assert!(
        err.contains("pipeline name \"site-0001\" is also the name of"),
        "{err}"
    );
}

#[test]
fn a_site_whose_cloud_is_not_in_clouds_yaml_stops_the_fleet_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), 3);
    std::fs::write(dir.path().join("clouds.yaml"), "clouds:\n  region-0:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n      username: u\n      password: p\n      project_name: p\n      user_domain_name: Default\n      project_domain_name: Default\n").unwrap();
    let err = refused(&kuryr6(dir.path(), &["plan"], &files));
    assert!(
        err.contains("site site-0001: ") && err.contains("no cloud named \"region-1\""),
        "{err}"
    );
    assert!(!err.contains("site site-0000"), "{err}");
}

fn summary_file(dir: &Path, name: &str, shard: &str, sites: &[(&str, Status)]) -> PathBuf {
    let reports = sites
        .iter()
        .map(|(s, st)| {
            let mut r = SiteReport::new(s, &format!("{s}.toml"), "c");
            r.status = *st;
            r
        })
        .collect();
    let p = dir.join(name);
    std::fs::write(
        &p,
        serde_json::to_string(&Summary::new("plan", vec![shard.into()], reports, 1.0)).unwrap(),
    )
    .unwrap();
    p
}

#[test]
fn report_merge_combines_shards() {
    let dir = tempfile::tempdir().unwrap();
    let a = summary_file(
        dir.path(),
        "a.json",
        "0/2",
        &[("s1", Status::Ok), ("s3", Status::Pending)],
    );
    let b = summary_file(dir.path(), "b.json", "1/2", &[("s2", Status::Ok)]);
    let o = kuryr6(
        dir.path(),
        &["report", "merge", "--format", "json", "--detailed-exitcode"],
        &[a.clone(), b.clone()],
    );
    assert_eq!(o.status.code(), Some(3));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["sites"].as_array().unwrap().len(), 3);
    assert_eq!(m["pending"], serde_json::json!(["s3"]));
    assert_eq!(m["shards"], serde_json::json!(["0/2", "1/2"]));
    let o = kuryr6(dir.path(), &["report", "merge"], &[a.clone(), a.clone()]);
    assert!(refused(&o).contains("is in both"));
    std::fs::write(dir.path().join("junk.json"), "{}").unwrap();
    let o = kuryr6(
        dir.path(),
        &["report", "merge"],
        &[dir.path().join("junk.json")],
    );
    assert!(refused(&o).contains("is not a fleet summary"));
}

/// One pipeline: `--os-cloud` / `OS_CLOUD` beat the file's `[cloud]`,
/// which beats nothing (README, "A fleet of sites"). Seen through the
/// error naming the cloud that was looked for (no clouds.yaml here).
#[test]
fn a_single_pipeline_uses_its_cloud_unless_the_command_line_names_one() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), 1);
    let run = |args: &[&str], os_cloud: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kuryr6"));
        cmd.args(args)
            .args(&files)
            .current_dir(dir.path())
            .env("HOME", dir.path());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OS_")) {
            cmd.env_remove(k);
        }
        if let Some(c) = os_cloud {
            cmd.env("OS_CLOUD", c);
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(run(&["plan"], None).contains("cloud \"region-0\" was asked for"));
    assert!(
        run(&["plan", "--os-cloud", "staging"], None).contains("cloud \"staging\" was asked for")
    );
    let env = run(&["run"], Some("from-env"));
    assert!(env.contains("cloud \"from-env\" was asked for"), "{env}");
    // The override is said, not silent (an OS_CLOUD left in a shell).
    assert!(
        env.contains("names cloud \"region-0\" in [cloud]; using \"from-env\""),
        "{env}"
    );
    assert!(!run(&["plan"], None).contains("note:"));
}

/// Sites in one directory that keep the default emit dir (`out`) would
/// overwrite each other's kuryr.conf: `run` refuses before any call (the
/// clouds are not even looked up), and `--out DIR` (DIR/<site>) is fine.
#[test]
fn two_sites_emitting_into_one_directory_are_refused_before_any_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), 3);
    let o = kuryr6(dir.path(), &["run"], &files);
    let err = refused(&o);
    assert!(
        err.contains("sites \"site-0000\"") && err.contains("both emit into"),
        "{err}"
    );
    assert!(!err.contains("\"region-"), "refused before clouds: {err}");
    // With --out, each site has its own directory: the fleet goes on to
    // look up its clouds (none here).
    let o = kuryr6(dir.path(), &["run", "--out", "emitted"], &files);
    let err = refused(&o);
    assert!(!err.contains("both emit into"), "{err}");
    assert!(err.contains("\"region-"), "{err}");
}
