"""Regenerate the README's level-diagram illustration (≈ 10 min on 2 cores):

    python docs/img/make_figures.py

* ``levels-s2-models.png`` — Figure-6-style level diagram of the pristine, partially (model d)
  and fully exchanged (model e, 100 %) quick S1/S2 heterostructure (244 atoms), GFN1-xTB single
  points with MO data on the **built, unrelaxed** geometries (the caption says so).

The S1 plot of the README (``s1-quick-mlip.png``) is the ``s1.png`` that
``hetflow reproduce s1 --quick --level mlip`` writes, copied unchanged; ``s1-quick-gfn1.png`` the one of
``hetflow reproduce s1 --quick --level xtb --accelerate chgnet-r2scan`` (≈ 57 min on 2 cores; its
``s1.md``/``s1.csv`` in ``bench/results/quick_gfn1_default/``) and ``s1-quick-gfn1-guided.png`` the
same with ``--accelerate-warm`` (81.5 min; ``bench/results/quick_gfn1_guided/``), copied unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from hetflow.analysis.plotting import PlotMeta, level_model, plot_level_diagram  # noqa: E402
from hetflow.calculators import CalcSpec, run_calculation  # noqa: E402
from hetflow.structures.exchange import interfacial_series  # noqa: E402
from hetflow.recipes.exchange_scan import ScanModel  # noqa: E402


def main() -> int:
    hs = ScanModel().build("s2", quick=True)
    series = interfacial_series(hs)
    models = [("pristine", hs), ("partially exchanged (model d)", series[0]), ("fully exchanged (model e, 100 %)", series[-1])]
    spec = CalcSpec(backend="tblite", method="GFN1-xTB", want_mo=True)
    panels = []
    for label, atoms in models:
        res = run_calculation(atoms, spec)
        panel = level_model(res, label)
        panel.converged = None  # the SCF converged, but the geometry is not relaxed: say neither
        panels.append(panel)
        print(f"{label}: {len(atoms)} atoms, E = {res.energy:.3f} eV", flush=True)
    meta = PlotMeta(model=f"CsPbCl3/Pb4S3Cl2 NC heterostructure, quick model, {len(hs)} atoms",
                    level="GFN1-xTB (tblite)", converged=None,
                    note="single points on the built geometries (not relaxed): an illustration of the diagram, "
                         "not a result")
    print("wrote", plot_level_diagram(panels, HERE / "levels-s2-models.png", meta=meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
