"""Issue 14, item 6: two controllers on one workflow.

On main two controllers each computed every task, and two runs of one relaxation collided on
the fixed ``checkpoint.json.tmp`` name.  Now a controller claims a task before computing it
(pid, host and start time in ``claim.json``); a task claimed by a live controller is left to
it and its result collected from the store; every writer uses its own temporary file name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from hardening_helpers import fake_yaml, kill_marked, start_cli, store_integrity, wait_gone

HAMMER = """
import sys, time
from pathlib import Path
target, which, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if which == "relax":
    from hetflow.calculators.relax import _write_json_atomic as w
    write = lambda i: w(target, {"step": i, "pad": "x" * 2000})
elif which == "structure":
    from ase.build import molecule
    from hetflow.structures.io import write_structure
    a = molecule("CH4")
    write = lambda i: write_structure(a, target)
else:
    from hetflow.workflows._taskdir import write_json_atomic
    write = lambda i: write_json_atomic(target, {"step": i})
for i in range(n):
    write(i)
print("ok")
"""


def _hammer(tmp_path, which: str, target: str, n: int = 300):
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, str(tmp_path / target), which, str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and out.strip() == "ok", err[-1500:]
    return sorted(x.name for x in tmp_path.iterdir())


def test_concurrent_checkpoint_writers_never_collide(tmp_path):
    files = _hammer(tmp_path, "relax", "checkpoint.json")
    assert files == ["checkpoint.json"]  # and no temporary file left behind
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 299


def test_concurrent_structure_and_json_writers_never_collide(tmp_path):
    assert _hammer(tmp_path, "structure", "out.extxyz", 100) == ["out.extxyz"]
    assert _hammer(tmp_path, "json", "job.json") == ["job.json", "out.extxyz"]


def test_two_controllers_compute_each_task_once(tmp_path):
    names = ["H2O", "CH4", "NH3", "CO2", "N2", "CO"]
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(names, sleep=1.5, chained={"CH4_relax": "CH4"},
                             extra="executor: {type: local, workers: 2}\n"))
    mark = uuid.uuid4().hex
    try:
        a = start_cli("run", str(wfy), "--no-progress", mark=mark, cwd=tmp_path)
        time.sleep(0.3)
        b = start_cli("run", str(wfy), "--no-progress", mark=mark, cwd=tmp_path)
        outs = [p.communicate(timeout=240) for p in (a, b)]
    finally:
        kill_marked(mark)
    for p, (out, err) in zip((a, b), outs):
        assert p.returncode == 0, out + err
    assert not wait_gone(mark, 10)
    db = tmp_path / "wf-work" / "results.db"
    assert store_integrity(db) == 7
    attempts = {}
    for d in (tmp_path / "wf-work" / "tasks").iterdir():
        attempts[d.name] = json.loads((d / "job.json").read_text())["attempts"]
        assert not (d / "claim.json").exists(), f"claim of {d.name} not released"
    assert attempts == {n: 1 for n in names + ["CH4_relax"]}, attempts  # nobody computed twice
    both = outs[0][1] + outs[1][1]
    assert "being computed by another controller" in both
    # between them the two controllers account for every task exactly once as computed
    run = sum(int(out.split(" cached, ")[1].split(" run")[0]) for out, _ in outs)
    recovered = sum(int(out.split(" run, ")[1].split(" recovered")[0]) if "recovered" in out else 0
                    for out, _ in outs)
    assert run == 7, [o for o, _ in outs]
    assert recovered + sum(int(out.split(": ")[1].split(" cached")[0]) for out, _ in outs) == 7
