"""CsPbI3 / ZIF-62 cluster models: stoichiometry, geometry, ligand-exchange products."""

from collections import Counter

import numpy as np
import pytest

from hetflow.errors import InputError, StructureError
from hetflow.structures.charge import formal_charge
from hetflow.structures.zif import (
    BONDS,
    Reaction,
    check_conservation,
    imidazole,
    pb_coordination,
    perovskite_fragment,
    zif_fragment,
)
from hetflow.structures.zif_products import (
    interface_candidates,
    ligand_exchange_products,
    ligand_exchange_reaction,
    surface_sites,
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


@pytest.mark.parametrize("phase,n", [("alpha", 8), ("alpha", 9), ("delta", 8), ("delta", 9)])
def test_fragment_pb_coordination_is_the_best_the_phase_allows(phase, n):
    """δ (edge-sharing): every Pb ≥ 5-coordinated.  α (corner-sharing): an iodide bridges at
    most 2 Pb, so Σ CN = 3n + bridging ≤ 3n + (Pb–Pb edges of n simple-cubic sites: 12 for
    the 2×2×2 cube, 13 for n = 9) and the smallest CN cannot exceed ⌊Σ/n⌋ = 4."""
    f = perovskite_fragment(phase, n)
    cn = pb_coordination(f)
    assert len(cn) == n
    assert f.info["min_pb_coordination"] == min(cn.values())
    assert sum(cn.values()) == f.info["pb_i_bonds"]
    if phase == "delta":
        assert min(cn.values()) >= 5
    else:
        max_edges = {8: 12, 9: 13}[n]
        assert sum(cn.values()) == 3 * n + max_edges  # every possible bridge is present
        assert min(cn.values()) == 4 == (3 * n + max_edges) // n
    assert max(cn.values()) <= 6


def test_zif_fragment_neutral_by_default():
    z = zif_fragment()
    assert z.info["charge"] == 0 and len(z.info["anionic_linkers"]) == 2  # Zn(Im)2(HIm)2


def _tiny_pair():
    pv = perovskite_fragment("alpha", 2)
    return pv, zif_fragment(1, 0)


def test_product_search_on_a_tiny_pair():
    pv, zf = _tiny_pair()
    sites = surface_sites(pv)
    assert sites and all(s.pb in np.flatnonzero(np.array(pv.get_chemical_symbols()) == "Pb") for s in sites)
    cands = interface_candidates(pv, zf, n_exchange=(1, 2))
    ks = Counter(c.info["n_exchange"] for c in cands)
    assert ks[1] >= 1 and ks[2] >= 1
    keys = [(c.info["n_exchange"], tuple(sorted(e["pb"] for e in c.info["exchanges"])), c.info["dock_pb"]) for c in cands]
    assert len(keys) == len(set(keys))  # one candidate per (k, exchanged Pb, docking Pb)
    scores = [c.info["score"]["score"] for c in cands]
    assert scores == sorted(scores)
    react = Counter(pv.get_chemical_symbols()) + Counter(zf.get_chemical_symbols())
    for c in cands:
        s = np.array(c.get_chemical_symbols())
        d = c.get_all_distances()
        assert Counter(c.get_chemical_symbols()) == react
        assert c.info["charge"] == 0
        k = c.info["n_exchange"]
        # k Pb–N(imidazolate) bonds at 2.60 Å, k iodides on Zn at 2.60 Å, Zn 4-coordinated
        assert len(c.info["pb_n"]) == len(c.info["zn_i"]) == k
        for pb, n_ in c.info["pb_n"]:
            assert s[pb] == "Pb" and s[n_] == "N" and d[pb, n_] == pytest.approx(BONDS["Pb-N"], abs=1e-6)
            assert c.arrays["domain"][n_] == "zif"
        for zn, i in c.info["zn_i"]:
            assert s[zn] == "Zn" and s[i] == "I" and d[zn, i] == pytest.approx(BONDS["Zn-I"], abs=1e-6)
        zn = np.flatnonzero(s == "Zn")[0]
        assert np.sum((s == "N") & (d[zn] < 2.3)) == 4 - k
        # the bridging iodide sits 3.25 Å from the docking Pb
        assert d[c.info["dock_pb"], c.info["bridging_iodide"]] == pytest.approx(3.25, abs=1e-6)
    best = cands[0]
    np.fill_diagonal(d := best.get_all_distances(), np.inf)
    assert best.info["score"]["clash_free"] and d.min() > 0.95


def test_product_search_refuses_what_it_cannot_do():
    pv, zf = _tiny_pair()
    with pytest.raises(InputError, match="exceeds the ZIF fragment's 2 anionic"):
        interface_candidates(pv, zf, n_exchange=3)
    with pytest.raises(InputError, match="no anionic terminal imidazolate"):
        interface_candidates(pv, zif_fragment(1, 2))
    with pytest.raises(StructureError, match="must be labelled"):
        interface_candidates(zf, pv)
    with pytest.raises(InputError, match="max_products"):
        ligand_exchange_products(pv, zf, max_products=0)


def test_reactions_balance_elements_and_charge():
    rs = ligand_exchange_reaction("delta", 9, n_zn=1, zif_charge=0, max_products=2, n_exchange=(1, 2))
    assert len(rs) == 2
    for r in rs:
        st = r.check()
        assert st["Pb"] == 9 and st["Zn"] == 1
        assert sum(r.charges[0]) == sum(r.charges[1]) == 0
        assert r.charge_note == "all species neutral"
    # a charged ZIF fragment: the product carries the charge, and the reaction says so
    pv, _ = _tiny_pair()
    zneg = zif_fragment(1, -1)
    prod = ligand_exchange_products(pv, zneg, max_products=1)[0]
    assert prod.info["charge"] == -1
    r = Reaction("charged", [pv, zneg], [prod])
    assert r.check()["Zn"] == 1 and "without counter-ion" in r.charge_note
    bad = prod.copy()
    bad.info["charge"] = 0
    with pytest.raises(StructureError, match="does not conserve charge"):
        Reaction("bad", [pv, zneg], [bad]).check()
    with pytest.raises(StructureError, match="does not conserve"):
        check_conservation([pv], [pv[:-1]])
    with pytest.raises(InputError, match="n_units"):
        perovskite_fragment("alpha", 1)
