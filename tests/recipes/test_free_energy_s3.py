"""The S3 distribution mode of the free-energy recipe end to end (CHGNet, a trial model): the
ordered patterns against the random alloys' ensemble, the gate, the report, the cache, the CLI.

The thermodynamics is tested on known answers in tests/analysis/test_analysis_thermo.py; here the
recipe's bookkeeping is checked against the stored energies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from hetflow.analysis.thermo import K_B, ensemble, gaussian_free_energy, log_binomial
from hetflow.analysis.units import kcal
from hetflow.cli import app
from hetflow.errors import InputError
from hetflow.recipes.common import RecipeOptions
from hetflow.recipes.exchange_scan import ScanModel
from hetflow.recipes.free_energy import FreeEnergyOptions
from hetflow.recipes.free_energy_report import write_s3_distribution_report
from hetflow.recipes.free_energy_s3 import pattern_multiplicity, run_s3_distribution
from hetflow.structures.interface import choose_registry

pytestmark = pytest.mark.slow
pytest.importorskip("chgnet")

FO = FreeEnergyOptions(samples=4, temperatures=(300.0, 900.0), n_boot=50, sites="s3")


def _opts(out):
    return RecipeOptions(level="mlip", mlip="chgnet", quick=True, outdir=out, progress=False,
                         executor_options={"workers": 2, "threads": 1})


def _model():
    reg, _ = choose_registry("CsPbCl3", "Pb4S3Cl2")
    return ScanModel(size=(2, 2, 5), partner_cells=1, registry=reg.to_dict())


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("s3d")
    return run_s3_distribution(_model(), _opts(out), FO), out


def test_patterns_against_the_random_ensemble(dist):
    r, _ = dist
    assert r.complete and not r.extra["unconverged"] and r.checks["every relaxation converged"]
    rnd = [n for n in r.results if "-random-seed" in n]
    assert len(rnd) == FO.samples == len(r.extra["random_kcal"])
    # the rows follow from the stored energies: every random alloy exchanges the same x sites of
    # model (d)'s perovskite Cl, and only those
    d = r.results["s2-d"].atoms
    x, n_sites = r.extra["sites"]["x"], r.extra["sites"]["n_sites"]
    for n in rnd:
        diff = np.array(r.results[n].atoms.get_chemical_symbols()) != np.array(d.get_chemical_symbols())
        assert diff.sum() == x and (r.results[n].atoms.arrays["domain"][diff] == "perovskite").all()
    assert r.extra["sites"]["log_omega"] == pytest.approx(math.log(math.comb(n_sites, x)))
    tot = np.array(r.extra["random_kcal"])
    e300, e900 = r.extra["ensemble"]
    assert e300.temperature_k == 300.0 and e300.status == "converged" and e300.n_relaxed == FO.samples
    assert e300.de_mean_kcal == pytest.approx(tot.mean()) and e300.de_std_kcal == pytest.approx(tot.std(ddof=1))
    assert e300.de_min_kcal == pytest.approx(tot.min()) and e300.de_max_kcal == pytest.approx(tot.max())
    lo = log_binomial(n_sites, x)
    kt = kcal(K_B * 300.0)
    # F of the sample: between min − kT ln Ω and min + kT ln M − kT ln Ω; the Gaussian estimate exact
    assert e300.f_kcal == pytest.approx(kcal(ensemble(tot / kcal(1.0), 300.0, log_omega=lo).free_energy))
    assert tot.min() - kt * lo - 1e-6 <= e300.f_kcal <= tot.min() - kt * lo + kt * math.log(FO.samples) + 1e-6
    assert e300.f_gauss_kcal == pytest.approx(kcal(gaussian_free_energy(
        tot.mean() / kcal(1.0), tot.std(ddof=1) / kcal(1.0), 300.0, lo)))
    assert e300.ideal_kcal == pytest.approx(-kt * lo) and e900.f_kcal < e300.f_kcal
    # the three ordered patterns
    assert [row.distribution for row in r.rows] == ["CsI layer perpendicular", "CsI layer parallel",
                                                    "PbI2 layer perpendicular"]
    for row in r.rows:
        assert row.status == "converged" and row.x == x
        assert row.de_minus_mean_kcal == pytest.approx(row.de_total_kcal - tot.mean())
        assert row.de_minus_min_kcal == pytest.approx(row.de_total_kcal - tot.min())
        assert row.random_below_pct == pytest.approx(100.0 * (tot < row.de_total_kcal).mean())
        g = r.extra["multiplicity"][row.distribution]
        assert g >= 1
        assert row.g_minus_f_kcal == pytest.approx(row.de_total_kcal - kt * math.log(g) - e300.f_kcal)
        assert row.published_de_minus_random_kcal is not None
    for key in ("every ordered pattern below every sampled random alloy",
                "every ordered pattern below the random ensemble's free energy at 300 K"):
        assert isinstance(r.checks[key], bool)
    assert r.extra["verdicts"][0].startswith("300 K: the 4 random alloys spread")
    assert "in free energy at 300 K" in r.extra["verdicts"][0]


def test_multiplicity_counts_symmetry_copies(dist):
    """A single exchanged Cl of a symmetric model has as many copies as its site's orbit; an exchange
    of every remaining Cl has one."""
    r, _ = dist
    d = r.results["s2-d"].atoms
    cl = np.flatnonzero((np.array(d.get_chemical_symbols()) == "Cl") & (d.arrays["domain"] == "perovskite"))
    one = d.copy()
    one.symbols[cl[0]] = "I"
    every = d.copy()
    every.symbols[cl] = "I"
    assert pattern_multiplicity(d, every) == 1
    assert 1 <= pattern_multiplicity(d, one) <= 8  # a 2 × 2 footprint: at most the 8 operations of C4v


def test_report_cli_and_rerun_from_cache(dist):
    r, out = dist
    paths = write_s3_distribution_report(r, _opts(out), FO)
    md = paths[0].read_text()
    assert "## The paper's \"ordered is preferred\", against the distribution" in md and "G − F" in md
    assert (out / "s3-distribution.csv").read_text().count("\n") == 4  # header + 3 patterns
    assert (out / "s3-distribution-random.csv").read_text().count("\n") == FO.samples + 1
    assert imread(paths[3]).shape[0] > 300
    again = run_s3_distribution(_model(), _opts(out), FO)
    assert again.summary.run == 0 and again.rows == r.rows
    # the command line reaches the same store and runs nothing new
    res = CliRunner().invoke(app, ["free-energy", "--sites", "s3", "--level", "mlip", "--mlip", "chgnet", "--quick",
                                    "--size", "2", "2", "5", "--partner-cells", "1", "--registry", "continuity",
                                    "--samples", "4", "--temperature", "300", "--temperature", "900",
                                    "-o", str(out), "--workers", "2", "--threads", "1"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("s3-distribution: "))
    assert " 0 run" in line and "G − F" in res.output


def test_sites_option_is_validated():
    with pytest.raises(InputError, match="sites must be 's2' or 's3'"):
        FreeEnergyOptions(sites="s4")
