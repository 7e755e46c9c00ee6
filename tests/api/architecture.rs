//! The dependency rules of docs/ARCHITECTURE.md, checked on the resolved graph `cargo metadata`
//! reports, so an indirect dependency breaks them as surely as a direct one.
//!
//! - A domain crate (every workspace crate under `crates/` but the kernel, its macros and the
//!   platform adapters) depends on the kernel and on no other domain, except the documented
//!   exceptions in [`ALLOWED`].
//! - No domain crate reaches the HTTP framework, the job queue or the platform adapters.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Workspace crates under `crates/` that are not domains.
const FOUNDATION: [&str; 3] = [
    "tenantry-kernel",
    "tenantry-kernel-macros",
    "tenantry-platform",
];
/// The domain-to-domain dependencies the architecture allows.
const ALLOWED: [(&str, &str); 1] = [("tenantry-identity", "tenantry-tenancy")];
/// Packages no domain may reach, directly or not: the HTTP shell's framework, the job queue's.
fn forbidden(package: &str) -> bool {
    package.starts_with("actix") || package.starts_with("apalis") || package == "tenantry-platform"
}

/// The workspace's packages by id, with their names and manifest paths, and the resolved
/// normal (non-dev, non-build) dependencies of every package in the graph.
struct Graph {
    names: BTreeMap<String, String>,
    workspace: BTreeMap<String, String>,
    deps: BTreeMap<String, Vec<String>>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata answers JSON");
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut names = BTreeMap::new();
    let mut workspace = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let id = p["id"].as_str().expect("package id").to_owned();
        let name = p["name"].as_str().expect("package name").to_owned();
        if members.contains(id.as_str()) {
            workspace.insert(
                id.clone(),
                p["manifest_path"].as_str().expect("path").to_owned(),
            );
        }
        names.insert(id, name);
    }
    let mut deps = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve nodes") {
        let normal: Vec<String> = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
            })
            .map(|d| d["pkg"].as_str().expect("dep id").to_owned())
            .collect();
        deps.insert(node["id"].as_str().expect("node id").to_owned(), normal);
    }
    Graph {
        names,
        workspace,
        deps,
    }
}

impl Graph {
    /// The domain crates: workspace members under `crates/` that are not foundation.
    fn domains(&self) -> Vec<(&str, &str)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/");
        self.workspace
            .iter()
            .filter(|(_, path)| path.starts_with(root))
            .map(|(id, _)| (id.as_str(), self.names[id].as_str()))
            .filter(|(_, name)| !FOUNDATION.contains(name))
            .collect()
    }

    /// Every package `from` reaches through normal dependencies, with the path to it.
    fn reach(&self, from: &str) -> BTreeMap<String, Vec<String>> {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stack = vec![(from.to_owned(), vec![self.names[from].clone()])];
        while let Some((id, path)) = stack.pop() {
            for dep in self.deps.get(&id).into_iter().flatten() {
                if seen.contains_key(dep) {
                    continue;
                }
                let mut next = path.clone();
                next.push(self.names[dep].clone());
                seen.insert(dep.clone(), next.clone());
                stack.push((dep.clone(), next));
            }
        }
        seen
    }
}

#[test]
fn domain_crates_keep_to_the_dependency_rules() {
    let graph = graph();
    let domains = graph.domains();
    let names: BTreeSet<&str> = domains.iter().map(|(_, n)| *n).collect();
    assert!(
        names.contains("tenantry-identity") && names.contains("tenantry-tenancy"),
        "the domain crates are found: {names:?}"
    );
    let mut broken = Vec::new();
    for (id, name) in &domains {
        for (dep, path) in graph.reach(id) {
            let dep_name = graph.names[&dep].as_str();
            let other_domain = names.contains(dep_name) && dep_name != *name;
            // A dependency allowed directly is allowed wherever it sits in the path.
            let allowed = path.windows(2).all(|w| {
                !(names.contains(w[0].as_str()) && names.contains(w[1].as_str()))
                    || ALLOWED.contains(&(w[0].as_str(), w[1].as_str()))
            });
            if forbidden(dep_name) || (other_domain && !allowed) {
                broken.push(path.join(" -> "));
            }
        }
    }
    broken.sort();
    broken.dedup();
    assert!(
        broken.is_empty(),
        "dependencies the architecture forbids:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_dependency_rules_see_a_forbidden_edge() {
    // The check above must be able to fail: the server crate, outside the rules, reaches
    // both the HTTP framework and the domains.
    let graph = graph();
    let server = graph
        .names
        .iter()
        .find(|(_, n)| n.as_str() == "tenantry-server")
        .map(|(id, _)| id.clone())
        .expect("the server crate");
    let reached: BTreeSet<String> = graph
        .reach(&server)
        .keys()
        .map(|id| graph.names[id].clone())
        .collect();
    assert!(reached.iter().any(|n| forbidden(n)));
    assert!(reached.contains("tenantry-identity") && reached.contains("tenantry-tenancy"));
}
