//! Converging the sites of a fleet side by side.
//!
//! All sites run in one task (`buffer_unordered`): the engine's futures need
//! not be `Send`, and the work is waiting on clouds, not computing. Sites
//! that resolve to the same `CloudKey` share one login: the first of them
//! connects, the others wait for that connection and reuse it (one token,
//! one HTTP client). One site failing ends that site only, unless
//! `--fail-fast`: then sites not yet started are skipped.

use super::CloudKey;
use super::summary::{SiteReport, Status};
use crate::cloud::config::{CloudConfig, Discovery};
use crate::cloud::gate::EndpointGates;
use crate::cloud::openstack::{ConnectOptions, OpenStack};
use crate::cloud::{Cloud, CloudError};
use crate::commands::{CloudArgs, CommandError};
use crate::emit;
use crate::engine::change::{Action, ChangeSet};
use crate::engine::converge::{self, Converged};
use crate::engine::lease::{self, LeaseOptions};
use crate::engine::progress::{self, Progress};
use crate::engine::{self, DestroyOptions, RunOptions};
use crate::load::Loaded;
use futures::{FutureExt, StreamExt};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// One site: a loaded pipeline and the cloud it converges.
pub struct Site {
    pub loaded: Loaded,
    pub key: CloudKey,
}

/// What to do to every site.
#[derive(Debug, Clone)]
pub enum Job {
    Plan(RunOptions),
    Run {
        options: RunOptions,
        lease: LeaseOptions,
        /// `--out DIR`: each site writes into `DIR/<site>`; otherwise into
        /// its emit step's dir, relative to its own file.
        out: Option<PathBuf>,
    },
    Destroy {
        options: DestroyOptions,
        lease: LeaseOptions,
    },
}

impl Job {
    pub fn name(&self) -> &'static str {
        match self {
            Job::Plan(_) => "plan",
            Job::Run { .. } => "run",
            Job::Destroy { .. } => "destroy",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Sites in progress at once.
    pub parallel: usize,
    pub fail_fast: bool,
    /// Per-site progress lines on stderr.
    pub progress: bool,
}

/// A logged-in cloud and what the summary and kuryr.conf say about it.
pub struct Connected<C> {
    pub cloud: C,
    /// Never a secret: the entry name (`cloud "east"`).
    pub label: String,
    /// kuryr.conf's `[neutron]` keystoneauth options (`commands::neutron_auth`).
    pub neutron_auth: Vec<(String, String)>,
}

/// Makes the client of a cloud key. The real one reads clouds.yaml
/// (`OpenStackConnector`); tests and benchmarks hand out fakes.
#[allow(async_fn_in_trait)]
pub trait Connector {
    type Cloud: Cloud;
    async fn connect(&self, key: &CloudKey) -> Result<Connected<Self::Cloud>, CloudError>;
}

type Slot<C> = Rc<tokio::sync::OnceCell<Result<Rc<Connected<C>>, CloudError>>>;

/// One connection per key, made by the first site that needs it.
struct Connections<'a, K: Connector> {
    connector: &'a K,
    slots: RefCell<HashMap<CloudKey, Slot<K::Cloud>>>,
}

impl<K: Connector> Connections<'_, K> {
    async fn get(&self, key: &CloudKey) -> Result<Rc<Connected<K::Cloud>>, CloudError> {
        let slot = self
            .slots
            .borrow_mut()
            .entry(key.clone())
            .or_default()
            .clone();
        slot.get_or_init(|| async { self.connector.connect(key).await.map(Rc::new) })
            .await
            .clone()
    }
}

/// Runs `job` on every site, at most `options.parallel` at once; one report
/// per site, in no particular order (`Summary::new` sorts).
pub async fn converge<K: Connector>(
    sites: &[Site],
    job: &Job,
    connector: &K,
    options: &FleetOptions,
) -> Vec<SiteReport> {
    let connections = Connections {
        connector,
        slots: RefCell::new(HashMap::new()),
    };
    let stop = Cell::new(false);
    futures::stream::iter(sites)
        .map(|site| one_site(site, job, &connections, options, &stop))
        .buffer_unordered(options.parallel.max(1))
        .collect()
        .await
}

