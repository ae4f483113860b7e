//! One short script per subcommand, over the core modules.

mod add_node;
mod check;
mod diff;
mod init;
mod render;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};

/// Run the parsed command; returns the exit code on success.
pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(args),
        Command::Render(args) => render::run(args),
        Command::AddNode(args) => add_node::run(args),
        Command::Apply(args) if args.dry_run => {
            diff::run(&args.inventory.path, args.nodes.as_deref(), cli.verbose)
        }
        Command::Apply(_) => Err(Error::NotImplemented { what: "apply" }),
        Command::Diff(args) => diff::run(&args.inventory.path, args.nodes.as_deref(), cli.verbose),
        Command::Completions(args) => {
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "clusterctl", &mut std::io::stdout());
            Ok(0)
        }
        Command::Lab(cmd) => crate::lab::run(cmd),
    }
}

/// Write `content` to `path` atomically: a temp file in the same directory,
/// flushed, then renamed over (or, with `replace == false`, linked into place so
/// an existing file is never clobbered). An existing file's permissions are kept.
pub(crate) fn write_atomic(path: &std::path::Path, content: &str, replace: bool) -> Result<()> {
    use std::io::Write;
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.clusterctl-{}.tmp",
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        drop(f);
        if replace {
            std::fs::rename(&tmp, path)
        } else {
            std::fs::hard_link(&tmp, path)
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists {
            path: path.to_path_buf(),
        }),
        r => r.map_err(err),
    }
}
