//! The one integration-test binary. Each module is one area.

mod bench;
mod cli;
mod cluster_job;
mod corpus;
pub(crate) mod lab;
mod lab_stacks;
mod pty;
mod render;
mod stacks;
mod terminal;
