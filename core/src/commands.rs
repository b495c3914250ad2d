//! The cloud commands (`plan`, `run`, `destroy`) from loaded pipeline to
//! printed result. `main.rs` parses arguments; this module does the work.

use crate::cloud::CloudError;
use crate::cloud::config::{Auth, CloudConfig, Discovery, Domain, ProjectScope, User};
use crate::cloud::openstack::{ConnectOptions, OpenStack};
use crate::emit::{self, WriteOutcome};
use crate::engine::diff::{Action, ChangeSet};
use crate::engine::progress::Progress;
use crate::engine::{self, DestroyOptions, EngineError, RunOptions};
use crate::load::Loaded;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to reach the cloud, from the command line.
#[derive(Debug, Clone, Default)]
pub struct CloudArgs {
    /// `--os-cloud`; falls back to OS_CLOUD, then the OS_* variables.
    pub os_cloud: Option<String>,
    /// `--insecure`: skip TLS verification (explicit opt-out only).
    pub insecure: bool,
    /// `--os-cacert`: extra CA bundle.
    pub cacert: Option<PathBuf>,
}

/// Why a cloud command failed, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

impl From<CloudError> for CommandError {
    fn from(e: CloudError) -> Self {
        CommandError::Engine(EngineError::Cloud(e))
    }
}

pub async fn connect(args: &CloudArgs) -> Result<OpenStack, CloudError> {
    let mut config = Discovery::from_process().load(args.os_cloud.as_deref())?;
    if args.insecure {
        config.verify_tls = false;
    }
    if let Some(ca) = &args.cacert {
        config.cacert = Some(ca.clone());
    }
    OpenStack::connect(&config, ConnectOptions::default()).await
}

/// Ids from the run, plus the non-secret Keystone options of the cloud
/// kuryr6 used, for kuryr.conf's `[neutron]` section.
struct RunIds<'a> {
    ids: &'a engine::apply::IdMap,
    config: &'a CloudConfig,
}

impl emit::Ids for RunIds<'_> {
    fn project(&self) -> String {
        self.ids.project()
    }
    fn id(&self, kind: crate::plan::StepKind, name: &str) -> String {
        self.ids.id(kind, name)
    }
    fn neutron_auth(&self) -> Vec<(String, String)> {
        neutron_auth(self.config)
    }
}

/// keystoneauth options naming who kuryr logs in as. The password, token or
/// application-credential secret is deliberately absent.
pub fn neutron_auth(config: &CloudConfig) -> Vec<(String, String)> {
    let mut o: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: &str| o.push((k.to_string(), v.to_string()));
    let domain = |put: &mut dyn FnMut(&str, &str), prefix: &str, d: &Domain| match d {
        Domain::Id(id) => put(&format!("{prefix}_domain_id"), id),
        Domain::Name(n) => put(&format!("{prefix}_domain_name"), n),
    };
    let user = |put: &mut dyn FnMut(&str, &str), u: &User| match u {
        User::Id(id) => put("user_id", id),
        User::Name { name, domain: d } => {
            put("username", name);
            domain(put, "user", d);
        }
    };
    let project = |put: &mut dyn FnMut(&str, &str), p: &ProjectScope| match p {
        ProjectScope::Id(id) => put("project_id", id),
        ProjectScope::Name { name, domain: d } => {
            put("project_name", name);
            domain(put, "project", d);
        }
    };
    match &config.auth {
        Auth::Password {
            user: u,
            project: p,
            ..
        } => {
            put("auth_type", "password");
            put("auth_url", &config.auth_url);
            user(&mut put, u);
            project(&mut put, p);
        }
        Auth::ApplicationCredential {
            id, name, user: u, ..
        } => {
            put("auth_type", "v3applicationcredential");
            put("auth_url", &config.auth_url);
            if let Some(id) = id {
                put("application_credential_id", id);
            }
            if let Some(n) = name {
                put("application_credential_name", n);
            }
            if let Some(u) = u {
                user(&mut put, u);
            }
        }
        // A token expires: kuryr needs a lasting credential, so only the
        // endpoint is written and the operator picks the login.
        Auth::Token { .. } => put("auth_url", &config.auth_url),
    }
    if let Some(region) = &config.region {
        put("region_name", region);
    }
    if let Some(ca) = &config.cacert {
        put("cafile", &ca.display().to_string());
    }
    if !config.verify_tls {
        put("insecure", "true");
    }
    o
}

