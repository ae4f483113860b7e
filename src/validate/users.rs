//! The inventory's `users:`: each name a safe account name, UID and GID in
//! the range for people (not the system's), names and UIDs unique, groups
//! checked names, the shell an absolute path, each SSH key one real public
//! key line.

use std::collections::{BTreeMap, BTreeSet};

use super::Diags;
use crate::cluster::User;
use crate::inventory::{loc, RawUser, S};
use crate::values::{check_account_id, shown, AbsPath, AccountName, SshPublicKey};

/// The shell a user gets when the inventory names none.
pub const DEFAULT_SHELL: &str = "/bin/bash";

const NAME_HELP: &str =
    "a login name like `alice`: lowercase letters, digits, '_' and '-', starting with a letter";
const KEY_HELP: &str =
    "paste the one line of the person's public key file (~/.ssh/id_ed25519.pub): TYPE BASE64 [COMMENT]";
const ID_HELP: &str = "pick an ID from 1000 up to 59999, the same one the person has elsewhere";

pub(super) fn users(d: &mut Diags, raw: &[S<RawUser>]) -> Vec<User> {
    let mut out = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut uids: BTreeMap<u32, String> = BTreeMap::new();
    let mut gids: BTreeMap<u32, String> = BTreeMap::new();
    for entry in raw {
        let u = &entry.value;
        let name = match AccountName::parse(&u.name.value) {
            Ok(n) => Some(n),
            Err(e) => {
                d.err(
                    loc(&u.name),
                    None,
                    format!("user name `{}` {e}", shown(&u.name.value)),
                    Some(NAME_HELP),
                );
                None
            }
        };
        let who = shown(&u.name.value);
        if !names.insert(u.name.value.clone()) {
            d.err(
                loc(&u.name),
                None,
                format!("user `{who}` is listed twice"),
                Some("list each user once"),
            );
        }
        let uid = u.uid.value;
        let uid_ok = match check_account_id(uid) {
            Ok(()) => true,
            Err(e) => {
                d.err(
                    loc(&u.uid),
                    None,
                    format!("user `{who}`: uid {uid} {e}"),
                    Some(ID_HELP),
                );
                false
            }
        };
        if let Some(other) = uids.insert(uid, u.name.value.clone()) {
            d.err(
                loc(&u.uid),
                None,
                format!("user `{who}`: uid {uid} is also `{}`'s", shown(&other)),
                Some("every user needs a UID of their own"),
            );
        }
        let gid = u.gid.as_ref().map_or(uid, |g| g.value);
        // A gid that defaults to the uid was checked with it.
        let gid_ok = match (&u.gid, check_account_id(gid)) {
            (None, _) => uid_ok,
            (Some(_), Ok(())) => true,
            (Some(g), Err(e)) => {
                d.err(
                    loc(g),
                    None,
                    format!("user `{who}`: gid {gid} {e}"),
                    Some(ID_HELP),
                );
                false
            }
        };
        // Each user's primary group has the user's name: two users cannot
        // share one GID (it would be two groups with one ID).
        if let Some(other) = gids.insert(gid, u.name.value.clone()) {
            let at = u.gid.as_ref().map_or(loc(&u.uid), loc);
            d.err(
                at,
                None,
                format!(
                    "user `{who}`: gid {gid} is also `{}`'s group",
                    shown(&other)
                ),
                Some("each user's group is named after the user and has an ID of its own"),
            );
        }
        let mut groups = BTreeSet::new();
        for g in &u.groups {
            match AccountName::parse(&g.value) {
                Ok(n) => {
                    groups.insert(n);
                }
                Err(e) => d.err(
                    loc(g),
                    None,
                    format!("user `{who}`: group `{}` {e}", shown(&g.value)),
                    Some("a group name like `video`: lowercase letters, digits, '_' and '-'"),
                ),
            }
        }
        let shell = match &u.shell {
            None => AbsPath::parse(DEFAULT_SHELL).ok(),
            Some(s) => match AbsPath::parse(&s.value) {
                Ok(p) if p.as_str() != "/" => Some(p),
                Ok(_) => {
                    d.err(
                        loc(s),
                        None,
                        format!("user `{who}`: shell `/` is a directory"),
                        Some("an absolute path such as /bin/bash"),
                    );
                    None
                }
                Err(e) => {
                    d.err(
                        loc(s),
                        None,
                        format!("user `{who}`: shell `{}` {e}", shown(&s.value)),
                        Some("an absolute path such as /bin/bash"),
                    );
                    None
                }
            },
        };
        let mut keys: Vec<SshPublicKey> = Vec::new();
        for k in &u.ssh_authorized_keys {
            match SshPublicKey::parse(&k.value) {
                Ok(key) if keys.contains(&key) => d.err(
                    loc(k),
                    None,
                    format!("user `{who}`: this SSH key is listed twice"),
                    Some("list each key once"),
                ),
                Ok(key) => keys.push(key),
                Err(e) => d.err(
                    loc(k),
                    None,
                    format!("user `{who}`: SSH key `{}` {e}", shown(&k.value)),
                    Some(KEY_HELP),
                ),
            }
        }
        if let (Some(name), true, true, Some(shell)) = (name, uid_ok, gid_ok, shell) {
            out.push(User {
                name,
                uid,
                gid,
                groups: groups.into_iter().collect(),
                shell,
                ssh_authorized_keys: keys,
            });
        }
    }
    // The primary group already has the user's name: listing it again
    // among the supplementary groups adds nothing.
    for u in &mut out {
        let own = u.name.clone();
        u.groups.retain(|g| *g != own);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::cluster::Cluster;
    use std::path::Path;

    fn with_users(users: &str) -> Result<Cluster, String> {
        let text = format!(
            "{}users:\n{users}",
            include_str!("../../inventories/lab.yaml")
        );
        Cluster::from_str(&text, Path::new("c.yaml")).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn users_resolve_with_their_defaults() {
        let c = with_users("  - name: alice\n    uid: 2001\n  - name: bob\n    uid: 2002\n    gid: 3002\n    groups: [video, bob, audio, video]\n    shell: /bin/sh\n").unwrap();
        assert_eq!(c.users.len(), 2);
        let (a, b) = (&c.users[0], &c.users[1]);
        assert_eq!(
            (a.name.as_str(), a.uid, a.gid, a.shell.as_str()),
            ("alice", 2001, 2001, "/bin/bash")
        );
        assert_eq!((b.gid, b.shell.as_str()), (3002, "/bin/sh"));
        let g: Vec<&str> = b.groups.iter().map(|g| g.as_str()).collect();
        assert_eq!(
            g,
            ["audio", "video"],
            "sorted, unique, without the user's own group"
        );
    }

    #[test]
    fn ids_outside_the_range_for_people_say_why() {
        let e = with_users("  - name: alice\n    uid: 999\n").unwrap_err();
        assert!(e.contains("belong to the system's own accounts"), "{e}");
        let e = with_users("  - name: alice\n    uid: 65534\n").unwrap_err();
        assert!(e.contains("65534 is `nobody`"), "{e}");
        assert!(with_users("  - name: alice\n    uid: 59999\n").is_ok());
    }
}
