//! The one integration-test binary. Each module is one area.

mod cli;
mod cluster_job;
mod corpus;
mod lab;
mod render;
