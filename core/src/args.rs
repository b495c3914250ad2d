//! The command line's arguments: every subcommand and option as clap
//! derives them, with the few conversions into the library's option types.
//! `main.rs` dispatches on them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use kuryr6::commands::CloudArgs;
use kuryr6::engine::lease::LeaseOptions;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "kuryr6",
    version,
    about = "Kuryr IPv6 / dual-stack networking for Kubernetes on OpenStack, as one command",
    long_about = "Turns Kuryr's IPv6 guide into one command: reads pipeline.toml, computes and \
validates the IPv6 address plan before any API call, converges Neutron and Octavia resources \
idempotently, and emits kuryr.conf, kube-apiserver flags and a kubeadm config.\n\n\
The cloud comes from clouds.yaml (+ secure.yaml) as with the openstack CLI: --os-cloud or \
OS_CLOUD, else the OS_* variables.\n\n\
Exit codes: 0 success, 1 operational failure (cloud, refusal, I/O), 2 invalid pipeline or \
usage, 3 changes pending (plan --detailed-exitcode), 4 the plan has refusals: `run` would \
refuse it as it stands (plan)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

/// How to reach the cloud.
#[derive(Args, Clone)]
pub(crate) struct CloudOpts {
    /// Cloud name in clouds.yaml (default: OS_CLOUD, then the OS_* variables).
    #[arg(long, env = "OS_CLOUD")]
    pub(crate) os_cloud: Option<String>,
    /// Extra CA bundle (PEM) to trust for TLS.
    #[arg(long, env = "OS_CACERT")]
    pub(crate) os_cacert: Option<PathBuf>,
    /// Do not verify TLS certificates (never the default).
    #[arg(long)]
    pub(crate) insecure: bool,
}

impl CloudOpts {
    pub(crate) fn args(&self) -> CloudArgs {
        CloudArgs {
            os_cloud: self.os_cloud.clone(),
            insecure: self.insecure,
            cacert: self.os_cacert.clone(),
            ..CloudArgs::default()
        }
    }
}

/// Several pipelines at once (a fleet of sites); see README, "A fleet of sites".
#[derive(Args, Clone)]
pub(crate) struct FleetOpts {
    /// Sites converging at once (several files).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) parallel: u32,
    /// Stop starting sites once one failed (those not started are reported as skipped).
    #[arg(long)]
    pub(crate) fail_fast: bool,
    /// Take only this runner's share of the sites: K/N, 0 ≤ K < N (rendezvous hashing on the
    /// pipeline name; every file is still loaded and judged by the cross-site policy).
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<kuryr6::fleet::Shard>,
    /// Requests in flight per API endpoint, shared by all sites on it.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) max_in_flight: u32,
    /// Also write the fleet's JSON summary to FILE, whatever --format says (for a container with
    /// no shell to redirect stdout). Removed when the command starts and written whole at its end,
    /// so a runner that stops early leaves none and `report merge` names its shard missing.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,
}

impl FleetOpts {
    /// One file, no shard and no summary file: the single-pipeline command, as it always was.
    pub(crate) fn single(&self, pipelines: &[PathBuf]) -> bool {
        pipelines.len() == 1 && self.shard.is_none() && self.summary.is_none()
    }
}

/// How a writing command waits for another run of the same pipeline.
#[derive(Args, Clone)]
pub(crate) struct LockOpts {
    /// Seconds to wait for another run of this pipeline to finish; 0 refuses at once, naming the
    /// holder.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) lock_wait: u64,
}

impl LockOpts {
    pub(crate) fn options(&self) -> LeaseOptions {
        LeaseOptions {
            wait: std::time::Duration::from_secs(self.lock_wait),
        }
    }
}

