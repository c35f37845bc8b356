"""Exchange configurations of Tables S1–S3 on the real NC heterostructure builder."""

import numpy as np
import pytest
from ase import Atoms

from hetflow.errors import HetflowError, InputError, StructureError
from hetflow.structures.charge import formal_charge
from hetflow.structures.exchange import (
    alloy_patterns,
    configurations,
    custom_exchange,
    halide_sites,
    inplane_axes,
    interfacial_series,
    layer_series,
    model_d,
    partner_halide_layers,
)
from hetflow.structures.interface import build_heterostructure
from hetflow.structures.io import read_structure, write_structure


@pytest.fixture(scope="module")
def hs():
    # 11 perovskite layers (0 … 10) so that model (d) leaves layers 1 … 5 of CsPbCl3
    return build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(3, 3, 5), partner_cells=2)


def _cl_by_layer(atoms, layers, domain="perovskite"):
    s = np.array(atoms.get_chemical_symbols())
    m = (s == "Cl") & np.isin(atoms.arrays["layer"], layers) & (atoms.arrays["domain"] == domain)
    return set(np.flatnonzero(m).tolist())


def _iodide(atoms):
    return set(np.flatnonzero(np.array(atoms.get_chemical_symbols()) == "I").tolist())


def _same_except_halides(a, b):
    assert len(a) == len(b)
    assert np.allclose(a.positions, b.positions)
    assert formal_charge(b) == formal_charge(a) == 0
    for name in ("domain", "layer", "role"):
        assert np.array_equal(a.arrays[name], b.arrays[name])


@pytest.mark.parametrize("start", ["interface", "bottom"])
def test_s1_exchanges_exactly_whole_layers(hs, start):
    L = hs.info["perovskite_layers"]
    series = layer_series(hs, start, n_max=5)
    assert [c.info["N"] for c in series] == [1, 2, 3, 4, 5]
    for n, conf in enumerate(series, start=1):
        layers = list(range(n)) if start == "interface" else list(range(L, L - n, -1))
        assert conf.info["layers_exchanged"] == layers
        # every Cl of those layers, nothing else
        assert _iodide(conf) == _cl_by_layer(hs, layers)
        assert set(conf.info["exchanged_sites"]) == _iodide(conf)
        assert np.array_equal(np.flatnonzero(conf.arrays["exchanged"]), sorted(_iodide(conf)))
        assert conf.info["n_exchanged_total"] == len(_cl_by_layer(hs, layers))
        assert conf.info["n_exchanged_step"] == len(_cl_by_layer(hs, [layers[-1]]))
        _same_except_halides(hs, conf)


def test_s1_interface_and_bottom_mirror_each_other(hs):
    L = hs.info["perovskite_layers"]
    top = layer_series(hs, "interface", 5)
    bot = layer_series(hs, "bottom", 5)
    for a, b in zip(top, bot):
        assert _iodide(a) != _iodide(b)
        la = sorted(set(hs.arrays["layer"][sorted(_iodide(a))]))
        lb = sorted(set(hs.arrays["layer"][sorted(_iodide(b))]))
        assert sorted(L - x for x in la) == lb
    # N = 1: the shared interfacial CsX layer vs the outer CsX face
    assert set(top[0].arrays["layer"][top[0].info["new_sites"]]) == {0}
    assert set(bot[0].arrays["layer"][bot[0].info["new_sites"]]) == {L}


def test_s1_series_is_nested(hs):
    series = layer_series(hs, "bottom", 5)
    assert series[0].info["parent"] == "pristine"
    for prev, cur in zip(series, series[1:]):
        assert cur.info["parent"] == prev.info["name"]
        assert _iodide(prev) < _iodide(cur)
        assert set(cur.info["new_sites"]) == _iodide(cur) - _iodide(prev)


def test_model_d_is_bottom5_plus_interfacial_csx(hs):
    L = hs.info["perovskite_layers"]
    d = model_d(hs)
    layers = [0] + list(range(L, L - 5, -1))
    assert _iodide(d) == _cl_by_layer(hs, layers)
    assert d.info["parent"] == "s1-bottom-N5"
    assert set(d.info["new_sites"]) == _cl_by_layer(hs, [0])
    # layer 0 is the interfacial CsX monolayer: Cs + halide only, now CsI
    s = np.array(d.get_chemical_symbols())
    assert set(s[d.arrays["layer"] == 0]) == {"Cs", "I"}


