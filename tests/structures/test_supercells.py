"""Supercells for Γ-point convergence and symmetry-lowering starts."""

import numpy as np
import pytest

from hetflow.errors import InputError
from hetflow.structures.phases import get_phase
from hetflow.structures.supercells import (
    FCC,
    build_supercell,
    min_image_distance,
    perturb,
    primitive_equivalent_cell,
    supercell_matrices,
    supercell_series,
)

A = 6.2894  # α-CsPbI3


def test_image_distance_of_cubic_shapes():
    cell = np.eye(3) * A
    assert min_image_distance(cell) == pytest.approx(A)
    assert min_image_distance(2 * FCC @ cell) == pytest.approx(2 * np.sqrt(2) * A)  # fcc: a·n·√2
    # a skewed but equivalent basis gives the same shortest vector
    skew = np.array([[1, 0, 0], [5, 1, 0], [-3, 7, 1]]) @ cell
    assert min_image_distance(skew) == pytest.approx(A)


def test_series_grows_and_is_cheapest():
    a = get_phase("CsPbI3-alpha")
    s = supercell_series(a, 10.0, 4.0, 700)
    d = [c.image_distance for c in s]
    n = [c.n_cells for c in s]
    assert d == sorted(d) and n == sorted(n) and len(set(n)) == len(n)
    assert all(x >= 10.0 + 4.0 * i - 1e-6 for i, x in enumerate(d))  # targets 10, 14, 18, … Å
    assert n[-1] * len(a) <= 700
    # each entry is the cheapest supercell reaching its image distance
    cands = supercell_matrices(a, 700 // len(a))
    for c in s:
        assert min(x.n_cells for x in cands if x.image_distance >= c.image_distance - 1e-9) == c.n_cells
    # fcc-shaped supercells beat diagonal ones for a cubic cell: fcc·2 (16 cells) is 17.8 Å
    fcc = supercell_series(a, 17.0, 4.0, 700, shapes=("fcc",))
    assert fcc[0].label == "fcc·2" and fcc[0].n_cells == 16


def test_build_supercell_and_primitive_cell():
    a = get_phase("CsPbI3-delta")
    ch = supercell_series(a, 12.0, 4.0, 400)[0]
    sc = build_supercell(a, ch)
    assert len(sc) == len(a) * ch.n_cells
    assert sc.info["supercell_label"] == ch.label
    assert np.allclose(primitive_equivalent_cell(sc.cell, ch.M), a.cell, atol=1e-8)


def test_perturb_is_seeded_and_breaks_symmetry():
    a = build_supercell(get_phase("CsPbI3-alpha"), 2 * FCC)
    p1, p2, p3 = perturb(a, 0.1, 0.01, seed=1), perturb(a, 0.1, 0.01, seed=1), perturb(a, 0.1, 0.01, seed=2)
    assert np.allclose(p1.positions, p2.positions) and not np.allclose(p1.positions, p3.positions)
    frac = p1.get_scaled_positions(wrap=False) - a.get_scaled_positions(wrap=False)
    rms = np.sqrt(np.mean((frac @ np.asarray(p1.cell)) ** 2))
    assert 0.05 < rms < 0.2
    assert not np.allclose(p1.cell, a.cell)
    with pytest.raises(InputError):
        perturb(a, -1.0)


def test_bad_inputs():
    from ase import Atoms

    with pytest.raises(InputError, match="3D cell"):
        supercell_matrices(Atoms("H"))
    with pytest.raises(InputError, match="cubic"):
        supercell_matrices(get_phase("CsPbI3-delta"), shapes=("fcc",))
    with pytest.raises(InputError, match="start and step"):
        supercell_series(get_phase("PbI2"), 0.0, 4.0, 100)


def test_hermite_normal_forms_count_every_sublattice():
    from hetflow.structures.supercells import _hnf

    # number of sublattices of index n of a 3D lattice (OEIS A001001)
    assert [sum(1 for _ in _hnf(n)) for n in range(1, 9)] == [1, 7, 13, 35, 31, 91, 57, 155]
    # the best 4-cell supercell of the fcc·2 α cell is the 4×4×4 simple-cubic one (25.2 Å)
    from hetflow.structures.supercells import build_supercell as bs

    cell80 = bs(get_phase("CsPbI3-alpha"), 2 * FCC)
    best4 = [c for c in supercell_matrices(cell80, 8) if c.n_cells == 4]
    assert max(c.image_distance for c in best4) == pytest.approx(4 * A)
