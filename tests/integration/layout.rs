//! The source tree's shape, read as text: no two files under `src/` import
//! each other, nothing imports the crate root back, and no file is over 600
//! lines before its tests.
//!
//! A file's imports are the paths it names that start with `crate::`,
//! `super::` or `self::`, or with a module it declares (`mod x;` then
//! `x::…`), in `use` trees and in code. Each is mapped to the file of the
//! longest module prefix that exists; a name a file re-exports (`pub use`)
//! is followed to where it is defined. The test module (`#[cfg(test)] mod
//! tests`) counts as a module inside its file. A module's `mod.rs` and its
//! own submodules may see each other (the parent declares and dispatches,
//! the children use its types): that pair is one module, not two files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/` but the binary's `main.rs`, by module path.
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = src();
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap();
        let mut path: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let last = path.pop().unwrap();
        match last.as_str() {
            "main.rs" if path.is_empty() => continue,
            "lib.rs" if path.is_empty() => {}
            "mod.rs" => {}
            other => path.push(other.trim_end_matches(".rs").to_string()),
        }
        out.insert(path, f);
    }
    out
}

/// The line index of a file's `#[cfg(test)]` module, if it has one.
fn tests_start(lines: &[&str]) -> Option<usize> {
    lines.iter().enumerate().position(|(i, l)| {
        l.trim() == "#[cfg(test)]"
            && lines[i + 1..]
                .iter()
                .find(|n| !n.trim().is_empty())
                .is_some_and(|n| n.trim_start().starts_with("mod ") && n.trim_end().ends_with('{'))
    })
}

