"""Many tasks per allocation and scheduler-side chains on a real single-node Slurm.

The FakeCalculator (pair potential, orchestration tests only) keeps the jobs cheap; what is
under test is the packing executor: allocations counted from the stored provenance, a
``scancel`` of a whole allocation, walltime stops, and a 3-link chain that runs with the
controller detached.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from ase.build import molecule

from hetflow.calculators import CalcSpec
from hetflow.workflows._status import collect_status
from hetflow.workflows.graph import Workflow
from hetflow.workflows.packing import PackedBatchExecutor
from hetflow.workflows.store import ResultStore

pytestmark = pytest.mark.slurm
MOLS = ("H2O", "CH4", "NH3", "C2H6", "CO2", "H2")


def _six(spec):
    wf = Workflow("pack")
    for n in MOLS:
        wf.add_calc(n, molecule(n), spec)
    return wf


def _squeue(jid: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", jid, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def _queue_empty(timeout: float) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip():
            return True
        time.sleep(1)
    return False


def test_pack_runs_six_tasks_in_two_allocations(tmp_path, slurm_env):
    wf = _six(CalcSpec(backend="fake", method="LJ"))
    store = ResultStore(tmp_path / "r.db")
    ex = PackedBatchExecutor("slurm", {"walltime": "00:05:00"}, poll=0.5, pack=3)
    s = wf.run(store, ex, workdir=tmp_path / "w")
    assert (s.run, s.failed, s.pending) == (6, 0, 0), str(s)
    rows = list(store.rows())
    assert len(rows) == 6 and len({r.key for r in rows}) == 6
    jobs = {r.provenance["job_id"] for r in rows}
    assert len(jobs) == 2, jobs  # six tasks, two allocations
    packs = sorted(p.name for p in (tmp_path / "w" / "packs").iterdir())
    assert packs == ["pack-0001", "pack-0002"]
    info = json.loads((tmp_path / "w" / "tasks" / "NH3" / "job.json").read_text())
    assert info["pack"] == "pack-0001" and info["pack_index"] == 3 and info["pack_size"] == 3
    assert _queue_empty(30)  # results are ingested as they appear; the launcher then records the exit
    alloc = json.loads((tmp_path / "w" / "tasks" / "NH3" / "allocation.json").read_text())
    assert alloc["job_id"] == info["job_id"] and alloc["exit"] == 0 and alloc["slot"] == 1
    rows_s, _, _ = collect_status(tmp_path / "w")
    by = {r[0]: r for r in rows_s}
    assert by["CO2"][2] == json.loads((tmp_path / "w" / "tasks" / "CO2" / "job.json").read_text())["job_id"]
    assert by["CO2"][4].startswith("pack-0002 task 2/3, slot 1 on "), by["CO2"]


def test_scancel_of_an_allocation_loses_nothing(tmp_path, slurm_env):
    wf = _six(CalcSpec(backend="fake", method="LJ").with_settings(sleep=3))
    store = ResultStore(tmp_path / "r.db")
    work = tmp_path / "w"
    s = wf.run(store, PackedBatchExecutor("slurm", {"walltime": 5}, detached=True, pack=6), workdir=work)
    assert s.pending == 6 and store.count() == 0
    jid = json.loads((work / "tasks" / "H2O" / "job.json").read_text())["job_id"]
    t0 = time.time()  # cancel once the first task has its result: some done, some running, some not started
    while time.time() - t0 < 60 and not (work / "tasks" / "H2O" / "result.json").exists():
        time.sleep(0.3)
    assert (work / "tasks" / "H2O" / "result.json").exists(), _squeue(jid)
    assert subprocess.run(["scancel", jid]).returncode == 0
    t0 = time.time()
    while time.time() - t0 < 30 and _squeue(jid) not in ("", "CANCELLED", "COMPLETED"):
        time.sleep(0.5)
    time.sleep(1)
    unfinished = [n for n in MOLS if not (work / "tasks" / n / "result.json").exists()]
    assert unfinished, "every task finished before the scancel; nothing was under test"
    s2 = wf.run(store, PackedBatchExecutor("slurm", {"walltime": 5}, poll=0.5, pack=6), workdir=work)
    assert s2.failed == 0 and s2.run + s2.ingested == 6, str(s2)
    rows = list(store.rows())
    assert len(rows) == 6 and len({r.key for r in rows}) == 6  # each result stored once
    for r in rows:
        if r.name in unfinished:  # lost with the allocation, rerun in a second one
            assert r.provenance["job_id"] != jid and r.provenance["attempts"] == 2
            assert r.provenance["losses"][0].startswith(f"job {jid} (pack pack-0001, task "), r.provenance
        else:  # finished before the scancel: ingested, not rerun
            assert r.provenance["job_id"] == jid and r.provenance["attempts"] == 1


def test_chain_of_three_completes_with_the_controller_detached(tmp_path, slurm_env):
    spec = CalcSpec(backend="fake", method="LJ", task="relax", fmax=0.01)
    wf = Workflow("chain")
    wf.add_calc("a", molecule("CH4"), spec.with_settings(sigma=1.4))
    wf.add_calc("b", None, spec.with_settings(sigma=1.5), start_from="a")
    wf.add_calc("c", None, spec.with_settings(sigma=1.6), start_from="b")
    store = ResultStore(tmp_path / "r.db")
    work = tmp_path / "w"
    s = wf.run(store, PackedBatchExecutor("slurm", {"walltime": 5}, detached=True), workdir=work)
    assert s.pending == 3 and store.count() == 0
    jobs = {n: json.loads((work / "tasks" / n / "job.json").read_text()) for n in "abc"}
    assert jobs["b"]["after"] == [jobs["a"]["job_id"]] and jobs["c"]["after"] == [jobs["b"]["job_id"]]
    rows, _, _ = collect_status(work)
    assert {r[0]: r[1] for r in rows}["c"] == "pending"  # waits in the queue on its dependency
    # no controller from here on: Slurm runs a, then b from a's result, then c from b's
    assert _queue_empty(120), subprocess.run(["squeue"], capture_output=True, text=True).stdout
    for n in "abc":
        assert (work / "tasks" / n / "result.json").exists(), n
    b_in = json.loads((work / "tasks" / "b" / "input.json").read_text())
    assert b_in["resolved_from"]["parent"] == "a" and b_in["key"]
    # the next controller run ingests all three (same content keys as it computes) and runs nothing
    s2 = wf.run(store, PackedBatchExecutor("slurm", {"walltime": 5}, poll=0.5), workdir=work)
    assert (s2.ingested, s2.run, s2.failed) == (3, 0, 0), str(s2)
    r = {x.name: x for x in store.rows()}
    assert r["b"].atoms.positions.tolist() != r["a"].atoms.positions.tolist()
    assert r["c"].energy < 0 and len({x.provenance["job_id"] for x in r.values()}) == 3


def test_walltime_stop_is_resumed_without_counting_as_a_loss(tmp_path, slurm_env):
    spec = CalcSpec(backend="fake", method="LJ").with_settings(stop_first=2)
    wf = Workflow("stops")
    wf.add_calc("w", molecule("H2O"), spec)
    store = ResultStore(tmp_path / "r.db")
    s = wf.run(store, PackedBatchExecutor("slurm", {"walltime": 5}, poll=0.5, max_retries=0), workdir=tmp_path / "w")
    assert (s.run, s.failed) == (1, 0), str(s)
    row = next(store.rows())
    assert row.provenance["attempts"] == 3 and row.provenance["losses"] == []
    info = json.loads((tmp_path / "w" / "tasks" / "w" / "job.json").read_text())
    assert [x["message"] for x in info["restarts"]] == [
        "FakeCalculator: stop 1 of 2 requested by settings", "FakeCalculator: stop 2 of 2 requested by settings"]


def test_bad_pack_values_are_one_line_errors(tmp_path):
    """Validated before anything is written or submitted (no Slurm needed)."""
    from click.testing import CliRunner

    from hetflow.cli import app

    wf = tmp_path / "wf.yaml"
    wf.write_text("name: t\nspec: {backend: fake, method: LJ}\nstructures:\n  - {builder: molecule, params: {names: [H2O]}}\n")
    for args, needle in ((["--pack", "0"], "pack must be a positive integer, got 0"),
                         (["--pack", "2", "--slots", "3"], "slots (3) cannot exceed pack (2)")):
        r = CliRunner().invoke(app, ["submit", str(wf), "--scheduler", "slurm", *args])
        assert r.exit_code == 2 and r.output.strip() == f"error: {needle}", r.output
    assert not (tmp_path / "wf-work").exists()
    r = CliRunner().invoke(app, ["reproduce", "s1", "--quick", "--pack", "4", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.output.strip() == "error: --pack needs a scheduler: --executor slurm|pbs|lsf"


def test_cli_submit_pack_and_status_show_the_allocation(tmp_path, slurm_env):
    from click.testing import CliRunner

    from hetflow.cli import app

    wf = tmp_path / "wf.yaml"
    wf.write_text("name: cli\nspec: {backend: fake, method: LJ}\n"
                  "structures:\n  - {builder: molecule, params: {names: [H2O, NH3, CH4]}}\n"
                  "executor: {type: slurm, walltime: 5}\n")
    r = CliRunner().invoke(app, ["submit", str(wf), "--pack", "3", "--wait", "--poll", "0.5"])
    assert r.exit_code == 0 and "cli: 0 cached, 3 run" in r.output, r.output
    assert _queue_empty(30)
    r = CliRunner().invoke(app, ["status", str(wf)])
    lines = [ln for ln in r.output.splitlines() if ln.startswith(("H2O", "NH3", "CH4"))]
    assert len(lines) == 3 and len({ln.split()[2] for ln in lines}) == 1  # one allocation
    assert all("pack-0001 task " in ln and ", exit 0" in ln for ln in lines), r.output
