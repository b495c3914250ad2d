//! Renders what Kuryr and Kubernetes read from a plan: `kuryr.conf`,
//! `kube-apiserver.flags` and `kubeadm.yaml`.
//!
//! Emitters are pure: they take the plan and an `Ids` source (real cloud
//! ids after a run, clearly marked placeholders offline) and return text.
//! Writing is separate and skips files whose content is unchanged, so a
//! re-run writes nothing.

mod apiserver;
mod kubeadm;
pub mod kuryr_conf;

use crate::plan::{Emit, Plan, StepKind};
use std::path::{Path, PathBuf};

pub use apiserver::apiserver_flags;
pub use kubeadm::kubeadm_yaml;
pub use kuryr_conf::kuryr_conf;

/// Where emitted files get cloud ids from.
pub trait Ids {
    /// The project (tenant) id the resources live in.
    fn project(&self) -> String;
    /// The id of the resource a step named `name` of `kind` made.
    fn id(&self, kind: StepKind, name: &str) -> String;
    /// Keystone options of kuryr's `[neutron]` section (kuryr cannot start
    /// without them), never a secret; empty offline.
    fn neutron_auth(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Ids for offline plans: visibly not ids, so nobody deploys them by mistake.
pub struct OfflineIds;

impl Ids for OfflineIds {
    fn project(&self) -> String {
        "<offline:project>".into()
    }
    fn id(&self, kind: StepKind, name: &str) -> String {
        format!("<offline:{kind}:{name}>")
    }
}

pub const KURYR_CONF: &str = "kuryr.conf";
pub const APISERVER_FLAGS: &str = "kube-apiserver.flags";
pub const KUBEADM_YAML: &str = "kubeadm.yaml";

/// One emitted file: its name inside the emit directory and its text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Output {
    pub file: String,
    pub content: String,
}

/// Everything one emit step produces.
pub fn render(plan: &Plan, emit: &Emit, ids: &dyn Ids) -> Vec<Output> {
    let mut out = vec![
        Output {
            file: KURYR_CONF.into(),
            content: kuryr_conf(plan, emit, ids),
        },
        Output {
            file: APISERVER_FLAGS.into(),
            content: apiserver_flags(plan, plan.kubernetes.api_hosts.first()),
        },
    ];
    // With several API hosts each gets its own bind/advertise flags.
    if plan.kubernetes.api_hosts.len() > 1 {
        for host in &plan.kubernetes.api_hosts {
            out.push(Output {
                file: format!("kube-apiserver.{}.flags", host.name),
                content: apiserver_flags(plan, Some(host)),
            });
        }
    }
    out.push(Output {
        file: KUBEADM_YAML.into(),
        content: kubeadm_yaml(plan),
    });
    out
}

/// The directory an emit step writes to: `override_dir` if given, else the
/// step's `dir` relative to the pipeline file.
pub fn out_dir(emit: &Emit, pipeline_file: &Path, override_dir: Option<&Path>) -> PathBuf {
    if let Some(d) = override_dir {
        return d.to_path_buf();
    }
    let dir = Path::new(&emit.dir);
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        pipeline_file.parent().unwrap_or(Path::new(".")).join(dir)
    }
}

/// Whether writing changed a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    Created,
    Updated,
    Unchanged,
}

/// Writes outputs atomically (temp file + rename), leaving identical files
/// untouched so their mtime says when the configuration last changed.
pub fn write(outputs: &[Output], dir: &Path) -> std::io::Result<Vec<(PathBuf, WriteOutcome)>> {
    std::fs::create_dir_all(dir)?;
    let mut result = Vec::new();
    for o in outputs {
        let path = dir.join(&o.file);
        let outcome = match std::fs::read_to_string(&path) {
            Ok(existing) if existing == o.content => WriteOutcome::Unchanged,
            Ok(_) => WriteOutcome::Updated,
            Err(_) => WriteOutcome::Created,
        };
        if outcome != WriteOutcome::Unchanged {
            let tmp = dir.join(format!(".{}.tmp", o.file));
            std::fs::write(&tmp, &o.content)?;
            std::fs::rename(&tmp, &path)?;
        }
        result.push((path, outcome));
    }
    Ok(result)
}
