//! `kuryr6 import`: read an existing Kuryr deployment and write the
//! pipeline that reproduces it, so kuryr6 can take it over with `run
//! --adopt` (tags only) instead of re-creating it.
//!
//! Two halves: `read` walks the cloud (read-only: lists and gets, in the
//! token's project only) from kuryr.conf's ids or the guide's names into a
//! `Snapshot` of the APIs' own JSON; `write` (pure) turns a snapshot into
//! pipeline TOML text.

pub mod write;

#[cfg(test)]
mod tests;

use crate::cloud::{Cloud, CloudError, Kind, Query, Service};
use crate::engine::observe::{in_project, str_of};
use crate::engine::port_roles;
use crate::engine::value::belongs;
use crate::lower::DEFAULT_LB_NAME;
use serde_json::Value;

/// What kuryr.conf says about the deployment (`[neutron_defaults]` and
/// `[octavia_defaults]`); every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    pub project: Option<String>,
    pub pod_subnet: Option<String>,
    pub service_subnet: Option<String>,
    pub pod_security_groups: Vec<String>,
    pub ovs_bridge: Option<String>,
    pub resource_tags: Option<Vec<String>>,
    pub member_mode: Option<String>,
    /// `None` also when kuryr.conf says "default" (Octavia's default).
    pub octavia_provider: Option<String>,
}

/// Reads the options of kuryr.conf that locate the deployment.
pub fn parse_kuryr_conf(text: &str) -> Result<Hints, String> {
    use crate::emit::kuryr_conf::{DEFAULT_PROVIDER, opt};
    let conf = ini::Ini::load_from_str(text).map_err(|e| e.to_string())?;
    let get = |(section, key): opt::Opt| {
        conf.section(Some(section))
            .and_then(|s| s.get(key))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let list = |v: Option<String>| -> Option<Vec<String>> {
        v.map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
    };
    Ok(Hints {
        project: get(opt::PROJECT),
        pod_subnet: get(opt::POD_SUBNET),
        service_subnet: get(opt::SERVICE_SUBNET),
        pod_security_groups: list(get(opt::POD_SECURITY_GROUPS)).unwrap_or_default(),
        ovs_bridge: get(opt::OVS_BRIDGE),
        resource_tags: list(get(opt::RESOURCE_TAGS)),
        member_mode: get(opt::MEMBER_MODE),
        octavia_provider: get(opt::OCTAVIA_PROVIDER).filter(|p| p != DEFAULT_PROVIDER),
    })
}

/// The deployment as the APIs returned it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub project_id: String,
    pub pod_network: Value,
    pub pod_subnet: Value,
    pub service_network: Value,
    pub service_subnet: Value,
    /// Dual-stack: the other family's subnet on the pod network (kuryr.conf
    /// names one subnet per role, the first family's).
    pub pod_subnet_2: Option<Value>,
    /// Dual-stack: the other family's subnet on the service network.
    pub service_subnet_2: Option<Value>,
    /// The router with an interface on the pod or service subnet, if any.
    pub router: Option<Value>,
    /// That router's interface ports.
    pub router_ports: Vec<Value>,
    pub security_groups: Vec<Value>,
    /// Rules of `security_groups`.
    pub rules: Vec<Value>,
    pub loadbalancer: Option<LbSnapshot>,
    /// Options from kuryr.conf that go to the emit step.
    pub hints: Hints,
}

/// The API load balancer with its children.
#[derive(Debug, Clone, Default)]
pub struct LbSnapshot {
    pub lb: Value,
    pub listeners: Vec<Value>,
    pub pools: Vec<Value>,
    /// Members of `pools`, each with its `pool_id` as Octavia returns it.
    pub members: Vec<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// Something import needs is not there.
    #[error("{0}")]
    Missing(String),
    /// Several resources fit where one is needed.
    #[error("{0}")]
    Ambiguous(String),
    /// The deployment uses something a pipeline cannot express.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Conf(String),
}

/// The guide's names, tried when kuryr.conf does not give ids.
pub const GUIDE_POD_SUBNET: &str = "pod_subnet";
pub const GUIDE_SERVICE_SUBNET: &str = "service_subnet";
pub const GUIDE_SECURITY_GROUPS: [&str; 2] = ["service_pod_access_v6", "service_pod_access"];

async fn by_id<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    id: &str,
    project: &str,
    from: &str,
) -> Result<Value, ImportError> {
    let v = match cloud.get(kind, id).await {
        Err(CloudError::NotFound { .. }) => {
            return Err(ImportError::Missing(format!(
                "{kind} {id} ({from}) does not exist"
            )));
        }
        r => r?,
    };
    // An admin token reads every project: keep to the token's own.
    if str_of(&v, "project_id") != project {
        return Err(ImportError::Missing(format!(
            "{kind} {id} ({from}) belongs to project {}, not to the token's project {project}; import with a cloud scoped to that project",
            str_of(&v, "project_id")
        )));
    }
    Ok(v)
}

