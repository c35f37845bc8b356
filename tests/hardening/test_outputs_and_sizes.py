"""Issue 26, classes 1 and 2: the one output-path rule and the one size rule.

1. Every file hetflow writes is a new name or a regular file: a FIFO, a device (through a
   symbolic link to ``/dev/null`` — tests run as root, so the real ``/dev/null`` is never
   named), a directory or a socket is refused with one line, and is still what it was
   afterwards.  Checked for the CLI outputs and for every writer of the Python API.
2. Every size-like input has one rule (:data:`hetflow.validate.SIZES`), whatever its type and
   wherever it comes from (CLI, workflow file, Python API): strings, booleans and fractions are
   refused, upper bounds hold, and nothing is built first.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

from hardening_helpers import assert_one_line_error, run_cli
from hetflow import atomic, validate
from hetflow.errors import HetflowError, InputError, OutputError


# ============================================================ 1. outputs
def _make(kind: str, path: Path) -> Path:
    """A non-regular file at ``path`` of ``kind``."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/null")
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    return path


def _mode(path: Path) -> int:
    return stat.S_IFMT(os.stat(path).st_mode)


KINDS = ["fifo", "device", "directory", "socket"]
WORDS = {"fifo": "FIFO", "device": "device", "directory": "directory", "socket": "socket"}


@pytest.mark.parametrize("kind", KINDS)
def test_output_rule_refuses_what_is_not_a_regular_file(tmp_path, kind):
    p = _make(kind, tmp_path / "out.extxyz")
    before = _mode(p)
    with pytest.raises(InputError, match=WORDS[kind]):
        validate.output_file(p)
    assert _mode(p) == before
    assert validate.output_file(tmp_path / "new.extxyz") == tmp_path / "new.extxyz"
    (tmp_path / "old.extxyz").write_text("x")
    assert validate.output_file(tmp_path / "old.extxyz").name == "old.extxyz"


def _writers(tmp: Path):
    """Every Python-API writer, each as (label, callable(path))."""
    from matplotlib.figure import Figure

    from hetflow.calculators.base import MOData
    from hetflow.calculators.mo_io import write_mo_npz
    from hetflow.structures.io import write_structure
    from hetflow.recipes.report import write_csv

    bulk = molecule("H2O")
    bulk.center(vacuum=3.0)
    bulk.pbc = True
    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1])
    mo = MOData(eigenvalues=np.array([-1.0, 1.0]), occupations=np.array([2.0, 0.0]))
    return [
        ("write_atomic", lambda p: atomic.write_atomic(p, "data")),
        ("write_via", lambda p: atomic.write_via(p, lambda t: Path(t).write_text("x"))),
        ("extxyz", lambda p: write_structure(molecule("H2O"), p)),
        ("cif", lambda p: write_structure(bulk, p.with_name(p.name + ".cif"))),
        ("figure", lambda p: atomic.save_figure(fig, p.with_name(p.name + ".png"))),
        ("csv", lambda p: write_csv([{"a": 1.0}], p)),
        ("mo npz", lambda p: write_mo_npz(mo, p)),
    ]


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_every_api_writer_refuses_non_regular_targets(tmp_path, kind):
    for label, write in _writers(tmp_path):
        d = tmp_path / label.replace(" ", "_")
        d.mkdir()
        target = d / "out"
        real = {"cif": d / "out.cif", "figure": d / "out.png"}.get(label, target)
        _make(kind, real)
        before = _mode(real)
        with pytest.raises(OutputError, match=WORDS[kind]):
            write(target)
        assert _mode(real) == before, label
        assert real.is_symlink() == (kind == "device"), label
        assert sorted(x.name for x in d.iterdir()) == [real.name], f"{label}: temporary file left"


def test_target_swapped_for_a_fifo_during_the_write_is_not_replaced(tmp_path):
    """The rule is checked again right before the rename."""
    target = tmp_path / "out.txt"

    def writer(tmp: Path) -> None:
        Path(tmp).write_text("new")
        os.mkfifo(target)  # something else appears at the target meanwhile

    with pytest.raises(OutputError, match="FIFO"):
        atomic.write_via(target, writer)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
