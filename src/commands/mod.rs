//! One short script per subcommand, over the core modules.

mod add_node;
mod apply;
mod check;
mod completions;
mod confirm_plan;
mod diff;
mod discover;
mod exec;
mod export;
mod from_leases;
mod init;
mod init_probe;
mod keys;
mod progress;
mod prompt;
mod remote;
mod remove_node;
mod render;
mod render_manifest;
mod select;
mod verify;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};

/// The commented example inventory (`clusterctl example`).
pub const EXAMPLE: &str = include_str!("../../examples/cluster.yaml");

/// Run the parsed command; returns the exit code on success.
pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(args),
        Command::Render(args) => render::run(args),
        Command::AddNode(args) => add_node::run(args, cli.verbose),
        Command::RemoveNode(args) => remove_node::run(args, cli.verbose),
        Command::Apply(args) if args.dry_run => diff::run(&args.remote, cli.verbose),
        Command::Apply(args) => apply::run(&args, cli.verbose),
        Command::Diff(args) => diff::run(&args.remote, cli.verbose),
        Command::Exec(args) => exec::run(&args),
        Command::Discover(args) => discover::run(&args),
        Command::Inventory(args) => export::run(&args),
        Command::Example => {
            print!("{}", EXAMPLE);
            Ok(0)
        }
        Command::Verify(args) => verify::run(&args, cli.verbose),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
        Command::CompleteNodes(args) => completions::complete_nodes(args),
        Command::Lab(cmd) => crate::lab::run(cmd),
    }
}

/// Write `content` to `path` atomically: a temp file with an unpredictable name
/// in the same directory (created exclusively, so a planted symlink is never
/// followed), flushed, then renamed over, or with `replace == false` linked into
/// place so an existing file is never clobbered. An existing file's permissions
/// are kept; a symlinked path is written through to its target.
pub(crate) fn write_atomic(path: &std::path::Path, content: &str, replace: bool) -> Result<()> {
    use std::io::Write;
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?
        }
        _ => path.to_path_buf(),
    };
    let err = |source| Error::Write {
        path: target.clone(),
        source,
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".clusterctl-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(err)?;
    if let Ok(meta) = std::fs::metadata(&target) {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(err)?;
    }
    tmp.write_all(content.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    let persisted = if replace {
        tmp.persist(&target).map(|_| ())
    } else {
        tmp.persist_noclobber(&target).map(|_| ())
    };
    match persisted {
        Ok(()) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Error::Exists { path: target })
        }
        Err(e) => Err(err(e.error)),
    }
}
