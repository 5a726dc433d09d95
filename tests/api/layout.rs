//! The HTTP layer's layout, checked: no file of `shared/src/http/` imports, directly or through
//! others, a file that imports it back (lower layers never import upper ones).

use std::collections::{BTreeMap, BTreeSet};

/// The sibling modules each file of `shared/src/http/` imports (`use super::x`,
/// `use super::{x, y::z}`, `use crate::http::x`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = api_tests::harness::root().join("shared/src/http");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("shared/src/http") {
        let path = entry.expect("a directory entry").path();
        let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        let mut used = BTreeSet::new();
        // `use` items may span lines: join each statement up to its `;`.
        for statement in text.split(';') {
            let statement = statement.trim();
            let Some(rest) = statement
                .rsplit_once("use ")
                .map(|(_, rest)| rest)
                .filter(|_| {
                    statement
                        .lines()
                        .any(|l| l.trim_start().starts_with("use "))
                })
            else {
                continue;
            };
            let rest = rest
                .strip_prefix("super::")
                .or_else(|| rest.strip_prefix("crate::http::"));
            let Some(rest) = rest else { continue };
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(list) => list
                    .trim_end_matches('}')
                    .split(',')
                    .map(|item| item.trim().split("::").next().unwrap_or_default())
                    .collect(),
                None => vec![rest.split("::").next().unwrap_or_default()],
            };
            for name in names {
                let name = name.trim();
                if !name.is_empty() && name != "self" {
                    used.insert(name.to_owned());
                }
            }
        }
        graph.insert(module.to_owned(), used);
    }
    graph
}

/// A path of imports from `from` back to itself, if any.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_file_of_the_http_layer_imports_one_that_imports_it_back() {
    let graph = imports();
    assert!(
        graph.len() > 10,
        "the http layer's files were read: {graph:?}"
    );
    // The parse sees what it must: the router imports its resources, a resource its body.
    assert!(graph["licenses"].contains("usage"), "{graph:?}");
    assert!(graph["packs"].contains("body"), "{graph:?}");
    let cycles: Vec<Vec<String>> = graph
        .keys()
        .filter_map(|module| cycle_from(&graph, module))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}
