"""CP2K PBE backend: input generation/validation (fast) and one real PbCl2 run (slow)."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from ase import Atoms
from ase.units import Hartree

from hetflow.calculators import CalcSpec, run_calculation
from hetflow.calculators.cp2k import (build_input_tree, check_input_with_cp2k, parsed_ldos_lists,
                                      render_input, write_input)
from hetflow.errors import CalculatorError, InputError

HAVE_CP2K = shutil.which("cp2k.psmp") is not None


def _spec(**settings):
    return CalcSpec(backend="cp2k", method="PBE", want_mo=True, settings=settings)


def test_input_validates_and_carries_the_paper_preset(cluster, tmp_path):
    from cp2k_input_tools.parser import CP2KInputParserSimplified

    inp = write_input(cluster, CalcSpec(backend="cp2k", method="PBE", task="relax"), tmp_path)
    text = inp.read_text()
    tree = CP2KInputParserSimplified().parse(io.StringIO(text))  # validates against CP2K's schema
    fe = tree["force_eval"]
    dft, subsys = fe["dft"], fe["subsys"]
    assert dft["xc"]["xc_functional"]["_"] == "PBE"
    assert dft["mgrid"]["cutoff"] == 400
    assert dft["poisson"]["periodic"].upper() == "NONE" and dft["poisson"]["poisson_solver"].upper() == "WAVELET"
    assert list(subsys["cell"]["abc"]) == [52, 68, 52] and subsys["cell"]["periodic"].upper() == "NONE"
    kinds = subsys["kind"]
    if isinstance(kinds, list):
        kinds = {k["_"]: k for k in kinds}
    assert set(kinds) == {"Cs", "Pb", "Cl"}
    assert all(k["basis_set"] == "DZVP-MOLOPT-SR-GTH" for k in kinds.values())
    assert kinds["Pb"]["potential"] == "GTH-PBE-q4" and kinds["Cs"]["potential"] == "GTH-PBE-q9"
    assert tree["motion"]["geo_opt"]["max_force"] == pytest.approx(4.5e-4)
    assert tree["global"]["run_type"].upper() == "GEO_OPT"
    # one LDOS list per domain, covering every atom once
    lists = parsed_ldos_lists(text)
    assert sorted(i for lst in lists for i in lst) == list(range(1, len(cluster) + 1))
    if HAVE_CP2K:
        check_input_with_cp2k(inp)


def test_vacuum_box_and_ladder_inputs(cluster):
    tree, _ = build_input_tree(cluster, CalcSpec(backend="cp2k", method="PBE", settings={"vacuum": 6.0}))
    extent = cluster.positions.max(axis=0) - cluster.positions.min(axis=0)
    np.testing.assert_allclose(tree["+force_eval"][0]["+subsys"]["+cell"]["abc"], extent + 12.0)
    diag, _ = build_input_tree(cluster, CalcSpec(backend="cp2k", method="PBE"), attempt="diagonalization")
    scf = diag["+force_eval"][0]["+dft"]["+scf"]
    assert "+ot" not in scf and scf["+smear"]["method"] == "FERMI_DIRAC" and scf["added_mos"] > 0
    render_input(diag)  # validates


def test_cp2k_input_errors(cluster, tmp_path):
    with pytest.raises(InputError, match="no DZVP-MOLOPT-SR-GTH basis for element"):
        write_input(Atoms("UCl4", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5], [-2.5, 0, 0]]),
                    _spec(box=[12, 12, 12]), tmp_path)
    with pytest.raises(InputError, match="does not fit the box"):
        write_input(cluster, _spec(box=[8, 8, 8]), tmp_path)
    with pytest.raises(InputError, match="unknown CP2K setting"):
        write_input(cluster, _spec(cutof=300), tmp_path)
    with pytest.raises(CalculatorError, match="not found on PATH"):
        run_calculation(cluster, _spec(executable="cp2k-does-not-exist.psmp"), tmp_path)
    with pytest.raises(InputError, match="odd number of electrons"):
        write_input(cluster, CalcSpec(backend="cp2k", method="PBE", charge=1), tmp_path)


@pytest.fixture(scope="module")
def pbcl2_run(pbcl2, tmp_path_factory):
    if not HAVE_CP2K:
        pytest.skip("cp2k.psmp not installed")
    atoms = pbcl2.copy()
    wd = tmp_path_factory.mktemp("cp2k-pbcl2")
    spec = _spec(box=[10, 10, 10], ldos_groups={"Pb": [0], "Cl": [1, 2]}, nlumo=10)
    return atoms, wd, run_calculation(atoms, spec, wd)


@pytest.mark.cp2k
@pytest.mark.slow
def test_pbcl2_single_point_energy_matches_output(pbcl2_run):
    atoms, wd, r = pbcl2_run
    assert r.converged and r.scf_steps and r.scf_steps > 1
    out = (wd / "attempt-0" / "hetflow.out").read_text()
    line = [x for x in out.splitlines() if "Total FORCE_EVAL ( QS ) energy" in x][-1]
    assert r.energy == pytest.approx(float(line.split()[-1]) * Hartree, abs=1e-8)
    assert -1000 < r.energy < -800  # PbCl2 with 18 valence electrons: −33.6 Ha
    assert r.versions["cp2k"].startswith("20")


@pytest.mark.cp2k
@pytest.mark.slow
def test_pbcl2_forces_and_mo_data(pbcl2_run):
    atoms, _, r = pbcl2_run
    assert r.forces.shape == (3, 3)
    assert np.abs(r.forces.sum(axis=0)).max() < 1e-3  # isolated molecule: no net force
    mo = r.mo
    assert np.isclose(mo.occupations.sum(), 18.0)  # Pb 4 + 2 × Cl 7 valence electrons
    assert (mo.occupations == 0).sum() == 10  # NLUMO
    assert np.all(np.diff(mo.eigenvalues) >= -1e-6)
    gap = mo.eigenvalues[mo.occupations == 0][0] - mo.eigenvalues[mo.occupations > 0][-1]
    assert 1.0 < gap < 6.0
    fr = mo.projections
    assert set(fr) == {"Pb", "Cl"}
    np.testing.assert_allclose(fr["Pb"] + fr["Cl"], 1.0, atol=1e-6)
    homo = np.flatnonzero(mo.occupations > 0)[-1]
    assert fr["Cl"][homo] > 0.5  # the HOMO of a lead halide is halide p
    assert r.atoms.get_chemical_formula() == atoms.get_chemical_formula()
