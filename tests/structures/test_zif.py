"""CsPbI3 / ZIF-62 cluster models: stoichiometry, geometry, ligand-exchange products."""

from collections import Counter

import numpy as np
import pytest

from hetflow.errors import InputError, StructureError
from hetflow.structures.charge import formal_charge
from hetflow.structures.zif import (
    BONDS,
    check_conservation,
    imidazole,
    ligand_exchange_products,
    ligand_exchange_reaction,
    perovskite_fragment,
    zif_fragment,
)


@pytest.mark.parametrize("phase", ["alpha", "delta"])
@pytest.mark.parametrize("n", [8, 9])
def test_perovskite_fragment_is_neutral_cspbi3(phase, n):
    f = perovskite_fragment(phase, n)
    c = Counter(f.get_chemical_symbols())
    assert c == {"Cs": n, "Pb": n, "I": 3 * n}
    assert formal_charge(f) == 0
    assert set(f.arrays["domain"]) == {"perovskite"}
    s = np.array(f.get_chemical_symbols())
    d = f.get_all_distances()
    # every iodide is bonded to a Pb at the bulk Pb–I distance (α 3.14 Å, δ ≥ 3.0 Å)
    pbi = d[np.ix_(s == "I", s == "Pb")].min(axis=1)
    assert pbi.max() < 3.6 and pbi.min() > 2.9
    # a fragment, not isolated ions: every Pb has ≥ 3 iodides
    assert (np.sum(d[np.ix_(s == "Pb", s == "I")] < 3.6, axis=1) >= 3).all()


def test_alpha_and_delta_fragments_differ():
    a, b = perovskite_fragment("alpha"), perovskite_fragment("delta")
    assert a.info["phase"] == "CsPbI3-alpha" and b.info["phase"] == "CsPbI3-delta"
    # α: corner-sharing octahedra (Pb–Pb = a = 6.29 Å); δ: edge-sharing double chains (< 5 Å)
    def pbpb(f):
        s = np.array(f.get_chemical_symbols())
        d = f.get_all_distances()[np.ix_(s == "Pb", s == "Pb")]
        return d[d > 0].min()
    assert pbpb(a) == pytest.approx(6.2894, abs=0.01)
    assert 4.0 < pbpb(b) < 5.0


def test_imidazole_geometry():
    im, idx = imidazole("Im", cap=True)
    d = im.get_all_distances()
    ring = [0, 1, 2, 3, 4]
    for (i, j), ref in zip([(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)], (1.36, 1.32, 1.38, 1.36, 1.37)):
        assert d[i, j] == pytest.approx(ref, abs=0.01)
    assert np.ptp(im.positions[:, 2]) < 1e-8  # planar
    s = np.array(im.get_chemical_symbols())
    h = np.flatnonzero(s == "H")
    nearest = [ring[int(np.argmin(d[k, ring]))] for k in h]
    assert sorted(np.round(d[h, nearest], 2)) == [1.01, 1.08, 1.08, 1.08]
    assert idx == {"N1": 0, "N3": 2}


@pytest.mark.parametrize("n_zn,charge,n_bim", [(1, 0, 0), (1, 2, 0), (1, -2, 1), (2, 0, 1), (2, -1, 0)])
def test_zif_fragment_tetrahedral_zn_and_charge(n_zn, charge, n_bim):
    z = zif_fragment(n_zn, charge, n_bim)
    s = np.array(z.get_chemical_symbols())
    d = z.get_all_distances()
    assert (s == "Zn").sum() == n_zn
    for zn in np.flatnonzero(s == "Zn"):
        nn = np.flatnonzero((s == "N") & (d[zn] < 2.3))
        assert len(nn) == 4
        assert np.allclose(d[zn, nn], BONDS["Zn-N"], atol=1e-6)
        v = z.positions[nn] - z.positions[zn]
        v /= np.linalg.norm(v, axis=1)[:, None]
        ang = np.degrees(np.arccos(np.clip(v @ v.T, -1, 1)))[np.triu_indices(4, 1)]
        assert np.allclose(ang, 109.47, atol=1.0)
    # formal charge: Zn2+ and one −1 per anionic imidazolate (an N without H and without Zn)
    n_h_on_n = sum(1 for i in np.flatnonzero(s == "N") if np.any((s == "H") & (d[i] < 1.1)))
    n_n_zn = sum(1 for i in np.flatnonzero(s == "N") if np.any((s == "Zn") & (d[i] < 2.3)))
    n_linkers = (s == "N").sum() // 2
    # each linker has 2 N; a linker is neutral iff one N carries H
    assert 2 * n_zn - (n_linkers - n_h_on_n) == charge
    assert n_n_zn == 4 * n_zn
    # benzimidazolates: C7 per bIm vs C3 per Im
    assert (s == "C").sum() == 3 * n_linkers + 4 * n_bim
    if n_zn == 2:
        zn = np.flatnonzero(s == "Zn")
        assert 5.5 < d[zn[0], zn[1]] < 6.5  # Zn–Im–Zn as in ZIFs


def test_zif_bad_charge():
    with pytest.raises(InputError, match="charge 3 impossible"):
        zif_fragment(1, 3)


@pytest.mark.parametrize("phase", ["alpha", "delta"])
def test_ligand_exchange_products_conserve_and_bond(phase):
    pv = perovskite_fragment(phase, 8)
    zf = zif_fragment(1, 0)
    prods = ligand_exchange_products(pv, zf, max_products=3)
    assert 1 <= len(prods) <= 3
    scores = [p.info["score"]["score"] for p in prods]
    assert scores == sorted(scores)
    react = Counter(pv.get_chemical_symbols()) + Counter(zf.get_chemical_symbols())
    for p in prods:
        assert Counter(p.get_chemical_symbols()) == react  # exact element conservation
        assert p.info["charge"] == formal_charge(pv) + zf.info["charge"] == 0
        s = np.array(p.get_chemical_symbols())
        d = p.get_all_distances()
        pb, i = p.info["pb_site"], p.info["iodide_site"]
        # the displaced iodide is bound to Zn, an imidazolate N to the surface Pb
        zn = np.flatnonzero(s == "Zn")[0]
        assert 2.5 <= d[i, zn] <= 2.7
        n_on_pb = np.flatnonzero((s == "N") & (d[pb] < 2.8))
        assert len(n_on_pb) == 1 and 2.5 <= d[pb, n_on_pb[0]] <= 2.7
        assert p.arrays["domain"][n_on_pb[0]] == "zif"
        # Zn still tetrahedral: 3 N + the iodide
        assert np.sum((s == "N") & (d[zn] < 2.3)) == 3
        assert p.info["score"]["clash_free"]
        np.fill_diagonal(d, np.inf)
        assert d.min() > 0.95
    check_conservation([pv, zf], prods[:1])


def test_reaction_and_errors():
    rs = ligand_exchange_reaction("delta", 9, n_zn=1, zif_charge=0, max_products=2)
    assert len(rs) == 2
    assert rs[0].stoichiometry()["Pb"] == 9
    pv = perovskite_fragment("alpha", 8)
    with pytest.raises(InputError, match="no anionic terminal imidazolate"):
        ligand_exchange_products(pv, zif_fragment(1, 2))
    with pytest.raises(StructureError, match="must be labelled"):
        ligand_exchange_products(zif_fragment(1, 0), pv)
    with pytest.raises(StructureError, match="does not conserve"):
        check_conservation([pv], [pv[:-1]])
    with pytest.raises(InputError, match="n_units"):
        perovskite_fragment("alpha", 1)