def test_s2_nested_steps_in_first_two_chalcohalide_halide_layers(hs):
    series = interfacial_series(hs, seed=3)
    d, steps = series[0], series[1:]
    layers = partner_halide_layers(hs, 2)
    assert layers[0] > layers[1] and layers[0] < 0
    # the halide planes nearest the interface: no chalcohalide Cl plane lies between them and layer 0
    s = np.array(hs.get_chemical_symbols())
    ch_cl_layers = set(hs.arrays["layer"][(s == "Cl") & (hs.arrays["domain"] == "chalcohalide")].tolist())
    assert sorted(ch_cl_layers, reverse=True)[:2] == layers
    pool = _cl_by_layer(hs, layers, "chalcohalide")
    n = len(pool)
    assert [c.info["fraction"] for c in steps] == [0.2, 0.4, 0.6, 0.8, 1.0]
    prev = _iodide(d)
    for c in steps:
        cur = _iodide(c)
        new = cur - prev
        assert prev < cur  # adds iodide, never moves it
        assert new <= pool
        assert len(cur - _iodide(d)) == int(np.floor(c.info["fraction"] * n + 0.5))
        assert c.info["fraction_actual"] == pytest.approx(len(cur - _iodide(d)) / n)
        _same_except_halides(hs, c)
        prev = cur
    assert _iodide(steps[-1]) - _iodide(d) == pool


def test_s2_seed_reproducible_and_changes_choice(hs):
    a = interfacial_series(hs, seed=1)
    b = interfacial_series(hs, seed=1)
    c = interfacial_series(hs, seed=2)
    assert [x.info["new_sites"] for x in a] == [x.info["new_sites"] for x in b]
    assert a[1].info["new_sites"] != c[1].info["new_sites"]


def test_s3_equal_counts_and_geometry(hs):
    d = model_d(hs)
    confs = {c.info["distribution"]: c for c in alloy_patterns(hs, fraction=0.2, seed=0)}
    remaining = halide_sites(d, "Cl", domain="perovskite")
    n = int(np.floor(0.2 * len(remaining) + 0.5))
    assert {k: c.info["n_exchanged_step"] for k, c in confs.items()} == {k: n for k in confs}
    for c in confs.values():
        new = np.array(c.info["new_sites"])
        assert set(new) <= set(remaining.tolist())  # only Cl of the remaining CsPbCl3 domain
        assert _iodide(c) == _iodide(d) | set(new.tolist())
        assert c.info["parent"] == "s2-d"
        _same_except_halides(hs, c)
    e1, e2, a = inplane_axes(d)
    pos = d.positions
    # ∥: halides of CsX planes normal to z (even layers), each plane one z
    par = np.array(confs["csx_par"].info["new_sites"])
    assert all(L % 2 == 0 for L in d.arrays["layer"][par])
    for L in set(d.arrays["layer"][par]):
        z = pos[par[d.arrays["layer"][par] == L], 2]
        assert np.ptp(z) < 0.3
    # ⊥: sites of one plane share the coordinate along e1 and span several layers in z
    for key, role in (("csx_perp", "A"), ("pbx2_perp", "B")):
        sites = np.array(confs[key].info["new_sites"])
        u = pos[sites] @ e1
        planes = confs[key].info["planes"]
        assert len(np.unique(np.round(u, 1))) == len(planes)
        for p in planes:
            in_p = sites[np.abs(u - p["coordinate"]) < 0.3]
            assert len(in_p) == p["n_taken"]
            assert np.ptp(pos[in_p, 2]) > a  # normal to the interface: spans z
        # the planes pass through Cs (resp. Pb) columns
        cat = (d.arrays["role"] == role) & (d.arrays["domain"] == "perovskite")
        ucat = pos[cat] @ e1
        assert all(np.min(np.abs(ucat - x)) < 0.3 for x in u)
    # CsX ⊥ planes hold only halides of PbX2 (odd) layers; PbX2 ⊥ planes both kinds
    assert all(L % 2 == 1 for L in d.arrays["layer"][confs["csx_perp"].info["new_sites"]])


def test_s3_random_reproducible_by_seed(hs):
    a = alloy_patterns(hs, patterns=["random"], seed=7)[0]
    b = alloy_patterns(hs, patterns=["random"], seed=7)[0]
    c = alloy_patterns(hs, patterns=["random"], seed=8)[0]
    assert a.info["new_sites"] == b.info["new_sites"]
    assert a.info["new_sites"] != c.info["new_sites"]


def test_general_pairs_cl_to_br_and_br_to_i():
    cl = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 3), partner_cells=2)
    conf = layer_series(cl, "interface", 2, target="Br")[-1]
    assert conf.info["exchange"] == "Cl->Br"
    assert set(np.flatnonzero(np.array(conf.get_chemical_symbols()) == "Br")) == _cl_by_layer(cl, [0, 1])
    br = build_heterostructure("CsPbBr3", "Pb4S3Br2", size=(2, 2, 3), partner_cells=2)
    assert br.info["halide"] == "Br"
    confs = interfacial_series(br, fractions=(0.5, 1.0))
    assert confs[-1].info["exchange"] == "Br->I"
    assert "Cl" not in confs[-1].get_chemical_symbols()
    assert formal_charge(confs[-1]) == 0
    # a partial custom exchange with a fraction
    c = custom_exchange(cl, layers=[1], fraction=0.5, seed=0, target="Br")
    assert c.info["n_exchanged_step"] == int(np.floor(0.5 * len(_cl_by_layer(cl, [1])) + 0.5))


