//! The `kuryr6` command line: parses arguments and hands each command to
//! the library. Exit codes: 0 success, 1 operational failure (cloud, I/O),
//! 2 invalid pipeline or usage, 3 changes pending (`plan --detailed-exitcode`).

use clap::{Parser, Subcommand, ValueEnum};
use kuryr6::diag::{self, Located};
use kuryr6::emit::OfflineIds;
use kuryr6::load::{self, Loaded, Rejected};
use kuryr6::report;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kuryr6",
    version,
    about = "Kuryr IPv6 / dual-stack networking for Kubernetes on OpenStack, as one command",
    long_about = "Turns Kuryr's IPv6 guide into one command: reads pipeline.toml, computes and \
validates the IPv6 address plan before any API call, converges Neutron and Octavia resources \
idempotently, and emits kuryr.conf, kube-apiserver flags and a kubeadm config.\n\n\
Exit codes: 0 success, 1 operational failure, 2 invalid pipeline or usage, \
3 changes pending (plan --detailed-exitcode)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a pipeline makes: every step with every computed field and the emitted files.
    Plan {
        /// Pipeline files (pipeline.toml).
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        /// Compute the plan without contacting a cloud; ids in emitted files are placeholders.
        #[arg(long)]
        offline: bool,
        /// Output format; json is documented in README.md.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Validate pipeline files and report every problem of every file (no cloud needed).
    Check {
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Converge the cloud to the pipeline, then emit kuryr.conf and the Kubernetes configs.
    Run {
        pipeline: PathBuf,
        /// Directory for emitted files (default: the emit step's dir, relative to the pipeline).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Delete what this pipeline created, in reverse order; never touches what it does not own.
    Destroy { pipeline: PathBuf },
    /// Develop WebAssembly plugins: run a hook on a fixture, show a plugin's identity.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Run one hook of a built plugin on a JSON fixture; print its output, time and fuel.
    Test {
        /// The plugin (.wasm component).
        wasm: PathBuf,
        #[arg(long, value_parser = ["plan", "naming", "policy"])]
        hook: String,
        /// Fixture JSON (shapes: see `kuryr6::plugin::fixture`).
        #[arg(long)]
        input: PathBuf,
        /// Fuel budget (instructions); default unlimited, consumption is always shown.
        #[arg(long)]
        fuel: Option<u64>,
        #[arg(long, default_value_t = 1000)]
        deadline_ms: u64,
        #[arg(long, default_value_t = 64)]
        memory_mib: u64,
    },
    /// Print a plugin's sha256 (to pin it), name, hooks and load time.
    Info { wasm: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { pipelines, format } => check(&pipelines, format),
        Command::Plan {
            pipelines,
            offline,
            format,
        } => {
            if !offline {
                return needs_cloud("plan");
            }
            plan_offline(&pipelines, format)
        }
        Command::Run { .. } => needs_cloud("run"),
        Command::Destroy { .. } => needs_cloud("destroy"),
        Command::Plugin(cmd) => plugin_command(cmd),
    }
}

fn plugin_command(cmd: PluginCommand) -> ExitCode {
    use kuryr6::plugin::{self, Hook, Limits, fixture};
    let host = match plugin::Host::global() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("kuryr6 plugin: {e}");
            return ExitCode::from(1);
        }
    };
    match cmd {
        PluginCommand::Info { wasm } => {
            let label = wasm.display().to_string();
            match host.load_file(&label, &wasm, None, &Limits::default()) {
                Ok(l) => {
                    let hooks: Vec<&str> = l.plugin.info.hooks.iter().map(|h| h.as_str()).collect();
                    println!("path    {label}");
                    println!("sha256  {}", l.plugin.sha256);
                    println!("name    {}", l.plugin.info.name);
                    println!("hooks   {}", hooks.join(", "));
                    println!("load    {:.3} ms ({})", ms(l.elapsed), l.origin);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error[{}]: {e}\nhelp: {}", e.kind(), e.help());
                    ExitCode::from(2)
                }
            }
        }
        PluginCommand::Test {
            wasm,
            hook,
            input,
            fuel,
            deadline_ms,
            memory_mib,
        } => {
            let Some(hook) = Hook::parse(&hook) else {
                return ExitCode::from(2);
            };
            let text = match std::fs::read_to_string(&input) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("kuryr6 plugin test: cannot read {}: {e}", input.display());
                    return ExitCode::from(1);
                }
            };
            let limits = Limits {
                deadline: std::time::Duration::from_millis(deadline_ms),
                memory_mib,
                fuel,
            };
            let base = input.parent().map(PathBuf::from).unwrap_or_default();
            match fixture::run(host, &wasm, hook, &text, &base, &limits) {
                Ok(run) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&run.output).unwrap_or_default()
                    );
                    eprintln!(
                        "plugin {} ({}) sha256 {}\nload {:.3} ms ({}), {hook} call {:.1} µs, fuel {}",
                        run.info.name,
                        wasm.display(),
                        run.sha256,
                        ms(run.load),
                        run.origin,
                        run.call.as_secs_f64() * 1e6,
                        run.fuel
                    );
                    ExitCode::SUCCESS
                }
                Err(fixture::FixtureError::Plugin(e)) => {
                    eprintln!("error[{}]: {e}\nhelp: {}", e.kind(), e.help());
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("kuryr6 plugin test: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn needs_cloud(command: &str) -> ExitCode {
    eprintln!(
        "kuryr6 {command}: this command works against an OpenStack cloud, and this build has no cloud client yet.\n\
         Use `kuryr6 plan --offline` or `kuryr6 check` to compute and validate a plan without one."
    );
    ExitCode::from(1)
}

/// Loads every file; prints every problem of every file. `None` if any failed.
fn load_all(paths: &[PathBuf], format: Format) -> Option<Vec<Loaded>> {
    let results: Vec<Result<Loaded, Rejected>> = load::load_many(paths);
    let rejected: Vec<&Rejected> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if rejected.is_empty() {
        return Some(results.into_iter().filter_map(Result::ok).collect());
    }
    match format {
        Format::Json => {
            let all: Vec<Located> = rejected
                .iter()
                .flat_map(|r| r.diagnostics.iter().map(|d| Located::new(&r.source, d)))
                .collect();
            println!("{}", serde_json::json!({ "ok": false, "errors": all }));
        }
        Format::Text => {
            for r in &rejected {
                eprint!("{}", diag::render(&r.source, &r.diagnostics));
            }
            let count: usize = rejected.iter().map(|r| r.diagnostics.len()).sum();
            eprintln!(
                "{count} error(s) in {} of {} file(s)",
                rejected.len(),
                paths.len()
            );
        }
    }
    None
}

fn check(paths: &[PathBuf], format: Format) -> ExitCode {
    let Some(loaded) = load_all(paths, format) else {
        return ExitCode::from(2);
    };
    match format {
        Format::Json => println!("{}", serde_json::json!({ "ok": true, "files": paths })),
        Format::Text => {
            for l in &loaded {
                println!(
                    "{}: ok ({} steps)",
                    l.source.display_path(),
                    l.plan.steps.len()
                );
            }
        }
    }
    ExitCode::SUCCESS
}

fn plan_offline(paths: &[PathBuf], format: Format) -> ExitCode {
    let Some(loaded) = load_all(paths, format) else {
        return ExitCode::from(2);
    };
    match format {
        Format::Json => {
            let docs: Vec<_> = loaded
                .iter()
                .map(|l| report::document(l, &OfflineIds))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&docs).expect("plan documents serialize")
            );
        }
        Format::Text => {
            for l in &loaded {
                print!("{}", report::text(l, &OfflineIds));
            }
        }
    }
    ExitCode::SUCCESS
}
