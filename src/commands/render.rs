//! `clusterctl render`: every file a node should have, offline. Prints them, or
//! writes one tree per node under `--out DIR` mirroring the target paths.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::RenderArgs;
use crate::cluster::Cluster;
use crate::desired::{self, RenderedFile};
use crate::error::{Error, Result};
use crate::templates::Templates;

/// The override directory: `--templates DIR`, else `templates/` beside the
/// inventory when it exists.
pub fn template_dir(inventory: &Path, flag: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(dir) = flag {
        if !dir.is_dir() {
            return Err(Error::usage(
                format!("template directory {} does not exist", dir.display()),
                Some("pass an existing directory to --templates"),
            ));
        }
        return Ok(Some(dir.to_path_buf()));
    }
    let beside = inventory
        .parent()
        .unwrap_or(Path::new("."))
        .join("templates");
    Ok(beside.is_dir().then_some(beside))
}

pub fn run(args: RenderArgs) -> Result<i32> {
    let path = &args.inventory.path;
    let cluster = Cluster::load(path)?;
    let templates = Templates::load(template_dir(path, args.templates.dir.as_deref())?.as_deref())?;
    let nodes: Vec<(String, Vec<RenderedFile>)> = match &args.node {
        Some(n) => vec![(n.clone(), desired::render_node(&cluster, &templates, n)?)],
        None => desired::render_all(&cluster, &templates)?,
    };
    match &args.out {
        Some(dir) => {
            for (node, files) in &nodes {
                for f in files {
                    let target = dir.join(node).join(f.path.trim_start_matches('/'));
                    write_file(&target, &f.content)?;
                }
                println!(
                    "{}: {} files under {}",
                    node,
                    files.len(),
                    dir.join(node).display()
                );
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            let mut text = String::new();
            for (node, files) in &nodes {
                for f in files {
                    text.push_str(&format!("==> {node}: {}\n", f.describe()));
                    text.push_str(&f.content);
                    if !f.content.ends_with('\n') {
                        text.push('\n');
                    }
                    text.push('\n');
                }
            }
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(0)
}

fn write_file(target: &Path, content: &str) -> Result<()> {
    let err = |source| Error::Write {
        path: target.to_path_buf(),
        source,
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(target, content).map_err(err)
}
