//! The shell functions the handler round trip and the revert share
//! (`handlers.sh`: `run` and the activations that spare the SSH session's
//! interface; `lock.sh`: the node's apply lock), and the lock's values.
//! Below both `handlers.rs` and `confirm.rs`, so neither imports the other
//! for them.

use crate::transport::shell_quote;

/// The node's apply lock alone (`lock`, `unlock`).
pub(super) const LOCK: &str = include_str!("lock.sh");

/// The handler functions and the lock, also used by the revert script.
pub(super) const LIB: &str = concat!(include_str!("handlers.sh"), include_str!("lock.sh"));

/// The node's apply lock as this run holds it.
#[derive(Debug, Clone)]
pub struct LockRef {
    pub dir: String,
    pub run_id: String,
    /// Seconds the lock is held at most if this run dies.
    pub lease: u64,
    /// The inventory node this run reached here: the lock's claim records
    /// it, so a second node of the same run that reaches the same machine
    /// is refused (`@@samemachine`).
    pub node: String,
}

impl LockRef {
    /// Quoted assignments for `lock.sh`.
    pub fn assignments(&self) -> String {
        format!(
            "lk={}\nrun={}\nlease={}\nme={}\n",
            shell_quote(&self.dir),
            shell_quote(&self.run_id),
            self.lease,
            shell_quote(&self.node)
        )
    }
}
