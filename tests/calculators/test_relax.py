"""Relaxation driver: energy goes down, label constraints hold, interrupted runs resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hetflow.calculators import CalcSpec, run_calculation
from hetflow.calculators.relax import relax_cell
from hetflow.errors import CalculatorError, InputError


@pytest.mark.slow
def test_relaxation_lowers_energy_and_freezes_a_layer(cluster, tmp_path):
    spec = CalcSpec(method="GFN1-xTB", task="relax", optimizer="FIRE", fmax=0.05, max_steps=200,
                    settings={"freeze": {"layer": [0]}})
    start = run_calculation(cluster, CalcSpec(method="GFN1-xTB"))
    r = run_calculation(cluster, spec, tmp_path)
    assert r.converged and r.opt_steps > 0
    assert r.energy < start.energy - 0.1
    frozen = cluster.arrays["layer"] == 0
    assert np.array_equal(r.atoms.positions[frozen], cluster.positions[frozen])
    assert np.abs(r.atoms.positions[~frozen] - cluster.positions[~frozen]).max() > 0.01
    free_f = np.linalg.norm(r.forces[~frozen], axis=1)
    assert free_f.max() < 0.05
    assert np.array_equal(r.atoms.arrays["domain"], cluster.arrays["domain"])
    cp = json.loads((tmp_path / "checkpoint.json").read_text())
    assert cp["steps"] == r.opt_steps


@pytest.mark.parametrize("optimizer", ["LBFGS", "BFGS", "PreconLBFGS"])
def test_other_optimizers_lower_energy(cluster, optimizer):
    start = run_calculation(cluster, CalcSpec(method="GFN1-xTB")).energy
    r = run_calculation(cluster, CalcSpec(method="GFN1-xTB", task="relax", optimizer=optimizer, max_steps=8))
    assert r.opt_steps == 8 or r.converged
    assert r.energy < start


TESTS_DIR = str(Path(__file__).resolve().parents[1])

_CHILD = textwrap.dedent(
    """
    import sys
    from hetflow.calculators import CalcSpec, run_calculation
    sys.path.insert(0, sys.argv[2])
    from conftest import symmetric_cluster  # the `cluster` fixture's structure (tests/conftest.py)
    atoms = symmetric_cluster()
    spec = CalcSpec(method="GFN1-xTB", task="relax", optimizer="LBFGS", fmax=0.03, max_steps=300,
                    settings={"threads": 1})
    run_calculation(atoms, spec, sys.argv[1])
    """
)


def test_killed_relaxation_resumes_from_checkpoint(cluster, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), TESTS_DIR], start_new_session=True)
    cp = tmp_path / "checkpoint.json"
    deadline = time.time() + 120
    steps = 0
    while time.time() < deadline and proc.poll() is None:
        if cp.exists():
            steps = json.loads(cp.read_text())["steps"]
            if steps >= 4:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "relaxation finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole session: driver and its BLAS worker
    proc.wait()
    killed_at = json.loads(cp.read_text())
    assert killed_at["steps"] >= 4

    spec = CalcSpec(method="GFN1-xTB", task="relax", optimizer="LBFGS", fmax=0.03, max_steps=300,
                    settings={"threads": 1})
    r = run_calculation(cluster, spec, tmp_path)
    assert r.converged
    assert r.extra["resumed_from_step"] == killed_at["steps"]
    assert r.opt_steps > killed_at["steps"]
    assert r.energy <= killed_at["energy"] + 1e-6
    assert len(r.extra["trajectory"]) == 2  # one trajectory segment per start

    # starting it once more only confirms convergence
    again = run_calculation(cluster, spec, tmp_path)
    assert again.opt_steps == r.opt_steps and again.energy == pytest.approx(r.energy, abs=1e-6)


def test_checkpoint_of_another_structure_is_refused(cluster, cubic_cell, tmp_path):
    spec = CalcSpec(method="GFN1-xTB", task="relax", max_steps=1)
    run_calculation(cluster, spec, tmp_path)
    other = cluster.copy()
    other.positions[0] += 0.1
    with pytest.raises(CalculatorError, match="different relaxation"):
        run_calculation(other, spec, tmp_path)


def test_bad_freeze_settings(cluster):
    with pytest.raises(InputError, match="no per-atom array 'site'"):
        run_calculation(cluster, CalcSpec(task="relax", settings={"freeze": {"site": ["x"]}}))
    with pytest.raises(InputError, match="matches no atom"):
        run_calculation(cluster, CalcSpec(task="relax", settings={"freeze": {"domain": ["chalcohalide"]}}))
    with pytest.raises(InputError, match="unknown optimizer"):
        run_calculation(cluster, CalcSpec(task="relax", optimizer="SD"))


def test_relax_cell_shrinks_an_expanded_cell(cubic_cell, tmp_path):
    """Ions + cell of a tiny periodic cell (GFN1): the 3 % expanded cell contracts."""
    expanded = cubic_cell.copy()
    expanded.set_cell(cubic_cell.cell * 1.03, scale_atoms=True)
    spec = CalcSpec(method="GFN1-xTB", periodic=True, fmax=0.02, max_steps=60)
    start = run_calculation(expanded, spec)
    r = relax_cell(expanded, spec, tmp_path)
    assert r.energy < start.energy
    assert r.atoms.get_volume() < expanded.get_volume()
    assert r.opt_steps > 0 and (tmp_path / "checkpoint.json").exists()
    assert abs(np.asarray(r.extra["stress"])).max() < abs(np.asarray(start.extra["stress"])).max()
