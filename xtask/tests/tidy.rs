//! Tidy: each crate depends only on what its layer may use (docs/architecture.md). A crate that
//! grows a forbidden dependency, directly or through another crate, fails here.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

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

// ---------------------------------------------------------------------------------------------
// Module level: what each file imports, read from its `use` statements and `crate::`/`super::`
// paths (inline `mod … { }` blocks, tests included, are left out: they are not imports of the
// file's module).

mod modules {
    use std::{
        collections::{BTreeMap, BTreeSet},
        path::{Path, PathBuf},
    };

    /// A crate's modules (one per file, `""` for the crate root) and who imports whom.
    pub struct ModuleGraph {
        pub files: BTreeMap<String, PathBuf>,
        pub edges: BTreeMap<String, BTreeSet<String>>,
    }

    /// This checkout, or the one `KALP_TIDY_ROOT` names (to compare module maps across commits).
    fn workspace() -> PathBuf {
        std::env::var_os("KALP_TIDY_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")))
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// `a/b.rs` → `a::b`; `a/mod.rs` → `a`; the crate root → `""`.
    fn module_of(src: &Path, file: &Path) -> String {
        let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        parts.join("::")
    }

    /// The source without comments and without inline `mod name { … }` blocks.
    pub fn code_of(source: &str) -> String {
        let without_comments: String = source
            .lines()
            .map(|line| match line.trim_start().starts_with("//") {
                true => "",
                false => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut out = String::new();
        let mut rest = without_comments.as_str();
        while let Some(at) = find_inline_mod(rest) {
            out.push_str(&rest[..at]);
            let Some(open) = rest[at..].find('{').map(|i| at + i) else {
                break;
            };
            let mut depth = 0usize;
            let mut end = rest.len();
            for (i, c) in rest[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    /// Where an inline module begins (`mod x {`, `pub(crate) mod x {`), at the start of a line.
    fn find_inline_mod(text: &str) -> Option<usize> {
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            let declared = trimmed
                .strip_prefix("pub(crate) ")
                .or_else(|| trimmed.strip_prefix("pub "))
                .unwrap_or(trimmed);
            if declared.starts_with("mod ") && line.trim_end().ends_with('{') {
                return Some(offset);
            }
            offset += line.len();
        }
        None
    }

    /// Every path a `use` tree names: `a::{b, c::{d}}` → `a::b`, `a::c::d`.
    fn expand(tree: &str) -> Vec<String> {
        let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
        let mut out = Vec::new();
        expand_into("", &tree, &mut out);
        out
    }

    fn expand_into(prefix: &str, tree: &str, out: &mut Vec<String>) {
        match tree.find('{') {
            None => out.push(format!("{prefix}{tree}")),
            Some(open) => {
                let head = format!("{prefix}{}", &tree[..open]);
                let inner = &tree[open + 1..tree.len().saturating_sub(1)];
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in inner.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand_into(&head, &inner[start..i], out);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                if start < inner.len() {
                    expand_into(&head, &inner[start..], out);
                }
            }
        }
    }

    /// Paths this code refers to, from the crate root (`crate::…`, `super::…`).
    fn referenced_paths(code: &str, module: &str, is_mod_file: bool) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        // `use` statements (their trees may span lines).
        let mut rest = code;
        while let Some(at) = rest.find("use ") {
            let before = &rest[..at];
            let at_item_start = before.is_empty()
                || before.ends_with('\n')
                || before.ends_with("pub ")
                || before.ends_with("pub(crate) ")
                || before.ends_with(' ');
            let Some(end) = rest[at..].find(';') else {
                break;
            };
            if at_item_start {
                paths.extend(expand(&rest[at + 4..at + end]));
            }
            rest = &rest[at + end + 1..];
        }
        // Inline paths.
        for word in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(i) = code[from..].find(word) {
                let start = from + i;
                let boundary = code[..start]
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_alphanumeric() && c != '_');
                let path: String = code[start..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                // `crate::{…}` and `super::{…}` are `use` trees, read above.
                if boundary && !path.ends_with("::") {
                    paths.push(path);
                }
                from = start + word.len();
            }
        }
        let here: Vec<String> = module
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        // Paths relative to this module that start with one of its child modules
        // (`mod card;` … `use card::x;` or `card::x(…)`).
        for child in declared_children(code) {
            let word = format!("{child}::");
            let mut from = 0;
            while let Some(i) = code[from..].find(&word) {
                let start = from + i;
                let boundary = code[..start]
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != ':');
                if boundary {
                    paths.push(format!("self::{child}"));
                }
                from = start + word.len();
            }
            for used in paths.clone() {
                if used == child || used.starts_with(&word) {
                    paths.push(format!("self::{child}"));
                }
            }
        }
        paths
            .into_iter()
            .filter_map(|p| {
                let mut segments = p.split("::").map(str::to_string);
                let mut base = match segments.next()?.as_str() {
                    "crate" => Vec::new(),
                    "self" => here.clone(),
                    "super" => {
                        // `super` of a file module `a::b` is `a`; of `a/mod.rs` (module `a`) it
                        // is the crate root's `a`'s parent.
                        let mut base = here.clone();
                        if !is_mod_file || !base.is_empty() {
                            base.pop();
                        }
                        base
                    }
                    _ => return None,
                };
                for s in segments {
                    if s == "super" {
                        base.pop();
                    } else if s != "self" && !s.is_empty() {
                        base.push(s);
                    }
                }
                Some(base)
            })
            .collect()
    }

    /// The child modules a file declares (`mod x;`, `pub mod x;`, `pub(crate) mod x;`).
    fn declared_children(code: &str) -> Vec<String> {
        code.lines()
            .filter_map(|line| {
                let line = line.trim_start();
                let line = line
                    .strip_prefix("pub(crate) ")
                    .or_else(|| line.strip_prefix("pub "))
                    .unwrap_or(line);
                let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
                Some(name.trim().to_string())
            })
            .collect()
    }

    /// The module graph of the crate whose sources are in `src` (binaries in `src/bin` and a
    /// `main.rs` beside a `lib.rs` are crates of their own and left out).
    pub fn graph(src: &str) -> ModuleGraph {
        let src = workspace().join(src);
        let mut found = Vec::new();
        rust_files(&src, &mut found);
        let has_lib = src.join("lib.rs").exists();
        let mut files = BTreeMap::new();
        for file in found {
            let rel = file.strip_prefix(&src).unwrap_or(&file);
            if rel.starts_with("bin") || (has_lib && rel == Path::new("main.rs")) {
                continue;
            }
            files.insert(module_of(&src, &file), file);
        }
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, file) in &files {
            let source = std::fs::read_to_string(file).unwrap_or_default();
            let is_mod_file = file
                .file_name()
                .is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs");
            let code = code_of(&source);
            for path in referenced_paths(&code, module, is_mod_file) {
                // The longest prefix that is a module: that file is what is imported.
                let target = (0..=path.len())
                    .rev()
                    .map(|n| path[..n].join("::"))
                    .find(|candidate| files.contains_key(candidate))
                    .unwrap_or_default();
                if &target != module {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
            edges.entry(module.clone()).or_default();
        }
        ModuleGraph { files, edges }
    }

    impl ModuleGraph {
        /// Groups of modules that import one another (Tarjan's strongly connected components).
        pub fn cycles(&self) -> Vec<Vec<String>> {
            struct Tarjan<'g> {
                edges: &'g BTreeMap<String, BTreeSet<String>>,
                index: BTreeMap<String, usize>,
                low: BTreeMap<String, usize>,
                stack: Vec<String>,
                on_stack: BTreeSet<String>,
                next: usize,
                found: Vec<Vec<String>>,
            }
            impl Tarjan<'_> {
                fn visit(&mut self, v: &str) {
                    self.index.insert(v.to_string(), self.next);
                    self.low.insert(v.to_string(), self.next);
                    self.next += 1;
                    self.stack.push(v.to_string());
                    self.on_stack.insert(v.to_string());
                    let targets: Vec<String> = self
                        .edges
                        .get(v)
                        .map(|t| t.iter().cloned().collect())
                        .unwrap_or_default();
                    for w in targets {
                        if !self.index.contains_key(&w) {
                            self.visit(&w);
                            let low = self.low[v].min(self.low[&w]);
                            self.low.insert(v.to_string(), low);
                        } else if self.on_stack.contains(&w) {
                            let low = self.low[v].min(self.index[&w]);
                            self.low.insert(v.to_string(), low);
                        }
                    }
                    if self.low[v] == self.index[v] {
                        let mut group = Vec::new();
                        while let Some(w) = self.stack.pop() {
                            self.on_stack.remove(&w);
                            let done = w == v;
                            group.push(w);
                            if done {
                                break;
                            }
                        }
                        if group.len() > 1 {
                            group.sort();
                            self.found.push(group);
                        }
                    }
                }
            }
            let mut t = Tarjan {
                edges: &self.edges,
                index: BTreeMap::new(),
                low: BTreeMap::new(),
                stack: Vec::new(),
                on_stack: BTreeSet::new(),
                next: 0,
                found: Vec::new(),
            };
            for v in self.edges.keys() {
                if !t.index.contains_key(v) {
                    t.visit(v);
                }
            }
            t.found
        }

        /// Edges from modules matching `from` to modules matching `to`.
        pub fn imports_between(
            &self,
            from: impl Fn(&str) -> bool,
            to: impl Fn(&str) -> bool,
        ) -> Vec<String> {
            self.edges
                .iter()
                .filter(|(m, _)| from(m))
                .flat_map(|(m, targets)| {
                    targets
                        .iter()
                        .filter(|t| to(t))
                        .map(move |t| format!("{} imports {}", name(m), name(t)))
                })
                .collect()
        }
    }

    pub fn name(module: &str) -> &str {
        if module.is_empty() {
            "(crate root)"
        } else {
            module
        }
    }

    /// `module` is `prefix` or inside it.
    pub fn within(module: &str, prefix: &str) -> bool {
        module == prefix || module.starts_with(&format!("{prefix}::"))
    }
}