def test_extxyz_round_trip_keeps_provenance(hs, tmp_path):
    conf = interfacial_series(hs)[2]
    p = write_structure(conf, tmp_path / "c.extxyz")
    back = read_structure(p)
    for key in ("name", "pattern", "parent", "step", "n_exchanged_step", "n_exchanged_total", "exchange"):
        assert back.info[key] == conf.info[key]
    assert list(back.info["new_sites"]) == conf.info["new_sites"]
    assert list(back.info["exchanged_sites"]) == conf.info["exchanged_sites"]
    assert np.array_equal(back.arrays["exchanged"], conf.arrays["exchanged"])
    # exchanging from the read-back model continues the chain
    more = custom_exchange(back, layers=[1])
    assert set(more.info["exchanged_sites"]) > set(conf.info["exchanged_sites"])


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_bad_fraction(hs, fraction):
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        alloy_patterns(hs, fraction=fraction)
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        interfacial_series(hs, fractions=(fraction, 1.0) if fraction < 1 else (0.5, fraction))


def test_n_larger_than_layers(hs):
    with pytest.raises(InputError, match="larger than the 11 perovskite layers"):
        layer_series(hs, "interface", 12)


def test_unknown_pattern_and_start(hs):
    with pytest.raises(InputError, match="unknown exchange pattern 'S9'"):
        configurations(hs, "S9")
    with pytest.raises(InputError, match="unknown S3 pattern"):
        alloy_patterns(hs, patterns=["zigzag"])
    with pytest.raises(InputError, match="start must be"):
        layer_series(hs, "middle")


def test_unlabelled_structure_is_refused():
    bare = Atoms("CsPbCl3", positions=np.arange(15.0).reshape(5, 3), pbc=False)
    with pytest.raises(StructureError, match="no per-atom label"):
        layer_series(bare, "interface", 1)
    with pytest.raises(HetflowError) as exc:
        configurations(bare, "s1")
    assert "\n" not in str(exc.value)


def test_same_halide_refused(hs):
    with pytest.raises(InputError, match="nothing to exchange"):
        layer_series(hs, "interface", 1, target="Cl")


# --------------------------------------------------------------------------- the recipes' models


@pytest.mark.parametrize("size", [(2, 2, 5), (3, 3, 5)])
def test_recipe_models_fit_the_tables(size):
    """The quick and full models of the recipes: the N = 1…5 interface-first and bottom-first
    series never share a site, model (d) keeps ≥ 2 CsPbCl3 layers between the CsPbI3 part and the
    CsI interfacial layer, and the chalcohalide is two b/2 blocks thick."""
    from hetflow.recipes.exchange_scan import MODELS

    assert (size, 2) in MODELS.values()
    model = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=size, partner_cells=2)
    top = layer_series(model, "interface", 5)
    bottom = layer_series(model, "bottom", 5)
    for a, b in zip(top, bottom):
        assert not set(a.info["exchanged_sites"]) & set(b.info["exchanged_sites"])
    d = model_d(model)
    s = np.array(d.get_chemical_symbols())
    pv = d.arrays["domain"] == "perovskite"
    cl_layers = sorted(set(d.arrays["layer"][pv & (s == "Cl")]))
    assert cl_layers == [1, 2, 3, 4, 5] and len(cl_layers) >= 2
    assert set(d.arrays["layer"][pv & (s == "I")]) == {0, 6, 7, 8, 9, 10}
    assert model.info["partner_cells"] == 2 and model.info["counts"]["partner_planes"] >= 12


def test_s3_model_patterns_are_whole_planes_of_equal_size(hs):
    pats = alloy_patterns(hs, 0.2, seed=0)
    assert {p.info["n_exchanged_step"] for p in pats} == {18}
    assert all(p.info["complete_planes"] for p in pats)


def test_paper_scale_model_fills_the_paper_box():
    from hetflow.structures.interface import paper_scale_model

    ps = paper_scale_model()
    assert 1000 < len(ps) < 2000
    assert formal_charge(ps) == 0
    box = np.array(ps.info["box"])
    assert box.tolist() == [52.0, 52.0, 68.0]
    assert (ps.positions.min(axis=0) >= 5.0).all() and (ps.positions.max(axis=0) <= box - 5.0).all()
    assert ps.info["counts"]["perovskite_layers"] == 11
