"""Symmetry-distinct enumeration: orbit counts against hand counts."""

import math

import numpy as np
import pytest
from ase import Atoms

from hetflow.errors import InputError
from hetflow.structures.exchange import distinct_exchanges
from hetflow.structures.interface import build_slab
from hetflow.structures.symmetry import distinct_subsets, site_permutations, symmetry_group


def _octahedron(d=2.8):
    """PbCl6 octahedron (Oh), labelled like a perovskite fragment."""
    pos = [[0, 0, 0], [d, 0, 0], [-d, 0, 0], [0, d, 0], [0, -d, 0], [0, 0, d], [0, 0, -d]]
    a = Atoms("PbCl6", positions=pos)
    a.set_array("domain", np.full(7, "perovskite", dtype="<U16"))
    a.set_array("role", np.array(["B"] + ["X"] * 6, dtype="<U2"))
    a.set_array("layer", np.array([1, 1, 1, 1, 1, 2, 0]))
    a.info["halide"] = "Cl"
    return a


def _cube(d=3.0):
    """Cs8 cube around a Pb (Oh): 8 equivalent vertices."""
    pos = [[0, 0, 0]] + [[x, y, z] for x in (-d, d) for y in (-d, d) for z in (-d, d)]
    return Atoms("PbCs8", positions=pos)


def test_octahedron_point_group_and_hand_counts():
    oc = _octahedron()
    g = symmetry_group(oc)
    assert g.symbol == "Oh" and g.order == 48
    sites = list(range(1, 7))
    # 1 substitution: all six vertices equivalent
    orbs, meta = distinct_subsets(sites, 1, g)
    assert [(o.multiplicity) for o in orbs] == [6]
    # 2 substitutions: trans (3) and cis (12)
    orbs, meta = distinct_subsets(sites, 2, g)
    assert sorted(o.multiplicity for o in orbs) == [3, 12]
    assert meta["exhaustive"] and meta["n_orbits"] == 2 and meta["n_subsets"] == 15
    trans = [o for o in orbs if o.multiplicity == 3][0].representative
    assert np.allclose(oc.positions[trans[0]], -oc.positions[trans[1]])
    # 3 substitutions: fac (8) and mer (12)
    orbs, _ = distinct_subsets(sites, 3, g)
    assert sorted(o.multiplicity for o in orbs) == [8, 12]


def test_cube_vertices_two_substitutions():
    g = symmetry_group(_cube())
    orbs, meta = distinct_subsets(range(1, 9), 2, g)
    # edge (12), face diagonal (12), body diagonal (4)
    assert sorted(o.multiplicity for o in orbs) == [4, 12, 12]
    assert sum(o.multiplicity for o in orbs) == math.comb(8, 2)


def test_lower_symmetry_splits_orbits():
    # one Cl already swapped for Br: the octahedron drops to C4v, the 5 Cl give 2 k=1 orbits
    oc = _octahedron()
    syms = oc.get_chemical_symbols()
    syms[5] = "Br"
    oc.set_chemical_symbols(syms)
    g = symmetry_group(oc)
    assert g.order == 8
    cl = [i for i, s in enumerate(syms) if s == "Cl"]
    orbs, _ = distinct_subsets(cl, 1, g)
    assert sorted(o.multiplicity for o in orbs) == [1, 4]


def test_site_permutations_keep_only_ops_that_map_the_set():
    g = symmetry_group(_octahedron())
    # the 4 equatorial sites: D4h keeps them (16 ops), acting on a square as its dihedral
    # group of 8 distinct permutations; 2 of 4 → adjacent (4) and opposite (2)
    local = site_permutations(g, [1, 3, 2, 4])
    assert len(local) == 8
    orbs, _ = distinct_subsets([1, 3, 2, 4], 2, local)
    assert sorted(o.multiplicity for o in orbs) == [2, 4]
    # a set no operation but E and a mirror keeps: {x+, y+} → E and the x↔y mirrors
    assert len(site_permutations(g, [1, 3])) == 2


def test_distinct_exchanges_on_labelled_cluster():
    confs = distinct_exchanges(_octahedron(), 2, target="I")
    assert len(confs) == 2
    assert sorted(c.info["multiplicity"] for c in confs) == [3, 12]
    for c in confs:
        assert c.get_chemical_symbols().count("I") == 2
        assert c.info["symmetry"] == "Oh"
        assert c.info["enumeration"]["n_subsets"] == 15


def test_sampling_is_reproducible_when_too_many():
    g = symmetry_group(_cube())
    a, ma = distinct_subsets(range(1, 9), 4, g, max_enumerate=10, max_configs=3, seed=5)
    b, _ = distinct_subsets(range(1, 9), 4, g, max_enumerate=10, max_configs=3, seed=5)
    assert not ma["exhaustive"]
    assert [o.representative for o in a] == [o.representative for o in b]
    assert len(a) == 3
    # sampled orbits are true orbits: their multiplicities are those of the exhaustive list
    full, meta = distinct_subsets(range(1, 9), 4, g)
    exh = {o.representative: o.multiplicity for o in full}
    assert sum(exh.values()) == 70
    for o in a:
        assert exh[o.representative] == o.multiplicity


def test_slab_layer_group_contains_supercell_translations():
    slab = build_slab(inplane=(2, 2), perovskite_cells=3)
    g = symmetry_group(slab)
    assert g.kind == "layer group"
    cl0 = np.flatnonzero((slab.arrays["layer"] == 0) & (np.array(slab.get_chemical_symbols()) == "Cl"))
    orbs, meta = distinct_subsets(cl0, 1, g)
    # the 2 × 2 in-plane supercell: 4 pure translations, so every orbit has ≥ 4 members
    assert all(o.multiplicity % 4 == 0 for o in orbs)
    assert sum(o.multiplicity for o in orbs) == len(cl0)
    orbs2, _ = distinct_subsets(cl0, 2, g)
    assert sum(o.multiplicity for o in orbs2) == math.comb(len(cl0), 2)
    assert len(orbs2) < math.comb(len(cl0), 2)


def test_bad_k():
    g = symmetry_group(_octahedron())
    with pytest.raises(InputError, match="k must be 1"):
        distinct_subsets(range(1, 7), 7, g)
    with pytest.raises(InputError, match="k must be 1"):
        distinct_exchanges(_octahedron(), 0)
