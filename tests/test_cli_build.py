"""The CLI front door: real subprocess runs of the console script."""

import subprocess
import sys

import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hetflow.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_build_heterostructure_writes_extxyz_and_summary(tmp_path):
    r = run("build", "heterostructure", "--size", "2", "2", "3", "--partner-cells", "1", "--registry", "continuity",
            "--png", "-o", str(tmp_path / "hs.extxyz"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "hs.extxyz").stat().st_size > 0
    assert "charge       +0" in r.stdout
    assert "mismatch     -1.56 %" in r.stdout
    assert "perovskite: 92 (Cl52Cs28Pb12)" in r.stdout and "chalcohalide: " in r.stdout
    assert "perovskite 0 … 6 (7 layers" in r.stdout
    assert "termination  CsX on every face" in r.stdout and "≤ 25% per face" in r.stdout
    assert "chosen by continuity" in r.stdout
    assert "junction     rigid (not relaxed)" in r.stdout  # no calculator behind --registry continuity
    # the picture: a real PNG of two panels
    png = tmp_path / "hs.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_build_slab_writes_cif_too(tmp_path):
    r = run("build", "heterostructure", "--slab", "--registry", "continuity", "-o", str(tmp_path / "slab.extxyz"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "slab.cif").exists()


def test_build_nc(tmp_path):
    r = run("build", "nc", "--phase", "CsPbBr3", "--size", "2", "2", "2", "-o", str(tmp_path / "nc.extxyz"))
    assert r.returncode == 0, r.stderr
    assert "Br36Cs20Pb8" in r.stdout


def test_phases_lists_registry():
    r = run("phases", "--json")
    assert r.returncode == 0
    import json

    names = {p["name"] for p in json.loads(r.stdout)}
    assert {"CsPbCl3", "Pb4S3Cl2", "CsPbI3-delta", "PbI2-molecule"} <= names


@pytest.mark.parametrize(
    "args, message",
    [
        (("build", "nc", "--phase", "Unobtainium"), "error: unknown phase 'Unobtainium'"),
        (("build", "nc", "--size", "0", "1", "1"), "error: size must be positive"),
        (("build", "heterostructure", "--size", "2", "2", "2"), "error: perovskite with too few layers"),
        (("phases", "--cif", "/nonexistent/x.cif"), "error: CIF file not found"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message):
    r = run(*args)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(message)
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
