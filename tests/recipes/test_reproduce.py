"""Recipes end to end with real engines on small faithful models.

Two regimes, both real calculations:

* the **gate**: tblite GFN1-xTB with relaxations capped at one step (``max_steps=1``): nothing
  converges, so no number may reach a table — every row says "not converged" and no conclusion
  of the paper is assessed;
* **converged** scans at the machine-learned level (CHGNet, seconds per relaxation on these
  models) with the same workflow: numbers appear, and the bookkeeping is checked by hand from the
  stored energies (stepwise, cumulative, their exact relation, units, reference stoichiometry,
  caching).

The models are the faithful builder's with a smaller perovskite (2 × 2 × 3, one b/2 block) and a
fixed junction (the continuity registry), so the tests do not pay for the energy registry search.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from hetflow.errors import InputError
from hetflow.analysis.units import from_ev
from hetflow.structures.interface import choose_registry
from hetflow.recipes.common import RecipeOptions
from hetflow.recipes.exchange_scan import ScanModel, run_s1, run_s2, run_s3
from hetflow.recipes.reproduce import expand, reproduce

pytestmark = pytest.mark.slow


def small_model(**kw) -> ScanModel:
    reg, _ = choose_registry("CsPbCl3", "Pb4S3Cl2")
    return ScanModel(size=(2, 2, 3), partner_cells=1, registry=reg.to_dict(), **kw)


def capped(tmp_path, **kw):
    """GFN1-xTB (tblite), every relaxation capped at one optimiser step."""
    return RecipeOptions(quick=True, max_steps=1, outdir=tmp_path, progress=False,
                         executor_options={"workers": 2, "threads": 1}, **kw)


def converged_opts(tmp_path, **kw):
    return RecipeOptions(level="mlip", mlip="chgnet", quick=True, outdir=tmp_path, progress=False,
                         executor_options={"workers": 2, "threads": 1}, **kw)


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    out = tmp_path_factory.mktemp("s1-capped")
    return run_s1(small_model(), capped(out)), out


@pytest.fixture(scope="module")
def s1(tmp_path_factory):
    out = tmp_path_factory.mktemp("s1-mlip")
    return run_s1(small_model(), converged_opts(out)), out


def test_gate_keeps_unconverged_numbers_out_of_the_table(gated):
    r, out = gated
    assert r.complete
    assert r.extra["unconverged"], "capped relaxations must be reported as not converged"
    for row in r.rows:
        for k in ("de_interface_step_kcal", "de_interface_cum_kcal", "de_bottom_step_kcal", "de_bottom_cum_kcal",
                  "diff_step_kcal"):
            assert getattr(row, k) is None
        assert row.status.startswith("not converged")
        assert row.published_interface_kcal is not None  # the paper's numbers are still shown
        assert row.fmax_interface > 0.1 and row.force_calls_interface >= 1
    assert r.checks["bottom-first preferred at N = 1 (stepwise)"] is None
    assert r.checks["every relaxation converged"] is False
    assert all(s.strain_pct is None for s in r.extra["strain_rows"])
    # the report says so and shows dashes, not numbers
    reproduce(["s1"], capped(out), model=small_model(), echo=lambda s: None)
    md = (out / "s1.md").read_text()
    assert "not converged" in md and "—" in md
    assert "not assessed" in md


def test_converged_s1_rows_and_bookkeeping(s1):
    r, _ = s1
    assert r.complete and not r.extra["unconverged"]
    assert [row.n for row in r.rows] == [1, 2, 3, 4, 5]
    for row in r.rows:
        assert row.status == "converged"
        for k in ("de_interface_step_kcal", "de_bottom_step_kcal", "de_interface_cum_kcal"):
            assert math.isfinite(getattr(row, k))
        assert row.fmax_interface <= 0.1 + 1e-9 and row.fmax_bottom <= 0.1 + 1e-9
        assert row.force_calls_interface >= 1
    assert isinstance(r.checks["bottom-first preferred at N = 1 (stepwise)"], bool)
    # N = 1 stepwise by hand from the stored energies (layer 0 of a 2 × 2 NC holds 4 Cl)
    res = r.results
    n_cl = sum(s == "Cl" for s in res["pristine"].atoms.get_chemical_symbols()) - sum(
        s == "Cl" for s in res["s1-interface-N1"].atoms.get_chemical_symbols())
    assert n_cl == 4
    e_ref = {h: res[f"ref-Pb{h}2-molecule"].energy for h in ("Cl", "I")}
    de = (res["s1-interface-N1"].energy + n_cl / 2 * e_ref["Cl"] - res["pristine"].energy - n_cl / 2 * e_ref["I"]) / n_cl
    assert r.rows[0].de_interface_step_kcal == pytest.approx(from_ev(de, "kcal/mol"), rel=1e-9)
    # N = 1: stepwise and cumulative are the same step
    assert r.rows[0].de_bottom_cum_kcal == pytest.approx(r.rows[0].de_bottom_step_kcal, rel=1e-12)
    # cumulative per halide × halides so far = Σ stepwise per halide × halides of each step (exact)
    for start in ("interface", "bottom"):
        x = [r.results[f"s1-{start}-N{n}"] for n in range(1, 6)]
        cl0 = sum(s == "Cl" for s in res["pristine"].atoms.get_chemical_symbols())
        xs = [cl0 - sum(s == "Cl" for s in a.atoms.get_chemical_symbols()) for a in x]
        steps = np.diff([0, *xs])
        st = [getattr(row, f"de_{start}_step_kcal") for row in r.rows]
        cu = [getattr(row, f"de_{start}_cum_kcal") for row in r.rows]
        for n in range(5):
            assert cu[n] * xs[n] == pytest.approx(sum(st[k] * steps[k] for k in range(n + 1)), rel=1e-9, abs=1e-9)
    assert "series follows the published shape" in r.extra["normalisation"]


def test_converged_s1_rerun_is_fully_cached(s1):
    r, out = s1
    again = run_s1(small_model(), converged_opts(out))
    assert again.summary.run == 0 and again.summary.cached == len(r.results)
    assert again.rows[2].de_bottom_step_kcal == pytest.approx(r.rows[2].de_bottom_step_kcal)


def test_strain_rows_against_the_reference_nc(s1):
    r, _ = s1
    rows = {s.model: s for s in r.extra["strain_rows"]}
    assert set(rows) == {"pristine", "interface-first N = 5", "bottom-first N = 5"}
    assert rows["pristine"].published_pct == 1.66
    for s in rows.values():
        assert 0 <= s.strain_pct < 15
    # each exchanged model against the NC with the same layers exchanged, relaxed at the same level
    assert rows["pristine"].reference == "nc-reference"
    for label, task in (("interface-first N = 5", "s1-interface-N5"), ("bottom-first N = 5", "s1-bottom-N5")):
        ref = r.results[rows[label].reference]
        model = r.results[task]
        pv = model.atoms.arrays["domain"] == "perovskite"
        assert rows[label].reference == f"nc-{task}" and ref.converged
        # the reference holds exactly the perovskite's iodides, and only those
        assert ref.atoms.get_chemical_symbols().count("I") == [s for s, p in zip(model.atoms.get_chemical_symbols(), pv)
                                                                if p].count("I") > 0
        assert len(ref.atoms) == int(pv.sum())


def test_reproduce_writes_reports(s1):
    _, out = s1
    reproduce(["s1"], converged_opts(out), model=small_model(), echo=lambda s: None)
    md = (out / "s1.md").read_text()
    assert "| N |" in md and "bottom-first preferred at N = 1 (stepwise)?" in md
    assert "## Interfacial strain" in md and "## Normalisation" in md
    assert "CHGNet" in md and "converged to fmax 0.1" in md
    assert (out / "s1.csv").read_text().count("\n") == 6
    assert (out / "s1.png").stat().st_size > 1000


def test_s2_nested_steps_strain_and_gate(tmp_path):
    r = run_s2(small_model(), converged_opts(tmp_path))
    assert r.complete and not r.extra["unconverged"]
    assert [row.published_step for row in r.rows] == ["0→20", "20→40", "40→60", "60→80", "80→100"]
    assert all(row.x >= 1 for row in r.rows)
    assert sum(row.x for row in r.rows) == r.results["s2-e-100"].atoms.get_chemical_symbols().count("I") - \
        r.results["s2-d"].atoms.get_chemical_symbols().count("I")
    assert len(r.extra["strain"]) == 6 and all(math.isfinite(s) and s >= 0 for s in r.extra["strain"])
    assert r.rows[0].de_minus_first_kcal == 0.0
    assert r.rows[0].de_cum_kcal == pytest.approx(r.rows[0].de_step_kcal)
    # the strain reference of every S2 model is the NC with model (d)'s perovskite layers exchanged
    assert set(r.extra["strain_references"].values()) == {"nc-s2-d"}
    assert r.results["nc-s2-d"].converged
    assert isinstance(r.checks["first interfacial step most favourable"], bool)


def test_s3_workflow_on_its_faithful_model():
    """The S3 graph on its 3 × 3 × 5 model (built, not run here: 501 atoms): four whole-plane
    patterns of 18 Cl each, three random seeds, every pattern warm-started from model (d)."""
    from hetflow.recipes.exchange_scan import s3_workflow

    wf, hs, d_name, names, counts = s3_workflow(ScanModel(registry=small_model().registry),
                                                RecipeOptions(quick=True, progress=False))
    assert len(hs) == 501 and hs.info["perovskite_layers"] == 10
    assert counts["n_target"] == 18 and all(counts["complete_planes"].values())
    assert sum("-random" in n for n in names) == 3
    assert {wf.task(n).start_from for n in names} == {d_name}
    assert wf.task(d_name).start_from == "s1-bottom-N5"


def test_s3_random_seeds_and_gate(tmp_path):
    """run_s3 end to end (CHGNet, capped at one step, so nothing converges and the gate keeps
    every number out) on a 2 × 2 × 5 model, where the patterns cannot all be whole planes."""
    opts = RecipeOptions(level="mlip", mlip="chgnet", quick=True, max_steps=1, outdir=tmp_path, progress=False,
                         executor_options={"workers": 2, "threads": 1})
    r = run_s3(ScanModel(size=(2, 2, 5), partner_cells=1, registry=small_model().registry), opts)
    assert r.complete
    assert [row.distribution for row in r.rows] == [
        "random", "CsI layer perpendicular", "CsI layer parallel", "PbI2 layer perpendicular"]
    assert len({row.x for row in r.rows}) == 1
    assert len(r.extra["random_seeds"]) == 3
    assert all(row.de_total_kcal is None and row.status.startswith("not converged") for row in r.rows)
    assert r.checks["every ordered distribution below random"] is None


def test_unknown_table_is_a_clear_error():
    from hetflow.errors import InputError

    with pytest.raises(InputError, match="unknown table 's4'"):
        expand(["s4"])
    assert expand(["all"]) == ["s1", "s2", "s3", "zif"]


def test_screen_ranks_a_new_pair(tmp_path):
    from hetflow.recipes.screen import ScreenPair, screen

    opts = RecipeOptions(level="mlip", mlip="chgnet", quick=True, max_steps=1, outdir=tmp_path, progress=False,
                         executor_options={"workers": 2, "threads": 1})
    rows = screen([ScreenPair.parse("CsPbBr3/Pb4S3Br2:I")], opts, echo=lambda s: None, size=(2, 2, 3),
                  partner_cells=1, geometric_registry=True)
    assert len(rows) == 1
    row = rows[0]
    assert row.exchange == "Br→I" and row.rank == 1
    # capped relaxations: ranked, but no exchange energy is claimed
    assert row.status == "not converged" and row.de_n1_bottom_kcal is None
    # a(CsPbBr3) = 5.874 Å against the Pb4S3Br2 perovskite-equivalent (8.2026 + 8.1699)/2/√2 = 5.789 Å
    assert row.mismatch_pct == pytest.approx((5.874 - 5.7888) / 5.874 * 100, abs=0.01)


def test_screen_pair_syntax_errors():
    from hetflow.errors import InputError
    from hetflow.recipes.screen import ScreenPair

    with pytest.raises(InputError, match="bad pair"):
        ScreenPair.parse("CsPbBr3-Pb4S3Br2")
    with pytest.raises(InputError, match="unknown phase"):
        ScreenPair.parse("CsPbXx3/Pb4S3Br2:I")
    with pytest.raises(InputError, match="not a halide"):
        ScreenPair.parse("CsPbBr3/Pb4S3Br2:Xe")


def test_pbe_level_builds_the_paper_cp2k_inputs(tmp_path):
    """--level pbe: the same workflow with CP2K specs; the pristine model's input validates
    (cp2k-input-tools) and carries the paper preset — not run here (hours of CPU)."""
    from hetflow.calculators.cp2k import write_input
    from hetflow.recipes.exchange_scan import s1_workflow

    opts = RecipeOptions(level="pbe", quick=True, outdir=tmp_path, progress=False)
    wf, hs, series = s1_workflow(small_model(), opts)
    task = wf.task("pristine")
    assert task.spec.backend == "cp2k" and task.spec.method == "PBE" and task.spec.task == "relax"
    assert all(wf.task(n).spec.backend == "cp2k" for n in series["bottom"])
    inp = write_input(task.atoms, task.spec, tmp_path / "pristine")
    text = Path(inp).read_text().upper()
    for needle in ("PBE", "DZVP-MOLOPT-SR-GTH", "GTH-PBE", "400", "PERIODIC NONE", "GEO_OPT"):
        assert needle in text, needle


@pytest.mark.parametrize("warm", [False, True])
def test_accelerate_guides_the_cold_relaxations_and_warm_ones_on_request(tmp_path, warm):
    """--accelerate guides the relaxations from built geometries (pristine, standalone NC, PbX2
    molecules); the warm-started chains and strain references relax at the target level alone
    unless --accelerate-warm; single points are never guided."""
    from hetflow.recipes.exchange_scan import s1_workflow

    opts = RecipeOptions(quick=True, outdir=tmp_path, progress=False, accelerate="chgnet-r2scan", accelerate_warm=warm)
    wf, hs, series = s1_workflow(small_model(), opts)
    cold = ["pristine", "nc-reference", "ref-PbCl2-molecule", "ref-PbI2-molecule"]
    warm_tasks = series["interface"] + series["bottom"] + list(set(wf.graph.graph["strain_references"].values())
                                                              - {"nc-reference"})
    assert len(warm_tasks) == 12
    assert all(wf.task(n).spec.accelerate == "CHGNet-r2SCAN" for n in cold)
    assert all(wf.task(n).spec.accelerate == ("CHGNet-r2SCAN" if warm else None) for n in warm_tasks)
    assert all(wf.task(n).start_from for n in warm_tasks) and not any(wf.task(n).start_from for n in cold)
    assert wf.task("pristine-mo").spec.accelerate is None


def test_accelerate_warm_needs_accelerate(tmp_path):
    with pytest.raises(InputError, match="--accelerate-warm needs --accelerate NAME"):
        RecipeOptions(quick=True, outdir=tmp_path, accelerate_warm=True)
