//! Managed blocks in files the user shares with clusterctl (/etc/hosts,
//! /etc/fstab, /etc/exports): the markers, finding the block, and merging a
//! new block in while keeping every byte outside it.

/// First line of a managed block.
pub const BEGIN_MARKER: &str = "# BEGIN clusterctl (managed block: edits inside are overwritten)";
/// Last line of a managed block.
pub const END_MARKER: &str = "# END clusterctl";

/// The block as it stands in the file: markers around the body.
pub fn wrap_block(body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 100);
    s.push_str(BEGIN_MARKER);
    s.push('\n');
    s.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(END_MARKER);
    s.push('\n');
    s
}

/// Why a file's managed block cannot be located safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockError(pub String);

/// The byte range of the managed block (BEGIN line start .. END line end,
/// including its newline), or None when the file has none. Markers are matched
/// on whole lines; a BEGIN marker is recognised by its `# BEGIN clusterctl` prefix
/// so an older marker wording is still found.
pub fn find_block(text: &str) -> Result<Option<std::ops::Range<usize>>, BlockError> {
    let mut begin = None;
    let mut found = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare.starts_with("# BEGIN clusterctl") {
            if begin.is_some() || found.is_some() {
                return Err(BlockError(
                    "more than one `# BEGIN clusterctl` marker".into(),
                ));
            }
            begin = Some(pos);
        } else if bare == END_MARKER {
            match begin.take() {
                Some(b) if found.is_none() => found = Some(b..pos + line.len()),
                _ => {
                    return Err(BlockError(
                        "`# END clusterctl` without a matching BEGIN marker".into(),
                    ))
                }
            }
        }
        pos += line.len();
    }
    if begin.is_some() {
        return Err(BlockError(
            "`# BEGIN clusterctl` without a matching `# END clusterctl`".into(),
        ));
    }
    Ok(found)
}

/// Put `block` (with markers) into `existing`: replace the old block in place,
/// or append it. Every byte outside the block is kept.
pub fn merge_block(existing: &str, block: &str) -> Result<String, BlockError> {
    match find_block(existing)? {
        Some(r) => {
            let mut s = String::with_capacity(existing.len() + block.len());
            s.push_str(&existing[..r.start]);
            s.push_str(block);
            s.push_str(&existing[r.end..]);
            Ok(s)
        }
        None => {
            let mut s = existing.to_string();
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(block);
            Ok(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_HOSTS: &str =
        "127.0.0.1\tlocalhost\n127.0.1.1\thead\n# my printer\n192.168.1.9 printer";

    #[test]
    fn merge_appends_and_keeps_user_lines() {
        let block = wrap_block("10.0.0.1\thead\n");
        let merged = merge_block(USER_HOSTS, &block).unwrap();
        assert!(merged.starts_with(USER_HOSTS));
        assert_eq!(&merged[USER_HOSTS.len()..], format!("\n{block}"));
    }

    #[test]
    fn merge_replaces_in_place_and_keeps_bytes_around() {
        let first = merge_block(USER_HOSTS, &wrap_block("old\n")).unwrap();
        let with_tail = format!("{first}10.1.1.1 after-block\n");
        let merged = merge_block(&with_tail, &wrap_block("new\n")).unwrap();
        assert_eq!(
            merged,
            format!(
                "{USER_HOSTS}\n{}10.1.1.1 after-block\n",
                wrap_block("new\n")
            )
        );
        // Idempotent: merging the same block again changes nothing.
        assert_eq!(merge_block(&merged, &wrap_block("new\n")).unwrap(), merged);
    }

    #[test]
    fn merge_refuses_broken_markers() {
        let only_begin = format!("{BEGIN_MARKER}\nx\n");
        assert!(merge_block(&only_begin, "b").is_err());
        let only_end = format!("x\n{END_MARKER}\n");
        assert!(merge_block(&only_end, "b").is_err());
        let two = format!("{0}{0}", wrap_block("a\n"));
        assert!(merge_block(&two, "b").is_err());
    }

    #[test]
    fn empty_file_gets_just_the_block() {
        let b = wrap_block("x\n");
        assert_eq!(merge_block("", &b).unwrap(), b);
    }
}
