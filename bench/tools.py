"""The command lines the bench measures, one per (tool, mode). Every tool
reaches the same lab with the same ssh_config, known_hosts (strict) and key;
workers go through the head."""
import os
import shlex

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("first", "noop", "diff")
FORKS = 64  # clusterctl's --forks maximum; the floor uses the same


class Tools:
    def __init__(self, ctx):
        self.c = ctx  # the driver's Context: lab, paths, venv, forks

    def floor(self, kind):
        """N+1 `ssh HOST true`, fresh or over open masters, as many at once as
        clusterctl's --forks allows (64): with all 251 of N=250 at once the
        head's sshd (MaxStartups 200) drops connections and the rest time out
        in the banner exchange on 2 cores."""
        lab, cfg = self.c.lab, os.path.join(self.c.lab.dir, "ssh_config")
        if kind == "fresh":
            opts = "-o ControlMaster=no -o ControlPath=none"
        elif kind == "c25519":
            # The key exchange russh and pyinfra (paramiko) negotiate, in a
            # copy of the lab's config (so the ProxyJump hop uses it too);
            # OpenSSH 9.2's default, sntrup761x25519 (post-quantum), costs
            # client and server about 3x the CPU.
            cfg = self.c.c25519_ssh_config
            opts = "-o ControlMaster=no -o ControlPath=none"
        else:
            opts = f"-o ControlMaster=no -o ControlPath={self.c.mux_dir}/%C"
        hosts = " ".join(lab.nodes)
        script = (
            f"printf '%s\\n' {hosts} | xargs -P {FORKS} -I@ ssh -F {shlex.quote(cfg)} {opts} @ true"
        )
        return ["sh", "-c", script]

    def mux_open(self):
        cfg = os.path.join(self.c.lab.dir, "ssh_config")
        hosts = " ".join(self.c.lab.nodes)
        return ["sh", "-c",
                f"printf '%s\\n' {hosts} | xargs -P {FORKS} -I@ ssh -F {shlex.quote(cfg)} "
                f"-o ControlMaster=yes -o ControlPath={self.c.mux_dir}/%C "
                f"-o ControlPersist=yes -f -N @"]

    def mux_close(self):
        cfg = os.path.join(self.c.lab.dir, "ssh_config")
        hosts = " ".join(self.c.lab.nodes)
        return ["sh", "-c",
                f"printf '%s\\n' {hosts} | xargs -P {FORKS} -I@ ssh -F {shlex.quote(cfg)} "
                f"-o ControlPath={self.c.mux_dir}/%C -O exit @ 2>/dev/null"]

    def clusterctl(self, transport, mode):
        c = self.c
        forks = str(min(FORKS, len(c.lab.nodes)))
        if mode == "diff":
            return [c.clusterctl, "diff", "-i", c.alt_inventory, "--transport", transport,
                    "--forks", forks, "--output", "json"]
        return [c.clusterctl, "apply", "-i", c.lab.inventory, "--transport", transport,
                "--forks", forks, "--output", "json"]

    def pyinfra(self, mode):
        c = self.c
        cmd = [os.path.join(c.venv, "bin", "pyinfra"), "--parallel", str(len(c.lab.nodes))]
        # --dry runs the change detection (with -y pyinfra would skip it)
        cmd += ["--dry", "--diff"] if mode == "diff" else ["-y"]
        return cmd + [os.path.join(HERE, "pyinfra", "inventory.py"),
                      os.path.join(HERE, "pyinfra", "deploy.py")]

    def pyinfra_env(self, mode):
        c = self.c
        return {
            "BENCH_LAB": c.lab.dir,
            "BENCH_SSH_CONFIG": c.pyinfra_ssh_config,
            "BENCH_KNOWN_HOSTS": c.pyinfra_known_hosts,
            "BENCH_WORKERS": " ".join(c.lab.workers),
            "BENCH_MANIFEST": c.manifest_path,
            "BENCH_PRELUDE": c.prelude_path,
            "BENCH_RENDER": c.render_alt if mode == "diff" else c.render,
            "BENCH_MERGED": c.merged_alt if mode == "diff" else c.merged,
        }

    def ansible(self, mode):
        c = self.c
        cmd = [os.path.join(c.venv, "bin", "ansible-playbook"), "-i", c.ansible_inventory,
               os.path.join(HERE, "ansible", "site.yml"),
               "-e", "@" + (c.ansible_vars_alt if mode == "diff" else c.ansible_vars)]
        if mode == "diff":
            cmd += ["--check", "--diff"]
        return cmd

    def ansible_env(self, run_dir):
        c = self.c
        cfg = os.path.join(c.lab.dir, "ssh_config")
        return {
            "ANSIBLE_CONFIG": os.path.join(HERE, "ansible", "ansible.cfg"),
            "ANSIBLE_FORKS": str(len(c.lab.nodes)),
            "ANSIBLE_SSH_ARGS": f"-F {cfg} -o ControlMaster=auto -o ControlPersist=60s",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(run_dir, "cp"),
            "ANSIBLE_HOME": os.path.join(c.work, "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": os.path.join(run_dir, "tmp"),
        }
