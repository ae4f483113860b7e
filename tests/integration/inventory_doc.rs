//! docs/inventory.md against the inventory types: every field the parser
//! accepts has a row there, and every row names a field it accepts. The
//! fields are found from the types themselves: a key that is unknown at a
//! place makes the parser list the fields that place accepts (the types
//! deny unknown fields), and each field is probed in turn as a mapping, a
//! list of mappings, or a plain value. `CLUSTERCTL_BLESS=1` adds a row for
//! each new field (to describe) and drops rows of fields that are gone.

use std::collections::BTreeSet;
use std::path::Path;

use clusterctl::inventory::RawInventory;
use serde_json::{json, Value};

const PROBE: &str = "zz_not_a_field";

/// The fields accepted where `path` points, if it is a mapping there.
fn fields_at(base: &Value, path: &[Value]) -> Option<Vec<String>> {
    let mut doc = base.clone();
    set(&mut doc, path, json!({ PROBE: 1 }));
    let text = serde_json::to_string(&doc).unwrap();
    let err = raw_error(&text)?;
    let first = err.lines().next().unwrap_or("");
    if !first.contains(&format!("unknown field `{PROBE}`")) {
        return None;
    }
    // "unknown field `x`, expected one of a, b, c" (or "expected `a` or `b`").
    let expected = first.split_once(", expected").map_or("", |(_, e)| e);
    Some(
        expected
            .trim_start_matches(" one of")
            .split([',', ' '])
            .map(|w| w.trim_matches('`'))
            .filter(|w| !w.is_empty() && *w != "or")
            .map(str::to_string)
            .collect(),
    )
}

/// The parser's own message for `text`, if it is refused.
fn raw_error(text: &str) -> Option<String> {
    serde_saphyr::from_str::<RawInventory>(text)
        .err()
        .map(|e| e.to_string())
}

/// Put `value` at `path` (keys and list indices), creating what is missing.
fn set(doc: &mut Value, path: &[Value], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *doc = value;
        return;
    };
    let slot = match first {
        Value::String(k) => {
            if !doc.is_object() {
                *doc = json!({});
            }
            doc.as_object_mut()
                .unwrap()
                .entry(k.clone())
                .or_insert(Value::Null)
        }
        _ => {
            *doc = json!([Value::Null]);
            &mut doc.as_array_mut().unwrap()[0]
        }
    };
    set(slot, rest, value);
}

/// Every field path (`lan.cidr`, `workers[].mac`) below `path`.
fn walk(base: &Value, path: &mut Vec<Value>, shown: &str, out: &mut BTreeSet<String>) {
    let Some(fields) = fields_at(base, path) else {
        return;
    };
    for f in fields {
        let name = if shown.is_empty() {
            f.clone()
        } else {
            format!("{shown}.{f}")
        };
        out.insert(name.clone());
        path.push(Value::String(f));
        if fields_at(base, path).is_some() {
            walk(base, path, &name, out);
        } else {
            path.push(json!(0));
            if fields_at(base, path).is_some() {
                walk(base, path, &format!("{name}[]"), out);
            }
            path.pop();
        }
        path.pop();
    }
}

fn documented(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(f, _)| f.to_string()))
        .collect()
}

#[test]
fn inventory_doc_lists_every_field() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("examples/cluster.yaml")).unwrap();
    let base: Value = serde_saphyr::from_str(&example).unwrap();
    let mut fields = BTreeSet::new();
    walk(&base, &mut Vec::new(), "", &mut fields);
    // The walk itself works: known fields at every depth are found.
    let root_err = raw_error(&serde_json::to_string(&json!({ PROBE: 1 })).unwrap());
    for f in [
        "name",
        "lan.cidr",
        "head.become",
        "workers",
        "workers[].macs",
        "nfs.exports[].path",
    ] {
        assert!(
            fields.contains(f),
            "{f} not found in {fields:?} (the parser says: {root_err:?})"
        );
    }
    let doc_path = root.join("docs/inventory.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let rows = documented(&doc);
    let missing: Vec<&String> = fields.difference(&rows).collect();
    let stale: Vec<&String> = rows.difference(&fields).collect();
    if std::env::var_os("CLUSTERCTL_BLESS").is_some() && (!missing.is_empty() || !stale.is_empty())
    {
        let mut text: String = doc
            .lines()
            .filter(|l| !stale.iter().any(|s| l.starts_with(&format!("| `{s}` |"))))
            .map(|l| format!("{l}\n"))
            .collect();
        if !missing.is_empty() {
            text.push_str("\n## New fields (describe them in their section)\n\n| field | required | meaning |\n| --- | --- | --- |\n");
            for m in &missing {
                text.push_str(&format!("| `{m}` | ? | (describe) |\n"));
            }
        }
        std::fs::write(&doc_path, text).unwrap();
        return;
    }
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/inventory.md is out of date: fields without a row {missing:?}, rows without a field {stale:?}; \
         run CLUSTERCTL_BLESS=1 cargo test --test integration inventory_doc, then describe them"
    );
}
