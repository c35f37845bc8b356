"""A small real xTB workflow (tblite GFN1, local executor): three tiny molecules, cached on rerun."""

import pytest
from ase.build import molecule

from hetflow.calculators import CalcSpec, run_calculation
from hetflow.workflows.executors import LocalExecutor
from hetflow.workflows.graph import Workflow
from hetflow.workflows.store import ResultStore


def test_gfn1_workflow(tmp_path):
    spec = CalcSpec(backend="tblite", method="GFN1-xTB")
    mols = {n: molecule(n) for n in ("H2O", "NH3", "CH4")}
    wf = Workflow("xtb")
    for n, a in mols.items():
        wf.add_calc(n, a, spec)
    wf.add_calc("H2O_relax", None, spec.replace(task="relax", fmax=0.05), start_from="H2O")
    store = ResultStore(tmp_path / "r.db")
    s = wf.run(store, LocalExecutor(workers=2, threads=1), workdir=tmp_path / "w")
    assert (s.run, s.failed) == (4, 0), str(s) + str(s.failures)
    rows = {r.name: r for r in store.rows()}
    # the store holds exactly what a direct call computes (eV), and the relaxation lowers E
    direct = run_calculation(mols["NH3"], spec).energy
    assert rows["NH3"].energy == pytest.approx(direct, abs=1e-6)
    assert rows["H2O_relax"].energy <= rows["H2O"].energy + 1e-8
    assert ((rows["H2O_relax"].forces ** 2).sum(axis=1) ** 0.5).max() < 0.05
    assert "tblite" in rows["H2O"].provenance["versions"]
    s2 = wf.run(store, LocalExecutor(workers=2), workdir=tmp_path / "w")
    assert (s2.cached, s2.run) == (4, 0)