async fn one_site<K: Connector>(
    site: &Site,
    job: &Job,
    connections: &Connections<'_, K>,
    options: &FleetOptions,
    stop: &Cell<bool>,
) -> SiteReport {
    let name = &site.loaded.plan.pipeline;
    let mut report = SiteReport::new(name, &site.loaded.source.display_path(), &site.key.label());
    if stop.get() {
        report.status = Status::Skipped;
        report.error = Some("not started: another site failed and --fail-fast was given".into());
        return report;
    }
    let progress = Progress::for_site(name, options.progress);
    let started = Instant::now();
    let work = async {
        let c = connections.get(&site.key).await?;
        report.project = c.cloud.project_id().await?;
        match job {
            Job::Plan(o) => plan(&site.loaded, &c, *o, &mut report, &progress).await,
            Job::Run {
                options,
                lease,
                out,
            } => {
                run(
                    &site.loaded,
                    &c,
                    *options,
                    *lease,
                    out.as_ref(),
                    &mut report,
                    &progress,
                )
                .await
            }
            Job::Destroy { options, lease } => {
                destroy(&site.loaded, &c, *options, *lease, &mut report, &progress).await
            }
        }
    };
    // All sites share one task: a panic (a bug) in one site must fail that
    // site, not abort the others half-applied with no summary.
    let result = match AssertUnwindSafe(progress::SITE_PREFIX.scope(format!("[{name}] "), work))
        .catch_unwind()
        .await
    {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(panic) => Err(format!(
            "internal error (a bug in kuryr6; please report it): {}",
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into())
        )),
    };
    report.seconds = started.elapsed().as_secs_f64();
    if let Err(e) = result {
        report.status = Status::Failed;
        report.error = Some(e.clone());
        // A run that failed half-way changed some resources: say which
        // counts, rather than zeros, and that a re-run finishes the rest.
        let done = progress.succeeded();
        if matches!(job, Job::Run { .. }) && done != Default::default() {
            report.created = done.created;
            report.updated = done.updated;
            report.deleted = done.deleted;
            report.adopted = done.adopted;
            report.error = Some(format!(
                "{e} (the site is half-applied: the counts are the changes made before the failure; run again to finish)"
            ));
        }
        progress.note(&format!("failed after {:.1} s: {e}", report.seconds));
        if options.fail_fast {
            stop.set(true);
        }
    } else {
        progress.note(&format!(
            "{} in {:.1} s",
            report.status.as_str(),
            report.seconds
        ));
    }
    report
}

fn count(report: &mut SiteReport, set: &ChangeSet) {
    report.created = set.count(Action::Create) + set.count(Action::Replace);
    report.updated = set.count(Action::Update);
    report.deleted = set.count(Action::Delete);
    report.adopted = set.count(Action::Adopt);
    report.unchanged = set.count(Action::NoOp);
}

/// The changes of a set that do something, for drift reports.
fn pending_detail(set: &ChangeSet) -> serde_json::Value {
    let changes: Vec<_> = set
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    json!({ "changes": changes, "refusals": set.refusals })
}

async fn plan<C: Cloud>(
    loaded: &Loaded,
    c: &Connected<C>,
    options: RunOptions,
    report: &mut SiteReport,
    progress: &Progress,
) -> Result<(), CommandError> {
    let obs = engine::observe(&c.cloud, &loaded.plan).await?;
    let set = engine::diff(&loaded.plan, &obs, options);
    count(report, &set);
    report.status = if !set.refusals.is_empty() {
        Status::Refused
    } else if set.pending() {
        Status::Pending
    } else {
        Status::Ok
    };
    if set.pending() || !set.refusals.is_empty() {
        report.detail = pending_detail(&set);
    }
    progress.note(&format!("against {}:", c.label));
    for line in crate::commands::render_changes(&set, false).lines() {
        progress.note(line);
    }
    Ok(())
}

