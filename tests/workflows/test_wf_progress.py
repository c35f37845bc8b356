"""Progress display and logging: truthful counts, a plain line log with heartbeats when stdout
is not a terminal (FakeCalculator — orchestration only), logs above a rich bar, worker logs
kept off the controller's terminal, expected conditions at INFO."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from hetflow.workflows import progress
from hetflow.workflows.progress import LineRunProgress, counts, format_counts, make_progress, task_log


def test_counts_are_truthful():
    states = {f"t{i}": "running" for i in range(10)} | {"a": "done", "b": "cached", "c": "pending", "d": "failed"}
    names = list(states)
    c = counts(states, names, slots=2)
    assert (c["running"], c["queued"], c["done"], c["waiting"], c["failed"]) == (2, 8, 2, 1, 1)
    assert format_counts(c) == "2 running · 8 queued · 1 waiting for inputs · 1 failed"
    batch = counts(states, names, slots=None)  # a scheduler's queue is not visible to hetflow
    assert format_counts(batch).startswith("10 submitted")


_RUN = textwrap.dedent("""
    import sys
    from ase.build import molecule
    from hetflow.calculators import CalcSpec
    from hetflow.workflows.executors import LocalExecutor
    from hetflow.workflows.graph import Workflow
    from hetflow.workflows.store import ResultStore
    from hetflow.workflows._engine import Engine

    if __name__ == "__main__":
        out = sys.argv[1]
        wf = Workflow("beat")
        for i, n in enumerate(["H2O", "CH4", "NH3", "C2H6", "CO2", "N2"]):
            wf.add_calc(n, molecule(n), CalcSpec(backend="fake", method="LJ", settings={"sleep": 2.5}))
        s = Engine(wf, ResultStore(out + "/r.db"), LocalExecutor(workers=2), out + "/w", progress=True).run()
        print("summary:", s)
