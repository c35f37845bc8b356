"""CHGNet and SevenNet 7net-0 as real calculators on tiny clusters (weights from the wheels, no network)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hetflow.calculators import CalcSpec, run_calculation
from hetflow.errors import InputError

pytest.importorskip("torch")

BACKENDS = ["chgnet", "sevennet"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_energy_and_forces_match_finite_differences(tiny_nc, backend):
    r = run_calculation(tiny_nc, CalcSpec(backend=backend))
    assert np.isfinite(r.energy) and -60 < r.energy < -20  # ≈ −3…−4 eV per atom for a halide
    assert r.forces.shape == (len(tiny_nc), 3) and np.isfinite(r.forces).all()
    assert r.force_calls == 1 and r.converged
    assert r.versions["model"] == r.spec.method and "torch" in r.versions
    assert np.array_equal(r.atoms.arrays["domain"], tiny_nc.arrays["domain"])
    i = int(np.argmax(np.linalg.norm(r.forces, axis=1)))
    assert np.linalg.norm(r.forces[i]) > 0.3  # a real test: the atom is far from equilibrium
    h = 0.01
    fd = np.zeros(3)
    for k in range(3):
        plus, minus = tiny_nc.copy(), tiny_nc.copy()
        plus.positions[i, k] += h
        minus.positions[i, k] -= h
        e_p = run_calculation(plus, CalcSpec(backend=backend)).energy
        e_m = run_calculation(minus, CalcSpec(backend=backend)).energy
        fd[k] = -(e_p - e_m) / (2 * h)
    # float32 models: measured |F − FD| ≤ 3e-4 eV/Å at h = 0.01 Å
    assert np.abs(fd - r.forces[i]).max() < 5e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_energy_does_not_depend_on_the_box(tiny_nc, backend):
    """Vacuum 3.5 Å per side already separates images by 7 Å > cutoff (6 Å CHGNet, 5 Å 7net-0)."""
    ref = run_calculation(tiny_nc, CalcSpec(backend=backend, settings={"vacuum": 6.0}))
    for vac in (3.5, 12.0, 25.0):
        r = run_calculation(tiny_nc, CalcSpec(backend=backend, settings={"vacuum": vac}))
        assert r.energy == pytest.approx(ref.energy, abs=1e-6)
        assert np.abs(r.forces - ref.forces).max() < 1e-4
    shifted = tiny_nc.copy()
    shifted.positions += [100.0, -40.0, 7.0]  # the box follows the cluster
    assert run_calculation(shifted, CalcSpec(backend=backend)).energy == pytest.approx(ref.energy, abs=1e-5)
    with pytest.raises(InputError, match="so that periodic images"):
        run_calculation(tiny_nc, CalcSpec(backend=backend, settings={"vacuum": 2.0}))


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_relaxation_lowers_the_energy_and_converges(tiny_nc, backend, tmp_path):
    start = run_calculation(tiny_nc, CalcSpec(backend=backend))
    r = run_calculation(tiny_nc, CalcSpec(backend=backend, task="relax", optimizer="LBFGS", fmax=0.05,
                                          max_steps=200), tmp_path)
    assert r.converged and r.extra["fmax_reached"] < 0.05
    assert np.linalg.norm(r.forces, axis=1).max() == pytest.approx(r.extra["fmax_reached"])
    assert r.energy < start.energy - 0.5  # measured: −2.1 eV (CHGNet), −2.2 eV (7net-0)
    assert r.force_calls >= r.opt_steps + 1 > 1
    assert (tmp_path / "checkpoint.json").exists() and r.extra["trajectory"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_periodic_cell_stress_is_the_strain_derivative(cubic_cell, backend):
    """ASE convention (eV/Å³, Voigt): σ = (1/V) ∂E/∂ε; checked against a finite difference."""
    expanded = cubic_cell.copy()
    expanded.set_cell(cubic_cell.cell * 1.04, scale_atoms=True)
    spec = CalcSpec(backend=backend, periodic=True)
    r = run_calculation(expanded, spec)
    assert np.isfinite(r.energy) and len(r.extra["stress"]) == 6
    assert np.abs(r.forces).max() < 1e-3  # every atom of the cubic cell is on an inversion centre

    def energy(eps: float) -> float:
        a = expanded.copy()
        a.set_cell(expanded.cell * (1 + eps), scale_atoms=True)
        return run_calculation(a, spec).energy

    h = 1e-3
    sigma_fd = (energy(h) - energy(-h)) / (2 * h) / expanded.get_volume() / 3
    assert sigma_fd > 1e-3  # the expanded cell pulls inwards
    assert np.mean(r.extra["stress"][:3]) == pytest.approx(sigma_fd, rel=0.05)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cell_relaxation_contracts_an_expanded_cell(cubic_cell, backend, tmp_path):
    """Ions + cell (``relax_cell``, the bulk relaxations of ``reproduce zif --level mlip``): a cubic
    CsPbCl3 cell expanded by 4 % shrinks back, to a cell the potential's stress no longer pushes."""
    from hetflow.calculators.relax import relax_cell

    expanded = cubic_cell.copy()
    expanded.set_cell(cubic_cell.cell * 1.04, scale_atoms=True)
    spec = CalcSpec(backend=backend, periodic=True, task="relax", fmax=0.01, max_steps=200,
                    settings={"cell_filter": True})
    r = relax_cell(expanded, spec, tmp_path)
    assert r.converged and r.atoms.get_volume() < 0.98 * expanded.get_volume()
    assert 5.5 < r.atoms.get_volume() ** (1 / 3) < 5.8  # a PBE-like CsPbCl3 lattice (5.605 Å measured)
    assert np.abs(r.extra["stress"]).max() * r.atoms.get_volume() / len(r.atoms) < 0.05


