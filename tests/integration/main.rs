//! The one integration-test binary. Each module is one area.

mod check_ux;
mod cli;
mod completion;
mod corpus;
mod inventory_doc;
pub(crate) mod lab;
mod pty;
mod render;
mod terminal;
