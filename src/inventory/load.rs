//! Loading cluster.yaml: the YAML limits (depth, aliases, anchors, replay,
//! one document), serde-saphyr's errors reworded with a `help:`, "did you
//! mean", quoted values cut and escaped.

use super::RawInventory;
use crate::error::{Diagnostic, Location};

/// Limits on the YAML itself, far above any real inventory (whose nesting
/// is at most 5 deep and which needs a handful of anchors, if any), so a
/// hostile file fails at once with a clear message instead of exhausting
/// memory: an alias bomb, deep nesting, a flood of nodes.
pub const MAX_DEPTH: usize = 16;
pub const MAX_ALIASES: usize = 1_000;
pub const MAX_ANCHORS: usize = 1_000;
pub const MAX_REPLAYED_EVENTS: usize = 100_000;

/// The most structural problems reported from one file.
const MAX_STRUCTURAL: usize = 20;

/// Parse inventory text. serde stops at the first problem; an unknown key
/// or a value of the wrong type on a block `key:` line is then blanked
/// (the line and the lines indented under it become empty lines, so every
/// later position is unchanged) and the text parsed again, so that every
/// such problem comes back from one run, as cargo's do (see ARCHITECTURE.md
/// "Structural errors"). Any other problem (a syntax error, a missing
/// field) ends the list: what follows it cannot be read reliably.
pub fn parse(text: &str) -> Result<RawInventory, Vec<Diagnostic>> {
    if let Some(d) = second_document(text) {
        return Err(vec![d]);
    }
    let mut found: Vec<Diagnostic> = Vec::new();
    let mut work: Option<String> = None;
    loop {
        let current = work.as_deref().unwrap_or(text);
        let e = match parse_once(current) {
            Ok(raw) if found.is_empty() => return Ok(raw),
            Ok(_) => return Err(found),
            Err(e) => e,
        };
        let line = e.location().map(|l| l.line() as usize).unwrap_or(0);
        let blankable = recoverable(&e) && found.len() < MAX_STRUCTURAL;
        let d = to_diagnostic(e);
        // A later problem the blanking itself caused (the field it removed
        // is now missing) is not the user's: stop before it.
        if !found.is_empty() && !blankable {
            return Err(found);
        }
        found.push(d);
        match blankable.then(|| blank_block(current, line)).flatten() {
            Some(next) => work = Some(next),
            None => return Err(found),
        }
    }
}

/// A problem the parse can step over by blanking its line: an unknown key,
/// or a value of the wrong type.
fn recoverable(e: &serde_saphyr::Error) -> bool {
    let raw = e.without_snippet().to_string();
    if let Some(rest) = raw.strip_prefix("invalid ") {
        let word = rest.split([' ', ':', ',']).next().unwrap_or("");
        return matches!(
            word,
            "u8" | "u16"
                | "u32"
                | "u64"
                | "i8"
                | "i16"
                | "i32"
                | "i64"
                | "boolean"
                | "type"
                | "value"
        );
    }
    [
        "unknown field",
        "unknown variant",
        "expected string scalar",
        "expected mapping start",
        "expected sequence start",
        "cannot deserialize tagged",
    ]
    .iter()
    .any(|p| raw.starts_with(p))
}

/// `text` with line `line` (1-based) and the lines indented deeper under it
/// made empty; None unless that line is a block `key: ...` line (not a
/// list item, not inside a flow collection).
fn blank_block(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = lines.get(line.checked_sub(1)?)?;
    let body = at.trim_start_matches(' ');
    let indent = at.len() - body.len();
    let key_line = !body.starts_with(['-', '{', '[', '#', '"', '\''])
        && body
            .split_once(':')
            .is_some_and(|(k, _)| !k.is_empty() && !k.contains([' ', '{', '[', ',', '"', '\'']));
    if !key_line {
        return None;
    }
    let mut end = line; // exclusive, 0-based index of the first line kept
    while let Some(l) = lines.get(end) {
        let b = l.trim_start_matches(' ');
        let blank = b.trim().is_empty() || b.trim_start().starts_with('#');
        if !blank && l.len() - b.len() <= indent {
            break;
        }
        end += 1;
    }
    let mut out = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        if (line - 1..end).contains(&i) {
            out.push_str(if l.ends_with("\r\n") {
                "\r\n"
            } else if l.ends_with('\n') {
                "\n"
            } else {
                ""
            });
        } else {
            out.push_str(l);
        }
    }
    Some(out)
}

