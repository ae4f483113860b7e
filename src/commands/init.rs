//! TODO
use crate::error::{Error, Result};
pub fn run(_a: impl std::fmt::Debug) -> Result<i32> {
    Err(Error::NotImplemented { what: "init" })
}
