//! The `kuryr6` command line: parses arguments and hands each command to
//! the library. Exit codes: 0 success, 1 operational failure (cloud, I/O),
//! 2 invalid pipeline or usage, 3 changes pending (`plan --detailed-exitcode`),
//! 4 the plan has refusals (`plan`).

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use kuryr6::cloud::openstack::OpenStack;
use kuryr6::commands::{self, CloudArgs, CommandError};
use kuryr6::diag::{self, Located};
use kuryr6::emit::OfflineIds;
use kuryr6::engine::lease::LeaseOptions;
use kuryr6::engine::{DestroyOptions, RunOptions};
use kuryr6::fleet::{CloudKey, Job};
use kuryr6::load::{self, Loaded, Rejected};
use kuryr6::report;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod args;
mod plugin_dist;

use args::{
    Cli, CloudOpts, Command, CompletionShell, FleetOpts, Format, GraphFormat, PluginCommand,
    ReportCommand, WriteOpts,
};

/// `plan`'s exit code when `run` would refuse the plan (a change that
/// needs --replace or --adopt, a resource of another pipeline, duplicates).
const EXIT_REFUSED: u8 = 4;

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "kuryr6=info",
        _ => "kuryr6=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    if let Some(code) = offline_conflicts(&matches) {
        return code;
    }
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let Err(e) = expand_directories(&mut cli.command) {
        eprintln!("kuryr6: {e}");
        return ExitCode::from(2);
    }
    init_tracing(cli.verbose);
    dispatch(cli.command)
}

/// Hands one command to the code that runs it.
fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Completions { shell } => completions(shell),
        Command::Man { dir } => man(dir.as_deref()),
        Command::Check { pipelines, format } => check(&pipelines, format),
        Command::Plan {
            pipelines,
            offline: true,
            format,
            fleet,
            ..
        } => plan_offline(&pipelines, format, fleet.shard),
        Command::Plan {
            pipelines,
            format,
            detailed_exitcode,
            adopt,
            replace,
            fleet,
            cloud,
            ..
        } => {
            let job = Job::Plan(RunOptions { adopt, replace });
            cloud_command(&pipelines, job, detailed_exitcode, format, &fleet, &cloud)
        }
        Command::Run {
            pipelines,
            out,
            adopt,
            replace,
            write,
        } => writing_command(&pipelines, &write, |lease| Job::Run {
            options: RunOptions { adopt, replace },
            lease,
            out,
        }),
        Command::Destroy {
            pipelines,
            delete_kuryr_ports,
            write,
        } => writing_command(&pipelines, &write, |lease| Job::Destroy {
            options: DestroyOptions { delete_kuryr_ports },
            lease,
        }),
        Command::Dedupe {
            pipeline,
            format,
            lock,
            cloud,
        } => with_cloud(&pipeline, &cloud, format, |loaded, os| async move {
            commands::dedupe(&loaded, &os, lock.options(), format == Format::Json).await?;
            Ok(0)
        }),
        Command::Unlock {
            pipeline,
            format,
            cloud,
        } => with_cloud(&pipeline, &cloud, format, |loaded, os| async move {
            commands::unlock(&loaded, &os, format == Format::Json).await?;
            Ok(0)
        }),
        Command::Plugin(cmd) => plugin_command(cmd),
        Command::Report(ReportCommand::Merge {
            files,
            format,
            detailed_exitcode,
        }) => report_merge(&files, format, detailed_exitcode),
        Command::Graph {
            pipeline,
            format,
            output,
            os_cloud,
            os_cacert,
            insecure,
        } => {
            let cloud = os_cloud.map(|name| CloudArgs {
                os_cloud: Some(name),
                insecure,
                cacert: os_cacert,
                ..CloudArgs::default()
            });
            graph(&pipeline, format, output.as_deref(), cloud)
        }
        Command::Import {
            kuryr_conf,
            name,
            output,
            force,
            format,
            cloud,
        } => import(
            kuryr_conf.as_deref(),
            &name,
            output.as_deref(),
            force,
            format,
            &cloud,
        ),
    }
}

