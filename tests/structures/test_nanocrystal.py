"""Nanocrystal cutter: exact counts, charge neutrality, CsX termination."""

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from hetflow.errors import InputError
from hetflow.structures.charge import formal_charge
from hetflow.structures.nanocrystal import cut_nanocrystal


@pytest.mark.parametrize("n", [(1, 1, 1), (2, 2, 2), (3, 3, 3), (2, 3, 4)])
def test_counts_and_neutrality(n):
    nc = cut_nanocrystal("CsPbCl3", n)
    n1, n2, n3 = n
    s = np.array(nc.get_chemical_symbols())
    assert (s == "Pb").sum() == n1 * n2 * n3
    assert (s == "Cl").sum() == 3 * n1 * n2 * n3 + n1 * n2 + n2 * n3 + n1 * n3
    # the raw CsX-terminated cut carries +(n1+n2+n3+1); that many surface Cs are removed
    assert (s == "Cs").sum() == (n1 + 1) * (n2 + 1) * (n3 + 1) - (n1 + n2 + n3 + 1)
    assert formal_charge(nc) == 0
    assert nc.info["removed_surface_ions"] == n1 + n2 + n3 + 1


def test_3x3x3_is_the_189_atom_cluster():
    nc = cut_nanocrystal("CsPbCl3", (3, 3, 3))
    assert nc.get_chemical_formula(mode="hill") == "Cl108Cs54Pb27"


def test_requested_charge_is_honoured():
    nc = cut_nanocrystal("CsPbBr3", (2, 2, 2), charge=+2)
    assert formal_charge(nc) == 2


def test_every_pb_is_octahedral_and_faces_are_csx():
    nc = cut_nanocrystal("CsPbCl3", (3, 3, 3))
    s = np.array(nc.get_chemical_symbols())
    i, j, d = neighbor_list("ijd", nc, 3.2)
    pbx = (s[i] == "Pb") & (s[j] == "Cl")
    assert (np.bincount(i[pbx], minlength=len(nc))[s == "Pb"] == 6).all()
    assert d.min() > 2.7
    # outermost planes along every axis hold only Cs and Cl (CsX termination)
    for ax in range(3):
        x = nc.positions[:, ax]
        for face in (x < x.min() + 0.3, x > x.max() - 0.3):
            assert set(s[face]) == {"Cs", "Cl"}


def test_layers_alternate_csx_pbx2():
    nc = cut_nanocrystal("CsPbCl3", (2, 2, 3))
    lay = nc.arrays["layer"]
    assert sorted(set(lay)) == list(range(7))
    s = np.array(nc.get_chemical_symbols())
    for k in range(7):
        elems = set(s[lay == k])
        assert elems == ({"Cs", "Cl"} if k % 2 == 0 else {"Pb", "Cl"})


def test_tilted_gamma_phase_cut():
    nc = cut_nanocrystal("CsPbI3-gamma", (2, 2, 2))
    assert formal_charge(nc) == 0
    assert (np.array(nc.get_chemical_symbols()) == "Pb").sum() == 8
    i, j, d = neighbor_list("ijd", nc, 2.5)
    assert len(d) == 0  # no unphysically short contacts


@pytest.mark.parametrize("bad", [(0, 1, 1), (2, -1, 2), (1, 2)])
def test_bad_size(bad):
    with pytest.raises(InputError, match="size"):
        cut_nanocrystal("CsPbCl3", bad)


def test_not_a_perovskite():
    with pytest.raises(InputError, match="not a single-halide ABX3 perovskite"):
        cut_nanocrystal("PbCl2", (1, 1, 1))


# --------------------------------------------------------------------------- termination rule


@pytest.mark.parametrize("n", [(2, 2, 5), (3, 3, 5), (3, 3, 3), (4, 4, 4), (2, 2, 3)])
def test_no_face_loses_more_than_a_quarter_of_its_cs(n):
    from hetflow.structures.termination import cs_faces

    nc = cut_nanocrystal("CsPbCl3", n)
    assert nc.info["termination"]["max_face_fraction"] == 0.25
    for face, (removed, sites) in nc.info["termination"]["faces"].items():
        assert removed <= sites // 4, face
    # the per-face counts are those of the built structure: count Cs on each outer plane
    full = (n[0] + 1) * (n[1] + 1)
    idx, faces = cs_faces(nc)
    assert faces[:, 4].sum() == full - nc.info["termination"]["faces"]["z-"][0]
    assert faces[:, 5].sum() == full - nc.info["termination"]["faces"]["z+"][0]
    assert faces[:, 4].sum() >= 0.75 * full and faces[:, 5].sum() >= 0.75 * full


def test_vacancies_are_corner_or_edge_sites_spread_over_all_faces():
    from hetflow.structures.termination import cs_faces

    nc = cut_nanocrystal("CsPbCl3", (3, 3, 5))
    faces = nc.info["termination"]["faces"]
    # all six faces share the vacancies (none is stripped, none is spared)
    assert all(r >= 1 for r, _ in faces.values())
    # every vacancy is a corner or edge site: face-centre Cs sites of each face are all present
    idx, f = cs_faces(nc)
    interior = f.sum(axis=1) == 1
    n1, n2, n3 = 3, 3, 5
    expected_interior = 2 * ((n1 - 1) * (n2 - 1) + (n2 - 1) * (n3 - 1) + (n1 - 1) * (n3 - 1))
    assert interior.sum() == expected_interior
    # the pattern is symmetric under the mirror through the NC centre normal to z
    assert "z" in nc.info["termination"]["mirror_symmetric_axes"]


def test_too_small_cube_under_a_hard_face_limit_is_refused():
    from hetflow.errors import StructureError

    with pytest.raises(StructureError, match="more than 25% of its Cs sites"):
        cut_nanocrystal("CsPbCl3", (2, 2, 2), max_face_fraction=0.25)
    # without a hard limit the tiny cluster is still built, with the limit it needed recorded
    assert cut_nanocrystal("CsPbCl3", (2, 2, 1)).info["termination"]["max_face_fraction"] > 0.25
