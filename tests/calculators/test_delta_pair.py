"""The pairwise Δ-correction of guided relaxations (``hetflow.calculators.delta_pair``): its forces
are the gradient of its energy, it obeys Newton's third law, the ridge fit recovers a pair
potential exactly and explains the force difference between two Lennard-Jones surfaces whose bond
lengths differ — the shape of the CHGNet/GFN1 lattice mismatch."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.cluster import Icosahedron
from ase.optimize import BFGS

from hetflow.calculators.delta_pair import PairBasis, PairCorrection, PairFit, fit_pair_correction, pair_features
from hetflow.calculators.inner_lbfgs import InnerLBFGS


def _salt() -> Atoms:
    a = bulk("NaCl", "rocksalt", a=5.6, cubic=True).repeat(2)
    a.rattle(0.1, seed=1)
    return a


def _random_correction(atoms: Atoms, seed: int = 0) -> PairCorrection:
    basis = PairBasis()
    z = sorted(set(atoms.numbers))
    types = [(a, b) for k, a in enumerate(z) for b in z[k:]]
    return PairCorrection(basis, types, np.random.default_rng(seed).normal(size=len(types) * basis.n))


@pytest.mark.parametrize("periodic", [True, False])
def test_forces_are_minus_the_energy_gradient(periodic):
    a = _salt()
    if not periodic:
        a.pbc = False
    c = _random_correction(a)
    e0, f0 = c.energy_forces(a)
    assert np.isfinite(e0) and np.abs(f0).max() > 0.1
    h = 1e-5
    for i in (0, 7, 20):
        for ax in range(3):
            p, m = a.copy(), a.copy()
            p.positions[i, ax] += h
            m.positions[i, ax] -= h
            fd = -(c.energy_forces(p)[0] - c.energy_forces(m)[0]) / (2 * h)
            assert fd == pytest.approx(f0[i, ax], abs=1e-6)
    # translation invariance: a pair term's forces sum to zero
    np.testing.assert_allclose(f0.sum(axis=0), 0.0, atol=1e-10)


def test_energy_counts_each_pair_once():
    # two atoms at 3 Å, one weight on: E = φ_b(3 Å) exactly, not twice that
    basis = PairBasis(r_min=2.0, r_cut=6.0, n=5)
    a = Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 3.0]])
    w = np.zeros(basis.n)
    w[1] = 1.0  # centre at 3 Å
    e, _ = PairCorrection(basis, [(18, 18)], w).energy_forces(a)
    assert e == pytest.approx(float(basis.values(np.array([3.0]))[0][0, 1]))
    assert e == pytest.approx(0.5 * (np.cos(np.pi * 3 / 6) + 1))
    # beyond the cutoff nothing
    far = Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 6.5]])
    assert PairCorrection(basis, [(18, 18)], w).energy_forces(far)[0] == 0.0


def test_fit_recovers_a_pair_potential_and_predicts_unseen_frames():
    a = _salt()
    truth = _random_correction(a, seed=4)
    frames = []
    for seed in (1, 2):
        b = a.copy()
        b.rattle(0.08, seed=seed)
        frames.append(b)
    fit = fit_pair_correction(a, [b.positions for b in frames], [truth.energy_forces(b)[1] for b in frames], ridge=1e-10)
    assert fit.frames == 2
    assert fit.residual["rms_after"] < 1e-4 * fit.residual["rms_before"]
    unseen = a.copy()
    unseen.rattle(0.08, seed=9)
    np.testing.assert_allclose(fit.energy_forces(unseen)[1], truth.energy_forces(unseen)[1], atol=1e-4)


def test_lennard_jones_bond_length_mismatch_is_explained():
    """Target: LJ with σ = 3.3 Å; 'MLIP': σ = 3.45 Å (a 4.5 % longer bond, as CHGNet's CsPbCl3
    lattice is against GFN1's).  One frame of a rattled Ar icosahedron fits a correction that removes
    ≥ 90 % of the RMS force difference on another frame, and relaxing MLIP + correction lands next
    to the target's own minimum (nearest-neighbour distance within 0.02 Å)."""
    clus = Icosahedron("Ar", noshells=3)
    clus.rattle(0.05, seed=2)
    target, mlip = LennardJones(sigma=3.3, epsilon=0.0104, rc=7.0, smooth=True), LennardJones(sigma=3.45, epsilon=0.0104, rc=7.0, smooth=True)

    def forces(calc, atoms):
        b = atoms.copy()
        b.calc = calc
        return b.get_forces()

    frames = [clus.copy()]
    other = clus.copy()
    other.rattle(0.1, seed=5)
    fit = fit_pair_correction(clus, [frames[0].positions], [forces(target, frames[0]) - forces(mlip, frames[0])],
                              basis=PairBasis(r_min=2.5, r_cut=7.0, n=12), ridge=1e-6)
    diff = forces(target, other) - forces(mlip, other)
    left = diff - fit.energy_forces(other)[1]
    assert np.sqrt((left ** 2).mean()) < 0.1 * np.sqrt((diff ** 2).mean())

    def corrected(y):  # the surface a guided step walks: MLIP + the fitted pair term
        b = clus.copy()
        b.positions = y
        return forces(mlip, b) + fit.energy_forces(b)[1]

    def nn(atoms):
        d = atoms.get_all_distances()
        np.fill_diagonal(d, np.inf)
        return float(d.min(axis=1).mean())

    ref = clus.copy()
    ref.calc = target
    BFGS(ref, logfile=None).run(fmax=1e-4)
    sur = clus.copy()
    sur.positions, _ = InnerLBFGS().minimise(corrected, clus.positions, np.ones(len(clus), bool),
                                             fmax=1e-4, steps=5000, reach=100.0)
    assert np.abs(corrected(sur.positions)).max() < 1e-4  # relaxed on the corrected surface
    raw = clus.copy()
    raw.calc = mlip
    BFGS(raw, logfile=None).run(fmax=1e-4)
    assert abs(nn(sur) - nn(ref)) < 0.02 < abs(nn(raw) - nn(ref))


def test_ridge_and_unsampled_pairs():
    a = _salt()
    truth = _random_correction(a, seed=1)
    df = truth.energy_forces(a)[1]
    loose = fit_pair_correction(a, [a.positions], [df], ridge=1e-8)
    stiff = fit_pair_correction(a, [a.positions], [df], ridge=10.0)
    assert np.linalg.norm(stiff.weights) < np.linalg.norm(loose.weights)
    assert stiff.residual["rms_after"] > loose.residual["rms_after"]
    # a pair type absent from every frame keeps zero weight (no extrapolation to unseen chemistry)
    mixed = a.copy()
    mixed.symbols[0] = "K"
    fit = PairFit(mixed, basis=PairBasis(r_cut=3.0))
    fit.add(mixed.positions, np.ones((len(mixed), 3)))
    w = fit.solve().weights.reshape(len(fit.types), -1)
    assert (w[fit.types.index((19, 19))] == 0).all()
    # frozen atoms do not enter the fit
    frozen = PairFit(a, free=np.zeros(len(a), bool))
    frozen.add(a.positions, df)
    assert (frozen.solve().weights == 0).all()


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="r_min < r_cut"):
        PairBasis(r_min=5.0, r_cut=4.0)
    with pytest.raises(ValueError, match="one force difference per frame"):
        fit_pair_correction(_salt(), [], [])
    with pytest.raises(ValueError, match="ridge"):
        PairFit(_salt(), ridge=-1.0)
    e, f = pair_features(Atoms("Ar", positions=[[0, 0, 0]]), PairBasis(), [(18, 18)])
    assert e.shape == (9,) and f.shape == (1, 3, 9) and not e.any()
