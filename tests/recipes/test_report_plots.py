"""Recipe reports wire the plots: level of theory, model and convergence from the scan
result; per-row flags from the task names; S2's three models side by side.  (Synthetic
results: this tests the wiring — the drawing itself is tested in tests/analysis.)"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from matplotlib.image import imread

from hetflow.calculators import CalcSpec, MOData
from hetflow.recipes.exchange_scan import ScanResult
from hetflow.recipes.report import plot_meta, plot_result, row_converged
from hetflow.recipes.rows import S1Row, S2Row

SPEC = CalcSpec(backend="tblite", method="GFN1-xTB", task="relax")


def _res(converged=True, mo=False, shift=0.0):
    m = None
    if mo:
        e = np.array([-7.0, -6.0, -5.0, -3.0, -2.0]) + shift
        m = MOData(eigenvalues=e, occupations=np.array([2, 2, 2, 0, 0.0]),
                   projections={"chalcohalide": np.full(5, 0.5), "CsPbCl3": np.full(5, 0.3),
                                "CsPbI3": np.full(5, 0.2)})
    return SimpleNamespace(converged=converged, spec=SPEC, mo=m, atoms=None, name="")


def test_s1_flags_and_meta_from_names(tmp_path):
    res = {"pristine": _res(), "pristine-mo": _res(mo=True)}
    for start in ("interface", "bottom"):
        for n in range(1, 6):
            res[f"s1-{start}-N{n}"] = _res(converged=not (start == "bottom" and n == 3))
    r = ScanResult("s1", rows=[S1Row(n=n) for n in range(1, 6)], checks={}, results=res,
                   extra={"series": {"interface": [1, 2, 3, 4, 5], "bottom": [0, 1, 2, 3, 4]},
                          "series_cumulative": {"interface": [1, 1.5, 2, 2.5, 3], "bottom": [0, 0.5, 1, 1.5, 2]},
                          "model": "CsPbCl3/Pb4S3Cl2 NC heterostructure, 128 atoms",
                          "unconverged": ["s1-bottom-N3"], "pristine_mo": res["pristine-mo"]})
    flags = row_converged(r)
    # N3 enters the rows N = 3 (N2 → N3) and N = 4 (N3 → N4)
    assert flags == {"from interface": [True] * 5, "from bottom": [True, True, False, False, True]}
    meta = plot_meta(r)
    assert meta.level == "GFN1-xTB (tblite)" and meta.converged is False
    assert "1 calculation NOT converged" in meta.caption() and meta.model in meta.caption()
    paths = plot_result(r, tmp_path)
    assert [p.name for p in paths] == ["s1.png", "s1-pristine-levels.png"]
    assert all(imread(p).shape[0] > 300 for p in paths)


def test_s2_level_models_side_by_side(tmp_path, monkeypatch):
    from hetflow.analysis import plotting

    res = {"pristine": _res(), "s2-d": _res(), "s2-e-100": _res(converged=False),
           "pristine-mo": _res(mo=True), "s2-d-mo": _res(mo=True, shift=0.1), "s2-e-100-mo": _res(mo=True, shift=0.2)}
    models = [("pristine", res["pristine-mo"], res["pristine"]),
              ("partially exchanged (model d)", res["s2-d-mo"], res["s2-d"]),
              ("fully exchanged", res["s2-e-100-mo"], res["s2-e-100"])]
    r = ScanResult("s2", rows=[S2Row(step="0→100", de_step_kcal=2.0)], checks={}, results=res,
                   extra={"strain": [1.8, 1.5], "model": "m", "unconverged": ["s2-e-100"], "level_models": models})
    assert row_converged(r) == [False]
    seen = {}
    real = plotting.level_diagram_figure

    def spy(panels, **kw):
        seen["panels"] = [(p.label, p.converged) for p in panels]
        return real(panels, **kw)

    monkeypatch.setattr(plotting, "level_diagram_figure", spy)
    paths = plot_result(r, tmp_path)
    assert [p.name for p in paths] == ["s2.png", "s2-levels.png"]
    assert seen["panels"] == [("pristine", True), ("partially exchanged (model d)", True), ("fully exchanged", False)]


def test_guided_relaxations_are_named_in_the_caption():
    """A table whose relaxations a potential guided says so (the level stays the target's)."""
    guided = SimpleNamespace(converged=True, spec=CalcSpec(backend="tblite", method="GFN1-xTB", task="relax",
                                                            accelerate="chgnet-r2scan"), mo=None, atoms=None, name="")
    r = ScanResult("s1", rows=[], checks={}, results={"pristine": guided, "ref": _res()},
                   extra={"model": "m", "unconverged": []})
    meta = plot_meta(r)
    assert meta.level == "GFN1-xTB (tblite)" and meta.converged is True
    assert "relaxations guided by CHGNet-r2SCAN, energies the target level's own" in meta.caption()
    assert "guided" not in plot_meta(ScanResult("s1", rows=[], checks={}, results={"p": _res()}, extra={})).caption()