@pytest.mark.parametrize("case", ["build", "csv", "json"])
def test_cli_outputs_refused_before_any_work(tmp_path, kind, case):
    target = _make(kind, tmp_path / ("out.csv" if case == "csv" else "out.extxyz"))
    before = _mode(target)
    if case == "build":
        args = ("build", "nc", "--size", "1", "1", "1", "-o", str(target))
        opt = "--output"
    elif case == "csv":
        args = ("results", "--store", str(tmp_path / "none.db"), "--csv", str(target))
        opt = "--csv"
    else:
        h2o = tmp_path / "h2o.xyz"
        molecule("H2O").write(str(h2o))
        args = ("calc", "single-point", str(h2o), "--json", str(target))
        opt = "--json"
    t0 = time.monotonic()
    line = assert_one_line_error(run_cli(*args), opt, WORDS[kind])
    assert "results" in line or time.monotonic() - t0 < 60
    assert _mode(target) == before
    assert not (tmp_path / "none.db").exists()


def test_cli_dash_is_still_stdout_for_csv(tmp_path, fake_store):
    p = run_cli("results", "--store", str(fake_store), "--csv", "-")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].startswith("task,formula")


@pytest.fixture(scope="module")
def fake_store(tmp_path_factory) -> Path:
    from hetflow.calculators import CalcSpec
    from hetflow.workflows.store import ResultStore

    d = tmp_path_factory.mktemp("store")
    store = ResultStore(d / "r.db")
    from hetflow.calculators import run_calculation
    from hetflow.calculators.base import calc_key
    from hetflow.workflows._taskdir import encode_atoms

    spec = CalcSpec(backend="fake", method="LJ")
    atoms = molecule("H2O")
    res = run_calculation(atoms, spec)
    store.ingest({"key": calc_key(atoms, spec), "name": "h2o", "atoms": encode_atoms(res.atoms),
                  "energy": res.energy, "forces": res.forces.tolist(), "spec": spec.to_dict()}, workflow="w")
    return d / "r.db"


# ============================================================ 2. sizes
BAD_TYPES = ["3", True, 2.5, None, float("nan"), [1]]


@pytest.mark.parametrize("name", sorted(validate.SIZES))
def test_every_size_rule_is_strict_and_bounded(name):
    rule = validate.SIZES[name]
    good = {"size": [2, 2, 2], "inplane": [1, 2]}.get(name, 2 if name not in ("n_zn",) else 1)
    assert rule(good, name) is not None
    as_float = [float(v) for v in good] if isinstance(good, list) else float(good)
    assert rule(as_float, name) == rule(good, name)  # an integral float is that integer
    for bad in BAD_TYPES:
        value = [bad if i == 0 else v for i, v in enumerate(good)] if isinstance(good, list) else bad
        with pytest.raises(InputError, match=name):
            rule(value, name)
    huge = [10**9] + good[1:] if isinstance(good, list) else 10**9
    with pytest.raises(InputError, match=name):
        rule(huge, name)
    too_small = [0] + good[1:] if isinstance(good, list) else -1
    with pytest.raises(InputError):
        rule(too_small, name)


@pytest.mark.parametrize("args, words", [
    (("build", "heterostructure", "--partner-cells", "1000000"), ("--partner-cells", "32")),
    (("build", "heterostructure", "--partner-cells", "2000"), ("--partner-cells", "32")),
    (("build", "heterostructure", "--slab", "--inplane", "64", "64"), ("--inplane", "in-plane cells")),
    (("build", "heterostructure", "--slab", "--inplane", "0", "1"), ("--inplane", "positive")),
    (("build", "nc", "--size", "9", "9", "9"), ("--size", "729 octahedra")),
    (("build", "zif", "--products", "100000000"), ("--products",)),
    (("build", "zif", "--n-units", "1000"), ("--n-units",)),
])
def test_cli_sizes_refused_before_building(tmp_path, args, words):
    t0 = time.monotonic()
    assert_one_line_error(run_cli(*args, "-o" if args[1] != "zif" else "--outdir", str(tmp_path / "o.extxyz")),
                          *words)
    assert time.monotonic() - t0 < 60
    assert list(tmp_path.iterdir()) == []