/// The shell completion script for `shell` on stdout.
fn completions(shell: CompletionShell) -> ExitCode {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    // Into a buffer: clap_complete panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kuryr6", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

/// `run` and `destroy`: the job, given the lease `--lock-wait` asks for,
/// on one pipeline or a fleet.
fn writing_command(
    pipelines: &[PathBuf],
    write: &WriteOpts,
    job: impl FnOnce(LeaseOptions) -> Job,
) -> ExitCode {
    let job = job(write.lock.options());
    cloud_command(
        pipelines,
        job,
        false,
        write.format,
        &write.fleet,
        &write.cloud,
    )
}

/// `plan`, `run` or `destroy` against the cloud: one pipeline, or a fleet.
fn cloud_command(
    pipelines: &[PathBuf],
    job: Job,
    detailed_exitcode: bool,
    format: Format,
    fleet: &FleetOpts,
    cloud: &CloudOpts,
) -> ExitCode {
    if !fleet.single(pipelines) {
        return run_fleet(pipelines, job, fleet, cloud, format, detailed_exitcode);
    }
    let json = format == Format::Json;
    with_cloud(&pipelines[0], cloud, format, |loaded, os| async move {
        match job {
            Job::Plan(options) => {
                let outcome = commands::plan(&loaded, &os, options, json).await?;
                return Ok(if outcome.refused {
                    EXIT_REFUSED
                } else if detailed_exitcode && outcome.pending {
                    3
                } else {
                    0
                });
            }
            Job::Run {
                options,
                lease,
                out,
            } => commands::run(&loaded, &os, options, lease, out.as_deref(), json).await?,
            Job::Destroy { options, lease } => {
                commands::destroy(&loaded, &os, options, lease, json).await?
            }
        }
        Ok(0)
    })
}

/// `plan --offline` with a cloud flag given on the command line is a usage
/// error. `--os-cloud` and `--os-cacert` are checked here, not with clap's
/// `conflicts_with`: clap counts their environment variables (OS_CLOUD,
/// OS_CACERT) as given, and an exported OS_CLOUD must not break offline plans.
fn offline_conflicts(matches: &ArgMatches) -> Option<ExitCode> {
    let ("plan", plan) = matches.subcommand()? else {
        return None;
    };
    if !plan.get_flag("offline") {
        return None;
    }
    let flag = ["os_cloud", "os_cacert"]
        .into_iter()
        .find(|id| plan.value_source(id) == Some(ValueSource::CommandLine))?;
    let mut cmd = Cli::command();
    cmd.build();
    let Some(plan_cmd) = cmd.find_subcommand_mut("plan") else {
        return Some(ExitCode::from(2));
    };
    let err = plan_cmd.error(
        clap::error::ErrorKind::ArgumentConflict,
        format!(
            "the argument '--offline' cannot be used with '--{}': an offline plan contacts no cloud",
            flag.replace('_', "-")
        ),
    );
    let _ = err.print();
    Some(ExitCode::from(2))
}

/// A directory argument stands for its files with the extension `ext`, in name order (not
/// recursive): a container has no shell to expand `/sites/*.toml`. Names starting with `.` are
/// skipped, as a Kubernetes ConfigMap volume keeps its `..data` links there.
fn expand_directories(command: &mut Command) -> Result<(), String> {
    let (paths, ext) = match command {
        Command::Plan { pipelines, .. }
        | Command::Check { pipelines, .. }
        | Command::Run { pipelines, .. }
        | Command::Destroy { pipelines, .. } => (pipelines, "toml"),
        Command::Report(ReportCommand::Merge { files, .. }) => (files, "json"),
        _ => return Ok(()),
    };
    let mut expanded = Vec::with_capacity(paths.len());
    for path in paths.drain(..) {
        if !path.is_dir() {
            expanded.push(path);
            continue;
        }
        let entries =
            std::fs::read_dir(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let name = entry.file_name();
            let file = entry.path();
            if !name.to_string_lossy().starts_with('.')
                && file.extension().is_some_and(|x| x == ext)
                && file.is_file()
            {
                found.push(file);
            }
        }
        if found.is_empty() {
            return Err(format!("{} holds no *.{ext} file", path.display()));
        }
        found.sort();
        expanded.extend(found);
    }
    *paths = expanded;
    Ok(())
}

/// `--summary FILE`: replaced whole (a temporary file beside it, then a rename), so a merge
/// never reads half of one; its directory is made if missing (a fresh volume).
fn write_summary(path: &Path, summary: &kuryr6::fleet::Summary) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(summary).expect("a summary serializes") + "\n";
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

/// `kuryr6 man`: generated at run time from the same clap definition the
/// binary parses with, so the page never drifts from the flags (a build.rs
/// would need the definition in a second crate).
fn man(dir: Option<&Path>) -> ExitCode {
    let cmd = Cli::command();
    let result = match dir {
        Some(dir) => std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir)),
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kuryr6 man: {e}");
            ExitCode::from(1)
        }
    }
}