async fn one_named<C: Cloud>(
    cloud: &C,
    kind: &Kind,
    name: &str,
    project: &str,
) -> Result<Option<Value>, ImportError> {
    let q = in_project(project, vec![("name".into(), name.into())]);
    let mut found = cloud.list(kind, &q).await?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => {
            let ids: Vec<&str> = found.iter().map(|v| str_of(v, "id")).collect();
            Err(ImportError::Ambiguous(format!(
                "{n} {kind}s are named `{name}` ({}); give --kuryr-conf so import knows which one the cluster uses",
                ids.join(", ")
            )))
        }
    }
}

async fn subnet<C: Cloud>(
    cloud: &C,
    project: &str,
    id: Option<&str>,
    guide_name: &str,
    key: &str,
) -> Result<Value, ImportError> {
    match id {
        Some(id) => by_id(cloud, &Kind::Subnet, id, project, &format!("kuryr.conf {key}")).await,
        None => one_named(cloud, &Kind::Subnet, guide_name, project)
            .await?
            .ok_or_else(|| {
                ImportError::Missing(format!(
                    "no subnet named `{guide_name}` in project {project}; give --kuryr-conf (its {key} names the subnet by id)"
                ))
            }),
    }
}

/// Walks the deployment. Read-only: lists and gets, nothing else.
pub async fn read<C: Cloud>(cloud: &C, hints: &Hints) -> Result<Snapshot, ImportError> {
    let project = cloud.project_id().await?;
    if let Some(p) = &hints.project
        && *p != project
    {
        return Err(ImportError::Missing(format!(
            "kuryr.conf names project {p}, the token is scoped to project {project}; import with a cloud scoped to {p}"
        )));
    }
    let pod_subnet = subnet(
        cloud,
        &project,
        hints.pod_subnet.as_deref(),
        GUIDE_POD_SUBNET,
        "pod_subnet",
    )
    .await?;
    let service_subnet = subnet(
        cloud,
        &project,
        hints.service_subnet.as_deref(),
        GUIDE_SERVICE_SUBNET,
        "service_subnet",
    )
    .await?;
    let pod_network = by_id(
        cloud,
        &Kind::Network,
        str_of(&pod_subnet, "network_id"),
        &project,
        "network of the pod subnet",
    )
    .await?;
    let service_network = by_id(
        cloud,
        &Kind::Network,
        str_of(&service_subnet, "network_id"),
        &project,
        "network of the service subnet",
    )
    .await?;

    let pod_subnet_2 = other_family(cloud, &project, &pod_network, &pod_subnet).await?;
    let service_subnet_2 = other_family(cloud, &project, &service_network, &service_subnet).await?;

    let mut security_groups = Vec::new();
    if hints.pod_security_groups.is_empty() {
        for name in GUIDE_SECURITY_GROUPS {
            if let Some(sg) = one_named(cloud, &Kind::SecurityGroup, name, &project).await? {
                security_groups.push(sg);
                break;
            }
        }
    } else {
        for id in &hints.pod_security_groups {
            security_groups.push(
                by_id(
                    cloud,
                    &Kind::SecurityGroup,
                    id,
                    &project,
                    "kuryr.conf pod_security_groups",
                )
                .await?,
            );
        }
    }
    let rules = if security_groups.is_empty() {
        Vec::new()
    } else {
        let q: Query = security_groups
            .iter()
            .map(|sg| ("security_group_id".into(), str_of(sg, "id").into()))
            .collect();
        cloud.list(&Kind::SecurityGroupRule, &q).await?
    };

    // The router: the one with an interface on the pod or service subnet.
    let subnet_ids: Vec<&str> = [Some(&pod_subnet), pod_subnet_2.as_ref()]
        .into_iter()
        .chain([Some(&service_subnet), service_subnet_2.as_ref()])
        .flatten()
        .map(|s| str_of(s, "id"))
        .collect();
    // Interfaces of every router mode (legacy, DVR, L3-HA).
    let mut q = port_roles::interface_owner_filter();
    q.push(("network_id".into(), str_of(&pod_network, "id").into()));
    q.push(("network_id".into(), str_of(&service_network, "id").into()));
    let q = in_project(&project, q);
    let interface_ports = cloud.list(&Kind::Port, &q).await?;
    let mut router_ids: Vec<&str> = interface_ports
        .iter()
        .filter(|p| on_subnets(p, &subnet_ids))
        .map(|p| str_of(p, "device_id"))
        .collect();
    router_ids.sort_unstable();
    router_ids.dedup();
    let (router, router_ports) = match router_ids.as_slice() {
        [] => (None, Vec::new()),
        [id] => {
            let r = by_id(cloud, &Kind::Router, id, &project, "router of the subnets").await?;
            let mut q = port_roles::interface_owner_filter();
            q.push(("device_id".to_string(), id.to_string()));
            (Some(r), cloud.list(&Kind::Port, &q).await?)
        }
        many => {
            return Err(ImportError::Unsupported(format!(
                "{} routers have interfaces on the pod and service subnets ({}); a pipeline has one router",
                many.len(),
                many.join(", ")
            )));
        }
    };

    let loadbalancer = if cloud.has_service(Service::LoadBalancer).await? {
        read_lb(cloud, &project, str_of(&service_subnet, "id")).await?
    } else {
        None
    };

    Ok(Snapshot {
        project_id: project,
        pod_network,
        pod_subnet,
        service_network,
        service_subnet,
        pod_subnet_2,
        service_subnet_2,
        router,
        router_ports,
        security_groups,
        rules,
        loadbalancer,
        hints: hints.clone(),
    })
}

