//! A plugin that attacks its host, for kuryr6's sandbox tests. The fact
//! `attack` picks what every hook does before anything else:
//!
//! | attack     | does                                   | host must answer  |
//! |------------|----------------------------------------|-------------------|
//! | loop       | spins forever                          | Deadline / Fuel   |
//! | memory     | allocates 1 MiB after 1 MiB            | Memory            |
//! | panic      | panics with a message                  | Trap + message    |
//! | read-file  | reads /etc/passwd                      | Trap (no files)   |
//! | socket     | connects to 127.0.0.1:22               | Trap (no network) |
//! | env        | reads $PATH                            | Trap (no env)     |
//! | garbage    | returns output that is not a plan/name | InvalidOutput     |
//! | invalid    | returns a plan with overlapping subnets| InvalidOutput     |
//! | sleep      | sleeps an hour, then behaves           | returns at once   |
//! | recurse    | recurses without end                   | Trap (stack)      |
//! | exit       | calls exit(3)                          | Trap              |
//! | entropy    | puts clock and random values in names  | same every run    |
//! | none       | behaves                                | output            |
//!
//! The boundary corpus: answers that are well-formed but say too much.
//!
//! | attack          | hook   | does                                      | host must answer |
//! |-----------------|--------|-------------------------------------------|------------------|
//! | steal-identity  | plan   | renames the pipeline (its ownership tag)  | InvalidOutput `pipeline` |
//! | emit-dir        | plan   | sends emitted files to /etc/kuryr         | InvalidOutput `dir` |
//! | tags            | plan   | adds a resource tag                       | InvalidOutput `resource_tags` |
//! | add-step        | plan   | adds a network                            | InvalidOutput (steps) |
//! | repoint         | plan   | points the emit's pod subnet elsewhere    | InvalidOutput `pod_subnet` |
//! | open-port       | plan   | widens a security-group rule's ports      | InvalidOutput `rules[0]…` |
//! | version         | plan   | changes the Kubernetes version            | InvalidOutput `kubernetes.version` |
//! | ctrl-name       | plan, naming | a name with ESC, newline, INI syntax | InvalidOutput E006 |
//! | long-name       | naming | a 300-byte name                           | Oversize         |
//! | huge            | plan, naming | an answer of `size_mib` MiB (default 8) | Oversize   |
//! | deep-json       | plan   | JSON nested 100 deep                      | Oversize (nesting) |
//! | huge-refusal    | all    | an error message of `size_mib` MiB        | Oversize         |
//! | many-violations | policy | 100 000 violations                        | Oversize (list)  |
//! | huge-violation  | policy | one violation with a 1 MiB message        | Oversize         |
//! | log-flood       | naming | logs a 1 MiB message, then 999 lines of 16 KiB with a terminal escape and a forged line; names as given | a note for the 1 MiB one, 63 lines of ≤ 1 KiB, escaped, "dropped" counted; the name kept |

use kuryr6_plugin_sdk::plan::Step;
use kuryr6_plugin_sdk::{Facts, Hook, Plan, Plugin, ResourceKind, Site, Violation, export_plugin};
use std::hint::black_box;

struct Hostile;

// Unbounded on purpose: the host must survive the stack overflow.
#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    black_box(recurse(black_box(depth + 1)) + 1)
}

/// Runs the attack; returns only for the attacks a hook answers itself.
fn attack(facts: &Facts) -> String {
    let attack = facts.get("attack").unwrap_or("none").to_string();
    match attack.as_str() {
        "loop" => {
            let mut x = 0u64;
            loop {
                x = black_box(x.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![0xa5; 1 << 20]);
                black_box(&hoard);
            }
        }
        "panic" => panic!("hostile plugin panics on purpose"),
        "read-file" => {
            let text = std::fs::read_to_string("/etc/passwd").expect("hostile: read /etc/passwd");
            panic!("hostile: read {} bytes of /etc/passwd", text.len());
        }
        "socket" => {
            let s = std::net::TcpStream::connect("127.0.0.1:22")
                .expect("hostile: connect to 127.0.0.1:22");
            panic!("hostile: connected to {:?}", s.peer_addr());
        }
        "env" => {
            let path = std::env::var("PATH").expect("hostile: read $PATH");
            panic!("hostile: read PATH={path}");
        }
        "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
        "recurse" => {
            black_box(recurse(0));
        }
        "exit" => std::process::exit(3),
        _ => {}
    }
    attack
}

/// `size_mib` MiB of text (default 8).
fn huge(facts: &Facts) -> String {
    let mib: usize = facts
        .get("size_mib")
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    "x".repeat(mib << 20)
}

/// A name no pipeline could write: a terminal escape, a newline and INI.
const CTRL_NAME: &str = "pods\u{1b}[2J\n[neutron_defaults]\nproject = evil";

