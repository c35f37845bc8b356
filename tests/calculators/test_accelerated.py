"""Relaxations guided by a machine-learned potential (``CalcSpec.accelerate``), end to end with the
real engines: GFN1-xTB (tblite) guided by CHGNet r²SCAN on a small CsPbCl3 nanocrystal, the gate,
the checkpoint, the workflow cache, the command line; and one CP2K PBE check on PbCl2."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from hetflow.calculators import CalcSpec, run_calculation
from hetflow.calculators.accelerated import surrogate_spec
from hetflow.cli import app
from hetflow.errors import InputError
from hetflow.recipes.common import RecipeOptions, make_spec, run_workflow
from hetflow.recipes.gate import Gate
from hetflow.structures.nanocrystal import cut_nanocrystal
from hetflow.workflows.graph import Workflow

pytest.importorskip("chgnet")
pytestmark = pytest.mark.slow

POT = "chgnet-r2scan"


def _spec(**kw) -> CalcSpec:
    return CalcSpec(backend="tblite", method="GFN1-xTB", task="relax", fmax=0.05, max_steps=200, accelerate=POT,
                    settings={"threads": 1}, **kw)


@pytest.fixture(scope="module")
def nc():
    a = cut_nanocrystal("CsPbCl3", size=(2, 2, 1))
    a.rattle(0.05, seed=3)
    return a


@pytest.fixture(scope="module")
def guided(nc, tmp_path_factory):
    wd = tmp_path_factory.mktemp("accel")
    return run_calculation(nc, _spec(), wd), wd


def test_guided_result_is_the_target_levels_own(nc, guided):
    r, wd = guided
    acc = r.extra["accelerate"]
    assert r.converged and r.extra["fmax_reached"] < 0.05
    assert acc["potential"] == "CHGNet-r2SCAN" and r.extra["optimizer"] == "accelerated"
    assert r.force_calls == acc["target_calls"] and acc["mlip_calls"] > r.force_calls
    assert len(acc["history"]) == acc["macro_steps"]
    assert r.force_calls == 1 + acc["macro_steps"] + acc.get("finish_calls", 0)
    # the energy and forces are a plain GFN1 single point of the final geometry
    sp = run_calculation(r.atoms, CalcSpec(backend="tblite", method="GFN1-xTB", settings={"threads": 1}))
    assert r.energy == pytest.approx(sp.energy, abs=1e-6)
    np.testing.assert_allclose(r.forces, sp.forces, atol=5e-4)  # SCF from another guess: forces to 5e-4
    assert float(np.linalg.norm(sp.forces, axis=1).max()) < 0.05
    # every accepted step lowered the target energy; the relaxed cluster is below the start
    start = run_calculation(nc, CalcSpec(backend="tblite", method="GFN1-xTB", settings={"threads": 1}))
    assert r.energy < start.energy
    accepted = [h["energy"] for h in acc["history"] if h["accepted"]]
    assert all(b <= a + 1e-3 for a, b in zip(accepted, accepted[1:]))
    # labels and composition kept
    assert r.atoms.get_chemical_formula() == nc.get_chemical_formula()
    assert (r.atoms.arrays["domain"] == nc.arrays["domain"]).all()
    ck = json.loads((wd / "accelerated.json").read_text())
    assert ck["counts"]["target_calls"] == r.force_calls and ck["fmax"] < 0.05


def test_a_rerun_resumes_without_a_target_call(nc, guided):
    r, wd = guided
    again = run_calculation(nc, _spec(), wd)
    assert again.force_calls == r.force_calls and again.energy == r.energy
    assert again.extra["accelerate"]["macro_steps"] == r.extra["accelerate"]["macro_steps"]


def test_the_gate_holds_on_a_capped_guided_relaxation(nc, tmp_path):
    r = run_calculation(nc, _spec().replace(max_steps=2), tmp_path)
    assert not r.converged and r.force_calls == 2 and r.extra["fmax_reached"] >= 0.05


def test_delta_corrected_guidance(nc, tmp_path):
    """``accelerate_options={"correction": 1}``: the pair Δ-correction fitted to every target frame
    guides the inner relaxations; the result is still the target level's own, every guided target
    frame is stored with the MLIP's forces, the fit explains part of the force difference, and a
    rerun resumes from the stored frames without a target call."""
    spec = CalcSpec(backend="tblite", method="GFN1-xTB", task="relax", fmax=0.2, max_steps=200, accelerate=POT,
                    settings={"threads": 1, "accelerate_options": {"correction": 1}})
    r = run_calculation(nc, spec, tmp_path)
    acc = r.extra["accelerate"]
    assert r.converged and r.extra["fmax_reached"] < 0.2
    sp = run_calculation(r.atoms, CalcSpec(backend="tblite", method="GFN1-xTB", settings={"threads": 1}))
    assert r.energy == pytest.approx(sp.energy, abs=1e-6)
    ck = json.loads((tmp_path / "accelerated.json").read_text())
    guided_calls = 1 + acc["macro_steps"]
    assert len(ck["frames"]) == guided_calls and all(len(fr) == 3 for fr in ck["frames"])
    assert acc["mlip_calls"] > guided_calls  # one MLIP call per target frame besides the inner relaxations
    fits = [h for h in acc["history"] if "delta_rms" in h]
    assert len(fits) == acc["macro_steps"] and all(0 <= h["delta_rms"] < h["raw_rms"] for h in fits)
    again = run_calculation(nc, spec, tmp_path)
    assert again.force_calls == r.force_calls and again.energy == r.energy


def test_stalled_guidance_hands_over_to_the_target_level(nc, tmp_path):
    """``handover``: once the last ``handover_window`` target calls released less than that fraction
    of the energy released so far, the target level finishes alone; the result is still its own."""
    spec = CalcSpec(backend="tblite", method="GFN1-xTB", task="relax", fmax=0.05, max_steps=200, accelerate=POT,
                    settings={"threads": 1, "accelerate_options": {"handover": 0.5, "handover_window": 1}})
    r = run_calculation(nc, spec, tmp_path)
    acc = r.extra["accelerate"]
    assert acc["guided_phase_ended"] == "stalled" and acc["finish_calls"] > 0
    assert r.converged and r.force_calls == 1 + acc["macro_steps"] + acc["finish_calls"]
    cur = [h["current"] for h in acc["history"]]
    e0 = json.loads((tmp_path / "accelerated.json").read_text())["e_start"]
    assert cur[-2] - cur[-1] < 0.5 * (e0 - cur[-1])  # the rule that ended it
    assert all(a - b >= 0.5 * (e0 - b) for a, b in zip(cur[:-2], cur[1:-1]))  # and not before
    sp = run_calculation(r.atoms, CalcSpec(backend="tblite", method="GFN1-xTB", settings={"threads": 1}))
    assert r.energy == pytest.approx(sp.energy, abs=1e-6)


@pytest.mark.parametrize("bad", [{"correction": 0.5}, {"ridge": -1}, {"trust": 2.0}, {"memroy": 3},
                                 {"inner_scaled": 0.5}, {"handover": 1.5}, {"handover_window": 0}])
def test_accelerate_options_are_checked_when_the_spec_is_made(bad):
    with pytest.raises(InputError, match="accelerate_options"):
        CalcSpec(backend="tblite", method="GFN1-xTB", task="relax", accelerate=POT,
                 settings={"threads": 1, "accelerate_options": bad})
    # CP2K's guided relaxations take the same options
    assert CalcSpec(backend="cp2k", task="relax", accelerate=POT,
                    settings={"accelerate_options": {"correction": 1}}).accelerate == "CHGNet-r2SCAN"


def test_workflow_task_is_cached_and_gated(nc, tmp_path):
    opts = RecipeOptions(level="xtb", accelerate=POT, outdir=tmp_path, progress=False, fmax=0.2,
                         executor_options={"workers": 1, "threads": 1})
    spec = make_spec(opts, "relax")
    assert spec.accelerate == "CHGNet-r2SCAN" and make_spec(opts).accelerate is None  # relaxations only

    def wf():
        w = Workflow("guided")
        w.add_calc("nc", nc, spec)
        return w

    summary, res = run_workflow(wf(), opts)
    assert summary.run == 1 and res["nc"].converged
    assert Gate(res, []).ok("nc")
    summary2, res2 = run_workflow(wf(), opts)
    assert summary2.run == 0 and summary2.cached == 1 and res2["nc"].energy == res["nc"].energy


def test_command_line(nc, tmp_path):
    f = tmp_path / "nc.extxyz"
    nc.write(f)
    out = tmp_path / "relaxed.extxyz"
    r = CliRunner().invoke(app, ["calc", "relax", str(f), "--accelerate", POT, "--fmax", "0.2", "-o", str(out),
                                 "--json", str(tmp_path / "r.json"), "--set", "threads=1"])
    assert r.exit_code == 0, r.output
    assert "accelerate   CHGNet-r2SCAN:" in r.output and "converged    True" in r.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["accelerate"]["target_calls"] == data["force_calls"]
    bad = CliRunner().invoke(app, ["calc", "relax", str(f), "--accelerate", POT, "--cell"])
    assert bad.exit_code != 0 and "--accelerate relaxes the ions only" in bad.output


@pytest.mark.parametrize("kw, msg", [
    ({"task": "single_point"}, "accelerate needs task='relax'"),
    ({"prerelax": "chgnet"}, "accelerate and prerelax exclude each other"),
    ({"accelerate": "mace"}, "unknown accelerate potential"),
    ({"backend": "chgnet", "method": None, "accelerate": "chgnet-0.2.0"}, "is the target level itself"),
])
def test_specs_are_validated(kw, msg):
    base = {"backend": "tblite", "task": "relax", "accelerate": POT} | kw
    with pytest.raises(InputError, match=msg):
        CalcSpec(**base)


def test_options_and_keys():
    with pytest.raises(InputError, match="guides --level xtb"):
        RecipeOptions(level="mlip", accelerate=POT)
    with pytest.raises(InputError, match="exclude each other"):
        RecipeOptions(level="xtb", accelerate=POT, prerelax="chgnet")
    # a spec without accelerate keeps its key (the shipped prepared models' keys are checked in
    # tests/workflows/test_prepared.py); one with it is another calculation
    plain = CalcSpec(task="relax")
    assert CalcSpec(task="relax", accelerate="r2scan").key() != plain.key()
    assert surrogate_spec(CalcSpec(task="relax", accelerate="7net-0")).backend == "sevennet"


@pytest.mark.cp2k
@pytest.mark.skipif(shutil.which("cp2k.psmp") is None, reason="cp2k.psmp not installed")
def test_cp2k_pbe_guided_relaxation(tmp_path):
    """The mode with a backend that relaxes natively: PBE (CP2K, reduced cutoff and box) on a
    stretched PbCl2 molecule, one single point per target call."""
    from ase import Atoms

    r0, ang = 2.70, np.radians(110.0)
    mol = Atoms("PbCl2", positions=[[0, 0, 0], [r0, 0, 0], [r0 * np.cos(ang), r0 * np.sin(ang), 0]])
    spec = CalcSpec(backend="cp2k", method="PBE", task="relax", fmax=0.1, max_steps=15, accelerate=POT,
                    settings={"cutoff": 150, "vacuum": 4.0})
    r = run_calculation(mol, spec, tmp_path)
    assert r.converged and r.force_calls == r.extra["accelerate"]["target_calls"] <= 15
    d = r.atoms.get_all_distances()
    assert 2.3 < d[0, 1] < 2.6 and d[0, 1] < r0  # Pb–Cl contracted from the stretched start
    sp = run_calculation(r.atoms, CalcSpec(backend="cp2k", method="PBE", settings={"cutoff": 150, "vacuum": 4.0}),
                         tmp_path / "check")
    assert r.energy == pytest.approx(sp.energy, abs=1e-5)
    assert len(list(tmp_path.glob("target-*"))) == r.force_calls
