//! The command-line surface (clap derive only). This is the contract later
//! commands and tests rely on; behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// clusterctl: turn installed Linux machines into a Beowulf-style cluster over SSH.
///
/// Not the Kubernetes Cluster API tool of the same name.
#[derive(Debug, Parser)]
#[command(name = "clusterctl", version, propagate_version = true)]
#[command(
    after_help = "Example:\n  clusterctl init --head root@192.168.1.50 --wan-iface eth0 --lan-iface eth1 --lan 10.0.0.0/24 --workers 'node[01-04]'\n  clusterctl check\n  clusterctl render --node node01"
)]
pub struct Cli {
    /// More output (-v: round trips and commands; -vv: everything)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Colour on a terminal: auto (unless NO_COLOR is set), always or never
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct InventoryArg {
    /// The inventory file
    #[arg(
        short = 'i',
        long = "inventory",
        env = "CLUSTERCTL_INVENTORY",
        default_value = "cluster.yaml",
        value_name = "FILE"
    )]
    pub path: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented inventory (a wizard on a terminal, flags without one)
    #[command(
        after_help = "Example:\n  clusterctl init --head pi@192.168.1.50 --wan-iface eth0 --lan-iface eth1 \\\n    --lan 10.0.0.0/24 --workers 'node[01-04]' --yes"
    )]
    Init(InitArgs),

    /// Validate the inventory offline and report every problem at once
    #[command(after_help = "Example:\n  clusterctl check -i cluster.yaml")]
    Check(CheckArgs),

    /// Render every file for a node (offline): print it, or write trees under --out
    #[command(
        after_help = "Example:\n  clusterctl render --node node01\n  clusterctl render --out rendered/"
    )]
    Render(RenderArgs),

    /// Configure every node over SSH (--dry-run: show the plan, touch nothing)
    #[command(after_help = "Example:\n  clusterctl apply --dry-run\n  clusterctl apply")]
    Apply(ApplyArgs),

    /// Show what apply would change on every node; exit 2 when changes are pending
    #[command(after_help = "Example:\n  clusterctl diff || echo 'drift detected'")]
    Diff(DiffArgs),

    /// Prove the cluster works, from every node: addresses, routes, DNS, NAT,
    /// NFS, passwordless SSH, an MPI job; exit 1 on any failure
    #[command(
        after_help = "Example:\n  clusterctl verify\n  clusterctl verify --wan-target 1.1.1.1 --output json"
    )]
    Verify(VerifyArgs),

    /// Run a command on a set of nodes (host lists and @groups), output folded
    /// by node; exit 1 when it failed anywhere
    #[command(
        after_help = "Example:\n  clusterctl exec @workers -- uptime\n  clusterctl exec 'head,node[01-02]' --shell -- 'df -h /home | tail -1'"
    )]
    Exec(ExecArgs),

    /// Print the resolved nodes and groups for other tools: an Ansible
    /// inventory, ClusterShell groups, or JSON
    #[command(
        after_help = "Example:\n  clusterctl inventory --format ansible > hosts.yml\n  ansible -i hosts.yml workers -m ping"
    )]
    Inventory(InventoryExportArgs),

    /// List the machines that took an address from the head's DHCP pool and
    /// that the inventory does not list, in the order they asked
    #[command(after_help = "Example:\n  clusterctl discover\n  clusterctl discover --output json")]
    Discover(DiscoverArgs),

    /// Add a worker to the inventory (keeping its comments), then apply
    #[command(
        after_help = "Examples:\n  clusterctl add-node node05 --mac dc:a6:32:00:00:05 --no-apply\n  clusterctl add-node --from-leases 'node[05-08]' --watch --accept-new-host-keys"
    )]
    AddNode(AddNodeArgs),

    /// Print a commented example inventory with every section and field
    #[command(after_help = "Example:\n  clusterctl example > cluster.yaml")]
    Example,
    /// Remove a worker from the inventory, then apply: its lease, names and
    /// keys disappear from every other node
    #[command(after_help = "Example:\n  clusterctl remove-node node05")]
    RemoveNode(RemoveNodeArgs),

    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  clusterctl completions bash > /etc/bash_completion.d/clusterctl"
    )]
    Completions(CompletionsArgs),

    /// Print the man page (roff), or write one page per subcommand into --dir
    #[command(
        after_help = "Example:\n  clusterctl man | man -l -\n  clusterctl man --dir /usr/local/share/man/man1"
    )]
    Man(ManArgs),

    /// Internal: the inventory's node names, for shell completion
    #[command(hide = true)]
    CompleteNodes(CompleteNodesArgs),

    /// A virtual cluster on this Linux machine (root): try clusterctl without hardware
    #[command(subcommand)]
    Lab(LabCommand),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the inventory [default: cluster.yaml]
    #[arg(short = 'i', long = "inventory", value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Deprecated spelling of -i/--inventory (every other command's
    /// `--output` is a format)
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        hide = true,
        conflicts_with = "inventory"
    )]
    pub output: Option<PathBuf>,
    /// How to reach the head over SSH
    #[arg(long, value_name = "[USER@]HOST[:PORT]")]
    pub head: Option<String>,
    /// The head's interface on the outside network
    #[arg(long, value_name = "IF")]
    pub wan_iface: Option<String>,
    /// The head's interface on the cluster LAN
    #[arg(long, value_name = "IF")]
    pub lan_iface: Option<String>,
    /// The cluster LAN
    #[arg(long, value_name = "CIDR")]
    pub lan: Option<String>,
    /// The head's LAN address [default: the first address of --lan]
    #[arg(long, value_name = "IP")]
    pub head_ip: Option<String>,
    /// Dynamic DHCP pool [default: the upper half of --lan]
    #[arg(long, value_name = "A-B")]
    pub dhcp_range: Option<String>,
    /// DNS domain of the cluster
    #[arg(long, value_name = "D")]
    pub domain: Option<String>,
    /// Cluster name
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// Workers, as a host list
    #[arg(long, value_name = "HOSTLIST")]
    pub workers: Option<String>,
    /// Never prompt: take defaults for everything not given
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// An ssh_config file for looking at the head when the wizard asks
    /// about its interfaces (default: your own ssh config; not written to
    /// the inventory)
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[command(flatten)]
    pub templates: TemplatesArg,
    /// Output format: text, or JSON on stdout (every problem with file,
    /// line, column, node and help)
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// When to colour output (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Only these nodes, a host list like head,node[01-04] (default: every
    /// node; `--nodes` is the same flag)
    #[arg(long, visible_alias = "nodes", value_name = "HOSTLIST")]
    pub node: Option<String>,
    /// Write one tree per node under DIR instead of printing; files it wrote
    /// there before for nodes that are gone are removed (listed in
    /// DIR/.clusterctl-render, nothing else is touched)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub templates: TemplatesArg,
}

