//! Reading what the engine's scripts print: `@@key rest` lines, each with
//! the `@@| detail` lines that follow it.

/// Output lines, each with the `@@| ` detail lines that follow it.
pub(super) fn with_detail(text: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("@@|") {
            Some(rest) => {
                let rest = rest.strip_prefix(' ').unwrap_or(rest);
                if let Some((_, d)) = out.last_mut() {
                    if !rest.trim().is_empty() {
                        d.push(rest);
                    }
                }
            }
            None => out.push((line, Vec::new())),
        }
    }
    out
}

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
    format!(
        "another apply (run {run}) is changing this node; its lock expires in {secs}s \
         unless it finishes first; wait and run apply again"
    )
}
