"""Helpers of the hardening tests: a store integrity query, a CLI runner, the one-line-error check.

(A module of its own, not conftest: several test folders have a conftest.py, and
``from conftest import …`` would pick whichever was imported first.)"""

from __future__ import annotations

import os
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
