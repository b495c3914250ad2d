//! The cloud commands (`plan`, `run`, `destroy`) from loaded pipeline to
//! printed result. `main.rs` parses arguments; this module does the work.

use crate::cloud::CloudError;
use crate::cloud::config::{Auth, CloudConfig, Discovery, Domain, ProjectScope, User};
use crate::cloud::openstack::{ConnectOptions, OpenStack};
use crate::emit::{self, WriteOutcome};
use crate::engine::change::{Action, ChangeSet};
use crate::engine::converge::{Converged, converge};
use crate::engine::lease::{self, LeaseOptions};
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
    /// The pipeline's `[cloud] region` / `interface`, over clouds.yaml's.
    pub region: Option<String>,
    pub interface: Option<String>,
}

/// Why a cloud command failed, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

impl CommandError {
    /// The error in the one JSON error shape (`diag::Located`): one entry per
    /// refusal or blocker, else one, with a stable code naming its kind.
    pub fn located(&self, file: &str) -> Vec<crate::diag::Located> {
        use crate::diag::Located;
        let one =
            |code: &str, message: String| vec![Located::operational(file, code, message, None)];
        match self {
            CommandError::Engine(EngineError::Cloud(e)) => {
                let code = match e {
                    CloudError::Auth(_) => "cloud.auth",
                    CloudError::NotFound { .. } => "cloud.not_found",
                    CloudError::Conflict { .. } => "cloud.conflict",
                    CloudError::RevisionChanged { .. } => "cloud.revision_changed",
                    CloudError::Rejected { .. } => "cloud.rejected",
                    CloudError::Unavailable(_) => "cloud.unavailable",
                    CloudError::Config(_) => "cloud.config",
                    CloudError::NoEndpoint(_) => "cloud.no_endpoint",
                };
                one(code, e.to_string())
            }
            CommandError::Engine(EngineError::Refused(lines)) => lines
                .iter()
                .map(|l| Located::operational(file, "refused", l.clone(), None))
                .collect(),
            CommandError::Engine(EngineError::Blocked(lines)) => lines
                .iter()
                .map(|l| Located::operational(file, "blocked", l.clone(), None))
                .collect(),
            CommandError::Engine(EngineError::Timeout(m)) => one("timeout", m.clone()),
            CommandError::Engine(EngineError::LeaseLost(m)) => one("lease_lost", m.clone()),
            CommandError::Write { .. } => one("write", self.to_string()),
        }
    }
}

impl From<CloudError> for CommandError {
    fn from(e: CloudError) -> Self {
        CommandError::Engine(EngineError::Cloud(e))
    }
}

pub async fn connect(args: &CloudArgs) -> Result<OpenStack, CloudError> {
    let mut config = Discovery::from_process().load(args.os_cloud.as_deref())?;
    let key = crate::cloud_choice::CloudKey {
        name: args.os_cloud.clone(),
        region: args.region.clone(),
        interface: args.interface.clone(),
    };
    key.apply_to(&mut config)?;
    if args.insecure {
        config.verify_tls = false;
    }
    if let Some(ca) = &args.cacert {
        config.cacert = Some(ca.clone());
    }
    OpenStack::connect(&config, ConnectOptions::default()).await
}

/// Ids from a run, plus the non-secret Keystone options of the cloud
/// kuryr6 used (`neutron_auth`), for kuryr.conf's `[neutron]` section.
pub(crate) struct RunIds<'a> {
    pub(crate) ids: &'a engine::ids::IdMap,
    pub(crate) auth: &'a [(String, String)],
}

impl emit::Ids for RunIds<'_> {
    fn project(&self) -> String {
        self.ids.project()
    }
    fn id(&self, kind: crate::plan::StepKind, name: &str) -> String {
        self.ids.id(kind, name)
    }
    fn neutron_auth(&self) -> Vec<(String, String)> {
        self.auth.to_vec()
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
    if !set.refusals.is_empty() {
        // Never "No changes": a refused plan cannot be applied as it stands.
        out.push_str(&format!(
            "Refused: {} problem(s) above must be resolved before `kuryr6 run` can apply this plan ({} to create, {} to update, {} to adopt, {} to replace, {} to delete, {unchanged} unchanged otherwise).\n",
            set.refusals.len(),
            set.count(Action::Create),
            set.count(Action::Update),
            set.count(Action::Adopt),
            set.count(Action::Replace),
            set.count(Action::Delete),
        ));
    } else if set.pending() {
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

/// What `kuryr6 plan` found, for its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOutcome {
    /// Changes are pending.
    pub pending: bool,
    /// `run` would refuse (see `ChangeSet::refusals`).
    pub refused: bool,
}

/// `kuryr6 plan` against the cloud.
pub async fn plan(
    loaded: &Loaded,
    cloud: &OpenStack,
    options: RunOptions,
    json_out: bool,
) -> Result<PlanOutcome, CommandError> {
    let obs = engine::observe(cloud, &loaded.plan).await?;
    let set = engine::diff(&loaded.plan, &obs, options);
    let outcome = PlanOutcome {
        pending: set.pending(),
        refused: !set.refusals.is_empty(),
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({ "file": loaded.source.display_path(), "project": obs.project_id, "pending": outcome.pending, "refused": outcome.refused, "changes": set })).expect("serializes"));
    } else {
        println!(
            "pipeline {} ({}) against {}",
            loaded.plan.pipeline,
            loaded.source.display_path(),
            cloud.config().label()
        );
        print!("{}", render_changes(&set, false));
    }
    Ok(outcome)
}

