"""The relaxed junction as pure geometry: probe slab, displacement table, builders applying it.

The relaxers here are fakes named as such (deterministic displacement fields, no calculator):
these tests check the orchestration — which atoms are free, how a relaxed probe becomes a
per-site table, and that the builders move exactly the junction atoms by it.  The real GFN1-xTB
junction relaxation is tested in tests/workflows/test_wf_registry.py.
"""

import numpy as np
import pytest

from hetflow.errors import InputError, StructureError
from hetflow.structures.interface import (
    JUNCTION_FREE_LAYERS,
    JUNCTION_FREE_PARTNER_PLANES,
    PARTNER_FACES_FIXED_PLANES,
    build_heterostructure,
    build_slab,
    choose_registry,
    interface_cell,
    junction_probe,
    relax_junction,
)
from hetflow.structures.io import read_structure, write_structure
from hetflow.structures.registry import Registry, column_offsets

SIZE = (2, 2, 3)


def _field(symbols, z):
    """A displacement (Å) that depends on the site only (element and height): periodic in plane."""
    zs = np.asarray(z, float)
    el = np.array([0.01 * (len(s) + (s == "Pb") * 3) for s in symbols])
    return np.c_[0.02 + el, -0.03 + 0.002 * zs, 0.05 * np.sin(zs)]


def fake_energy_relaxer(probe):
    """Fake relaxer (no calculator): moves each free atom of the probe by :func:`_field` in the
    junction frame, which the probe's ``junction_frame`` maps to its own frame."""
    frame = probe.info["junction_frame"]
    rot, origin = np.asarray(frame["rotation"]), np.asarray(frame["origin"])
    jpos = (probe.positions - origin) @ rot
    free = probe.arrays["free"]
    d = np.zeros_like(probe.positions)
    d[free] = _field(np.array(probe.get_chemical_symbols())[free], jpos[free, 2]) @ rot.T
    return probe.positions + d, {"method": "fake", "converged": True, "fmax": 0.0, "fmax_rigid": 1.0,
                                 "force_calls": 0}


def fake_faces_relaxer(atoms):
    """Fake relaxer: lifts every free atom by 0.05 Å (for a finite partner domain)."""
    out = atoms.positions.copy()
    out[atoms.arrays["free"]] += [0.0, 0.0, 0.05]
    return out, {"method": "fake", "converged": True, "fmax": 0.0, "fmax_rigid": 1.0, "force_calls": 0}


@pytest.fixture(scope="module")
def rigid():
    reg, _ = choose_registry("CsPbCl3", "Pb4S3Cl2")
    return reg


@pytest.fixture(scope="module")
def relaxed(rigid):
    return relax_junction("CsPbCl3", "Pb4S3Cl2", rigid, fake_energy_relaxer)


def test_junction_probe_frees_the_layers_next_to_the_interface(rigid):
    probe = junction_probe("CsPbCl3", "Pb4S3Cl2", rigid)
    lay, dom, free = probe.arrays["layer"], probe.arrays["domain"], probe.arrays["free"]
    lo, hi = JUNCTION_FREE_LAYERS
    assert set(lay[free & (dom == "perovskite")]) == set(range(lo, hi + 1))
    assert set(lay[free & (dom == "chalcohalide")]) == set(range(-JUNCTION_FREE_PARTNER_PLANES, 0))
    # the outer planes on both sides stay: perovskite layers 3, 4 and the block's bottom Pb and Cl planes
    assert set(lay[~free & (dom == "perovskite")]) == {3, 4}
    assert set(lay[~free & (dom == "chalcohalide")]) == {-6, -7}
    # 2 × 2 cells: 168 atoms, of which 112 move
    assert len(probe) == 168 and int(free.sum()) == 112


def test_relaxed_probe_becomes_a_per_site_table(relaxed):
    rel = relaxed.relaxation
    # 2 × 2 images collapse to the sites of one a × c cell: 112 free atoms / 4 images
    assert len(rel["sites"]) == 112 // 4
    assert rel["image_spread"] == pytest.approx(0.0, abs=1e-6)
    for sym, fa, fc, z, *d in rel["sites"]:
        assert 0 <= fa < 1 and 0 <= fc < 1
        assert np.allclose(d, _field(np.array([sym]), [z])[0], atol=2e-4)
    assert rel["method"] == "fake" and rel["free_partner_planes"] == JUNCTION_FREE_PARTNER_PLANES
    # the record survives the dict round trip of the registry
    back = Registry.from_dict(relaxed.to_dict())
    assert back.relaxation["sites"] == rel["sites"]


def test_heterostructure_moves_exactly_the_junction_atoms(rigid, relaxed):
    a = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, partner_cells=2, registry=rigid)
    b = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, partner_cells=2, registry=relaxed)
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    for name in ("domain", "layer", "role"):
        assert np.array_equal(a.arrays[name], b.arrays[name])  # labels from the rigid planes
    lay, dom = a.arrays["layer"], a.arrays["domain"]
    lo, hi = JUNCTION_FREE_LAYERS
    junction = ((dom == "perovskite") & (lay >= lo) & (lay <= hi)) | (
        (dom == "chalcohalide") & (lay >= -JUNCTION_FREE_PARTNER_PLANES))
    d = b.positions - a.positions
    want = _field(np.array(a.get_chemical_symbols())[junction], a.positions[junction, 2])
    assert np.allclose(d[junction], want, atol=2e-4)
    assert np.allclose(d[~junction], 0.0)
    assert b.info["junction_relaxed_atoms"] == int(junction.sum())
    assert b.info["registry"]["relaxation"]["sites"] == relaxed.relaxation["sites"]
    assert "partner_faces" not in b.info  # no relaxer given: the faces stay as cut