/// Validates the pipeline (exit 2 before any API call if it is invalid),
/// connects, and runs `work`; operational errors exit 1.
/// The single-threaded runtime every cloud command runs on; the error is
/// the message to print.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn with_cloud<F, Fut>(pipeline: &Path, cloud: &CloudOpts, format: Format, work: F) -> ExitCode
where
    F: FnOnce(Loaded, OpenStack) -> Fut,
    Fut: std::future::Future<Output = Result<u8, CommandError>>,
{
    let Some(mut loaded) = load_all(std::slice::from_ref(&pipeline.to_path_buf()), format) else {
        return ExitCode::from(2);
    };
    let loaded = loaded.remove(0);
    if format == Format::Text {
        // JSON output stays one document; warnings are `check`'s to list there.
        eprint!("{}", diag::render(&loaded.source, &loaded.warnings));
    }
    let file = loaded.source.display_path();
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kuryr6: {e}");
            return ExitCode::from(1);
        }
    };
    // The file's `[cloud]` unless --os-cloud / OS_CLOUD name another.
    let key = CloudKey::resolve(loaded.cloud.as_ref(), cloud.os_cloud.as_deref(), false);
    if let Some(named) = &loaded.cloud
        && key.name.as_deref() != Some(named.name.as_str())
    {
        // An OS_CLOUD left in the shell must not point a site elsewhere
        // unseen (stderr: stdout may be JSON).
        eprintln!(
            "kuryr6: note: {file} names cloud \"{}\" in [cloud]; using \"{}\" from --os-cloud / OS_CLOUD (a single pipeline: the command line wins)",
            named.name,
            key.name.as_deref().unwrap_or_default()
        );
    }
    let args = CloudArgs {
        os_cloud: key.name.clone(),
        region: key.region.clone(),
        interface: key.interface.clone(),
        ..cloud.args()
    };
    let result = runtime.block_on(async move {
        let os = commands::connect(&args).await.map_err(CommandError::from)?;
        work(loaded, os).await
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            match format {
                Format::Json => println!("{}", error_document(&e.located(&file))),
                Format::Text => eprintln!("kuryr6: {e}"),
            }
            ExitCode::from(1)
        }
    }
}

/// The one JSON shape of a failed command (README.md, "Errors as JSON").
fn error_document(errors: &[Located]) -> serde_json::Value {
    serde_json::json!({ "ok": false, "errors": errors })
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
            println!("{}", error_document(&all));
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
        Format::Json => {
            let warnings: Vec<Located> = loaded
                .iter()
                .flat_map(|l| l.warnings.iter().map(|d| Located::new(&l.source, d)))
                .collect();
            println!(
                "{}",
                serde_json::json!({ "ok": true, "files": paths, "warnings": warnings })
            )
        }
        Format::Text => {
            for l in &loaded {
                eprint!("{}", diag::render(&l.source, &l.warnings));
                let warned = match l.warnings.len() {
                    0 => String::new(),
                    n => format!(", {n} warning(s)"),
                };
                println!(
                    "{}: ok ({} steps{warned})",
                    l.source.display_path(),
                    l.plan.steps.len()
                );
            }
        }
    }
    ExitCode::SUCCESS
}

