//! The one integration-test binary. Each module is one area.

mod cli;
mod corpus;
mod lab;
mod lab_stacks;
mod render;
mod stacks;
