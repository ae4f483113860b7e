//! Every error clusterctl reports: one enum, each variant with an optional
//! `help:` line, and the process exit codes.

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit code: success / in sync.
pub const EXIT_OK: i32 = 0;
/// Exit code: any error.
pub const EXIT_ERROR: i32 = 1;
/// Exit code: `diff` / `apply --dry-run` found pending changes.
pub const EXIT_CHANGES: i32 = 2;

/// Where in a file a problem is, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One problem found in an inventory. `check` reports all of them at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Option<Location>,
    /// The node the problem concerns, when there is one.
    pub node: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            location: None,
            node: None,
            message: message.into(),
            help: None,
        }
    }
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `error: FILE:LINE:COL: node N: MESSAGE` and an indented `help:` line.
    /// Nothing raw reaches the terminal: control characters in the message,
    /// node and help are escaped (each is one line), whatever built them.
    pub fn render(&self, file: &Path) -> String {
        let one_line = crate::values::escaped;
        let mut out = format!("error: {}", one_line(&file.display().to_string()));
        if let Some(loc) = self.location {
            out.push_str(&format!(":{}:{}", loc.line, loc.column));
        }
        out.push_str(": ");
        if let Some(node) = &self.node {
            // Escaped: an invalid name may hold a newline or control character.
            out.push_str(&format!("node {}: ", crate::values::shown(node)));
        }
        out.push_str(&one_line(&self.message));
        if let Some(help) = &self.help {
            out.push_str(&format!("\n  help: {}", one_line(help)));
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", shown_path(path))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", shown_path(path))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The inventory has problems; each is printed on its own.
    #[error("{}", render_all(file, diagnostics))]
    Inventory {
        file: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("{message}")]
    Usage {
        message: String,
        help: Option<String>,
    },
    #[error("{file} already exists", file = shown_path(path))]
    Exists { path: PathBuf },
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("lab: {message}")]
    Lab {
        message: String,
        help: Option<String>,
    },
}

/// A path in a message: whole, but with control characters escaped (a
/// file name may hold a newline or an escape sequence).
fn shown_path(path: &Path) -> String {
    crate::values::escaped(&path.display().to_string())
}

fn render_all(file: &Path, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.render(file));
    }
    let n = diagnostics.len();
    out.push_str(&format!(
        "\n{} has {n} problem{}",
        crate::values::terminal_safe(&file.display().to_string()),
        if n == 1 { "" } else { "s" }
    ));
    out
}

impl Error {
    pub fn usage(message: impl Into<String>, help: Option<&str>) -> Self {
        Error::Usage {
            message: message.into(),
            help: help.map(str::to_string),
        }
    }

    pub fn lab(message: impl Into<String>) -> Self {
        Error::Lab {
            message: message.into(),
            help: None,
        }
    }

    /// The `help:` line printed under the error, if any. Inventory errors carry
    /// theirs per diagnostic.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Read { .. } => Some("check the path; set it with -i or $CLUSTERCTL_INVENTORY".into()),
            Error::Write { .. } => Some("check the directory exists and is writable".into()),
            Error::Exists { .. } => Some("pass --force to overwrite it, or -i FILE to write elsewhere".into()),
            Error::Template { .. } => Some(
                "fix the template (an override in your templates/ directory?) or remove the override".into(),
            ),
            Error::Usage { help, .. } | Error::Lab { help, .. } => help.clone(),
            Error::Inventory { .. } => None,
        }
    }

    /// A template render that ran out of its steps or output bound
    /// (`templates.rs`): it would for every node.
    pub fn is_render_budget(&self) -> bool {
        matches!(self, Error::Template { message, .. }
            if message.starts_with("takes more than") || message.starts_with("writes more than"))
    }

    pub fn exit_code(&self) -> i32 {
        EXIT_ERROR
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
/// Print an error on stderr as [`format_error`] words it, `error:` and
/// `help:` coloured when colour is on.
pub fn print_error(e: &Error) {
    eprintln!("{}", crate::style::error_text(&format_error(e)));
}

/// The text printed for an error: inventory diagnostics as they are, anything
/// else as `error: ...` with its `help:` line.
pub fn format_error(e: &Error) -> String {
    // Control characters from values (paths, arguments) never reach the
    // terminal raw; the line breaks between an error's own lines stay.
    let safe = crate::values::terminal_safe;
    match e {
        Error::Inventory { .. } => e.to_string(),
        _ => match e.help() {
            Some(help) => format!("error: {}\n  help: {}", safe(&e.to_string()), safe(&help)),
            None => format!("error: {}", safe(&e.to_string())),
        },
    }
}