/// Where template overrides come from; every command that renders takes it.
#[derive(Debug, Args, Clone, Default)]
pub struct TemplatesArg {
    /// Template overrides [default: templates/ next to the inventory, if present]
    #[arg(long = "templates", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Show the plan and touch nothing (same as `clusterctl diff`)
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for workers that cannot be reached yet (e.g. still
    /// waiting for their DHCP lease from the head), in seconds
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub wait: u64,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    /// Install nothing (air-gapped clusters; also the inventory's
    /// `packages: skip`): a package a node lacks is an error naming it, and
    /// that node is left unchanged
    #[arg(long)]
    pub skip_packages: bool,
    /// Do not ask for confirmation (apply asks only on a terminal, after
    /// showing the plan; without a terminal it never asks)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// No progress lines on stderr (the recap and errors still come)
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Commit-confirm for changes that can cut the controller's path to a node.
#[derive(Debug, Args, Clone, Copy)]
pub struct ConfirmArgs {
    /// Before a firewall or interface change, the node arms a revert that
    /// restores the old files and re-runs their handlers after this many
    /// seconds unless a fresh SSH connection proves the node still reachable
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(5..=3600))]
    pub confirm_timeout: u32,
    /// Activate firewall and interface changes without arming a revert
    /// (for people who know; a mistake then needs a console to undo)
    #[arg(long)]
    pub no_confirm: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// What proves the WAN is reachable (through the head's NAT from
    /// workers): ping HOST, or open a TCP connection to HOST:PORT
    /// [default: the first lan.upstream_dns]
    #[arg(long, value_name = "HOST[:PORT]")]
    pub wan_target: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The nodes: host lists and groups (@all, @head, @workers, @PARTITION),
    /// comma-separated
    #[arg(value_name = "NODES")]
    pub target: String,
    /// Run COMMAND as one `sh -c` string (pipes, globs, variables); without
    /// it, COMMAND's words reach the node as they are, never re-split
    #[arg(long)]
    pub shell: bool,
    /// The command and its arguments (after `--`)
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct InventoryExportArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// What to print
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    pub format: ExportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// An Ansible YAML inventory: every node with how to reach it, groups
    Ansible,
    /// ClusterShell groups (YAML source `clusterctl`, for groups.d/ elsewhere)
    Clustershell,
    /// Nodes, addresses, roles and groups as JSON
    Json,
}

