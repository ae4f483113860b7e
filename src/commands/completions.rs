//! Shell completions and the man page. `completions SHELL` prints clap's
//! script and, for bash and fish, a wrapper that completes node names
//! (after `--nodes`, `--node`, and as host-list items after a comma) by
//! asking the hidden `complete-nodes` helper, which reads the inventory
//! (`-i` on the command line, `$CLUSTERCTL_INVENTORY`, or cluster.yaml).
//! `man` prints the roff page, or writes one per subcommand with `--dir`.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, CompleteNodesArgs, CompletionsArgs, ManArgs};
use crate::cluster::Cluster;
use crate::error::{Error, Result};

/// Appended to clap's bash script: node names for --nodes/--node.
const BASH_NODES: &str = concat!("\n", include_str!("completions-nodes.sh"));

/// Appended to clap's fish script: node names for --nodes/--node.
const FISH_NODES: &str = concat!("\n", include_str!("completions-nodes.fish"));

pub fn completions(args: CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "clusterctl", &mut out);
    let extra = match args.shell {
        clap_complete::Shell::Bash => BASH_NODES,
        clap_complete::Shell::Fish => FISH_NODES,
        _ => "",
    };
    let _ = out.write_all(extra.as_bytes());
    Ok(0)
}

/// The inventory's node names, one a line; nothing when it does not load
/// (a completion never prints an error into the user's command line).
pub fn complete_nodes(args: CompleteNodesArgs) -> Result<i32> {
    if let Ok(cluster) = Cluster::load(&args.inventory.path) {
        for n in cluster.node_names() {
            println!("{n}");
        }
    }
    Ok(0)
}

pub fn man(args: ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    match &args.dir {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .map_err(|e| Error::usage(format!("man page: {e}"), None))?;
            let _ = std::io::stdout().write_all(&buf);
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                path: dir.clone(),
                source,
            })?;
            write_page(dir, "clusterctl", cmd.clone())?;
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                // clap names are 'static; a handful of short strings, once.
                let name: &'static str =
                    Box::leak(format!("clusterctl-{}", sub.get_name()).into_boxed_str());
                write_page(
                    dir,
                    name,
                    sub.clone().name(name).version(env!("CARGO_PKG_VERSION")),
                )?;
            }
        }
    }
    Ok(0)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| Error::usage(format!("man page: {e}"), None))?;
    let path = dir.join(format!("{name}.1"));
    super::write_atomic(&path, &String::from_utf8_lossy(&buf), true)?;
    println!("{}", path.display());
    Ok(())
}
