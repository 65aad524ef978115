//! Tidy tests: rules about the source tree that the compiler does not check, kept true by
//! reading `src/` (in the spirit of rust-analyzer's `tidy.rs`).
//!
//! Contract: [`layering`] fails when a module imports one that ARCHITECTURE.md's `Layers:` line
//! puts above it, when a top-level module is missing from that line, or when two modules that
//! are not nested in one another import each other, directly or round a longer cycle. The
//! line in ARCHITECTURE.md is the one statement of the order; this test reads it from there.
//! [`planted_violations_are_found`] plants each kind of violation in a copy of a small tree and
//! checks that the same code reports it, so the rule cannot pass by finding nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path below the crate root: `["state", "verify"]` for `src/state/verify.rs`.
type ModPath = Vec<String>;

/// Every `.rs` file under `src`, by module path, with its text (comments removed). `main.rs`
/// and `cli.rs` are the binary: they stand above every layer and are not read.
fn modules(src: &Path) -> BTreeMap<ModPath, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let mut parts: ModPath = path
                .strip_prefix(src)
                .unwrap()
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if matches!(parts.as_slice(), [one] if one == "main" || one == "cli" || one == "lib") {
                continue;
            }
            out.insert(
                parts,
                without_comments(&std::fs::read_to_string(&path).unwrap()),
            );
        }
    }
    out
}

/// The text without `//` comments (doc links name modules without importing them).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path a file's text names: `use` trees expanded, and inline `crate::a::b` and
/// `super::a::b` paths.
fn named_paths(module: &[String], text: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let item = line.trim_start();
        let item = match item.strip_prefix("pub") {
            Some(rest) if rest.starts_with(' ') || rest.starts_with('(') => {
                rest.split_once(' ').map_or("", |(_, r)| r).trim_start()
            }
            _ => item,
        };
        let Some(tree) = item.strip_prefix("use ") else {
            continue;
        };
        let from = start + line.len() - line.trim_start().len() + (item.len() - tree.len());
        let Some(end) = text[from..].find(';') else {
            continue;
        };
        let tree: String = text[from..from + end].split_whitespace().collect();
        expand(&tree, &mut Vec::new(), &mut out);
    }
    let bytes = text.as_bytes();
    let starts = text
        .match_indices("crate::")
        .chain(text.match_indices("super::"));
    for (at, _) in starts {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || b"_:".contains(&bytes[at - 1])) {
            continue;
        }
        let path: String = text[at..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(path.split("::").map(str::to_string).collect());
    }
    out.into_iter()
        .filter_map(|p| resolve(module, &p))
        .collect()
}

/// `a::{b, c::{d, e}}` as the paths `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let (head, rest) = match (tree.find('{'), tree.rfind('}')) {
        (Some(open), Some(close)) if open < close => (&tree[..open], Some(&tree[open + 1..close])),
        (None, _) => (tree, None),
        _ => return,
    };
    let depth = prefix.len();
    prefix.extend(
        head.split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    match rest {
        None => out.push(prefix.clone()),
        Some(inner) => {
            let mut level = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => level += 1,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        expand(&inner[start..i], prefix, out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if start < inner.len() {
                expand(&inner[start..], prefix, out);
            }
        }
    }
    prefix.truncate(depth);
}

/// A path made absolute (`crate::`, `super::`, `self::` resolved); `None` for other crates.
fn resolve(module: &[String], path: &[String]) -> Option<ModPath> {
    // The module a `super::` in this file is relative to: a `foo.rs` file is module `foo`,
    // whose `super` is its parent; so is a `foo/mod.rs`.
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("super") | Some("self") => {
            while let Some(step) = rest.first().map(String::as_str) {
                match step {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module (file) a path lands in: its longest prefix that is a module of the tree.
fn owner(path: &[String], known: &BTreeSet<ModPath>) -> Option<ModPath> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains(p))
}

/// The order ARCHITECTURE.md's `Layers:` line gives, lowest first.
fn layers(architecture: &str) -> Vec<String> {
    let line = architecture
        .lines()
        .find_map(|l| l.trim().strip_prefix("Layers:"))
        .expect("ARCHITECTURE.md has a `Layers:` line");
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every broken rule in the tree under `src`, given the layer order.
fn violations(src: &Path, order: &[String]) -> Vec<String> {
    let files = modules(src);
    let known: BTreeSet<ModPath> = files.keys().cloned().collect();
    let mut found = Vec::new();
    let rank = |m: &str| order.iter().position(|l| l == m);
    let tops: BTreeSet<&String> = known.iter().map(|p| &p[0]).collect();
    for top in &tops {
        if rank(top).is_none() {
            found.push(format!(
                "src/{top}: not on ARCHITECTURE.md's `Layers:` line"
            ));
        }
    }
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, text) in &files {
        for path in named_paths(module, text) {
            let Some(target) = owner(&path, &known) else {
                continue;
            };
            let (from, to) = (&module[0], &target[0]);
            if let (Some(a), Some(b)) = (rank(from), rank(to)) {
                if b > a {
                    found.push(format!(
                        "{}: imports {} ({to} is above {from} in the layers)",
                        module.join("::"),
                        path.join("::")
                    ));
                }
            }
            let nested = target.starts_with(module) || module.starts_with(&target);
            if !nested {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    found.extend(cycles(&edges));
    found
}

/// Each import cycle between modules not nested in one another, once.
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in edges.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut ring: Vec<String> = trail.iter().map(|m| m.join("::")).collect();
                    let least = ring.iter().enumerate().min_by_key(|(_, m)| *m).unwrap().0;
                    ring.rotate_left(least);
                    found.insert(format!("import cycle: {}", ring.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found.into_iter().collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn layering() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let found = violations(&root().join("src"), &layers(&architecture));
    assert!(
        found.is_empty(),
        "the module graph breaks ARCHITECTURE.md's layering:\n{}",
        found.join("\n")
    );
}

/// A small tree, in a temporary directory.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn planted_violations_are_found() {
    let order: Vec<String> = ["low", "high"].map(String::from).to_vec();
    let clean = tree(&[
        ("low/mod.rs", "mod a;\nmod b;\nuse self::a::A;\n"),
        (
            "low/a.rs",
            "use super::b::B;\n/// [`crate::high::H`] is only a link.\n",
        ),
        ("low/b.rs", "pub struct B;\nuse std::fmt;\n"),
        ("high.rs", "use crate::low::{a::A, b::B};\n"),
    ]);
    assert_eq!(violations(clean.path(), &order), Vec::<String>::new());

    let upward = tree(&[
        ("low/mod.rs", "fn f() { crate::high::go(); }\n"),
        ("high.rs", "pub fn go() {}\n"),
    ]);
    let found = violations(upward.path(), &order);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("imports high::go (high is above low"),
        "{found:?}"
    );

    let cycle = tree(&[
        ("low/mod.rs", "mod a;\nmod b;\nmod c;\n"),
        ("low/a.rs", "use super::b::B;\n"),
        ("low/b.rs", "fn f() { super::c::go() }\n"),
        ("low/c.rs", "use super::{a::A, b::B};\n"),
        ("high.rs", ""),
    ]);
    let found = violations(cycle.path(), &order);
    assert!(
        found.contains(&"import cycle: low::a -> low::b -> low::c".to_string()),
        "{found:?}"
    );

    let unlisted = tree(&[("low.rs", ""), ("high.rs", ""), ("stray.rs", "")]);
    assert_eq!(
        violations(unlisted.path(), &order),
        vec!["src/stray: not on ARCHITECTURE.md's `Layers:` line".to_string()]
    );
}