fn plan_offline(
    paths: &[PathBuf],
    format: Format,
    shard: Option<kuryr6::fleet::Shard>,
) -> ExitCode {
    let Some(mut loaded) = load_all(paths, format) else {
        return ExitCode::from(2);
    };
    // With --shard: the sites this runner would take (all files still judged).
    if let Some(shard) = shard {
        loaded.retain(|l| shard.takes(&l.plan.pipeline));
    }
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
                eprint!("{}", diag::render(&l.source, &l.warnings));
                print!("{}", report::text(l, &OfflineIds));
            }
        }
    }
    ExitCode::SUCCESS
}

/// `kuryr6 graph`: exit 0 with the picture written, 2 for an invalid
/// pipeline, 1 when the cloud cannot be read or the file not written.
fn graph(
    pipeline: &Path,
    format: GraphFormat,
    output: Option<&Path>,
    cloud: Option<CloudArgs>,
) -> ExitCode {
    use kuryr6::graph;
    let Some(mut loaded) = load_all(std::slice::from_ref(&pipeline.to_path_buf()), Format::Text)
    else {
        return ExitCode::from(2);
    };
    let loaded = loaded.remove(0);
    let g = match cloud {
        None => graph::build(&loaded.plan, None, "plan (offline)".into()),
        Some(args) => {
            let runtime = match runtime() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("kuryr6: {e}");
                    return ExitCode::from(1);
                }
            };
            let plan = &loaded.plan;
            let result = runtime.block_on(async {
                let os = commands::connect(&args).await?;
                let obs = kuryr6::engine::observe(&os, plan).await?;
                // Drift as `plan --adopt --replace` sees it: every change it could make.
                let set = kuryr6::engine::diff(
                    plan,
                    &obs,
                    RunOptions {
                        adopt: true,
                        replace: true,
                    },
                );
                Ok::<_, kuryr6::cloud::CloudError>((set, os.config().label()))
            });
            match result {
                Ok((set, label)) => {
                    let pending = set
                        .changes
                        .iter()
                        .filter(|c| c.action != kuryr6::engine::Action::NoOp)
                        .count();
                    let subtitle = if pending == 0 {
                        format!("against {label}: no changes")
                    } else {
                        format!("against {label}: {pending} pending change(s)")
                    };
                    graph::build(plan, Some(&set), subtitle)
                }
                Err(e) => {
                    eprintln!("kuryr6: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    };
    let text = match format {
        GraphFormat::Svg => graph::svg::render(&g),
        GraphFormat::Dot => graph::dot::render(&g),
        GraphFormat::Mermaid => graph::mermaid::render(&g),
    };
    match output {
        None => print!("{text}"),
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("kuryr6 graph: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
            eprintln!("kuryr6 graph: wrote {}", path.display());
        }
    }
    ExitCode::SUCCESS
}

/// `kuryr6 import`: exit 0 with the pipeline written, 1 when the cloud
/// cannot be read or the deployment cannot be expressed, 2 on usage.
fn import(
    conf: Option<&Path>,
    name: &str,
    output: Option<&Path>,
    force: bool,
    format: Format,
    cloud: &CloudOpts,
) -> ExitCode {
    use kuryr6::import::{self, ImportError};
    let label = output
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "pipeline.toml".into());
    let fail = |code: &str, message: String, exit: u8| {
        match format {
            Format::Json => println!(
                "{}",
                error_document(&[Located::operational(&label, code, message, None)])
            ),
            Format::Text => eprintln!("kuryr6 import: {message}"),
        }
        ExitCode::from(exit)
    };
    if let Some(out) = output
        && out.exists()
        && !force
    {
        return fail(
            "usage",
            format!("{} exists; pass --force to overwrite it", out.display()),
            2,
        );
    }
    let hints = match conf {
        None => import::Hints::default(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| import::parse_kuryr_conf(&t))
        {
            Ok(h) => h,
            Err(e) => {
                return fail(
                    "import.conf",
                    format!("cannot read {}: {e}", path.display()),
                    1,
                );
            }
        },
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => return fail("io", e, 1),
    };
    let args = cloud.args();
    let result = runtime.block_on(async move {
        let os = commands::connect(&args).await?;
        let snap = import::read(&os, &hints).await?;
        import::write::write(&snap, name)
    });
    let imported = match result {
        Ok(i) => i,
        Err(e) => {
            let code = match &e {
                ImportError::Cloud(c) => {
                    return match format {
                        Format::Json => {
                            let err = commands::CommandError::from(c.clone());
                            println!("{}", error_document(&err.located(&label)));
                            ExitCode::from(1)
                        }
                        Format::Text => fail("", e.to_string(), 1),
                    };
                }
                ImportError::Missing(_) => "import.missing",
                ImportError::Ambiguous(_) => "import.ambiguous",
                ImportError::Unsupported(_) => "import.unsupported",
                ImportError::Conf(_) => "import.conf",
            };
            return fail(code, e.to_string(), 1);
        }
    };
    if let Some(out) = output
        && let Err(e) = std::fs::write(out, &imported.text)
    {
        return fail("write", format!("cannot write {}: {e}", out.display()), 1);
    }
    report_import(&imported, &label, output, format);
    ExitCode::SUCCESS
}

/// What `import` wrote: the pipeline (when not to a file), its deviations
/// from the guide, and the next commands.
fn report_import(
    imported: &kuryr6::import::write::Imported,
    label: &str,
    output: Option<&Path>,
    format: Format,
) {
    let source = kuryr6::source::SourceFile::new(label, imported.text.as_str());
    match format {
        Format::Json => {
            let warnings: Vec<Located> = imported
                .warnings
                .iter()
                .map(|d| Located::new(&source, d))
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "ok": true,
                    "file": output.map(|p| p.display().to_string()),
                    "short_form": imported.short_form,
                    "steps": imported.plan.steps.len(),
                    "warnings": warnings,
                    "pipeline": if output.is_none() { Some(&imported.text) } else { None },
                })
            );
        }
        Format::Text => {
            if output.is_none() {
                print!("{}", imported.text);
            }
            eprint!("{}", diag::render(&source, &imported.warnings));
            eprintln!(
                "kuryr6 import: {} steps ({}), {} deviation warning(s){}; next: kuryr6 plan {label} --adopt, then kuryr6 run {label} --adopt",
                imported.plan.steps.len(),
                if imported.short_form {
                    "short form"
                } else {
                    "explicit"
                },
                imported.warnings.len(),
                output
                    .map(|p| format!(", written to {}", p.display()))
                    .unwrap_or_default(),
            );
        }
    }
}

