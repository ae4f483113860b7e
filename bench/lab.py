"""The bench's light lab: up/down, console commands on every node (through
`clusterctl lab exec`, never over the SSH being measured), snapshots of the
managed files (sha256, mode, owner, group) and the reset to fresh nodes."""
import concurrent.futures
import os
import shlex
import subprocess

SNAPSHOT = r"""
for p in "$@"; do
  if [ -e "$p" ]; then
    printf '%s %s\n' "$(sha256sum <"$p" | cut -c1-64)" "$(stat -c '%a %U %G' "$p")"
  else
    echo absent
  fi
done
"""


class Lab:
    def __init__(self, clusterctl, prefix, workdir, workers, wan, lan, log):
        self.bin = clusterctl
        self.prefix = prefix
        self.dir = os.path.join(workdir, "lab")
        self.inventory = os.path.join(self.dir, "cluster.yaml")
        self.workers = [f"w{i}" for i in range(1, workers + 1)]
        self.nodes = ["head"] + self.workers
        self.wan, self.lan, self.log = wan, lan, log
        self.env = dict(os.environ, CLUSTERCTL_LAB_PREFIX=prefix)

    def run(self, args, **kw):
        return subprocess.run(
            [self.bin, *args], env=self.env, check=True, text=True, **kw
        )

    def up(self):
        with open(self.log, "a") as log:
            self.run(
                ["lab", "up", "--kind", "light", "--workers", str(len(self.workers)),
                 "--wan", self.wan, "--lan", self.lan, "--inventory-out", self.inventory],
                stdout=log, stderr=log,
            )

    def down(self):
        with open(self.log, "a") as log:
            subprocess.run([self.bin, "lab", "down"], env=self.env, stdout=log, stderr=log)

    def sh(self, node, script, *args):
        """Run a sh script on NODE through the lab's console; its stdout."""
        out = self.run(
            ["lab", "exec", node, "--", "sh", "-c", script, "sh", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        return out.stdout

    def each(self, fn, nodes=None):
        """fn(node) on every node, 8 at a time; {node: result}."""
        nodes = nodes or self.nodes
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            return dict(zip(nodes, pool.map(fn, nodes)))

    def snapshot(self, paths_of):
        """{node: {path: "sha256 mode owner group" | "absent"}}."""
        def one(node):
            paths = paths_of(node)
            lines = self.sh(node, SNAPSHOT, *paths).splitlines()
            return dict(zip(paths, lines))
        return self.each(one)

    def reset(self, manifest):
        """Every node back to fresh (as `lab up` left it): clusterctl's whole
        files removed (not /etc/hostname, which the lab already set to the
        inventory name), managed blocks cut out, clusterctl's node state gone.
        The head's dnsmasq keeps running, so workers keep their leases."""
        scripts = {}
        for role, m in manifest.items():
            cmds = []
            for f in m["files"]:
                if f["path"] == "/etc/hostname":
                    continue
                q = shlex.quote(f["path"])
                if f["block"]:
                    # A block file that was not there before (the head's
                    # group files) is gone again once its block is.
                    cmds.append(
                        f"if [ -f {q} ]; then sed -i '/^# BEGIN clusterctl/,/^# END clusterctl$/d' {q}; "
                        f"[ -s {q} ] || rm -f {q}; fi"
                    )
                else:
                    cmds.append(f"rm -f {q}")
            cmds.append("rm -rf /var/lib/clusterctl /etc/clusterctl")
            scripts[role] = "set -e\n" + "\n".join(cmds) + "\n"
        self.each(lambda n: self.sh(n, scripts[role_of(n)]))


def role_of(node):
    return "head" if node == "head" else "worker"
