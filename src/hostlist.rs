//! Host lists: `node[01-16]`, `node[1-3,7]`, `gpu[01-02]-a`. Expand (zero padding
//! kept) and fold (the inverse, used for comments, Slurm-style output and filters).
//!
//! Grammar: a comma-separated list of items at the top level; each item is a
//! prefix, at most one `[...]` group of ranges `A-B` or numbers, and a suffix.

use std::collections::BTreeMap;

use crate::values::shown;

/// Why a host list could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostlistError(pub String);

impl std::fmt::Display for HostlistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Upper bound on one expansion, so a typo like `n[0-99999999]` cannot eat memory.
pub const MAX_HOSTS: usize = 65_536;

/// Expand a host list into names, in the order written.
pub fn expand(list: &str) -> Result<Vec<String>, HostlistError> {
    let list_s = shown(list);
    let mut out = Vec::new();
    for item in split_top_level(list)? {
        if item.is_empty() {
            return Err(HostlistError(format!("empty item in host list `{list_s}`")));
        }
        expand_item(item, &mut out)?;
        if out.len() > MAX_HOSTS {
            return Err(HostlistError(format!(
                "host list `{list_s}` expands to more than {MAX_HOSTS} names"
            )));
        }
    }
    Ok(out)
}

/// Split on commas that are not inside brackets.
fn split_top_level(list: &str) -> Result<Vec<&str>, HostlistError> {
    let list_s = shown(list);
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '[' => {
                depth += 1;
                if depth > 1 {
                    return Err(HostlistError(format!("nested `[` in host list `{list_s}`")));
                }
            }
            ']' => {
                if depth == 0 {
                    return Err(HostlistError(format!(
                        "unmatched `]` in host list `{list_s}`"
                    )));
                }
                depth -= 1;
            }
            ',' if depth == 0 => {
                items.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(HostlistError(format!(
            "unclosed `[` in host list `{list_s}`"
        )));
    }
    items.push(list[start..].trim());
    Ok(items)
}

fn expand_item(item: &str, out: &mut Vec<String>) -> Result<(), HostlistError> {
    let item_s = shown(item);
    let Some(open) = item.find('[') else {
        out.push(item.to_string());
        return Ok(());
    };
    let close = item[open..]
        .find(']')
        .map(|i| i + open)
        .ok_or_else(|| HostlistError(format!("unclosed `[` in `{item_s}`")))?;
    let prefix = &item[..open];
    let suffix = &item[close + 1..];
    if suffix.contains('[') {
        return Err(HostlistError(format!(
            "`{item_s}` has more than one `[...]` group; use one range per item"
        )));
    }
    let body = &item[open + 1..close];
    if body.trim().is_empty() {
        return Err(HostlistError(format!("empty range `[]` in `{item_s}`")));
    }
    for part in body.split(',') {
        let part = part.trim();
        let part_s = shown(part);
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let parse = |s: &str| -> Result<u64, HostlistError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 9 {
                return Err(HostlistError(format!(
                    "`{part_s}` in `{item_s}` is not a number or range A-B"
                )));
            }
            s.parse::<u64>()
                .map_err(|_| HostlistError(format!("`{part_s}` in `{item_s}` is not a number")))
        };
        let (a, b) = (parse(lo)?, parse(hi)?);
        if a > b {
            return Err(HostlistError(format!(
                "range `{part_s}` in `{item_s}` is reversed (write `{}-{}` the other way round)",
                shown(hi),
                shown(lo)
            )));
        }
        if (b - a) as usize >= MAX_HOSTS {
            return Err(HostlistError(format!(
                "range `{part_s}` in `{item_s}` expands to more than {MAX_HOSTS} names"
            )));
        }
        // Zero padding: a bound written with a leading zero fixes the width.
        let width = if lo.len() > 1 && lo.starts_with('0') {
            lo.len()
        } else {
            0
        };
        for n in a..=b {
            out.push(format!("{prefix}{n:0width$}{suffix}"));
        }
    }
    Ok(())
}

