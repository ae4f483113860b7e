//! clusterctl: turn a pile of installed Linux machines into a Beowulf-style
//! cluster over SSH. See ARCHITECTURE.md for the module map and data flow.
//!
//! Data flow, one way: `inventory` (raw YAML, with positions) -> `validate`
//! (with `values`) -> `cluster` (the resolved model) -> `facts` (observe each
//! node: one probe round trip) -> `desired` (files and handler commands,
//! chosen by the `catalog` with the facts, rendered by `templates`) -> `plan`
//! (desired vs observed) -> `engine` (write, validate, rename; handlers) ->
//! `report` (text or JSON). `commands` are the short scripts that wire these
//! up; only `facts`, `engine` and `lab` reach a system, through `transport`.

#[global_allocator]
static ALLOC: render_budget::Budgeted = render_budget::Budgeted;

pub mod block;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod cluster_key;
pub mod commands;
pub mod desired;
pub mod engine;
pub mod error;
pub mod facts;
pub mod family;
pub mod fnv;
pub mod hostlist;
pub mod inventory;
pub mod lab;
pub mod node_groups;
pub mod node_state;
pub mod plan;
pub mod pool;
pub mod render_budget;
pub mod report;
pub mod run_id;
pub mod style;
pub mod template_context;
pub mod templates;
pub mod transport;
pub mod validate;
pub mod values;
pub mod verify;
pub mod yaml_edit;

use std::ffi::OsString;

use clap::Parser;

pub use error::{format_error, print_error, Error, Result};

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
    style::set(cli.color);
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            e.exit_code()
        }
    }
}