/// Seconds one round trip may take (`--timeout`).
pub const DEFAULT_TIMEOUT: u32 = 300;

/// What every command that talks to nodes takes.
#[derive(Debug, Args, Clone)]
pub struct RemoteArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[command(flatten)]
    pub templates: TemplatesArg,
    /// Only these nodes (host lists and @groups: @head, @workers, @PARTITION)
    #[arg(long, value_name = "HOSTLIST")]
    pub nodes: Option<String>,
    /// Nodes worked on at once; keep it below sshd's MaxStartups (10) on the
    /// head, which every connection to a worker passes through
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub forks: u32,
    /// Trust and record the host key of a node seen for the first time
    /// (default: strict, unknown keys are refused)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Output format: human-readable text, or JSON on stdout for scripts
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// SSH client [default: the inventory's ssh.transport, else openssh]
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,
    /// How long one round trip to a node may take before that node fails
    /// (a hung handler, e.g. a hard NFS mount, fails its node, not the run)
    #[arg(long, default_value_t = DEFAULT_TIMEOUT, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(5..=86400))]
    pub timeout: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportArg {
    /// The system `ssh` (~/.ssh/config, the agent, ProxyJump)
    Openssh,
    /// The built-in client (no ssh binary needed)
    Russh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct AddNodeArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[command(flatten)]
    pub templates: TemplatesArg,
    /// The new worker's name
    #[arg(required_unless_present = "from_leases")]
    pub name: Option<String>,
    /// Name the machines that hold a lease from the head's pool and that the
    /// inventory does not list, in the order they took their leases (e.g.
    /// 'node[05-08]': power them on one at a time); see `clusterctl discover`
    #[arg(long, value_name = "HOSTLIST", conflicts_with_all = ["name", "mac", "ip", "ssh"])]
    pub from_leases: Option<String>,
    /// With --from-leases: wait until that many new machines hold a lease
    /// (Ctrl-C: nothing is written)
    #[arg(long, requires = "from_leases")]
    pub watch: bool,
    /// Its MAC address (needed for a reserved DHCP lease)
    #[arg(long)]
    pub mac: Option<String>,
    /// Its LAN address [default: the next free one]
    #[arg(long)]
    pub ip: Option<String>,
    /// MPI slots [default: mpi.slots]
    #[arg(long)]
    pub slots: Option<u32>,
    /// Its own SSH target instead of a jump through the head
    #[arg(long, value_name = "[USER@]HOST[:PORT]")]
    pub ssh: Option<String>,
    /// Its LAN interface, when not the other workers' [default: eth0]
    #[arg(long, value_name = "IF")]
    pub iface: Option<String>,
    /// Only edit the inventory
    #[arg(long)]
    pub no_apply: bool,
    /// Seconds to wait for the new worker to get its lease and answer
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub wait: u64,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    #[command(flatten)]
    pub apply: NodeApplyArgs,
}

