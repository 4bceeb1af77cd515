//! The module graph of `src/` has no cycle: neither between top-level modules (`proxy` → `metrics`
//! → `proxy`) nor between the files of one folder (`tui/app.rs` → `tui/render.rs` → `tui/app.rs`).
//!
//! A file depends on every module its code names: `use crate::…`, `use super::…`, `use child::…`
//! and paths written inline (`crate::tui::run(…)`). Re-exports (`pub use`) and `mod` lines are the
//! module's facade, not a dependency, and test code (from the first `#[cfg(test)]`) is left out:
//! a test may reach anywhere. A path is charged to the deepest module that has a file of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, `src/lib.rs` → `` (the crate root).
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(tree).trim().to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').expect("a use group closes")];
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(expand)
        .map(|path| format!("{prefix}{path}"))
        .collect()
}

/// The paths a file's (non-test) code names, written as in the source.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let statement_start = before.is_empty() || before.ends_with(['\n', ' ', '{', ';']);
        let end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let is_reexport = before[line_start..].trim_start().starts_with("pub");
        if statement_start && !is_reexport {
            paths.extend(expand(&rest[at + 4..end]));
        }
        rest = &rest[end.min(rest.len())..];
        if rest.is_empty() {
            break;
        }
        rest = &rest[1..];
    }
    // Inline paths (`crate::tui::run(…)`, `super::render::draw(…)`).
    for anchor in ["crate::", "super::"] {
        for (at, _) in code.match_indices(anchor) {
            let boundary = code[..at]
                .chars()
                .last()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != ':');
            if boundary {
                let path: String = code[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                paths.push(path);
            }
        }
    }
    paths
}

/// The module a path names, relative to `from`: its deepest prefix that is a module with a file.
fn target(path: &str, from: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").collect()
    };
    match segments.first().copied() {
        Some("crate") => {
            base.clear();
            segments.remove(0);
        }
        Some("super") => {
            while segments.first() == Some(&"super") {
                base.pop();
                segments.remove(0);
            }
        }
        Some("self") => {
            segments.remove(0);
        }
        Some(first) => {
            // `use child::X` inside a module; anything else is an outside crate.
            let child = base.iter().chain([&first]).copied().collect::<Vec<_>>();
            if !modules.contains(&child.join("::")) {
                return None;
            }
        }
        None => return None,
    }
    let mut best = None;
    let mut current = base;
    if modules.contains(&current.join("::")) {
        best = Some(current.join("::"));
    }
    for segment in segments {
        current.push(segment);
        let name = current.join("::");
        if modules.contains(&name) {
            best = Some(name);
        } else {
            break;
        }
    }
    best
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).expect("on the stack");
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

/// Every file module of the library and the modules its code depends on.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| !f.ends_with("main.rs"));
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).expect("below src/")))
        .collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(file.strip_prefix(&src).expect("below src/"));
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        // Comments (doc links included) name modules without depending on them.
        let code: String = code
            .lines()
            .map(|line| line.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let targets: BTreeSet<String> = named_paths(&code)
            .iter()
            .filter_map(|path| target(path, &module, &modules))
            .filter(|t| *t != module)
            .collect();
        graph.insert(module, targets);
    }
    graph
}

fn top_level(module: &str) -> &str {
    module.split("::").next().unwrap_or_default()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in dependencies() {
        let entry = graph.entry(top_level(&from).to_string()).or_default();
        for to in targets {
            if top_level(&to) != top_level(&from) && !to.is_empty() {
                entry.insert(top_level(&to).to_string());
            }
        }
    }
    assert!(
        graph.get("proxy").is_some_and(|d| d.contains("balance")),
        "the checker sees dependencies: {graph:#?}"
    );
    assert_eq!(find_cycle(&graph), None, "{graph:#?}");
}

#[test]
fn files_of_one_folder_form_no_cycle() {
    let graph = dependencies();
    assert!(
        graph
            .get("tui::render")
            .is_some_and(|d| d.contains("tui::app")),
        "the checker sees dependencies between files: {graph:#?}"
    );
    assert_eq!(find_cycle(&graph), None, "{graph:#?}");
}

#[test]
fn the_checker_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        expand("crate::{a::X, b::{c, d as e}}"),
        vec!["crate::a::X", "crate::b::c", "crate::b::d"]
    );
}