fn parse_once(text: &str) -> Result<RawInventory, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_aliases: MAX_ALIASES,
            max_anchors: MAX_ANCHORS,
            max_documents: 1,
            max_nodes: 200_000,
            max_total_scalar_bytes: 16 * 1024 * 1024,
            max_recorded_anchor_bytes: 4 * 1024 * 1024,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_REPLAYED_EVENTS,
            max_replay_stack_depth: MAX_DEPTH,
            max_alias_expansions_per_anchor: MAX_ALIASES,
        },
    };
    serde_saphyr::from_str_with_options::<RawInventory>(text, options)
}

/// An inventory is one YAML document. serde-saphyr reads the first and
/// ignores the rest, which would give a misleading "missing field"; find
/// where a second one starts. A `---` or `...` at the start of a line is a
/// document marker wherever it appears in YAML 1.2 (it even ends a block
/// scalar), so a line scan is exact.
fn second_document(text: &str) -> Option<Diagnostic> {
    let marker = |line: &str, m: &str| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
    };
    let mut content = false;
    let mut ended = false;
    for (i, line) in text.lines().enumerate() {
        let at = Location {
            line: i + 1,
            column: 1,
        };
        let help = "an inventory is one YAML document: remove the `---` line and what follows, or merge the two";
        if marker(line, "---") {
            if content || ended {
                return Some(
                    Diagnostic::new("a second YAML document starts here")
                        .at(Some(at))
                        .help(help),
                );
            }
            content = true;
            continue;
        }
        if marker(line, "...") {
            ended = true;
            continue;
        }
        let bare = line.trim_start();
        if bare.is_empty() || bare.starts_with('#') || (!content && bare.starts_with('%')) {
            continue;
        }
        if ended {
            return Some(
                Diagnostic::new("content after the end of the YAML document (`...`)")
                    .at(Some(at))
                    .help(help),
            );
        }
        content = true;
    }
    None
}

fn to_diagnostic(e: serde_saphyr::Error) -> Diagnostic {
    let location = e.location().and_then(|l| {
        (l.line() > 0).then(|| Location {
            line: l.line() as usize,
            column: l.column() as usize,
        })
    });
    if let Some((message, help)) = limit_message(&e) {
        return Diagnostic::new(message).at(location).help(help);
    }
    let raw = e.without_snippet().to_string();
    let (message, help) = reword(&shorten_quoted(&strip_location_suffix(&raw)));
    let d = Diagnostic::new(message).at(location);
    match help {
        Some(h) => d.help(h),
        None => d,
    }
}

/// Our words for a YAML limit that was hit.
fn limit_message(e: &serde_saphyr::Error) -> Option<(String, String)> {
    use serde_saphyr::budget::BudgetBreach as B;
    let anchors =
        "use anchors (&name) and aliases (*name) sparingly; an inventory needs few if any"
            .to_string();
    Some(match e {
        serde_saphyr::Error::Budget { breach, .. } => match breach {
            B::Depth { .. } => (
                format!("the YAML is nested more than {MAX_DEPTH} levels deep"),
                "an inventory is at most 5 levels deep; `clusterctl example` shows its shape".into(),
            ),
            B::Aliases { .. } => (format!("the YAML uses more than {MAX_ALIASES} aliases (*name)"), anchors),
            B::Anchors { .. } => (format!("the YAML defines more than {MAX_ANCHORS} anchors (&name)"), anchors),
            B::Documents { .. } => (
                "the file holds more than one YAML document".into(),
                "an inventory is one YAML document: remove the `---` line and what follows".into(),
            ),
            other => (
                format!("the YAML is too large or too complex ({})", breach_name(other)),
                "an inventory is a few kilobytes of plain YAML; `clusterctl example` shows its shape".into(),
            ),
        },
        serde_saphyr::Error::AliasReplayLimitExceeded { .. } => (
            "the YAML's aliases expand to too much (an alias bomb?)".into(),
            anchors,
        ),
        _ => return None,
    })
}

