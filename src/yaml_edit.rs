//! Format-preserving edits of cluster.yaml. serde-saphyr has no round-trip
//! editor, so edits are textual and narrow: find the top-level `workers:` block
//! sequence and insert an entry after its last item, copying its indentation.
//! Every byte outside the inserted lines is kept (comments, blank lines, key
//! order, quoting). The result is always re-parsed and validated by the caller.

/// Insert a worker entry (given as `key: value` lines, first one `name: ...`)
/// at the end of the top-level `workers:` sequence, creating it if absent.
pub fn append_worker(text: &str, fields: &[(&str, String)]) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let key_idx = lines.iter().position(|l| workers_key(l).is_some());
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };

    let entry = |item_indent: usize| -> String {
        let pad = " ".repeat(item_indent);
        let mut s = String::new();
        for (i, (k, v)) in fields.iter().enumerate() {
            if i == 0 {
                s.push_str(&format!("{pad}- {k}: {v}{newline}"));
            } else {
                s.push_str(&format!("{pad}  {k}: {v}{newline}"));
            }
        }
        s
    };

    let Some(k) = key_idx else {
        // No workers yet: append a new top-level key.
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(newline);
        }
        out.push_str(&format!("workers:{newline}"));
        out.push_str(&entry(2));
        return Ok(out);
    };

    let after_key = workers_key(lines[k]).unwrap_or_default().trim().to_string();
    if after_key == "[]" {
        // `workers: []` -> `workers:` and a block sequence; keep any comment.
        let line = lines[k];
        let comment = line
            .find(" #")
            .map(|i| line[i..].trim_end_matches(['\n', '\r']).to_string());
        let mut out: String = lines[..k].concat();
        out.push_str(&format!("workers:{}{newline}", comment.unwrap_or_default()));
        out.push_str(&entry(2));
        out.push_str(&lines[k + 1..].concat());
        return Ok(out);
    }
    if !after_key.is_empty() {
        return Err("`workers:` is written in flow style ([...]) which clusterctl cannot edit without reformatting; \
                    rewrite it as a block list (`- name: ...` lines)"
            .into());
    }

    let (last_content, item_indent) = sequence_end(&lines, k)?;
    let ii = item_indent.unwrap_or(2);
    let mut out: String = lines[..=last_content].concat();
    if !out.ends_with('\n') {
        out.push_str(newline);
    }
    out.push_str(&entry(ii));
    out.push_str(&lines[last_content + 1..].concat());
    Ok(out)
}

