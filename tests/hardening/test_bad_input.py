"""Bad-input catalogue: one test per case.  Each asserts a one-line error that names the
problem and that nothing was left half-written (no output file, no task directory, no store
row).  CLI cases run ``python -m hetflow.cli`` in a subprocess (exit 2, stderr one line
``error: …``); the others call the Python API (a HetflowError subclass).

Tests run as root, so ``chmod`` cannot make a directory read-only for them: the "read-only
work directory" cases put the work directory *under a regular file*, which no user, root
included, can create.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from hardening_helpers import assert_one_line_error, run_cli, store_integrity
from hetflow.calculators import CalcSpec, run_calculation
from hetflow.errors import (CalculatorError, HetflowError, InputError, StructureError, UnknownPhaseError,
                            WorkflowError)
from hetflow.workflows.graph import Workflow
from hetflow.workflows.store import ResultStore

FAKE_YAML = """name: t
spec: {{backend: fake, method: LJ}}
structures: [{{builder: molecule, params: {{names: [H2O, CH4]}}}}]
{extra}"""


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.fixture(scope="module")
def hs_file(tmp_path_factory) -> Path:
    """A small labelled CsPbCl3/Pb4S3Cl2 heterostructure (7 perovskite layers) as extxyz."""
    from hetflow.structures.interface import build_heterostructure
    from hetflow.structures.io import write_structure

    d = tmp_path_factory.mktemp("hs")
    return write_structure(build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 3)), d / "hs.extxyz")


@pytest.fixture
def h2o_file(tmp_path) -> Path:
    f = tmp_path / "h2o.xyz"
    molecule("H2O").write(str(f))
    return f


# ============================================================ CLI cases (exit 2, one line)
def test_cli_empty_cif(tmp_path):
    (tmp_path / "empty.cif").write_text("")
    assert_one_line_error(run_cli("phases", "--cif", str(tmp_path / "empty.cif")), "empty.cif", "empty")


def test_cli_malformed_cif(tmp_path):
    (tmp_path / "bad.cif").write_text("data_x\n_cell_length_a garbage\nloop_\n_atom_site_label\n")
    assert_one_line_error(run_cli("phases", "--cif", str(tmp_path / "bad.cif")), "malformed CIF", "bad.cif")


OVERLAP_CIF = """data_ov
_cell_length_a 5.0
_cell_length_b 5.0
_cell_length_c 5.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Cs1 Cs 0 0 0
Cl1 Cl 0.01 0 0
"""


def test_cli_cif_with_overlapping_atoms(tmp_path):
    (tmp_path / "ov.cif").write_text(OVERLAP_CIF)
    assert_one_line_error(run_cli("phases", "--cif", str(tmp_path / "ov.cif")), "overlapping atoms", "0.05 Å")


def test_cli_unknown_phase(tmp_path):
    out = tmp_path / "nc.extxyz"
    assert_one_line_error(run_cli("build", "nc", "--phase", "CsPbF7", "-o", str(out)), "unknown phase", "CsPbF7")
    assert _files(tmp_path) == []


def test_cli_negative_size(tmp_path):
    out = tmp_path / "nc.extxyz"
    assert_one_line_error(run_cli("build", "nc", "--size", "-1", "3", "3", "-o", str(out)),
                          "size must be positive", "-1")
    assert _files(tmp_path) == []


@pytest.mark.parametrize("fraction", ["0", "1.5"], ids=["zero", "above-one"])
def test_cli_exchange_fraction_outside_0_1(hs_file, tmp_path, fraction):
    out = tmp_path / "ex"
    p = run_cli("build", "exchange", str(hs_file), "--pattern", "custom", "--layers", "0",
                "--fraction", fraction, "-o", str(out))
    assert_one_line_error(p, "fraction must be in (0, 1]", fraction)
    assert not out.exists()


def test_cli_exchange_n_larger_than_layers(hs_file, tmp_path):
    out = tmp_path / "ex"
    p = run_cli("build", "exchange", str(hs_file), "--pattern", "s1", "--n-max", "12", "-o", str(out))
    assert_one_line_error(p, "N = 12", "7 perovskite layers")
    assert not out.exists()


def test_cli_unknown_method(h2o_file, tmp_path):
    p = run_cli("calc", "single-point", str(h2o_file), "--method", "gfn9", "--json", str(tmp_path / "o.json"))
    assert_one_line_error(p, "unknown method", "gfn9", "GFN2-xTB")
    assert not (tmp_path / "o.json").exists()


def test_cli_charge_inconsistent_with_electrons(tmp_path):
    f = tmp_path / "h2.xyz"
    f.write_text("2\n\nH 0 0 0\nH 0 0 0.74\n")
    p = run_cli("calc", "single-point", str(f), "--charge", "5", "--json", str(tmp_path / "o.json"))
    assert_one_line_error(p, "charge +5", "-3 electrons")
    assert not (tmp_path / "o.json").exists()


def test_cli_unknown_element(tmp_path):
    f = tmp_path / "qq.xyz"
    f.write_text("2\n\nH 0 0 0\nQq 0 0 0.74\n")
    p = run_cli("calc", "single-point", str(f), "--json", str(tmp_path / "o.json"))
    assert_one_line_error(p, "unknown element", "'Qq'", "qq.xyz")
    assert not (tmp_path / "o.json").exists()


def test_cli_cp2k_not_installed(h2o_file, tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    wd = tmp_path / "cp2k-run"
    p = run_cli("calc", "single-point", str(h2o_file), "--backend", "cp2k", "--method", "pbe",
                "--workdir", str(wd), "--json", str(tmp_path / "o.json"), env={"PATH": str(empty_bin)})
    assert_one_line_error(p, "cp2k.psmp", "not found on PATH")
    assert not wd.exists() and not (tmp_path / "o.json").exists()


def test_cli_yaml_unknown_key(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(FAKE_YAML.format(extra="exector: {type: local}\n"))
    assert_one_line_error(run_cli("run", str(wfy)), "wf.yaml", "unknown key", "exector")
    assert _files(tmp_path) == ["wf.yaml"]


def test_cli_yaml_wrong_type(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(FAKE_YAML.format(extra="").replace("method: LJ", "method: LJ, charge: one"))
    assert_one_line_error(run_cli("run", str(wfy)), "spec.charge must be int", "'one'")
    assert _files(tmp_path) == ["wf.yaml"]


def test_cli_store_url_cannot_be_opened(tmp_path):
    pytest.importorskip("psycopg2")
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(FAKE_YAML.format(extra="store: postgresql://nobody@127.0.0.1:1/none\n"))
    line = assert_one_line_error(run_cli("run", str(wfy)), "cannot open result store", "127.0.0.1:1")
    assert "nobody" not in line  # credentials are not echoed
    assert not (tmp_path / "wf-work" / "tasks").exists()


def test_cli_read_only_work_directory(tmp_path):
    """Root ignores chmod, so the work directory is placed under a regular file."""
    (tmp_path / "afile").write_text("not a directory\n")
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(FAKE_YAML.format(extra=f"workdir: {tmp_path}/afile/work\nstore: {tmp_path}/r.db\n"))
    assert_one_line_error(run_cli("run", str(wfy)), "cannot create work directory", "afile/work")
    assert store_integrity(tmp_path / "r.db") == 0
    # and the store's own directory under a file (default store = <workdir>/results.db)
    wfy.write_text(FAKE_YAML.format(extra=f"workdir: {tmp_path}/afile/work\n"))
    assert_one_line_error(run_cli("run", str(wfy)), "cannot create store directory", "afile/work")


def test_cli_walltime_does_not_parse(tmp_path):
    p = run_cli("render-job", "--walltime", "ten minutes", "--workdir", str(tmp_path))
    assert_one_line_error(p, "invalid walltime", "'ten minutes'")
    assert p.stdout == ""
    p = run_cli("render-job", "--walltime", "25:99:00", "--workdir", str(tmp_path))
    assert_one_line_error(p, "invalid walltime", "< 60")


def test_cli_scheduler_command_missing(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(FAKE_YAML.format(extra="executor: {type: slurm, walltime: '00:10:00'}\n"))
    p = run_cli("submit", str(wfy), env={"PATH": str(empty_bin)})
    assert_one_line_error(p, "sbatch", "not found on PATH", "slurm")
    assert not (tmp_path / "wf-work" / "tasks").exists()  # no job script, no input written
    assert store_integrity(tmp_path / "wf-work" / "results.db") == 0


# ============================================================ Python-level cases
def test_unknown_phase_python():
    from hetflow.structures.phases import get_phase

    with pytest.raises(UnknownPhaseError, match="unknown phase 'CsPbF7'"):
        get_phase("CsPbF7")


def test_fraction_zero_python(hs_file):
    from hetflow.structures import exchange as ex
    from hetflow.structures.io import read_structure

    hs = read_structure(hs_file)
    with pytest.raises(InputError, match=r"fraction must be in \(0, 1\], got 0"):
        ex.custom_exchange(hs, layers=[1], fraction=0.0, seed=1)


def test_nan_positions(tmp_path):
    a = molecule("H2O")
    a.positions[1, 0] = np.nan
    with pytest.raises(InputError, match="non-finite .*NaN"):
        run_calculation(a, CalcSpec(method="GFN1-xTB"), workdir=tmp_path / "calc")
    assert not (tmp_path / "calc").exists()
    wf = Workflow("nan")
    with pytest.raises(WorkflowError, match="task 'w': structure has non-finite"):
        wf.add_calc("w", a, CalcSpec(backend="fake", method="LJ"))
    assert wf.tasks == []


def test_empty_structure(tmp_path):
    with pytest.raises(InputError, match="no atoms"):
        run_calculation(Atoms(), CalcSpec(method="GFN1-xTB"))
    wf = Workflow("empty")
    with pytest.raises(WorkflowError, match="task 'e': the structure has no atoms"):
        wf.add_calc("e", Atoms(), CalcSpec(backend="fake", method="LJ"))
    # and through a workflow file: an empty xyz frame
    (tmp_path / "e.xyz").write_text("0\n\n")
    (tmp_path / "wf.yaml").write_text("spec: {backend: fake, method: LJ}\nstructures: [e.xyz]\n")
    p = run_cli("run", str(tmp_path / "wf.yaml"))
    assert_one_line_error(p, "no atoms")
    assert _files(tmp_path) == ["e.xyz", "wf.yaml"]


def test_dependency_cycle(tmp_path, fake_spec):
    wf = Workflow("cyc")
    wf.add_calc("a", None, fake_spec, start_from="b")
    wf.add_calc("b", None, fake_spec, start_from="a")
    with pytest.raises(WorkflowError, match="dependency cycle: (a -> b -> a|b -> a -> b)"):
        wf.run(ResultStore(tmp_path / "r.db"), workdir=tmp_path / "w")
    assert not (tmp_path / "w").exists()
    assert store_integrity(tmp_path / "r.db") == 0


def test_unknown_method_python():
    with pytest.raises(InputError, match="unknown method 'GFN3' for backend 'tblite'"):
        CalcSpec(method="GFN3")
    with pytest.raises(InputError, match="unknown method 'B3LYP' for backend 'cp2k'"):
        CalcSpec(backend="cp2k", method="B3LYP")


def test_multiplicity_inconsistent_with_electrons():
    with pytest.raises(InputError, match="odd number of electrons"):
        run_calculation(molecule("H2O"), CalcSpec(method="GFN1-xTB", charge=1))


def test_cp2k_basis_missing_for_element(tmp_path):
    """La has no DZVP-MOLOPT-SR-GTH basis in CP2K's BASIS_MOLOPT."""
    from hetflow.calculators.cp2k import data_dir

    try:
        data_dir({})
    except CalculatorError:
        pytest.skip("CP2K data files not installed")
    lacl3 = Atoms("LaCl3", positions=[[0, 0, 0], [2.6, 0, 0], [-1.3, 2.25, 0], [-1.3, -2.25, 0]])
    wd = tmp_path / "cp2k"
    with pytest.raises(InputError, match="no DZVP-MOLOPT-SR-GTH basis for element La"):
        run_calculation(lacl3, CalcSpec(backend="cp2k", method="PBE", settings={"box": [12, 12, 12],
                                                                               "executable": "true"}), wd)
    assert not list(wd.rglob("*.inp")) if wd.exists() else True


