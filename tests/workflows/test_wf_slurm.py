"""Real single-node Slurm: sbatch workflow to completion, and a scancel'ed job resubmitted.

The FakeCalculator (pair potential) keeps the jobs cheap; only the orchestration is under test.
"""

import json
import subprocess
import time

import pytest
from ase.build import molecule

from hetflow.calculators import CalcSpec
from hetflow.workflows.executors import BatchExecutor
from hetflow.workflows.graph import Workflow
from hetflow.workflows._status import collect_status
from hetflow.workflows.store import ResultStore

pytestmark = pytest.mark.slurm


def test_sbatch_workflow_finishes_and_is_ingested(tmp_path, slurm_env):
    spec = CalcSpec(backend="fake", method="LJ")
    wf = Workflow("slurm-ok")
    for n in ("H2O", "CH4"):
        wf.add_calc(n, molecule(n), spec)
    wf.add_calc("CH4_relax", None, spec.replace(task="relax"), start_from="CH4")
    store = ResultStore(tmp_path / "r.db")
    ex = BatchExecutor("slurm", {"partition": "debug", "walltime": "00:05:00"}, poll=0.5)
    s = wf.run(store, ex, workdir=tmp_path / "w")
    assert (s.run, s.failed, s.pending) == (3, 0, 0), str(s)
    assert store.count() == 3
    rows = {r.name: r for r in store.rows()}
    assert rows["CH4_relax"].energy < rows["CH4"].energy
    assert all(r.provenance["job_id"] for r in rows.values())  # ran inside Slurm jobs
    info = json.loads((tmp_path / "w" / "tasks" / "CH4" / "job.json").read_text())
    assert info["executor"] == "slurm" and info["attempts"] == 1
    s2 = wf.run(store, BatchExecutor("slurm", poll=0.5), workdir=tmp_path / "w")
    assert (s2.cached, s2.run) == (3, 0)


def test_scancelled_job_is_detected_and_resubmitted(tmp_path, slurm_env):
    spec = CalcSpec(backend="fake", method="LJ").with_settings(sleep=8)
    wf = Workflow("slurm-cancel")
    wf.add_calc("w", molecule("H2O"), spec)
    store = ResultStore(tmp_path / "r.db")
    work = tmp_path / "w"
    # detached submission: returns with the job queued/running
    s = wf.run(store, BatchExecutor("slurm", {"walltime": 5}, detached=True), workdir=work)
    assert s.pending == 1 and store.count() == 0
    jid = json.loads((work / "tasks" / "w" / "job.json").read_text())["job_id"]
    t0 = time.time()
    while time.time() - t0 < 30:
        st = subprocess.run(["squeue", "-h", "-j", jid, "-o", "%T"], capture_output=True, text=True).stdout.strip()
        if st == "RUNNING":
            break
        time.sleep(0.5)
    assert subprocess.run(["scancel", jid]).returncode == 0
    time.sleep(2)
    rows, notes, _ = collect_status(work)
    assert rows[0][1] == "vanished" and rows[0][2] == jid
    assert any("CANCELLED" in n for n in notes), notes  # stderr tail of the killed job
    # rerun attached: vanished job detected, resubmitted, finished, ingested once
    s2 = wf.run(store, BatchExecutor("slurm", {"walltime": 5}, poll=0.5), workdir=work)
    assert (s2.run, s2.failed) == (1, 0), str(s2)
    assert store.count() == 1
    row = next(store.rows())
    assert row.provenance["attempts"] == 2
    assert row.provenance["losses"][0].startswith(f"job {jid} vanished (JobState=CANCELLED")
    assert row.provenance["job_id"] != jid