/// `kuryr6 run`: converge, then emit with the real ids.
pub async fn run(
    loaded: &Loaded,
    cloud: &OpenStack,
    options: RunOptions,
    lease_options: LeaseOptions,
    out_dir: Option<&Path>,
    json_out: bool,
) -> Result<(), CommandError> {
    let progress = Progress::new(!json_out);
    let started = Instant::now();
    let plan = &loaded.plan;
    let show = |set: &ChangeSet| {
        progress.note(&format!(
            "pipeline {} against {}: read the cloud in {:.2} s",
            plan.pipeline,
            cloud.config().label(),
            started.elapsed().as_secs_f64()
        ));
        if !json_out {
            eprint!("{}", render_changes(set, false));
        }
    };
    let auth = neutron_auth(cloud.config());
    let emit_all = |applied: &engine::Applied| -> Result<_, CommandError> {
        let mut written = Vec::new();
        for e in plan.emits() {
            let dir = emit::out_dir(e, &loaded.source.path, out_dir);
            let ids = RunIds {
                ids: &applied.ids,
                auth: &auth,
            };
            let outputs = emit::render(plan, e, &ids);
            let result = emit::write(&outputs, &dir).map_err(|error| CommandError::Write {
                path: dir.display().to_string(),
                error,
            })?;
            written.extend(result);
        }
        Ok(written)
    };
    let Converged {
        set,
        applied,
        emitted: written,
    } = converge(
        cloud,
        plan,
        options,
        lease_options,
        &progress,
        show,
        emit_all,
    )
    .await?;
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
    lease_options: LeaseOptions,
    json_out: bool,
) -> Result<(), CommandError> {
    let progress = Progress::new(!json_out);
    let started = Instant::now();
    let pipeline = &loaded.plan.pipeline;
    let done = lease::with_lease(
        cloud,
        pipeline,
        lease_options,
        &progress,
        true,
        async |lease| engine::destroy_fenced(cloud, &loaded.plan, options, &progress, lease).await,
    )
    .await?;
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

/// `kuryr6 dedupe`: keep the oldest of each set of same-named owned
/// resources, delete the rest (see `engine::dedupe`).
pub async fn dedupe(
    loaded: &Loaded,
    cloud: &OpenStack,
    lease_options: LeaseOptions,
    json_out: bool,
) -> Result<(), CommandError> {
    let progress = Progress::new(!json_out);
    let plan = &loaded.plan;
    let removed = lease::with_lease(
        cloud,
        &plan.pipeline,
        lease_options,
        &progress,
        false,
        async |lease| engine::dedupe::dedupe_fenced(cloud, plan, &progress, lease).await,
    )
    .await?;
    if json_out {
        println!(
            "{}",
            json!({ "pipeline": plan.pipeline, "deleted": removed })
        );
    } else if removed.is_empty() {
        println!("pipeline {}: no duplicates", plan.pipeline);
    } else {
        println!(
            "pipeline {}: deleted {} duplicate resource(s), kept the oldest of each name",
            plan.pipeline,
            removed.len()
        );
    }
    Ok(())
}

/// `kuryr6 unlock`: remove the pipeline's lease records, whoever holds them.
pub async fn unlock(
    loaded: &Loaded,
    cloud: &OpenStack,
    json_out: bool,
) -> Result<(), CommandError> {
    let removed = lease::unlock(cloud, &loaded.plan.pipeline).await?;
    if json_out {
        println!(
            "{}",
            json!({ "pipeline": loaded.plan.pipeline, "removed": removed })
        );
    } else if removed.is_empty() {
        println!("pipeline {}: no lease held", loaded.plan.pipeline);
    } else {
        for r in &removed {
            println!("removed lease of {r}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::change::{Change, Target};

    #[test]
    fn a_refused_plan_never_says_no_changes() {
        let set = ChangeSet {
            pipeline: "p".into(),
            changes: vec![Change {
                target: Target::Network {
                    name: "pods".into(),
                },
                action: Action::NoOp,
                id: Some("n1".into()),
                fields: Vec::new(),
            }],
            refusals: vec!["subnet `pod_subnet` (s1): cidr is … run again with --replace".into()],
        };
        let text = render_changes(&set, false);
        assert!(!text.contains("No changes"), "{text}");
        assert!(text.contains("  ! subnet `pod_subnet`"), "{text}");
        assert!(text.contains("Refused: 1 problem(s)"), "{text}");
        let clean = ChangeSet {
            refusals: Vec::new(),
            ..set
        };
        assert!(render_changes(&clean, false).contains("No changes: all 1 resources match"));
    }
}