""")


def test_plain_progress_log_when_stdout_is_a_file(tmp_path):
    """`… > log`: a line per task, heartbeats at the set interval with running ≤ workers, no
    bar fragments; the engine runs real pool workers on the FakeCalculator."""
    script = tmp_path / "run.py"
    script.write_text(_RUN)
    log = tmp_path / "log.txt"
    import os
    from pathlib import Path

    import hetflow

    root = str(Path(hetflow.__file__).resolve().parents[1])  # the package under test, not an installed copy
    env = {**os.environ, "HETFLOW_HEARTBEAT": "0.8",
           "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    env.pop("HETFLOW_PROGRESS", None)
    with open(log, "w") as fh:
        r = subprocess.run([sys.executable, str(script), str(tmp_path)], stdout=fh, stderr=subprocess.PIPE,
                           text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    text = log.read_text()
    lines = text.splitlines()
    assert "━" not in text and "\r" not in text and "\x1b[" not in text  # no bar, no cursor codes
    assert "6 calculations on 2 workers" in lines[0]
    for n in ["H2O", "CH4", "NH3", "C2H6", "CO2", "N2"]:
        assert any(re.search(rf"\] {n} done \(\d/6\)$", x) for x in lines), n
    beats = [x for x in lines if "heartbeat:" in x]
    assert len(beats) >= 3
    for b in beats:  # never more running than workers; the rest are queued
        m = re.search(r"(\d)/6 done · (\d) running · (\d) queued", b)
        assert m, b
        done, running, queued = map(int, m.groups())
        assert running <= 2 and done + running + queued == 6
    assert any("2 running · 4 queued" in b for b in beats)
    # at least one line per heartbeat interval (+ slack for the 1-s clock of the stamps)
    secs = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in re.findall(r"\[(\d+):(\d\d):(\d\d)\]", text)]
    assert max(b - a for a, b in zip(secs, secs[1:])) <= 2
    assert lines[-2].split("] ", 1)[1].startswith("finished: 6/6 done")
    assert lines[-1] == "summary: 0 cached, 6 run"


def test_line_progress_reports_unconverged_and_failures(caplog):
    buf = io.StringIO()
    p = LineRunProgress("s1", ["pristine", "N1"], slots=2, stream=buf, interval=60)
    res = SimpleNamespace(converged=False, spec=SimpleNamespace(task="relax", fmax=0.05, max_steps=25),
                          provenance={"recovery": ["electronic temperature 300 → 1000 K"]})
    with caplog.at_level(logging.INFO, logger="hetflow"):
        p.update({"pristine": "done", "N1": "running"})
        p.finished("pristine", "done", result=res)
        p.finished("N1", "failed", "ConvergenceError: SCF did not converge\ntraceback …")
        p.close()
    out = buf.getvalue()
    assert "pristine done (not converged) (1/2)" in out
    assert "N1 failed: ConvergenceError: SCF did not converge (2/2)" in out and "traceback" not in out
    recs = {(r.levelname, r.getMessage()) for r in caplog.records}
    # expected conditions at INFO, a failure at WARNING
    assert ("INFO", "pristine: relaxation not converged (fmax 0.05 eV/Å, at most 25 steps)") in recs
    assert ("INFO", "pristine: recovery: electronic temperature 300 → 1000 K") in recs
    assert ("WARNING", "N1 failed: ConvergenceError: SCF did not converge") in recs


def test_rich_bar_prints_log_records_above_it(monkeypatch):
    from rich.console import Console

    buf = io.StringIO()
    monkeypatch.setattr(progress, "_console", Console(file=buf, force_terminal=True, width=120))
    monkeypatch.setattr(logging.getLogger("hetflow"), "handlers", [])  # as for a Python-API user
    log = logging.getLogger("hetflow.test")
    p = make_progress("s1", [f"t{i}" for i in range(10)], mode="rich", slots=2)
    p.update({f"t{i}": "running" for i in range(10)})
    log.warning("a message during the run")
    p._bar.refresh()
    p.close()
    text = buf.getvalue()
    assert "a message during the run" in text
    assert "2 running · 8 queued" in text
    assert not logging.getLogger("hetflow").handlers  # the temporary handler is removed


def test_task_log_keeps_worker_records_off_stderr(tmp_path, capfd):
    from hetflow.workflows.progress import setup_logging

    lg = setup_logging(0)  # a console handler on stderr, as after `hetflow …` in this process
    before = list(lg.handlers)
    with task_log(tmp_path / "worker.log"):
        logging.getLogger("hetflow.calculators.relax").info("relaxation not converged after 3 steps")
        logging.getLogger("hetflow.calculators.xtb").warning("SCF recovery step")
    err = capfd.readouterr().err
    assert "SCF recovery" not in err
    text = (tmp_path / "worker.log").read_text()
    assert "INFO hetflow.calculators.relax: relaxation not converged" in text and "WARNING" in text
    assert lg.handlers == before  # restored
    for h in before:
        lg.removeHandler(h)
    lg.setLevel(logging.NOTSET)


def test_unconverged_relaxation_logs_at_info(caplog):
    """A real tblite relaxation stopped at its step cap says so at INFO (an expected outcome)."""
    from ase import Atoms

    from hetflow.calculators import CalcSpec, run_calculation

    pbcl2 = Atoms("PbCl2", positions=[[0, 0, 0], [2.7, 0, 0], [-0.4, 2.6, 0]])
    spec = CalcSpec(backend="tblite", method="GFN1-xTB", task="relax", max_steps=2, fmax=0.001,
                    settings={"blas": "bundled"})
    with caplog.at_level(logging.INFO, logger="hetflow"):
        res = run_calculation(pbcl2, spec)
    assert not res.converged and res.opt_steps == 2
    rec = [r for r in caplog.records if "not converged" in r.getMessage()]
    assert rec and all(r.levelno == logging.INFO for r in rec)


def test_cli_verbosity_levels():
    from hetflow.workflows.progress import setup_logging

    assert setup_logging(0).level == logging.WARNING
    assert setup_logging(1).level == logging.INFO
    assert setup_logging(-1).level == logging.ERROR
    lg = setup_logging(0)
    assert len([h for h in lg.handlers if getattr(h, "_hetflow", False)]) == 1
    for h in [h for h in lg.handlers if getattr(h, "_hetflow", False)]:
        lg.removeHandler(h)
    lg.setLevel(logging.NOTSET)
