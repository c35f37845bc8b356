"""Mulliken domain fractions on synthetic MO data with known answers; domain assignment rule."""

import io

import numpy as np
import pytest
from ase import Atoms
from rich.console import Console

from hetflow.analysis.projections import (
    band_edge_table, band_edges, domain_fractions, element_fractions, group_fractions, homo_index,
    mulliken_atom_populations, projection_domains,
)
from hetflow.calculators.base import MOData
from hetflow.errors import InputError, StructureError

#: Mulliken fractions are not bounded; with the weak overlaps used here (|S_μν| ≤ 0.05)
#: a group's fraction stays within this tolerance of [0, 1].
MULLIKEN_TOL = 0.05


def random_mo(nao=24, natoms=8, seed=1, s_scale=0.05):
    """Random SPD overlap with unit diagonal and MOs orthonormalised in its metric (CᵀSC = I)."""
    rng = np.random.default_rng(seed)
    off = rng.uniform(-s_scale, s_scale, (nao, nao))
    s = np.eye(nao) + np.triu(off, 1) + np.triu(off, 1).T
    assert np.linalg.eigvalsh(s).min() > 0
    c0 = rng.normal(size=(nao, nao))
    w, v = np.linalg.eigh(c0.T @ s @ c0)
    c = c0 @ v @ np.diag(w**-0.5) @ v.T  # Löwdin orthonormalisation in the S metric
    assert np.allclose(c.T @ s @ c, np.eye(nao), atol=1e-10)
    ao_atom = np.sort(np.concatenate([np.arange(natoms), rng.integers(0, natoms, nao - natoms)]))
    eig = np.sort(rng.normal(size=nao))
    occ = np.where(np.arange(nao) < nao // 2, 2.0, 0.0)
    return MOData(eig, occ, coefficients=c, overlap=s, ao_atom=ao_atom)


def test_mulliken_fractions_sum_to_one_and_are_bounded():
    mo = random_mo()
    pop = mulliken_atom_populations(mo)
    assert pop.shape == (8, 24)
    assert np.allclose(pop.sum(axis=0), 1.0, atol=1e-10)  # normalised MOs: no renormalisation needed
    labels = ["a", "a", "b", "b", "b", "c", "c", "a"]
    fr = group_fractions(mo, labels)
    total = sum(fr.values())
    assert np.allclose(total, 1.0, atol=1e-12)
    allf = np.array(list(fr.values()))
    assert allf.min() > -MULLIKEN_TOL and allf.max() < 1 + MULLIKEN_TOL


def test_unnormalised_mos_are_renormalised():
    """Scaling the coefficients (an unnormalised MO) must not change any fraction."""
    labels = ["a"] * 4 + ["b"] * 4
    ref = group_fractions(random_mo(), labels)
    mo = random_mo()
    mo.coefficients = mo.coefficients * 3.0
    fr = group_fractions(mo, labels)
    assert np.allclose(fr["a"], ref["a"], atol=1e-12) and np.allclose(fr["b"], ref["b"], atol=1e-12)
    assert not np.allclose(ref["a"], 0.5)  # the groups really differ MO by MO


def test_two_site_heteronuclear_toy():
    # MO (a, b) on two one-AO atoms with overlap s, normalised: a² + b² + 2abs = 1.
    # Mulliken: q_A = a² + abs, q_B = b² + abs.
    s, a = 0.3, 0.8
    b = -a * s + np.sqrt((a * s) ** 2 - (a**2 - 1))  # positive root of b² + 2as·b + a² − 1 = 0
    S = np.array([[1.0, s], [s, 1.0]])
    c = np.array([[a, 0.0], [b, 0.0]])
    # second MO: orthogonal to the first in the S metric, normalised
    v = np.array([1.0, -(a + b * s) / (b + a * s)])
    c[:, 1] = v / np.sqrt(v @ S @ v)
    mo = MOData(np.array([-1.0, 1.0]), np.array([2.0, 0.0]), coefficients=c, overlap=S, ao_atom=np.array([0, 1]))
    fr = group_fractions(mo, ["A", "B"])
    assert fr["A"][0] == pytest.approx(a**2 + a * b * s)
    assert fr["B"][0] == pytest.approx(b**2 + a * b * s)
    assert fr["A"][0] + fr["B"][0] == pytest.approx(1.0)
    assert fr["A"][1] + fr["B"][1] == pytest.approx(1.0)
    # bonding MO weighted to A: the orthogonal partner is weighted to B
    assert fr["A"][0] > 0.5 and fr["B"][1] > 0.5


def labelled_model():
    """Chalcohalide (layer -1), CsX layer 0 (all I), PbX2 layer 1 (2 I : 1 Cl),
    CsX layer 2 (1 I : 2 Cl), a halide-free layer 3, PbX2 layer 4 (1 Cl : 1 I tie)."""
    rows = [
        ("Pb", "chalcohalide", -1, "M"), ("S", "chalcohalide", -1, "S"), ("Cl", "chalcohalide", -1, "X"),
        ("Cs", "perovskite", 0, "A"), ("I", "perovskite", 0, "X"),
        ("Pb", "perovskite", 1, "B"), ("I", "perovskite", 1, "X"), ("I", "perovskite", 1, "X"), ("Cl", "perovskite", 1, "X"),
        ("Cs", "perovskite", 2, "A"), ("I", "perovskite", 2, "X"), ("Cl", "perovskite", 2, "X"), ("Cl", "perovskite", 2, "X"),
        ("Cs", "perovskite", 3, "A"),
        ("Pb", "perovskite", 4, "B"), ("Cl", "perovskite", 4, "X"), ("I", "perovskite", 4, "X"),
    ]
    at = Atoms([r[0] for r in rows], positions=np.arange(3 * len(rows), dtype=float).reshape(-1, 3))
    at.set_array("domain", np.array([r[1] for r in rows], dtype="<U16"))
    at.set_array("layer", np.array([r[2] for r in rows]))
    at.set_array("role", np.array([r[3] for r in rows], dtype="<U2"))
    return at


def test_projection_domains_rule_and_overrides():
    at = labelled_model()
    dom = projection_domains(at)
    assert list(dom[:3]) == ["chalcohalide"] * 3
    assert list(dom[3:9]) == ["CsPbI3"] * 6  # layers 0 and 1 are majority I, Cs and Pb included
    assert list(dom[9:13]) == ["CsPbCl3"] * 4  # the lone I of a Cl-majority layer stays CsPbCl3
    assert dom[13] == "CsPbCl3"  # halide-free layer 3: tie between layers 2 and 4 → lower one (2)
    assert list(dom[14:]) == ["CsPbCl3"] * 3  # 1:1 tie → lighter (unexchanged) halide
    over = projection_domains(at, {10: "CsPbI3"})
    assert over[10] == "CsPbI3" and over[11] == "CsPbCl3"
    full = projection_domains(at, ["x"] * len(at))
    assert set(full) == {"x"}
    with pytest.raises(InputError, match="2 entries for 17 atoms"):
        projection_domains(at, ["x", "y"])
    bare = Atoms("PbCl2")
    with pytest.raises(StructureError, match="no per-atom 'domain'"):
        projection_domains(bare)


def test_mo_localised_on_one_domain_is_assigned_to_it():
    at = labelled_model()
    natoms = len(at)
    rng = np.random.default_rng(3)
    nao = 2 * natoms
    ao_atom = np.repeat(np.arange(natoms), 2)
    off = rng.uniform(-0.1, 0.1, (nao, nao))
    s = np.eye(nao) + np.triu(off, 1) + np.triu(off, 1).T  # overlap couples all domains
    dom = projection_domains(at)
    c = rng.normal(size=(nao, 3))
    c[dom[ao_atom] != "chalcohalide", 0] = 0.0  # MO 0 only on chalcohalide AOs
    c[dom[ao_atom] != "CsPbI3", 1] = 0.0  # MO 1 only on CsPbI3 AOs
    for i in range(3):
        c[:, i] /= np.sqrt(c[:, i] @ s @ c[:, i])
    mo = MOData(np.array([-2.0, -1.0, 1.0]), np.array([2.0, 2.0, 0.0]), coefficients=c, overlap=s, ao_atom=ao_atom)
    fr = domain_fractions(mo, at)
    assert set(fr) == {"chalcohalide", "CsPbI3", "CsPbCl3"}
    assert fr["chalcohalide"][0] == pytest.approx(1.0) and fr["CsPbI3"][0] == pytest.approx(0.0)
    assert fr["CsPbI3"][1] == pytest.approx(1.0) and fr["CsPbCl3"][1] == pytest.approx(0.0)
    assert np.allclose(sum(fr.values()), 1.0)
    rows = band_edges(mo, fr, n_below=1, n_above=1)
    assert [r["label"] for r in rows] == ["HOMO-1", "HOMO", "LUMO"]
    assert [r["dominant"] for r in rows[:2]] == ["chalcohalide", "CsPbI3"]
    el = element_fractions(mo, at)
    assert set(el) == {"Pb", "S", "Cl", "Cs", "I"}
    assert el["I"][0] == pytest.approx(0.0) and el["Cs"][0] == pytest.approx(0.0)


def test_cp2k_projections_are_normalised():
    mo = MOData(np.array([-1.0, 0.5]), np.array([2.0, 0.0]),
                projections={"chalcohalide": np.array([0.2, 0.1]), "CsPbCl3": np.array([0.6, 0.1])})
    fr = domain_fractions(mo, Atoms())
    assert fr["chalcohalide"] == pytest.approx([0.25, 0.5])
    assert fr["CsPbCl3"] == pytest.approx([0.75, 0.5])
    zero = MOData(np.array([0.0]), np.array([2.0]), projections={"a": np.array([0.0])})
    with pytest.raises(InputError, match="MO 0 has zero weight"):
        domain_fractions(zero, Atoms())


def test_band_edges_on_unsorted_levels():
    e = np.array([0.5, -3.0, -1.0, 2.0, -2.0, 1.0])
    occ = np.array([0.0, 2.0, 2.0, 0.0, 2.0, 0.0])
    mo = MOData(e, occ)
    assert homo_index(mo) == 2
    fr = {"a": np.array([0.9, 0.1, 0.3, 0.5, 0.2, 0.6]), "b": 1 - np.array([0.9, 0.1, 0.3, 0.5, 0.2, 0.6])}
    rows = band_edges(mo, fr, n_below=2, n_above=2)
    assert [r["label"] for r in rows] == ["HOMO-2", "HOMO-1", "HOMO", "LUMO", "LUMO+1", "LUMO+2"]
    assert [r["energy_eV"] for r in rows] == [-3.0, -2.0, -1.0, 0.5, 1.0, 2.0]
    assert rows[3]["dominant"] == "a" and rows[2]["dominant"] == "b"
    buf = io.StringIO()
    Console(file=buf, width=120).print(band_edge_table(rows))
    assert "LUMO+2" in buf.getvalue() and "90.0" in buf.getvalue()
    with pytest.raises(InputError, match="no occupied orbital"):
        homo_index(MOData(e, np.zeros(6)))


def test_missing_data_errors():
    mo = MOData(np.zeros(2), np.zeros(2))
    with pytest.raises(InputError, match="neither coefficients nor projections"):
        group_fractions(mo, ["a", "b"])
    bad = random_mo()
    bad.ao_atom = bad.ao_atom[:-1]
    with pytest.raises(InputError, match="inconsistent MO data shapes"):
        mulliken_atom_populations(bad)