def test_slab_takes_the_same_displacements(rigid, relaxed):
    a = build_slab("CsPbCl3", "Pb4S3Cl2", inplane=(2, 1), perovskite_cells=3, partner_cells=1, registry=rigid)
    b = build_slab("CsPbCl3", "Pb4S3Cl2", inplane=(2, 1), perovskite_cells=3, partner_cells=1, registry=relaxed)
    assert np.array_equal(a.arrays["layer"], b.arrays["layer"])
    lay, dom = a.arrays["layer"], a.arrays["domain"]
    junction = ((dom == "perovskite") & (lay <= JUNCTION_FREE_LAYERS[1])) | (dom == "chalcohalide") & (
        lay >= -JUNCTION_FREE_PARTNER_PLANES)
    rot = np.asarray(a.info["junction_frame"]["rotation"])
    z_junction = a.positions[:, 2] - a.info["junction_frame"]["origin"][2]
    want = _field(np.array(a.get_chemical_symbols())[junction], z_junction[junction]) @ rot.T
    assert np.allclose((b.positions - a.positions)[junction], want, atol=2e-4)
    assert np.allclose((b.positions - a.positions)[~junction], 0.0)
    assert b.info["junction_relaxed_atoms"] == int(junction.sum())


def test_column_offsets_follow_the_relaxed_top_sheet(rigid):
    """A relaxer that moves the top Pb half-way to their columns halves the recorded offset."""
    cell = interface_cell("CsPbCl3", "Pb4S3Cl2")
    rigid_off = column_offsets(cell, rigid)

    def halfway(probe):
        frame = probe.info["junction_frame"]
        rot, origin = np.asarray(frame["rotation"]), np.asarray(frame["origin"])
        j = (probe.positions - origin) @ rot
        s = np.array(probe.get_chemical_symbols())
        top = (probe.arrays["domain"] == "chalcohalide") & (probe.arrays["layer"] == -1)
        xy = j[top, :2] / cell.a_in
        best = None
        for off in ((0.0, 0.0), (0.5, 0.5)):
            d = xy - off
            d -= np.round(d)
            best = d if best is None else np.where((np.linalg.norm(d, axis=1) < np.linalg.norm(best, axis=1))[:, None], d, best)
        j[top, :2] -= 0.5 * best * cell.a_in
        assert (s[top] == "Pb").all()
        return j @ rot.T + origin, {"method": "fake"}

    moved = relax_junction("CsPbCl3", "Pb4S3Cl2", rigid, halfway)
    hs = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, partner_cells=1, registry=moved)
    reg = hs.info["registry"]
    assert reg["column_offset_max_rigid"] == pytest.approx(rigid_off.max())
    assert reg["column_offset_max"] == pytest.approx(0.5 * rigid_off.max(), abs=0.01)


def test_partner_faces_relaxer_moves_only_the_cut_faces(relaxed):
    a = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, partner_cells=2, registry=relaxed)
    b = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, partner_cells=2, registry=relaxed,
                              relaxer=fake_faces_relaxer)
    free = (a.arrays["domain"] == "chalcohalide") & (a.arrays["layer"] < -PARTNER_FACES_FIXED_PLANES)
    d = b.positions - a.positions
    assert np.allclose(d[free], [0, 0, 0.05]) and np.allclose(d[~free], 0.0)
    faces = b.info["partner_faces"]
    assert faces["free_atoms"] == int(free.sum()) and faces["method"] == "fake"
    assert faces["max_displacement"] == pytest.approx(0.05)
    c = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, partner_cells=2, registry=relaxed,
                              relaxer=fake_faces_relaxer, relax_partner_faces=False)
    assert np.allclose(c.positions, a.positions)


def test_relaxed_model_round_trips_through_extxyz(relaxed, tmp_path):
    hs = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, partner_cells=1, registry=relaxed)
    back = read_structure(write_structure(hs, tmp_path / "hs.extxyz"))
    again = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, partner_cells=1, registry=back.info["registry"])
    assert np.allclose(again.positions, hs.positions)


def test_bad_relaxation_records_and_relaxers(rigid, relaxed):
    d = rigid.to_dict()
    with pytest.raises(InputError, match="relaxation"):
        build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, registry={**d, "relaxation": {"sites": [["Pb", 0.1]]}})
    with pytest.raises(InputError, match="relaxation"):
        build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, registry={**d, "relaxation": "relaxed"})
    with pytest.raises(StructureError, match="relaxed junction positions"):
        relax_junction("CsPbCl3", "Pb4S3Cl2", rigid, lambda probe: (probe.positions[:3], {}))
    with pytest.raises(StructureError, match="partner-faces relaxer"):
        build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=SIZE, registry=relaxed,
                              relaxer=lambda atoms: (np.full_like(atoms.positions, np.nan), {}))
