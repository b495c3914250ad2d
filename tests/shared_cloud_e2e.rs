//! End-to-end: the promises on a shared cloud, against the real Keystone +
//! Neutron that `scripts/cloud/up.sh` runs on 127.0.0.1.
//!
//! - Project scope: the admin and a member-role user of a second Keystone
//!   project (made by `scripts/cloud/project.sh`) run the same pipeline;
//!   neither sees, adopts or deletes the other's resources.
//! - Concurrency: two runs of one pipeline started at the same moment leave
//!   one of each resource, and agree on the ids.
//! - The lease: a run refuses while another holds it, naming the holder;
//!   two runs and a destroy started together leave all or nothing.
//! - Duplicates: never silently picked from; `kuryr6 dedupe` resolves them.
//!
//! Each test has its own pipeline name and resource names, so they run side
//! by side.

#[path = "support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::*;

/// The seed's short form with the names of pipeline `{name}` prefixed by
/// `{name}-`, so tests do not meet each other's resources.
fn pipeline(name: &str, cidr_byte: u8) -> String {
    seed_named(name, name, &format!("fd{cidr_byte:02x}"), &[])
}

/// Creates (or finds) a Keystone project with a member-role user and a
/// clouds.yaml entry for it; returns (cloud name, project id).
fn member_cloud(cloud: &LocalCloud, project: &str) -> (String, String) {
    let out = Command::new("bash")
        .arg(repo().join("scripts/cloud/project.sh"))
        .arg(project)
        .env("KURYR6_CLOUD_DIR", &cloud.env["KURYR6_CLOUD_DIR"])
        .output()
        .expect("project.sh runs");
    assert_ok(&out);
    let name = stdout(&out)
        .lines()
        .last()
        .expect("project.sh prints the cloud name")
        .trim()
        .to_string();
    let id = cloud.openstack(&["project", "show", project])["id"]
        .as_str()
        .unwrap()
        .to_string();
    (name, id)
}

