//! How `verify` shows its results: a node x check table (`ok`, `FAIL`, `-`
//! for a check that does not apply), then the reason of every failure (with
//! `-v`, every detail), then one summary line; or the same as JSON.

use serde::Serialize;

use super::{NodeChecks, Outcome, CHECKS};

/// The table, the reasons and the summary line.
pub fn text(nodes: &[NodeChecks], verbose: u8) -> String {
    let width = nodes
        .iter()
        .map(|n| n.node.chars().count())
        .chain(std::iter::once(4))
        .max()
        .unwrap_or(4);
    let mut s = format!("{:<width$}", "node");
    for c in CHECKS {
        s.push_str(&format!("  {c:<8}"));
    }
    s = s.trim_end().to_string();
    s.push('\n');
    for n in nodes {
        let mut line = format!("{:<width$}", n.node);
        for c in &n.checks {
            let cell = match c.outcome {
                Outcome::Ok => "ok",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "-",
            };
            line.push_str(&format!("  {cell:<8}"));
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    let shown: Vec<(&str, &super::CheckResult)> = nodes
        .iter()
        .flat_map(|n| n.checks.iter().map(move |c| (n.node.as_str(), c)))
        .filter(|(_, c)| c.outcome == Outcome::Fail || verbose > 0)
        .collect();
    if !shown.is_empty() {
        s.push('\n');
        for (node, c) in shown {
            let tag = if c.outcome == Outcome::Fail {
                "FAIL "
            } else {
                ""
            };
            s.push_str(&format!("{tag}{node} {}: {}\n", c.check, c.detail));
        }
    }
    let failed = nodes.iter().filter(|n| n.failed()).count();
    s.push_str(&if failed == 0 {
        format!("\nverify: all {} node(s) pass\n", nodes.len())
    } else {
        format!("\nverify: {failed} of {} node(s) failed\n", nodes.len())
    });
    s
}

#[derive(Serialize)]
struct Json<'a> {
    ok: bool,
    nodes: &'a [NodeChecks],
}

/// `{"ok": bool, "nodes": [{"node", "checks": [{"check", "outcome", "detail"}]}]}`
pub fn json(nodes: &[NodeChecks]) -> String {
    let j = Json {
        ok: !nodes.iter().any(NodeChecks::failed),
        nodes,
    };
    serde_json::to_string_pretty(&j).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::super::{parse, NodeChecks};
    use super::*;

    #[test]
    fn a_failure_shows_in_the_table_and_with_its_reason() {
        let ok = "@@check address ok a\n@@check route ok b\n@@check resolver skip c\n@@check names ok d\n@@check wan ok e\n@@check nfs skip f\n@@check ssh ok g\n@@check users skip i\n@@check time ok t\n@@check mpi ok h\n@@check slurm skip s\n";
        let nodes = vec![
            NodeChecks {
                node: "head".into(),
                checks: parse(ok),
            },
            NodeChecks {
                node: "w1".into(),
                checks: parse(&ok.replace("names ok d", "names fail w2: no answer")),
            },
        ];
        let t = text(&nodes, 0);
        assert_eq!(
            t,
            "node  address   route     resolver  names     wan       nfs       ssh       users     time      mpi       slurm\n\
             head  ok        ok        -         ok        ok        -         ok        -         ok        ok        -\n\
             w1    ok        ok        -         FAIL      ok        -         ok        -         ok        ok        -\n\
             \n\
             FAIL w1 names: w2: no answer\n\
             \n\
             verify: 1 of 2 node(s) failed\n"
        );
        assert!(json(&nodes).contains("\"ok\": false"));
        assert!(text(&nodes[..1], 0).ends_with("verify: all 1 node(s) pass\n"));
    }
}
