//! The one line protocol every node script answers in, and its one parser.
//! A script prints `@@key rest` lines; a key line may be followed by
//! `@@| detail` lines (a failed command's output) and by a block of
//! base64 lines closed by `@@end` (file contents, a key). Any other line is
//! noise, kept only for callers that read raw sections (`init`'s look at
//! the head). Each caller keeps its own meaning of the keys; this file only
//! splits the text.

/// One line split into its key (`@@os`, with the `@@`) and the rest after
/// the first space. A line that is not a key line has an empty key and
/// itself as the rest.
pub fn split(line: &str) -> (&str, &str) {
    if line.starts_with("@@") {
        line.split_once(' ').unwrap_or((line, ""))
    } else {
        ("", line)
    }
}

/// The lines of a script's output, split by [`split`]; a base64 block
/// after a key line is read with [`Lines::block`].
pub struct Lines<'a> {
    lines: std::str::Lines<'a>,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        Lines {
            lines: text.lines(),
        }
    }

    /// The base64 lines up to `@@end`, joined without their whitespace;
    /// `None` when the output ends first.
    pub fn block(&mut self) -> Option<String> {
        let mut b64 = String::new();
        loop {
            match self.lines.next()? {
                "@@end" => return Some(b64),
                l => b64.push_str(l.trim()),
            }
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    /// (key, rest), as [`split`] gives them.
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        self.lines.next().map(split)
    }
}

/// One key line with the non-blank `@@| ` detail lines that follow it.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub key: &'a str,
    pub rest: &'a str,
    pub detail: Vec<&'a str>,
}

/// Every line of the output, each with its detail lines (a detail line
/// before any other line is dropped).
pub fn messages(text: &str) -> Vec<Message<'_>> {
    let mut out: Vec<Message> = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("@@|") {
            Some(rest) => {
                let rest = rest.strip_prefix(' ').unwrap_or(rest);
                if let Some(m) = out.last_mut() {
                    if !rest.trim().is_empty() {
                        m.detail.push(rest);
                    }
                }
            }
            None => {
                let (key, rest) = split(line);
                out.push(Message {
                    key,
                    rest,
                    detail: Vec::new(),
                });
            }
        }
    }
    out
}

/// The first line with `key`, and its rest.
pub fn find<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    Lines::new(text).find(|(k, _)| *k == key).map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_split_at_the_first_space() {
        assert_eq!(split("@@os debian 12"), ("@@os", "debian 12"));
        assert_eq!(split("@@done"), ("@@done", ""));
        assert_eq!(split("noise here"), ("", "noise here"));
        assert_eq!(split(""), ("", ""));
    }

    #[test]
    fn details_follow_their_line_and_blank_ones_are_dropped() {
        let m = messages("@@|orphan\n@@failed s\n@@| one\n@@|\n@@|two\n@@ok t\n");
        assert_eq!(
            m,
            [
                Message {
                    key: "@@failed",
                    rest: "s",
                    detail: vec!["one", "two"]
                },
                Message {
                    key: "@@ok",
                    rest: "t",
                    detail: vec![]
                },
            ]
        );
    }

    #[test]
    fn a_block_ends_at_end_or_is_missing() {
        let mut l = Lines::new("@@private\nLS0t\n LS0K \n@@end\n@@done\n");
        assert_eq!(l.next(), Some(("@@private", "")));
        assert_eq!(l.block().as_deref(), Some("LS0tLS0K"));
        assert_eq!(l.next(), Some(("@@done", "")));
        let mut l = Lines::new("@@content\nAAAA\n");
        l.next();
        assert_eq!(l.block(), None);
        assert_eq!(find("x\n@@reverted 2026\n", "@@reverted"), Some("2026"));
        assert_eq!(find("x\n", "@@reverted"), None);
    }
}