def test_yaml_wrong_type_python(tmp_path):
    from hetflow.workflows.wfile import load_workflow_file

    (tmp_path / "wf.yaml").write_text(FAKE_YAML.format(extra="executor: {type: local, workers: many}\n"))
    with pytest.raises(WorkflowError, match="wf.yaml: executor: workers must be an integer, got 'many'"):
        load_workflow_file(tmp_path / "wf.yaml")


def test_store_path_that_is_not_a_database(tmp_path):
    with pytest.raises(WorkflowError, match="store path must end in .db"):
        ResultStore(tmp_path / "results.txt")
    (tmp_path / "junk.db").write_bytes(b"this is not an sqlite file" * 100)
    with pytest.raises(WorkflowError, match="cannot open result store .*junk.db"):
        ResultStore(tmp_path / "junk.db")


def test_read_only_work_directory_python(tmp_path, fake_spec):
    (tmp_path / "afile").write_text("x")
    wf = Workflow("ro")
    wf.add_calc("H2O", molecule("H2O"), fake_spec)
    with pytest.raises(WorkflowError, match="cannot create work directory .*afile/w"):
        wf.run(ResultStore(tmp_path / "r.db"), workdir=tmp_path / "afile" / "w")
    assert store_integrity(tmp_path / "r.db") == 0


