//! The accounts part of a plan: the cluster's users against a node's
//! passwd and group entries. Every clash (a name or ID already used on the
//! node by an account clusterctl did not create) is refused here, before
//! anything on the node changes; accounts clusterctl did not create are
//! never touched. Pure: no I/O.

use crate::cluster::{Cluster, Role, User};
use crate::facts::Accounts;

/// The directory that holds the users' homes (`/home/NAME`).
pub const HOME_BASE: &str = "/home";

/// What the inventory says about `/home` on one node: shared when the head
/// exports `/home` and the workers mount it at `/home`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HomeShare {
    /// Homes are local.
    #[default]
    None,
    /// The head: its `/home` is the share.
    Exported,
    /// A worker: `/home` is the head's share (when it is mounted).
    Mounted,
}

impl HomeShare {
    pub fn of(cluster: &Cluster, role: Role) -> HomeShare {
        let shared = cluster.nfs.enabled
            && cluster
                .nfs
                .exports
                .iter()
                .any(|e| e.path.as_str() == HOME_BASE && e.mount.as_str() == HOME_BASE);
        match (shared, role) {
            (false, _) => HomeShare::None,
            (true, Role::Head) => HomeShare::Exported,
            (true, Role::Worker) => HomeShare::Mounted,
        }
    }
}

/// Where a new account's home goes on this node, as the plan says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// Made here (`useradd -m`); nothing shares it.
    Local,
    /// Made here, on the head's exported `/home`.
    Exported,
    /// On the head's share, mounted here: made by the head, not here (`useradd -M`).
    OnShare,
    /// The inventory shares `/home` but it is not an NFS mount here (yet):
    /// made here, hidden by the share once it mounts.
    LocalNotMounted,
}

impl Home {
    fn of(share: HomeShare, acc: &Accounts) -> Home {
        match share {
            HomeShare::None => Home::Local,
            HomeShare::Exported => Home::Exported,
            HomeShare::Mounted if acc.home_on_nfs() => Home::OnShare,
            HomeShare::Mounted => Home::LocalNotMounted,
        }
    }

    /// `useradd -m` (else `-M`).
    pub fn make(self) -> bool {
        self != Home::OnShare
    }

    fn describe(self, name: &str) -> String {
        match self {
            Home::Local => format!("home {HOME_BASE}/{name} local"),
            Home::Exported => format!("home {HOME_BASE}/{name} here, shared over NFS"),
            Home::OnShare => format!("home {HOME_BASE}/{name} on the head's NFS share"),
            Home::LocalNotMounted => {
                format!("home {HOME_BASE}/{name} local: {HOME_BASE} is not an NFS mount here yet")
            }
        }
    }
}

/// One change to a node's accounts. Values are checked (`values::AccountName`,
/// IDs in the range for people); the script quotes them anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    /// `groupadd` the user's group (unless `make_group` is false: an
    /// earlier apply made it and then failed at `useradd`), then
    /// `useradd -m`.
    Create {
        name: String,
        uid: u32,
        gid: u32,
        make_group: bool,
        groups: Vec<String>,
        shell: String,
        home: Home,
    },
    /// A managed account whose shell, groups or lock differ.
    Update {
        name: String,
        /// The new shell, if it changes.
        shell: Option<String>,
        /// The new supplementary groups, if they change.
        groups: Option<Vec<String>>,
        /// Back in the inventory: the lock (expiry) is lifted.
        unlock: bool,
    },
    /// Out of the inventory: locked and expired, its files kept.
    Lock { name: String },
    /// A service's account (munge, slurm) with the cluster's fixed IDs,
    /// made before the package that would make it with an ID of its own
    /// (`groupadd -r`, `useradd -r`, no home).
    CreateSystem {
        name: String,
        id: u32,
        make_group: bool,
        shell: String,
    },
}

/// An account a service needs, the same IDs on every node (UID = GID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemAccount {
    pub name: &'static str,
    pub id: u32,
    /// The inventory field that sets the ID (for messages).
    pub field: &'static str,
    /// Its shell: the node family's nologin.
    pub shell: &'static str,
}

