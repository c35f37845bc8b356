"""Local executor + engine: caching, dependencies, failures, worker kill, controller kill -9.

The FakeCalculator (a pair potential) is used only to exercise the orchestration.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

from hetflow.calculators import CalcSpec, calc_key
from hetflow.calculators.fake import FakeCalculator
from hetflow.workflows.executors import LocalExecutor
from hetflow.workflows.graph import Workflow
from hetflow.workflows.store import ResultStore


def _wf(mols, spec):
    wf = Workflow("t")
    for n, a in mols.items():
        wf.add_calc(n, a, spec)
    wf.add_calc("CH4_relax", None, spec.replace(task="relax"), start_from="CH4")
    wf.add_derived("dE", lambda CH4, CH4_relax: CH4_relax.energy - CH4.energy, ["CH4", "CH4_relax"])
    return wf


def test_run_then_rerun_is_fully_cached(tmp_path, mols, fake_spec):
    store = ResultStore(tmp_path / "r.db")
    wf = _wf(mols, fake_spec)
    s1 = wf.run(store, LocalExecutor(workers=2), workdir=tmp_path / "w")
    assert (s1.cached, s1.run, s1.derived, s1.failed) == (0, 5, 1, 0), str(s1)
    assert str(s1) == "0 cached, 5 run, 1 derived"
    assert store.count() == 5
    # stored energies are the calculator's energies for those exact structures
    direct = FakeCalculator().run(mols["H2O"], fake_spec).energy
    assert store.get(calc_key(mols["H2O"], fake_spec)).energy == pytest.approx(direct, abs=1e-10)
    # the relaxation started from CH4 and lowered the energy
    from hetflow.workflows._engine import Engine

    s2 = wf.run(store, LocalExecutor(workers=2), workdir=tmp_path / "w")
    assert (s2.cached, s2.run) == (5, 0) and str(s2) == "5 cached, 0 run, 1 derived"
    assert store.count() == 5
    eng = Engine(wf, store, LocalExecutor(workers=1), tmp_path / "w")
    eng.run()
    assert eng.results["dE"] < 0
    assert eng.results["CH4_relax"].provenance["executor"] == "local"


def test_dependent_key_uses_parent_final_geometry(tmp_path, fake_spec):
    store = ResultStore(tmp_path / "r.db")
    wf = Workflow("dep")
    w = molecule("H2O")
    wf.add_calc("relax", w, fake_spec.replace(task="relax"))
    wf.add_calc("sp", None, fake_spec.replace(method="EMT-like"), start_from="relax")
    from hetflow.workflows._engine import Engine

    eng = Engine(wf, store, LocalExecutor(workers=1), tmp_path / "w")
    eng.run()
    relaxed = eng.results["relax"].atoms
    assert not np.allclose(relaxed.positions, w.positions)
    assert eng.keys["sp"] == calc_key(relaxed, fake_spec.replace(method="EMT-like"))
    assert np.allclose(eng.results["sp"].atoms.positions, relaxed.positions)


def test_failure_is_reported_and_dependents_skipped(tmp_path, fake_spec):
    store = ResultStore(tmp_path / "r.db")
    wf = Workflow("f")
    wf.add_calc("ok", molecule("H2O"), fake_spec)
    wf.add_calc("bad", molecule("CH4"), fake_spec.with_settings(fail="injected"))
    wf.add_calc("after", None, fake_spec.replace(task="relax"), start_from="bad")
    s = wf.run(store, LocalExecutor(workers=2), workdir=tmp_path / "w")
    assert (s.run, s.failed, s.skipped) == (1, 1, 1)
    assert s.failures == {"bad": "CalculatorError: FakeCalculator: injected"}
    assert store.count() == 1


def _pool_workers():
    me = os.getpid()
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and "spawn_main" in cmd:
            out.append(int(d.name))
    return out


def test_killed_worker_is_resubmitted(tmp_path, fake_spec):
    store = ResultStore(tmp_path / "r.db")
    wf = Workflow("k")
    slow = fake_spec.with_settings(sleep=3)
    for n in ("H2O", "CH4"):
        wf.add_calc(n, molecule(n), slow)
    killed = []

    def killer():
        t0 = time.time()
        while time.time() - t0 < 30 and not killed:
            pids = _pool_workers()
            inputs = list((tmp_path / "w" / "tasks").glob("*/input.json")) if (tmp_path / "w").exists() else []
            if pids and len(inputs) == 2:
                time.sleep(1.0)  # let the workers pick up their tasks
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)

    th = threading.Thread(target=killer)
    th.start()
    s = wf.run(store, LocalExecutor(workers=2, max_retries=2), workdir=tmp_path / "w")
    th.join()
    assert killed, "no worker was killed"
    assert (s.run, s.failed) == (2, 0), str(s)
    assert store.count() == 2
    losses = [r.provenance["losses"] for r in store.rows()]
    assert any(any("worker process died" in m for m in lost) for lost in losses)


def test_retry_limit_gives_up(tmp_path, fake_spec):
    """A task whose worker dies every time fails after max_retries resubmissions."""
    from hetflow.workflows._engine import Engine
    from hetflow.workflows.executors import Event

    class Dying(LocalExecutor):
        def submit(self, name, td):
            self.pending = getattr(self, "pending", []) + [name]

        def wait(self, timeout):
            out, self.pending = [Event(n, "lost", "node on fire") for n in self.pending], []
            return out

    wf = Workflow("d")
    wf.add_calc("x", molecule("H2O"), fake_spec)
    s = Engine(wf, ResultStore(tmp_path / "r.db"), Dying(max_retries=2), tmp_path / "w").run()
    assert s.failed == 1 and s.failures["x"].startswith("lost 3 times (limit 2 retries): node on fire")


WF_YAML = """
name: restart
spec: {backend: fake, method: LJ, settings: {sleep: 0.7}}
structures:
  - {builder: molecule, params: {names: [H2O, CH4, NH3, C2H6, CO2, N2, H2, CO]}}
executor: {type: local, workers: 1}
"""


def _children(pid):
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def test_controller_kill9_then_rerun_completes_without_duplicates(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(WF_YAML)
    db = tmp_path / "wf-work" / "results.db"
    ctl = subprocess.Popen([sys.executable, "-m", "hetflow.cli", "run", str(wfy), "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t0 = time.time()
    while time.time() - t0 < 120:
        if db.exists() and ResultStore(db).count() >= 3:
            break
        time.sleep(0.2)
    kids = _children(ctl.pid)
    ctl.send_signal(signal.SIGKILL)
    ctl.wait()
    for k in kids:  # orphaned pool workers of the killed controller
        try:
            os.kill(k, signal.SIGKILL)
        except OSError:
            pass
    before = ResultStore(db).count()
    assert 3 <= before < 8, before
    out = subprocess.run([sys.executable, "-m", "hetflow.cli", "run", str(wfy), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    store = ResultStore(db)
    keys = [r.key for r in store.rows()]
    assert len(keys) == 8 and len(set(keys)) == 8
    line = out.stdout.splitlines()[0]
    cached = int(line.split(": ")[1].split(" cached")[0])
    assert cached >= before and "run" in line
    assert "failed" not in line