use modules::{ModuleGraph, graph, name, within};

/// Every crate's sources, as `graph` reads them.
const CRATES: &[&str] = &[
    "crates/ledger/src",
    "crates/razorpay/src",
    "web/src",
    "fake-razorpay/src",
    "xtask/src",
];

/// Import loops allowed: a type and its error type (the ledger's ids and amounts refuse bad
/// values with `LedgerError`, which names ids).
const ALLOWED_LOOPS: &[(&str, &[&str])] = &[("crates/ledger/src", &["error", "types"])];

#[test]
fn no_module_imports_itself_through_others() {
    let mut loops = Vec::new();
    for src in CRATES {
        for group in graph(src).cycles() {
            let allowed = ALLOWED_LOOPS
                .iter()
                .any(|(s, g)| s == src && group.iter().map(String::as_str).eq(g.iter().copied()));
            if !allowed {
                let names: Vec<&str> = group.iter().map(|m| name(m)).collect();
                loops.push(format!("{src}: {}", names.join(" ↔ ")));
            }
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

#[test]
fn the_module_graph_is_read_at_all() {
    // Guards the tests here against passing vacuously.
    let web = graph("web/src");
    assert!(web.files.len() > 40, "{:?}", web.files.keys());
    assert!(
        web.edges["pages::topup"].contains("billing::crediting"),
        "{:?}",
        web.edges["pages::topup"]
    );
    assert!(
        web.edges["webhooks"].contains("webhooks::inbox"),
        "relative paths"
    );
    let ledger = graph("crates/ledger/src");
    assert!(ledger.edges["write::credit"].contains("write::draw"));
    let fake = graph("fake-razorpay/src");
    assert!(
        fake.edges["checkout"].contains("checkout::card"),
        "use of a child"
    );
}

/// The HTTP side of the web app: handlers, extractors, state and wiring.
fn web_http(module: &str) -> bool {
    [
        "pages",
        "api",
        "state",
        "startup",
        "http_layers",
        "workers",
        "rejections",
        "server",
        "client_ip",
    ]
    .iter()
    .any(|p| within(module, p))
        || module == "webhooks"
}

#[test]
fn the_web_app_imports_downward() {
    let web = graph("web/src");
    let mut broken = Vec::new();
    // The store is the bottom: its own tables only, nothing of the app above it.
    broken.extend(web.imports_between(|m| within(m, "store"), |t| !within(t, "store")));
    // The work on money never reaches for the HTTP layer that drives it.
    let domain = |m: &str| {
        [
            "billing",
            "documents",
            "emails",
            "operators",
            "alerts",
            "reconcile",
            "audit",
            "accounts",
            "services",
            "limits",
            "passwords",
            "password_reset",
            "scale_preload",
            "crypto",
            "configuration",
        ]
        .iter()
        .any(|p| within(m, p))
            || m == "webhooks::inbox"
    };
    broken.extend(web.imports_between(domain, web_http));
    // Pages and the API are two surfaces: neither imports the other.
    broken.extend(web.imports_between(|m| within(m, "pages"), |t| within(t, "api")));
    broken.extend(web.imports_between(|m| within(m, "api"), |t| within(t, "pages")));
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_ledgers_write_path_imports_only_downward() {
    // Layer of each module of `write` (docs/architecture.md).
    let layer = |m: &str| -> Option<u8> {
        Some(match m.strip_prefix("write::")? {
            "sql" => 0,
            "claims" => 1,
            "draw" | "claim_and_withdraw" => 2,
            "lots" => 3,
            "credit" | "debit" | "reservations" => 4,
            "batch" | "apply" => 5,
            _ => return None,
        })
    };
    let ledger = graph("crates/ledger/src");
    let mut broken = Vec::new();
    for (module, targets) in &ledger.edges {
        let Some(from) = layer(module) else { continue };
        for target in targets {
            let fine = match layer(target) {
                Some(to) => to < from,
                None => ["db", "error", "model", "types"].contains(&target.as_str()),
            };
            if !fine {
                broken.push(format!("{module} imports {}", name(target)));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_fakes_gateway_knows_no_http() {
    let fake = graph("fake-razorpay/src");
    let http = |t: &str| {
        ["api", "checkout", "control", "server", "fake", "webhooks"]
            .iter()
            .any(|p| within(t, p))
    };
    let broken = fake.imports_between(|m| within(m, "gateway"), http);
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// A string literal holding SQL (a statement's first words).
fn sql_literals(code: &str) -> Vec<String> {
    const STARTS: &[&str] = &[
        "SELECT ",
        "INSERT INTO",
        "UPDATE ",
        "DELETE FROM",
        "CREATE TABLE",
        "CREATE INDEX",
        "ALTER TABLE",
        "DROP TABLE",
        "WITH ",
    ];
    code.split('"')
        .skip(1)
        .step_by(2)
        .map(str::trim_start)
        .filter(|s| STARTS.iter().any(|k| s.starts_with(k)))
        .map(|s| s.chars().take(60).collect())
        .collect()
}

#[test]
fn sql_lives_in_the_ledger_and_the_store_only() {
    let mut found = Vec::new();
    for src in CRATES.iter().filter(|s| **s != "crates/ledger/src") {
        let g: ModuleGraph = graph(src);
        for (module, file) in &g.files {
            if *src == "web/src" && within(module, "store") {
                continue;
            }
            let code = modules::code_of(&std::fs::read_to_string(file).unwrap_or_default());
            for sql in sql_literals(&code) {
                found.push(format!("{}: {sql}", file.display()));
            }
            // The ledger's tables are the ledger's: the web app asks the ledger (its frozen
            // migrations name them in foreign keys).
            if *src == "web/src" && !within(module, "store::migrations") {
                for table in ledger_tables(&code) {
                    found.push(format!(
                        "{}: names the ledger's table {table}",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside the ledger and web/src/store:\n{}",
        found.join("\n")
    );
}

/// Names of the ledger's tables in string literals.
fn ledger_tables(code: &str) -> Vec<String> {
    code.split('"')
        .skip(1)
        .step_by(2)
        .flat_map(|literal| literal.split(|c: char| !c.is_alphanumeric() && c != '_'))
        .filter(|word| word.starts_with("ledger_") && word.len() > "ledger_".len())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_sql_check_finds_sql() {
    assert_eq!(
        sql_literals(r#"let q = "SELECT id FROM web_users"; let s = "hello";"#),
        vec!["SELECT id FROM web_users".to_string()]
    );
    assert_eq!(
        ledger_tables(r#"let q = "SELECT 1 FROM ledger_transfers t"; ledger_key(1);"#),
        vec!["ledger_transfers".to_string()]
    );
}

/// Files longer than this say why in their first lines ("stays one file").
const LONG_FILE: usize = 450;

#[test]
fn long_files_say_why() {
    let mut long = Vec::new();
    for src in CRATES {
        for file in graph(src).files.values() {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let head: String = text.lines().take(30).collect::<Vec<_>>().join("\n");
            if text.lines().count() > LONG_FILE && !head.contains("stays one file") {
                long.push(format!(
                    "{} ({} lines)",
                    file.display(),
                    text.lines().count()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "long files without a reason:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_two_types_share_a_name() {
    // sea-orm's entity modules name their types by convention (Model, Entity, Column, …).
    const CONVENTIONAL: &[&str] = &[
        "Model",
        "ActiveModel",
        "Entity",
        "Column",
        "Relation",
        "PrimaryKey",
    ];
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for src in CRATES {
        for file in graph(src).files.values() {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for line in text.lines() {
                let line = line.trim_start();
                let line = line
                    .strip_prefix("pub(crate) ")
                    .or_else(|| line.strip_prefix("pub(super) "))
                    .or_else(|| line.strip_prefix("pub "))
                    .unwrap_or(line);
                for keyword in ["struct ", "enum ", "trait "] {
                    if let Some(rest) = line.strip_prefix(keyword) {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if !name.is_empty() && !CONVENTIONAL.contains(&name.as_str()) {
                            seen.entry(name)
                                .or_default()
                                .push(file.display().to_string());
                        }
                    }
                }
            }
        }
    }
    let shared: Vec<String> = seen
        .into_iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(name, files)| format!("{name}: {}", files.join(", ")))
        .collect();
    assert!(
        shared.is_empty(),
        "types sharing a name:\n{}",
        shared.join("\n")
    );
}

/// `cargo test -p xtask --test tidy module_map -- --ignored --nocapture`: who imports whom, and
/// the import loops (set `KALP_TIDY_ROOT` to map another checkout).
#[test]
#[ignore = "prints the module map"]
fn module_map() {
    for src in CRATES {
        let g = graph(src);
        println!("== {src}: {} modules", g.files.len());
        for cycle in g.cycles() {
            let names: Vec<&str> = cycle.iter().map(|m| name(m)).collect();
            println!("  loop of {}: {}", names.len(), names.join(" ↔ "));
        }
        for (module, targets) in &g.edges {
            let targets: Vec<&str> = targets.iter().map(|t| name(t)).collect();
            println!("  {} → {}", name(module), targets.join(", "));
        }
    }
}