impl AccountChange {
    /// The account's name.
    pub fn name(&self) -> &str {
        match self {
            AccountChange::Create { name, .. }
            | AccountChange::Update { name, .. }
            | AccountChange::Lock { name }
            | AccountChange::CreateSystem { name, .. } => name,
        }
    }

    /// The plan's line: `user: create alice (2001:2001)`.
    pub fn describe(&self) -> String {
        match self {
            AccountChange::Create {
                name,
                uid,
                gid,
                groups,
                shell,
                home,
                ..
            } => {
                let mut s = format!("user: create {name} ({uid}:{gid}");
                if !groups.is_empty() {
                    s.push_str(&format!(", groups {}", groups.join(",")));
                }
                s.push_str(&format!(", shell {shell}, {})", home.describe(name)));
                s
            }
            AccountChange::Update {
                name,
                shell,
                groups,
                unlock,
            } => {
                let mut what = Vec::new();
                if let Some(s) = shell {
                    what.push(format!("shell {s}"));
                }
                if let Some(g) = groups {
                    what.push(match g.is_empty() {
                        true => "no supplementary groups".to_string(),
                        false => format!("groups {}", g.join(",")),
                    });
                }
                if *unlock {
                    what.push("unlock (back in the inventory)".to_string());
                }
                format!("user: update {name} ({})", what.join(", "))
            }
            AccountChange::Lock { name } => {
                format!("user: lock {name} (not in the inventory; its files are kept)")
            }
            AccountChange::CreateSystem { name, id, .. } => {
                format!("user: create system account {name} ({id}:{id}, before its package)")
            }
        }
    }
}

/// A service's account: there with the cluster's IDs (whoever made it),
/// to be made, or a clash.
fn plan_system(a: &SystemAccount, acc: &Accounts) -> Result<Option<AccountChange>, String> {
    let (name, id, field) = (a.name, a.id, a.field);
    if let Some(pw) = acc.user(name) {
        if pw.uid == id && pw.gid == id {
            return Ok(None);
        }
        return Err(format!(
            "{name}: the account {name} has uid:gid {}:{} on this node, the cluster uses {id}:{id} (set slurm.{field}: {} if every node has that, or renumber {name} by hand)",
            pw.uid, pw.gid, pw.uid
        ));
    }
    if let Some(other) = acc.user_by_uid(id) {
        return Err(format!(
            "{name}: uid {id} is already {}'s on this node (choose another slurm.{field})",
            other.name
        ));
    }
    let make_group = match (acc.group(name), acc.group_by_gid(id)) {
        (Some(g), _) if g.gid == id => false,
        (Some(g), _) => {
            return Err(format!(
                "{name}: a group {name} (gid {}) is already on this node, the cluster uses {id} (renumber it by hand, or set slurm.{field}: {})",
                g.gid, g.gid
            ))
        }
        (None, Some(g)) => {
            return Err(format!(
                "{name}: gid {id} is already group {}'s on this node (choose another slurm.{field})",
                g.name
            ))
        }
        (None, None) => true,
    };
    Ok(Some(AccountChange::CreateSystem {
        name: name.to_string(),
        id,
        make_group,
        shell: a.shell.to_string(),
    }))
}

/// The expiry day `usermod -e 1` sets: a locked account.
pub const LOCKED_EXPIRY: u64 = 1;

