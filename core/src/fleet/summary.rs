//! What a fleet command did to each site: the table people read, the JSON
//! document machines read, and `kuryr6 report merge` over shards' JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a site ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Done (run, destroy) or nothing pending (plan).
    Ok,
    /// `plan`: changes are pending.
    Pending,
    /// `plan`: `run` would refuse the plan as it stands.
    Refused,
    /// An error; `error` says which.
    Failed,
    /// Not started: `--fail-fast` and another site failed.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Pending => "pending",
            Status::Refused => "refused",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One site's line of the summary. For `plan` the counts are what `run`
/// would do; for `run` and `destroy` what was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteReport {
    pub site: String,
    pub file: String,
    pub cloud: String,
    /// Project id of the token (empty when the login failed).
    pub project: String,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    #[serde(default)]
    pub adopted: usize,
    pub seconds: f64,
    pub status: Status,
    /// Always in the JSON (`null` when none), so every site has one shape.
    #[serde(default)]
    pub error: Option<String>,
    /// `plan`: the changes per resource (`engine::ChangeSet`), for drift
    /// reports; `run`: the files written.
    #[serde(default)]
    pub detail: Value,
}

impl SiteReport {
    pub fn new(site: &str, file: &str, cloud: &str) -> SiteReport {
        SiteReport {
            site: site.into(),
            file: file.into(),
            cloud: cloud.into(),
            project: String::new(),
            created: 0,
            updated: 0,
            deleted: 0,
            unchanged: 0,
            adopted: 0,
            seconds: 0.0,
            status: Status::Ok,
            error: None,
            detail: Value::Null,
        }
    }
}

/// The whole fleet's result: one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// plan, run or destroy.
    pub command: String,
    /// The shards this summary covers (`["0/4"]`; a merge lists them all).
    #[serde(default)]
    pub shards: Vec<String>,
    pub sites: Vec<SiteReport>,
    pub seconds: f64,
    /// Every site ok (or pending, for plan): none failed, skipped or
    /// refused, and (a merge) no shard missing.
    pub ok: bool,
    pub failed: Vec<String>,
    pub pending: Vec<String>,
    pub refused: Vec<String>,
    /// `report merge`: the shards of the fleet's N whose summary was not
    /// given; their sites are unknown, so the merge is not ok.
    #[serde(default)]
    pub missing_shards: Vec<String>,
}

impl Summary {
    pub fn new(
        command: &str,
        shards: Vec<String>,
        mut sites: Vec<SiteReport>,
        seconds: f64,
    ) -> Summary {
        sites.sort_by(|a, b| a.site.cmp(&b.site).then(a.file.cmp(&b.file)));
        let named = |s: Status| -> Vec<String> {
            sites
                .iter()
                .filter(|r| r.status == s)
                .map(|r| r.site.clone())
                .collect()
        };
        let mut failed = named(Status::Failed);
        failed.extend(named(Status::Skipped));
        let pending = named(Status::Pending);
        let refused = named(Status::Refused);
        Summary {
            command: command.into(),
            shards,
            ok: failed.is_empty() && refused.is_empty(),
            failed,
            pending,
            refused,
            missing_shards: Vec::new(),
            sites,
            seconds,
        }
    }

    /// The exit code (README): 1 when a site failed or was skipped; `plan`:
    /// 4 when a plan has refusals, 3 with `--detailed-exitcode` when a site
    /// has pending changes; else 0.
    pub fn exit_code(&self, detailed: bool) -> u8 {
        if !self.failed.is_empty() || !self.missing_shards.is_empty() {
            1
        } else if !self.refused.is_empty() {
            4
        } else if detailed && !self.pending.is_empty() {
            3
        } else {
            0
        }
    }