/// What the commands that write to a fleet of sites (`run`, `destroy`) share.
#[derive(Args, Clone)]
pub(crate) struct WriteOpts {
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
    #[command(flatten)]
    pub(crate) lock: LockOpts,
    #[command(flatten)]
    pub(crate) fleet: FleetOpts,
    #[command(flatten)]
    pub(crate) cloud: CloudOpts,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Show what a pipeline does: against the cloud, the changes per resource; with --offline,
    /// every step with every computed field and the emitted files.
    Plan {
        /// Pipeline files (pipeline.toml); several make a fleet (one summary line per site). A
        /// directory stands for its *.toml files.
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        /// Compute the plan without contacting a cloud; ids in emitted files are placeholders.
        /// Cloud-only flags (--adopt, --replace, --detailed-exitcode, --os-cloud, --os-cacert,
        /// --insecure) are usage errors with it.
        #[arg(long, conflicts_with_all = ["detailed_exitcode", "adopt", "replace", "insecure", "summary"])]
        offline: bool,
        /// Output format; json is documented in README.md.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit 3 when changes are pending, 0 when none (cloud plan only).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan adoption of same-named resources kuryr6 does not own.
        #[arg(long)]
        adopt: bool,
        /// Plan delete-and-re-create where immutable fields changed.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        fleet: FleetOpts,
        #[command(flatten)]
        cloud: CloudOpts,
    },
    /// Validate pipeline files and report every problem of every file (no cloud needed).
    Check {
        /// Pipeline files; a directory stands for its *.toml files.
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Converge the cloud to the pipeline, then emit kuryr.conf, kube-apiserver.flags and kubeadm.yaml.
    Run {
        /// Pipeline files; several make a fleet converged side by side. A directory stands for
        /// its *.toml files.
        #[arg(required = true, value_name = "PIPELINE")]
        pipelines: Vec<PathBuf>,
        /// Directory for emitted files (default: the emit step's dir, relative to the pipeline;
        /// a fleet writes into DIR/<site>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Tag and manage same-named resources that kuryr6 does not own (otherwise they block the run).
        #[arg(long)]
        adopt: bool,
        /// Delete and re-create resources whose immutable fields (cidr, ip_version, VIP) changed.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Delete what this pipeline created, in reverse order; never touches what it does not own.
    Destroy {
        /// Pipeline files; several make a fleet. A directory stands for its *.toml files.
        #[arg(required = true, value_name = "PIPELINE")]
        pipelines: Vec<PathBuf>,
        /// Also delete ports carrying this pipeline's Kuryr resource_tags (Kuryr's pod and LB ports).
        #[arg(long)]
        delete_kuryr_ports: bool,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Keep the oldest of each set of same-named resources the pipeline owns and delete the
    /// others (what overlapping runs of older versions, or adopted copies, can leave).
    Dedupe {
        pipeline: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        lock: LockOpts,
        #[command(flatten)]
        cloud: CloudOpts,
    },
    /// Remove the pipeline's lease whoever holds it: for a run gone for good on another machine
    /// (on the same machine, a dead run's lease is cleared by the next run by itself).
    Unlock {
        pipeline: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        cloud: CloudOpts,
    },
    /// Read an existing Kuryr deployment (read-only) and write the pipeline that reproduces it:
    /// the short form when it follows the guide, explicit steps with a comment on each
    /// deviation otherwise. Then `kuryr6 run --adopt` takes it over by writing tags only.
    Import {
        /// kuryr.conf of the cluster: its pod_subnet, service_subnet, pod_security_groups and
        /// project lead the walk (default: find the guide's names).
        #[arg(long, value_name = "PATH")]
        kuryr_conf: Option<PathBuf>,
        /// Pipeline name (goes into the ownership tags).
        #[arg(long, default_value = "kuryr")]
        name: String,
        /// Write the pipeline here (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        cloud: CloudOpts,
    },
    /// Draw the plan: topology (networks, subnets, router, security groups, load balancer) and
    /// each subnet's address plan to scale. Offline unless --os-cloud is given; against a cloud,
    /// pending creates, updates and deletes are marked.
    Graph {
        pipeline: PathBuf,
        #[arg(long, value_enum, default_value = "svg")]
        format: GraphFormat,
        /// Write here (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Cloud to compare with (clouds.yaml name). Only this flag contacts a cloud: an exported
        /// OS_CLOUD alone keeps the graph offline.
        #[arg(long)]
        os_cloud: Option<String>,
        /// Extra CA bundle (PEM) to trust for TLS.
        #[arg(long, env = "OS_CACERT")]
        os_cacert: Option<PathBuf>,
        /// Do not verify TLS certificates.
        #[arg(long)]
        insecure: bool,
    },
    /// Work with fleet summaries (`--format json` of plan/run/destroy over several files).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Develop WebAssembly plugins: run a hook on a fixture, show a plugin's identity.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Print a shell completion script: `kuryr6 completions bash > /etc/bash_completion.d/kuryr6`.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the man page (roff) on stdout, or with --dir write one page per command there.
    Man {
        /// Write kuryr6.1 and kuryr6-<command>.1 into this directory instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    Svg,
    Dot,
    Mermaid,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
pub(crate) enum ReportCommand {
    /// Combine the JSON summaries of the shards of one fleet command into one summary.
    Merge {
        /// Summary files; a directory stands for its *.json files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit 3 when a site of a merged plan has pending changes.
        #[arg(long)]
        detailed_exitcode: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
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
    /// Print a plugin's sha256 (to pin it), name, hooks, version, contract and load time.
    Info { wasm: PathBuf },
    /// Scaffold a Rust plugin crate: builds for wasm32-wasip2, tests itself with `cargo test`.
    New {
        /// Crate and plugin name, e.g. acme-naming.
        name: String,
        /// Where to create it (default ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Hooks to implement, each with an example and fixtures.
        #[arg(long, value_delimiter = ',', default_value = "naming", value_parser = ["plan", "naming", "policy"])]
        hooks: Vec<String>,
        /// kuryr6-plugin-sdk as a path dependency (a kuryr6 checkout's sdk/);
        /// default: the checkout this kuryr6 was built from, if present.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Publish a plugin to an OCI registry (CNCF wasm layout), with its minisign signature.
    Push {
        /// The plugin (.wasm component).
        wasm: PathBuf,
        /// oci://HOST[:PORT]/NAMESPACE/NAME:TAG
        target: String,
        /// minisign signature of the .wasm (default: <wasm>.minisig when it exists).
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
        /// Allow plain HTTP to a registry that is not on loopback.
        #[arg(long)]
        insecure: bool,
    },
    /// Fetch a plugin (oci://…:TAG or oci://…@sha256:…) into the local store; print its digests
    /// and signer.
    Pull {
        source: String,
        /// Allow plain HTTP to a registry that is not on loopback.
        #[arg(long)]
        insecure: bool,
    },
    /// Resolve every oci:// plugin of the pipelines and record it in kuryr6.lock beside them.
    Lock {
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        /// Accept sources that now resolve to other content than the lock records.
        #[arg(long)]
        update: bool,
    },
    /// Check plugins against their lock entry, pin and signature; say what was found.
    Verify {
        /// A pipeline file (every [[plugin]]) or a .wasm (with <wasm>.minisig).
        target: PathBuf,
        /// Extra trusted key (RW… or a .pub file) for a .wasm.
        #[arg(long, value_name = "KEY")]
        key: Vec<String>,
    },
}
