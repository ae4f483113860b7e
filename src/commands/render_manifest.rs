//! What `render --out DIR` wrote before: `DIR/.clusterctl-render`, one
//! `NODE/relative/path` a line. A later run removes the files it lists for
//! nodes that are gone from the inventory (and files a rendered node no
//! longer gets), never anything it did not write: an entry must be a plain
//! relative path, a symlink on the way is refused, and only regular files
//! are removed (then their directories, when empty).

use std::collections::BTreeMap;
use std::path::{Component, Path};

use crate::error::{Error, Result};

/// The manifest's file name inside `--out`.
pub const MANIFEST: &str = ".clusterctl-render";

/// The files of each node as the last run left them, updated as nodes render.
pub struct Manifest {
    old: BTreeMap<String, BTreeMap<String, Option<u64>>>,
    new: BTreeMap<String, BTreeMap<String, Option<u64>>>,
}

/// The largest manifest read: 10,000 workers' files are about 25 MiB.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

impl Manifest {
    /// The manifest in `dir`, or an empty one. Lines that are not a plain
    /// relative path (`..`, absolute, empty) are ignored: never followed.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => crate::validate::read_text(
                &path,
                MAX_MANIFEST_BYTES,
                "a render manifest has one line per rendered file",
                "remove it if it is not the one render --out wrote (render then removes no stale file)",
            )?,
            _ => String::new(),
        };
        let mut old: BTreeMap<String, BTreeMap<String, Option<u64>>> = BTreeMap::new();
        for line in text.lines() {
            // An entry without its fingerprint (an older manifest) is
            // forgotten, never removed.
            let (entry, print) = match line.split_once('\t') {
                Some((e, p)) => (e, u64::from_str_radix(p, 16).ok()),
                None => (line, None),
            };
            if !plain(entry) {
                continue;
            }
            if let Some((node, rel)) = entry.split_once('/') {
                old.entry(node.to_string())
                    .or_default()
                    .insert(rel.to_string(), print);
            }
        }
        Ok(Manifest {
            old,
            new: BTreeMap::new(),
        })
    }

    /// `node` was rendered now with these files (relative path, content).
    pub fn rendered(&mut self, node: &str, files: Vec<(String, &str)>) {
        let files = files
            .into_iter()
            .map(|(rel, content)| (rel, Some(crate::fnv::fnv1a64(content.as_bytes()))))
            .collect();
        self.new.insert(node.to_string(), files);
    }

    /// Remove what is stale and write the new manifest. Nodes not rendered
    /// now but still in the inventory (`keep`) keep their entries. Returns
    /// the nodes whose whole tree went.
    pub fn finish(mut self, dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for (node, files) in std::mem::take(&mut self.old) {
            let now = match self.new.get(&node) {
                Some(now) => now.clone(),
                None if keep(&node) => {
                    self.new.insert(node, files);
                    continue;
                }
                None => {
                    gone.push(node.clone());
                    BTreeMap::new()
                }
            };
            for (rel, print) in files.iter().filter(|(r, _)| !now.contains_key(*r)) {
                if let Some(print) = print {
                    remove_owned(dir, &node, rel, *print)?;
                }
            }
        }
        let mut text = String::new();
        for (node, files) in &self.new {
            for (f, print) in files {
                match print {
                    Some(p) => text.push_str(&format!("{node}/{f}\t{p:016x}\n")),
                    None => text.push_str(&format!("{node}/{f}\n")),
                }
            }
        }
        // A link planted in place of the manifest is replaced, never
        // written through.
        let path = dir.join(MANIFEST);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
            std::fs::remove_file(&path).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        }
        super::write_atomic(&path, &text, true)?;
        Ok(gone)
    }
}

/// A relative path of plain components only.
fn plain(line: &str) -> bool {
    !line.is_empty()
        && Path::new(line)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Remove `dir/node/rel` if it is a regular file reached without a
/// symlink and still holds what clusterctl wrote (`print`), then its parent
/// directories up to `dir/node` while empty.
fn remove_owned(dir: &Path, node: &str, rel: &str, print: u64) -> Result<()> {
    let base = dir.join(node);
    let target = base.join(rel);
    let mut walked = dir.to_path_buf();
    for c in Path::new(node).join(rel).components() {
        walked.push(c);
        match std::fs::symlink_metadata(&walked) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::usage(
                    format!(
                        "refusing to remove through {}: it is a symbolic link",
                        walked.display()
                    ),
                    Some("render --out never follows links below the output directory"),
                ))
            }
            Ok(_) => {}
            Err(_) => return Ok(()), // already gone
        }
    }
    if !std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let ours = std::fs::read(&target).is_ok_and(|b| crate::fnv::fnv1a64(&b) == print);
    if !ours {
        return Ok(()); // changed since, or never clusterctl's: kept
    }
    std::fs::remove_file(&target).map_err(|source| Error::Write {
        path: target.clone(),
        source,
    })?;
    let mut parent = target.parent();
    while let Some(p) = parent {
        if !p.starts_with(&base) || std::fs::remove_dir(p).is_err() {
            break;
        }
        parent = p.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 22: a 5 MiB manifest (a big cluster's) was refused as "is it
    /// really the inventory?".
    #[test]
    fn a_big_clusters_manifest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        let mut n = 0;
        while text.len() < 5 << 20 {
            text.push_str(&format!("n{n:05}/etc/hosts\t{:016x}\n", n as u64));
            n += 1;
        }
        std::fs::write(dir.path().join(MANIFEST), &text).unwrap();
        let m = Manifest::read(dir.path()).unwrap();
        assert_eq!(m.old.len(), n);
    }
}
