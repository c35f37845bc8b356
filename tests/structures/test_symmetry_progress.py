"""Long symmetry-distinct enumerations report progress (callback and log), calculator-free."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from click.testing import CliRunner

from hetflow.structures import symmetry
from hetflow.structures.symmetry import distinct_subsets


def _ring_group(n: int) -> np.ndarray:
    """Site permutations of an n-ring (rotations and reflections): dihedral group of order 2n."""
    rot = [np.roll(np.arange(n), r) for r in range(n)]
    return np.array(rot + [p[::-1] for p in rot])


def test_progress_callback_exhaustive_and_sampled(monkeypatch, caplog):
    monkeypatch.setattr(symmetry, "PROGRESS_EVERY", 0.0)
    calls = []
    with caplog.at_level(logging.INFO, logger="hetflow.structures.symmetry"):
        orbits, meta = distinct_subsets(range(16), 5, _ring_group(16), progress=lambda *a: calls.append(a))
    total = math.comb(16, 5)
    assert meta["exhaustive"] and len(calls) >= 5
    examined = [c[0] for c in calls]
    assert examined == sorted(examined) and calls[-1] == (total, total, len(orbits))
    assert sum(o.multiplicity for o in orbits) == total
    msgs = [r.getMessage() for r in caplog.records]
    assert any(f"enumerating all C(n, k) = {total}" in m for m in msgs)
    assert any(f"{len(orbits)} symmetry-distinct choices" in m for m in msgs)
    calls.clear()
    orbits, meta = distinct_subsets(range(40), 10, _ring_group(40), max_configs=5, max_enumerate=1000,
                                    progress=lambda *a: calls.append(a))
    assert not meta["exhaustive"] and calls[-1][2] == len(orbits) == 5


def test_cli_prints_enumeration_progress_when_not_a_terminal(tmp_path, monkeypatch):
    from hetflow.cli import app
    from hetflow.structures.interface import build_slab
    from hetflow.structures.io import write_structure

    monkeypatch.setenv("HETFLOW_PROGRESS", "plain")
    p = write_structure(build_slab(inplane=(2, 2), perovskite_cells=3, partner_cells=1), tmp_path / "slab.extxyz")
    r = CliRunner().invoke(app, ["build", "exchange", str(p), "--pattern", "custom", "--k", "4", "--layers", "1",
                                 "--max-configs", "500", "-o", str(tmp_path / "ex")])
    assert r.exit_code == 0, r.output
    n = len(json.loads((tmp_path / "ex" / "index.json").read_text())) - 1
    line = [x for x in r.output.splitlines() if "symmetry-distinct k=4" in x]
    assert line and line[-1].endswith(f"{math.comb(16, 4)}/{math.comb(16, 4)} examined, {n} distinct")
