"""`hetflow build exchange` / `hetflow build zif`: files, index, one-line errors."""

import json

import numpy as np
from click.testing import CliRunner

from hetflow.cli import app
from hetflow.structures.interface import build_heterostructure
from hetflow.structures.io import read_structure, write_structure


def _hs(tmp_path):
    hs = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 3), partner_cells=2)
    return write_structure(hs, tmp_path / "hs.extxyz")


def test_build_exchange_writes_configs_and_index(tmp_path):
    p = _hs(tmp_path)
    out = tmp_path / "ex"
    r = CliRunner().invoke(app, ["build", "exchange", str(p), "--pattern", "s1", "--pattern", "s2",
                                 "--n-max", "3", "-o", str(out)])
    assert r.exit_code == 0, r.output
    index = json.loads((out / "index.json").read_text())
    names = [row["name"] for row in index]
    assert names[0] == "pristine"
    assert "s1-interface-N3" in names and "s1-bottom-N3" in names and "s2-e-100" in names
    assert (out / "index.csv").read_text().count("\n") == len(index) + 1
    # every listed file exists, carries its provenance and the labels
    for row in index[1:]:
        a = read_structure(out / row["file"])
        assert a.info["name"] == row["name"]
        assert a.info["n_exchanged_total"] == row["n_exchanged_total"]
        assert int(np.sum(a.arrays["exchanged"])) == row["n_exchanged_total"]
        assert a.get_chemical_symbols().count("I") == row["n_exchanged_total"]
        assert {"domain", "layer", "role"} <= set(a.arrays)


def test_build_exchange_errors_are_one_line(tmp_path):
    p = _hs(tmp_path)
    runner = CliRunner()
    for args, msg in [(["--pattern", "s9"], "unknown exchange pattern 's9'"),
                      (["--pattern", "s3", "--fraction", "0"], "fraction must be in (0, 1]"),
                      (["--pattern", "s1", "--n-max", "9"], "N = 9 is larger than the 7 perovskite layers")]:
        r = runner.invoke(app, ["build", "exchange", str(p), *args, "-o", str(tmp_path / "x")])
        assert r.exit_code == 2
        assert r.output.strip().count("\n") == 0 and msg in r.output
    bare = tmp_path / "bare.extxyz"
    from ase import Atoms
    from ase.io import write
    write(bare, Atoms("CsCl", positions=[[0, 0, 0], [3, 0, 0]]), format="extxyz")
    r = runner.invoke(app, ["build", "exchange", str(bare), "--pattern", "s1"])
    assert r.exit_code == 2 and "no per-atom label" in r.output


def test_build_zif(tmp_path):
    r = CliRunner().invoke(app, ["build", "zif", "--phase", "alpha", "--products", "2", "-o", str(tmp_path / "z")])
    assert r.exit_code == 0, r.output
    idx = json.loads((tmp_path / "z" / "index.json").read_text())
    assert [s["role"] for s in idx["structures"]] == ["reactant", "reactant", "product", "product"]
    assert idx["stoichiometry"]["Pb"] == 8 and idx["stoichiometry"]["Zn"] == 1
    prod = read_structure(tmp_path / "z" / idx["structures"][2]["file"])
    assert set(prod.arrays["domain"]) == {"perovskite", "zif"}


def test_build_exchange_refuses_non_empty_folder_unless_force(tmp_path):
    p = _hs(tmp_path)
    out = tmp_path / "ex"
    runner = CliRunner()
    r = runner.invoke(app, ["build", "exchange", str(p), "--pattern", "s1", "--n-max", "3", "-o", str(out)])
    assert r.exit_code == 0, r.output
    first = sorted(x.name for x in out.iterdir())
    r = runner.invoke(app, ["build", "exchange", str(p), "--pattern", "s2", "-o", str(out)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "is not empty" in r.output and "--force" in r.output
    assert sorted(x.name for x in out.iterdir()) == first  # nothing touched
    (out / "my-notes.txt").write_text("mine")
    r = runner.invoke(app, ["build", "exchange", str(p), "--pattern", "s2", "-o", str(out), "--force"])
    assert r.exit_code == 0, r.output
    index = json.loads((out / "index.json").read_text())
    listed = {row["file"] for row in index}
    on_disk = {x.name for x in out.iterdir()}
    # the first run's s1 files are gone: the folder is the new index plus the user's own file
    assert on_disk == listed | {"index.json", "index.csv", "my-notes.txt"}
    assert not any(n.startswith("s1-") for n in on_disk)
    assert "1 entries" in r.output and "my-notes.txt" in r.output
