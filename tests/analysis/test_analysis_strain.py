"""Pb–Pb strain on synthetic labelled lattices whose answer is known exactly."""

import numpy as np
import pytest
from ase import Atoms

from hetflow.analysis.strain import (
    b_site_indices, interfacial_layer, interfacial_strain, lattice_mismatch, layer_strains,
    match_b_sites, pair_strains, pb_pairs,
)
from hetflow.analysis.published import LATTICE, MISMATCH
from hetflow.errors import InputError, StructureError

A = 5.605


def perovskite_nc(n=(3, 3, 3), a=A, chalcohalide=True):
    """B sites on an n1×n2×n3 grid (z planes → layers +1, +3, … as in a heterostructure),
    A sites at cube centres, optional chalcohalide Pb (role M) below the interface."""
    sym, pos, role, dom, lay = [], [], [], [], []
    for i in range(n[0]):
        for j in range(n[1]):
            for k in range(n[2]):
                sym.append("Pb"); pos.append(np.array([i, j, k]) * a); role.append("B"); dom.append("perovskite")
                lay.append(2 * k + 1)
                sym.append("Cs"); pos.append((np.array([i, j, k]) + 0.5) * a); role.append("A"); dom.append("perovskite")
                lay.append(2 * k + 2)
    if chalcohalide:
        for i in range(n[0]):
            for j in range(n[1]):
                sym.append("Pb"); pos.append(np.array([i * a, j * a, -0.7 * a])); role.append("M")
                dom.append("chalcohalide"); lay.append(-1)
    at = Atoms(sym, positions=pos)
    at.set_array("role", np.array(role, dtype="<U2"))
    at.set_array("domain", np.array(dom, dtype="<U16"))
    at.set_array("layer", np.array(lay, dtype=int))
    return at


def standalone(n=(3, 3, 3), shuffle_seed=0, shift=(10.0, -3.0, 7.0)):
    ref = perovskite_nc(n, chalcohalide=False)
    rng = np.random.default_rng(shuffle_seed)
    ref = ref[rng.permutation(len(ref))]
    ref.positions += shift
    return ref


def test_pairs_are_nearest_neighbours_only():
    hs = perovskite_nc()
    pairs, d = pb_pairs(hs)
    # 3x3x3 simple cubic grid: 3 * 3*3*2 = 54 nearest-neighbour bonds, diagonals (1.41 a) excluded
    assert len(pairs) == 54
    assert np.allclose(d, A)
    roles = hs.arrays["role"][pairs.ravel()]
    assert set(roles) == {"B"}  # chalcohalide Pb (M) never enters
    assert len(pb_pairs(hs, cutoff_factor=1.5)[0]) == 54 + 3 * 3 * 2 * 2 * 2  # + face diagonals


def test_unstrained_is_zero_and_uniform_scaling_gives_the_scale():
    ref = standalone()
    hs = perovskite_nc()
    assert interfacial_strain(hs, ref) == pytest.approx(0.0, abs=1e-10)
    scaled = hs.copy()
    scaled.positions *= 1.02
    strains = pair_strains(scaled, ref)
    assert len(strains) == 54
    assert np.allclose([s.strain for s in strains], 2.0)
    assert interfacial_strain(scaled, ref) == pytest.approx(2.0)
    compressed = hs.copy()
    compressed.positions *= 0.97
    assert interfacial_strain(compressed, ref) == pytest.approx(3.0)  # mean |strain|
    assert np.allclose([s.strain for s in pair_strains(compressed, ref)], -3.0)


def test_strain_localised_in_the_interfacial_layer():
    ref = standalone()
    hs = perovskite_nc()
    sel = (hs.arrays["layer"] == 1) & (hs.arrays["role"] == "B")
    c = hs.positions[sel, :2].mean(axis=0)
    hs.positions[sel, :2] = c + (hs.positions[sel, :2] - c) * 1.03  # stretch only layer +1 in-plane
    assert interfacial_layer(hs) == 1
    per_layer = layer_strains(hs, ref)
    assert per_layer[1]["mean_abs"] == pytest.approx(3.0)
    assert per_layer[1]["n_pairs"] == 12
    assert per_layer[3]["mean_abs"] == pytest.approx(0.0, abs=1e-10)
    assert per_layer[5]["mean_abs"] == pytest.approx(0.0, abs=1e-10)
    assert interfacial_strain(hs, ref) == pytest.approx(3.0)
    # "touching" adds the 9 pairs from layer 1 to layer 3 (slightly stretched, < 3 %)
    touching = layer_strains(hs, ref, pairs="touching")[1]
    assert touching["n_pairs"] == 21
    assert 0 < touching["mean_abs"] < 3.0


def test_site_matching_by_position_and_by_order():
    hs = perovskite_nc()
    ref = standalone()
    m = match_b_sites(hs, ref)
    # matched sites sit at the same place up to the translation
    shift = ref.positions[list(m.values())] - hs.positions[list(m.keys())]
    assert np.allclose(shift, shift[0])
    ordered = perovskite_nc(chalcohalide=False)
    assert match_b_sites(hs, ordered, "order") == dict(zip(b_site_indices(hs).tolist(), b_site_indices(ordered).tolist()))
    with pytest.raises(InputError, match="has 27 perovskite Pb but the reference NC has 18"):
        match_b_sites(hs, standalone((3, 3, 2)))


def test_errors():
    hs = perovskite_nc()
    del hs.arrays["role"]
    with pytest.raises(StructureError, match="no per-atom 'role'"):
        pb_pairs(hs)
    narrow = perovskite_nc((1, 1, 3))
    with pytest.raises(InputError, match="no Pb–Pb pairs in layer 1"):
        interfacial_strain(narrow, standalone((1, 1, 3)))


def test_lattice_mismatch_on_published_numbers():
    assert lattice_mismatch(5.605, 5.73) == pytest.approx(-2.23, abs=0.005)
    # the paper's fully exchanged and partial mismatches from its measured lattice parameters
    assert lattice_mismatch(LATTICE["CsPbI3"], LATTICE["Pb4S3Cl2"]) == pytest.approx(MISMATCH["fully exchanged"], abs=0.05)
    assert lattice_mismatch(LATTICE["I:CsPbCl3"], LATTICE["Pb4S3Cl2"]) == pytest.approx(
        MISMATCH["perovskite–chalcohalide (partial)"], abs=0.05)
    with pytest.raises(InputError, match="must be > 0"):
        lattice_mismatch(0.0, 5.7)