    /// The table: one line per site, then totals and the sites that need
    /// attention, by name.
    pub fn table(&self) -> String {
        let head = [
            "site",
            "cloud",
            "project",
            "created",
            "updated",
            "deleted",
            "unchanged",
            "time",
            "status",
        ];
        let rows: Vec<[String; 9]> = self
            .sites
            .iter()
            .map(|r| {
                [
                    r.site.clone(),
                    r.cloud.clone(),
                    short_project(&r.project),
                    r.created.to_string(),
                    r.updated.to_string(),
                    r.deleted.to_string(),
                    r.unchanged.to_string(),
                    format!("{:.1}s", r.seconds),
                    r.status.as_str().to_string(),
                ]
            })
            .collect();
        let mut width = head.map(str::len);
        for row in &rows {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(width).enumerate() {
                // Counts and time read best right-aligned.
                if (3..8).contains(&i) {
                    s.push_str(&format!("{c:>w$}  "));
                } else {
                    s.push_str(&format!("{c:<w$}  "));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&head.map(String::from));
        for row in &rows {
            out.push_str(&line(row));
        }
        let sum = |f: fn(&SiteReport) -> usize| self.sites.iter().map(f).sum::<usize>();
        out.push_str(&format!(
            "{} site(s) in {:.1} s: {} created, {} updated, {} deleted, {} unchanged; {} ok, {} failed\n",
            self.sites.len(),
            self.seconds,
            sum(|r| r.created),
            sum(|r| r.updated),
            sum(|r| r.deleted),
            sum(|r| r.unchanged),
            self.sites.iter().filter(|r| matches!(r.status, Status::Ok | Status::Pending)).count(),
            self.failed.len(),
        ));
        for r in self.sites.iter().filter(|r| r.error.is_some()) {
            let why = r
                .error
                .as_deref()
                .unwrap_or_default()
                .replace('\n', "\n    ");
            out.push_str(&format!(
                "{} {} ({}): {why}\n",
                r.status.as_str(),
                r.site,
                r.file
            ));
        }
        if !self.pending.is_empty() {
            out.push_str(&format!("changes pending: {}\n", self.pending.join(", ")));
        }
        if !self.refused.is_empty() {
            out.push_str(&format!(
                "refused (run would refuse these plans; see each site's changes): {}\n",
                self.refused.join(", ")
            ));
        }
        if !self.missing_shards.is_empty() {
            out.push_str(&format!(
                "shards missing (no summary given, their sites unknown): {}\n",
                self.missing_shards.join(", ")
            ));
        }
        out
    }
}

/// The project column: ids are long; the first 8 characters identify one.
fn short_project(id: &str) -> String {
    if id.is_empty() {
        "-".into()
    } else {
        id.chars().take(8).collect()
    }
}

/// `kuryr6 report merge`: the shards' summaries as one. All must come from
/// the same command and, when sharded, from one N. A site in two summaries
/// is an error (shards overlap, so they were not cut from one N), whatever
/// the file paths each runner saw: a pipeline name is one site. Shards of
/// that N with no summary are listed in `missing_shards` (exit 1): their
/// sites are unknown, which must not read as success.
pub fn merge(parts: Vec<(String, Summary)>) -> Result<Summary, String> {
    let Some(command) = parts.first().map(|(_, s)| s.command.clone()) else {
        return Err("no summaries to merge".into());
    };
    let mut seen: std::collections::BTreeMap<String, (String, String)> = Default::default();
    let mut cut: std::collections::BTreeMap<String, String> = Default::default();
    let mut count: Option<(u32, String)> = None;
    let mut sites = Vec::new();
    let mut seconds: f64 = 0.0;
    for (file, s) in parts {
        if s.command != command {
            return Err(format!(
                "{file} is a `{}` summary, the first one a `{command}` summary: merge summaries of one command",
                s.command
            ));
        }
        for label in &s.shards {
            let shard: super::Shard = label.parse().map_err(|e| format!("{file}: {e}"))?;
            match &count {
                Some((n, first)) if *n != shard.count => {
                    return Err(format!(
                        "{file} is shard {shard}, {first} a shard of {n}: merge the shards of one N"
                    ));
                }
                Some(_) => {}
                None => count = Some((shard.count, file.clone())),
            }
            if let Some(other) = cut.insert(shard.to_string(), file.clone()) {
                return Err(format!(
                    "shard {shard} is in both {other} and {file}: give each shard's summary once"
                ));
            }
        }
        for r in s.sites {
            if let Some((other, other_site_file)) =
                seen.insert(r.site.clone(), (file.clone(), r.file.clone()))
            {
                return Err(format!(
                    "site {} is in both {other} ({other_site_file}) and {file} ({}): the shards overlap (were they cut with the same N?)",
                    r.site, r.file
                ));
            }
            sites.push(r);
        }
        // Shards run side by side: the fleet took as long as the slowest.
        seconds = seconds.max(s.seconds);
    }
    let mut shards: Vec<super::Shard> = cut.keys().filter_map(|k| k.parse().ok()).collect();
    shards.sort_by_key(|s| s.index);
    let missing = match count {
        Some((n, _)) => (0..n)
            .filter(|k| !shards.iter().any(|s| s.index == *k))
            .map(|k| format!("{k}/{n}"))
            .collect(),
        None => Vec::new(),
    };
    let shards = shards.iter().map(ToString::to_string).collect();
    let mut merged = Summary::new(&command, shards, sites, seconds);
    merged.ok = merged.ok && missing.is_empty();
    merged.missing_shards = missing;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(name: &str, status: Status) -> SiteReport {
        let mut r = SiteReport::new(name, &format!("{name}.toml"), "c");
        r.status = status;
        r.created = 3;
        if status == Status::Failed {
            r.error = Some("cloud \"c\": connection refused".into());
        }
        r
    }

    #[test]
    fn exit_codes_and_names() {
        let s = Summary::new(
            "plan",
            vec![],
            vec![site("b", Status::Pending), site("a", Status::Ok)],
            1.0,
        );
        assert_eq!((s.exit_code(false), s.exit_code(true)), (0, 3));
        assert_eq!(s.pending, ["b"]);
        assert!(s.ok, "pending is ok for plan");
        // Every site has the same keys, set or not.
        let doc = serde_json::to_value(&s).unwrap();
        assert!(doc["sites"][0]["error"].is_null() && doc["sites"][0].get("error").is_some());
        assert!(doc["sites"][0].get("detail").is_some());
        let r = Summary::new(
            "plan",
            vec![],
            vec![site("r", Status::Refused), site("a", Status::Ok)],
            1.0,
        );
        assert_eq!(r.exit_code(true), 4);
        assert!(!r.ok, "a refused plan is not ok");
        assert!(
            r.table().contains("refused (run would refuse"),
            "{}",
            r.table()
        );
        assert_eq!(s.sites[0].site, "a", "sorted by site");
        let s = Summary::new(
            "run",
            vec![],
            vec![
                site("a", Status::Failed),
                site("b", Status::Skipped),
                site("c", Status::Ok),
            ],
            1.0,
        );
        assert_eq!(s.exit_code(true), 1);
        assert_eq!(s.failed, ["a", "b"]);
        let t = s.table();
        assert!(
            t.contains("failed a (a.toml): cloud \"c\": connection refused"),
            "{t}"
        );
        assert!(t.lines().next().unwrap().starts_with("site"), "{t}");
    }

    #[test]
    fn merge_combines_and_refuses_overlap() {
        let a = Summary::new("run", vec!["0/2".into()], vec![site("a", Status::Ok)], 2.0);
        let b = Summary::new(
            "run",
            vec!["1/2".into()],
            vec![site("b", Status::Failed)],
            3.0,
        );
        let m = merge(vec![
            ("a.json".into(), a.clone()),
            ("b.json".into(), b.clone()),
        ])
        .unwrap();
        assert_eq!(m.sites.len(), 2);
        assert_eq!(m.shards, ["0/2", "1/2"]);
        assert_eq!(m.failed, ["b"]);
        assert_eq!(m.seconds, 3.0);
        // Round trip through JSON, as shards hand them over.
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Summary>(&text).unwrap(), m);
        let e = merge(vec![
            ("a.json".into(), a.clone()),
            ("a2.json".into(), a.clone()),
        ])
        .unwrap_err();
        assert!(e.contains("in both a.json and a2.json"), "{e}");
        let p = Summary::new("plan", vec![], vec![], 0.0);
        assert!(
            merge(vec![("a.json".into(), a), ("p.json".into(), p)])
                .unwrap_err()
                .contains("`plan` summary")
        );
    }

    #[test]
    fn merge_refuses_a_site_in_two_shards_whatever_its_path() {
        // Two runners checked the repository out in different places.
        let mut r = site("a", Status::Ok);
        r.file = "/runner-1/sites/a.toml".into();
        let one = Summary::new("run", vec!["0/2".into()], vec![r.clone()], 1.0);
        r.file = "/runner-2/sites/a.toml".into();
        let two = Summary::new("run", vec!["1/2".into()], vec![r], 1.0);
        let e = merge(vec![("1.json".into(), one), ("2.json".into(), two)]).unwrap_err();
        assert!(e.contains("site a is in both 1.json"), "{e}");
    }

    #[test]
    fn merge_refuses_shards_of_different_n_and_names_missing_shards() {
        let part = |shard: &str, name: &str| {
            Summary::new(
                "plan",
                vec![shard.into()],
                vec![site(name, Status::Ok)],
                1.0,
            )
        };
        let e = merge(vec![
            ("a.json".into(), part("0/2", "a")),
            ("b.json".into(), part("1/3", "b")),
        ])
        .unwrap_err();
        assert!(e.contains("merge the shards of one N"), "{e}");
        // Shard 1/3 crashed before writing its summary: not a success.
        let m = merge(vec![
            ("c.json".into(), part("2/3", "c")),
            ("a.json".into(), part("0/3", "a")),
        ])
        .unwrap();
        assert_eq!(m.missing_shards, ["1/3"]);
        assert_eq!(m.shards, ["0/3", "2/3"]);
        assert!(!m.ok);
        assert_eq!(m.exit_code(false), 1);
        assert!(m.table().contains("shards missing"), "{}", m.table());
        // An empty shard given twice is still a duplicate.
        let empty = Summary::new("plan", vec!["0/1".into()], vec![], 0.0);
        assert!(
            merge(vec![
                ("x.json".into(), empty.clone()),
                ("y.json".into(), empty)
            ])
            .unwrap_err()
            .contains("shard 0/1 is in both x.json and y.json")
        );
        // Unsharded summaries (whole fleets) merge with nothing missing.
        let whole = Summary::new("plan", vec![], vec![site("z", Status::Ok)], 0.0);
        assert!(merge(vec![("w.json".into(), whole)]).unwrap().ok);
    }
}