/// The text view of a change set: one line per resource that changes,
/// its changed fields below it, and a summary line.
pub fn render_changes(set: &ChangeSet, verbose: bool) -> String {
    let mut out = String::new();
    for c in &set.changes {
        let sign = match c.action {
            Action::NoOp if !verbose => continue,
            Action::NoOp => "=",
            Action::Create => "+",
            Action::Update => "~",
            Action::Adopt => "&",
            Action::Replace => "±",
            Action::Delete => "-",
        };
        let what = match c.action {
            Action::Adopt => " (adopt: tag and manage)",
            Action::Replace => " (delete and re-create)",
            _ => "",
        };
        out.push_str(&format!("  {sign} {}{what}\n", c.target));
        for f in &c.fields {
            out.push_str(&format!("      {}: {} → {}\n", f.field, f.from, f.to));
        }
    }
    for r in &set.refusals {
        out.push_str(&format!("  ! {r}\n"));
    }
    let unchanged = set.count(Action::NoOp);
    if set.pending() {
        out.push_str(&format!(
            "Plan: {} to create, {} to update, {} to adopt, {} to replace, {} to delete, {unchanged} unchanged.\n",
            set.count(Action::Create),
            set.count(Action::Update),
            set.count(Action::Adopt),
            set.count(Action::Replace),
            set.count(Action::Delete),
        ));
    } else {
        out.push_str(&format!(
            "No changes: all {unchanged} resources match the pipeline.\n"
        ));
    }
    out
}

/// `kuryr6 plan` against the cloud. Returns whether changes are pending.
pub async fn plan(
    loaded: &Loaded,
    cloud: &OpenStack,
    options: RunOptions,
    json_out: bool,
) -> Result<bool, CommandError> {
    let obs = engine::observe(cloud, &loaded.plan).await?;
    let set = engine::diff(&loaded.plan, &obs, options);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({ "file": loaded.source.display_path(), "project": obs.project_id, "pending": set.pending(), "changes": set })).expect("serializes"));
    } else {
        println!(
            "pipeline {} ({}) against {}",
            loaded.plan.pipeline,
            loaded.source.display_path(),
            cloud.config().label()
        );
        print!("{}", render_changes(&set, false));
    }
    Ok(set.pending())
}

/// `kuryr6 run`: converge, then emit with the real ids.
pub async fn run(
    loaded: &Loaded,
    cloud: &OpenStack,
    options: RunOptions,
    out_dir: Option<&Path>,
    json_out: bool,
) -> Result<(), CommandError> {
    let progress = Progress::new(!json_out);
    let started = Instant::now();
    let plan = &loaded.plan;
    let obs = engine::observe(cloud, plan).await?;
    let set = engine::diff(plan, &obs, options);
    if !set.refusals.is_empty() {
        return Err(EngineError::Refused(set.refusals.clone()).into());
    }
    progress.note(&format!(
        "pipeline {} against {}: read the cloud in {:.2} s",
        plan.pipeline,
        cloud.config().label(),
        started.elapsed().as_secs_f64()
    ));
    if !json_out {
        eprint!("{}", render_changes(&set, false));
    }
    let applied = engine::apply(cloud, plan, &obs, &set, &progress).await?;

    let mut written = Vec::new();
    for e in plan.emits() {
        let dir = emit::out_dir(e, &loaded.source.path, out_dir);
        let ids = RunIds {
            ids: &applied.ids,
            config: cloud.config(),
        };
        let outputs = emit::render(plan, e, &ids);
        let result = emit::write(&outputs, &dir).map_err(|error| CommandError::Write {
            path: dir.display().to_string(),
            error,
        })?;
        written.extend(result);
    }
    let elapsed = started.elapsed();
    if json_out {
        let files: Vec<_> = written
            .iter()
            .map(|(p, o)| json!({ "path": p, "outcome": o }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({
            "pipeline": plan.pipeline,
            "changes": set,
            "created": applied.created, "updated": applied.updated, "adopted": applied.adopted, "deleted": applied.deleted,
            "files": files,
            "seconds": elapsed.as_secs_f64(),
        })).expect("serializes"));
    } else {
        for (path, outcome) in &written {
            let word = match outcome {
                WriteOutcome::Created => "wrote",
                WriteOutcome::Updated => "updated",
                WriteOutcome::Unchanged => "unchanged",
            };
            println!("{word} {}", path.display());
        }
        println!(
            "done in {:.2} s: {} created, {} updated, {} adopted, {} deleted",
            elapsed.as_secs_f64(),
            applied.created,
            applied.updated,
            applied.adopted,
            applied.deleted
        );
    }
    Ok(())
}

/// `kuryr6 destroy`.
pub async fn destroy(
    loaded: &Loaded,
    cloud: &OpenStack,
    options: DestroyOptions,
    json_out: bool,
) -> Result<(), CommandError> {
    let progress = Progress::new(!json_out);
    let started = Instant::now();
    let done = engine::destroy(cloud, &loaded.plan, options, &progress).await?;
    if json_out {
        println!(
            "{}",
            json!({ "pipeline": loaded.plan.pipeline, "deleted": done.deleted, "deleted_ports": done.deleted_ports, "seconds": started.elapsed().as_secs_f64() })
        );
    } else {
        println!(
            "destroyed pipeline {}: {} resources and {} Kuryr ports deleted in {:.2} s",
            loaded.plan.pipeline,
            done.deleted,
            done.deleted_ports.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