def test_what_the_models_cannot_do_is_one_line_errors(tiny_nc):
    with pytest.raises(InputError, match=r"chgnet cannot model charged systems \(charge=1\)"):
        CalcSpec(backend="chgnet", charge=1)
    with pytest.raises(InputError, match=r"sevennet cannot model spin \(multiplicity=3\)"):
        CalcSpec(backend="sevennet", multiplicity=3)
    with pytest.raises(InputError, match="has no molecular orbitals"):
        CalcSpec(backend="chgnet", want_mo=True)
    with pytest.raises(InputError, match="unknown method 'GFN1-xTB' for backend 'chgnet'"):
        CalcSpec(backend="chgnet", method="GFN1-xTB")
    with pytest.raises(InputError, match="unknown chgnet setting"):
        run_calculation(tiny_nc, CalcSpec(backend="chgnet", settings={"accuracy": 0.1}))
    bad = tiny_nc.copy()
    bad.numbers[0] = 99  # Es
    with pytest.raises(InputError, match="no parameters for element"):
        run_calculation(bad, CalcSpec(backend="chgnet"))
    assert CalcSpec(backend="sevennet", method="SevenNet-0").method == "7net-0"
    assert CalcSpec(backend="chgnet", method="chgnet").method == "CHGNet-0.3.0"


def test_threads_setting_reaches_torch(tiny_nc):
    import torch

    before = torch.get_num_threads()
    try:
        r = run_calculation(tiny_nc, CalcSpec(backend="chgnet", settings={"threads": 1}))
        assert r.extra["threads"] == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


_OFFLINE = textwrap.dedent(
    """
    import sys
    from hetflow.calculators import CalcSpec, run_calculation
    from hetflow.structures.nanocrystal import cut_nanocrystal
    nc = cut_nanocrystal("CsPbCl3", size=(1, 1, 1), charge=0)
    r = run_calculation(nc, CalcSpec(method="GFN1-xTB", settings={"blas": "bundled"}))
    assert "torch" not in sys.modules, "a tblite calculation imported torch"
    for b in ("chgnet", "sevennet"):
        print(b, run_calculation(nc, CalcSpec(backend=b)).energy)
    """
)


def test_models_load_without_network_and_torch_stays_out_of_xtb_runs(tmp_path):
    """In a fresh process with no network namespace access (``unshare -n``, when allowed)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HOME=str(tmp_path), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-c", _OFFLINE]
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        cmd = [unshare, "-n"] + cmd
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split() for line in out.stdout.splitlines() if line.startswith(("chgnet", "sevennet")))
    assert set(lines) == {"chgnet", "sevennet"} and all(np.isfinite(float(v)) for v in lines.values())


# --------------------------------------------------------------------------- the catalogue


@pytest.mark.parametrize("name", ["CHGNet-0.3.0", "CHGNet-0.2.0", "CHGNet-r2SCAN", "7net-0", "7net-l3i5", "7net-MF-0"])
def test_every_offline_model_of_the_wheels_runs(tiny_nc, name):
    """Each model of the catalogue loads from its wheel (no network) and gives finite energies
    and forces that are not another model's."""
    from hetflow.calculators.mlip_models import model

    m = model(name)
    r = run_calculation(tiny_nc, CalcSpec(backend=m.backend, method=name))
    assert r.spec.method == name and r.versions["model"] == name
    assert np.isfinite(r.energy) and np.isfinite(r.forces).all() and r.forces.shape == (len(tiny_nc), 3)
    # ≈ −3…−4 eV per atom (the r²SCAN models have their own, much lower, reference energies)
    assert (-60 < r.energy < -20) if "r2SCAN" not in name else r.energy < -60
    if m.head:
        assert r.versions["checkpoint"].endswith(f"({m.head} head)")
    if name != "CHGNet-0.3.0":
        other = run_calculation(tiny_nc, CalcSpec(backend="chgnet"))
        assert abs(other.energy - r.energy) > 1e-3


def test_model_names_resolve_and_unknown_names_are_refused():
    from hetflow.calculators.mlip_models import choices, resolve
    from hetflow.recipes.common import RecipeOptions

    assert resolve("chgnet").name == "CHGNet-0.3.0" and resolve("SevenNet").name == "7net-0"
    assert resolve("7net-mf-0").head == "PBE" and resolve("chgnet-r2scan").name == "CHGNet-r2SCAN"
    assert {"chgnet", "sevennet", "7net-l3i5", "7net-mf-0", "chgnet-0.2.0", "chgnet-r2scan"} <= set(choices())
    assert CalcSpec(backend="sevennet", method="7net-l3i5").method == "7net-l3i5"
    with pytest.raises(InputError, match="unknown machine-learned potential 'mace'"):
        RecipeOptions(level="mlip", mlip="mace")
    with pytest.raises(InputError, match="unknown method '7net-omat' for backend 'sevennet'"):
        CalcSpec(backend="sevennet", method="7net-omat")