/// The last line of the block sequence under `workers:` (line `k`), and the
/// indentation of its items (None: the sequence is empty).
fn sequence_end(lines: &[&str], k: usize) -> Result<(usize, Option<usize>), String> {
    // Walk the block sequence: its items start with `-` at item_indent.
    let mut item_indent = None;
    let mut last_content = k; // last line that belongs to the sequence
    for (i, line) in lines.iter().enumerate().skip(k + 1) {
        let bare = strip_comment(line);
        if bare.trim().is_empty() {
            continue; // blank or comment-only lines do not end the sequence
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        if line.starts_with('\t') {
            return Err(format!("line {} is indented with a tab", i + 1));
        }
        match item_indent {
            None => {
                if bare.trim_start().starts_with('-') {
                    item_indent = Some(indent);
                    last_content = i;
                } else {
                    break; // `workers:` followed by another key: empty (null)
                }
            }
            Some(ii) => {
                if indent > ii || (indent == ii && bare.trim_start().starts_with('-')) {
                    last_content = i;
                } else {
                    break;
                }
            }
        }
    }
    Ok((last_content, item_indent))
}

/// Remove the entry `name: NAME` from the top-level `workers:` block
/// sequence: its lines go, every other byte stays (a comment after it too).
/// The last entry leaves `workers: []`. A worker that comes from a
/// `names:` host list is refused: the list would have to be split.
pub fn remove_worker(text: &str, name: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(k) = lines.iter().position(|l| workers_key(l).is_some()) else {
        return Err("the inventory has no `workers:` list".into());
    };
    if !workers_key(lines[k]).unwrap_or_default().trim().is_empty() {
        return Err("`workers:` is not a block list (`- name: ...` lines); edit it by hand".into());
    }
    let (last, item_indent) = sequence_end(&lines, k)?;
    let Some(ii) = item_indent else {
        return Err("the `workers:` list is empty".into());
    };
    // Each item: its first line and the last line with content.
    let mut items: Vec<(usize, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate().take(last + 1).skip(k + 1) {
        let bare = strip_comment(line);
        if bare.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent == ii && bare.trim_start().starts_with('-') {
            items.push((i, i));
        } else if let Some(it) = items.last_mut() {
            it.1 = i;
        }
    }
    let named = |(a, b): &(usize, usize)| {
        // The entry as YAML reads it: an anchor (`name: &n w1`), quotes or a
        // flow mapping (`- {name: w1}`) are still its name.
        let chunk: String = lines[*a..=*b]
            .iter()
            .map(|l| {
                let indent = l.len() - l.trim_start_matches(' ').len();
                &l[indent.min(ii)..]
            })
            .collect();
        // A name YAML reads as a number or a bool (`1e5`, `true`) is
        // matched by its text below.
        if let Ok(items) = serde_saphyr::from_str::<Vec<serde_json::Value>>(&chunk) {
            if let Some(s) = items
                .first()
                .and_then(|v| v.get("name"))
                .and_then(|v| v.as_str())
            {
                return s == name;
            }
        }
        lines[*a..=*b].iter().any(|l| {
            let bare = strip_comment(l)
                .trim_start()
                .trim_start_matches('-')
                .trim_start();
            bare.strip_prefix("name:")
                .map(|v| v.trim().trim_matches(['"', '\'']) == name)
                .unwrap_or(false)
        })
    };
    let Some(pos) = items.iter().position(named) else {
        return Err(format!(
            "no entry `name: {name}` under `workers:`; a worker from a `names:` host list cannot be removed alone (edit the list)"
        ));
    };
    let (a, b) = items[pos];
    let mut out: String = lines[..a].concat();
    if items.len() == 1 {
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        out = lines[..k].concat();
        out.push_str(&format!("workers: []{newline}"));
        out.push_str(&lines[k + 1..a].concat());
    }
    out.push_str(&lines[b + 1..].concat());
    Ok(out)
}

/// The value text after a top-level `workers` key (`workers:`, `workers :`,
/// `"workers":`, `'workers':`, with any comment removed), or None when
/// `line` is not that key.
fn workers_key(line: &str) -> Option<&str> {
    let bare = strip_comment(line);
    let rest = ["\"workers\"", "'workers'", "workers"]
        .iter()
        .find_map(|k| bare.strip_prefix(k))?;
    let rest = rest.trim_start_matches(' ').strip_prefix(':')?;
    (rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r'])).then_some(rest)
}

/// A scalar written plain when it is unambiguously a string (a letter,
/// then letters, digits, `_`, `.`, `-`; not a word YAML 1.1 readers take
/// as a bool or null), else double-quoted by [`quote`]: what `init` and
/// `add-node` write can never add a line, a comment or change type.
pub fn scalar(value: &str) -> String {
    let plain = value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !matches!(
            value.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        value.to_string()
    } else {
        quote(value)
    }
}

/// A YAML double-quoted scalar: no value clusterctl writes is then read back
/// as a bool, null, number or flow collection (`null`, `yes`, `[::1]`).
pub fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            // Controls, and what YAML 1.1 readers take as line breaks or a BOM.
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                s.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The line without a trailing `# comment` (a `#` preceded by whitespace or at
/// the start, outside quotes) and without its line ending.
fn strip_comment(line: &str) -> &str {
    let line = line.trim_end_matches(['\n', '\r']);
    let (mut single, mut double) = (false, false);
    let mut prev_ws = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_ws => return &line[..i],
            _ => {}
        }
        prev_ws = c == ' ' || c == '\t';
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> Vec<(&'static str, String)> {
        vec![("name", name.to_string()), ("ip", "10.0.0.20".to_string())]
    }

    /// The original text, with exactly `added` inserted somewhere.
    fn only_added(before: &str, after: &str, added: &str) {
        let pos = after.find(added).expect("added lines present");
        assert_eq!(
            format!("{}{}", &after[..pos], &after[pos + added.len()..]),
            before
        );
    }

    #[test]
    fn appends_after_last_item_keeping_trailing_comments() {
        let before = "name: c\nworkers:\n  # first\n  - name: a # trailing\n    ip: 10.0.0.2\n\n  # about b\n  - names: b[1-2]\n\n# after workers\nnfs:\n  enabled: false\n";
        let after = append_worker(before, &f("n5")).unwrap();
        let added = "  - name: n5\n    ip: 10.0.0.20\n";
        only_added(before, &after, added);
        assert!(after.contains("  - names: b[1-2]\n  - name: n5\n"));
    }

    #[test]
    fn items_at_key_indent() {
        let before = "workers:\n- name: a\n  ip: 10.0.0.2\nmpi:\n  slots: 2\n";
        let after = append_worker(before, &f("n5")).unwrap();
        only_added(before, &after, "- name: n5\n  ip: 10.0.0.20\n");
    }

    #[test]
    fn empty_flow_list_becomes_block() {
        let after = append_worker("workers: [] # none yet\nmpi: {}\n", &f("n5")).unwrap();
        assert_eq!(
            after,
            "workers: # none yet\n  - name: n5\n    ip: 10.0.0.20\nmpi: {}\n"
        );
    }

    #[test]
    fn missing_key_is_appended() {
        let after = append_worker("name: c", &f("n5")).unwrap();
        assert_eq!(
            after,
            "name: c\nworkers:\n  - name: n5\n    ip: 10.0.0.20\n"
        );
    }

    #[test]
    fn flow_style_is_refused() {
        assert!(append_worker("workers: [{name: a}]\n", &f("n5")).is_err());
    }

    #[test]
    fn quoted_values_read_back_as_strings() {
        for v in ["null", "yes", "[2001:db8::7]:22", "a\"b\\c", "12", "~"] {
            let doc = format!("v: {}\n", quote(v));
            let back: std::collections::BTreeMap<String, String> =
                serde_saphyr::from_str(&doc).unwrap();
            assert_eq!(back["v"], v, "{doc}");
        }
    }

    #[test]
    fn scalars_read_back_as_the_same_string() {
        for v in [
            "eth0",
            "cluster.lan",
            "yes",
            "No",
            "null",
            "~",
            "-a",
            "a b",
            "a#b",
            "a\nb: c",
            "1",
            "0x1",
            "enp0s31f6",
            "",
            "a\u{2028}b",
            "x: y",
        ] {
            let doc = format!("v: {}\n", scalar(v));
            let back: std::collections::BTreeMap<String, String> =
                serde_saphyr::from_str(&doc).unwrap();
            assert_eq!(back["v"], v, "{doc}");
            assert_eq!(doc.lines().count(), 1, "{doc}");
        }
        assert_eq!(scalar("eth0"), "eth0");
        assert_eq!(scalar("yes"), "\"yes\"");
    }

    #[test]
    fn hash_inside_quotes_is_not_a_comment() {
        assert_eq!(strip_comment("a: \"x # y\" # c\n"), "a: \"x # y\" ");
    }

    /// Issue 22: `"workers":` and `workers :` are the same key; add-node
    /// used to append a second one and then report a duplicate key.
    #[test]
    fn the_workers_key_in_any_spelling_is_the_one_edited() {
        for key in ["\"workers\":", "'workers':", "workers :", "workers:"] {
            let before = format!("name: c\n{key}\n  - name: a\n");
            let after = append_worker(&before, &f("n5")).unwrap();
            assert_eq!(
                after,
                format!("{before}  - name: n5\n    ip: 10.0.0.20\n"),
                "{key}"
            );
            assert_eq!(
                remove_worker(&after, "a").unwrap(),
                format!("name: c\n{key}\n  - name: n5\n    ip: 10.0.0.20\n")
            );
        }
        assert_eq!(workers_key("workers_extra: 1\n"), None);
        assert_eq!(workers_key("  workers:\n"), None);
    }

    /// Issue 22: an entry whose name has an anchor, quotes or a flow
    /// mapping was taken for a host-list worker and could not be removed.
    #[test]
    fn remove_worker_finds_the_name_as_yaml_reads_it() {
        let text = "workers:\n  - name: &n w1\n    mac: \"02:00:00:00:00:01\"\n  - name: 'w2'\n  - {name: w3, mac: \"02:00:00:00:00:03\"}\n  - name: w4 # last\n";
        assert_eq!(
            remove_worker(text, "w1").unwrap(),
            "workers:\n  - name: 'w2'\n  - {name: w3, mac: \"02:00:00:00:00:03\"}\n  - name: w4 # last\n"
        );
        assert_eq!(
            remove_worker(text, "w3").unwrap(),
            "workers:\n  - name: &n w1\n    mac: \"02:00:00:00:00:01\"\n  - name: 'w2'\n  - name: w4 # last\n"
        );
        assert!(remove_worker(text, "w2").is_ok());
        assert_eq!(
            remove_worker("workers:\n  - name: 1e5\n  - name: w\n", "1e5").unwrap(),
            "workers:\n  - name: w\n"
        );
    }

    #[test]
    fn remove_worker_takes_out_its_lines_only() {
        let text = "name: c\nworkers:\n  # rack 1\n  - name: w1\n    ip: 10.0.0.11\n  - name: \"w2\"  # the old one\n    mac: aa:bb:cc:dd:ee:ff\n\n  # rack 2\n  - name: w3\nnfs: {}\n";
        let out = remove_worker(text, "w2").unwrap();
        assert_eq!(
            out,
            "name: c\nworkers:\n  # rack 1\n  - name: w1\n    ip: 10.0.0.11\n\n  # rack 2\n  - name: w3\nnfs: {}\n"
        );
        let out = remove_worker(&out, "w3").unwrap();
        assert!(
            out.ends_with("    ip: 10.0.0.11\n\n  # rack 2\nnfs: {}\n"),
            "{out}"
        );
        let out = remove_worker(&out, "w1").unwrap();
        assert_eq!(
            out,
            "name: c\nworkers: []\n  # rack 1\n\n  # rack 2\nnfs: {}\n"
        );
        assert!(remove_worker(text, "w9").is_err());
        assert!(remove_worker("workers:\n  - names: n[1-4]\n", "n2")
            .unwrap_err()
            .contains("host list"));
        assert!(remove_worker("workers: [a]\n", "a").is_err());
    }
}