/// What to change so the node has exactly the cluster's users, or the
/// first clash found (each names the account already there). `share`:
/// what the inventory says about `/home` on this node.
pub fn plan_accounts(
    users: &[User],
    system: &[SystemAccount],
    share: HomeShare,
    acc: &Accounts,
) -> Result<Vec<AccountChange>, String> {
    let mut out = Vec::new();
    if users.is_empty() && system.is_empty() && acc.managed.is_empty() {
        return Ok(out);
    }
    if !acc.read {
        return Err("cannot read /etc/passwd on this node".into());
    }
    for a in system {
        if let Some(c) = plan_system(a, acc)? {
            out.push(c);
        }
    }
    for u in users {
        let name = u.name.as_str();
        let created = acc.managed.contains(name);
        if !acc.shells.is_empty() && !acc.shells.contains(u.shell.as_str()) {
            return Err(format!(
                "user {name}: shell {} is not in this node's /etc/shells (install it, or name another shell)",
                u.shell
            ));
        }
        for g in &u.groups {
            if acc.group(g).is_none() {
                return Err(format!(
                    "user {name}: group {g} does not exist on this node (clusterctl does not create supplementary groups)"
                ));
            }
        }
        let groups: Vec<String> = u.groups.iter().map(|g| g.to_string()).collect();
        match acc.user(name) {
            Some(pw) if !created => {
                return Err(format!(
                    "user {name}: an account {name} (uid {}) that clusterctl did not create is already on this node",
                    pw.uid
                ))
            }
            Some(pw) => {
                if pw.uid != u.uid || pw.gid != u.gid {
                    return Err(format!(
                        "user {name}: the account clusterctl created has uid:gid {}:{}, the inventory says {}:{} (clusterctl does not renumber accounts; change the inventory back, or renumber it by hand)",
                        pw.uid, pw.gid, u.uid, u.gid
                    ));
                }
                let shell = (pw.shell != u.shell.as_str()).then(|| u.shell.to_string());
                let have = acc.member_of(name);
                let groups = (have != groups).then_some(groups);
                let unlock = acc.expires.get(name).copied().flatten().is_some();
                if shell.is_some() || groups.is_some() || unlock {
                    out.push(AccountChange::Update {
                        name: name.to_string(),
                        shell,
                        groups,
                        unlock,
                    });
                }
            }
            None => {
                if let Some(other) = acc.user_by_uid(u.uid) {
                    return Err(format!(
                        "user {name}: uid {} is already {}'s on this node",
                        u.uid, other.name
                    ));
                }
                // An account clusterctl recorded whose group exists with the
                // right gid but whose user does not: an earlier apply failed
                // between groupadd and useradd. Finish it.
                let half_made = created && acc.group(name).is_some_and(|g| g.gid == u.gid);
                if let Some(g) = acc.group(name).filter(|_| !half_made) {
                    return Err(format!(
                        "user {name}: a group {name} (gid {}) is already on this node",
                        g.gid
                    ));
                }
                if let Some(g) = acc.group_by_gid(u.gid).filter(|_| !half_made) {
                    return Err(format!(
                        "user {name}: gid {} is already group {}'s on this node",
                        u.gid, g.name
                    ));
                }
                out.push(AccountChange::Create {
                    name: name.to_string(),
                    uid: u.uid,
                    gid: u.gid,
                    make_group: !half_made,
                    groups,
                    shell: u.shell.to_string(),
                    home: Home::of(share, acc),
                });
            }
        }
    }
    for name in &acc.managed {
        let wanted = users.iter().any(|u| u.name.as_str() == name);
        let locked = acc.expires.get(name).copied().flatten() == Some(LOCKED_EXPIRY);
        if !wanted && acc.user(name).is_some() && !locked {
            out.push(AccountChange::Lock { name: name.clone() });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{GroupEntry, PasswdEntry};
    use crate::values::{AbsPath, AccountName};

    fn user(name: &str, uid: u32, gid: u32) -> User {
        User {
            name: AccountName::parse(name).unwrap(),
            uid,
            gid,
            groups: Vec::new(),
            shell: AbsPath::parse("/bin/bash").unwrap(),
            ssh_authorized_keys: Vec::new(),
        }
    }

    fn plan_accounts_t(users: &[User], acc: &Accounts) -> Result<Vec<AccountChange>, String> {
        plan_accounts(users, &[], HomeShare::None, acc)
    }

    fn node() -> Accounts {
        let pw = |name: &str, uid, gid| PasswdEntry {
            name: name.into(),
            uid,
            gid,
            shell: "/bin/bash".into(),
        };
        let gr = |name: &str, gid| GroupEntry {
            name: name.into(),
            gid,
            members: Vec::new(),
        };
        Accounts {
            read: true,
            users: vec![
                pw("root", 0, 0),
                pw("pi", 1000, 1000),
                pw("alice", 2001, 2001),
            ],
            groups: vec![
                gr("root", 0),
                gr("pi", 1000),
                gr("alice", 2001),
                gr("ops", 3000),
            ],
            shells: ["/bin/sh", "/bin/bash"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            managed: ["alice".to_string()].into(),
            expires: Default::default(),
            home_fs: None,
        }
    }

    /// An earlier apply recorded bob and made his group, then failed at
    /// `useradd`: the next plan finishes the account (no second groupadd)
    /// instead of refusing bob's own group as a clash.
    #[test]
    fn a_half_made_account_is_finished_not_refused() {
        let mut n = node();
        n.managed.insert("bob".to_string());
        n.groups.push(GroupEntry {
            name: "bob".into(),
            gid: 2002,
            members: Vec::new(),
        });
        let plan =
            plan_accounts_t(&[user("alice", 2001, 2001), user("bob", 2002, 2002)], &n).unwrap();
        assert_eq!(
            plan,
            vec![AccountChange::Create {
                name: "bob".into(),
                uid: 2002,
                gid: 2002,
                make_group: false,
                groups: Vec::new(),
                shell: "/bin/bash".into(),
                home: Home::Local,
            }]
        );
        // Not ours: the same group is a clash.
        n.managed.remove("bob");
        assert_eq!(
            plan_accounts_t(&[user("bob", 2002, 2002)], &n).unwrap_err(),
            "user bob: a group bob (gid 2002) is already on this node"
        );
    }

    #[test]
    fn each_clash_is_refused_naming_the_account_already_there() {
        let n = node();
        let cases = [
            (user("pi", 2005, 2005), "user pi: an account pi (uid 1000) that clusterctl did not create is already on this node"),
            (user("dave", 1000, 2006), "user dave: uid 1000 is already pi's on this node"),
            (user("ops", 2007, 2007), "user ops: a group ops (gid 3000) is already on this node"),
            (user("erin", 2008, 3000), "user erin: gid 3000 is already group ops's on this node"),
            (user("alice", 2002, 2002), "user alice: the account clusterctl created has uid:gid 2001:2001, the inventory says 2002:2002 (clusterctl does not renumber accounts; change the inventory back, or renumber it by hand)"),
        ];
        for (u, want) in cases {
            assert_eq!(plan_accounts_t(&[u], &n).unwrap_err(), want);
        }
        let mut u = user("frank", 2009, 2009);
        u.shell = AbsPath::parse("/bin/zsh").unwrap();
        assert_eq!(
            plan_accounts_t(&[u], &n).unwrap_err(),
            "user frank: shell /bin/zsh is not in this node's /etc/shells (install it, or name another shell)"
        );
        let mut u = user("gina", 2010, 2010);
        u.groups = vec![AccountName::parse("video").unwrap()];
        assert!(plan_accounts_t(&[u], &n)
            .unwrap_err()
            .contains("group video does not exist"));
    }

    /// The plan says where each new home goes: local, the head's exported
    /// /home, the share mounted on a worker, or local while the share the
    /// inventory names is not mounted.
    #[test]
    fn the_plan_says_where_each_home_goes() {
        let mut n = node();
        let home =
            |share, n: &Accounts| match &plan_accounts(&[user("dave", 2004, 2004)], &[], share, n)
                .unwrap()[..]
            {
                [AccountChange::Create { home, .. }, ..] => *home,
                other => panic!("{other:?}"),
            };
        assert_eq!(home(HomeShare::None, &n), Home::Local);
        assert_eq!(home(HomeShare::Exported, &n), Home::Exported);
        assert_eq!(home(HomeShare::Mounted, &n), Home::LocalNotMounted);
        n.home_fs = Some("nfs4".into());
        assert_eq!(home(HomeShare::Mounted, &n), Home::OnShare);
        assert!(!Home::OnShare.make() && Home::LocalNotMounted.make());
        n.home_fs = Some("tmpfs".into());
        assert_eq!(home(HomeShare::Mounted, &n), Home::LocalNotMounted);
        assert_eq!(
            Home::LocalNotMounted.describe("dave"),
            "home /home/dave local: /home is not an NFS mount here yet"
        );
    }

    #[test]
    fn homes_are_shared_only_when_the_head_exports_home_at_home() {
        let lab = include_str!("../../inventories/lab.yaml");
        let with = |exports: &str| {
            let text = lab.replace(
                "nfs:\n  enabled: false",
                &format!("nfs:\n  exports:\n{exports}"),
            );
            Cluster::from_str(&text, std::path::Path::new("c.yaml")).unwrap()
        };
        let c = with("    - path: /home\n");
        assert_eq!(HomeShare::of(&c, Role::Head), HomeShare::Exported);
        assert_eq!(HomeShare::of(&c, Role::Worker), HomeShare::Mounted);
        let c = with("    - path: /srv/home\n      mount: /home\n");
        assert_eq!(HomeShare::of(&c, Role::Worker), HomeShare::None);
        let c = with("    - path: /srv/data\n");
        assert_eq!(HomeShare::of(&c, Role::Head), HomeShare::None);
    }

    /// munge and slurm get the cluster's IDs before their packages make
    /// them; an account already there with those IDs is taken as it is
    /// (the package or an earlier apply made it), other IDs are a clash.
    #[test]
    fn system_accounts_are_made_once_with_the_clusters_ids() {
        let munge = SystemAccount {
            name: "munge",
            id: 64029,
            field: "munge_uid",
            shell: "/usr/sbin/nologin",
        };
        let mut n = node();
        let plan =
            |n: &Accounts| plan_accounts(&[], std::slice::from_ref(&munge), HomeShare::None, n);
        assert_eq!(
            plan(&n).unwrap()[0],
            AccountChange::CreateSystem {
                name: "munge".into(),
                id: 64029,
                make_group: true,
                shell: "/usr/sbin/nologin".into()
            }
        );
        assert_eq!(
            plan(&n).unwrap()[0].describe(),
            "user: create system account munge (64029:64029, before its package)"
        );
        n.users.push(PasswdEntry {
            name: "munge".into(),
            uid: 64029,
            gid: 64029,
            shell: "/usr/sbin/nologin".into(),
        });
        assert!(plan(&n).unwrap().iter().all(|c| c.name() != "munge"));
        n.users.last_mut().unwrap().uid = 105;
        assert_eq!(
            plan(&n).unwrap_err(),
            "munge: the account munge has uid:gid 105:64029 on this node, the cluster uses 64029:64029 (set slurm.munge_uid: 105 if every node has that, or renumber munge by hand)"
        );
        n.users.pop();
        n.users.push(PasswdEntry {
            name: "svc".into(),
            uid: 64029,
            gid: 64029,
            shell: "/bin/sh".into(),
        });
        assert_eq!(
            plan(&n).unwrap_err(),
            "munge: uid 64029 is already svc's on this node (choose another slurm.munge_uid)"
        );
        n.users.pop();
        n.groups.push(GroupEntry {
            name: "munge".into(),
            gid: 64029,
            members: Vec::new(),
        });
        assert!(matches!(
            plan(&n).unwrap()[0],
            AccountChange::CreateSystem {
                make_group: false,
                ..
            }
        ));
    }

    #[test]
    fn no_users_and_nothing_recorded_asks_nothing_of_the_node() {
        assert_eq!(plan_accounts_t(&[], &Accounts::default()).unwrap(), []);
        let e = plan_accounts_t(&[user("a", 2001, 2001)], &Accounts::default()).unwrap_err();
        assert_eq!(e, "cannot read /etc/passwd on this node");
    }

    #[test]
    fn a_managed_user_out_of_the_inventory_is_locked_once() {
        let mut n = node();
        let plan = plan_accounts_t(&[], &n).unwrap();
        assert_eq!(
            plan,
            [AccountChange::Lock {
                name: "alice".into()
            }]
        );
        n.expires.insert("alice".into(), Some(LOCKED_EXPIRY));
        assert_eq!(plan_accounts_t(&[], &n).unwrap(), []);
        // The system's and other people's accounts are never in a plan.
        assert!(plan_accounts_t(&[user("alice", 2001, 2001)], &n)
            .unwrap()
            .iter()
            .all(|c| c.name() == "alice"));
    }
}
