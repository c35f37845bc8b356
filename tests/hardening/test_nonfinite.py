"""Issue 14, item 5: NaN and infinity never pass validation, and a NaN result is a clear
failure, not a lost worker.

On main ``fmax: .nan``, ``--fmax nan`` and ``--set electronic_temperature=NaN|Infinity`` or
``accuracy=NaN`` ran the whole step budget or SCF recovery ladder and blamed the SCF; a worker
result with a NaN energy was reported as "worker ended without writing a result" and computed
three times.
"""

from __future__ import annotations

import time

import pytest
from ase import Atoms
from ase.build import molecule

from hardening_helpers import assert_one_line_error, fake_yaml, run_cli, store_integrity


@pytest.fixture
def h2o_file(tmp_path):
    f = tmp_path / "h2o.xyz"
    molecule("H2O").write(str(f))
    return f


@pytest.mark.parametrize("args, words", [
    (("relax", "--fmax", "nan"), ("--fmax", "finite", "nan")),
    (("relax", "--fmax", "inf"), ("--fmax", "finite", "inf")),
    (("relax", "--fmax", "-0.1"), ("--fmax", "(0, 1000]", "-0.1")),
    (("single-point", "--set", "electronic_temperature=NaN"), ("electronic_temperature", "finite", "nan")),
    (("single-point", "--set", "electronic_temperature=Infinity"), ("electronic_temperature", "finite", "inf")),
    (("single-point", "--set", "electronic_temperature=-Infinity"), ("electronic_temperature", "finite")),
    (("single-point", "--set", "accuracy=NaN"), ("accuracy", "finite", "nan")),
    (("single-point", "--set", "mixer_damping=1e999"), ("mixer_damping", "finite")),
    (("single-point", "--set", "electronic_temperature=1e9"), ("electronic_temperature", "100000]", "1000000000")),
], ids=lambda v: "_".join(v) if isinstance(v, tuple) else v)
def test_cli_non_finite_numbers_are_refused_before_any_scf(h2o_file, tmp_path, args, words):
    t0 = time.time()
    p = run_cli("calc", args[0], str(h2o_file), *args[1:], "--json", str(tmp_path / "o.json"))
    assert_one_line_error(p, *words)
    assert "SCF" not in p.stderr and time.time() - t0 < 30
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("spec, words", [
    ("{backend: fake, method: LJ, task: relax, fmax: .nan}", ("fmax", "finite", "nan")),
    ("{backend: fake, method: LJ, task: relax, fmax: .inf}", ("fmax", "finite", "inf")),
    ("{backend: fake, method: LJ, settings: {sigma: .nan}}", ("settings.sigma", "finite")),
    ("{backend: fake, method: LJ, settings: {nested: [1, -.inf]}}", ("settings.nested", "finite")),
    ("{backend: tblite, method: GFN1-xTB, settings: {accuracy: .nan}}", ("accuracy", "finite")),
])
def test_yaml_non_finite_numbers_are_refused(tmp_path, spec, words):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(f"spec: {spec}\nstructures: [{{builder: molecule, params: {{names: [H2O]}}}}]\n")
    assert_one_line_error(run_cli("run", str(wfy), cwd=tmp_path), "wf.yaml", *words)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["wf.yaml"]


def test_python_api_non_finite_numbers():
    from hetflow.calculators import CalcSpec
    from hetflow.errors import InputError

    for kw in ({"fmax": float("nan")}, {"fmax": float("inf")}, {"settings": {"electronic_temperature": float("nan")}},
               {"settings": {"a": {"b": [1.0, float("-inf")]}}}, {"max_steps": float("nan")}):
        with pytest.raises(InputError, match="finite"):
            CalcSpec(**kw)


def test_nan_energy_fails_once_with_the_reason(tmp_path, fake_spec):
    """Two coincident atoms give the fake Lennard-Jones calculator a NaN energy: the task fails
    at its first attempt with "energy is not finite", nothing is stored, the others run."""
    from hetflow.workflows._taskdir import TaskDir
    from hetflow.workflows.executors import LocalExecutor
    from hetflow.workflows.graph import Workflow
    from hetflow.workflows.store import ResultStore

    wf = Workflow("nan")
    wf.add_calc("coincident", Atoms("H2", positions=[[0, 0, 0], [0, 0, 0]]), fake_spec)
    wf.add_calc("fine", molecule("H2O"), fake_spec)
    db = tmp_path / "r.db"
    s = wf.run(ResultStore(db), LocalExecutor(workers=1, max_retries=2), workdir=tmp_path / "w")
    assert (s.run, s.failed) == (1, 1), str(s)
    msg = s.failures["coincident"]
    assert "not finite" in msg and "worker ended" not in msg and "lost" not in msg, msg
    assert TaskDir.for_task(tmp_path / "w", "coincident").job_info()["attempts"] == 1
    assert store_integrity(db) == 1


def test_nan_energy_through_the_cli_is_one_failed_task(tmp_path):
    (tmp_path / "h2.xyz").write_text("2\n\nH 0 0 0\nH 0 0 0\n")
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"]) + "  - h2.xyz\n")
    p = run_cli("run", str(wfy), "--no-progress", cwd=tmp_path)
    assert p.returncode == 1 and "1 run, 1 failed" in p.stdout, p.stdout + p.stderr
    assert "failed h2: CalculatorError: fake LJ gave an unusable result for H2: energy is not finite" in p.stdout
