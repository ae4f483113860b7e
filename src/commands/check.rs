//! `clusterctl check`: load and validate the inventory offline, then compile
//! and render the templates in use (built-ins and overrides) for every node
//! with assumed facts, so a misspelled override or an undefined template
//! variable is caught here rather than by `render` or `apply`. Text, or
//! `--output json` (every problem with file, line, column, node and help).

use std::path::Path;

use serde::Serialize;

use crate::cli::{CheckArgs, OutputFormat};
use crate::cluster::Cluster;
use crate::desired;
use crate::error::{Diagnostic, Error, Result, EXIT_ERROR, EXIT_OK};
use crate::templates::Templates;

/// One problem as `check --output json` prints it.
#[derive(Debug, Serialize)]
struct Problem {
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    node: Option<String>,
    message: String,
    help: Option<String>,
}

pub fn run(args: CheckArgs) -> Result<i32> {
    let path = &args.inventory.path;
    let result = check(path, args.templates.dir.as_deref());
    match args.output {
        OutputFormat::Text => {
            let (cluster, errors) = result?;
            if !errors.is_empty() {
                for e in &errors {
                    crate::error::print_error(e);
                }
                eprintln!("{}: {} template problem(s)", path.display(), errors.len());
                return Ok(EXIT_ERROR);
            }
            println!("{}: ok: {}", path.display(), summary(&cluster));
            Ok(EXIT_OK)
        }
        OutputFormat::Json => {
            let (ok, summary, problems) = match result {
                Ok((cluster, errors)) => {
                    let problems: Vec<Problem> =
                        errors.iter().flat_map(|e| problems(path, e)).collect();
                    (problems.is_empty(), Some(summary(&cluster)), problems)
                }
                Err(e) => (false, None, problems(path, &e)),
            };
            let v = serde_json::json!({
                "file": path.display().to_string(),
                "ok": ok,
                "summary": summary,
                "problems": problems,
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(if ok { EXIT_OK } else { EXIT_ERROR })
        }
    }
}

/// The cluster and every template problem (each template error once, even
/// when many nodes hit it); an inventory that does not validate is `Err`.
fn check(path: &Path, templates: Option<&Path>) -> Result<(Cluster, Vec<Error>)> {
    let cluster = Cluster::load(path)?;
    let dir = crate::templates::override_dir(path, templates)?;
    let templates = match Templates::load(dir.as_deref()) {
        Ok(t) => t,
        Err(e) => return Ok((cluster, vec![e])),
    };
    let mut errors: Vec<Error> = Vec::new();
    for e in desired::render_errors(&cluster, &templates) {
        if !errors.iter().any(|seen| seen.to_string() == e.to_string()) {
            errors.push(e);
        }
    }
    Ok((cluster, errors))
}

fn summary(cluster: &Cluster) -> String {
    let n = cluster.workers.len();
    format!(
        "cluster {} ({}), head {} + {} worker{} on {}",
        cluster.name,
        cluster.domain,
        cluster.head.name,
        n,
        if n == 1 { "" } else { "s" },
        cluster.lan.cidr
    )
}

fn problems(path: &Path, e: &Error) -> Vec<Problem> {
    let file = path.display().to_string();
    match e {
        Error::Inventory { file, diagnostics } => diagnostics
            .iter()
            .map(|d| from_diagnostic(&file.display().to_string(), d))
            .collect(),
        _ => vec![Problem {
            file,
            line: None,
            column: None,
            node: None,
            message: e.to_string(),
            help: e.help(),
        }],
    }
}

fn from_diagnostic(file: &str, d: &Diagnostic) -> Problem {
    Problem {
        file: file.to_string(),
        line: d.location.map(|l| l.line),
        column: d.location.map(|l| l.column),
        node: d.node.clone(),
        message: d.message.clone(),
        help: d.help.clone(),
    }
}
