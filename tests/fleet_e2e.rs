//! A fleet against two real local clouds: the main one (`KURYR6_CLOUD_DIR`)
//! and a second, separate Keystone + Neutron (`KURYR6_FLEET_CLOUD_DIR`,
//! started by scripts/test.sh) that these tests may stop and start again.
//! Sites live in Keystone projects made here (scripts/cloud/project.sh),
//! each with a bystander network that must survive everything.
//!
//! The tests of this binary take turns (`TURN`): one of them stops the
//! second cloud, and another counts that cloud's requests.

// Only its counting side is used here (no faults).
#[allow(dead_code)]
#[path = "support/fault_proxy.rs"]
mod fault_proxy;
mod support;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use support::{LocalCloud, repo, stderr, stdout};

static TURN: Mutex<()> = Mutex::new(());

fn fleet_dir() -> PathBuf {
    let dir = std::env::var("KURYR6_FLEET_CLOUD_DIR").unwrap_or_else(|_| {
        panic!("KURYR6_FLEET_CLOUD_DIR is not set: these tests need a second local cloud they may stop; scripts/test.sh starts one")
    });
    PathBuf::from(dir)
}

fn main_dir() -> PathBuf {
    std::env::var("KURYR6_CLOUD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".cloud"))
}

/// This binary's turn (see `TURN`) and the state directories of its two
/// clouds: (turn, the main cloud, the second cloud).
fn two_clouds() -> (MutexGuard<'static, ()>, PathBuf, PathBuf) {
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    (turn, main_dir(), fleet_dir())
}

/// One clouds.yaml entry of the fleet: a project on one of the clouds.
struct Entry {
    name: String,
    auth_url: String,
    user: String,
    project: String,
    password: String,
}

/// `project` on the cloud at `dir` with its member user (project.sh), or
/// that cloud's admin when `project` is None.
fn entry(dir: &Path, name: &str, project: Option<&str>, auth_url: Option<&str>) -> Entry {
    let cloud = LocalCloud::at(dir);
    let url = auth_url
        .map(str::to_string)
        .unwrap_or_else(|| cloud.env["KURYR6_KEYSTONE_URL"].clone());
    match project {
        None => Entry {
            name: name.into(),
            auth_url: url,
            user: "admin".into(),
            project: "admin".into(),
            password: std::fs::read_to_string(dir.join("admin-password"))
                .unwrap()
                .trim()
                .into(),
        },
        Some(p) => {
            let out = Command::new("bash")
                .arg(repo().join("scripts/cloud/project.sh"))
                .arg(p)
                .env("KURYR6_CLOUD_DIR", dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "project.sh {p}: {}", stderr(&out));
            Entry {
                name: name.into(),
                auth_url: url,
                user: format!("{p}-member"),
                project: p.into(),
                password: std::fs::read_to_string(dir.join(format!("projects/{p}/password")))
                    .unwrap()
                    .trim()
                    .into(),
            }
        }
    }
}

/// A scratch fleet: clouds.yaml + secure.yaml with `entries`, site files.
struct Fleet {
    dir: PathBuf,
}

impl Fleet {
    fn new(tag: &str, entries: &[Entry]) -> Fleet {
        let dir = std::env::temp_dir().join(format!("kuryr6-fleet-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sites")).unwrap();
        let mut clouds = String::from("clouds:\n");
        let mut secure = String::from("clouds:\n");
        for e in entries {
            clouds.push_str(&format!(
                "  {}:\n    auth:\n      auth_url: {}\n      username: {}\n      project_name: {}\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n",
                e.name, e.auth_url, e.user, e.project
            ));
            secure.push_str(&format!(
                "  {}:\n    auth:\n      password: {}\n",
                e.name, e.password
            ));
        }
        std::fs::write(dir.join("clouds.yaml"), clouds).unwrap();
        std::fs::write(dir.join("secure.yaml"), secure).unwrap();
        Fleet { dir }
    }

    /// Site `name` on `cloud`, carved as site `id` of the shared /48, judged
    /// by the policy-guard plugin across the fleet.
    fn site(&self, name: &str, cloud: &str, id: u32) {
        let wasm = repo().join("target/plugins/policy-guard.wasm");
        let bytes = std::fs::read(&wasm).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build the plugins with scripts/build-plugins.sh",
                wasm.display()
            )
        });
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let text = format!(
            "[pipeline]\nname = \"{name}\"\n\n[cloud]\nname = \"{cloud}\"\n\n[plan]\nsite_prefix = \"fd42:a1b2:c3d4::/48\"\nsite_id = {id}\n\n\
[plan.names]\npod_network = \"{name}-pods\"\nservice_network = \"{name}-services\"\npod_subnet = \"{name}-pod\"\nservice_subnet = \"{name}-svc\"\nrouter = \"{name}-router\"\nsecurity_group = \"{name}-sg\"\n\n\
[plan.emit]\ndir = \"out/{name}\"\n\n[[plugin]]\npath = \"{}\"\nsha256 = \"{sha}\"\nhooks = [\"policy\"]\n[plugin.facts]\nprefix = \"fd42:a1b2:c3d4::/48\"\n",
            wasm.display()
        );
        std::fs::write(self.dir.join(format!("sites/{name}.toml")), text).unwrap();
    }

    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.join("sites"))
            .unwrap()
            .map(|e| format!("sites/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|f| f.ends_with(".toml"))
            .collect();
        v.sort();
        v
    }

    /// Writes each (name, cloud, id) site; returns their names in order.
    fn sites<'a>(&self, placed: &[(&'a str, &str, u32)]) -> Vec<&'a str> {
        for (name, cloud, id) in placed {
            self.site(name, cloud, *id);
        }
        placed.iter().map(|p| p.0).collect()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kuryr6"));
        cmd.args(args).args(self.files()).current_dir(&self.dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("OS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("OS_CLIENT_CONFIG_FILE", self.dir.join("clouds.yaml"));
        cmd.env("OS_CLIENT_SECURE_FILE", self.dir.join("secure.yaml"));
        cmd
    }

    fn kuryr6(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The real CLI as one entry of this fleet.
    fn openstack(&self, cloud_dir: &Path, entry: &str, args: &[&str]) -> Value {
        let bin = LocalCloud::at(cloud_dir).venv_bin("openstack");
        let out = Command::new(bin)
            .args(args)
            .args(["-f", "json"])
            .env("OS_CLIENT_CONFIG_FILE", self.dir.join("clouds.yaml"))
            .env("OS_CLIENT_SECURE_FILE", self.dir.join("secure.yaml"))
            .env("OS_CLOUD", entry)
            .output()
            .unwrap();
        assert!(out.status.success(), "openstack {args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The command exited 0; else fails showing both its streams.
#[track_caller]
fn assert_exit_0(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(o), stderr(o));
}

fn summary(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON summary ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

fn site<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["site"] == name)
        .unwrap_or_else(|| panic!("no site {name} in {s:#}"))
}

/// Networks, subnets, routers and groups tagged by any of `pipelines`, as
/// the cloud's admin sees them (every project).
fn tagged(fleet: &Fleet, cloud_dir: &Path, admin: &str, pipelines: &[&str]) -> Vec<String> {
    let tags: Vec<String> = pipelines
        .iter()
        .map(|p| format!("kuryr6:pipeline={p}"))
        .collect();
    let tags = tags.join(",");
    let mut found = Vec::new();
    for kind in [
        ["network", "list"],
        ["subnet", "list"],
        ["router", "list"],
        ["security", "group"],
    ] {
        let mut args: Vec<&str> = kind.to_vec();
        if kind[0] == "security" {
            // Neutron lists every project's groups to an admin.
            args.push("list");
        }
        args.extend(["--any-tags", &tags]);
        for v in fleet.openstack(cloud_dir, admin, &args).as_array().unwrap() {
            found.push(format!("{} {}", kind[0], v["Name"]));
        }
    }
    found
}

/// kuryr6's logins in a Keystone access log so far.
fn logins(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\tPOST\t/v3/auth/tokens") && l.contains("kuryr6/"))
        .count()
}

fn bystander(fleet: &Fleet, cloud_dir: &Path, entry: &str) -> String {
    let name = format!("bystander-{entry}");
    let nets = fleet.openstack(cloud_dir, entry, &["network", "list", "--name", &name]);
    if let Some(n) = nets.as_array().unwrap().first() {
        return n["ID"].as_str().unwrap().to_string();
    }
    let n = fleet.openstack(cloud_dir, entry, &["network", "create", &name]);
    n["id"].as_str().unwrap().to_string()
}

/// Each (cloud dir, admin entry) of `admins` sees nothing tagged for the
/// pipelines `names`.
#[track_caller]
fn assert_nothing_tagged_for(fleet: &Fleet, admins: [(&Path, &str); 2], names: &[&str]) {
    for (cloud_dir, admin) in admins {
        assert_eq!(tagged(fleet, cloud_dir, admin, names), Vec::<String>::new());
    }
}

fn bystander_alive(fleet: &Fleet, cloud_dir: &Path, entry: &str, id: &str) {
    let n = fleet.openstack(cloud_dir, entry, &["network", "show", id]);
    assert_eq!(n["id"], id, "the bystander of {entry} is gone");
}

#[test]
fn six_sites_on_two_clouds_converge_rerun_and_destroy_and_a_seventh_that_overlaps_is_refused() {
    let (_turn, main, second) = two_clouds();
    let fleet = Fleet::new(
        "six",
        &[
            entry(&main, "east-a", Some("fleet-six-a"), None),
            entry(&main, "east-b", Some("fleet-six-b"), None),
            entry(&main, "east-admin", None, None),
            entry(&second, "west-admin", None, None),
            entry(&second, "west-c", Some("fleet-six-c"), None),
        ],
    );
    let placed = [
        ("fs-1", "east-a", 1),
        ("fs-2", "east-a", 2),
        ("fs-3", "east-b", 3),
        ("fs-4", "west-admin", 4),
        ("fs-5", "west-c", 5),
        ("fs-6", "west-c", 6),
    ];
    let names = fleet.sites(&placed);
    let projects = [
        (&main, "east-a"),
        (&main, "east-b"),
        (&second, "west-admin"),
        (&second, "west-c"),
    ];
    let bystanders: Vec<String> = projects
        .iter()
        .map(|(d, e)| bystander(&fleet, d, e))
        .collect();

    // What an earlier, interrupted run of this test left.
    let clean = fleet.kuryr6(&["destroy", "--lock-wait", "60"]);
    assert_exit_0(&clean);

    let first = fleet.kuryr6(&["run", "--parallel", "6", "--lock-wait", "60"]);
    assert_exit_0(&first);
    let table = stdout(&first);
    for name in &names {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(name) && l.ends_with("ok")),
            "{name}:\n{table}"
        );
        assert!(
            fleet
                .dir
                .join(format!("sites/out/{name}/kuryr.conf"))
                .is_file(),
            "{name}: its kuryr.conf in its own dir"
        );
    }
    // The check below sees what the fleet made (so its empty answer means something).
    assert_eq!(
        tagged(&fleet, &second, "west-admin", &names).len(),
        3 * 6,
        "3 sites × (2 networks, 2 subnets, router, group)"
    );
    // Progress lines carry the site's name.
    assert!(
        stderr(&first).lines().any(|l| l.starts_with("[fs-5]   + ")),
        "{}",
        stderr(&first)
    );

    let klog = second.join("logs/keystone-access.log");
    let logins_before = logins(&klog);
    let second_run = fleet.kuryr6(&["run", "--format", "json"]);
    // Three sites on two clouds.yaml entries of the second cloud: two logins.
    assert_eq!(
        logins(&klog) - logins_before,
        2,
        "sites of one entry share one token"
    );
    assert_exit_0(&second_run);
    let s = summary(&second_run);
    for name in &names {
        let r = site(&s, name);
        assert_eq!(
            (
                r["created"].as_u64(),
                r["updated"].as_u64(),
                r["deleted"].as_u64()
            ),
            (Some(0), Some(0), Some(0)),
            "{r:#}"
        );
        assert!(r["unchanged"].as_u64().unwrap() >= 7, "{r:#}");
    }
    assert_eq!(site(&s, "fs-1")["project"], site(&s, "fs-2")["project"]);
    assert_ne!(site(&s, "fs-1")["project"], site(&s, "fs-3")["project"]);
    let plan = fleet.kuryr6(&["plan", "--detailed-exitcode"]);
    assert_exit_0(&plan);

    // A seventh site overlapping fs-1: exit 2, and not one request to any cloud.
    fleet.site("fs-7", "east-b", 1);
    let log = second.join("logs/neutron-access.log");
    // The main cloud is shared with other tests: its sites reach Keystone
    // through a counting proxy here.
    let main_env = LocalCloud::at(&main);
    let ks_port: u16 = main_env.env["KURYR6_KEYSTONE_URL"]
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/v3")
        .parse()
        .unwrap();
    let proxy = fault_proxy::FaultProxy::start(ks_port, vec![]);
    let proxied = Fleet::new(
        "seven",
        &[
            entry(
                &main,
                "east-a",
                Some("fleet-six-a"),
                Some(&format!("http://127.0.0.1:{}/v3", proxy.port)),
            ),
            entry(
                &main,
                "east-b",
                Some("fleet-six-b"),
                Some(&format!("http://127.0.0.1:{}/v3", proxy.port)),
            ),
            entry(&second, "west-admin", None, None),
            entry(&second, "west-c", Some("fleet-six-c"), None),
        ],
    );
    for (name, cloud, id) in placed {
        proxied.site(name, cloud, id);
    }
    proxied.site("fs-7", "east-b", 1);
    // (project.sh above talked to Keystone; from here on nothing may.)
    let before = (
        std::fs::read_to_string(&log).unwrap().len(),
        std::fs::read_to_string(&klog).unwrap().len(),
    );
    for f in [&fleet, &proxied] {
        let o = f.kuryr6(&["run"]);
        assert_eq!(o.status.code(), Some(2), "{}\n{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("overlap"), "{}", stderr(&o));
        let o = f.kuryr6(&["plan", "--format", "json"]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(summary(&o)["ok"], false);
    }
    assert_eq!(proxy.seen(), vec![], "the main cloud's Keystone was called");
    let after = (
        std::fs::read_to_string(&log).unwrap().len(),
        std::fs::read_to_string(&klog).unwrap().len(),
    );
    assert_eq!(before, after, "the second cloud received requests");
    std::fs::remove_file(fleet.dir.join("sites/fs-7.toml")).unwrap();

    let gone = fleet.kuryr6(&["destroy", "--format", "json"]);
    assert_eq!(gone.status.code(), Some(0), "{}", stderr(&gone));
    assert!(site(&summary(&gone), "fs-4")["deleted"].as_u64().unwrap() >= 7);
    assert_nothing_tagged_for(
        &fleet,
        [(&main, "east-admin"), (&second, "west-admin")],
        &names,
    );
    for ((d, e), id) in projects.iter().zip(&bystanders) {
        bystander_alive(&fleet, d, e, id);
    }
}

/// up.sh / down.sh of the second cloud, with the ports it was started on.
fn second_cloud(action: &str) {
    let dir = fleet_dir();
    let env = LocalCloud::at(&dir).env;
    let port = |k: &str| {
        env[k]
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches("/v3")
            .to_string()
    };
    let script = repo().join(format!("scripts/cloud/{action}.sh"));
    let mut cmd = Command::new("bash");
    cmd.arg(script);
    // The catalog names Octavia: the engine reads load balancers on every cloud.
    if action == "up" {
        cmd.arg("--with-octavia");
    }
    let out = cmd
        .env("KURYR6_CLOUD_DIR", &dir)
        .env("KURYR6_KEYSTONE_PORT", port("KURYR6_KEYSTONE_URL"))
        .env("KURYR6_NEUTRON_PORT", port("KURYR6_NEUTRON_URL"))
        .env("KURYR6_OCTAVIA_PORT", port("KURYR6_OCTAVIA_URL"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{action}.sh: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn a_cloud_stopped_mid_fleet_fails_its_sites_only_and_a_rerun_finishes_them() {
    let (_turn, main, second) = two_clouds();
    let entries = [
        entry(&main, "east", Some("fleet-stop-a"), None),
        entry(&main, "east-admin", None, None),
        entry(&second, "west", Some("fleet-stop-b"), None),
        entry(&second, "west-admin", None, None),
    ];
    let fleet = Fleet::new("stop", &entries);
    let names = fleet.sites(&[
        ("fx-1", "east", 1),
        ("fx-2", "east", 2),
        ("fx-3", "west", 3),
        ("fx-4", "west", 4),
    ]);
    let keep = [
        bystander(&fleet, &main, "east"),
        bystander(&fleet, &second, "west"),
    ];

    let clean = fleet.kuryr6(&["destroy", "--lock-wait", "60"]);
    assert_exit_0(&clean);

    let mut child = fleet
        .command(&["run", "--parallel", "4", "--lock-wait", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut stopped = false;
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            // The first change done on the second cloud: stop that cloud.
            if !stopped && line.starts_with("[fx-3]   + ") {
                second_cloud("down");
                stopped = true;
            }
            lines.push(line);
        }
        (stopped, lines)
    });
    let out = child.wait_with_output().unwrap();
    let (stopped, lines) = reader.join().unwrap();
    let text = stdout(&out);
    // Whatever happens next, the second cloud is started again.
    let restarted = std::panic::catch_unwind(|| second_cloud("up"));
    assert!(stopped, "fx-3 made no change:\n{}", lines.join("\n"));
    restarted.unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", lines.join("\n"));
    for ok in ["fx-1", "fx-2"] {
        assert!(
            text.lines().any(|l| l.starts_with(ok) && l.ends_with("ok")),
            "{ok}:\n{text}"
        );
    }
    for failed in ["fx-3", "fx-4"] {
        let why = text
            .lines()
            .find(|l| l.starts_with(&format!("failed {failed} ")))
            .unwrap_or_else(|| panic!("{failed} not named:\n{text}"));
        // Why: the cloud's address and what went wrong.
        assert!(why.contains("127.0.0.1"), "{why}");
    }

    let rerun = fleet.kuryr6(&["run", "--format", "json", "--lock-wait", "120"]);
    assert_exit_0(&rerun);
    let s = summary(&rerun);
    for done in ["fx-1", "fx-2"] {
        assert_eq!(site(&s, done)["created"], 0, "{s:#}");
    }
    assert!(
        site(&s, "fx-3")["created"].as_u64().unwrap()
            + site(&s, "fx-3")["unchanged"].as_u64().unwrap()
            >= 7
    );
    let plan = fleet.kuryr6(&["plan", "--detailed-exitcode"]);
    assert_exit_0(&plan);

    let gone = fleet.kuryr6(&["destroy"]);
    assert_exit_0(&gone);
    assert_nothing_tagged_for(
        &fleet,
        [(&main, "east-admin"), (&second, "west-admin")],
        &names,
    );
    bystander_alive(&fleet, &main, "east", &keep[0]);
    bystander_alive(&fleet, &second, "west", &keep[1]);
}
