//! `clusterctl exec NODES -- COMMAND`: one command on a node set (host
//! lists and @groups), over the same transports as apply (workers through
//! the head), `--forks` at once. The words of COMMAND reach the node each
//! shell-quoted, never re-split (`--shell` runs one `sh -c` string instead).
//! Output is gathered per node and nodes with the same output, stderr and
//! exit status are folded together, as `clubak -b` shows them. Exit 1 when
//! any node failed or could not be reached.

use serde::Serialize;

use super::remote;
use crate::cli::{ExecArgs, OutputFormat};
use crate::error::{Error, Result, EXIT_ERROR, EXIT_OK};
use crate::hostlist;
use crate::pool;
use crate::transport::shell_quote;

/// What one node answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecResult {
    pub node: String,
    /// `ok`, `failed` (a non-zero exit) or `unreachable`.
    pub status: &'static str,
    /// The command's exit status (None: it did not run).
    pub exit: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &ExecArgs) -> Result<i32> {
    if args.remote.nodes.is_some() {
        return Err(Error::usage(
            "exec takes its nodes as NODES, not --nodes",
            Some("clusterctl exec @workers -- uptime"),
        ));
    }
    if args.shell && args.command.len() > 1 {
        return Err(Error::usage(
            format!(
                "--shell runs one sh -c string, and COMMAND has {} words",
                args.command.len()
            ),
            Some("quote the whole command: clusterctl exec @workers --shell -- 'df -h | tail -1'"),
        ));
    }
    let mut remote_args = args.remote.clone();
    remote_args.nodes = Some(args.target.clone());
    let prepared = remote::prepare(&remote_args)?;
    let script = script(&args.command, args.shell);
    let work: Vec<_> = prepared
        .nodes
        .iter()
        .map(|n| {
            (
                n.clone(),
                prepared.connector.transport_for(&prepared.cluster, n),
            )
        })
        .collect();
    let head = prepared.cluster.head.name.as_str();
    let results: Vec<ExecResult> = pool::head_first(
        &work,
        args.remote.forks as usize,
        |w| w.0 == head,
        |(node, t)| {
            let r = match t.run(&script) {
                Ok(out) => ExecResult {
                    node: node.clone(),
                    status: if out.status == 0 { "ok" } else { "failed" },
                    exit: Some(out.status),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                },
                Err(e) => ExecResult {
                    node: node.clone(),
                    status: if e.unreachable {
                        "unreachable"
                    } else {
                        "failed"
                    },
                    exit: None,
                    stdout: String::new(),
                    stderr: e.message,
                },
            };
            prepared.done_with(node, t.as_ref());
            r
        },
    );
    drop(work);
    match args.remote.output {
        OutputFormat::Text => {
            print!("{}", folded(&results));
            eprintln!("{}", summary(&results));
        }
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({ "command": args.command, "shell": args.shell, "nodes": results })
        ),
    }
    Ok(match results.iter().all(|r| r.status == "ok") {
        true => EXIT_OK,
        false => EXIT_ERROR,
    })
}

/// The script a node runs: the command alone, stdin from /dev/null (the
/// script itself comes on sh's stdin), in a group read whole first.
fn script(command: &[String], shell: bool) -> String {
    let cmd = match shell {
        true => format!("sh -c {}", shell_quote(&command.join(" "))),
        false => command
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" "),
    };
    format!("{{\n{cmd} </dev/null\n}}\n")
}

/// Nodes with the same answer together, in the order of each group's first
/// node: a header with the folded node set, how many, and the exit status
/// or failure when not 0; then stdout and stderr.
fn folded(results: &[ExecResult]) -> String {
    let mut groups: Vec<(&ExecResult, Vec<&str>)> = Vec::new();
    for r in results {
        let same = |g: &&mut (&ExecResult, Vec<&str>)| {
            (g.0.status, g.0.exit, &g.0.stdout, &g.0.stderr)
                == (r.status, r.exit, &r.stdout, &r.stderr)
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.1.push(&r.node),
            None => groups.push((r, vec![&r.node])),
        }
    }
    let rule = "-".repeat(15);
    let mut out = String::new();
    for (r, nodes) in groups {
        let mut head = format!("{} ({})", hostlist::fold(&nodes), nodes.len());
        match (r.status, r.exit) {
            ("unreachable", _) => head.push_str(" unreachable"),
            (_, Some(0)) => {}
            (_, Some(code)) => head.push_str(&format!(" exit {code}")),
            (_, None) => head.push_str(" failed"),
        }
        out.push_str(&format!("{rule}\n{head}\n{rule}\n"));
        for text in [&r.stdout, &r.stderr] {
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// One line for stderr: how many nodes ran it, and which did not.
fn summary(results: &[ExecResult]) -> String {
    let of = |s: &str| -> Vec<&str> {
        results
            .iter()
            .filter(|r| r.status == s)
            .map(|r| r.node.as_str())
            .collect()
    };
    let mut line = format!("exec: {} node(s): {} ok", results.len(), of("ok").len());
    for s in ["failed", "unreachable"] {
        let nodes = of(s);
        if !nodes.is_empty() {
            line.push_str(&format!(", {s} {}", hostlist::fold(&nodes)));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Local, Transport};

    fn r(node: &str, exit: i32, out: &str) -> ExecResult {
        ExecResult {
            node: node.into(),
            status: if exit == 0 { "ok" } else { "failed" },
            exit: Some(exit),
            stdout: out.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn identical_answers_fold_together() {
        let results = [
            r("n1", 0, "up\n"),
            r("n2", 0, "up\n"),
            r("n3", 1, "down\n"),
            r("n4", 0, "up\n"),
        ];
        assert_eq!(
            folded(&results),
            "---------------\nn[1-2,4] (3)\n---------------\nup\n---------------\nn3 (1) exit 1\n---------------\ndown\n"
        );
        assert_eq!(summary(&results), "exec: 4 node(s): 3 ok, failed n3");
    }

    /// The words reach the command as they are: no re-splitting, no
    /// expansion, a leading `-` is a word (run for real with sh).
    #[test]
    fn words_are_never_re_split() {
        let words: Vec<String> = ["printf", "%s|", "a b", "$HOME", "'q'", "-n", "x;y"]
            .map(String::from)
            .to_vec();
        let out = Local::default().run(&script(&words, false)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "a b|$HOME|'q'|-n|x;y|"
        );
        let out = Local::default()
            .run(&script(&["echo $((1+2)) | tr 3 x".to_string()], true))
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n");
        let out = Local::default()
            .run(&script(&["sh".into(), "-c".into(), "exit 7".into()], false))
            .unwrap();
        assert_eq!(out.status, 7);
    }
}
