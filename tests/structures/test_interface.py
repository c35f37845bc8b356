"""Heterostructure builder: neutrality, distances, labels, epitaxy, extxyz round trip."""

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from hetflow.errors import InputError
from hetflow.structures.charge import formal_charge
from hetflow.structures.interface import (
    MIN_DISTANCE,
    build_heterostructure,
    build_slab,
    epitaxial_match,
    lattice_mismatch,
)
from hetflow.structures.io import read_structure, write_structure


@pytest.fixture(scope="module")
def hs():
    return build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 3), partner_cells=2)


def test_neutral_and_no_short_contacts(hs):
    assert formal_charge(hs) == 0
    i, j, d = neighbor_list("ijd", hs, MIN_DISTANCE)
    assert len(d) == 0


def test_perovskite_domain_counts_are_exact(hs):
    pv = hs[hs.arrays["domain"] == "perovskite"]
    s = np.array(pv.get_chemical_symbols())
    n1, n2, n3 = 2, 2, 3
    assert (s == "Pb").sum() == n1 * n2 * n3
    assert (s == "Cl").sum() == 3 * n1 * n2 * n3 + n1 * n2 + n2 * n3 + n1 * n3
    assert (s == "Cs").sum() == (n1 + 1) * (n2 + 1) * (n3 + 1) - (n1 + n2 + n3 + 1)
    # each domain is neutral on its own
    assert formal_charge(pv) == 0
    assert formal_charge(hs[hs.arrays["domain"] == "chalcohalide"]) == 0


def test_interfacial_layer_is_complete_csx(hs):
    lay, s = hs.arrays["layer"], np.array(hs.get_chemical_symbols())
    # the shared layer keeps all (n1+1)(n2+1) Cs: surface Cs were removed away from the interface
    assert (s[lay == 0] == "Cs").sum() == 9
    assert set(hs.arrays["domain"][lay == 0]) == {"perovskite"}


def test_layer_labels(hs):
    lay = hs.arrays["layer"]
    dom = hs.arrays["domain"]
    role = hs.arrays["role"]
    s = np.array(hs.get_chemical_symbols())
    assert set(lay[dom == "perovskite"]) == set(range(0, 7))
    assert (lay[dom == "chalcohalide"] < 0).all()
    assert hs.info["perovskite_layers"] == 6
    # perovskite planes alternate CsX (even) / PbX2 (odd)
    for k in range(7):
        assert set(s[lay == k]) == ({"Cs", "Cl"} if k % 2 == 0 else {"Pb", "Cl"})
    # every halide of a layer lies in one plane normal to the stacking axis within 0.5 Å
    for k in np.unique(lay):
        z = hs.positions[(lay == k) & (role == "X"), 2]
        if len(z):
            assert np.ptp(z) < 0.5
    # layers are ordered along z: perovskite above, chalcohalide below
    zmean = {k: hs.positions[lay == k, 2].mean() for k in np.unique(lay)}
    ks = sorted(zmean)
    assert all(zmean[a] < zmean[b] for a, b in zip(ks, ks[1:]))
    assert set(role[s == "Cs"]) == {"A"} and set(role[s == "S"]) == {"S"}
    assert set(role[(s == "Pb") & (dom == "perovskite")]) == {"B"}
    assert set(role[(s == "Pb") & (dom == "chalcohalide")]) == {"M"}


def test_cation_sublattice_continues_across_interface(hs):
    """Interfacial halides bind chalcohalide Pb; interfacial Cs sit over the chalcohalide
    cation sheet, not on top of a cation."""
    lay, s = hs.arrays["layer"], np.array(hs.get_chemical_symbols())
    i, j, d = neighbor_list("ijd", hs, 3.5)
    x0 = (lay[i] == 0) & (s[i] == "Cl") & (lay[j] < 0) & (s[j] == "Pb")
    assert x0.sum() >= 4
    assert d[x0].min() > 2.6
    cc = (lay[i] == 0) & (s[i] == "Cs") & (lay[j] < 0) & (s[j] == "Pb")
    if cc.any():
        assert d[cc].min() > 3.3


def test_extxyz_round_trip_keeps_labels(hs, tmp_path):
    path = write_structure(hs, tmp_path / "hs.extxyz")
    back = read_structure(path)
    for name in ("domain", "layer", "role"):
        assert np.array_equal(back.arrays[name], hs.arrays[name])
    assert back.info["perovskite_layers"] == 6
    assert back.info["registry"]["gap"] == pytest.approx(hs.info["registry"]["gap"])
    assert np.allclose(back.positions, hs.positions)


def test_bromide_pair_and_other_sizes():
    hs = build_heterostructure("CsPbBr3", "Pb4S3Br2", size=(3, 2, 3), partner_cells=1)
    assert formal_charge(hs) == 0
    assert hs.info["halide"] == "Br"
    assert "Cl" not in hs.get_chemical_symbols()
    i, j, d = neighbor_list("ijd", hs, MIN_DISTANCE)
    assert len(d) == 0


def test_slab_is_periodic_neutral_and_labelled(tmp_path):
    slab = build_slab("CsPbCl3", "Pb4S3Cl2", inplane=(2, 1), perovskite_cells=3, partner_cells=2, vacuum=12)
    assert list(slab.pbc) == [True, True, False]
    assert formal_charge(slab) == 0
    i, j, d = neighbor_list("ijd", slab, MIN_DISTANCE)
    assert len(d) == 0
    s = np.array(slab.get_chemical_symbols())
    # per a×c partner cell: perovskite 2 columns × (4 CsX + 3 PbX2 planes); partner Pb16S12Cl8 per 2 b/2 blocks
    assert (s == "Cs").sum() == 2 * 2 * 4
    assert (s == "S").sum() == 2 * 12
    # in-plane cell = √2 × perovskite spacing per partner cell
    assert slab.cell.lengths()[0] == pytest.approx(2 * np.sqrt(2) * 5.605)
    # vacuum: atoms at least 12 Å from the cell's z faces
    assert slab.positions[:, 2].min() >= 12 - 1e-6
    assert slab.cell.lengths()[2] - slab.positions[:, 2].max() >= 12 - 1e-6
    write_structure(slab, tmp_path / "slab.cif")
    assert (tmp_path / "slab.cif").stat().st_size > 0


def test_epitaxial_match_report():
    m = epitaxial_match("CsPbCl3", "Pb4S3Cl2")
    assert m.mismatch_percent == pytest.approx(lattice_mismatch(5.605, 5.73))
    assert m.mismatch_percent == pytest.approx(-2.230, abs=1e-3)
    assert m.zsl, "ZSL found no match"
    z = m.zsl[0]
    # smallest match: the √2 × √2 perovskite cell on one a × c partner cell (2 a_p² ≈ 62.8 Å²)
    assert z["match_area"] == pytest.approx(2 * 5.605**2, rel=1e-3)
    assert abs(z["strain_u"]) < 3 and abs(z["strain_v"]) < 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(size=(2, 2, 2)), "too few layers"),
        (dict(size=(0, 2, 3)), "size must be positive"),
        (dict(partner_cells=0), "partner_cells"),
        (dict(perovskite="Pb4S3Cl2"), "not a perovskite"),
        (dict(partner="CsPbBr3"), "not a Pb–S–halide chalcohalide"),
        (dict(perovskite="CsPbF9"), "unknown phase"),
        (dict(strain_to="substrate"), "strain_to"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(InputError, match=message):
        build_heterostructure(**kwargs)
