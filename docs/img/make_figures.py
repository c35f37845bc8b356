"""Regenerate the README's pictures (≈ 1 min on 2 cores):

    python docs/img/make_figures.py

* ``levels-s2-models.png`` — Figure-6-style level diagram of the pristine, partially (model d)
  and fully exchanged (model e, 100 %) quick S1/S2 heterostructure (128 atoms), GFN1-xTB single
  points with MO data on the **built, unrelaxed** geometries (the caption says so).
* ``s1-quick.png`` — the S1 energies of the ``reproduce s1 --quick`` run quoted in the README,
  re-plotted with its caption: every relaxation of that run stopped at its quick step cap.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from hetflow.analysis.plotting import PlotMeta, level_model, plot_layer_energies, plot_level_diagram  # noqa: E402
from hetflow.analysis.published import s1_series  # noqa: E402
from hetflow.calculators import CalcSpec, run_calculation  # noqa: E402
from hetflow.structures.exchange import interfacial_series  # noqa: E402
from hetflow.workflows.recipes.exchange_scan import ScanModel  # noqa: E402

#: the quick run quoted in the README (kcal/mol per exchanged halide, N = 1 … 5)
QUICK_S1 = {"from interface": [-6.05, 6.62, 19.46, 6.20, 17.39], "from bottom": [-18.53, 4.06, 11.30, 7.58, 16.72]}


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
    meta = PlotMeta(model="CsPbCl3/Pb4S3Cl2 NC heterostructure, quick model, 128 atoms", level="GFN1-xTB (tblite)",
                    converged=False, unconverged=[f"s1-{s}-N{n}" for s in ("interface", "bottom") for n in range(1, 6)],
                    note="hetflow reproduce s1 --quick: relaxations stopped at their step caps — trends only")
    print("wrote", plot_layer_energies([1, 2, 3, 4, 5], QUICK_S1, HERE / "s1-quick.png", published=s1_series(),
                                       meta=meta, converged={k: [False] * 5 for k in QUICK_S1}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
