"""Issue 14, item 8 and neighbours: one line ``error: …`` (exit 2) instead of a traceback or a
hang, for every input tried.

Each case runs the real CLI in a subprocess with a time-out (a hang fails the test) and
checks that stderr is exactly one ``error:`` line naming the problem.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from ase.build import molecule

from hardening_helpers import (assert_one_line_error, fake_yaml, kill_marked, run_cli, run_marked, start_cli,
                               store_integrity, wait_gone)

PARTIAL_CIF = """data_po
_cell_length_a 5.6
_cell_length_b 5.6
_cell_length_c 5.6
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
_atom_site_occupancy
Cs1 Cs 0 0 0 1
Pb1 Pb 0.5 0.5 0.5 1
Cl1 Cl 0.5 0.5 0 0.5
Br1 Br 0.5 0.5 0 0.5
Cl2 Cl 0.5 0 0.5 1
Cl3 Cl 0 0.5 0.5 1
"""


@pytest.fixture
def h2o_file(tmp_path) -> Path:
    f = tmp_path / "h2o.xyz"
    molecule("H2O").write(str(f))
    return f


# ----------------------------------------------------------------------------- the list
def test_coincident_atoms_in_tblite(tmp_path):
    (tmp_path / "h2.xyz").write_text("4\n\nH 0 0 0\nH 0 0 0\nH 0 0 0.9\nH 0 0 1.8\n")
    p = run_cli("calc", "single-point", str(tmp_path / "h2.xyz"))
    assert_one_line_error(p, "atoms 0 (H) and 1 (H)", "0.000 Å apart", "coincident")


def test_negative_seed(tmp_path):
    from hetflow.structures.interface import build_heterostructure
    from hetflow.structures.io import write_structure

    hs = write_structure(build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 3)), tmp_path / "hs.extxyz")
    for pattern in (["--pattern", "s3"], ["--pattern", "custom", "--layers", "0", "--fraction", "0.5"]):
        p = run_cli("build", "exchange", str(hs), *pattern, "--seed", "-1", "-o", str(tmp_path / "ex"))
        assert_one_line_error(p, "--seed", "-1", "[0, 4294967295]")
    assert not (tmp_path / "ex").exists()


def test_setting_that_is_not_a_number(h2o_file):
    p = run_cli("calc", "single-point", str(h2o_file), "--set", "scf_max_iter=abc")
    assert_one_line_error(p, "scf_max_iter", "integer", "'abc'")
    p = run_cli("calc", "single-point", str(h2o_file), "--set", "scf_max_iter=2.5")
    assert_one_line_error(p, "scf_max_iter", "integer", "2.5")


def test_workflow_file_that_is_not_utf8(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_bytes(b"name: t\xff\nspec: {backend: fake, method: LJ}\nstructures: [x.xyz]\n")
    for cmd in ("run", "status", "results", "render-job", "submit"):
        assert_one_line_error(run_cli(cmd, str(wfy), cwd=tmp_path), "wf.yaml", "not UTF-8", "0xff", "line 1")


def test_file_names_that_are_not_utf8(tmp_path, h2o_file):
    bad = os.fsdecode(b"w\xffa.xyz")
    (tmp_path / bad).write_bytes(h2o_file.read_bytes())
    (tmp_path / os.fsdecode(b"n\xffx.yaml")).write_text(fake_yaml(["H2O"]))
    p = run_cli("calc", "single-point", bad, cwd=tmp_path)
    assert_one_line_error(p, "not valid UTF-8", "\\udcff")
    p = run_cli("run", os.fsdecode(b"n\xffx.yaml"), cwd=tmp_path)
    assert_one_line_error(p, "not valid UTF-8")
    assert sorted(os.listdir(tmp_path)) == sorted([bad, "h2o.xyz", os.fsdecode(b"n\xffx.yaml")])


def test_env_given_as_a_list(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"], extra="executor: {type: slurm, env: [OMP_PLACES, cores]}\n"))
    for cmd in ("render-job", "submit", "run", "status"):
        assert_one_line_error(run_cli(cmd, str(wfy), cwd=tmp_path), "env must be a mapping", "list")


@pytest.fixture
def tiny_fs(tmp_path):
    """A 512 kB tmpfs that the test fills up (skips where mounting is not allowed)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()[:100]}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(mnt: Path) -> None:
    with open(mnt / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_full_disk_under_the_store(tmp_path, tiny_fs):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O", "CH4"], extra=f"store: {tiny_fs}/results.db\n"))
    _fill(tiny_fs)
    p = run_marked("run", str(wfy), "--no-progress", timeout=120, cwd=tmp_path)
    assert_one_line_error(p, "result store", str(tiny_fs / "results.db"), "disk full")


def test_full_disk_under_the_store_mid_run(tmp_path, tiny_fs):
    """The store fills up while results are written: the run stops with the path, and after
    space is freed the same command completes every task once."""
    names = ["H2O", "CH4", "NH3", "CO2", "N2", "H2"]
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(names, sleep=0.8, extra=f"store: {tiny_fs}/results.db\n"
                                                      "executor: {type: local, workers: 1}\n"))
    mark = uuid.uuid4().hex
    ctl = start_cli("run", str(wfy), "--no-progress", mark=mark, cwd=tmp_path)
    try:
        t0 = time.time()
        while not (tiny_fs / "results.db").exists() and time.time() - t0 < 60:
            time.sleep(0.1)
        time.sleep(1.5)
        _fill(tiny_fs)
        out, err = ctl.communicate(timeout=120)
        assert not wait_gone(mark, 15)
    finally:
        kill_marked(mark)
    assert ctl.returncode == 2, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: result store ") and "disk full" in last and str(tiny_fs) in last, err
    assert "Traceback" not in err
    (tiny_fs / "filler").unlink()
    p = run_marked("run", str(wfy), "--no-progress", timeout=180, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert store_integrity(tiny_fs / "results.db") == len(names)


def test_full_disk_under_the_work_directory(tmp_path, tiny_fs):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"], extra=f"workdir: {tiny_fs}/work\nstore: {tmp_path}/r.db\n"))
    (tiny_fs / "work").mkdir()
    _fill(tiny_fs)
    p = run_marked("run", str(wfy), "--no-progress", timeout=120, cwd=tmp_path)
    line = assert_one_line_error(p, "cannot write", str(tiny_fs / "work"))
    assert "No space left on device" in line
    assert not [q for q in (tiny_fs / "work").rglob("*") if ".tmp." in q.name]  # no temporary file left


def test_store_truncated_mid_run(tmp_path):
    names = ["H2O", "CH4", "NH3", "CO2", "N2", "H2", "CO", "C2H6"]
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(names, sleep=0.7, extra="executor: {type: local, workers: 1}\n"))
    db = tmp_path / "wf-work" / "results.db"
    mark = uuid.uuid4().hex
    ctl = start_cli("run", str(wfy), "--no-progress", mark=mark, cwd=tmp_path)
    try:
        t0 = time.time()
        while time.time() - t0 < 90:
            if db.exists() and db.stat().st_size > 40_000:
                break
            time.sleep(0.1)
        with open(db, "r+b") as fh:
            fh.truncate(db.stat().st_size // 3)
        out, err = ctl.communicate(timeout=90)
        assert not wait_gone(mark, 15), "workers outlived the controller"
    finally:
        kill_marked(mark)
    assert ctl.returncode == 2, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: result store ") and str(db) in last, err
    assert "Traceback" not in err


def test_wrong_shape_manifest_and_job_files(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O", "CH4"]))
    assert run_marked("run", str(wfy), "--no-progress", timeout=120, cwd=tmp_path).returncode == 0
    man = tmp_path / "wf-work" / "workflow.json"
    good = man.read_text()
    for bad in ("[1, 2, 3]", '{"name": "t", "tasks": [1, 2]}', '{"name": "t", "tasks": {"H2O": 5}}', "null", "garbage"):
        man.write_text(bad)
        line = assert_one_line_error(run_cli("status", str(wfy), cwd=tmp_path))
        assert "workflow.json" in line or "no workflow state" in line, line
    man.write_text(good.replace('"tasks/H2O"', '"../../../etc"'))  # a path out of the work dir is ignored
    assert run_cli("status", str(wfy), cwd=tmp_path).returncode == 0
    # a job.json of the wrong shape is bookkeeping lost, not a crash
    for bad in ("[1]", '{"attempts": "many", "losses": 7, "job_id": [1]}'):
        (tmp_path / "wf-work" / "tasks" / "CH4" / "job.json").write_text(bad)
        p = run_marked("run", str(wfy), "--no-progress", timeout=120, cwd=tmp_path)
        assert p.returncode == 0 and p.stdout.startswith("t: 2 cached"), p.stdout + p.stderr
        assert run_cli("status", str(wfy), cwd=tmp_path).returncode == 0
    # the next run rewrote a good manifest
    assert json.loads(man.read_text())["tasks"]["H2O"]["dir"] == "tasks/H2O"


# ----------------------------------------------------------------------------- hangs
def test_header_claiming_a_billion_atoms(tmp_path):
    (tmp_path / "big.xyz").write_text("1000000000\n\nH 0 0 0\n")
    (tmp_path / "big2.extxyz").write_text("1\n\nH 0 0 0\n1000000000\n\nH 0 0 0\n")
    (tmp_path / "POSCAR").write_text("x\n1.0\n5 0 0\n0 5 0\n0 0 5\nH\n1000000000\nDirect\n0 0 0\n")
    t0 = time.time()
    p = run_marked("calc", "single-point", str(tmp_path / "big.xyz"), timeout=60)
    assert_one_line_error(p, "big.xyz", "claims 1000000000 atoms")
    p = run_marked("calc", "single-point", str(tmp_path / "POSCAR"), timeout=60)
    assert_one_line_error(p, "POSCAR", "claims 1000000000 atoms")
    wfy = tmp_path / "wf.yaml"
    wfy.write_text("spec: {backend: fake, method: LJ}\nstructures: [big2.extxyz]\n")
    p = run_marked("run", str(wfy), timeout=60, cwd=tmp_path)
    assert_one_line_error(p, "structures[0]", "frame 1", "claims 1000000000 atoms")
    assert time.time() - t0 < 60


def test_fifo_and_device_never_block(tmp_path):
    os.mkfifo(tmp_path / "pipe.xyz")
    os.mkfifo(tmp_path / "pipe.yaml")
    os.mkfifo(tmp_path / "pipe.cif")
    p = run_marked("calc", "single-point", str(tmp_path / "pipe.xyz"), timeout=60)
    assert_one_line_error(p, "pipe.xyz", "FIFO")
    p = run_marked("calc", "single-point", "/dev/zero", timeout=60)
    assert_one_line_error(p, "/dev/zero", "device")
    p = run_marked("run", str(tmp_path / "pipe.yaml"), timeout=60)
    assert_one_line_error(p, "pipe.yaml", "FIFO")
    p = run_marked("phases", "--cif", str(tmp_path / "pipe.cif"), timeout=60)
    assert_one_line_error(p, "pipe.cif", "FIFO")
    wfy = tmp_path / "wf.yaml"
    wfy.write_text("spec: {backend: fake, method: LJ}\nstructures: [pipe.xyz]\n")
    p = run_marked("run", str(wfy), timeout=60, cwd=tmp_path)
    assert_one_line_error(p, "structures[0]", "FIFO")
    p = run_marked("run", str(tmp_path), timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr


# ----------------------------------------------------------------------------- job scripts, CIFs
@pytest.mark.parametrize("field, value, expect", [
    ("modules", '"cp2k/2023.1"', ["module load cp2k/2023.1"]),
    ("setup", '"source ~/venv/bin/activate"', ["source ~/venv/bin/activate"]),
    ("launcher", '"srun --mpi=pmix"', ["srun --mpi=pmix "]),
    ("extra_directives", '"--exclusive"', ["#SBATCH --exclusive"]),
])
def test_job_list_fields_given_as_a_string(tmp_path, field, value, expect):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"], extra=f"executor: {{type: slurm, walltime: 10, {field}: {value}}}\n"))
    p = run_cli("render-job", str(wfy), "--task", "H2O", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    for line in expect:
        assert any(ln.startswith(line) for ln in p.stdout.splitlines()), p.stdout
    assert "module load c\n" not in p.stdout and "\nc\np\n" not in p.stdout  # never per character


def test_job_list_field_of_the_wrong_type(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"], extra="executor: {type: slurm, modules: {a: 1}}\n"))
    assert_one_line_error(run_cli("render-job", str(wfy), cwd=tmp_path), "modules must be a list of strings")


def test_partial_occupancies_rejected_the_same_way_everywhere(tmp_path):
    (tmp_path / "po.cif").write_text(PARTIAL_CIF)
    lines = [assert_one_line_error(run_cli("calc", "single-point", str(tmp_path / "po.cif")), "partial occupancies"),
             assert_one_line_error(run_cli("phases", "--cif", str(tmp_path / "po.cif")), "partial occupancies")]
    wfy = tmp_path / "wf.yaml"
    wfy.write_text("spec: {backend: fake, method: LJ}\nstructures: [po.cif]\n")
    lines.append(assert_one_line_error(run_cli("run", str(wfy), cwd=tmp_path), "structures[0]", "partial occupancies"))
    core = "po.cif has partial occupancies (site 2: Cl 0.5 + Br 0.5)"
    assert all(core in ln for ln in lines), lines


# ----------------------------------------------------------------------------- neighbours
@pytest.mark.parametrize("text, words", [
    ("a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n", ("too large",)),
    ("structures: &s [*s]\n", ("refers to itself",)),
    ("name: \"a\\nb\"\nstructures: [x.xyz]\n", ("control character",)),
    ("name: \"\\udcff\"\nstructures: [x.xyz]\n", ("not valid UTF-8",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [{builder: molecule, params: {names: [H2O]}, name: \"x\\ty\"}]\n",
     ("control character",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [{file: x.xyz, index: \"__import__('os')\"}]\n", ("index must be",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [{builder: molecule, params: [1, 2]}]\n", ("params must be a mapping",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [{builder: molecule, params: {names: [1]}}]\n", ("must be strings",)),
    ("spec: {backend: fake, method: LJ, charge: 1000000000000000000000}\nstructures: [x.xyz]\n", ("charge",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [x.xyz]\nexecutor: {type: slurm, walltime: .nan}\n", ("walltime", "nan")),
    ("spec: {backend: fake, method: LJ}\nstructures: [x.xyz]\nexecutor: {type: slurm, walltime: 1e300}\n", ("walltime",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [x.xyz]\nexecutor: {type: local, workers: .inf}\n", ("workers",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [x.xyz]\nexecutor: {type: [local]}\n", ("executor.type",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [x.xyz]\nexecutor: {type: slurm, 7: 1}\n", ("option names",)),
    ("- 1\n- 2\n", ("top level must be a mapping",)),
    ("spec: {backend: fake, method: LJ}\nstructures: [{builder: nanocrystal, params: {phase: CsPbCl3, size: [.inf, 1, 1]}}]\n",
     ("params.size", "finite")),
])
def test_hostile_yaml_is_one_line(tmp_path, text, words):
    molecule("H2O").write(str(tmp_path / "x.xyz"))
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(text)
    for cmd in ("run", "status", "render-job"):
        p = run_marked(cmd, str(wfy), timeout=60, cwd=tmp_path)
        assert_one_line_error(p, *words)


@pytest.mark.parametrize("args, words", [
    (("render-job", "--command", 'echo "unbalanced'), ("--command", "cannot split")),
    (("calc", "single-point", "{h2o}", "--charge", "10000000000000000000000"), ("--charge", "[-1000, 1000]")),
    (("calc", "relax", "{h2o}", "--steps", "-5"), ("--steps", "[0, 10000000]")),
    (("run", "{wf}", "--workers", "0"), ("--workers", "positive")),
    (("build", "nc", "--size", "16", "16", "16", "-o", "{tmp}/nc.extxyz"), ("--size", "4096 octahedra")),
    (("build", "heterostructure", "--vacuum", "nan", "-o", "{tmp}/hs.extxyz"), ("--vacuum", "finite")),
    (("submit", "{wf}", "--scheduler", "slurm", "--poll", "inf"), ("--poll", "finite")),
    (("results", "{wf}", "--csv", "{tmp}"), ("Is a directory",)),
    (("status", "--workdir", "{tmp}", "--lines", "-1"), ("--lines", "[0, 1000000]")),
    (("--no-such-option",), ("no such option",)),
    (("calc", "single-point", "{h2o}", "--set", "a\nb=1"), ("control character",)),
])
def test_hostile_cli_arguments_are_one_line(tmp_path, h2o_file, args, words):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"]))
    fmt = {"h2o": str(h2o_file), "wf": str(wfy), "tmp": str(tmp_path)}
    p = run_marked(*(a.format(**fmt) for a in args), timeout=60, cwd=tmp_path)
    assert_one_line_error(p, *words)


def test_stale_temporary_files_do_not_outlive_the_next_run(tmp_path):
    """A writer killed between writing and renaming its temporary file leaves it behind; the
    next run of the controller removes it (its writer is dead)."""
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O", "CH4"]))
    assert run_marked("run", str(wfy), "--no-progress", timeout=120, cwd=tmp_path).returncode == 0
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = os.uname().nodename
    stale = [tmp_path / "wf-work" / f".workflow.json.tmp.{dead.pid}.0123abcd.{host}",
             tmp_path / "wf-work" / "tasks" / "H2O" / f".result.json.tmp.{dead.pid}.89abcdef.{host}",
             tmp_path / "wf-work" / "tasks" / "CH4" / f".checkpoint.json.tmp.{dead.pid}.00000000.{host}"]
    for s in stale:
        s.write_text("half written")
    assert run_marked("run", str(wfy), "--no-progress", timeout=120, cwd=tmp_path).returncode == 0
    assert [s for s in stale if s.exists()] == []


def test_one_place_turns_exceptions_into_one_line():
    """The CLI's error formatter: one line for every kind of exception, never a traceback."""
    import errno

    import click

    from hetflow.cli import error_line
    from hetflow.errors import WorkflowError

    assert error_line(WorkflowError("bad\nthing")) == "bad thing"
    assert error_line(OSError(errno.ENOSPC, "No space left on device", "/x/y")) == "disk full (or quota exceeded): /x/y"
    assert error_line(OSError(errno.EISDIR, "Is a directory", "/tmp")) == "Is a directory: /tmp"
    assert error_line(click.UsageError("No such option: --x")) == "No such option: --x"
    assert error_line(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")).startswith("text that is not")
    assert error_line(MemoryError()).startswith("out of memory")
    assert error_line(RecursionError()) == "input nested too deeply"
    assert error_line(ZeroDivisionError("division by zero")).startswith("internal error: ZeroDivisionError")
    assert "\n" not in error_line(ValueError("a\nb\udcff"))