/// Code without comments and string literals (so `"a::b"` and doc links
/// are not imports).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                if b[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if c == 'r'
            && matches!(b.get(i + 1), Some('"') | Some('#'))
            && !ident_char(prev(&b, i))
        {
            // Raw string r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if b[j] == '\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if b.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && b.get(i + 2) == Some(&'\'') {
            // A char literal like '"'; lifetimes pass through.
            out.push_str("' '");
            i += 3;
        } else if c == '\'' && b.get(i + 1) == Some(&'\\') {
            let mut j = i + 2;
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev(b: &[char], i: usize) -> char {
    if i == 0 {
        ' '
    } else {
        b[i - 1]
    }
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One `use` tree expanded into its paths (`a::{b, c::d}` -> `a::b`, `a::c::d`),
/// each with the name it binds.
fn expand_use(tree: &str) -> Vec<(Vec<String>, String)> {
    fn split_top(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out.into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
    fn go(prefix: &[String], tree: &str, out: &mut Vec<(Vec<String>, String)>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head: Vec<String> = tree[..open]
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let inner = &tree[open + 1..tree.rfind('}').unwrap()];
            let mut p = prefix.to_vec();
            p.extend(head);
            for part in split_top(inner) {
                go(&p, part, out);
            }
            return;
        }
        let (path, alias) = match tree.split_once(" as ") {
            Some((p, a)) => (p.trim(), Some(a.trim().to_string())),
            None => (tree, None),
        };
        let mut p = prefix.to_vec();
        for seg in path.split("::").map(str::trim).filter(|s| !s.is_empty()) {
            if seg != "self" || p.is_empty() {
                p.push(seg.to_string());
            }
        }
        let name = alias.unwrap_or_else(|| p.last().cloned().unwrap_or_default());
        out.push((p, name));
    }
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

/// What one module (a file, or its test module) names.
struct Unit {
    module: Vec<String>,
    /// Paths as written, first segment `crate`, `super`, `self` or a child.
    paths: Vec<Vec<String>>,
    /// `pub use` re-exports: bound name -> path as written.
    reexports: BTreeMap<String, Vec<String>>,
}

fn read_unit(module: Vec<String>, code: &str) -> Unit {
    let mut children = BTreeSet::new();
    let mut paths = Vec::new();
    let mut reexports = BTreeMap::new();
    let mut rest = String::new();
    // `use` items (up to their `;`), and `mod x;` declarations.
    let mut text = code;
    while !text.is_empty() {
        let at = find_word(text, "use");
        let Some(at) = at else {
            rest.push_str(text);
            break;
        };
        rest.push_str(&text[..at]);
        let Some(end) = text[at..].find(';') else {
            rest.push_str(&text[at..]);
            break;
        };
        let before = text[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        for (p, name) in expand_use(&text[at + 3..at + end]) {
            if public {
                reexports.insert(name, p.clone());
            }
            paths.push(p);
        }
        text = &text[at + end + 1..];
    }
    for line in rest.lines() {
        let l = line.trim();
        let l = l
            .strip_prefix("pub(crate) ")
            .or_else(|| l.strip_prefix("pub "))
            .unwrap_or(l);
        if let Some(name) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            children.insert(name.trim().to_string());
        }
    }
    // Paths in code: `a::b::c` runs of identifiers.
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if ident_char(chars[i]) && !ident_char(prev(&chars, i)) && prev(&chars, i) != ':' {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < chars.len() && ident_char(chars[j]) {
                    j += 1;
                }
                if s == j {
                    break;
                }
                segs.push(chars[s..j].iter().collect::<String>());
                if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                paths.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    let paths = paths
        .into_iter()
        .filter(|p| {
            let first = p[0].as_str();
            matches!(first, "crate" | "super" | "self") || children.contains(first)
        })
        .collect();
    Unit {
        module,
        paths,
        reexports,
    }
}

/// Byte offset of `word` standing alone, followed by whitespace.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(k) = text[from..].find(word) {
        let at = from + k;
        let before = text[..at].chars().next_back().unwrap_or(' ');
        let after = text[at + word.len()..].chars().next().unwrap_or('x');
        if !ident_char(before) && after.is_whitespace() {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

struct Tree {
    files: BTreeMap<Vec<String>, PathBuf>,
    units: BTreeMap<Vec<String>, Unit>,
}

impl Tree {
    fn read() -> Tree {
        let files = modules();
        let mut units = BTreeMap::new();
        for (module, file) in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let (main, tests) = match tests_start(&lines) {
                Some(k) => (lines[..k].join("\n"), lines[k..].join("\n")),
                None => (text.clone(), String::new()),
            };
            units.insert(module.clone(), read_unit(module.clone(), &code_only(&main)));
            if !tests.is_empty() {
                let mut m = module.clone();
                m.push("tests".into());
                units.insert(m.clone(), read_unit(m, &code_only(&tests)));
            }
        }
        Tree { files, units }
    }

    /// The module a file-or-test-module unit belongs to (its file's).
    fn file_of_unit(&self, unit: &[String]) -> Vec<String> {
        if self.files.contains_key(unit) {
            unit.to_vec()
        } else {
            unit[..unit.len() - 1].to_vec()
        }
    }

    /// The file (module path) a path written in `unit` lands in.
    fn resolve(&self, unit: &Unit, path: &[String], depth: usize) -> Option<Vec<String>> {
        let mut base = unit.module.clone();
        let mut segs = path;
        match segs[0].as_str() {
            "crate" => {
                base.clear();
                segs = &segs[1..];
            }
            "self" => segs = &segs[1..],
            "super" => {
                while segs.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    segs = &segs[1..];
                }
            }
            _ => {}
        }
        let mut full = base;
        full.extend(segs.iter().cloned());
        // The longest prefix that is a file (or a test module's file).
        let mut k = full.len();
        loop {
            let m = &full[..k];
            if self.units.contains_key(m) {
                let file = self.file_of_unit(m);
                // A name the file only re-exports: where it comes from.
                if let (Some(next), Some(u)) = (full.get(k), self.units.get(m)) {
                    if let Some(target) = u.reexports.get(next) {
                        if depth < 8 && target.first().is_some_and(|s| s != next) {
                            if let Some(t) = self.resolve(u, target, depth + 1) {
                                return Some(t);
                            }
                        }
                    }
                }
                return Some(file);
            }
            if k == 0 {
                return None;
            }
            k -= 1;
        }
    }

    /// file -> files it imports (itself left out).
    fn imports(&self) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
        let mut out: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for unit in self.units.values() {
            let from = self.file_of_unit(&unit.module);
            let entry = out.entry(from.clone()).or_default();
            for p in &unit.paths {
                if let Some(to) = self.resolve(unit, p, 0) {
                    if to != from {
                        entry.insert(to);
                    }
                }
            }
        }
        out
    }

    fn name(&self, module: &[String]) -> String {
        let f = &self.files[module];
        f.strip_prefix(src().parent().unwrap())
            .unwrap()
            .display()
            .to_string()
    }
}

#[test]
fn no_two_source_files_import_each_other() {
    let tree = Tree::read();
    let imports = tree.imports();
    assert!(imports.len() > 50, "read too few files: {}", imports.len());
    let mut pairs = Vec::new();
    for (a, tos) in &imports {
        for b in tos {
            let parent_child =
                |x: &Vec<String>, y: &Vec<String>| y.len() == x.len() + 1 && y.starts_with(x);
            if a < b
                && !parent_child(a, b)
                && !parent_child(b, a)
                && imports.get(b).is_some_and(|t| t.contains(a))
            {
                pairs.push(format!("{} <-> {}", tree.name(a), tree.name(b)));
            }
        }
    }
    assert!(
        pairs.is_empty(),
        "files that import each other:\n{}",
        pairs.join("\n")
    );
}

/// Nothing reaches back into `lib.rs` for what it defines (its re-exports
/// lead elsewhere).
#[test]
fn nothing_imports_the_crate_root() {
    let tree = Tree::read();
    let root: Vec<String> = Vec::new();
    let back: Vec<String> = tree
        .imports()
        .iter()
        .filter(|(from, tos)| !from.is_empty() && tos.contains(&root))
        .map(|(from, _)| tree.name(from))
        .collect();
    assert!(back.is_empty(), "import from lib.rs: {back:?}");
}

/// The reader itself: a known import, a re-export followed, a test module's
/// `super`.
#[test]
fn the_import_reader_finds_what_it_should() {
    let tree = Tree::read();
    let imports = tree.imports();
    let m = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
    assert!(
        imports[&m("report")].contains(&m("plan")),
        "{:?}",
        imports[&m("report")]
    );
    assert!(imports[&Vec::new()].contains(&m("commands")));
    let u = expand_use("super::{a, b::{self, C}, d as e}");
    let got: Vec<String> = u
        .iter()
        .map(|(p, n)| format!("{}={n}", p.join("::")))
        .collect();
    assert_eq!(
        got,
        ["super::a=a", "super::b=b", "super::b::C=C", "super::d=e"]
    );
    assert_eq!(
        code_only("let a = \"crate::x\"; // super::y\nb"),
        "let a = \"\"; \nb"
    );
}

#[test]
fn no_file_is_over_600_lines_before_its_tests() {
    let tree = Tree::read();
    let mut long = Vec::new();
    for (module, file) in &tree.files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let n = tests_start(&lines).unwrap_or(lines.len());
        if n > MAX_LINES {
            long.push(format!("{}: {n} lines", tree.name(module)));
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines before the tests:\n{}",
        long.join("\n")
    );
}
