"""Figure-6 level diagrams and honest plots: the artists drawn are checked, not only the file
(level segments and their colours, HOMO/LUMO/gap labels, titles and captions, ✕ marks on rows
that did not converge)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from hetflow.analysis.plotting import (
    DOMAIN_COLOURS, UNCONVERGED_COLOUR, LevelModel, PlotMeta, bars_figure, layer_energies_figure,
    level_diagram_figure, level_model, plot_level_diagram, s2_figure,
)
from hetflow.errors import InputError

E = np.array([-8.0, -6.5, -6.0, -5.5, -3.0, -2.5, -0.5])  # eV; HOMO −5.5, LUMO −3.0
OCC = np.array([2, 2, 2, 2, 0, 0, 0.0])
FR = {  # per MO: chalcohalide / CsPbCl3 / CsPbI3
    "chalcohalide": np.array([1.0, 0.5, 0.0, 0.2, 1.0, 0.3, 0.0]),
    "CsPbCl3": np.array([0.0, 0.5, 0.4, 0.0, 0.0, 0.3, 1.0]),
    "CsPbI3": np.array([0.0, 0.0, 0.6, 0.8, -0.01, 0.4, 0.0]),
}
META = PlotMeta(model="CsPbCl3/Pb4S3Cl2 NC, 128 atoms", level="GFN1-xTB (tblite)", converged=False,
                unconverged=["s1-bottom-N2"], note="quick run: trends only")


def _levels(ax):
    return [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("level:")]


def _texts(fig, gid=None):
    return [t.get_text() for ax in fig.axes for t in ax.texts if gid is None or t.get_gid() == gid]


def test_level_diagram_segments_colours_edges_and_titles():
    models = [LevelModel("pristine", E, OCC, FR, converged=True),
              LevelModel("fully exchanged", E + 0.2, OCC, FR, converged=False)]
    fig = level_diagram_figure(models, meta=META)
    axes = [ax for ax in fig.axes if _levels(ax)]
    assert len(axes) == 2
    # window HOMO − 2 eV … LUMO + 2 eV keeps MOs 1…5 (not −8.0, not −0.5 eV)
    inside = [1, 2, 3, 4, 5]
    want_segments = sum(int((np.clip([FR[g][i] for g in FR], 0, None) > 0).sum()) for i in inside)
    for ax in axes:
        segs = _levels(ax)
        assert len(segs) == want_segments == 10
        assert {int(ln.get_gid().split(":")[1]) for ln in segs} == set(inside)
        for ln in segs:  # Figure-6 colours per domain
            assert to_rgba(ln.get_color()) == to_rgba(DOMAIN_COLOURS[ln.get_gid().split(":")[2]])
        # segments of one level tile [0, 1] left to right: chalcohalide, CsPbCl3, CsPbI3
        lvl2 = sorted((ln.get_xdata()[0], ln.get_xdata()[1], ln.get_gid()) for ln in segs if ":2:" in ln.get_gid())
        assert [g.split(":")[2] for *_, g in lvl2] == ["CsPbCl3", "CsPbI3"]
        assert lvl2[0][0] == 0 and lvl2[-1][1] == pytest.approx(1.0) and lvl2[0][1] == pytest.approx(0.4)
        # the negative Mulliken fraction of the LUMO is drawn as 0: one grey segment over [0, 1]
        lumo = [ln for ln in segs if ":4:" in ln.get_gid()]
        assert len(lumo) == 1 and tuple(lumo[0].get_xdata()) == pytest.approx((0.0, 1.0))
        # band edges drawn thicker than the other levels
        assert lumo[0].get_linewidth() > max(ln.get_linewidth() for ln in segs if ":2:" in ln.get_gid())
    assert _texts(fig, "homo") == ["HOMO -5.50 eV", "HOMO -5.30 eV"]
    assert _texts(fig, "lumo") == ["LUMO -3.00 eV", "LUMO -2.80 eV"]
    assert _texts(fig, "gap") == ["gap 2.50 eV", "gap 2.50 eV"]
    titles = [ax.get_title() for ax in axes]
    assert titles == ["pristine\nconverged", "fully exchanged\nNOT converged"]
    assert to_rgba(axes[1].title.get_color()) == to_rgba(UNCONVERGED_COLOUR)
    sup = fig._suptitle.get_text()
    assert "GFN1-xTB (tblite)" in sup and "CsPbCl3/Pb4S3Cl2 NC, 128 atoms" in sup
    cap = [t.get_text() for t in fig.texts if t.get_gid() == "caption"][0]
    assert "1 calculation NOT converged" in cap and "quick run" in cap
    legend = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert legend == ["chalcohalide", "CsPbCl3", "CsPbI3"]


def test_window_is_an_argument_and_checked(tmp_path):
    fig = level_diagram_figure([LevelModel("m", E, OCC, FR)], window=(3.0, 3.0))
    segs = _levels([ax for ax in fig.axes if _levels(ax)][0])
    assert {int(ln.get_gid().split(":")[1]) for ln in segs} == {0, 1, 2, 3, 4, 5, 6}
    with pytest.raises(InputError, match="energy window"):
        level_diagram_figure([LevelModel("m", E, OCC, FR)], window=(0, 2))
    with pytest.raises(InputError, match="no occupied orbital"):
        level_diagram_figure([LevelModel("m", E, np.zeros(7), FR)])
    p = plot_level_diagram([LevelModel("m", E, OCC, FR)], tmp_path / "lv.png", meta=META)
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_level_model_from_real_tblite_mos(tmp_path):
    """Real GFN1-xTB MOs of a 36-atom CsPbCl3 NC whose top CsX plane is iodide: the CsPbI3
    domain (red) appears, every drawn level's segments add up to 1."""
    from hetflow.calculators import CalcSpec, run_calculation
    from hetflow.structures.nanocrystal import cut_nanocrystal

    nc = cut_nanocrystal("CsPbCl3", (2, 2, 1))
    syms = np.array(nc.get_chemical_symbols())
    syms[(nc.arrays["layer"] == nc.arrays["layer"].max()) & (syms == "Cl")] = "I"
    nc.set_chemical_symbols(list(syms))
    res = run_calculation(nc, CalcSpec(backend="tblite", method="GFN1-xTB", want_mo=True))
    m = level_model(res, "top layer I")
    assert set(m.fractions) == {"CsPbCl3", "CsPbI3"} and m.converged is True
    fig = level_diagram_figure([m], level="GFN1-xTB (tblite)", system="Cs12Pb4Cl16I4")
    ax = [a for a in fig.axes if _levels(a)][0]
    segs = _levels(ax)
    h, lu = m.homo_lumo()
    e = np.asarray(m.energies)
    n_in = int(((e >= e[h] - 2) & (e <= e[lu] + 2)).sum())
    assert len({ln.get_gid().split(":")[1] for ln in segs}) == n_in
    width = {}
    for ln in segs:
        i = ln.get_gid().split(":")[1]
        width[i] = width.get(i, 0) + float(np.diff(ln.get_xdata())[0])
    assert np.allclose(list(width.values()), 1.0)
    assert any(to_rgba(ln.get_color()) == to_rgba("tab:red") for ln in segs)
    assert _texts(fig, "homo") == [f"HOMO {e[h]:.2f} eV"] and _texts(fig, "lumo") == [f"LUMO {e[lu]:.2f} eV"]


