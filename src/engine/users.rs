//! The accounts part of the write round trip: `users.sh`'s functions and
//! the `accounts` function that calls them for a plan's [`AccountChange`]s,
//! every value quoted.

use crate::node_state::USERS_FILE;
use crate::plan::AccountChange;
use crate::transport::shell_quote;

const USERS_SH: &str = include_str!("users.sh");

/// The functions, an `accounts` function making the people's changes in
/// order and a `sysaccounts` function making the services' accounts (None:
/// nothing to do). `root`: a scratch root (tests).
pub fn accounts_script(changes: &[AccountChange], root: Option<&str>) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    let mut s = format!("users_file={}\n", shell_quote(USERS_FILE));
    if let Some(r) = root {
        s.push_str(&format!("acct_root={}\n", shell_quote(r)));
    }
    s.push_str(USERS_SH);
    s.push_str("accounts() {\n");
    for c in changes {
        let line = match c {
            AccountChange::Create {
                name,
                uid,
                gid,
                make_group,
                groups,
                shell,
                home,
            } => format!(
                "acct_create {} {uid} {gid} {} {} {} {}",
                shell_quote(name),
                shell_quote(shell),
                shell_quote(&groups.join(",")),
                if *make_group { "yes" } else { "no" },
                if home.make() { "-m" } else { "-M" }
            ),
            AccountChange::Update {
                name,
                shell,
                groups,
                unlock,
            } => format!(
                "acct_update {} {} {} {}",
                shell_quote(name),
                shell_quote(shell.as_deref().unwrap_or("-")),
                shell_quote(&groups.as_ref().map_or("-".to_string(), |g| g.join(","))),
                if *unlock { "yes" } else { "no" }
            ),
            AccountChange::Lock { name } => format!("acct_lock {}", shell_quote(name)),
            AccountChange::CreateSystem { .. } => continue,
        };
        s.push_str(&format!("  {line} || return 1\n"));
    }
    s.push_str("  :\n}\n");
    // Services' accounts come before the install (write.rs runs
    // `sysaccounts` first): their packages must find them made.
    s.push_str("sysaccounts() {\n");
    for c in changes {
        if let AccountChange::CreateSystem {
            name,
            id,
            make_group,
            shell,
        } = c
        {
            s.push_str(&format!(
                "  acct_system {} {id} {} {} || return 1\n",
                shell_quote(name),
                shell_quote(shell),
                if *make_group { "yes" } else { "no" }
            ));
        }
    }
    s.push_str("  :\n}\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::User;
    use crate::facts::Accounts;
    use crate::plan::{plan_accounts, Home, HomeShare};
    use crate::values::{AbsPath, AccountName};
    use std::path::Path;
    use std::process::Command;

    fn user(name: &str, uid: u32, groups: &[&str]) -> User {
        User {
            name: AccountName::parse(name).unwrap(),
            uid,
            gid: uid,
            groups: groups
                .iter()
                .map(|g| AccountName::parse(g).unwrap())
                .collect(),
            shell: AbsPath::parse("/bin/sh").unwrap(),
            ssh_authorized_keys: Vec::new(),
        }
    }

    /// A scratch root with a system account, a user clusterctl did not
    /// create and a `video` group.
    fn scratch() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(d.path().join("home")).unwrap();
        let w = |f: &str, s: &str| std::fs::write(etc.join(f), s).unwrap();
        w(
            "passwd",
            "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\n",
        );
        w("group", "root:x:0:\nvideo:x:44:\nbob:x:1000:\n");
        w(
            "shadow",
            "root:*:19000:0:99999:7:::\nbob:!:19000:0:99999:7:::\n",
        );
        w("gshadow", "root:*::\nvideo:*::\nbob:!::\n");
        w("shells", "/bin/sh\n/bin/bash\n");
        d
    }

    /// The probe's own accounts section, reading the scratch root.
    fn probe(root: &Path) -> Accounts {
        let section =
            crate::facts::ACCOUNTS_SH.replace("/etc/", &format!("{}/etc/", root.display()));
        let script = format!(
            "users_file={}\n{section}probe_accounts\necho @@done\n",
            shell_quote(&format!("{}{USERS_FILE}", root.display()))
        );
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        let facts = crate::facts::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        facts.accounts
    }

    fn run(root: &Path, changes: &[AccountChange]) -> String {
        let s = accounts_script(changes, Some(&root.display().to_string())).unwrap();
        let script = format!("fail=0\n{s}sysaccounts\naccounts\necho \"@@fail $fail\"\n");
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn plan_accounts_t(users: &[User], acc: &Accounts) -> Result<Vec<AccountChange>, String> {
        plan_accounts(users, &[], HomeShare::None, acc)
    }

    fn can_run() -> bool {
        // useradd --root needs root (chroot) and the shadow tools.
        let uid = Command::new("id").arg("-u").output();
        let root = uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        root && Command::new("sh")
            .args([
                "-c",
                "command -v useradd && command -v usermod && command -v groupadd",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn no_changes_no_script() {
        assert_eq!(accounts_script(&[], None), None);
    }

    #[test]
    fn every_value_is_quoted_and_options_end_before_names() {
        let s = accounts_script(
            &[AccountChange::Create {
                name: "alice".into(),
                uid: 2001,
                gid: 2001,
                make_group: true,
                groups: vec!["video".into()],
                shell: "/bin/bash".into(),
                home: Home::Local,
            }],
            None,
        )
        .unwrap();
        assert!(
            s.contains("acct_create alice 2001 2001 /bin/bash video yes -m || return 1"),
            "{s}"
        );
        assert!(s.starts_with("users_file=/var/lib/clusterctl/users\n"));
        for cmd in ["groupadd", "useradd", "usermod"] {
            for line in USERS_SH
                .lines()
                .filter(|l| l.contains(&format!("{cmd} $ropt")))
            {
                assert!(
                    line.contains("-- \""),
                    "{cmd} without -- before the name: {line}"
                );
            }
        }
    }

    /// The real tools on a scratch root: create, converge (nothing left to
    /// do), refuse the clash with the account clusterctl did not create,
    /// lock a user taken out and unlock them when they come back.
    #[test]
    fn users_sh_creates_converges_locks_and_refuses_on_a_scratch_root() {
        if !can_run() {
            eprintln!("skipped: needs root and useradd");
            return;
        }
        let d = scratch();
        let root = d.path();
        let users = [user("alice", 2001, &["video"]), user("carol", 2002, &[])];
        let changes = plan_accounts(&users, &[], HomeShare::None, &probe(root)).unwrap();
        assert_eq!(
            changes.iter().map(|c| c.describe()).collect::<Vec<_>>(),
            [
                "user: create alice (2001:2001, groups video, shell /bin/sh, home /home/alice local)",
                "user: create carol (2002:2002, shell /bin/sh, home /home/carol local)"
            ]
        );
        let out = run(root, &changes);
        assert!(
            out.contains("@@account create alice") && out.contains("@@fail 0"),
            "{out}"
        );
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(
            passwd.contains("alice:x:2001:2001::/home/alice:/bin/sh"),
            "{passwd}"
        );
        assert!(root.join("home/alice").is_dir(), "a local home");
        let record = std::fs::read_to_string(root.join("var/lib/clusterctl/users")).unwrap();
        assert_eq!(record, "alice\ncarol\n");

        // Converged: a second plan changes nothing.
        let acc = probe(root);
        assert_eq!(
            plan_accounts(&users, &[], HomeShare::None, &acc).unwrap(),
            []
        );

        // bob is not clusterctl's: never touched, and his name or UID refused.
        let e = plan_accounts_t(&[user("bob", 2005, &[])], &acc).unwrap_err();
        assert_eq!(e, "user bob: an account bob (uid 1000) that clusterctl did not create is already on this node");
        let e = plan_accounts_t(&[user("dave", 1000, &[])], &acc).unwrap_err();
        assert_eq!(e, "user dave: uid 1000 is already bob's on this node");

        // carol out of the inventory: locked, files kept; a no-op after.
        let changes = plan_accounts_t(&users[..1], &acc).unwrap();
        assert_eq!(
            changes.iter().map(|c| c.describe()).collect::<Vec<_>>(),
            ["user: lock carol (not in the inventory; its files are kept)"]
        );
        let out = run(root, &changes);
        assert!(out.contains("@@account lock carol"), "{out}");
        let acc = probe(root);
        assert_eq!(acc.expires.get("carol"), Some(&Some(1)));
        assert!(root.join("home/carol").is_dir(), "files kept");
        assert_eq!(plan_accounts_t(&users[..1], &acc).unwrap(), []);

        // carol back, with another shell and a group: one update.
        let mut back = users.clone();
        back[1].shell = AbsPath::parse("/bin/bash").unwrap();
        back[1].groups = vec![AccountName::parse("video").unwrap()];
        let changes = plan_accounts_t(&back, &acc).unwrap();
        assert_eq!(
            changes.iter().map(|c| c.describe()).collect::<Vec<_>>(),
            ["user: update carol (shell /bin/bash, groups video, unlock (back in the inventory))"]
        );
        let out = run(root, &changes);
        assert!(out.contains("@@fail 0"), "{out}");
        assert_eq!(plan_accounts_t(&back, &probe(root)).unwrap(), []);

        // /home is the head's NFS share here: dave's home is made there, not here.
        let mut acc = probe(root);
        acc.home_fs = Some("nfs4".into());
        let mut all = back.to_vec();
        all.push(user("dave", 2004, &[]));
        let changes = plan_accounts(&all, &[], HomeShare::Mounted, &acc).unwrap();
        assert_eq!(
            changes.iter().map(|c| c.describe()).collect::<Vec<_>>(),
            ["user: create dave (2004:2004, shell /bin/sh, home /home/dave on the head's NFS share)"]
        );
        let out = run(root, &changes);
        assert!(out.contains("@@account create dave"), "{out}");
        assert!(
            !root.join("home/dave").exists(),
            "no home made under the share"
        );
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(
            passwd.contains("dave:x:2004:2004::/home/dave:/bin/sh"),
            "{passwd}"
        );
    }

    /// munge's account with the cluster's IDs on a scratch root: made by
    /// `sysaccounts` (no home, nologin, not in clusterctl's record of
    /// people), then taken as it is.
    #[test]
    fn sysaccounts_make_a_services_account_with_fixed_ids_on_a_scratch_root() {
        if !can_run() {
            eprintln!("skipped: needs root and useradd");
            return;
        }
        let d = scratch();
        let root = d.path();
        let munge = crate::plan::SystemAccount {
            name: "munge",
            id: 64029,
            field: "munge_uid",
            shell: "/usr/sbin/nologin",
        };
        let sys = std::slice::from_ref(&munge);
        let changes = plan_accounts(&[], sys, HomeShare::None, &probe(root)).unwrap();
        assert_eq!(changes.len(), 1, "{changes:?}");
        let out = run(root, &changes);
        assert!(
            out.contains("@@account system munge") && out.contains("@@fail 0"),
            "{out}"
        );
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(
            passwd.contains("munge:x:64029:64029::/nonexistent:/usr/sbin/nologin"),
            "{passwd}"
        );
        assert!(!root.join("nonexistent").exists(), "no home");
        assert!(
            !root.join("var/lib/clusterctl/users").exists(),
            "not one of the people clusterctl locks when they leave the inventory"
        );
        assert_eq!(
            plan_accounts(&[], sys, HomeShare::None, &probe(root)).unwrap(),
            []
        );
    }
}