def test_walltime_python():
    from hetflow.workflows._jobscript import JobResources

    with pytest.raises(WorkflowError, match="invalid walltime '1h'"):
        JobResources.from_dict({"walltime": "1h"})


def test_job_name_with_shell_metacharacters_is_inert(tmp_path):
    """The rendered script is executed with bash: the injected commands must not run."""
    from hetflow.workflows._jobscript import JobResources, render_job

    evil = "x; touch PWNED1 $(touch PWNED2) `touch PWNED3`"
    script = render_job("slurm", JobResources.from_dict({"walltime": "5"}), evil, tmp_path,
                        ["echo", "ran; touch PWNED4"])
    header = [line for line in script.splitlines() if line.startswith("#SBATCH --job-name")]
    assert header == ["#SBATCH --job-name=x_touch_PWNED1_touch_PWNED2_touch_PWNED3"]
    (tmp_path / "job.sh").write_text(script)
    p = subprocess.run(["bash", str(tmp_path / "job.sh")], capture_output=True, text=True, cwd=tmp_path,
                       env={"PATH": os.environ["PATH"]}, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ran; touch PWNED4"
    assert not list(tmp_path.glob("PWNED*"))


def test_every_catalogue_error_is_a_hetflow_error():
    """The Python-level errors above are HetflowError subclasses (the CLI turns them into one line)."""
    for cls in (InputError, StructureError, CalculatorError, WorkflowError, UnknownPhaseError):
        assert issubclass(cls, HetflowError)


def test_output_path_under_a_regular_file_is_one_line(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    p = run_cli("build", "nc", "--size", "1", "1", "1", "-o", str(blocker / "nc.extxyz"))
    assert_one_line_error(p, "afile")
    assert blocker.read_text() == "not a directory"
