//! Colour on the terminal: whether to use it (`--color auto|always|never`,
//! `NO_COLOR`, whether the stream is a terminal) and the few styles
//! clusterctl uses (`error:`, `help:`, diff lines, statuses). Decided once
//! per run; everything else asks here, so no output path colours on its own.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::cli::ColorChoice;

/// 0 = not set yet (auto), 1 = auto, 2 = always, 3 = never.
static CHOICE: AtomicU8 = AtomicU8::new(0);

/// Set once from `--color`.
pub fn set(choice: ColorChoice) {
    let v = match choice {
        ColorChoice::Auto => 1,
        ColorChoice::Always => 2,
        ColorChoice::Never => 3,
    };
    CHOICE.store(v, Ordering::SeqCst);
}

/// Which stream a text goes to.
#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Colour for this stream: `always`, or `auto` on a terminal without
/// `NO_COLOR` (any non-empty value, as no-color.org says).
pub fn enabled(stream: Stream) -> bool {
    match CHOICE.load(Ordering::SeqCst) {
        2 => true,
        3 => false,
        _ => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let tty = match stream {
                Stream::Stdout => std::io::stdout().is_terminal(),
                Stream::Stderr => std::io::stderr().is_terminal(),
            };
            tty && !no_color
        }
    }
}

const RESET: &str = "\x1b[0m";

fn paint(on: bool, code: &str, text: &str) -> String {
    if on && !text.is_empty() {
        format!("\x1b[{code}m{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// Colour the `error:` and `help:` words of a message (stderr).
pub fn error_text(text: &str) -> String {
    error_text_with(enabled(Stream::Stderr), text)
}

fn error_text_with(on: bool, text: &str) -> String {
    if !on {
        return text.to_string();
    }
    text.lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            let (lead, rest) = line.split_at(indent);
            if let Some(r) = rest.strip_prefix("error:") {
                format!("{lead}{}{r}", paint(on, "1;31", "error:"))
            } else if let Some(r) = rest.strip_prefix("help:") {
                format!("{lead}{}{r}", paint(on, "1;36", "help:"))
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Colour a unified diff for stdout: headers bold, hunks cyan, removed red,
/// added green.
pub fn diff(text: &str) -> String {
    diff_with(enabled(Stream::Stdout), text)
}

fn diff_with(on: bool, text: &str) -> String {
    if !on {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let code = if body.starts_with("+++") || body.starts_with("---") {
            "1"
        } else if body.starts_with("@@") {
            "36"
        } else if body.starts_with('+') {
            "32"
        } else if body.starts_with('-') {
            "31"
        } else {
            ""
        };
        match code {
            "" => out.push_str(body),
            c => out.push_str(&paint(on, c, body)),
        }
        out.push_str(nl);
    }
    out
}

/// A bold heading on the given stream (`==> node: path`).
pub fn bold(stream: Stream, text: &str) -> String {
    paint(enabled(stream), "1", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coloured_and_plain() {
        let d = diff_with(true, "--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n same\n");
        assert!(d.contains("\x1b[31m-old\x1b[0m\n"), "{d:?}");
        assert!(d.contains("\x1b[32m+new\x1b[0m\n"), "{d:?}");
        assert!(d.ends_with(" same\n"));
        let e = error_text_with(true, "error: x\n  help: y");
        assert_eq!(e, "\x1b[1;31merror:\x1b[0m x\n  \x1b[1;36mhelp:\x1b[0m y");
        assert_eq!(diff_with(false, "-old\n"), "-old\n");
        assert_eq!(error_text_with(false, "error: x"), "error: x");
    }
}