fn admin_project(cloud: &LocalCloud) -> String {
    cloud.openstack(&["token", "issue"])["project_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `kuryr6 ARGS` as the user of `os_cloud` (None: the admin).
fn k6(
    cloud: &LocalCloud,
    dir: &Path,
    os_cloud: Option<&str>,
    args: &[&str],
) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    if let Some(c) = os_cloud {
        all.extend(["--os-cloud", c]);
    }
    cloud.kuryr6(dir, &all)
}

fn kuryr_conf(s: &Scratch) -> String {
    std::fs::read_to_string(s.dir.join("out/kuryr.conf")).expect("kuryr.conf emitted")
}

/// The ids kuryr.conf names: project, pod subnet, service subnet, groups.
fn conf_ids(conf: &str) -> [String; 4] {
    [
        conf_value(conf, "project"),
        conf_value(conf, "pod_subnet"),
        conf_value(conf, "service_subnet"),
        conf_value(conf, "pod_security_groups"),
    ]
}

/// Every resource tagged for `pipeline`, of every project (admin view):
/// (kind, name, project id, id).
fn tagged(cloud: &LocalCloud, pipeline: &str) -> Vec<(String, String, String, String)> {
    let tag = format!("kuryr6:pipeline={pipeline}");
    let mut all = Vec::new();
    for kind in ["network", "subnet", "router"] {
        for v in cloud
            .openstack(&[kind, "list", "--tags", &tag, "--long"])
            .as_array()
            .unwrap()
        {
            let project = v["Project"].as_str().unwrap_or_default().to_string();
            all.push((
                kind.to_string(),
                v["Name"].as_str().unwrap().to_string(),
                project,
                v["ID"].as_str().unwrap().to_string(),
            ));
        }
    }
    for v in cloud
        .openstack(&["security", "group", "list", "--tags", &tag])
        .as_array()
        .unwrap()
    {
        all.push((
            "security_group".to_string(),
            v["Name"].as_str().unwrap().to_string(),
            v["Project"].as_str().unwrap_or_default().to_string(),
            v["ID"].as_str().unwrap().to_string(),
        ));
    }
    all.sort();
    all
}

fn project_of_subnet(cloud: &LocalCloud, id: &str) -> String {
    cloud.openstack(&["subnet", "show", id])["project_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn two_projects_run_one_pipeline_in_both_orders() {
    const NAME: &str = "scope-e2e";
    let cloud = LocalCloud::get();
    let (member, member_project) = member_cloud(&cloud, "kuryr6-scope-e2e");
    let admin_project = admin_project(&cloud);
    assert_ne!(member_project, admin_project);
    let text = pipeline(NAME, 0x31);
    let a = Scratch::with_pipeline("scope-admin", &text);
    let m = Scratch::with_pipeline("scope-member", &text);
    let who = |first_member: bool| {
        if first_member {
            [(&m, Some(member.as_str())), (&a, None)]
        } else {
            [(&a, None), (&m, Some(member.as_str()))]
        }
    };
    for first_member in [false, true] {
        for (s, c) in who(first_member) {
            assert_ok(&k6(&cloud, &s.dir, c, &["destroy", &s.pipeline()]));
        }
        for (s, c) in who(first_member) {
            let run = k6(&cloud, &s.dir, c, &["run", &s.pipeline()]);
            assert_ok(&run);
            assert!(
                !stderr(&run).contains("(adopt:") && stderr(&run).contains("0 to adopt"),
                "no adoption across projects: {}",
                stderr(&run)
            );
        }
        // Each kuryr.conf names its own project's ids.
        let admin_ids = conf_ids(&kuryr_conf(&a));
        let member_ids = conf_ids(&kuryr_conf(&m));
        assert_eq!(admin_ids[0], admin_project);
        assert_eq!(member_ids[0], member_project);
        for (ids, project) in [(&admin_ids, &admin_project), (&member_ids, &member_project)] {
            assert_eq!(&project_of_subnet(&cloud, &ids[1]), project);
            assert_eq!(&project_of_subnet(&cloud, &ids[2]), project);
        }
        for i in 1..4 {
            assert_ne!(admin_ids[i], member_ids[i]);
        }
        // Six resources per project carry the pipeline's tag.
        let all = tagged(&cloud, NAME);
        for project in [&admin_project, &member_project] {
            assert_eq!(all.iter().filter(|t| &t.2 == project).count(), 6, "{all:?}");
        }

        // The admin's plan lists its own resources only, and no change.
        let plan = k6(
            &cloud,
            &a.dir,
            None,
            &["plan", &a.pipeline(), "--format", "json"],
        );
        assert_ok(&plan);
        let doc: Value = serde_json::from_str(&stdout(&plan)).unwrap();
        assert_eq!(doc["pending"], false, "{doc}");
        assert_eq!(doc["project"], admin_project.as_str());
        let text = stdout(&plan);
        for (_, _, project, id) in all.iter().filter(|t| t.2 == member_project) {
            assert!(
                !text.contains(id.as_str()),
                "admin plan shows {id} of {project}"
            );
        }

        // The admin's destroy leaves the member's resources whole.
        assert_ok(&k6(&cloud, &a.dir, None, &["destroy", &a.pipeline()]));
        let left = tagged(&cloud, NAME);
        assert!(left.iter().all(|t| t.2 == member_project), "{left:?}");
        assert_eq!(left.len(), 6, "{left:?}");
        let member_plan = k6(
            &cloud,
            &m.dir,
            Some(&member),
            &["plan", &m.pipeline(), "--detailed-exitcode"],
        );
        assert_eq!(
            member_plan.status.code(),
            Some(0),
            "{}",
            stdout(&member_plan)
        );
        assert_ok(&k6(
            &cloud,
            &m.dir,
            Some(&member),
            &["destroy", &m.pipeline()],
        ));
        assert!(tagged(&cloud, NAME).is_empty());
    }
}

/// `kuryr6 CMD PIPELINE` in `s`, started and left running, its output
/// captured for `wait_with_output`.
fn start_captured(cloud: &LocalCloud, s: &Scratch, cmd: &str) -> std::process::Child {
    let mut command = cloud.kuryr6_command(&s.dir, &[cmd, &s.pipeline()]);
    command.stdout(std::process::Stdio::piped());
    command.stderr(std::process::Stdio::piped());
    command.spawn().expect("kuryr6 starts")
}

#[test]
fn two_runs_at_once_leave_one_of_each() {
    const NAME: &str = "race-e2e";
    let cloud = LocalCloud::get();
    let text = pipeline(NAME, 0x32);
    let a = Scratch::with_pipeline("race-a", &text);
    let b = Scratch::with_pipeline("race-b", &text);
    assert_ok(&cloud.kuryr6(&a.dir, &["destroy", &a.pipeline()]));

    let spawn = |s: &Scratch| start_captured(&cloud, s, "run");
    let (pa, pb) = (spawn(&a), spawn(&b));
    let (ra, rb) = (
        pa.wait_with_output().unwrap(),
        pb.wait_with_output().unwrap(),
    );
    assert_ok(&ra);
    assert_ok(&rb);
    // They contended: one of them waited on the other's lease.
    let waited = [&ra, &rb]
        .iter()
        .filter(|o| stderr(o).contains("waiting for another run of pipeline race-e2e"))
        .count();
    assert_eq!(
        waited,
        1,
        "one run waited:\n{}\n---\n{}",
        stderr(&ra),
        stderr(&rb)
    );
    let all = tagged(&cloud, NAME);
    assert_eq!(all.len(), 6, "one of each: {all:?}");
    let mut names: Vec<&str> = all.iter().map(|t| t.1.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), 6, "no name twice: {all:?}");

    let ids_a = conf_ids(&kuryr_conf(&a));
    assert_eq!(
        ids_a,
        conf_ids(&kuryr_conf(&b)),
        "both runs name the same ids"
    );
    assert_ok(&cloud.kuryr6(&a.dir, &["run", &a.pipeline()]));
    assert_eq!(ids_a, conf_ids(&kuryr_conf(&a)), "and so does one more run");
    // One lease record, kept free between runs.
    let records = || {
        cloud
            .openstack(&["security", "group", "list"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["Name"] == "kuryr6-lease:race-e2e")
            .cloned()
            .collect::<Vec<_>>()
    };
    let kept = records();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0]["Description"].as_str().unwrap().ends_with(" free"),
        "{kept:?}"
    );
    assert_ok(&cloud.kuryr6(&a.dir, &["destroy", &a.pipeline()]));
    assert!(tagged(&cloud, NAME).is_empty());
    assert!(records().is_empty(), "destroy leaves no lease record");
}

