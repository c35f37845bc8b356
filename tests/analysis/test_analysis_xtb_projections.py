"""Integration: Mulliken projections of real GFN1-xTB (tblite) MOs of a small CsPbX3 cluster."""

import numpy as np
import pytest

from hetflow.analysis.projections import (
    band_edges, domain_fractions, element_fractions, homo_index, mulliken_atom_populations,
    projection_domains,
)
from hetflow.calculators import run_calculation
from hetflow.calculators.base import CalcSpec


@pytest.fixture(scope="module")
def iodide_capped(gapped_cluster):
    """2×2×1 CsPbCl3 NC (36 atoms, symmetric termination) with every halide of the top CsX
    plane exchanged to I."""
    nc = gapped_cluster.copy()
    top = nc.arrays["layer"].max()
    syms = np.array(nc.get_chemical_symbols())
    sel = (nc.arrays["layer"] == top) & (syms == "Cl")
    assert sel.sum() >= 1
    syms[sel] = "I"
    nc.set_chemical_symbols(list(syms))
    res = run_calculation(nc, CalcSpec(backend="tblite", method="GFN1-xTB", want_mo=True))
    return nc, res


def test_mulliken_of_real_mos(iodide_capped):
    nc, res = iodide_capped
    mo = res.mo
    assert mo is not None and mo.coefficients is not None and mo.overlap is not None
    pop = mulliken_atom_populations(mo, natoms=len(nc))
    # tblite MOs are S-orthonormal: gross populations of every MO sum to 1 before normalising
    assert np.allclose(pop.sum(axis=0), 1.0, atol=1e-6)
    dom = domain_fractions(mo, nc)
    assert set(dom) == {"CsPbCl3", "CsPbI3"}
    assert set(projection_domains(nc)[nc.arrays["layer"] == nc.arrays["layer"].max()]) == {"CsPbI3"}
    el = element_fractions(mo, nc)
    for fr in (dom, el):
        assert np.allclose(sum(fr.values()), 1.0, atol=1e-10)
        allf = np.array(list(fr.values()))
        assert allf.min() > -0.05 and allf.max() < 1.05


def test_homo_is_halide(iodide_capped):
    nc, res = iodide_capped
    mo = res.mo
    h = homo_index(mo)
    el = element_fractions(mo, nc)
    # the valence band edge of a lead halide is halide p (here Cl and I mix: unrelaxed cut)
    assert el["I"][h] + el["Cl"][h] > 0.7
    rows = band_edges(mo, domain_fractions(mo, nc), n_below=1, n_above=1)
    assert [r["label"] for r in rows] == ["HOMO-1", "HOMO", "LUMO", "LUMO+1"]
    homo = rows[1]
    assert homo["index"] == h and homo["occupation"] > 1.0
    assert rows[2]["occupation"] < 0.5 and rows[2]["energy_eV"] > homo["energy_eV"]
