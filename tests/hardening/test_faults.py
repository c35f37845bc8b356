"""Fault injection not covered by tests/workflows (which already kill -9 workers and the
controller, scancel Slurm jobs and hammer the store concurrently).

After every fault the workflow is run again and the store is checked with a raw SQL
integrity query (finite energies, unique calc_key, forces N×3).  The FakeCalculator is used
only where the orchestration is under test; the SCF failure uses real tblite.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from hardening_helpers import store_integrity
from hetflow.calculators import CalcSpec, calc_key, run_calculation
from hetflow.errors import CalculatorError, ConvergenceError
from hetflow.workflows._engine import Engine
from hetflow.workflows._taskdir import TaskDir
from hetflow.workflows.executors import LocalExecutor
from hetflow.workflows.graph import Workflow
from hetflow.workflows.store import ResultStore


# --------------------------------------------------------------------------- SCF failure
def test_scf_not_converged_fails_the_task_then_good_spec_finishes(tmp_path):
    """Real tblite, 3 SCF iterations and recovery off: the task fails with the SCF message,
    nothing is stored; the same structure with a sane spec then runs and is stored once."""
    h2o = molecule("H2O")
    bad = CalcSpec(method="GFN2-xTB", settings={"scf_max_iter": 3, "recovery": False})
    good = CalcSpec(method="GFN2-xTB")
    db = tmp_path / "r.db"

    wf = Workflow("scf")
    wf.add_calc("h2o", h2o, bad)
    s = wf.run(ResultStore(db), LocalExecutor(workers=1, threads=1), workdir=tmp_path / "w")
    assert (s.run, s.failed) == (0, 1), str(s)
    msg = s.failures["h2o"]
    assert msg.startswith("ConvergenceError:") and "did not converge" in msg and "H2O" in msg
    assert "\n" not in msg
    assert store_integrity(db) == 0

    wf2 = Workflow("scf")
    wf2.add_calc("h2o", h2o, good)
    s2 = wf2.run(ResultStore(db), LocalExecutor(workers=1, threads=1), workdir=tmp_path / "w")
    assert (s2.run, s2.failed) == (1, 0), str(s2)
    assert store_integrity(db) == 1
    row = ResultStore(db).get(calc_key(h2o, good))
    assert row.converged and row.forces.shape == (3, 3)
    # a fresh calculation agrees with the stored one (the failure left nothing behind)
    assert row.energy == pytest.approx(run_calculation(h2o, good).energy, abs=1e-8)
    # the failed spec's key never reached the store
    assert not ResultStore(db).has(calc_key(h2o, bad))


def test_scf_failure_is_one_line_on_the_cli(tmp_path):
    from hardening_helpers import assert_one_line_error, run_cli

    f = tmp_path / "h2o.xyz"
    molecule("H2O").write(str(f))
    p = run_cli("calc", "single-point", str(f), "--method", "gfn2", "--set", "scf_max_iter=3",
                "--set", "recovery=false", "--json", str(tmp_path / "out.json"))
    assert_one_line_error(p, "did not converge", "H2O")
    assert not (tmp_path / "out.json").exists()


# --------------------------------------------------------------------------- garbage result file
def _two_task_wf(spec):
    wf = Workflow("garbage")
    wf.add_calc("H2O", molecule("H2O"), spec)
    wf.add_calc("CH4", molecule("CH4"), spec)
    return wf


@pytest.mark.parametrize("garbage", [
    b"\x00\x9f\x13garbage\xff" * 50,                      # binary noise
    b'{"key": "',                                          # truncated JSON
    b"[1, 2, 3]",                                          # JSON of the wrong shape
    "KEY",                                                 # right key, corrupt content
], ids=["binary", "truncated-json", "wrong-shape", "right-key-bad-payload"])
def test_garbage_result_file_is_detected_and_recomputed(tmp_path, fake_spec, garbage):
    """A result.json filled with garbage (a crashed file system, a stray editor) is never
    ingested: the task is recomputed and stored exactly once with the right energy."""
    spec = fake_spec.replace(method="EMT-like")
    wf = _two_task_wf(spec)
    db = tmp_path / "r.db"
    wd = tmp_path / "w"
    # prepare the task directories as a controller killed before ingesting would leave them
    key = calc_key(molecule("H2O"), spec)
    td = TaskDir.for_task(wd, "H2O")
    td.prepare("H2O", key, molecule("H2O"), spec)
    if garbage == "KEY":
        garbage = json.dumps({"key": key, "name": "H2O", "energy": "not a number", "forces": [[1, 2]],
                              "atoms": "garbage", "spec": spec.to_dict()}).encode()
    td.result.write_bytes(garbage)

    s = wf.run(ResultStore(db), LocalExecutor(workers=1), workdir=wd)
    assert (s.run, s.ingested, s.failed) == (2, 0, 0), str(s)
    assert store_integrity(db) == 2
    store = ResultStore(db)
    from hetflow.calculators.fake import FakeCalculator

    direct = FakeCalculator().run(molecule("H2O"), spec).energy
    assert store.get(key).energy == pytest.approx(direct, abs=1e-12)
    json.loads(td.result.read_text())  # the garbage was replaced by a real result
    # a second run is fully cached
    s2 = _two_task_wf(spec).run(ResultStore(db), LocalExecutor(workers=1), workdir=wd)
    assert (s2.cached, s2.run) == (2, 0)
    assert store_integrity(db) == 2


# --------------------------------------------------------------------------- truncated CP2K output
HAVE_CP2K = shutil.which("cp2k.psmp") is not None


@pytest.fixture(scope="module")
def cp2k_pbcl2(tmp_path_factory):
    """A real CP2K PBE single point of bent PbCl2 (8 Å box) — run once, ≈ 1 min on 2 cores."""
    if not HAVE_CP2K:
        pytest.skip("cp2k.psmp not installed")
    r, ang = 2.44, np.radians(98.0)
    atoms = Atoms("PbCl2", positions=[[0, 0, 0], [r, 0, 0], [r * np.cos(ang), r * np.sin(ang), 0]])
    spec = CalcSpec(backend="cp2k", method="PBE", settings={"box": [8, 8, 8]})
    root = tmp_path_factory.mktemp("cp2k-trunc")
    wf = Workflow("cp2k")
    wf.add_calc("pbcl2", atoms, spec)
    s = wf.run(ResultStore(root / "ref.db"), LocalExecutor(workers=1, threads=1), workdir=root / "w")
    assert s.run == 1, str(s)
    return atoms, spec, root


@pytest.mark.cp2k
@pytest.mark.slow
def test_truncated_cp2k_output_is_a_clear_error_and_the_handler_reruns_it(cp2k_pbcl2, tmp_path):
    atoms, spec, root = cp2k_pbcl2
    from hetflow.calculators.cp2k import parse_output

    attempt = root / "w" / "tasks" / "pbcl2" / "attempt-0"
    full = (attempt / "hetflow.out").read_text()
    ref = ResultStore(root / "ref.db").get(calc_key(atoms, spec))
    assert parse_output(attempt, atoms, spec).energy == pytest.approx(ref.energy, abs=1e-9)

    # cut the output in the middle of the SCF (before the total energy is printed)
    cut = tmp_path / "attempt-0"
    shutil.copytree(attempt, cut)
    (cut / "hetflow.out").write_text(full[: full.index("ENERGY| Total FORCE_EVAL") - 200])
    with pytest.raises(CalculatorError) as ei:
        parse_output(cut, atoms, spec)
    assert not isinstance(ei.value, ConvergenceError)
    msg = str(ei.value)
    assert "\n" not in msg and "has no total energy" in msg and "hetflow.out" in msg

    # the same truncation inside a workflow's task directory (result.ok present, as after a
    # node crash while CP2K flushed its output): the truncated-output handler reruns the
    # attempt once, resuming from its restart files, and says so in the row's provenance
    wd = tmp_path / "w"
    shutil.copytree(root / "w", wd)
    tdir = wd / "tasks" / "pbcl2"
    (tdir / "result.json").unlink()
    (tdir / "attempt-0" / "hetflow.out").write_text(full[: full.index("ENERGY| Total FORCE_EVAL") - 200])
    db = tmp_path / "r.db"
    wf = Workflow("cp2k")
    wf.add_calc("pbcl2", atoms, spec)
    s = wf.run(ResultStore(db), LocalExecutor(workers=1, threads=1), workdir=wd)
    assert (s.run, s.failed) == (1, 0), str(s)
    assert store_integrity(db) == 1
    row = ResultStore(db).get(calc_key(atoms, spec))
    assert row.energy == pytest.approx(ref.energy, abs=1e-6)
    assert any("resumed after truncated output of a finished run" in x for x in row.provenance["recovery"])
    assert (tdir / "attempt-0" / "segment-1" / "hetflow.out").read_text().startswith(full[:200])
