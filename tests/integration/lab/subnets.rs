//! Every lab test's lab, handed out from one table: its prefix, its WAN and
//! its LAN. A test names its row (`Lab::new(TestLab::UpDown)`); nothing else
//! picks a subnet or a prefix. The table's own tests (plain `cargo test`, no
//! root) prove that no two rows share a prefix and that no two subnets
//! overlap; at run time a row is claimed by the first test that uses it, and
//! a second test naming the same row fails at once with both names.
//!
//! Row `n` means WAN `198.18.n.0/24` and LAN `10.78.n.0/24` unless the row
//! names its LAN. Some tests spell their addresses or prefix out in
//! assertions (the `pinned` rows): change those together with the test.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One lab test's lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// `CLUSTERCTL_LAB_PREFIX`: names the lab's state, links and machines.
    pub(crate) prefix: &'static str,
    /// The third octet of the WAN (and of the LAN, unless `lan` is set).
    pub(crate) n: u8,
    lan: Option<&'static str>,
}

impl Slot {
    pub(crate) fn wan(&self) -> String {
        format!("198.18.{}.0/24", self.n)
    }

    pub(crate) fn lan(&self) -> String {
        self.lan
            .map_or_else(|| format!("10.78.{}.0/24", self.n), str::to_string)
    }
}

/// Defines `TestLab` (one variant a lab test), `TestLab::ALL` and
/// `TestLab::slot` from one list, so a variant cannot lack a row.
macro_rules! test_labs {
    ($($id:ident => $prefix:literal, $n:literal $(, lan $lan:literal)?;)*) => {
        /// The lab of one lab test (see the module doc).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub(crate) enum TestLab {
            $($id,)*
        }

        impl TestLab {
            pub(crate) const ALL: &'static [TestLab] = &[$(TestLab::$id,)*];

            pub(crate) fn slot(self) -> Slot {
                match self {
                    $(TestLab::$id => Slot {
                        prefix: $prefix,
                        n: $n,
                        lan: test_labs!(@lan $($lan)?),
                    },)*
                }
            }
        }
    };
    (@lan) => { None };
    (@lan $lan:literal) => { Some($lan) };
}

test_labs! {
    // lab::lifecycle
    // pinned: its prefix in its body (tupdown-ctl).
    UpDown => "tupdown", 11;
    Isolation => "tiso", 12;
    Converge => "tconv", 15;
    Cycles => "tcycle", 16;
    RoutedA => "trouta", 17;
    // pinned: its prefix in its body (troutb).
    RoutedB => "troutb", 18;
    NoRoot => "tnoroot", 19;
    // pinned: 10.79.32.130, 10.79.35.x and its prefix in its assertions.
    BigLan => "tbig", 32, lan "10.79.32.0/22";
    // lab::access
    Ssh => "tssh", 13;
    Dhcp => "tdhcp", 14;
    // pinned: 198.18.20.x in its assertions.
    Inventory => "tinv", 20;
    // lab::diff (shared 20 with tinv until issue #20)
    Diff => "tdiff", 36;
    // lab::apply
    ApplyOpenssh => "tapply", 21;
    ApplyRussh => "trapply", 24;
    AddNode => "taddn", 23;
    // lab::discover
    Discover => "tdisc", 37;
    Join => "tjoin", 38;
    JoinStacks => "tjoins", 39;
    // lab::faults
    UnreachableOpenssh => "tunreach", 22;
    UnreachableRussh => "trunrch", 25;
    RusshHostKeys => "trkeys", 26;
    OwedHandler => "towed", 27;
    SwappedOpenssh => "tswap", 28;
    SwappedRussh => "trswap", 29;
    CutSshOpenssh => "tcut", 33;
    CutSshRussh => "trcut", 34;
    CutSshSudoOpenssh => "tscut", 43;
    CutSshSudoRussh => "tsrcut", 44;
    // lab::systemd
    // pinned: its prefix in /var/lib/clusterctl-lab/tsysd in its body.
    SystemdBoot => "tsysd", 30;
    // pinned: 198.18.31.1 in its body.
    SystemdApply => "tsyapp", 31;
    // pinned: 198.18.35.x and 10.78.35.x in its body.
    FreshSystemd => "tfresh", 35;
    // lab_stacks
    StacksNftables => "tstk", 40;
    StacksNetworkdHead => "tstk2", 41;
    StacksTrixie => "tstk3", 42;
    // cluster_job; pinned (ClusterVerify): 198.18.50.1 and 10.78.50.99.
    ClusterVerify => "c13ver", 50;
    ClusterRemoveNode => "c13rm", 51;
    ClusterNfs => "c13nfs", 52;
    // bench
    Bench => "tbench", 60;
    // terminal; pinned (TerminalWizard): 198.18.71.2 and 10.78.71.0/24.
    TerminalApply => "u15", 70;
    TerminalWizard => "u15wiz", 71;
    // lab_users
    Users => "tusers", 85;
    // lab_slurm
    Slurm => "tslurm", 86;
}

