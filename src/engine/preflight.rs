//! Before anything is written: does the node have every command the plan
//! needs (the engine's own, the changed files' validators, the handlers'),
//! and can it run every planned handler at all?

use std::collections::BTreeSet;

use crate::catalog::Tool;
use crate::facts::{Facts, InitSystem};
use crate::plan::NodePlan;

/// What the write script itself uses.
const ENGINE_TOOLS: &[Tool] = &[
    Tool::new("base64", "coreutils"),
    Tool::new("mktemp", "coreutils"),
];

/// Ok, or why apply must stop before writing anything on `node`. With
/// `skip_packages` (air-gapped clusters), a package the node lacks is an
/// error instead of an install.
pub fn preflight(
    plan: &NodePlan,
    facts: &Facts,
    node: &str,
    skip_packages: bool,
) -> Result<(), String> {
    if skip_packages && !plan.install.is_empty() {
        return Err(format!(
            "missing package(s) {} on {node} (--skip-packages: clusterctl installs nothing); \
             install them and run apply again; nothing was changed",
            plan.install.join(", ")
        ));
    }
    if let Some(Err(e)) = plan
        .handlers
        .iter()
        .map(|h| &h.run.command)
        .find(|c| c.is_err())
    {
        return Err(e.clone());
    }
    let mut need: Vec<Tool> = ENGINE_TOOLS.to_vec();
    for c in plan.changes.iter().filter(|c| c.action.writes_content()) {
        need.extend(c.validator.map(|v| v.tools()).unwrap_or_default());
    }
    for h in &plan.handlers {
        need.extend(h.run.tools.iter().copied());
    }
    let mut missing: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for t in need {
        // A tool whose package this apply installs first is not missing.
        let coming = plan.install.contains(&t.package);
        if seen.insert(t.command) && !coming && !facts.tools.contains(t.command) {
            missing.push(format!("`{}` (package {})", t.command, t.package));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing {} on {node} ({} {}, {} init); install it and run apply again; nothing was changed",
        missing.join(", "),
        facts.os_id,
        facts.os_version,
        match facts.init {
            InitSystem::Systemd => "systemd",
            InitSystem::Sysvinit => "sysvinit",
            InitSystem::Openrc => "OpenRC",
            InitSystem::Unknown => "unknown",
        }
    ))
}