/// Fold names into a host list whose expansion is the sorted, unique set of
/// `names`. Names are grouped by (prefix, suffix, digit width) around their last
/// run of digits. A number written with a leading zero fixes its group's width;
/// an unpadded number of that same length joins the group (`n09`,`n10` fold to
/// `n[09-10]`), every other number goes in the unpadded group.
pub fn fold<S: AsRef<str>>(names: &[S]) -> String {
    let mut plain: Vec<String> = Vec::new();
    let mut numbered: Vec<(&str, &str, &str)> = Vec::new();
    for name in names {
        let name = name.as_ref();
        match split_number(name) {
            Some(parts) => numbered.push(parts),
            None => plain.push(name.to_string()),
        }
    }
    let padded = |d: &str| d.len() > 1 && d.starts_with('0');
    // Widths fixed by padded numbers, per (prefix, suffix).
    let widths: std::collections::BTreeSet<(&str, &str, usize)> = numbered
        .iter()
        .filter(|(_, d, _)| padded(d))
        .map(|(p, d, s)| (*p, *s, d.len()))
        .collect();
    let mut groups: BTreeMap<(&str, &str, usize), Vec<u64>> = BTreeMap::new();
    for (prefix, digits, suffix) in numbered {
        let width = if padded(digits) || widths.contains(&(prefix, suffix, digits.len())) {
            digits.len()
        } else {
            0
        };
        // split_number caps digits at 9, so this parse cannot overflow.
        let n: u64 = digits.parse().unwrap_or_default();
        groups.entry((prefix, suffix, width)).or_default().push(n);
    }
    plain.sort();
    plain.dedup();
    let mut items = plain;
    for ((prefix, suffix, width), mut nums) in groups {
        nums.sort_unstable();
        nums.dedup();
        let fmt = |n: u64| format!("{n:0width$}");
        if nums.len() == 1 {
            items.push(format!("{prefix}{}{suffix}", fmt(nums[0])));
            continue;
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < nums.len() {
            let mut j = i;
            while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                j += 1;
            }
            if i == j {
                parts.push(fmt(nums[i]));
            } else {
                parts.push(format!("{}-{}", fmt(nums[i]), fmt(nums[j])));
            }
            i = j + 1;
        }
        items.push(format!("{prefix}[{}]{suffix}", parts.join(",")));
    }
    items.join(",")
}

/// Split `gpu01-a` into ("gpu", "01", "-a") at the last run of ASCII digits.
fn split_number(name: &str) -> Option<(&str, &str, &str)> {
    let bytes = name.as_bytes();
    let end = bytes.iter().rposition(|b| b.is_ascii_digit())? + 1;
    let start = bytes[..end]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    if end - start > 9 {
        return None;
    }
    Some((&name[..start], &name[start..end], &name[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(list: &str) -> Vec<String> {
        expand(list).unwrap()
    }

    #[test]
    fn expands_padded_range() {
        assert_eq!(names("node[01-03]"), ["node01", "node02", "node03"]);
    }

    #[test]
    fn expands_list_and_range() {
        assert_eq!(names("node[1-3,7]"), ["node1", "node2", "node3", "node7"]);
    }

    #[test]
    fn keeps_suffix() {
        assert_eq!(names("gpu[01-02]-a"), ["gpu01-a", "gpu02-a"]);
    }

    #[test]
    fn expands_several_items() {
        assert_eq!(
            names("head,node[8-10]"),
            ["head", "node8", "node9", "node10"]
        );
    }

    #[test]
    fn rejects_bad_lists() {
        for bad in [
            "node[",
            "node]",
            "node[3-1]",
            "node[]",
            "n[a-b]",
            "n[1-2][3-4]",
            "a,,b",
            "n[[1]]",
        ] {
            assert!(expand(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn rejects_huge_range() {
        let err = expand("n[0-99999999]").unwrap_err();
        assert!(err.0.contains("more than 65536"), "{err}");
    }

    #[test]
    fn folds_to_ranges() {
        assert_eq!(
            fold(&["node03", "node01", "node02", "node07"]),
            "node[01-03,07]"
        );
        assert_eq!(fold(&["gpu01-a", "gpu02-a", "head"]), "head,gpu[01-02]-a");
        assert_eq!(fold(&["node8", "node9", "node10"]), "node[8-10]");
        assert_eq!(fold(&["w1"]), "w1");
        let sixteen = expand("node[01-16]").unwrap();
        assert_eq!(fold(&sixteen), "node[01-16]");
    }

    #[test]
    fn fold_mixed_padding_round_trips() {
        let input = ["n01", "n1", "n10", "n100"];
        let folded = fold(&input);
        let mut back = expand(&folded).unwrap();
        back.sort();
        let mut want: Vec<String> = input.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(back, want, "folded as {folded}");
    }

    proptest! {
        #[test]
        fn expand_of_fold_is_sorted_unique_input(
            raw in proptest::collection::vec(("[a-c]{1,2}", 0u64..40, 0usize..3, "(|-[a-b])"), 0..30)
        ) {
            let input: Vec<String> = raw
                .iter()
                .map(|(p, n, w, s)| format!("{p}{n:0w$}{s}"))
                .collect();
            let folded = fold(&input);
            let mut got = if input.is_empty() { Vec::new() } else { expand(&folded).unwrap() };
            got.sort();
            let mut want = input.clone();
            want.sort();
            want.dedup();
            prop_assert_eq!(got.clone(), want, "folded: {}", folded);
            // No duplicates in the expansion either.
            let n = got.len();
            got.dedup();
            prop_assert_eq!(n, got.len());
        }
    }
}
