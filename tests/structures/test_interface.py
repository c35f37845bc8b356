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


def test_perovskite_domain_is_the_reference_nc_face_by_face(hs):
    """Same termination rule for the heterostructure's perovskite and the standalone NC: the
    same Cs vacancies, so every face (the interface and the bottom included) keeps the same Cs."""
    from hetflow.structures.nanocrystal import cut_nanocrystal
    from hetflow.structures.termination import cs_faces

    ref = cut_nanocrystal("CsPbCl3", (2, 2, 3))
    pv = hs[hs.arrays["domain"] == "perovskite"]
    _, f_hs = cs_faces(pv)
    _, f_ref = cs_faces(ref)
    assert f_hs.sum(axis=0).tolist() == f_ref.sum(axis=0).tolist()
    assert hs.info["termination"]["faces"] == ref.info["termination"]["faces"]
    # the outer face ("bottom", layer L) and the interfacial layer 0 keep ≥ 75 % of their Cs
    lay, s = hs.arrays["layer"], np.array(hs.get_chemical_symbols())
    L = hs.info["perovskite_layers"]
    for k in (0, L):
        assert (s[(lay == k) & (hs.arrays["domain"] == "perovskite")] == "Cs").sum() >= 0.75 * 9


def _top_sheet(atoms):
    s = np.array(atoms.get_chemical_symbols())
    m = (atoms.arrays["domain"] == "chalcohalide") & (s == "Pb")
    z = atoms.positions[:, 2]
    return np.flatnonzero(m & (z > z[m].max() - 0.3))


def test_cation_subnetwork_continues_across_the_interface(hs):
    """Toso et al.'s epitaxy: the chalcohalide's top Pb stand on the perovskite's cation columns,
    take the terminal layer's halide as a ligand (≥ 5 anions within 3.4 Å) and keep ≥ 4.0 Å
    from every Cs (Cs–Pb in CsPbCl3: 4.85 Å)."""
    s = np.array(hs.get_chemical_symbols())
    i, j, d = neighbor_list("ijd", hs, 4.0)
    assert not ((s[i] == "Cs") & (s[j] == "Pb")).any()
    top = _top_sheet(hs)
    assert len(top) == 4  # one under each of the 2 × 2 perovskite Pb columns
    i, j, d = neighbor_list("ijd", hs, 3.4)
    anion = np.isin(s, ["Cl", "S"])
    for k in top:
        assert np.sum((i == k) & anion[j]) >= 5
        # one of them is a halide of the terminal CsX layer (layer 0), the apical ligand
        assert np.any((i == k) & (hs.arrays["layer"][j] == 0))
    # in-plane offset from the nearest perovskite cation column (Pb columns at integer multiples
    # of the spacing from the NC's corner Pb column, Cs columns at the half-integers)
    pv_pb = hs.positions[(s == "Pb") & (hs.arrays["domain"] == "perovskite")]
    cs = hs.positions[(s == "Cs")]
    columns = np.vstack([pv_pb[:, :2], cs[:, :2]])
    for k in top:
        assert np.min(np.linalg.norm(columns - hs.positions[k, :2], axis=1)) <= 0.5


def test_chalcohalide_covers_the_perovskite_footprint(hs):
    dom = hs.arrays["domain"]
    pv, ch = hs.positions[dom == "perovskite"], hs.positions[dom == "chalcohalide"]
    assert (ch[:, :2].min(axis=0) <= pv[:, :2].min(axis=0) + 0.3).all()
    assert (ch[:, :2].max(axis=0) >= pv[:, :2].max(axis=0) - 0.3).all()
    # two b/2 blocks: ≈ 2 × 7.3 Å of chalcohalide below the interface
    assert np.ptp(ch[:, 2]) > 12.0
    assert hs.info["counts"]["chalcohalide"]["S"] > 0


def test_registry_is_recorded_and_reproducible(hs):
    reg = hs.info["registry"]
    assert reg["scorer"] == "continuity"
    assert len(reg["candidates"]) >= 5
    assert reg["column_offset_max"] <= 0.5
    again = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 3), partner_cells=2,
                                  registry={k: reg[k] for k in ("orientation", "shift_frac", "gap")})
    assert np.allclose(again.positions, hs.positions)
    with pytest.raises(InputError, match="registry must give"):
        build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 3), registry={"gap": 2.7})


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
