"""The bench's pyinfra deploy: the same work as `clusterctl apply` on the lab.

Every file clusterctl manages on the node, with the bytes `clusterctl render
--out` gives (BENCH_RENDER/<node>/<path>), mode and owner from clusterctl's own
report; managed blocks (/etc/hosts) with files.block and clusterctl's markers;
then each step's handler (the exact command clusterctl ran, from its JSON
report) only when one of the step's files changed, in catalog order. The
driver writes the manifest (BENCH_MANIFEST) from clusterctl's first apply and
checks every node's files against clusterctl's after each run.
"""
import json
import os

from pyinfra import host
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

manifest = json.load(open(os.environ["BENCH_MANIFEST"]))
render = os.environ["BENCH_RENDER"]
merged = os.environ["BENCH_MERGED"]
with open(os.environ["BENCH_PRELUDE"]) as f:
    prelude = f.read()
role = host.data.role

changed_by_step = {}
for f in manifest[role]["files"]:
    # A managed block goes whole: the node's lines as `lab up` left them and
    # clusterctl's block (BENCH_MERGED). pyinfra's files.block finds its
    # markers as awk regexes, and clusterctl's begin marker has parentheses,
    # so files.block never finds the block it wrote and adds another.
    base = merged if f["block"] else render
    op = files.put(
        name=f"put {f['path']}",
        src=f"{base}/{host.name}{f['path']}",
        dest=f["path"],
        mode=f["mode"],
        user=f["owner"],
        group=f["group"],
        create_remote_dir=True,
    )
    changed_by_step.setdefault(f["step"], []).append(op)

for h in manifest[role]["handlers"]:
    server.shell(
        name=f"handler {h['step']}",
        commands=[prelude + h["command"]],
        _if=any_changed(*changed_by_step[h["step"]]),
    )
