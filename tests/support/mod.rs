//! Shared helpers of the end-to-end tests: the local real cloud that
//! `scripts/cloud/up.sh` started, the real `openstack` CLI from its venv, and
//! the `kuryr6` binary under test. A missing cloud is a failure, never a skip.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The variables `up.sh` wrote to `<state>/env.sh`.
pub struct LocalCloud {
    pub env: HashMap<String, String>,
}

impl LocalCloud {
    /// Reads the running local cloud's environment, or fails the test
    /// saying how to start it.
    pub fn get() -> LocalCloud {
        let dir = std::env::var("KURYR6_CLOUD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo().join(".cloud"));
        Self::read_env(&dir).unwrap_or_else(|(file, e)| {
            panic!("no local cloud: cannot read {} ({e}). Start it with `bash scripts/cloud/up.sh` or run the whole suite with `bash scripts/test.sh`", file.display())
        })
    }

    /// The cloud whose `up.sh` state directory is `dir` (a second cloud
    /// started with its own `KURYR6_CLOUD_DIR`). Panics if it has no env.sh.
    pub fn at(dir: &Path) -> LocalCloud {
        Self::read_env(dir).unwrap_or_else(|(file, e)| {
            panic!(
                "no local cloud in {}: cannot read {} ({e})",
                dir.display(),
                file.display()
            )
        })
    }

    /// The `export K="V"` lines of `dir/env.sh`, which `up.sh` writes.
    fn read_env(dir: &Path) -> Result<LocalCloud, (PathBuf, std::io::Error)> {
        let env_file = dir.join("env.sh");
        let text = std::fs::read_to_string(&env_file).map_err(|e| (env_file, e))?;
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        Ok(LocalCloud { env })
    }

    pub fn venv_bin(&self, tool: &str) -> PathBuf {
        PathBuf::from(&self.env["KURYR6_VENV_BIN"]).join(tool)
    }

    pub fn apply_env(&self, cmd: &mut Command) {
        for k in ["OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE", "OS_CLOUD"] {
            cmd.env(k, &self.env[k]);
        }
        // Nothing of the developer's own OpenStack environment leaks in.
        for (k, _) in std::env::vars() {
            if k.starts_with("OS_")
                && !["OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE", "OS_CLOUD"]
                    .contains(&k.as_str())
            {
                cmd.env_remove(k);
            }
        }
    }

    /// The real `openstack` CLI, `-f json`, parsed. Panics on failure.
    pub fn openstack(&self, args: &[&str]) -> Value {
        let out = self.openstack_raw(args, true);
        assert!(
            out.status.success(),
            "openstack {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "openstack {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The real `openstack` CLI for commands that print nothing.
    pub fn openstack_ok(&self, args: &[&str]) {
        let out = self.openstack_raw(args, false);
        assert!(
            out.status.success(),
            "openstack {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn openstack_raw(&self, args: &[&str], json: bool) -> Output {
        let mut cmd = Command::new(self.venv_bin("openstack"));
        cmd.args(args);
        if json {
            cmd.args(["-f", "json"]);
        }
        self.apply_env(&mut cmd);
        cmd.output().expect("openstack CLI runs")
    }

    /// `kuryr6 ARGS` against the local cloud, from `dir`.
    pub fn kuryr6(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = self.kuryr6_command(dir, args);
        cmd.output().expect("kuryr6 runs")
    }

    /// Another build of kuryr6 (`program`) against the local cloud.
    pub fn run_program(&self, program: &Path, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(dir);
        self.apply_env(&mut cmd);
        cmd.output().expect("the program runs")
    }

    pub fn kuryr6_command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kuryr6"));
        cmd.args(args).current_dir(dir);
        self.apply_env(&mut cmd);
        cmd
    }

    /// Password of the admin user (to check it never shows up in output).
    pub fn admin_password(&self) -> String {
        let dir = PathBuf::from(&self.env["KURYR6_CLOUD_DIR"]);
        let secure = std::fs::read_to_string(dir.join("secure.yaml")).expect("secure.yaml");
        secure
            .lines()
            .find_map(|l| l.trim().strip_prefix("password:"))
            .map(|p| p.trim().trim_matches('\'').trim_matches('"').to_string())
            .expect("password in secure.yaml")
    }
}

/// A scratch directory holding a copy of a pipeline; removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn with_pipeline(name: &str, text: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("kuryr6-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pipeline.toml"), text).unwrap();
        Scratch { dir }
    }

    pub fn pipeline(&self) -> String {
        self.dir.join("pipeline.toml").display().to_string()
    }

    pub fn write(&self, text: &str) {
        std::fs::write(self.dir.join("pipeline.toml"), text).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The seed with two API hosts, so the short form adds the guide's
/// `default/kubernetes` load balancer: see `seed_named`.
pub fn seed_with_api_lb(name: &str, prefix: &str, cidr: &str) -> String {
    seed_named(
        name,
        prefix,
        cidr,
        &[
            ("master-0", "fd10:0:0:3::10"),
            ("master-1", "fd10:0:0:3::11"),
        ],
    )
}

/// The seed's short form: pipeline `name`, every name starting
/// `<prefix>-`, CIDRs in `<cidr>:0:0::/48` (`"fd20"`), and `api_hosts`
/// (name, address) if any. Tests that run side by side each take their
/// own.
pub fn seed_named(name: &str, prefix: &str, cidr: &str, api_hosts: &[(&str, &str)]) -> String {
    let hosts = if api_hosts.is_empty() {
        String::new()
    } else {
        let lines: String = api_hosts
            .iter()
            .map(|(n, a)| format!("  {{ name = \"{n}\", address = \"{a}\" }},\n"))
            .collect();
        format!("api_hosts = [\n{lines}]\n")
    };
    format!(
        r#"
[pipeline]
name = "{name}"

[kubernetes]
version = "1.33"
{hosts}
[plan]
pod_cidr = "{cidr}:0:0:1::/64"
service_cidr = "{cidr}:0:0:2::/112"

[plan.names]
pod_network = "{prefix}-pods"
service_network = "{prefix}-services"
pod_subnet = "{prefix}-pod_subnet"
service_subnet = "{prefix}-service_subnet"
router = "{prefix}-router"
security_group = "{prefix}-access"
"#
    )
}

/// The value of `key` in an emitted kuryr.conf (`key = value` lines).
pub fn conf_value(conf: &str, key: &str) -> String {
    conf.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} missing in\n{conf}"))
        .to_string()
}

/// The string `field` of each object in the JSON array `list`; panics if
/// `list` is no array or an object lacks the string.
pub fn strs_of<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    let items = list.as_array().unwrap();
    items.iter().map(|x| x[field].as_str().unwrap()).collect()
}

/// The JSON array `list`, each element a string (panics otherwise).
pub fn strs(list: &Value) -> Vec<&str> {
    let items = list.as_array().unwrap();
    items.iter().map(|x| x.as_str().unwrap()).collect()
}

/// The JSON array `list` holds the string `want` (panics if no array).
pub fn holds(list: &Value, want: &str) -> bool {
    list.as_array().unwrap().iter().any(|x| x == want)
}

/// How many rows of an `openstack ... list` (JSON array) have `Name` `name`.
pub fn count_named(list: &Value, name: &str) -> usize {
    let rows = list.as_array().unwrap();
    rows.iter().filter(|row| row["Name"] == name).count()
}

/// `v`, sorted: the names of a listing compare regardless of its order.
pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[track_caller]
/// `o` exited with `code`; its output is the failure message.
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}{}", stdout(o), stderr(o));
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
/// Runs kuryr6 with `args` again: it must succeed and write nothing.
/// Returns its output for further checks.
pub fn assert_writes_nothing(cloud: &LocalCloud, dir: &Path, args: &[&str]) -> Output {
    let again = cloud.kuryr6(dir, args);
    assert_ok(&again);
    assert!(
        stdout(&again).contains("0 created, 0 updated, 0 adopted, 0 deleted"),
        "{}",
        stdout(&again)
    );
    again
}

#[track_caller]
/// `kuryr6 plan PIPELINE --detailed-exitcode` in `dir` must find no change
/// (exit 0); `context` says when, for the failure message.
pub fn assert_plan_clean(cloud: &LocalCloud, dir: &Path, pipeline: &str, context: &str) -> Output {
    let plan = cloud.kuryr6(dir, &["plan", pipeline, "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{context}: {}{}",
        stdout(&plan),
        stderr(&plan)
    );
    plan
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// The local Octavia keeps its state in SQLite and runs its worker inside
/// the API process: two load balancers provisioned at once make its worker
/// hit "database is locked" and put one of them in ERROR. A production
/// Octavia (MySQL) has no such limit; here the tests of one binary that
/// provision take turns (each test binary has its own lock; cargo runs the
/// binaries one after another).
static OCTAVIA: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn octavia_turn() -> std::sync::MutexGuard<'static, ()> {
    OCTAVIA.lock().unwrap_or_else(|p| p.into_inner())
}
