"""The free-energy recipe end to end (CHGNet, a trial model): ensembles, gate, report, cache.

The thermodynamics itself is tested on known answers in tests/analysis/test_analysis_thermo.py;
here the recipe's bookkeeping is checked against the stored energies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.image import imread

from hetflow.analysis.thermo import K_B
from hetflow.analysis.units import from_ev
from hetflow.errors import InputError
from hetflow.structures.interface import choose_registry
from hetflow.recipes.common import RecipeOptions
from hetflow.recipes.exchange_scan import ScanModel
from hetflow.recipes.free_energy import FreeEnergyOptions, run_free_energy
from hetflow.recipes.free_energy_report import write_free_energy_report

pytestmark = pytest.mark.slow
pytest.importorskip("chgnet")

FO = FreeEnergyOptions(samples=4, exact_max=3, fractions=(0.2, 1.0), temperatures=(300.0, 900.0), n_boot=50)


def _opts(out):
    return RecipeOptions(level="mlip", mlip="chgnet", quick=True, outdir=out, progress=False,
                         executor_options={"workers": 2, "threads": 1})


def _model():
    reg, _ = choose_registry("CsPbCl3", "Pb4S3Cl2")
    return ScanModel(size=(2, 2, 3), partner_cells=1, registry=reg.to_dict())


@pytest.fixture(scope="module")
def fe(tmp_path_factory):
    out = tmp_path_factory.mktemp("fe")
    return run_free_energy(_model(), _opts(out), FO), out


def test_rows_follow_from_the_stored_energies(fe):
    r, _ = fe
    assert r.complete and not r.extra["unconverged"] and len(r.rows) == 4
    by = {(row.n_exchanged, row.temperature_k): row for row in r.rows}
    n_sites = r.extra["pool"]["n_sites"]
    assert {n for n, _ in by} == {2, n_sites}
    for t in FO.temperatures:
        low, full = by[(2, t)], by[(n_sites, t)]
        assert low.status == full.status == "converged"
        # sampled: 4 draws, at most 4 distinct configurations relaxed
        assert low.configurations.startswith("4 random draws") and 1 <= low.n_relaxed <= 4
        # Boltzmann average between the lowest and the plain mean; ΔF below the lowest by at most kT ln Ω
        assert low.de_min_kcal <= low.de_mean_kcal + 1e-9 <= low.de_arith_kcal + 2e-9
        omega = math.comb(n_sites, 2)
        kt = float(from_ev(K_B * t, "kcal/mol"))
        assert low.df_kcal <= low.de_min_kcal + kt * math.log(4) / 2 + 1e-9
        assert low.df_kcal >= low.de_min_kcal - kt * math.log(omega) / 2 - 1e-9
        assert low.ideal_kcal == pytest.approx(-kt * math.log(omega) / 2)
        # the fully exchanged layers: one configuration, F = E, no entropy
        assert full.configurations.startswith("all 1 symmetry-distinct") and full.df_kcal == pytest.approx(full.de_min_kcal)
        assert full.df_err_kcal == 0.0 and full.mixing_kcal == pytest.approx(0.0, abs=1e-9)
    # ΔF falls with temperature where there is configurational entropy
    assert by[(2, 900.0)].df_kcal < by[(2, 300.0)].df_kcal
    assert r.extra["verdicts"][300.0].startswith("300 K: ΔF(x) is")
    assert isinstance(r.checks["an intermediate I/Cl ratio is stabilised at 300 K"], bool)
    # each configuration is an exchange of model (d)'s interfacial chalcohalide sites only
    for name, res in r.results.items():
        if name.startswith("fe-n2-"):
            d = r.results["s2-d"].atoms
            diff = np.array(res.atoms.get_chemical_symbols()) != np.array(d.get_chemical_symbols())
            assert diff.sum() == 2 and (res.atoms.arrays["domain"][diff] == "chalcohalide").all()


def test_report_and_rerun_from_cache(fe):
    r, out = fe
    paths = write_free_energy_report(r, _opts(out), FO)
    md = (out / "free-energy.md").read_text()
    assert "## The paper's question, answered at this level" in md and "ΔF(x) is" in md
    assert (out / "free-energy.csv").read_text().count("\n") == 5
    assert imread(paths[2]).shape[0] > 300
    again = run_free_energy(_model(), _opts(out), FO)
    assert again.summary.run == 0 and again.rows == r.rows


def test_options_are_validated():
    with pytest.raises(InputError, match="samples must be an integer 2"):
        FreeEnergyOptions(samples=1)
    with pytest.raises(InputError, match="temperatures must be in"):
        FreeEnergyOptions(temperatures=(0.0,))
    with pytest.raises(InputError, match="fractions must increase"):
        FreeEnergyOptions(fractions=(0.6, 0.4))
