//! Two inventory nodes that turn out to be one machine. `check` refuses
//! the targets it can see (`validate/targets.rs`); an `~/.ssh/config`
//! alias, a DNS name or a second address of the same host it cannot. Each
//! probe reports the machine it ran on (`@@machine`: boot id, machine-id
//! and SSH host key, together unique to one running machine: containers on
//! one kernel share the boot id, clones share the machine-id), and the
//! first node of the run to report a machine owns it; any other node that
//! reports it is refused before its plan. The lock's claim (`lock.sh`)
//! refuses the same at write time on the node itself, for a machine whose
//! probe could not say.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The machines this run has reached, and as which node.
#[derive(Debug, Default)]
pub struct Machines(Mutex<BTreeMap<String, String>>);

impl Machines {
    /// `node` reached the machine `id`: Ok if no other node of this run
    /// did, else the node that did first.
    pub fn claim(&self, id: &str, node: &str) -> Result<(), String> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(id) {
            Some(other) if other != node => Err(other.clone()),
            Some(_) => Ok(()),
            None => {
                seen.insert(id.to_string(), node.to_string());
                Ok(())
            }
        }
    }
}

/// Why a node that is another node's machine was refused; `how` it was
/// known.
pub fn same_machine(other: &str, how: &str) -> String {
    format!(
        "this is the machine this run already reached as {other} ({how}): two inventory nodes lead to one \
         machine (their ssh: targets, an ~/.ssh/config alias or DNS name the same host); nothing \
         was changed here; give each node the target of its own machine"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_node_owns_a_machine_and_may_come_back() {
        let m = Machines::default();
        assert_eq!(m.claim("boot mid key", "head"), Ok(()));
        assert_eq!(m.claim("boot other key", "w1"), Ok(()));
        assert_eq!(m.claim("boot mid key", "w9"), Err("head".to_string()));
        // The second pass of the same run.
        assert_eq!(m.claim("boot mid key", "head"), Ok(()));
    }
}
