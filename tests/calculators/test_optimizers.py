"""Optimisers (FIRE, LBFGS, BFGS, PreconLBFGS, Sella in Cartesian), exact force-call counts, the
meaning of ``converged`` — on CHGNet (in-process, fast) and tblite GFN1."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hetflow.calculators.relax as relax_mod
from hetflow.calculators import CalcSpec, run_calculation
from hetflow.calculators.relax import OPTIMIZERS, relax
from hetflow.errors import InputError

pytest.importorskip("torch")


class CountingEngine:
    """Wraps a real engine and counts its ``compute`` calls (independently of relax.py's counter)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0
        self.threads = getattr(inner, "threads", None)

    def compute(self, atoms):
        self.calls += 1
        return self.inner.compute(atoms)


@pytest.fixture
def counted(monkeypatch):
    engines: list[CountingEngine] = []
    real = relax_mod.make_engine

    def make(spec):
        engines.append(CountingEngine(real(spec)))
        return engines[-1]

    monkeypatch.setattr(relax_mod, "make_engine", make)
    return engines


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_converges_and_counts_force_calls_exactly(tiny_nc, optimizer, counted):
    start = run_calculation(tiny_nc, CalcSpec(backend="chgnet")).energy
    counted.clear()
    r = run_calculation(tiny_nc, CalcSpec(backend="chgnet", task="relax", optimizer=optimizer, fmax=0.05,
                                          max_steps=300))
    assert len(counted) == 1
    assert r.force_calls == counted[0].calls == r.extra["force_calls"]
    assert r.force_calls >= r.opt_steps + 1  # the start point is evaluated too
    assert r.converged and r.extra["fmax_reached"] < 0.05
    assert r.energy < start - 2.0  # measured: start −36.96 eV, minima −39.09 eV (all five)
    assert r.extra["optimizer"] == optimizer


def test_tblite_force_calls_counted(tiny_nc, counted):
    """In-process tblite (bundled BLAS) so the counting wrapper sees the engine."""
    spec = CalcSpec(method="GFN1-xTB", task="relax", optimizer="PreconLBFGS", fmax=0.05, max_steps=200,
                    settings={"blas": "bundled"})
    r = relax(tiny_nc, spec)
    assert r.converged and r.force_calls == counted[0].calls >= r.opt_steps + 1


def test_converged_means_fmax_on_the_constrained_forces(cluster, tmp_path):
    spec = CalcSpec(backend="chgnet", task="relax", optimizer="FIRE", fmax=0.05, max_steps=3,
                    settings={"freeze": {"layer": [0]}})
    short = run_calculation(cluster, spec)
    assert not short.converged and short.extra["fmax_reached"] > 0.05 and short.opt_steps == 3
    full = run_calculation(cluster, spec.replace(max_steps=400), tmp_path)
    free = cluster.arrays["layer"] != 0
    assert full.converged
    assert np.linalg.norm(full.forces[free], axis=1).max() == pytest.approx(full.extra["fmax_reached"])
    assert full.extra["fmax_reached"] < 0.05
    assert np.array_equal(full.atoms.positions[~free], cluster.positions[~free])
    assert np.linalg.norm(full.forces[~free], axis=1).max() > 0.05  # frozen atoms do not count
    cp = json.loads((tmp_path / "checkpoint.json").read_text())
    assert cp["converged"] and cp["force_calls"] == full.force_calls


def test_force_calls_add_up_over_restarts(cluster, tmp_path, counted):
    spec = CalcSpec(backend="chgnet", task="relax", optimizer="LBFGS", fmax=0.05, max_steps=6)
    first = run_calculation(cluster, spec, tmp_path)
    assert not first.converged and first.opt_steps == 6 and first.force_calls == counted[0].calls == 7
    second = run_calculation(cluster, spec.replace(max_steps=300), tmp_path)
    assert second.converged and second.extra["resumed_from_step"] == 6
    assert second.force_calls == counted[0].calls + counted[1].calls
    third = run_calculation(cluster, spec.replace(max_steps=300), tmp_path)  # converged: not stepped again
    assert counted[2].calls == 1 and third.opt_steps == second.opt_steps
    assert third.force_calls == second.force_calls + 1
    assert third.energy == pytest.approx(second.energy, abs=1e-6)
    tighter = run_calculation(cluster, spec.replace(max_steps=300, fmax=0.01), tmp_path)  # goes on stepping
    assert tighter.converged and tighter.extra["fmax_reached"] < 0.01 and tighter.opt_steps > third.opt_steps


def test_optimizer_kwargs_and_refusals(tiny_nc):
    r = run_calculation(tiny_nc, CalcSpec(backend="chgnet", task="relax", optimizer="FIRE", max_steps=2,
                                          settings={"optimizer_kwargs": {"maxstep": 0.05}}))
    assert np.abs(r.atoms.positions - tiny_nc.positions).max() <= 2 * 0.05 + 1e-9
    with pytest.raises(InputError, match=r"^Sella with internal=True is not supported: internal-coordinate "
                                         r"optimisers exhaust memory"):
        run_calculation(tiny_nc, CalcSpec(backend="chgnet", task="relax", optimizer="Sella",
                                          settings={"optimizer_kwargs": {"internal": True}}))
    with pytest.raises(InputError, match="Sella order must be 0"):
        run_calculation(tiny_nc, CalcSpec(backend="chgnet", task="relax", optimizer="Sella",
                                          settings={"optimizer_kwargs": {"order": 1}}))
    with pytest.raises(InputError, match="does not accept optimizer_kwargs"):
        run_calculation(tiny_nc, CalcSpec(backend="chgnet", task="relax", optimizer="FIRE",
                                          settings={"optimizer_kwargs": {"nonsense": 1}}))
    with pytest.raises(InputError, match="may not set trajectory"):
        run_calculation(tiny_nc, CalcSpec(backend="chgnet", task="relax",
                                          settings={"optimizer_kwargs": {"trajectory": "x.traj"}}))
    with pytest.raises(InputError, match="unknown optimizer 'SD'"):
        run_calculation(tiny_nc, CalcSpec(backend="chgnet", task="relax", optimizer="SD"))


def test_sella_internal_refused_for_xtb_too(tiny_nc):
    with pytest.raises(InputError, match="Sella with internal=True is not supported"):
        run_calculation(tiny_nc, CalcSpec(task="relax", optimizer="Sella",
                                          settings={"optimizer_kwargs": {"internal": True}}))


def test_precon_exp_works_on_a_cluster_without_cell(cluster):
    """ASE's Exp preconditioner derives its neighbour distance from the cell and raises "increased
    r_cut to twice system extent" on a cell-less cluster; hetflow gives it the geometry's shortest
    distance, so PreconLBFGS with a real preconditioner relaxes finite models."""
    assert not cluster.cell.any() and not any(cluster.pbc)
    spec = CalcSpec(backend="chgnet", task="relax", optimizer="PreconLBFGS", fmax=0.05, max_steps=300,
                    settings={"optimizer_kwargs": {"precon": "Exp"}})
    start = run_calculation(cluster, CalcSpec(backend="chgnet")).energy
    r = run_calculation(cluster, spec)
    assert r.converged and r.extra["fmax_reached"] < 0.05 and r.energy < start
    # the helper itself: a periodic cell or an explicit object is left alone, a cluster gets Exp(r_NN)
    from ase.optimize.precon import Exp

    kw = relax_mod._finite_precon(cluster, {"precon": "Exp"})
    d = np.linalg.norm(cluster.positions[:, None] - cluster.positions[None], axis=-1)
    assert isinstance(kw["precon"], Exp) and kw["precon"].r_NN == pytest.approx(d[d > 0].min())
    periodic = cluster.copy()
    periodic.cell, periodic.pbc = [30, 30, 30], True
    assert relax_mod._finite_precon(periodic, {"precon": "Exp"}) == {"precon": "Exp"}
