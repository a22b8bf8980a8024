//! The library's module graph, read from its source: the layers and what each may never import
//! (ARCHITECTURE.md), and no cycle between modules. `cargo test -p auditrail-shared --test layers
//! -- --nocapture` prints the graph.
//!
//! A module is a top-level module of `shared/src` (`store`, `export`, …), except that for the
//! layers the storage adapters (`store::sqlite`, `store::dynamodb`, `blob::fs`, `blob::s3`) are
//! modules of their own, because their layer differs from their parent's. Cycles are looked for
//! between top-level modules.
//! Test code (`#[cfg(test)] mod tests`, the conformance and emulator harness) is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom-up; a module may import its own layer and the layers below, never a layer above, and
/// also never the modules named in `never` for it.
const LAYERS: &[(&str, &[&str])] = &[
    ("leaf", &["task", "error", "json_bounds", "private_fs", "crypto", "merkle", "allocator"]),
    ("record model", &["record", "seal"]),
    ("ports", &["store", "blob"]),
    ("adapters", &["store::sqlite", "store::dynamodb", "blob::fs", "blob::s3", "kms"]),
    ("core", &["query", "ingest", "auth", "access", "error_report", "keycloak"]),
    ("jobs", &["jobs", "export", "dpo", "retention", "integrity", "keycloak_pull"]),
    ("wiring", &["config", "app", "housekeeping", "demo", "stream_worker"]),
    ("faces", &["api"]),
];

/// Imports that the layer order alone would allow but that the architecture forbids.
const NEVER: &[(&str, &str, &str)] = &[
    ("core", "adapters", "the core knows the ports, never a particular back end"),
    ("jobs", "adapters", "jobs run on the ports, never on a particular back end"),
];

fn module_of(rel: &Path) -> String {
    let parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [one] => one.clone(),
        [a, b, ..] if a == "store" && (b == "sqlite" || b == "dynamodb") => format!("store::{b}"),
        [a, b, ..] if a == "blob" && (b == "fs" || b == "s3") => format!("blob::{b}"),
        [a, ..] => a.clone(),
        [] => unreachable!(),
    }
}

/// Test-only files, not part of the product's graph.
fn is_test_code(rel: &Path) -> bool {
    let name = rel.file_stem().unwrap_or_default().to_string_lossy();
    matches!(name.as_ref(), "conformance" | "differential" | "fault_tests" | "faults") || rel.starts_with("testkit")
}

/// The module a `crate::a::b` path names.
fn target_of(path: &str) -> String {
    let segs: Vec<&str> = path.split("::").collect();
    match segs.as_slice() {
        ["store", b @ ("sqlite" | "dynamodb"), ..] => format!("store::{b}"),
        ["blob", b @ ("fs" | "s3"), ..] => format!("blob::{b}"),
        [a, ..] => (*a).into(),
        [] => String::new(),
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::…` path in the code (test modules cut off), with `use crate::{a, b::c}` groups.
fn crate_paths(src: &str) -> Vec<String> {
    // From the first `#[cfg(..test..)]` line before a `mod … {` on (test modules close a file).
    let lines: Vec<&str> = src.lines().collect();
    let cut = (0..lines.len().saturating_sub(1))
        .find(|&i| {
            let (attr, item) = (lines[i], lines[i + 1].trim_end());
            attr.starts_with("#[cfg(") && attr.contains("test") && item.starts_with("mod ") && item.ends_with('{')
        })
        .unwrap_or(lines.len());
    let code = lines[..cut].join("\n");
    let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    out.push(item.to_owned());
                }
            }
        } else {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':').to_owned());
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in all {
        let rel = f.strip_prefix(&root).unwrap();
        if rel == Path::new("lib.rs") || is_test_code(rel) {
            continue;
        }
        let from = module_of(rel);
        let edges = g.entry(from.clone()).or_default();
        for p in crate_paths(&std::fs::read_to_string(&f).unwrap()) {
            let to = target_of(&p);
            if !to.is_empty() && to != from {
                edges.insert(to);
            }
        }
    }
    g
}

fn layer(module: &str) -> Option<(usize, &'static str)> {
    LAYERS.iter().enumerate().find(|(_, (_, ms))| ms.contains(&module)).map(|(i, (name, _))| (i, *name))
}

#[test]
fn every_module_has_a_layer_and_imports_only_downwards() {
    let g = graph();
    let mut wrong = Vec::new();
    for (from, tos) in &g {
        let Some((lf, lname)) = layer(from) else {
            wrong.push(format!("`{from}` has no layer: add it to LAYERS (and to ARCHITECTURE.md)"));
            continue;
        };
        for to in tos {
            let Some((lt, tname)) = layer(to) else {
                wrong.push(format!("`{to}` (imported by `{from}`) has no layer"));
                continue;
            };
            if lt > lf {
                wrong.push(format!("`{from}` ({lname}) imports `{to}` ({tname}), a layer above it"));
            }
            if let Some((_, _, why)) = NEVER.iter().find(|(a, b, _)| *a == lname && *b == tname) {
                wrong.push(format!("`{from}` ({lname}) imports `{to}` ({tname}): {why}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    // Between top-level modules: an adapter is part of its parent here.
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_owned();
    for (from, tos) in graph() {
        let edges = g.entry(top(&from)).or_default();
        edges.extend(tos.iter().map(|t| top(t)).filter(|t| *t != top(&from)));
    }
    println!("module graph of auditrail-shared (module -> what it imports):");
    for (from, tos) in &g {
        println!("  {from:<16} -> {}", tos.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    // Depth-first search; a back edge is a cycle, reported with its path.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                0 => visit(m, g, state, stack, cycles),
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    cycles.push(format!("{} -> {m}", stack[at..].join(" -> ")));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
    }
    let (mut state, mut stack, mut cycles) = (BTreeMap::new(), Vec::new(), Vec::new());
    for n in g.keys() {
        if !state.contains_key(n.as_str()) {
            visit(n, &g, &mut state, &mut stack, &mut cycles);
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_sees_grouped_and_nested_imports() {
    let src = "#[cfg(test)]\nmod declared;\nuse crate::{record::Record, task::Task};\nlet x = crate::store::sqlite::open();\n// crate::api in a comment\n#[cfg(all(test, feature = \"aws\"))]\nmod tests {\n    use crate::api;\n}";
    let targets: Vec<String> = crate_paths(src).iter().map(|p| target_of(p)).collect();
    assert_eq!(targets, vec!["record", "task", "store::sqlite"]);
}
