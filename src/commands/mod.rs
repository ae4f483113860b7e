//! One short script per subcommand, over the core modules.

mod add_node;
mod check;
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
        Command::Apply(_) => Err(Error::NotImplemented { what: "apply" }),
        Command::Diff(_) => Err(Error::NotImplemented { what: "diff" }),
        Command::Completions(args) => {
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "clusterctl", &mut std::io::stdout());
            Ok(0)
        }
        Command::Lab(cmd) => crate::lab::run(cmd),
    }
}