fn breach_name(b: &serde_saphyr::budget::BudgetBreach) -> String {
    let dbg = format!("{b:?}");
    let name = dbg.split([' ', '{', '(']).next().unwrap_or("limit");
    let mut words = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// Values quoted in a library message (`...` or "...") cut to a readable
/// length and escaped ([`crate::values::shown`]): a 50 MB key or string is
/// never echoed whole, a control character never raw.
fn shorten_quoted(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find(['`', '"']) {
        let q = rest[i..].chars().next().unwrap_or('`');
        out.push_str(&rest[..=i]);
        let after = &rest[i + 1..];
        match after.find(q) {
            Some(j) => {
                out.push_str(&crate::values::shown(&after[..j]));
                out.push(q);
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&crate::values::shown(after));
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// saphyr appends ` at line L, column C` to messages; we print positions ourselves.
fn strip_location_suffix(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    match first.rfind(" at line ") {
        Some(i) => first[..i].trim_end_matches(',').to_string(),
        None => first.to_string(),
    }
}

/// Turn saphyr/serde wording into ours and name the closest expected word for
/// "unknown field `x`, expected one of a, b" (and the same for variants).
fn reword(message: &str) -> (String, Option<String>) {
    let example = "`clusterctl example` prints an inventory with every field";
    if let Some(field) = message.strip_prefix("missing field ") {
        let field = field.trim_matches('`');
        return (
            format!("missing field `{field}`"),
            Some(format!("add `{field}:`; {example}")),
        );
    }
    let shape = |what: &str, help: &str| (what.to_string(), Some(help.to_string()));
    match message {
        "expected string scalar" => {
            return shape(
                "expected a single value here, found a list or mapping",
                "write it on the key's line, like `name: bramble` (quote it if it holds special characters)",
            )
        }
        "expected mapping start" => {
            return shape(
                "expected a mapping here (indented `key: value` lines)",
                "`clusterctl example` prints every section and its fields",
            )
        }
        "expected sequence start" => {
            return shape(
                "expected a list here (`- item` lines, or `[a, b]`; `[]` for none)",
                "`clusterctl example` prints every section and its fields",
            )
        }
        "invalid boolean" => return shape("not true or false", "write `true` or `false`"),
        _ => {}
    }
    if message.starts_with("cannot deserialize null into") {
        return shape(
            "a value is missing here (empty or `~`)",
            "write the value after the colon, or remove the key to use the default",
        );
    }
    if message.starts_with("cannot deserialize tagged scalar") {
        return shape(
            "the YAML tag here (like `!!int`) makes the value something other than the text expected",
            "remove the tag and write the plain value; quote it if it must stay text",
        );
    }
    if message == "unexpected end of input" {
        return (
            "the inventory is empty or ends too early".into(),
            Some(format!("start from `clusterctl init`; {example}")),
        );
    }
    if message.contains("found a tab") {
        return (
            message.to_string(),
            Some("YAML indents with spaces, never tabs".into()),
        );
    }
    for (ty, range) in [("u16", "0 to 65535"), ("u32", "0 to 4294967295")] {
        if message.starts_with(&format!("invalid {ty}")) {
            return (
                format!("not a whole number from {range}"),
                Some("write digits only, without quotes, like 22".into()),
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unexpected character: ") {
        return (
            format!("unexpected character {}", rest.trim_matches(['`', '\''])),
            Some("remove it; inside double quotes, write special characters as escapes like \\t or \\u00e9".into()),
        );
    }
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return (
            format!("duplicate key `{key}`"),
            Some("a key may appear once per mapping; remove or merge the other one".into()),
        );
    }
    unknown_name(message)
}

/// `unknown field` / `unknown variant` with "did you mean", else the parser's
/// own words with a syntax hint.
fn unknown_name(message: &str) -> (String, Option<String>) {
    let syntax = || {
        (
            message.to_string(),
            Some("YAML syntax: check the indentation (spaces only) and quoting here; `clusterctl example` shows the format".to_string()),
        )
    };
    let kind = if message.starts_with("unknown field") {
        "field"
    } else if message.starts_with("unknown variant") {
        "value"
    } else {
        return syntax();
    };
    let Some(got) = message.split('`').nth(1) else {
        return (message.to_string(), None);
    };
    let expected: Vec<&str> = match message.split_once("expected one of ") {
        Some((_, list)) => list.split(", ").map(|w| w.trim_matches('`')).collect(),
        None => match message.split_once("expected ") {
            Some((_, one)) => vec![one.trim_matches('`')],
            None => Vec::new(),
        },
    };
    let best = expected
        .iter()
        .map(|w| (strsim::damerau_levenshtein(got, w), *w))
        .filter(|(d, w)| *d <= 2.max(w.len() / 3))
        .min();
    let help = match best {
        Some((_, w)) => format!("did you mean {kind} `{w}`?"),
        None if expected.is_empty() => return (message.to_string(), None),
        None => format!("expected one of: {}", expected.join(", ")),
    };
    (format!("unknown {kind} `{got}`"), Some(help))
}