/// How add-node and remove-node apply the edited inventory.
#[derive(Debug, Args, Clone, Copy)]
pub struct NodeApplyArgs {
    /// Nodes worked on at once
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub forks: u32,
    /// Trust and record the host key of a node seen for the first time
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// SSH client [default: the inventory's ssh.transport, else openssh]
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,
    /// Apply without asking (on a terminal, apply shows the plan and asks)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RemoveNodeArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[command(flatten)]
    pub templates: TemplatesArg,
    /// The worker to remove
    pub name: String,
    /// Only edit the inventory
    #[arg(long)]
    pub no_apply: bool,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    #[command(flatten)]
    pub apply: NodeApplyArgs,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write clusterctl.1 and clusterctl-SUBCOMMAND.1 here instead of printing
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompleteNodesArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell (bash and fish also complete
    /// node names from the inventory after --nodes/--node)
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Bring the lab up (idempotent; converges to --workers)
    #[command(after_help = "Example:\n  sudo clusterctl lab up --workers 3")]
    Up(LabUpArgs),
    /// Remove everything the lab made
    Down(LabCommonArgs),
    /// Show the lab's hosts and how to reach them
    Status(LabCommonArgs),
    /// Run a command on a lab host without SSH (a serial console)
    #[command(after_help = "Example:\n  sudo clusterctl lab exec head ip addr")]
    Exec(LabExecArgs),
    /// SSH to a lab host (workers through the head)
    #[command(after_help = "Example:\n  sudo clusterctl lab ssh w1")]
    Ssh(LabExecArgs),
    /// Reboot a host of the systemd kind in place (systemd reboots; the host keeps its disk)
    #[command(
        after_help = "Examples:\n  sudo clusterctl lab reboot w2\n  sudo clusterctl lab reboot all"
    )]
    Reboot(LabRebootArgs),
    /// Internal: PID 1 of a lab host (builds its root, boots it, reaps orphans)
    #[command(hide = true)]
    InitHost(LabInitHostArgs),
    /// Internal: keeps one systemd-kind lab host running (relaunches it when it reboots)
    #[command(hide = true)]
    SuperviseHost(LabInitHostArgs),
}

/// What a lab host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabKind {
    /// A namespace over this machine's own root (fast; for scale and benchmarks)
    Light,
    /// A container booting real systemd on its own Debian root (systemd-nspawn)
    Systemd,
}

#[derive(Debug, Args)]
pub struct LabCommonArgs {
    /// Name prefix of this lab (two labs with different prefixes never collide)
    #[arg(long, default_value = "cl", env = "CLUSTERCTL_LAB_PREFIX")]
    pub prefix: String,
}

#[derive(Debug, Args)]
pub struct LabUpArgs {
    #[command(flatten)]
    pub common: LabCommonArgs,
    /// Number of workers
    #[arg(long, default_value_t = 3)]
    pub workers: u32,
    /// Where to write the lab's inventory
    #[arg(long, default_value = "lab/cluster.yaml", value_name = "FILE")]
    pub inventory_out: PathBuf,
    /// WAN subnet (head eth0, the wan host, and this machine's end of the lab)
    #[arg(long, default_value = "198.51.100.0/24", value_name = "CIDR")]
    pub wan: String,
    /// Cluster LAN subnet (written to the inventory; the lab assigns no address on it);
    /// a /24 holds 89 workers, a /22 857, a /21 1881
    #[arg(long, default_value = "10.77.0.0/24", value_name = "CIDR")]
    pub lan: String,
    /// Kind of head and worker hosts (the wan host is always light)
    #[arg(long, value_enum, default_value_t = LabKind::Light)]
    pub kind: LabKind,
    /// Network stack of the workers (systemd kind; default ifupdown): ifupdown, networkd
    /// or networkmanager (the inventory's names; nm is accepted for networkmanager);
    /// a comma list cycles over the workers (e.g. ifupdown,networkd,networkmanager)
    #[arg(long, value_name = "STACK[,STACK...]")]
    pub network: Option<String>,
    /// Network stack of the head (systemd kind; default ifupdown): ifupdown, networkd or
    /// networkmanager (nm is accepted for networkmanager)
    #[arg(long, value_name = "STACK")]
    pub head_network: Option<String>,
    /// Debian release of the systemd kind's hosts and their mirror, built
    /// from the archive this machine's apt uses: bookworm (the default for
    /// now) or trixie
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// How the controller logs in to the systemd kind's head and workers:
    /// root (with a key; the default), or sudo (as today's installs: no
    /// root login for the controller, a user `admin` with its key and
    /// passwordless sudo; the inventory then says `become: sudo`)
    #[arg(long, value_name = "HOW")]
    pub login: Option<String>,
}

#[derive(Debug, Args)]
pub struct LabRebootArgs {
    #[command(flatten)]
    pub common: LabCommonArgs,
    /// head, w1, w2, ... or `all` (every head and worker)
    pub host: String,
}

#[derive(Debug, Args)]
pub struct LabExecArgs {
    #[command(flatten)]
    pub common: LabCommonArgs,
    /// head, wan, w1, w2, ...
    pub host: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LabInitHostArgs {
    #[command(flatten)]
    pub common: LabCommonArgs,
    /// The host this process is PID 1 of
    pub host: String,
}