/// Two runs and a destroy of one pipeline, started together: the cloud
/// ends with the pipeline whole or with nothing of it, never a half; the
/// kuryr.conf of every run that succeeded after the destroy names ids that
/// exist; and they contended for the lease.
#[test]
fn two_runs_and_a_destroy_at_once_leave_all_or_nothing() {
    const NAME: &str = "race3-e2e";
    let cloud = LocalCloud::get();
    let text = pipeline(NAME, 0x35);
    let [a, b, d] = ["race3-a", "race3-b", "race3-d"].map(|n| Scratch::with_pipeline(n, &text));
    // Nothing there yet: both runs must write, so all three contend.
    assert_ok(&cloud.kuryr6(&d.dir, &["destroy", &d.pipeline()]));

    let started = std::time::Instant::now();
    let outcomes: Vec<(String, std::process::Output, std::time::Duration)> =
        std::thread::scope(|scope| {
            let go = |who: &'static str, s: &Scratch, cmd: &'static str| {
                let child = start_captured(&cloud, s, cmd);
                scope.spawn(move || {
                    let out = child.wait_with_output().unwrap();
                    (who.to_string(), out, started.elapsed())
                })
            };
            let handles = [
                go("a", &a, "run"),
                go("b", &b, "run"),
                go("d", &d, "destroy"),
            ];
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
    let report: String = outcomes
        .iter()
        .map(|(who, o, t)| format!("--- {who} at {t:?}: {}\n{}", o.status, stderr(o)))
        .collect();
    let waited = outcomes
        .iter()
        .filter(|(_, o, _)| stderr(o).contains("waiting for another run of pipeline race3-e2e"))
        .count();
    assert!(waited >= 1, "they contended for the lease:\n{report}");
    let (_, destroy, destroyed_at) = outcomes.iter().find(|(w, _, _)| w == "d").unwrap();
    assert_ok(destroy);

    let left = tagged(&cloud, NAME);
    let ids: Vec<&str> = left.iter().map(|t| t.3.as_str()).collect();
    match left.len() {
        0 => {
            // The destroy came last: no run succeeded after it.
            for (who, o, at) in &outcomes {
                assert!(
                    who == "d" || !o.status.success() || at < destroyed_at,
                    "run {who} succeeded after the destroy yet nothing is left:\n{report}"
                );
            }
        }
        6 => {
            let mut names: Vec<&str> = left.iter().map(|t| t.1.as_str()).collect();
            names.dedup();
            assert_eq!(names.len(), 6, "one of each: {left:?}");
            for (who, o, at) in &outcomes {
                if who == "d" || !o.status.success() || at < destroyed_at {
                    continue;
                }
                let s = if who == "a" { &a } else { &b };
                let [_, pod, service, groups] = conf_ids(&kuryr_conf(s));
                for id in [pod.as_str(), service.as_str()]
                    .into_iter()
                    .chain(groups.split(','))
                {
                    assert!(
                        ids.contains(&id.trim()),
                        "run {who}'s kuryr.conf names {id}, which is gone:\n{report}"
                    );
                }
            }
        }
        n => panic!("a half is left ({n} of 6): {left:?}\n{report}"),
    }
    assert_ok(&cloud.kuryr6(&a.dir, &["destroy", &a.pipeline()]));
    assert!(tagged(&cloud, NAME).is_empty());
}

/// A step named like a pipeline's lease record is refused before any call:
/// it would make every writing run of that pipeline wait for ever.
#[test]
fn a_step_named_like_the_lease_record_is_refused() {
    const NAME: &str = "reserved-e2e";
    let cloud = LocalCloud::get();
    let text = pipeline(NAME, 0x36).replace(
        "security_group = \"reserved-e2e-access\"",
        "security_group = \"kuryr6-lease:reserved-e2e\"",
    );
    assert!(text.contains("kuryr6-lease:"), "{text}");
    let s = Scratch::with_pipeline("reserved", &text);
    let out = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("E006"), "{}", stderr(&out));
    assert!(stderr(&out).contains("kuryr6-lease"), "{}", stderr(&out));
    let networks = cloud.openstack(&["network", "list", "--name", "reserved-e2e-pods"]);
    assert!(networks.as_array().unwrap().is_empty(), "nothing was made");
}

#[test]
fn a_held_lease_is_named_and_can_be_broken() {
    const NAME: &str = "lease-e2e";
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("lease", &pipeline(NAME, 0x33));
    // What an earlier test left goes: its lease record, then the rest.
    for cmd in ["unlock", "destroy"] {
        assert_ok(&cloud.kuryr6(&s.dir, &[cmd, &s.pipeline()]));
    }
    // A live run on another machine, as its record says.
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    cloud.openstack(&[
        "security",
        "group",
        "create",
        "kuryr6-lease:lease-e2e",
        "--description",
        &format!("kuryr6 lease: host=ci-runner-7 pid=4242 start=1 user=alice expires={expires}"),
    ]);
    let refused = cloud.kuryr6(&s.dir, &["run", &s.pipeline(), "--lock-wait", "0"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let msg = stderr(&refused);
    assert!(
        msg.contains("alice")
            && msg.contains("pid 4242 on ci-runner-7")
            && msg.contains("kuryr6 unlock"),
        "{msg}"
    );
    assert!(tagged(&cloud, NAME).is_empty(), "nothing was written");
    // It waits, then gives up, within its --lock-wait.
    let started = std::time::Instant::now();
    let waited = cloud.kuryr6(&s.dir, &["run", &s.pipeline(), "--lock-wait", "2"]);
    assert_eq!(waited.status.code(), Some(1));
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    assert!(
        stderr(&waited).contains("waiting for another run"),
        "{}",
        stderr(&waited)
    );

    let unlock = cloud.kuryr6(&s.dir, &["unlock", &s.pipeline()]);
    assert_ok(&unlock);
    assert!(stdout(&unlock).contains("alice"), "{}", stdout(&unlock));
    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline(), "--lock-wait", "0"]));
    assert_eq!(tagged(&cloud, NAME).len(), 6);
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
}