/// A dual-stack network's second subnet: the one of the other IP version
/// than `first`. Two of that version are more than a pipeline describes.
async fn other_family<C: Cloud>(
    cloud: &C,
    project: &str,
    network: &Value,
    first: &Value,
) -> Result<Option<Value>, ImportError> {
    let q = in_project(
        project,
        vec![("network_id".into(), str_of(network, "id").into())],
    );
    let mut others: Vec<Value> = cloud
        .list(&Kind::Subnet, &q)
        .await?
        .into_iter()
        .filter(|s| s["ip_version"] != first["ip_version"])
        .collect();
    match others.len() {
        0 | 1 => Ok(others.pop()),
        n => {
            let ids: Vec<&str> = others.iter().map(|v| str_of(v, "id")).collect();
            Err(ImportError::Unsupported(format!(
                "network `{}` has {n} IPv{} subnets besides `{}` ({}); a pipeline has one subnet per family on a network",
                str_of(network, "name"),
                others[0]["ip_version"],
                str_of(first, "name"),
                ids.join(", ")
            )))
        }
    }
}

fn on_subnets(port: &Value, subnet_ids: &[&str]) -> bool {
    port["fixed_ips"].as_array().is_some_and(|ips| {
        ips.iter()
            .any(|ip| subnet_ids.contains(&ip["subnet_id"].as_str().unwrap_or_default()))
    })
}

/// The `default/kubernetes` load balancer on the service subnet, with its
/// listeners, pools and members.
async fn read_lb<C: Cloud>(
    cloud: &C,
    project: &str,
    service_subnet_id: &str,
) -> Result<Option<LbSnapshot>, ImportError> {
    let q = in_project(project, vec![("name".into(), DEFAULT_LB_NAME.into())]);
    let lbs: Vec<Value> = cloud
        .list(&Kind::LoadBalancer, &q)
        .await?
        .into_iter()
        .filter(|lb| str_of(lb, "vip_subnet_id") == service_subnet_id)
        .collect();
    let lb = match lbs.as_slice() {
        [] => return Ok(None),
        [one] => one.clone(),
        many => {
            let ids: Vec<&str> = many.iter().map(|v| str_of(v, "id")).collect();
            return Err(ImportError::Ambiguous(format!(
                "{} load balancers named `{DEFAULT_LB_NAME}` sit on the service subnet ({})",
                many.len(),
                ids.join(", ")
            )));
        }
    };
    let lb_id = str_of(&lb, "id").to_string();
    let q = in_project(project, Vec::new());
    let (listeners, pools) =
        futures::try_join!(cloud.list(&Kind::Listener, &q), cloud.list(&Kind::Pool, &q))?;
    let listeners: Vec<Value> = listeners
        .into_iter()
        .filter(|l| belongs(l, &lb_id))
        .collect();
    let pools: Vec<Value> = pools.into_iter().filter(|p| belongs(p, &lb_id)).collect();
    let mut members = Vec::new();
    for p in &pools {
        let kind = Kind::Member {
            pool_id: str_of(p, "id").to_string(),
        };
        for mut m in cloud.list(&kind, &Query::new()).await? {
            m["pool_id"] = Value::String(str_of(p, "id").to_string());
            members.push(m);
        }
    }
    Ok(Some(LbSnapshot {
        lb,
        listeners,
        pools,
        members,
    }))
}
