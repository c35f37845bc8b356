"""Dask executor on a real dask.distributed LocalCluster (FakeCalculator for the orchestration,
one real tblite task to show the worker runs the real engine)."""

import pytest
from ase.build import molecule

from hetflow.calculators import CalcSpec, calc_key, run_calculation
from hetflow.errors import WorkflowError
from hetflow.workflows.executors import make_executor
from hetflow.workflows.graph import Workflow
from hetflow.workflows.store import ResultStore

distributed = pytest.importorskip("distributed", reason="dask.distributed not installed (pip install 'hetflow[dask]')")


def test_dask_workflow_runs_caches_and_ingests(tmp_path, fake_spec):
    mols = {n: molecule(n) for n in ("H2O", "CH4", "NH3")}
    wf = Workflow("dask")
    for n, a in mols.items():
        wf.add_calc(n, a, fake_spec)
    wf.add_calc("CH4_relax", None, fake_spec.replace(task="relax"), start_from="CH4")
    xtb = CalcSpec(method="GFN1-xTB")
    wf.add_calc("H2O_xtb", mols["H2O"], xtb)
    store = ResultStore(tmp_path / "r.db")
    s = wf.run(store, make_executor("dask", workers=2, threads=1), workdir=tmp_path / "w")
    assert (s.run, s.failed) == (5, 0), str(s)
    assert store.count() == 5
    row = store.get(calc_key(mols["H2O"], xtb))
    assert row.provenance["executor"] == "dask"
    assert row.energy == pytest.approx(run_calculation(mols["H2O"], xtb).energy, abs=1e-8)
    again = wf.run(store, make_executor("dask", workers=1), workdir=tmp_path / "w")
    assert (again.cached, again.run) == (5, 0)


def test_dask_options_are_validated():
    with pytest.raises(WorkflowError, match="unknown dask executor option"):
        make_executor("dask", partition="debug")
    with pytest.raises(WorkflowError, match="unknown jobqueue 'sge'"):
        make_executor("dask", jobqueue="sge")
    with pytest.raises(WorkflowError, match="either a scheduler address or a jobqueue"):
        make_executor("dask", address="tcp://127.0.0.1:8786", jobqueue="slurm")