/// `commands::run` for one site of a fleet: the same `converge`,
/// reporting counts instead of printing.
async fn run<C: Cloud>(
    loaded: &Loaded,
    c: &Connected<C>,
    options: RunOptions,
    lease_options: LeaseOptions,
    out: Option<&PathBuf>,
    report: &mut SiteReport,
    progress: &Progress,
) -> Result<(), CommandError> {
    let plan = &loaded.plan;
    let cloud = &c.cloud;
    let site_out = out.map(|o| o.join(&plan.pipeline));
    let emit_all = |applied: &engine::Applied| -> Result<_, CommandError> {
        let ids = crate::commands::RunIds {
            ids: &applied.ids,
            auth: &c.neutron_auth,
        };
        let mut files = Vec::new();
        for e in plan.emits() {
            let dir = emit::out_dir(e, &loaded.source.path, site_out.as_deref());
            let outputs = emit::render(plan, e, &ids);
            let written = emit::write(&outputs, &dir).map_err(|error| CommandError::Write {
                path: dir.display().to_string(),
                error,
            })?;
            files.extend(
                written
                    .into_iter()
                    .map(|(p, o)| json!({ "path": p, "outcome": o })),
            );
        }
        Ok(files)
    };
    let Converged {
        set,
        applied,
        emitted: files,
    } = converge::converge(
        cloud,
        plan,
        options,
        lease_options,
        progress,
        |_| {},
        emit_all,
    )
    .await?;
    report.created = applied.created;
    report.updated = applied.updated;
    report.deleted = applied.deleted;
    report.adopted = applied.adopted;
    report.unchanged = set.count(Action::NoOp);
    report.detail = json!({ "files": files });
    report.status = Status::Ok;
    Ok(())
}

async fn destroy<C: Cloud>(
    loaded: &Loaded,
    c: &Connected<C>,
    options: DestroyOptions,
    lease_options: LeaseOptions,
    report: &mut SiteReport,
    progress: &Progress,
) -> Result<(), CommandError> {
    let cloud = &c.cloud;
    let done = lease::with_lease(
        cloud,
        &loaded.plan.pipeline,
        lease_options,
        progress,
        true,
        async |lease| engine::destroy_fenced(cloud, &loaded.plan, options, progress, lease).await,
    )
    .await?;
    report.deleted = done.deleted;
    report.status = Status::Ok;
    if !done.deleted_ports.is_empty() {
        report.detail = json!({ "deleted_ports": done.deleted_ports });
    }
    Ok(())
}

/// The real clouds: entries of clouds.yaml (+ secure.yaml) found as the
/// `openstack` CLI finds them, all clients sharing per-endpoint gates.
pub struct OpenStackConnector {
    /// `--insecure`, `--os-cacert`; `os_cloud` is already in each key.
    pub base: CloudArgs,
    pub gates: Arc<EndpointGates>,
    pub discovery: Discovery,
}

impl OpenStackConnector {
    /// The clouds.yaml entry of `key`, with its region and interface applied.
    pub fn config(&self, key: &CloudKey) -> Result<CloudConfig, CloudError> {
        let mut config = self.discovery.load(key.name.as_deref())?;
        key.apply_to(&mut config)?;
        if self.base.insecure {
            config.verify_tls = false;
        }
        if let Some(ca) = &self.base.cacert {
            config.cacert = Some(ca.clone());
        }
        Ok(config)
    }
}

impl Connector for OpenStackConnector {
    type Cloud = OpenStack;
    async fn connect(&self, key: &CloudKey) -> Result<Connected<OpenStack>, CloudError> {
        let config = self.config(key)?;
        let options = ConnectOptions {
            gates: Some(self.gates.clone()),
            ..ConnectOptions::default()
        };
        let cloud = OpenStack::connect(&config, options).await?;
        Ok(Connected {
            label: config.label(),
            neutron_auth: crate::commands::neutron_auth(&config),
            cloud,
        })
    }
}

#[cfg(test)]
mod tests;

// Test support, not product: see the `fake` feature in Cargo.toml.
#[cfg(any(test, feature = "fake"))]
mod fake;
#[cfg(any(test, feature = "fake"))]
pub use fake::FakeConnector;