fn plugin_command(cmd: PluginCommand) -> ExitCode {
    use kuryr6::plugin::{self, Hook, Limits, fixture};
    // Only the commands that compile a plugin start wasmtime.
    let host = || {
        plugin::Host::global().map_err(|e| {
            eprintln!("kuryr6 plugin: {e}");
            ExitCode::from(1)
        })
    };
    match cmd {
        PluginCommand::New {
            name,
            dir,
            hooks,
            sdk,
        } => plugin_new(name, dir, hooks, sdk),
        PluginCommand::Push {
            wasm,
            target,
            signature,
            insecure,
        } => plugin_dist::push(&wasm, &target, signature.as_deref(), insecure),
        PluginCommand::Pull { source, insecure } => plugin_dist::pull(&source, insecure),
        PluginCommand::Lock { pipelines, update } => plugin_dist::lock(&pipelines, update),
        PluginCommand::Verify { target, key } => plugin_dist::verify(&target, &key),
        PluginCommand::Info { wasm } => {
            let host = match host() {
                Ok(h) => h,
                Err(code) => return code,
            };
            let label = wasm.display().to_string();
            match host.load_file(&label, &wasm, None, &Limits::default()) {
                Ok(l) => {
                    let hooks: Vec<&str> = l.plugin.info.hooks.iter().map(|h| h.as_str()).collect();
                    println!("path    {label}");
                    println!("sha256  {}", l.plugin.sha256);
                    println!("name    {}", l.plugin.info.name);
                    println!("hooks   {}", hooks.join(", "));
                    println!(
                        "version {}",
                        l.plugin
                            .info
                            .version
                            .as_deref()
                            .unwrap_or("(not reported: its contract predates meta.version)")
                    );
                    println!("abi     {}", l.plugin.info.contract);
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
            // The fixture runs in the process's host: fail here, as every
            // other command does, when it cannot start.
            if let Err(code) = host() {
                return code;
            }
            match fixture::run(&wasm, hook, &text, &base, &limits) {
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

/// `kuryr6 plugin new`.
fn plugin_new(
    name: String,
    dir: Option<PathBuf>,
    hooks: Vec<String>,
    sdk: Option<PathBuf>,
) -> ExitCode {
    use kuryr6::plugin::{Hook, scaffold};
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    let opts = scaffold::Options {
        hooks: hooks.iter().filter_map(|h| Hook::parse(h)).collect(),
        sdk: sdk.or_else(scaffold::own_sdk),
        name,
        dir,
    };
    match scaffold::scaffold(&opts) {
        Ok(files) => {
            println!("created {} ({} files):", opts.dir.display(), files.len());
            for f in &files {
                println!("  {}", f.display());
            }
            if opts.sdk.is_none() {
                println!(
                    "note: no kuryr6 checkout found; Cargo.toml takes kuryr6-plugin-sdk from a registry (pass --sdk DIR, or see its README, \"The SDK dependency\")"
                );
            }
            println!(
                "next: cd {} && cargo test && cargo build --release --target wasm32-wasip2",
                opts.dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kuryr6 plugin new: {e}");
            ExitCode::from(2)
        }
    }
}

/// Files of a fleet that cannot run together.
fn fleet_clashes(loaded: &[Loaded], job: &Job) -> Vec<Located> {
    // Two files of one pipeline name would share its resources and lease.
    let mut names: std::collections::BTreeMap<&str, &Loaded> = Default::default();
    let mut clashes = Vec::new();
    for l in loaded {
        if let Some(other) = names.insert(&l.plan.pipeline, l) {
            clashes.push(Located::operational(
                &l.source.display_path(),
                "usage",
                format!(
                    "pipeline name \"{}\" is also the name of {}: each site needs its own pipeline name (it goes into the ownership tags)",
                    l.plan.pipeline,
                    other.source.display_path()
                ),
                None,
            ));
        }
    }
    // Two sites writing one emit directory would overwrite each other's
    // kuryr.conf; judged over every file, as the policy is.
    if let Job::Run { out, .. } = job {
        for (file, message) in kuryr6::fleet::emit_dir_clashes(loaded, out.as_deref()) {
            clashes.push(Located::operational(&file, "usage", message, None));
        }
    }
    clashes
}

/// Usage errors found before any call: printed, exit 2.
fn usage_errors(errors: &[Located], format: Format) -> ExitCode {
    match format {
        Format::Json => println!("{}", error_document(errors)),
        Format::Text => errors
            .iter()
            .for_each(|c| eprintln!("kuryr6: {}: {}", c.file, c.message)),
    }
    ExitCode::from(2)
}

/// `plan|run|destroy` over several files (or one with --shard): every file
/// loaded and the cross-site policy applied before any site touches a
/// cloud, then the sites side by side, then one summary.
fn run_fleet(
    paths: &[PathBuf],
    job: Job,
    opts: &FleetOpts,
    cloud: &CloudOpts,
    format: Format,
    detailed: bool,
) -> ExitCode {
    use kuryr6::fleet::{self, FleetOptions, Site, Summary};
    // A summary left by an earlier run must not stand for this one.
    if let Some(file) = &opts.summary {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!(
                    "kuryr6: cannot remove the old summary {}: {e}",
                    file.display()
                );
                return ExitCode::from(1);
            }
        }
    }
    let Some(loaded) = load_all(paths, format) else {
        return ExitCode::from(2);
    };
    let clashes = fleet_clashes(&loaded, &job);
    if !clashes.is_empty() {
        return usage_errors(&clashes, format);
    }
    let total = loaded.len();
    let sites: Vec<Site> = loaded
        .into_iter()
        .filter(|l| opts.shard.is_none_or(|s| s.takes(&l.plan.pipeline)))
        .map(|l| Site {
            key: CloudKey::resolve(l.cloud.as_ref(), cloud.os_cloud.as_deref(), true),
            loaded: l,
        })
        .collect();
    if format == Format::Text {
        for s in &sites {
            eprint!("{}", diag::render(&s.loaded.source, &s.loaded.warnings));
        }
        let shard = opts
            .shard
            .map(|s| format!(", shard {s}"))
            .unwrap_or_default();
        eprintln!(
            "kuryr6 {}: {} of {total} site(s){shard}, {} at once; all {total} file(s) valid and the cross-site policy passed",
            job.name(),
            sites.len(),
            opts.parallel
        );
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kuryr6: {e}");
            return ExitCode::from(1);
        }
    };
    let connector = fleet::run::OpenStackConnector {
        base: cloud.args(),
        gates: kuryr6::cloud::gate::EndpointGates::new(opts.max_in_flight as usize),
        discovery: kuryr6::cloud::Discovery::from_process(),
    };
    // A site whose cloud cannot be resolved (no such clouds.yaml entry, a
    // bad interface) is found before any site makes a call.
    let unresolved: Vec<Located> = sites
        .iter()
        .filter_map(|s| {
            let e = connector.config(&s.key).err()?;
            Some(Located::operational(
                &s.loaded.source.display_path(),
                "cloud.config",
                format!("site {}: {e}", s.loaded.plan.pipeline),
                None,
            ))
        })
        .collect();
    if !unresolved.is_empty() {
        return usage_errors(&unresolved, format);
    }
    let options = FleetOptions {
        parallel: opts.parallel as usize,
        fail_fast: opts.fail_fast,
        progress: format == Format::Text,
    };
    let started = std::time::Instant::now();
    let reports = runtime.block_on(fleet::converge(&sites, &job, &connector, &options));
    let shards = opts.shard.map(|s| vec![s.to_string()]).unwrap_or_default();
    let summary = Summary::new(job.name(), shards, reports, started.elapsed().as_secs_f64());
    print_summary(&summary, format);
    if let Some(file) = &opts.summary
        && let Err(e) = write_summary(file, &summary)
    {
        eprintln!("kuryr6: cannot write the summary {}: {e}", file.display());
        return ExitCode::from(1);
    }
    ExitCode::from(summary.exit_code(detailed))
}

fn print_summary(summary: &kuryr6::fleet::Summary, format: Format) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("a summary serializes")
        ),
        Format::Text => print!("{}", summary.table()),
    }
}

/// `kuryr6 report merge`: exit 2 when a file is not a summary or the
/// shards overlap; else the merged summary's exit code.
fn report_merge(files: &[PathBuf], format: Format, detailed: bool) -> ExitCode {
    let mut parts = Vec::new();
    for f in files {
        let label = f.display().to_string();
        let parsed = std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read {label}: {e}"))
            .and_then(|t| {
                serde_json::from_str::<kuryr6::fleet::Summary>(&t).map_err(|e| {
                    format!("{label} is not a fleet summary (`plan|run|destroy FILES… --format json`): {e}")
                })
            });
        match parsed {
            Ok(s) => parts.push((label, s)),
            Err(e) => {
                eprintln!("kuryr6 report merge: {e}");
                return ExitCode::from(2);
            }
        }
    }
    match kuryr6::fleet::summary::merge(parts) {
        Ok(summary) => {
            print_summary(&summary, format);
            ExitCode::from(summary.exit_code(detailed))
        }
        Err(e) => {
            eprintln!("kuryr6 report merge: {e}");
            ExitCode::from(2)
        }
    }
}
