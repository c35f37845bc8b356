"""Issue 14, item 1: the store never waits forever on a lock.

ASE's lock file (``results.db.lock``) of a writer that was killed made every later run hang
at 0 % CPU.  hetflow now locks the store itself: an ``flock`` the kernel releases when its
holder dies (taken over with a message), a live holder is named while waiting and the wait
ends after ``HETFLOW_LOCK_TIMEOUT`` seconds with a one-line error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from hardening_helpers import fake_yaml, run_marked, store_integrity


def test_leftover_ase_lock_file_does_not_hang_the_run(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"]))
    (tmp_path / "wf-work").mkdir()
    (tmp_path / "wf-work" / "results.db.lock").touch()  # as a writer killed inside ase.db leaves it
    t0 = time.time()
    p = run_marked("run", str(wfy), "--no-progress", timeout=90)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("t: 0 cached, 1 run"), p.stdout
    assert time.time() - t0 < 60
    assert "ignoring" in p.stderr and "results.db.lock" in p.stderr  # said, not silent
    assert store_integrity(tmp_path / "wf-work" / "results.db") == 1


def _hold_lock(lock: str, seconds: float) -> subprocess.Popen:
    """A live process holding the store's write lock (as a concurrent writer would)."""
    code = (
        "import fcntl, json, os, sys, time\n"
        f"fd = os.open({lock!r}, os.O_RDWR | os.O_CREAT, 0o644)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.ftruncate(fd, 0); os.pwrite(fd, json.dumps({'pid': os.getpid(), 'host': 'elsewhere'}).encode(), 0)\n"
        "print('locked', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_live_lock_holder_is_named_and_the_wait_times_out(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"]))
    wd = tmp_path / "wf-work"
    wd.mkdir()
    holder = _hold_lock(str(wd / "results.db.hetflow-lock1"), 120)
    try:
        t0 = time.time()
        p = run_marked("run", str(wfy), "--no-progress", timeout=90,
                       env={"HETFLOW_LOCK_TIMEOUT": "4"})
        took = time.time() - t0
    finally:
        holder.kill()
        holder.wait()
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("error: result store ") and f"locked by pid {holder.pid}" in lines[-1], lines
    assert "more than 4 s" in lines[-1]
    assert any("waiting for the result store lock" in ln for ln in lines[:-1]), lines
    assert "Traceback" not in p.stderr
    assert took < 60
    # the holder gone, the same command finishes and stores the task once
    p = run_marked("run", str(wfy), "--no-progress", timeout=90)
    assert p.returncode == 0, p.stderr
    assert store_integrity(wd / "results.db") == 1


def test_lock_of_a_writer_that_died_is_taken_over_with_a_message(tmp_path, fake_spec, caplog):
    """A holder record without a live flock: the writer was killed inside the store write."""
    from ase.build import molecule

    from hetflow.calculators import calc_key
    from hetflow.calculators.fake import FakeCalculator
    from hetflow.workflows._worker import result_payload
    from hetflow.workflows.store import ResultStore

    db = tmp_path / "r.db"
    store = ResultStore(db)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "r.db.hetflow-lock1").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    a = molecule("H2O")
    payload = result_payload("H2O", calc_key(a, fake_spec), FakeCalculator().run(a, fake_spec), 0.0, 1.0)
    t0 = time.time()
    with caplog.at_level("WARNING", logger="hetflow.store"):
        assert store.ingest(payload, workflow="w") is True
    assert time.time() - t0 < 5
    assert any("taking over the result store lock" in r.getMessage() and f"pid {dead.pid}" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert (tmp_path / "r.db.hetflow-lock1").read_text() == ""  # released: no holder recorded
    assert store_integrity(db) == 1
