//! `site-prefix`: derives a site's pod and service prefixes from a central
//! site table, so every site's pipeline can be the same guide topology and
//! only its facts differ.
//!
//! Facts: `prefix` (an IPv6 /48, normally ULA), `sites` (the table,
//! `"ams1=1, fra1=2"`), `site` (this site's name), optional
//! `service_prefix_len` (default 112). Site N gets subnet id N*16+1 for pods
//! (a /64) and N*16+2 for services — the same carving as the short form's
//! `site_prefix`/`site_id`, so both ways agree. The plan's IPv6 pod and
//! service subnets move there with their gateways and pools recomputed; the
//! security-group rules and the load balancer VIP follow the service subnet.

use ipnet::IpNet;
use kuryr6_plugin_sdk::cidr;
use kuryr6_plugin_sdk::plan::{Role, Step};
use kuryr6_plugin_sdk::{Facts, Hook, Plan, Plugin, export_plugin};

struct SitePrefix;

/// Subnet ids below the /48 are `site * 16 + role`.
const POD: u128 = 1;
const SERVICE: u128 = 2;
const MAX_SITE_ID: u128 = 4095;

fn site_id(facts: &Facts) -> Result<u128, String> {
    let site = facts.require("site")?;
    let table = facts.require("sites")?;
    for entry in table.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, id) = entry
            .split_once('=')
            .ok_or_else(|| format!("site table entry `{entry}` is not NAME=ID"))?;
        if name.trim() == site {
            let id: u128 = id
                .trim()
                .parse()
                .map_err(|_| format!("site `{site}` has id `{}`, not a number", id.trim()))?;
            if id > MAX_SITE_ID {
                return Err(format!(
                    "site `{site}` has id {id}; ids go from 0 to {MAX_SITE_ID}"
                ));
            }
            return Ok(id);
        }
    }
    Err(format!("site `{site}` is not in the site table `sites`"))
}

/// The `len`-long prefix at subnet id `id` of the /48.
fn at(prefix: &IpNet, id: u128, len: u8) -> Result<IpNet, String> {
    let slash64 = cidr::carve_64(prefix, id)?;
    cidr::carve(&slash64, len, 0)
}

impl Plugin for SitePrefix {
    const NAME: &'static str = "site-prefix";
    const HOOKS: &'static [Hook] = &[Hook::Plan];

    fn plan(facts: &Facts, mut plan: Plan) -> Result<Plan, String> {
        let prefix = cidr::parse(facts.require("prefix")?)?;
        let id = site_id(facts)?;
        let service_len: u8 = facts.parse_or("service_prefix_len", 112)?;
        let pod = at(&prefix, id * 16 + POD, 64)?;
        let service = at(&prefix, id * 16 + SERVICE, service_len)?;

        let mut moved: Vec<(IpNet, IpNet, String)> = Vec::new();
        for s in plan.subnets_mut().filter(|s| s.ip_version == 6) {
            let target = match s.role {
                Role::Pod => pod,
                Role::Service => service,
                Role::Other => continue,
            };
            if moved.iter().any(|(_, new, _)| *new == target) {
                return Err(format!(
                    "more than one IPv6 {:?} subnet; site-prefix derives one of each",
                    s.role
                ));
            }
            moved.push((s.cidr, target, s.name.clone()));
            s.relayout(target)?;
        }
        for step in &mut plan.steps {
            match step {
                Step::SecurityGroup(sg) => {
                    for rule in &mut sg.rules {
                        if let Some(p) = rule.remote_ip_prefix
                            && let Some((_, new, _)) = moved.iter().find(|(old, _, _)| *old == p)
                        {
                            rule.remote_ip_prefix = Some(*new);
                        }
                    }
                }
                Step::Loadbalancer(lb) => {
                    if let Some((old, new, _)) =
                        moved.iter().find(|(_, _, name)| *name == lb.subnet)
                    {
                        // Keep the VIP's place in the subnet (range::1 by default).
                        let delta = offset_in(old, lb.vip);
                        lb.vip = cidr::offset(new.network(), delta);
                    }
                }
                _ => {}
            }
        }
        Ok(plan)
    }
}

fn offset_in(net: &IpNet, addr: std::net::IpAddr) -> i128 {
    let n = match net.network() {
        std::net::IpAddr::V6(a) => u128::from(a),
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
    };
    let a = match addr {
        std::net::IpAddr::V6(a) => u128::from(a),
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
    };
    a.wrapping_sub(n) as i128
}

export_plugin!(SitePrefix);
