//! The node is the machine clusterctl runs on: run scripts with the local `sh`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Output, Transport, TransportError};

#[derive(Debug, Default)]
pub struct Local {
    trips: AtomicUsize,
}

impl Transport for Local {
    fn run(&self, script: &str) -> Result<Output, TransportError> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        run_sh(Command::new("sh").arg("-s"), script)
    }
    fn round_trips(&self) -> usize {
        self.trips.load(Ordering::Relaxed)
    }
    fn describe(&self) -> String {
        "local".into()
    }
}

/// Spawn `cmd`, write `script` to its stdin, collect its output.
pub(super) fn run_sh(cmd: &mut Command, script: &str) -> Result<Output, TransportError> {
    let name = cmd_name(cmd);
    let fail = |e: std::io::Error| TransportError {
        message: format!("cannot run {name:?}: {e}"),
        unreachable: false,
    };
    // Its own process group: a Ctrl-C on the terminal reaches clusterctl only,
    // which lets the running round trip finish instead of cutting it in half.
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    // Write stdin from a thread so a chatty script cannot deadlock us.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let text = script.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&text);
    });
    let out = child.wait_with_output().map_err(fail)?;
    let _ = writer.join();
    Ok(Output {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

fn cmd_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}
