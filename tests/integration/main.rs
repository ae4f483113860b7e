//! The one integration-test binary. Each module is one area.

mod cli;
mod corpus;
mod lab;
mod render;
mod stacks;
