"""``CalcSpec(prerelax="chgnet")``: MLIP relaxation first, then the target method's own relaxation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
import time

import numpy as np
import pytest

from hetflow.calculators import CalcSpec, run_calculation
from hetflow.calculators.run import prerelax_spec
from hetflow.errors import InputError

pytest.importorskip("torch")


def test_prerelaxed_gfn1_ends_at_its_own_minimum(tiny_nc, tmp_path):
    spec = CalcSpec(method="GFN1-xTB", task="relax", optimizer="FIRE", fmax=0.05, max_steps=300,
                    prerelax="chgnet")
    r = run_calculation(tiny_nc, spec, tmp_path)
    pre = r.extra["prerelax"]
    assert r.spec == spec and r.converged and r.extra["fmax_reached"] < 0.05
    assert pre["backend"] == "chgnet" and pre["method"] == "CHGNet-0.3.0" and pre["converged"]
    assert pre["force_calls"] >= pre["opt_steps"] + 1 > 1 and pre["fmax_reached"] < 0.05
    assert r.force_calls >= r.opt_steps + 1
    assert "CHGNet-0.3.0" in r.versions["prerelax"] and "tblite" in r.versions
    # the energy is GFN1's own, at GFN1's own geometry: a plain single point agrees
    sp = run_calculation(r.atoms, CalcSpec(method="GFN1-xTB"))
    assert r.energy == pytest.approx(sp.energy, abs=1e-6)
    assert np.abs(r.forces - sp.forces).max() < 1e-4
    assert np.linalg.norm(sp.forces, axis=1).max() < 0.05
    # and the CHGNet stage really moved the atoms before GFN1 started
    stage1 = json.loads((tmp_path / "prerelax" / "checkpoint.json").read_text())
    assert np.abs(np.asarray(stage1["positions"]) - tiny_nc.positions).max() > 0.05
    assert np.array_equal(r.atoms.arrays["domain"], tiny_nc.arrays["domain"])
    # what the workflow store records as provenance
    from hetflow.workflows._worker import result_payload

    prov = result_payload("nc", "k", r, 0.0, 1.0)["provenance"]
    assert prov["force_calls"] == r.force_calls
    assert prov["prerelax"]["force_calls"] == pre["force_calls"]
    assert prov["prerelax"]["fmax_reached"] == pre["fmax_reached"]


def test_prerelax_spec_fields_and_key():
    spec = CalcSpec(task="relax", prerelax="CHGNet", optimizer="LBFGS", fmax=0.03,
                    settings={"freeze": {"layer": [0]}, "electronic_temperature": 500, "threads": 1})
    assert spec.prerelax == "chgnet"
    pre = prerelax_spec(spec)
    assert (pre.backend, pre.task, pre.optimizer, pre.fmax) == ("chgnet", "relax", "LBFGS", 0.03)
    assert pre.settings_dict == {"freeze": {"layer": [0]}, "threads": 1}  # no xTB settings
    assert spec.key() != spec.replace(prerelax=None).key()
    assert CalcSpec().key() == "84e4ec750f12bef4"  # unchanged by the new field: caches stay valid
    assert CalcSpec.from_dict(spec.to_dict()) == spec


def test_prerelax_refusals():
    with pytest.raises(InputError, match="prerelax needs task='relax'"):
        CalcSpec(prerelax="chgnet")
    with pytest.raises(InputError, match="unknown prerelax 'mace'"):
        CalcSpec(task="relax", prerelax="mace")
    with pytest.raises(InputError, match="chgnet cannot model charged systems"):
        CalcSpec(task="relax", prerelax="chgnet", charge=-2)
    with pytest.raises(InputError, match="is the target backend itself"):
        CalcSpec(backend="chgnet", task="relax", prerelax="chgnet")


def test_resume_in_stage_one(tiny_nc, tmp_path):
    spec = CalcSpec(method="GFN1-xTB", task="relax", optimizer="LBFGS", fmax=0.05, max_steps=300,
                    prerelax="chgnet")
    partial = run_calculation(tiny_nc, prerelax_spec(spec.replace(max_steps=4)), tmp_path / "prerelax")
    assert not partial.converged and partial.opt_steps == 4
    r = run_calculation(tiny_nc, spec, tmp_path)
    assert r.extra["prerelax"]["resumed_from_step"] == 4
    assert r.extra["prerelax"]["opt_steps"] > 4 and r.extra["prerelax"]["converged"]
    assert r.extra["prerelax"]["force_calls"] > partial.force_calls
    assert r.extra["resumed_from_step"] == 0 and r.converged


TESTS_DIR = str(Path(__file__).resolve().parents[1])

_CHILD = textwrap.dedent(
    """
    import sys
    from hetflow.calculators import CalcSpec, run_calculation
    sys.path.insert(0, sys.argv[2])
    from conftest import symmetric_cluster  # the `cluster` fixture's structure (tests/conftest.py)
    atoms = symmetric_cluster()
    spec = CalcSpec(method="GFN1-xTB", task="relax", optimizer="LBFGS", fmax=0.03, max_steps=300,
                    prerelax="chgnet", settings={"threads": 1})
    run_calculation(atoms, spec, sys.argv[1])
    """
)


@pytest.mark.slow
def test_killed_in_stage_two_resumes_in_stage_two(cluster, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), TESTS_DIR], start_new_session=True, env=env)
    cp = tmp_path / "checkpoint.json"  # stage 2 (GFN1); stage 1 writes prerelax/checkpoint.json
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if cp.exists() and json.loads(cp.read_text())["steps"] >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "relaxation finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = json.loads(cp.read_text())
    stage1 = json.loads((tmp_path / "prerelax" / "checkpoint.json").read_text())
    assert stage1["converged"] and killed["steps"] >= 3

    spec = CalcSpec(method="GFN1-xTB", task="relax", optimizer="LBFGS", fmax=0.03, max_steps=300,
                    prerelax="chgnet", settings={"threads": 1})
    r = run_calculation(cluster, spec, tmp_path)
    pre = r.extra["prerelax"]
    assert pre["opt_steps"] == stage1["steps"]  # stage 1 was not stepped again …
    assert pre["force_calls"] == stage1["force_calls"] + 1  # … only re-evaluated once
    assert r.extra["resumed_from_step"] == killed["steps"] and r.converged
    assert r.force_calls > killed["force_calls"]
    sp = run_calculation(r.atoms, CalcSpec(method="GFN1-xTB", settings={"threads": 1}))
    assert r.energy == pytest.approx(sp.energy, abs=1e-6)


def test_workflow_file_accepts_prerelax_and_mlip_levels(tmp_path):
    from hetflow.errors import WorkflowError
    from hetflow.workflows.wfile import load_workflow_file

    p = tmp_path / "wf.yaml"
    p.write_text("""
spec: {method: GFN1-xTB, task: relax}
structures:
  - {builder: molecule, params: {names: [H2O]}}
  - {name: H2O_pre, from: H2O, spec: {prerelax: CHGNet}}
  - {name: H2O_mlip, from: H2O, spec: {backend: sevennet, method: 7net-0}}
""")
    try:
        wf = load_workflow_file(p)
    except WorkflowError as exc:  # pragma: no cover - the assertion below explains
        pytest.fail(str(exc))
    assert wf.workflow.task("H2O").spec.prerelax is None
    assert wf.workflow.task("H2O_pre").spec.prerelax == "chgnet"
    assert wf.workflow.task("H2O_mlip").spec.backend == "sevennet"
