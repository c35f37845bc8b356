"""``hetflow calc`` commands: real tblite runs, CP2K input writing, one-line errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hetflow.cli import app


def _write(atoms, path):
    from hetflow.structures.io import write_structure

    return str(write_structure(atoms, path))


def test_single_point_and_json(cluster, tmp_path):
    f = _write(cluster, tmp_path / "nc.extxyz")
    out = tmp_path / "sp.json"
    r = CliRunner().invoke(app, ["calc", "single-point", f, "--method", "gfn1", "--mo", "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["converged"] and data["energy_eV"] < 0 and len(data["forces_eV_per_A"]) == len(cluster)
    assert "HOMO–LUMO" in r.output and "BLAS" in r.output
    assert "optimiser steps" not in r.output and "None" not in r.output  # a single point has no optimiser
    # MO data: orbital energies and domain fractions in the JSON, C and S in the npz beside it
    mo = data["mo"]
    assert "coefficients" not in mo and "overlap" not in mo
    assert mo["data_file"] == "sp.mo.npz" and (tmp_path / "sp.mo.npz").exists()
    assert set(mo["projections"]) == {"CsPbCl3"} and mo["gap_eV"] > 0
    from hetflow.calculators import MOData

    full = MOData.from_dict(mo)
    from hetflow.calculators.mo_io import load_full

    full = load_full(full, base=tmp_path)
    assert full.coefficients.shape == (mo["nao"], mo["nmo"])


def test_cp2k_input_command(cluster, tmp_path):
    f = _write(cluster, tmp_path / "nc.extxyz")
    r = CliRunner().invoke(app, ["calc", "cp2k-input", f, "-o", str(tmp_path / "hpc"), "--set", "vacuum=6"])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "hpc" / "hetflow.inp").read_text()
    assert "CUTOFF 400.0" in text and "DZVP-MOLOPT-SR-GTH" in text and "cp2k.psmp" in r.output


def test_errors_are_one_line(cluster, tmp_path):
    f = _write(cluster, tmp_path / "nc.extxyz")
    for args, msg in ((["--method", "gfn9"], "unknown method"), (["--charge", "1"], "odd number of electrons"),
                      (["--set", "blas=/no/such/lib.so"], "neither 'auto'")):
        r = CliRunner().invoke(app, ["calc", "single-point", f, *args])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output
        assert len([x for x in r.output.splitlines() if x.startswith("error:")]) == 1


def test_relax_with_prerelax_and_mlip_errors(tiny_nc, tmp_path):
    import pytest

    pytest.importorskip("torch")
    f = _write(tiny_nc, tmp_path / "nc.extxyz")
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["calc", "relax", f, "--prerelax", "chgnet", "--optimizer", "LBFGS",
                                 "-o", str(tmp_path / "r.extxyz"), "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["converged"] and data["force_calls"] >= data["opt_steps"] + 1
    assert data["prerelax"]["method"] == "CHGNet-0.3.0" and data["spec"]["prerelax"] == "chgnet"
    assert "prerelax     CHGNet-0.3.0:" in r.output and "force calls" in r.output
    for args, msg in ((["--backend", "chgnet", "--charge", "1"], "chgnet cannot model charged systems"),
                      (["--optimizer", "Sella", "--set", 'optimizer_kwargs={"internal": true}'],
                       "Sella with internal=True is not supported")):
        r = CliRunner().invoke(app, ["calc", "relax", f, *args])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output
        assert len([x for x in r.output.splitlines() if x.startswith("error:")]) == 1
