"""CP2K PBE backend: box/Poisson rule, inputs checked by CP2K itself, CP2K's own error line,
and real runs (PbCl2: single point, a run killed mid-SCF that resumes, a paper-preset relaxation
stopped at its walltime that resumes and converges; the README's 36-atom snippet on request)."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ase import Atoms
from ase.units import Bohr, Hartree

from hetflow.calculators import CalcSpec, run_calculation
from hetflow.calculators.cp2k import (_abort_message, build_input_tree, check_input_with_cp2k, command,
                                      cp2k_settings, parsed_ldos_lists, render_input, write_input)
from hetflow.calculators.cp2k_box import choose_poisson, density_extent, model_extent
from hetflow.calculators.recovery import energy_settings_differ
from hetflow.errors import CalculationStopped, CalculatorError, ConvergenceError, InputError

HAVE_CP2K = shutil.which("cp2k.psmp") is not None
needs_cp2k = pytest.mark.skipif(not HAVE_CP2K, reason="cp2k.psmp not installed")
PAPER_BOX = [52, 68, 52]


def _spec(**settings):
    return CalcSpec(backend="cp2k", method="PBE", want_mo=True, settings=settings)


def _parse(text):
    from cp2k_input_tools.parser import CP2KInputParserSimplified

    return CP2KInputParserSimplified().parse(io.StringIO(text))


# ----------------------------------------------------------------------------- box & solver rule


def test_poisson_rule_for_every_kind_of_box(cluster, pbcl2):
    s = lambda **kw: cp2k_settings(_spec(**kw))  # noqa: E731
    # the README's case: vacuum around a non-cubic model → cubic box, WAVELET
    p = choose_poisson(cluster, s(vacuum=8.0))
    ext = cluster.positions.max(axis=0) - cluster.positions.min(axis=0)
    assert p.solver == "WAVELET" and p.box == pytest.approx((ext.max() + 16.0,) * 3)
    assert ext[2] + 16.0 < p.box[2] - 5  # the model is not cubic, the box is
    # the paper's non-cubic box around a model at most half its size: MT, box unchanged
    p = choose_poisson(cluster, s())
    assert p.solver == "MT" and p.box == (52.0, 68.0, 52.0)
    assert np.all(np.asarray(p.box) >= 2 * density_extent(cluster))
    # a model too big for MT in the paper box: WAVELET in the enclosing 68 Å cube (the box grows)
    big = cluster.copy()
    big.positions[:, 2] *= 6.0  # 34 Å long
    p = choose_poisson(big, s())
    assert p.solver == "WAVELET" and p.box == (68.0, 68.0, 68.0) and p.requested == (52.0, 68.0, 52.0)
    assert "too small for MT" in p.reason and "equal grid spacings" in p.reason
    # forced solvers: MT/ANALYTIC only where their size rule holds; WAVELET makes the box cubic
    with pytest.raises(InputError, match=r"Poisson solver MT needs every edge ≥ 2 × density extent"):
        choose_poisson(big, s(poisson_solver="MT"))
    with pytest.raises(InputError, match="ANALYTIC needs half the shortest edge"):
        choose_poisson(cluster, s(poisson_solver="analytic", box=[30, 30, 30]))
    assert choose_poisson(pbcl2, s(poisson_solver="ANALYTIC", box=[32, 32, 32])).solver == "ANALYTIC"
    assert choose_poisson(cluster, s(poisson_solver="WAVELET")).box == (68.0, 68.0, 68.0)
    with pytest.raises(InputError, match="poisson_solver"):
        choose_poisson(cluster, s(poisson_solver="FFT"))
    with pytest.raises(InputError, match="does not fit the box"):
        choose_poisson(cluster, s(box=[8, 8, 8]))


def test_header_says_which_solver_and_why(cluster, tmp_path):
    text = write_input(cluster, CalcSpec(backend="cp2k", method="PBE"), tmp_path).read_text()
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert head[2] == "# box 52.000 x 68.000 x 52.000 Å, PERIODIC NONE, POISSON_SOLVER MT"
    assert head[3].startswith("# why: MT: box 52.00 × 68.00 × 52.00 Å as given is not cubic")
    tree = _parse(text)
    assert tree["force_eval"]["dft"]["poisson"]["poisson_solver"].upper() == "MT"
    if HAVE_CP2K:
        check_input_with_cp2k(tmp_path / "hetflow.inp")


def test_paper_preset_for_the_paper_scale_model_line_by_line(tmp_path):
    """SCIENCE.md's method: PBE, GTH pseudopotentials, DZVP-MOLOPT-SR-GTH, 400 Ry, non-periodic
    box 52 × 68 × 52 Å, relaxed to 4.5e-4 Ha/Bohr — on the full S1 heterostructure (> 300 atoms)."""
    from hetflow.recipes.common import RecipeOptions
    from hetflow.recipes.exchange_scan import ScanModel, s1_workflow

    from hetflow.structures.interface import choose_registry

    reg, _ = choose_registry("CsPbCl3", "Pb4S3Cl2")  # geometric junction: this test is about the preset
    wf, _, _ = s1_workflow(ScanModel(registry=reg.to_dict()), RecipeOptions(level="pbe", outdir=tmp_path, progress=False))
    atoms = wf.task("pristine").atoms
    assert len(atoms) > 300 and model_extent(atoms).max() > 30  # the full model, not the quick one
    spec = CalcSpec(backend="cp2k", method="PBE", task="relax")  # the preset's own box
    text = write_input(atoms, spec, tmp_path / "paper").read_text()
    t = _parse(text)
    fe = t["force_eval"]
    dft, sub = fe["dft"], fe["subsys"]
    kinds = sub["kind"] if isinstance(sub["kind"], dict) else {k["_"]: k for k in sub["kind"]}
    assert dft["xc"]["xc_functional"]["_"] == "PBE"                                       # functional
    assert {k["basis_set"] for k in kinds.values()} == {"DZVP-MOLOPT-SR-GTH"}             # basis family
    assert {el: k["potential"] for el, k in kinds.items()} == {                            # GTH-PBE, basis valence
        "Cs": "GTH-PBE-q9", "Pb": "GTH-PBE-q4", "S": "GTH-PBE-q6", "Cl": "GTH-PBE-q7"}
    assert dft["mgrid"]["cutoff"] == 400                                                  # 400 Ry
    assert dft["poisson"]["periodic"].upper() == "NONE" and sub["cell"]["periodic"].upper() == "NONE"
    assert t["motion"]["geo_opt"]["max_force"] == pytest.approx(4.5e-4)                   # Ha/Bohr
    assert t["global"]["run_type"].upper() == "GEO_OPT"
    # box: the paper's 52 × 68 × 52 Å cannot hold this model for MT (2 × its ≈ 40 Å density
    # extent > 68 Å) and CP2K's WAVELET needs a cube → the 68 Å cube that contains the paper box
    assert list(sub["cell"]["abc"]) == [68, 68, 68] and dft["poisson"]["poisson_solver"].upper() == "WAVELET"
    why = next(ln for ln in text.splitlines() if ln.startswith("# why:"))
    assert "requested box 52.00 × 68.00 × 52.00 Å as given" in why and "too small for MT" in why
    if HAVE_CP2K:
        check_input_with_cp2k(tmp_path / "paper" / "hetflow.inp")


def test_input_validates_and_carries_ldos_lists(cluster, tmp_path):
    inp = write_input(cluster, CalcSpec(backend="cp2k", method="PBE", task="relax"), tmp_path)
    lists = parsed_ldos_lists(inp.read_text())
    assert sorted(i for lst in lists for i in lst) == list(range(1, len(cluster) + 1))


def test_scf_ladder_is_energy_neutral_unless_asked(cluster):
    diag, _ = build_input_tree(cluster, CalcSpec(backend="cp2k", method="PBE"), attempt="diagonalization",
                               wfn_restart="/x/hetflow-RESTART.wfn")
    scf = diag["+force_eval"][0]["+dft"]["+scf"]
    assert "+ot" not in scf and "+smear" not in scf and scf["scf_guess"] == "RESTART"
    assert scf["+print"]["+restart"]["+each"]["qs_scf"] == 1  # wavefunction kept after every SCF step
    assert diag["+force_eval"][0]["+dft"]["wfn_restart_file_name"] == "/x/hetflow-RESTART.wfn"
    more, _ = build_input_tree(cluster, CalcSpec(backend="cp2k", method="PBE"), attempt="more_steps")
    assert more["+force_eval"][0]["+dft"]["+scf"]["max_scf"] == 150 and "+smear" not in more["+force_eval"][0]["+dft"]["+scf"]
    smear, _ = build_input_tree(cluster, CalcSpec(backend="cp2k", method="PBE", settings={"recovery": ["smearing"]}),
                                attempt="smearing")
    assert smear["+force_eval"][0]["+dft"]["+scf"]["+smear"]["electronic_temperature"] == 300
    render_input(smear)
    with pytest.raises(InputError, match="unknown recovery step"):
        cp2k_settings(CalcSpec(backend="cp2k", method="PBE", settings={"recovery": ["magic"]}))
    rows = {"a": {"cutoff_Ry": 400.0, "smearing_K": None}, "b": {"cutoff_Ry": 400.0, "smearing_K": None},
            "c": {"cutoff_Ry": 400.0, "smearing_K": 300.0}}
    assert energy_settings_differ(rows) == {"c": "smearing_K: 300.0 (others: None)"}


def test_walltime_from_the_allocation_clock(cluster, tmp_path, monkeypatch):
    from hetflow.calculators.cp2k_restart import cp2k_walltime

    monkeypatch.delenv("HETFLOW_CP2K_WALLTIME", raising=False)
    monkeypatch.setenv("HETFLOW_JOB_WALLTIME", "3600")
    monkeypatch.setenv("HETFLOW_JOB_DEADLINE", str(time.time() + 3000))
    assert cp2k_walltime() == pytest.approx(3000 - 180, abs=2)  # margin max(120 s, 5 %)
    text = write_input(cluster, CalcSpec(backend="cp2k", method="PBE"), tmp_path, walltime=cp2k_walltime()).read_text()
    assert re.search(r"^\s*WALLTIME 00:4\d:\d\d$", text, re.M)
    monkeypatch.setenv("HETFLOW_JOB_DEADLINE", str(time.time() + 100))
    with pytest.raises(CalculationStopped, match="not starting CP2K"):
        cp2k_walltime()


def test_cp2k_input_errors(cluster, tmp_path):
    with pytest.raises(InputError, match="no DZVP-MOLOPT-SR-GTH basis for element"):
        write_input(Atoms("UCl4", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5], [-2.5, 0, 0]]),
                    _spec(box=[12, 12, 12]), tmp_path)
    with pytest.raises(InputError, match="unknown CP2K setting"):
        write_input(cluster, _spec(cutof=300), tmp_path)
    with pytest.raises(CalculatorError, match="not found on PATH"):
        run_calculation(cluster, _spec(executable="cp2k-does-not-exist.psmp"), tmp_path)
    with pytest.raises(InputError, match="odd number of electrons"):
        write_input(cluster, CalcSpec(backend="cp2k", method="PBE", charge=1), tmp_path)


# ----------------------------------------------------------------------------- CP2K's verdict (seconds)


@needs_cp2k
@pytest.mark.cp2k
def test_cp2k_error_line_is_its_own_message_without_banner(pbcl2, tmp_path):
    """A WAVELET input in a non-cubic cell (what hetflow no longer writes) makes the real CP2K
    abort; the message is CP2K's own line, no banner art."""
    spec = _spec(box=[10, 11, 10], cutoff=100, poisson_solver="WAVELET")
    inp = write_input(pbcl2, spec, tmp_path)
    text = inp.read_text()
    assert re.search(r"ABC 11\.0+ 11\.0+ 11\.0+", text)  # the rule made it cubic
    inp.write_text(re.sub(r"ABC .*", "ABC 10.0 11.0 10.0", text))
    p = subprocess.run(command(cp2k_settings(spec)), cwd=tmp_path, capture_output=True, text=True,
                       env=os.environ | {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
    assert p.returncode != 0
    msg = _abort_message((tmp_path / "hetflow.out").read_text())
    assert msg == "Poisson solver for non cubic cells not yet implemented (pw/ps_wavelet_methods.F:103)"


@needs_cp2k
@pytest.mark.cp2k
@pytest.mark.parametrize("settings, solver", [({"box": [20, 20, 15]}, "MT"),          # non-cubic, ≥ 2× density
                                              ({"box": [12, 14, 11]}, "WAVELET")])    # non-cubic → 14 Å cube
def test_cp2k_runs_past_the_poisson_solver_it_is_given(pbcl2, tmp_path, settings, solver):
    """The chosen box + solver get through CP2K's Poisson set-up (2 SCF steps at 100 Ry)."""
    spec = CalcSpec(backend="cp2k", method="PBE", settings=settings | {"cutoff": 100, "max_scf": 2,
                                                                     "scf": "diagonalization", "recovery": False})
    with pytest.raises(ConvergenceError, match="SCF run NOT converged"):
        run_calculation(pbcl2, spec, tmp_path)
    out = (tmp_path / "attempt-0" / "hetflow.out").read_text()
    assert f"POISSON_SOLVER {solver}" in (tmp_path / "attempt-0" / "hetflow.inp").read_text()
    assert "ABORT" not in out and "PROGRAM ENDED" in out


# ----------------------------------------------------------------------------- real runs (minutes)

SNIPPET_SHAPED = {"vacuum": 4.0, "ldos_groups": {"Pb": [0], "Cl": [1, 2]}, "nlumo": 10}  # = README snippet


@pytest.fixture(scope="module")
def pbcl2_run(pbcl2, tmp_path_factory):
    """PbCl2 single point with the README snippet's shape: ``vacuum`` around a non-cubic model
    (→ 10.8 Å cube, WAVELET), want_mo — ≈ 1.5 min on 2 cores."""
    if not HAVE_CP2K:
        pytest.skip("cp2k.psmp not installed")
    from hetflow.structures.phases import get_phase

    wd = tmp_path_factory.mktemp("cp2k-pbcl2")
    mol = get_phase("PbCl2-molecule")  # the README's CP2K snippet, verbatim
    return mol.copy(), wd, run_calculation(mol, _spec(**SNIPPET_SHAPED), wd)


@pytest.mark.cp2k
@pytest.mark.slow
def test_pbcl2_single_point_energy_matches_output(pbcl2_run):
    atoms, wd, r = pbcl2_run
    assert r.converged and r.scf_steps and r.scf_steps > 1
    out = (wd / "attempt-0" / "hetflow.out").read_text()
    line = [x for x in out.splitlines() if "Total FORCE_EVAL ( QS ) energy" in x][-1]
    assert r.energy == pytest.approx(float(line.split()[-1]) * Hartree, abs=1e-8)
    assert -1000 < r.energy < -800  # PbCl2 with 18 valence electrons: −33.6 Ha
    assert r.versions["cp2k"].startswith("20")
    assert r.extra["poisson"]["solver"] == "WAVELET" and len(set(r.extra["poisson"]["box"])) == 1
    assert r.extra["energy_settings"]["cutoff_Ry"] == 400 and r.extra["restarts"] == []
    assert not any("Density non-zero" in w for w in r.extra.get("cp2k_warnings", [])), r.extra["cp2k_warnings"]


@pytest.mark.cp2k
@pytest.mark.slow
def test_pbcl2_forces_and_mo_data(pbcl2_run):
    atoms, _, r = pbcl2_run
    assert r.forces.shape == (3, 3)
    assert np.abs(r.forces.sum(axis=0)).max() < 1e-3  # isolated molecule: no net force
    mo = r.mo
    assert np.isclose(mo.occupations.sum(), 18.0)  # Pb 4 + 2 × Cl 7 valence electrons
    assert (mo.occupations == 0).sum() == 10  # NLUMO
    assert np.all(np.diff(mo.eigenvalues) >= -1e-6)
    gap = mo.eigenvalues[mo.occupations == 0][0] - mo.eigenvalues[mo.occupations > 0][-1]
    assert 1.0 < gap < 6.0
    fr = mo.projections
    assert set(fr) == {"Pb", "Cl"}
    np.testing.assert_allclose(fr["Pb"] + fr["Cl"], 1.0, atol=1e-6)
    homo = np.flatnonzero(mo.occupations > 0)[-1]
    assert fr["Cl"][homo] > 0.5  # the HOMO of a lead halide is halide p
    assert r.atoms.get_chemical_formula() == atoms.get_chemical_formula()


_KILL_SCRIPT = """
import sys, pickle
from hetflow.calculators import run_calculation
atoms, spec, wd = pickle.load(open(sys.argv[1], "rb"))
run_calculation(atoms, spec, wd)
"""


@pytest.mark.cp2k
@pytest.mark.slow
def test_run_killed_mid_scf_resumes_from_its_restart_files(pbcl2_run, tmp_path):
    import pickle

    atoms, _, fresh = pbcl2_run
    spec = _spec(**SNIPPET_SHAPED)
    wd = tmp_path / "killed"
    job = tmp_path / "job.pkl"
    job.write_bytes(pickle.dumps((atoms, spec, str(wd))))
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(job)], env=env, start_new_session=True)
    out = wd / "attempt-0" / "hetflow.out"
    from hetflow.calculators.cp2k_restart import scf_iterations

    half = max(3, fresh.scf_steps // 2)
    t0 = time.time()
    while time.time() - t0 < 600 and proc.poll() is None:
        if out.exists() and scf_iterations(out.read_text(errors="replace")) >= half \
                and (wd / "attempt-0" / "hetflow-RESTART.wfn").exists():
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole tree: python, mpirun, cp2k ranks
    proc.wait()
    time.sleep(1)
    assert (wd / "attempt-0" / "hetflow-RESTART.wfn").exists() and not (wd / "attempt-0" / "result.ok").exists()
    r = run_calculation(atoms, spec, wd)
    assert r.converged
    (seg,) = r.extra["restarts"]
    assert seg["reason"].startswith("killed") and seg["resumed_wfn"] and seg["scf_iterations"] >= half
    assert any("resumed after killed" in x and "SCF_GUESS RESTART" in x for x in r.recovery)
    assert r.scf_steps < fresh.scf_steps, (r.scf_steps, fresh.scf_steps)  # started from the killed run's wfn
    # killed part + resumed part: fewer SCF steps in all than the fresh run (measured at 100 Ry: 15 + 10 < 34)
    assert r.extra["scf_iterations_total"] < fresh.scf_steps, (r.extra["scf_iterations_total"], fresh.scf_steps)
    assert r.energy == pytest.approx(fresh.energy, abs=5e-5)  # eV; eps_scf 1e-6


@pytest.mark.cp2k
@pytest.mark.slow
def test_pbcl2_relaxation_paper_preset_stops_at_walltime_resumes_and_converges(pbcl2, tmp_path, monkeypatch):
    """Paper preset (PBE, DZVP-MOLOPT-SR-GTH, 400 Ry, BFGS to 4.5e-4 Ha/Bohr) in a 10.8 Å cube:
    the first job stops at CP2K's WALLTIME, the second resumes from the last geometry and
    wavefunction and converges."""
    spec = CalcSpec(backend="cp2k", method="PBE", task="relax", settings={"vacuum": 4.0})
    wd = tmp_path / "relax"
    # start well away from the minimum (Pb–Cl 2.70 Å, 112°) so the relaxation needs many BFGS
    # steps, and stop it after 80 s: from the fixture's near-minimum start an idle machine
    # finished the whole relaxation inside a 150 s walltime
    start = pbcl2.copy()
    r0, ang0 = 2.70, np.radians(112.0)
    start.positions = [[0, 0, 0], [r0, 0, 0], [r0 * np.cos(ang0), r0 * np.sin(ang0), 0]]
    monkeypatch.setenv("HETFLOW_CP2K_WALLTIME", "80")
    with pytest.raises(CalculationStopped, match="stopped at its walltime"):
        run_calculation(start, spec, wd)
    monkeypatch.delenv("HETFLOW_CP2K_WALLTIME")
    r = run_calculation(start, spec, wd)
    assert r.converged, r.recovery
    fmax = np.sqrt((r.forces ** 2).sum(axis=1)).max() * Bohr / Hartree
    assert fmax < 4.5e-4  # Ha/Bohr
    assert r.extra["restarts"][0]["reason"] == "walltime"
    assert any("resumed after walltime" in x for x in r.recovery)
    d = r.atoms.get_all_distances()
    assert 2.40 < d[0, 1] < 2.60 and abs(d[0, 1] - d[0, 2]) < 0.01  # Pb–Cl, symmetric
    ang = r.atoms.get_angle(1, 0, 2)
    assert 90 < ang < 115
    assert r.opt_steps >= 1 and r.opt_steps <= spec.max_steps


@pytest.mark.cp2k
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HETFLOW_CP2K_LONG") != "1",
                    reason="the README's 36-atom CP2K snippet takes tens of minutes on 2 cores; "
                           "set HETFLOW_CP2K_LONG=1 to run it")
def test_readme_snippet_36_atom_cluster_completes(cluster, tmp_path):
    dft = run_calculation(cluster, CalcSpec(backend="cp2k", method="PBE", want_mo=True,
                                            settings={"vacuum": 8.0}), workdir=tmp_path / "nc-pbe")
    assert dft.converged and np.isfinite(dft.energy)
    assert set(dft.mo.projections) == set(np.asarray(cluster.arrays["domain"]).astype(str))
    np.testing.assert_allclose(sum(dft.mo.projections.values()), 1.0, atol=1e-6)
