"""pyinfra inventory of the bench lab: the head, then the workers, every one
reached with the lab's own ssh_config (workers by ProxyJump through the head),
known_hosts (strict) and key. The driver sets BENCH_LAB (the lab directory
`clusterctl lab up` wrote), BENCH_SSH_CONFIG and BENCH_KNOWN_HOSTS (the lab's,
with the head's keys also under the "[ADDR]:22" names pyinfra's ProxyJump
looks up) and BENCH_WORKERS (w1 w2 ...)."""
import os

_lab = os.environ["BENCH_LAB"]
_ssh = {
    "ssh_config_file": os.environ["BENCH_SSH_CONFIG"],
    "ssh_known_hosts_file": os.environ["BENCH_KNOWN_HOSTS"],
    "ssh_strict_host_key_checking": "yes",
    "ssh_key": f"{_lab}/id_ed25519",
    "ssh_user": "root",
}

head = [("head", dict(_ssh, role="head"))]
workers = [(w, dict(_ssh, role="worker")) for w in os.environ["BENCH_WORKERS"].split()]