#[test]
fn duplicates_are_refused_then_deduped() {
    const NAME: &str = "dup-e2e";
    let cloud = LocalCloud::get();
    let s = Scratch::with_pipeline("dup", &pipeline(NAME, 0x34));
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    assert_ok(&cloud.kuryr6(&s.dir, &["run", &s.pipeline()]));
    let original = tagged(&cloud, NAME);
    // Neutron's created_at has one-second resolution: the copy is newer.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let copy = cloud.openstack(&[
        "network",
        "create",
        "dup-e2e-pods",
        "--tag",
        "kuryr6",
        "--tag",
        "kuryr6:pipeline=dup-e2e",
    ]);
    let copy_id = copy["id"].as_str().unwrap().to_string();

    let plan = cloud.kuryr6(&s.dir, &["plan", &s.pipeline(), "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(4), "{}", stdout(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("2 networks named `dup-e2e-pods`")
            && text.contains(&copy_id)
            && text.contains("kuryr6 dedupe"),
        "{text}"
    );
    assert!(!text.contains("No changes"), "{text}");
    let run = cloud.kuryr6(&s.dir, &["run", &s.pipeline()]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));

    assert_ok(&cloud.kuryr6(&s.dir, &["dedupe", &s.pipeline()]));
    assert_eq!(tagged(&cloud, NAME), original, "the oldest of each is kept");
    let after = cloud.kuryr6(&s.dir, &["plan", &s.pipeline(), "--detailed-exitcode"]);
    assert_eq!(after.status.code(), Some(0), "{}", stdout(&after));
    assert_ok(&cloud.kuryr6(&s.dir, &["destroy", &s.pipeline()]));
    assert!(tagged(&cloud, NAME).is_empty());
}
