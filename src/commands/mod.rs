//! One short script per subcommand, over the core modules.

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};

/// Run the parsed command; returns the exit code on success.
pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Lab(cmd) => crate::lab::run(cmd),
        _ => Err(Error::NotImplemented { what: "command" }),
    }
}
