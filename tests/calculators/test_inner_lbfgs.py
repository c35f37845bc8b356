"""The inner L-BFGS of guided relaxations: ASE's LBFGS step for step unscaled, fewer evaluations
γ-scaled, the exact minimum of a quadratic surface, the reach, known start forces, frozen atoms."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.lj import LennardJones
from ase.cluster import Icosahedron
from ase.optimize import LBFGS

from hetflow.calculators.inner_lbfgs import InnerLBFGS


def _quadratic(n: int = 6, seed: int = 0):
    """F(x) = −K (x − x*) + tilt, K positive definite with eigenvalues 0.5–50 eV/Å² (3n × 3n)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3 * n, 3 * n)))
    k = q @ np.diag(np.geomspace(0.5, 50.0, 3 * n)) @ q.T
    xstar = rng.normal(size=(n, 3))
    return k, xstar, (lambda x, tilt=0.0: -(k @ (x - xstar).ravel()).reshape(n, 3) + tilt)


def test_unscaled_it_is_ases_lbfgs():
    atoms = Icosahedron("Ar", noshells=2)
    atoms.rattle(0.1, seed=1)
    atoms.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=10.0)
    x0 = atoms.positions.copy()
    LBFGS(atoms, logfile=None, maxstep=0.2).run(fmax=1e-4, steps=12)
    probe = atoms.copy()
    probe.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=10.0)

    def forces(x):
        probe.positions = x
        return probe.get_forces()

    x, calls = InnerLBFGS(memory=100, maxstep=0.2, scaled=False).minimise(
        forces, x0, np.ones(len(x0), bool), fmax=1e-4, steps=12, reach=10.0)
    np.testing.assert_allclose(x, atoms.positions, atol=1e-9)
    assert calls == 13  # the start and 12 steps


@pytest.mark.parametrize("seed", [0, 1])
def test_scaled_reaches_the_same_minimum_in_fewer_calls(seed):
    k, xstar, field = _quadratic(seed=seed)
    n = len(xstar)
    tilt = np.random.default_rng(5).normal(scale=0.3, size=(n, 3))
    expect = xstar + np.linalg.solve(k, tilt.ravel()).reshape(n, 3)  # the tilted surface's minimum
    free = np.ones(n, bool)
    runs = {scaled: InnerLBFGS(scaled=scaled).minimise(lambda x: field(x, tilt), np.zeros((n, 3)), free,
                                                       fmax=1e-3, steps=500, reach=100.0)
            for scaled in (False, True)}
    for x, _ in runs.values():
        np.testing.assert_allclose(x, expect, atol=1e-3)
    assert runs[True][1] < 0.7 * runs[False][1]  # measured 37 against 78, 43 against 82


def test_reach_known_start_forces_and_frozen_atoms():
    _, xstar, field = _quadratic(seed=2)
    n = len(xstar)
    x0 = np.zeros((n, 3))
    free = np.ones(n, bool)
    free[0] = False
    opt = InnerLBFGS(memory=10, maxstep=0.1)
    x, calls = opt.minimise(field, x0, free, fmax=1e-3, steps=500, reach=0.35)
    assert 0.25 < np.sqrt(((x - x0) ** 2).sum(axis=1)).max() <= 0.35  # stopped at the reach
    assert np.all(x[0] == x0[0])  # a frozen atom does not move
    x2, calls2 = opt.minimise(field, x0, free, fmax=1e-3, steps=500, reach=0.35, f0=field(x0))
    np.testing.assert_allclose(x2, x, atol=1e-12)
    assert calls2 == calls - 1  # the start's forces were given
    with pytest.raises(ValueError, match="memory"):
        InnerLBFGS(memory=0)
