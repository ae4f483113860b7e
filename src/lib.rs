//! clusterctl: turn a pile of installed Linux machines into a Beowulf-style
//! cluster over SSH. See ARCHITECTURE.md for the module map and data flow.
//!
//! Data flow: `inventory` (raw YAML, with positions) -> `validate` ->
//! `cluster` (the resolved model) -> `render` (desired files per node, via
//! `steps` and `templates`) -> later: facts, plan, apply.

pub mod apply;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod error;
pub mod facts;
pub mod hostlist;
pub mod inventory;
pub mod lab;
pub mod plan;
pub mod render;
pub mod steps;
pub mod templates;
pub mod transport;
pub mod validate;
pub mod yaml_edit;

use std::ffi::OsString;

use clap::Parser;

pub use error::{Error, Result};

/// Parse the arguments, run the command, print an error once. Returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                error::EXIT_ERROR
            } else {
                error::EXIT_OK
            };
            let _ = e.print();
            return code;
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", format_error(&e));
            e.exit_code()
        }
    }
}

/// The text printed for an error: inventory diagnostics as they are, anything
/// else as `error: ...` with its `help:` line.
pub fn format_error(e: &Error) -> String {
    match e {
        Error::Inventory { .. } => e.to_string(),
        _ => match e.help() {
            Some(help) => format!("error: {e}\n  help: {help}"),
            None => format!("error: {e}"),
        },
    }
}
