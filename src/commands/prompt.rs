//! Line prompts for the `init` wizard: the terminal stays in its normal
//! (cooked) mode, so line editing works, Ctrl-D ends the wizard and Ctrl-C
//! stops it; either way nothing has been written. Every answer is checked
//! as it is given (against the answers before it, too) and asked again
//! with the reason until it passes.

use std::io::{BufRead, Write};

use crate::error::{Error, Result};

/// What a check says about an answer: `Err(why)` asks again.
pub type Check<'a> = Box<dyn Fn(&str) -> std::result::Result<(), String> + 'a>;

/// The wizard stopped without an answer (Ctrl-D, a closed terminal).
pub fn stopped() -> Error {
    Error::usage(
        "init stopped: nothing was written",
        Some("run clusterctl init again, or pass the values as flags (see clusterctl init --help)"),
    )
}

/// Ask on stderr, read a line from stdin. An empty line takes `default`.
pub fn ask(prompt: &str, default: Option<&str>, check: Check) -> Result<String> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        let shown = match default {
            Some("") => format!("{prompt} (empty for none): "),
            Some(d) => format!("{prompt} [{d}]: "),
            None => format!("{prompt}: "),
        };
        eprint!("{shown}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                eprintln!();
                return Err(stopped());
            }
            Ok(_) => {}
        }
        let mut answer = line.trim().to_string();
        if answer.is_empty() {
            match default {
                Some(d) => answer = d.to_string(),
                None => {
                    eprintln!("  an answer is needed here");
                    continue;
                }
            }
        }
        match check(&answer) {
            Ok(()) => return Ok(answer),
            Err(why) => eprintln!(
                "{}",
                crate::style::error_text(&format!(
                    "  error: {}",
                    crate::values::terminal_safe(&why)
                ))
            ),
        }
    }
}
