"""Issue 26, classes 3–6.

3. Reading commands create nothing (no store, folder or lock file) and read what they cannot
   write (a store on a read-only file system).
4. ``hetflow results`` lists every task, also tasks that share one stored result.
5. Malformed files are one-line user errors, never internal errors: ``json:`` info that is not
   JSON, a zero-volume crystal cell, a periodic cell far too large for any backend.
6. Validated at load, not at run time: the optimiser, scheduler fields (no newline, trailing
   or not, nor any other control character), ``HETFLOW_HEARTBEAT`` (clamped, with a warning).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from ase import Atoms
from ase.build import molecule

from hardening_helpers import assert_one_line_error, fake_yaml, run_cli
from hetflow.errors import HetflowError, InputError, WorkflowError


def _tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# ============================================================ 3. reading creates nothing
@pytest.mark.parametrize("how", ["store", "workflow", "workflow-all"])
def test_results_on_a_missing_store_creates_nothing(tmp_path, how):
    wf = tmp_path / "wf.yaml"
    wf.write_text(fake_yaml(["H2O"], extra="store: deep/er/results.db\n"))
    args = {"store": ("results", "--store", str(tmp_path / "deep" / "er" / "results.db")),
            "workflow": ("results", str(wf)),
            "workflow-all": ("results", str(wf), "--all", "--csv", "-")}[how]
    assert_one_line_error(run_cli(*args, cwd=tmp_path), "no result store", "results.db")
    assert _tree(tmp_path) == ["wf.yaml"]


def test_status_and_render_job_create_nothing(tmp_path):
    wf = tmp_path / "wf.yaml"
    wf.write_text(fake_yaml(["H2O"]))
    assert_one_line_error(run_cli("status", str(wf), cwd=tmp_path), "no workflow state")
    assert run_cli("render-job", str(wf), cwd=tmp_path).returncode == 0
    assert _tree(tmp_path) == ["wf.yaml"]


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory) -> Path:
    """A finished fake workflow of three tasks, two of them the same calculation."""
    d = tmp_path_factory.mktemp("shared")
    wf = d / "wf.yaml"
    wf.write_text("name: shared\nspec: {backend: fake, method: LJ}\nstructures:\n"
                  "  - {builder: molecule, params: {names: [H2O, CH4]}}\n"
                  "  - {builder: molecule, params: {names: [H2O]}, name: water_again}\n")
    p = run_cli("run", str(wf), "--workers", "1", "--no-progress", cwd=d)
    assert p.returncode == 0, p.stderr
    return wf


def test_results_lists_every_task_even_when_they_share_a_result(shared_run):
    p = run_cli("results", str(shared_run), "--csv", "-")
    assert p.returncode == 0, p.stderr
    rows = [line.split(",") for line in p.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == ["H2O", "CH4", "water_again"]  # workflow order, every task
    assert rows[0][-1] == rows[2][-1]  # one shared stored result (same key)
    table = run_cli("results", str(shared_run))
    assert table.returncode == 0 and "3 result(s)" in table.stdout and "water_again" in table.stdout


def test_results_reads_without_writing_anything(shared_run):
    d = shared_run.parent
    store = d / "wf-work" / "results.db"
    for lock in d.glob("wf-work/results.db.hetflow-lock*"):
        lock.unlink()
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in d.rglob("*")}
    assert run_cli("results", str(shared_run)).returncode == 0
    assert run_cli("results", "--store", str(store), "--csv", "-").returncode == 0
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in d.rglob("*")} == before


def test_results_on_a_read_only_file_system(tmp_path, shared_run):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()[:100]}")
    try:
        (mnt / "results.db").write_bytes((shared_run.parent / "wf-work" / "results.db").read_bytes())
        r = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("cannot remount read-only here")
        out = run_cli("results", "--store", str(mnt / "results.db"), "--csv", "-")
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.splitlines()) == 3  # header + the two stored calculations
        assert _tree(mnt) == ["results.db"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_read_only_store_refuses_writes(shared_run):
    from hetflow.errors import StoreError
    from hetflow.workflows.store import ResultStore

    store = ResultStore(shared_run.parent / "wf-work" / "results.db", readonly=True)
    assert store.count() == 2
    with pytest.raises(StoreError, match="read-only"):
        store.ingest({"key": "x"})


# ============================================================ 5. malformed files
def test_malformed_json_info_is_one_line(tmp_path):
    from hetflow.structures.io import read_structure

    a = molecule("H2O")
    a.info["registry"] = "json:{not json"
    f = tmp_path / "bad.extxyz"
    a.write(str(f))
    with pytest.raises(InputError, match="registry.*not valid JSON"):
        read_structure(f)
    assert_one_line_error(run_cli("calc", "single-point", str(f)), "bad.extxyz", "json")
    assert_one_line_error(run_cli("build", "exchange", str(f), "-o", str(tmp_path / "ex")), "bad.extxyz", "json")


ZERO_CIF = """data_z
_cell_length_a {a}
_cell_length_b 5
_cell_length_c 5
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma {gamma}
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1 Na 0 0 0
Cl1 Cl 0.5 0.5 0.5
"""


@pytest.mark.parametrize("a, gamma", [(0, 90), (5, 180), (5, 0)])
def test_zero_volume_cif_is_one_line(tmp_path, a, gamma):
    f = tmp_path / "z.cif"
    f.write_text(ZERO_CIF.format(a=a, gamma=gamma))
    assert_one_line_error(run_cli("calc", "single-point", str(f)), "z.cif", "volume")
    wf = tmp_path / "wf.yaml"
    wf.write_text("spec: {backend: fake, method: LJ}\nstructures: [z.cif]\n")
    assert_one_line_error(run_cli("run", str(wf), cwd=tmp_path), "z.cif", "volume")


@pytest.mark.parametrize("cell", [[1e6, 1e6, 1e6], [10, 10, 0], [[5, 0, 0], [5, 0, 0], [0, 0, 5]]])
def test_periodic_cells_no_backend_can_take_are_refused_before_a_worker(tmp_path, cell):
    from hetflow.calculators import CalcSpec, run_calculation
    from hetflow.workflows.graph import Workflow

    atoms = Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]], cell=cell, pbc=True)
    spec = CalcSpec(backend="tblite", method="GFN1-xTB", periodic=True)
    with pytest.raises(InputError, match="cell"):
        run_calculation(atoms, spec)
    with pytest.raises(WorkflowError, match="cell"):
        Workflow("w").add_calc("nacl", atoms, spec)
    f = tmp_path / "nacl.extxyz"
    atoms.write(str(f))
    assert_one_line_error(run_cli("calc", "single-point", str(f)), "cell")
    # the same structure without periodicity is a molecule and fine to set up
    Workflow("w").add_calc("nacl", atoms, CalcSpec(backend="tblite", method="GFN1-xTB", periodic=False))


# ============================================================ 6. validated at load
@pytest.mark.parametrize("command", ["status", "render-job", "run", "results"])
def test_unknown_optimizer_refused_at_load(tmp_path, command):
    wf = tmp_path / "wf.yaml"
    wf.write_text("spec: {backend: tblite, method: GFN1-xTB, task: relax, optimizer: Newton}\n"
                  "structures: [{builder: molecule, params: {names: [H2O]}}]\n")
    assert_one_line_error(run_cli(command, str(wf), cwd=tmp_path), "optimizer", "Newton", "FIRE")
    assert _tree(tmp_path) == ["wf.yaml"]


def test_unknown_optimizer_refused_by_the_python_api():
    from hetflow.calculators import CalcSpec

    for bad in ("Newton", "fire", ""):
        with pytest.raises(InputError, match="optimizer"):
            CalcSpec(backend="fake", method="LJ", task="relax", optimizer=bad)
    assert CalcSpec(backend="fake", method="LJ", optimizer="LBFGS").optimizer == "LBFGS"


@pytest.mark.parametrize("field", ["partition", "account", "memory"])
@pytest.mark.parametrize("value", ["x\\n", "x\\r", "x\\ty", "\\nx", "x\\n\\n"])
def test_scheduler_fields_refuse_control_characters(tmp_path, field, value):
    good = {"partition": "debug", "account": "proj1", "memory": "4G"}[field]
    wf = tmp_path / "wf.yaml"
    wf.write_text(fake_yaml(["H2O"], extra=f'executor: {{type: slurm, {field}: "{value.replace("x", good)}"}}\n'))
    for command in ("render-job", "status"):
        assert_one_line_error(run_cli(command, str(wf), cwd=tmp_path), field)
    from hetflow.workflows._jobscript import JobResources

    raw = value.replace("x", good).encode().decode("unicode_escape")
    with pytest.raises(HetflowError, match=field):
        JobResources.from_dict({field: raw})
    assert getattr(JobResources.from_dict({field: good}), field) == good


@pytest.mark.parametrize("raw, expected, warns", [
    ("1e-9", 0.5, True), ("0", 0.5, True), ("-3", 0.5, True), ("1e12", 86400.0, True),
    ("nan", 30.0, True), ("inf", 30.0, True), ("soon", 30.0, True), ("5", 5.0, False), ("", 30.0, False),
])
def test_heartbeat_env_is_bounded(monkeypatch, caplog, raw, expected, warns):
    from hetflow.workflows import progress

    monkeypatch.setenv("HETFLOW_HEARTBEAT", raw)
    monkeypatch.setattr(progress, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="hetflow"):
        assert progress.heartbeat_interval() == expected
        assert progress.heartbeat_interval() == expected
    msgs = [r.getMessage() for r in caplog.records if "HETFLOW_HEARTBEAT" in r.getMessage()]
    assert len(msgs) == (1 if warns else 0)  # one warning, not one per heartbeat