/// Which test took which row, by the test's thread name (libtest names each
/// test's thread after the test).
static CLAIMED: Mutex<BTreeMap<TestLab, String>> = Mutex::new(BTreeMap::new());

/// Take `id` for the running test; panic when another test took it.
pub(crate) fn claim(id: TestLab) -> Slot {
    let me = std::thread::current()
        .name()
        .unwrap_or("an unnamed thread")
        .to_string();
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = take(&mut claimed, id, &me) {
        panic!("{e}");
    }
    id.slot()
}

/// Record that test `me` uses `id`; refused when another test does.
fn take(claimed: &mut BTreeMap<TestLab, String>, id: TestLab, me: &str) -> Result<(), String> {
    match claimed.get(&id) {
        Some(other) if other != me => Err(format!(
            "lab {id:?} is already used by test {other}: give {me} its own row in lab/subnets.rs"
        )),
        _ => {
            claimed.insert(id, me.to_string());
            Ok(())
        }
    }
}

/// `a.b.c.d/len` as (network, mask).
fn parse(cidr: &str) -> (u32, u32) {
    let (addr, len) = cidr.split_once('/').expect("a CIDR");
    let ip: std::net::Ipv4Addr = addr.parse().expect("an IPv4 address");
    let len: u32 = len.parse().expect("a prefix length");
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    let net = u32::from(ip);
    assert_eq!(net & mask, net, "{cidr} has host bits set");
    (net, mask)
}

fn overlap(a: &str, b: &str) -> bool {
    let ((na, ma), (nb, mb)) = (parse(a), parse(b));
    let m = ma & mb;
    na & m == nb & m
}

#[test]
fn every_test_lab_has_its_own_prefix() {
    let mut seen = BTreeMap::new();
    for id in TestLab::ALL {
        let p = id.slot().prefix;
        clusterctl::lab::topology::validate_prefix(p).unwrap_or_else(|e| panic!("{id:?}: {e:?}"));
        if let Some(other) = seen.insert(p, id) {
            panic!("{id:?} and {other:?} share the prefix {p}");
        }
    }
}

#[test]
fn no_two_test_subnets_overlap_nor_the_lab_defaults() {
    // Every WAN and LAN of every row, and `lab up`'s defaults (a lab run by
    // hand on the same machine).
    let mut nets = vec![
        ("the default WAN".to_string(), "198.51.100.0/24".to_string()),
        ("the default LAN".to_string(), "10.77.0.0/24".to_string()),
    ];
    for id in TestLab::ALL {
        let s = id.slot();
        nets.push((format!("{id:?} WAN"), s.wan()));
        nets.push((format!("{id:?} LAN"), s.lan()));
    }
    for (i, (wa, a)) in nets.iter().enumerate() {
        for (wb, b) in &nets[i + 1..] {
            assert!(!overlap(a, b), "{wa} {a} overlaps {wb} {b}");
        }
    }
}

#[test]
fn overlap_sees_a_22_over_a_24() {
    assert!(overlap("10.79.32.0/22", "10.79.35.0/24"));
    assert!(overlap("10.79.35.0/24", "10.79.32.0/22"));
    assert!(!overlap("10.79.32.0/22", "10.79.36.0/24"));
    assert!(!overlap("10.78.20.0/24", "10.78.36.0/24"));
    assert!(overlap("10.78.20.0/24", "10.78.20.0/24"));
}

#[test]
fn a_row_taken_by_one_test_is_refused_to_another() {
    let mut claimed = BTreeMap::new();
    assert_eq!(take(&mut claimed, TestLab::Bench, "bench::smoke"), Ok(()));
    // The same test again (two labs in one test use two rows; one lab
    // re-made in one test is the same test): fine.
    assert_eq!(take(&mut claimed, TestLab::Bench, "bench::smoke"), Ok(()));
    assert_eq!(
        take(&mut claimed, TestLab::Bench, "terminal::other").unwrap_err(),
        "lab Bench is already used by test bench::smoke: give terminal::other its own row in lab/subnets.rs"
    );
    assert_eq!(take(&mut claimed, TestLab::Diff, "terminal::other"), Ok(()));
}