YAML = """spec: {{backend: fake, method: LJ}}
structures: [{{builder: {builder}, params: {params}}}]
"""


@pytest.mark.parametrize("builder, params, words", [
    ("nanocrystal", "{phase: CsPbCl3, size: [9.0, 9.0, 9.0]}", ("params.size", "729 octahedra")),
    ("nanocrystal", "{phase: CsPbCl3, size: ['8', '8', '8']}", ("params.size", "integer")),
    ("nanocrystal", "{phase: CsPbCl3, size: [2.5, 2, 2]}", ("params.size", "integer")),
    ("nanocrystal", "{phase: CsPbCl3, size: [true, 1, 1]}", ("params.size", "integer")),
    ("heterostructure", "{partner_cells: 1000000}", ("params.partner_cells", "32")),
    ("heterostructure", "{partner_cells: 2000.0}", ("params.partner_cells", "32")),
    ("heterostructure", "{partner_cells: '3'}", ("params.partner_cells", "integer")),
    ("slab", "{inplane: [100, 1]}", ("params.inplane", "64")),
    ("slab", "{inplane: [16, 32]}", ("params.inplane", "in-plane cells")),
    ("perovskite_fragment", "{trials: 1.0e+9}", ("params.trials", "10000")),
    ("perovskite_fragment", "{trials: -1}", ("params.trials",)),
])
@pytest.mark.parametrize("command", ["status", "run"])
def test_workflow_file_sizes_refused_at_load(tmp_path, builder, params, words, command):
    wf = tmp_path / "wf.yaml"
    wf.write_text(YAML.format(builder=builder, params=params))
    t0 = time.monotonic()
    assert_one_line_error(run_cli(command, str(wf), cwd=tmp_path), "structures[0]", *words)
    assert time.monotonic() - t0 < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wf.yaml"]  # no work dir, no store


def test_python_api_sizes_refused_before_building():
    from hetflow.structures.interface import build_heterostructure, build_slab
    from hetflow.structures.nanocrystal import cut_nanocrystal
    from hetflow.structures.zif import perovskite_fragment, zif_fragment

    cases = [
        (lambda: cut_nanocrystal("CsPbCl3", size=("2", 2, 2)), "size"),
        (lambda: cut_nanocrystal("CsPbCl3", size=(16.0, 16.0, 16.0)), "octahedra"),
        (lambda: build_heterostructure(partner_cells=10**6), "partner_cells"),
        (lambda: build_heterostructure(partner_cells=2.5), "partner_cells"),
        (lambda: build_slab(inplane=(100, 1)), "inplane"),
        (lambda: build_slab(inplane=("1", 1)), "inplane"),
        (lambda: perovskite_fragment(trials=10**9), "trials"),
        (lambda: perovskite_fragment(n_units="8"), "n_units"),
        (lambda: zif_fragment(n_zn=True), "n_zn"),
    ]
    for call, word in cases:
        t0 = time.monotonic()
        with pytest.raises(InputError, match=word):
            call()
        assert time.monotonic() - t0 < 5, word


def test_layer_indices_beyond_a_c_long(tmp_path):
    """A layer index that does not fit numpy's integers: one line (CLI), InputError (API)."""
    from hetflow.structures.exchange import halide_sites
    from hetflow.structures.interface import build_heterostructure
    from hetflow.structures.io import write_structure

    hs = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 3))
    with pytest.raises(HetflowError, match="layer index"):
        halide_sites(hs, layers=[2**70])
    f = write_structure(hs, tmp_path / "hs.extxyz")
    assert_one_line_error(run_cli("build", "exchange", str(f), "--pattern", "custom", "--layers",
                                  "99999999999999999999", "-o", str(tmp_path / "ex")), "--layers")
    assert not (tmp_path / "ex").exists()
    lines = f.read_text().split("\n")
    lines[2] = lines[2].rsplit(None, 1)[0] + " 99999999999999999999"  # the first atom's layer
    big = tmp_path / "big.extxyz"
    big.write_text("\n".join(lines))
    assert_one_line_error(run_cli("build", "exchange", str(big), "-o", str(tmp_path / "ex")), "big.extxyz")
    assert not (tmp_path / "ex").exists()