fn emit(plan: &mut Plan) -> Result<&mut kuryr6_plugin_sdk::plan::Emit, String> {
    plan.steps
        .iter_mut()
        .find_map(|s| match s {
            Step::Emit(e) => Some(e),
            _ => None,
        })
        .ok_or_else(|| "no emit step".to_string())
}

/// Values a plugin could only vary by through clocks and randomness.
fn entropy() -> String {
    use std::hash::{BuildHasher, Hasher};
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let start = std::time::Instant::now();
    let mono = start.elapsed().as_nanos();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(1);
    format!("{wall:x}-{mono:x}-{:016x}", h.finish())
}

impl Plugin for Hostile {
    const NAME: &'static str = "hostile";
    const HOOKS: &'static [Hook] = &[Hook::Plan, Hook::Naming, Hook::Policy];

    fn plan(facts: &Facts, mut plan: Plan) -> Result<Plan, String> {
        let attack = attack(facts);
        match attack.as_str() {
            "steal-identity" => plan.pipeline = "someone-elses-cluster".into(),
            "emit-dir" => emit(&mut plan)?.dir = "/etc/kuryr".into(),
            "tags" => emit(&mut plan)?.resource_tags.push("owner=hostile".into()),
            "add-step" => plan.steps.insert(
                0,
                Step::Network(kuryr6_plugin_sdk::plan::Network {
                    name: "backdoor".into(),
                    extra: Default::default(),
                }),
            ),
            "repoint" => {
                let e = emit(&mut plan)?;
                e.pod_subnet = e.service_subnet.clone();
            }
            "open-port" => {
                for step in &mut plan.steps {
                    if let Step::SecurityGroup(sg) = step
                        && let Some(rule) = sg.rules.first_mut()
                    {
                        rule.port_range_min = Some(1);
                        rule.port_range_max = Some(65535);
                    }
                }
            }
            "version" => plan.kubernetes.version = "1.20".into(),
            "ctrl-name" => {
                if let Some(Step::Network(n)) = plan.steps.first_mut() {
                    n.name = CTRL_NAME.into();
                }
            }
            "huge" => {
                plan.extra.insert("padding".into(), huge(facts).into());
            }
            "deep-json" => {
                let mut v = serde_json::Value::Null;
                for _ in 0..100 {
                    v = serde_json::Value::Array(vec![v]);
                }
                plan.extra.insert("deep".into(), v);
            }
            "huge-refusal" => return Err(huge(facts)),
            _ => {}
        }
        match attack.as_str() {
            "garbage" => {
                // Not expressible through the SDK's types: corrupt a field.
                plan.pipeline = "{{{ not a pipeline name".into();
                plan.extra.insert("surprise".into(), "field".into());
                Ok(plan)
            }
            "invalid" => {
                let service = plan
                    .subnets()
                    .find(|s| s.name.contains("service"))
                    .map(|s| s.cidr)
                    .ok_or("no service subnet")?;
                for step in &mut plan.steps {
                    if let Step::Subnet(s) = step
                        && s.name.contains("pod")
                    {
                        s.cidr = service;
                    }
                }
                Ok(plan)
            }
            _ => Ok(plan),
        }
    }

    fn name(kind: ResourceKind, default_name: &str, context: &Facts) -> Result<String, String> {
        let _ = kind;
        match attack(context).as_str() {
            "garbage" => Ok(String::new()),
            "ctrl-name" => Ok(CTRL_NAME.into()),
            "long-name" => Ok("n".repeat(300)),
            "huge" => Ok(huge(context)),
            "huge-refusal" => Err(huge(context)),
            "entropy" => Ok(format!("{default_name}-{}", entropy())),
            "log-flood" => {
                // One message too long to read at all, then lines too long
                // to show whole.
                kuryr6_plugin_sdk::log::warn(&"y".repeat(1 << 20));
                let mut line =
                    format!("flood \u{1b}[2J\nFORGED ERROR kuryr6: all good {default_name} ");
                line.push_str(&"x".repeat(16 * 1024));
                for _ in 0..999 {
                    kuryr6_plugin_sdk::log::warn(&line);
                }
                Ok(default_name.to_string())
            }
            _ => Ok(default_name.to_string()),
        }
    }

    fn check(sites: &[Site]) -> Result<Vec<Violation>, String> {
        let facts = sites.first().map(|s| s.facts.clone()).unwrap_or_default();
        match attack(&facts).as_str() {
            "entropy" => Ok(vec![Violation::warning("entropy", entropy())]),
            "many-violations" => Ok((0..100_000)
                .map(|i| Violation::warning("spam", format!("violation {i}")))
                .collect()),
            "huge-violation" => Ok(vec![Violation::error("huge", "m".repeat(1 << 20))]),
            "huge-refusal" => Err(huge(&facts)),
            _ => Ok(Vec::new()),
        }
    }
}

export_plugin!(Hostile);
