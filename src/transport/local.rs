//! The node is the machine clusterctl runs on: run scripts with the local `sh`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Output, Transport, TransportError};

#[derive(Debug, Default)]
pub struct Local {
    trips: AtomicUsize,
}

impl Transport for Local {
    fn run(&self, script: &str) -> Result<Output, TransportError> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        run_sh(Command::new("sh").arg("-s"), script, None)
    }
    fn round_trips(&self) -> usize {
        self.trips.load(Ordering::Relaxed)
    }
    fn describe(&self) -> String {
        "local".into()
    }
}

/// Spawn `cmd`, write `script` to its stdin, collect its output. With a
/// timeout, a round trip still running then is stopped (its process group
/// killed) and reported as a failure, so one hung node cannot hang the run.
pub(super) fn run_sh(
    cmd: &mut Command,
    script: &str,
    timeout: Option<Duration>,
) -> Result<Output, TransportError> {
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
    let read = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    );
    let deadline = timeout.map(|t| (Instant::now() + t, t));
    let status = loop {
        if let Some(st) = child.try_wait().map_err(fail)? {
            break st;
        }
        if let Some((end, t)) = deadline {
            if Instant::now() >= end {
                // SAFETY: kill(2) on the process group we created for the child.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return Err(TransportError {
                    message: format!(
                        "no answer within {}s; the round trip was stopped (--timeout)",
                        t.as_secs()
                    ),
                    unreachable: false,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Ok(Output {
        status: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn cmd_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}
