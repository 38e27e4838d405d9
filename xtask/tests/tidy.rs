//! Tidy: each crate depends only on what its layer may use (docs/architecture.md). A crate that
//! grows a forbidden dependency, directly or through another crate, fails here.

use std::{collections::BTreeSet, process::Command};

use serde_json::Value;

/// (package, crates it must never reach through its normal dependencies, why)
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "ledger",
        &[
            "hyper", "reqwest", "axum", "tower", "http", "razorpay", "askama", "web",
        ],
        "the ledger knows nothing of HTTP or Razorpay",
    ),
    (
        "razorpay",
        &[
            "sea-orm",
            "sqlx",
            "sqlx-core",
            "rusqlite",
            "ledger",
            "axum",
            "askama",
            "web",
        ],
        "the Razorpay client has no database and no web framework",
    ),
    (
        "fake-razorpay",
        &["sea-orm", "sqlx", "sqlx-core", "ledger", "web"],
        "fake-razorpay stands alone: state in memory, nothing of our app",
    ),
];

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON")
}

/// Names of every crate `package` reaches through normal (not dev or build) dependencies.
fn normal_closure(meta: &Value, package: &str) -> BTreeSet<String> {
    let packages = meta["packages"].as_array().expect("packages");
    let name_of = |id: &str| {
        packages
            .iter()
            .find(|p| p["id"] == id)
            .and_then(|p| p["name"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let nodes = meta["resolve"]["nodes"].as_array().expect("resolve graph");
    let root = packages
        .iter()
        .find(|p| p["name"] == package && p["source"].is_null())
        .and_then(|p| p["id"].as_str())
        .unwrap_or_else(|| panic!("workspace package {package} exists"))
        .to_string();
    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        let Some(node) = nodes.iter().find(|n| n["id"] == id.as_str()) else {
            continue;
        };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap_or_default().to_string();
            if normal && seen.insert(name_of(&dep_id)) {
                todo.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn each_crate_stays_in_its_layer() {
    let meta = metadata();
    let mut broken = Vec::new();
    for (package, forbidden, why) in RULES {
        let reached = normal_closure(&meta, package);
        for name in forbidden.iter().filter(|f| reached.contains(**f)) {
            broken.push(format!("{package} depends on {name}, but {why}"));
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_ledger_reaches_its_database_drivers() {
    // Guards the test above against passing vacuously (e.g. an empty resolve graph).
    let reached = normal_closure(&metadata(), "ledger");
    assert!(
        reached.contains("sea-orm") && reached.contains("sqlx-sqlite"),
        "{reached:?}"
    );
}
