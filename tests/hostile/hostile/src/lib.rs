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
        match attack(facts).as_str() {
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
            "entropy" => Ok(format!("{default_name}-{}", entropy())),
            _ => Ok(default_name.to_string()),
        }
    }

    fn check(sites: &[Site]) -> Result<Vec<Violation>, String> {
        let facts = sites.first().map(|s| s.facts.clone()).unwrap_or_default();
        match attack(&facts).as_str() {
            "entropy" => Ok(vec![Violation::warning("entropy", entropy())]),
            _ => Ok(Vec::new()),
        }
    }
}

export_plugin!(Hostile);