def test_s1_plot_marks_unconverged_rows_and_captions():
    fig = layer_energies_figure([1, 2, 3], {"from interface": [4.0, 3.8, None], "from bottom": [0.5, 3.4, 3.6]},
                                published={"from interface": [4.32, 3.79, 4.11]}, meta=META,
                                converged={"from interface": [True, True, False], "from bottom": [True, False, True]})
    ax = fig.axes[0]
    assert ax.get_title() == "Cl→I exchange energy per layer — GFN1-xTB (tblite)"
    marks = [ln for ln in ax.get_lines() if ln.get_gid() == "unconverged"]
    xs = sorted((float(x), float(y)) for ln in marks for x, y in zip(ln.get_xdata(), ln.get_ydata()))
    assert xs == [(2.0, 3.4), (3.0, 0.0)]  # the row without a number is marked on the zero line
    assert all(to_rgba(ln.get_color()) == to_rgba(UNCONVERGED_COLOUR) for ln in marks)
    assert "not converged" in [t.get_text() for t in ax.get_legend().get_texts()]
    cap = [t.get_text() for t in fig.texts if t.get_gid() == "caption"][0]
    assert cap.startswith("CsPbCl3/Pb4S3Cl2 NC, 128 atoms · GFN1-xTB (tblite) · 1 calculation NOT converged")


def test_s2_and_s3_plots_hatch_unconverged_bars():
    fig = s2_figure(["0→20", "20→40"], [1.7, 2.8], [1.8, 1.6, 1.4], meta=META, converged=[True, False])
    bars = [p for p in fig.axes[0].patches if (p.get_gid() or "").startswith("bar")]
    assert [b.get_gid() for b in bars] == ["bar", "bar:unconverged"] and bars[1].get_hatch() == "//"
    fig = bars_figure(["random", "CsI ⊥"], [0.0, -3.0], published=[0, -3.22], converged=[False, True],
                      caption="model (d) + 20 % I · PBE (CP2K) · 1 not converged")
    bars = [p for p in fig.axes[0].patches if (p.get_gid() or "").startswith("bar")]
    assert [b.get_gid() for b in bars] == ["bar:unconverged", "bar"]
    assert [t.get_text() for t in fig.texts if t.get_gid() == "caption"] == \
        ["model (d) + 20 % I · PBE (CP2K) · 1 not converged"]
    with pytest.raises(InputError, match="1 converged flags for 2 steps"):
        s2_figure(["a", "b"], [1, 2], [1, 2], converged=[True])
