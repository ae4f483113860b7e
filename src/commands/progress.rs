//! `apply`'s progress on stderr: on a terminal, indicatif bars (one line
//! per node in flight with what it is doing, a total bar); otherwise plain
//! whole lines, one per event; `--quiet` prints none (the recap and errors
//! still come).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{self, NodeReport};

pub enum Log {
    Quiet,
    Plain { verbose: u8 },
    Bars(Bars),
}

pub struct Bars {
    verbose: u8,
    multi: MultiProgress,
    total: ProgressBar,
    nodes: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Log {
    /// Bars on a terminal, plain lines otherwise, nothing with `--quiet`.
    pub fn new(quiet: bool, verbose: u8, nodes: usize) -> Log {
        if quiet {
            return Log::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Log::Plain { verbose };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(nodes as u64));
        total.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} nodes {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        total.enable_steady_tick(Duration::from_millis(200));
        Log::Bars(Bars {
            verbose,
            multi,
            total,
            nodes: Mutex::new(BTreeMap::new()),
        })
    }

    /// A line above the bars (or on its own).
    pub fn line(&self, s: &str) {
        match self {
            Log::Quiet => {}
            Log::Plain { .. } => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr().lock(), "{s}");
            }
            Log::Bars(b) => {
                let _ = b.multi.println(s);
            }
        }
    }

    /// `node` is being worked on: `what` (applying, waiting for its lease…).
    /// Plain output has no line for it (the bars show it as it happens).
    pub fn start(&self, node: &str, what: &str) {
        match self {
            Log::Bars(b) => {
                let mut nodes = b.nodes.lock().unwrap_or_else(|e| e.into_inner());
                let bar = nodes.entry(node.to_string()).or_insert_with(|| {
                    let bar = b.multi.insert_before(&b.total, ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(node.to_string());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_message(what.to_string());
            }
            Log::Plain { .. } | Log::Quiet => {}
        }
    }

    /// Like [`Log::start`], with a plain line too.
    pub fn start_loud(&self, node: &str, what: &str) {
        self.start(node, what);
        if let Log::Plain { .. } = self {
            self.line(&format!("{node}: {what}"));
        }
    }

    /// `node` finished: its progress text, the total advanced.
    pub fn report(&self, r: &NodeReport) {
        match self {
            Log::Quiet => {}
            Log::Plain { verbose } => self.line(&report::progress_text(r, *verbose)),
            Log::Bars(b) => {
                let bar = b
                    .nodes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&r.node);
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                    b.multi.remove(&bar);
                }
                let _ = b.multi.println(report::progress_text(r, b.verbose));
                b.total.inc(1);
            }
        }
    }

    /// Remove the bars before the recap is printed.
    pub fn finish(&self) {
        if let Log::Bars(b) = self {
            for (_, bar) in std::mem::take(&mut *b.nodes.lock().unwrap_or_else(|e| e.into_inner()))
            {
                bar.finish_and_clear();
            }
            b.total.finish_and_clear();
        }
    }
}
