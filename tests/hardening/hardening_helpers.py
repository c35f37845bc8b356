"""Helpers of the hardening tests: a store integrity query, a CLI runner, the one-line-error check.

(A module of its own, not conftest: several test folders have a conftest.py, and
``from conftest import …`` would pick whichever was imported first.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def store_integrity(db_path: str | Path) -> int:
    """Check every row of a SQLite result store; return the number of rows.

    Raw SQL on the ASE schema (not through hetflow) so a corrupt row cannot hide behind the
    code under test: every row has a finite energy, a calc_key that no other row has, and
    forces of shape (natoms, 3) with finite entries.
    """
    import ase.db

    con = sqlite3.connect(str(db_path))
    try:
        keys = [k for (k,) in con.execute(
            "SELECT value FROM text_key_values WHERE key = 'calc_key'")]
        n_rows = con.execute("SELECT COUNT(*) FROM systems").fetchone()[0]
        bad_energy = con.execute(
            "SELECT COUNT(*) FROM systems WHERE energy IS NULL OR energy != energy "
            "OR abs(energy) > 1e300").fetchone()[0]
    finally:
        con.close()
    assert len(keys) == n_rows, f"{n_rows} rows but {len(keys)} calc_key values"
    assert len(set(keys)) == len(keys), "duplicate calc_key in the store"
    assert bad_energy == 0, f"{bad_energy} row(s) without a finite energy"
    for row in ase.db.connect(str(db_path)).select():
        f = row.get("forces")
        assert f is not None and np.asarray(f).shape == (row.natoms, 3), f"row {row.id}: forces shape"
        assert np.isfinite(f).all() and np.isfinite(row.energy)
    return n_rows


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 180):
    """``python -m hetflow.cli ARGS`` in a subprocess; returns CompletedProcess (text)."""
    full_env = dict(os.environ) | (env or {})
    return subprocess.run([sys.executable, "-m", "hetflow.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def assert_one_line_error(p, *words: str) -> str:
    """Exit status 2, stderr exactly one line ``error: …`` containing every word (case-insensitive)."""
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, f"exit {p.returncode}; stderr: {p.stderr[-800:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-800:]
    assert "Traceback" not in p.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), f"{w!r} not in {lines[0]!r}"
    return lines[0]


# ----------------------------------------------------------------------------- processes
MARK_VAR = "HETFLOW_TEST_MARK"


def _is_zombie(pid: int) -> bool:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
        return data[data.rindex(b")") + 2:].split()[0] in (b"Z", b"X")
    except (OSError, ValueError, IndexError):
        return True


def marked_processes(mark: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``HETFLOW_TEST_MARK=mark``:
    a controller started by a test and everything it spawned (pool workers, the
    multiprocessing resource tracker, tblite workers), however they were re-parented."""
    needle = f"{MARK_VAR}={mark}".encode()
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and not _is_zombie(int(d.name)):
            out.append(int(d.name))
    return out


def wait_gone(mark: str, timeout: float = 15.0) -> list[int]:
    """Wait until no marked process is left; returns those still alive after ``timeout``."""
    import time

    deadline = time.time() + timeout
    while True:
        left = marked_processes(mark)
        if not left or time.time() > deadline:
            return left
        time.sleep(0.2)


def kill_marked(mark: str) -> None:
    """Clean-up after a failed assertion: SIGKILL the processes this test started."""
    import signal

    for pid in marked_processes(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def start_cli(*args: str, mark: str, cwd: Path | None = None, env: dict | None = None):
    """``python -m hetflow.cli ARGS`` as a background controller carrying ``mark`` in its
    environment, in its own session (signals of the test runner do not reach it)."""
    full_env = dict(os.environ) | (env or {}) | {MARK_VAR: mark}
    return subprocess.Popen([sys.executable, "-m", "hetflow.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd, start_new_session=True,
                            preexec_fn=_default_signals)


def _default_signals() -> None:
    """In the child before exec: SIGINT, SIGHUP and SIGTERM back to their defaults.  A test runner
    started with ``nohup`` or as a background job of a non-interactive shell inherits SIGHUP /
    SIGINT *ignored*, and ignored dispositions survive exec — the controller would then (rightly)
    keep ignoring them, and the signal tests would test the runner's shell, not hetflow."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def fake_yaml(names: list[str], sleep: float = 0.0, extra: str = "", chained: dict | None = None) -> str:
    """A workflow file of FakeCalculator tasks (orchestration tests only): one single point per
    G2 molecule name, plus ``chained`` = {new task: parent} relaxations starting from a parent."""
    lines = ["name: t", f"spec: {{backend: fake, method: LJ, settings: {{sleep: {sleep}}}}}", "structures:",
             f"  - {{builder: molecule, params: {{names: [{', '.join(names)}]}}}}"]
    for child, parent in (chained or {}).items():
        lines.append(f"  - {{name: {child}, from: {parent}, spec: {{task: relax, max_steps: 20}}}}")
    return "\n".join(lines) + "\n" + extra


def run_marked(*args: str, timeout: float, cwd: Path | None = None, env: dict | None = None):
    """Run the CLI like :func:`run_cli`, but as a marked controller: on a time-out (a hang)
    every process it started is killed and the test fails with what it printed."""
    import uuid

    mark = uuid.uuid4().hex
    p = start_cli(*args, mark=mark, cwd=cwd, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_marked(mark)
        out, err = p.communicate()
        pytest.fail(f"hetflow {' '.join(args)} hung for more than {timeout} s; stderr: {err[-600:]}")
    finally:
        kill_marked(mark)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)
