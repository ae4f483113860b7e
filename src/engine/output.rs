//! Wording what the engine's scripts print (`@@key rest` lines with their
//! `@@| detail` lines, split by `transport::protocol`).

/// Detail lines on one line.
pub(super) fn summarize(detail: &[&str]) -> String {
    if detail.is_empty() {
        "(no output)".to_string()
    } else {
        detail.join(" / ")
    }
}

/// The last non-empty line of stderr, as `: LINE`, or nothing.
pub(super) fn stderr_tail(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    match s.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(": {}", l.trim()),
        None => String::new(),
    }
}

/// `@@locked RUN SECONDS`: another apply holds the node's lock.
pub(super) fn locked(rest: &str) -> String {
    let (run, secs) = rest.split_once(' ').unwrap_or((rest, "?"));
    if secs == "running" {
        return format!(
            "another apply (run {run}) is changing this node right now; its lock goes when it \
             finishes (or 30s after its controller stops); wait and run apply again"
        );
    }
    format!(
        "another apply (run {run}) is changing this node; its lock expires in {secs}s \
         unless it finishes first; wait and run apply again"
    )
}
