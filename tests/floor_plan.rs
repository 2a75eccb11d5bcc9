//! The floor plan of `src/` (issue 20): the top-level modules import each other without a
//! cycle, and nothing imports `commands` (the commands are the top; `main.rs` and `lib.rs` are
//! above the plan). A module that needs something from a module above it gets it moved down,
//! or passed in by its caller.
//!
//! The graph is read from the source, not from the compiler: every `crate::NAME` in a file of
//! `src/` (`use crate::{a, b::c}` groups included, doc links too), and every `super::…::NAME`
//! that climbs to the crate root, is an arrow from the file's top-level module to `NAME`. A
//! trailing `#[cfg(test)] mod tests` block is skipped: unit tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each arrow `from → to` and the files (relative to `src/`) that make it.
type Edges = BTreeMap<(String, String), BTreeSet<String>>;

#[test]
fn src_has_no_import_cycle() {
    let edges = module_edges(&src_dir());
    if let Some(cycle) = find_cycle(&edges) {
        panic!("{}", describe_cycle(&cycle, &edges));
    }
}

#[test]
fn nothing_imports_the_commands() {
    let upward: Vec<String> = module_edges(&src_dir())
        .into_iter()
        .filter(|((from, to), _)| to == "commands" && from != "commands")
        .map(|((from, _), files)| format!("  {from} -> commands, in {files:?}"))
        .collect();
    assert!(
        upward.is_empty(),
        "modules below the commands import them (the commands are the top of src/; only main.rs \
         and lib.rs may use them):\n{}\nmove what they use out of commands/ into the module \
         that owns it (or lower), or have the command pass it in",
        upward.join("\n")
    );
}

/// The reader itself, on a made-up file: groups, nested groups, paths, its own module and
/// unknown names, and the skipped test block.
#[test]
fn the_reader_finds_grouped_and_plain_paths() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d", "e", "me"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let src = "use crate::{a, b::{x, y}, me::z};\n\
               use crate::c::Thing;\n\
               fn f() { crate::d::g(); crate::std_like::h(); crate::me::k(); }\n\
               #[cfg(test)]\nmod tests {\n    use crate::e::T;\n}\n";
    let found = referenced_modules(src, "me", 1, &modules);
    let expected: BTreeSet<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    assert_eq!(found, expected);
    // In `src/me/inner.rs` (depth 2): `super::` is `me`, `super::super::` the crate root.
    let src = "use super::a::X;\nuse super::super::{b, c::Y};\nfn f() { super::super::e::g(); }\n";
    let found = referenced_modules(src, "me", 2, &modules);
    let expected: BTreeSet<String> = ["b", "c", "e"].iter().map(|s| s.to_string()).collect();
    assert_eq!(found, expected);
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules: `src/NAME.rs` (not `lib.rs`, `main.rs`) and `src/NAME/`.
fn top_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .expect("read src/")
        .map(|e| e.expect("entry of src/").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if p.is_dir() {
                Some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (stem != "lib" && stem != "main").then(|| stem.to_string())
            }
        })
        .collect()
}

/// Every arrow between top-level modules, with the files that make it.
fn module_edges(src: &Path) -> Edges {
    let modules = top_modules(src);
    let mut edges = Edges::new();
    for file in rust_files(src) {
        let rel = file
            .strip_prefix(src)
            .expect("under src/")
            .to_string_lossy()
            .into_owned();
        let first = rel.split('/').next().unwrap_or_default();
        let from = first.strip_suffix(".rs").unwrap_or(first).to_string();
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for to in referenced_modules(&text, &from, module_depth(&rel), &modules) {
            edges
                .entry((from.clone(), to))
                .or_default()
                .insert(rel.clone());
        }
    }
    edges
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read a folder of src/") {
        let path = entry.expect("folder entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// How deep the module of the file `rel` (relative to `src/`) is: 1 for `config.rs` and
/// `replica/mod.rs`, 2 for `replica/ledger.rs`.
fn module_depth(rel: &str) -> usize {
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.last() {
        Some(&"mod.rs") => parts.len() - 1,
        _ => parts.len(),
    }
}

/// The top-level modules other than `own` that `text` names as `crate::NAME`, or as
/// `super::NAME` climbed up to the crate root from a module `depth` deep, before a trailing
/// `#[cfg(test)] mod tests` block.
fn referenced_modules(
    text: &str,
    own: &str,
    depth: usize,
    modules: &BTreeSet<String>,
) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        found.extend(heads(&code[i + "crate::".len()..]));
    }
    for (i, _) in code.match_indices("super::") {
        let chained = code[..i].ends_with(|c: char| c == ':' || c.is_alphanumeric() || c == '_');
        let mut rest = &code[i..];
        let mut climbed = 0;
        while let Some(after) = rest.strip_prefix("super::") {
            rest = after;
            climbed += 1;
        }
        if !chained && climbed == depth {
            found.extend(heads(rest));
        }
    }
    found.retain(|n| n != own && modules.contains(n));
    found
}

/// The first segment of the path at the start of `rest`, or of each item of a `{…}` group.
fn heads(rest: &str) -> Vec<String> {
    match rest.strip_prefix('{') {
        Some(group) => group_heads(group),
        None => vec![ident(rest).to_string()],
    }
}

/// The first path segment of each item of a `{a, b::c, d::{e, f}}` group (`group` starts after
/// the opening brace).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if at_item_start && (c.is_alphanumeric() || c == '_') => {
                heads.push(ident(&group[i..]).to_string());
                at_item_start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// One cycle of the graph, as the modules along it (the first repeated at the end), if any.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from.as_str()).or_default().push(to.as_str());
    }
    let mut done = BTreeSet::new();
    for start in next.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = dfs(start, &next, &mut path, &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// Depth-first from `node`; `path` is the current chain, `done` the nodes proved cycle-free.
fn dfs<'a>(
    node: &'a str,
    next: &BTreeMap<&'a str, Vec<&'a str>>,
    path: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|n| *n == node) {
        let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node);
    for to in next.get(node).into_iter().flatten() {
        if let Some(cycle) = dfs(to, next, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node);
    None
}

/// The failure message: the cycle, and for each arrow the files that make it.
fn describe_cycle(cycle: &[String], edges: &Edges) -> String {
    let mut message = format!(
        "src/ has an import cycle between top-level modules: {}\n",
        cycle.join(" -> ")
    );
    for pair in cycle.windows(2) {
        let files = &edges[&(pair[0].clone(), pair[1].clone())];
        message.push_str(&format!(
            "  {} -> {}: `crate::{}` (or `super::…::{}`) in {files:?}\n",
            pair[0], pair[1], pair[1], pair[1]
        ));
    }
    message.push_str(
        "one of these arrows points up: move what it uses down into the lower module (or a \
         module below both), or have the caller pass it in (as commands pass a RunOutcome to \
         RunLog::close)",
    );
    message
}
