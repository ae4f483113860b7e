//! A small pseudo-terminal driver for terminal tests (what a person sees
//! and types): spawn a command with a pty as its controlling terminal and
//! stdin/stdout/stderr, wait for text (escape sequences stripped), type.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Pty {
    master: File,
    child: Child,
    /// Everything read so far (escape sequences removed).
    seen: String,
    /// How much of `seen` an `expect` has consumed.
    pos: usize,
}

fn cloexec(fd: i32) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

impl Pty {
    pub(crate) fn spawn(mut cmd: Command) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let ws = libc::winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty with valid out-pointers and a window size.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        cloexec(master);
        cloexec(slave);
        // SAFETY: fresh descriptors owned from here on.
        let (master, slave) = unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .env("TERM", "xterm")
            .env_remove("NO_COLOR");
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // As a shell runs a foreground job: Ctrl-C's SIGINT is not
                // ignored even if this test runs in a background job.
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn under a pty");
        drop(cmd); // our copies of the slave end
        Pty {
            master,
            child,
            seen: String::new(),
            pos: 0,
        }
    }

    /// Read what is there within `wait`; false at EOF (the child closed it).
    fn fill(&mut self, wait: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(1000) as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            return true;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) | Err(_) => false, // EIO once the child's side is closed
            Ok(n) => {
                self.seen
                    .push_str(&strip_escapes(&String::from_utf8_lossy(&buf[..n])));
                true
            }
        }
    }

    /// Wait until `needle` appears after what was consumed; returns the
    /// text up to and including it. Panics with the screen on timeout/EOF.
    pub(crate) fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen[self.pos..].find(needle) {
                let upto = self.pos + i + needle.len();
                let got = self.seen[self.pos..upto].to_string();
                self.pos = upto;
                return got;
            }
            let now = Instant::now();
            assert!(
                now < end,
                "timed out waiting for {needle:?}; the terminal showed:\n{}",
                self.seen
            );
            if !self.fill(end - now) {
                assert!(
                    self.seen[self.pos..].contains(needle),
                    "the program ended before {needle:?}; the terminal showed:\n{}",
                    self.seen
                );
            }
        }
    }

    /// Type `text` (a `\r` is Enter, `\x04` Ctrl-D, `\x03` Ctrl-C).
    pub(crate) fn send(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Wait for the program to end (reading its output meanwhile);
    /// returns its status and everything the terminal showed.
    pub(crate) fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                while self.has_input() && self.fill(Duration::from_millis(50)) {}
                return (st, std::mem::take(&mut self.seen));
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!(
                    "still running after {timeout:?}; the terminal showed:\n{}",
                    self.seen
                );
            }
            self.fill(Duration::from_millis(100));
        }
    }

    fn has_input(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 0) > 0 && pfd.revents & libc::POLLIN != 0 }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Remove CSI/OSC escape sequences and carriage returns.
pub(crate) fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\x07' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}
