//! The one integration-test binary. Each module is one area.

mod bench;
mod check_ux;
mod cli;
mod cluster_job;
mod completion;
mod corpus;
mod deb;
mod inventory_doc;
pub(crate) mod lab;
mod lab_slurm;
mod lab_stacks;
mod lab_users;
mod layout;
mod pty;
mod render;
mod shellcheck;
mod stacks;
mod terminal;
