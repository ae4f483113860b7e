//! `clusterctl lab`: a virtual cluster on this Linux machine (network, mount,
//! UTS, IPC and PID namespaces per host, overlay roots, real sshd).

use crate::cli::LabCommand;
use crate::error::{Error, Result};

pub fn run(_cmd: LabCommand) -> Result<i32> {
    Err(Error::NotImplemented { what: "lab" })
}
