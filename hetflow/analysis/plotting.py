"""Plots of exchange energies, strain and MO domain projections (PNG, matplotlib Agg).

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas directly, so no
GUI backend and no global pyplot state is touched.  Each ``*_figure`` function returns the
Figure (to inspect or embed); its ``plot_*`` twin writes it to ``path`` (PNG) and returns the
:class:`pathlib.Path`.  Energies are plotted in the unit the caller passes
(convert with :mod:`hetflow.analysis.units` first — kcal/mol in the published tables);
orbital energies in eV.

**Every plot says what it shows.**  The ``meta`` argument (:class:`PlotMeta`: model, level
of theory, convergence, notes) puts the level of theory into the title and a caption line
under the axes — ``model · level · convergence · note``.  Rows whose calculations did not
converge are *marked on the plot* (``converged=`` flags per point/bar: a red ✕ and hatched
bars, a "not converged" legend entry; a value of None — a row the convergence gate left
without a number — is drawn as a ✕ on the zero line).

**Level diagrams** (:func:`plot_level_diagram`, Figure 6 of Livakas et al.): one panel per
model side by side; within the energy window (default HOMO − 2 eV … LUMO + 2 eV) each MO
is a horizontal line split left to right into segments whose lengths are its domain
fractions (chalcohalide grey, CsPbCl3 blue, CsPbI3 red; negative Mulliken fractions drawn
as 0 and the rest renormalised); HOMO and LUMO are drawn thicker and labelled with their
energies, the gap is shaded and its value printed between them (with an arrow when it is wide
enough to draw one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hetflow import atomic
from hetflow.errors import InputError

__all__ = ["DOMAIN_COLOURS", "UNCONVERGED_COLOUR", "PlotMeta", "LevelModel", "level_model",
           "layer_energies_figure", "s2_figure", "bars_figure", "level_diagram_figure",
           "plot_layer_energies", "plot_s2", "plot_bars", "plot_level_diagram", "plot_levels"]

#: Figure-6 colours: chalcohalide grey, CsPbCl3 blue, CsPbI3 red (others: matplotlib cycle)
DOMAIN_COLOURS: dict[str, str] = {
    "chalcohalide": "0.55",
    "CsPbCl3": "tab:blue",
    "CsPbBr3": "tab:green",
    "CsPbI3": "tab:red",
}
#: order of the segments of one level, left to right (other groups follow in their order)
DOMAIN_ORDER = ("chalcohalide", "CsPbCl3", "CsPbBr3", "CsPbI3")
#: marker colour of rows that did not converge
UNCONVERGED_COLOUR = "crimson"


@dataclass
class PlotMeta:
    """What a plot shows: filled by the recipes, printed in title and caption.

    model: the system (e.g. "CsPbCl3/Pb4S3Cl2 NC heterostructure, size (2, 2, 3), 128 atoms").
    level: level of theory (e.g. "GFN1-xTB (tblite)", "PBE (CP2K)").
    converged: True — every calculation behind the plot converged; False — some did not
        (``unconverged`` names them); None — not known.
    unconverged: names of the calculations that did not converge.
    note: anything else a reader must know ("quick run: trends only").
    """

    model: str = ""
    level: str = ""
    converged: bool | None = None
    unconverged: Sequence[str] = field(default_factory=tuple)
    note: str = ""

    def convergence_text(self) -> str:
        if self.converged is None:
            return "convergence not assessed"
        if self.converged:
            return "all calculations converged"
        n = len(self.unconverged)
        return (f"{n} calculation{'s' if n != 1 else ''} NOT converged" if n else "NOT converged") + \
            " (marked ✕)"

    def caption(self) -> str:
        return " · ".join(x for x in (self.model, self.level, self.convergence_text(), self.note) if x)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    atomic.save_figure(fig, path, dpi=150, bbox_inches="tight")
    return path


def _decorate(fig: Figure, ax, title: str, meta: PlotMeta | None, caption: str | None) -> None:
    """Title (with the level of theory) and the caption line under the axes."""
    if meta is not None and meta.level:
        title = f"{title} — {meta.level}"
    ax.set_title(title, fontsize=9)
    text = caption if caption is not None else (meta.caption() if meta is not None else "")
    fig.tight_layout()
    if text:
        import textwrap

        fig.text(0.01, 0.0, "\n".join(textwrap.wrap(text, 110)), fontsize=6.5, ha="left", va="top",
                 gid="caption")


def _values(vals: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in vals], dtype=float)


def _flags(flags: Sequence[bool | None] | None, n: int, what: str) -> np.ndarray:
    if flags is None:
        return np.ones(n, dtype=bool)
    if len(flags) != n:
        raise InputError(f"{len(flags)} converged flags for {n} {what}")
    return np.array([f is not False for f in flags], dtype=bool)


def _mark_unconverged(ax, x: np.ndarray, y: np.ndarray, ok: np.ndarray, label: bool) -> None:
    bad = ~ok
    if not bad.any():
        return
    yy = np.where(np.isfinite(y), y, 0.0)
    ax.plot(x[bad], yy[bad], "x", color=UNCONVERGED_COLOUR, ms=9, mew=2, ls="none",
            label="not converged" if label else None, gid="unconverged", zorder=5)


def layer_energies_figure(layers: Sequence[int], series: Mapping[str, Sequence[float | None]],
                          unit: str = "kcal/mol", published: Mapping[str, Sequence[float]] | None = None,
                          title: str = "Cl→I exchange energy per layer", meta: PlotMeta | None = None,
                          converged: Mapping[str, Sequence[bool | None]] | None = None,
                          caption: str | None = None) -> Figure:
    """ΔE per exchanged halide vs number of exchanged layers, one line per direction
    (e.g. ``{"from interface": [...], "from bottom": [...]}``); ``published`` drawn dashed;
    ``converged`` per series and layer (False rows marked ✕; a None value = no number)."""
    if not series:
        raise InputError("nothing to plot: no energy series")
    fig = Figure(figsize=(5.6, 4.0))
    ax = fig.add_subplot()
    x = np.asarray(list(layers), dtype=float)
    first_bad = True
    for k, (name, vals) in enumerate(series.items()):
        if len(vals) != len(layers):
            raise InputError(f"series {name!r} has {len(vals)} values for {len(layers)} layers")
        y = _values(vals)
        ok = _flags((converged or {}).get(name), len(layers), f"layers of {name!r}")
        ax.plot(x, y, "o-", color=f"C{k}", label=f"{name} (hetflow)", gid=f"series:{name}")
        _mark_unconverged(ax, x, y, ok, first_bad and not ok.all())
        first_bad = first_bad and ok.all()
        if published and name in published:
            ax.plot(x[: len(published[name])], published[name], "s--", color=f"C{k}", alpha=0.6,
                    label=f"{name} (published)", gid=f"published:{name}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("exchanged perovskite layers N")
    ax.set_ylabel(f"ΔE per exchanged halide ({unit})")
    ax.set_xticks(list(layers))
    ax.legend(fontsize=7)
    _decorate(fig, ax, title, meta, caption)
    return fig


def plot_layer_energies(layers: Sequence[int], series: Mapping[str, Sequence[float | None]],
                        path: str | Path, **options: Any) -> Path:
    """Draw :func:`layer_energies_figure` (same options) and write it to ``path`` (PNG)."""
    return _save(layer_energies_figure(layers, series, **options), path)


def s2_figure(steps: Sequence[str], energies: Sequence[float | None], strain: Sequence[float | None],
              unit: str = "kcal/mol", strain_steps: Sequence[str] | None = None,
              title: str = "I/Cl in the interfacial chalcohalide layers", meta: PlotMeta | None = None,
              converged: Sequence[bool | None] | None = None, caption: str | None = None,
              published: Sequence[float] | None = None,
              published_strain: Sequence[float] | None = None) -> Figure:
    """ΔE per step (bars, left axis) and interfacial strain (line, right axis, %) vs I/Cl.

    ``strain`` may have one value per step or one more (the strain before the first step; None =
    not computed or not converged); ``converged`` per step (False: hatched bar and ✕);
    ``published`` ΔE per step drawn as bars beside hetflow's, ``published_strain`` (same length
    as ``strain``) dashed."""
    if len(energies) != len(steps):
        raise InputError(f"{len(energies)} energies for {len(steps)} steps")
    x = np.arange(len(steps))
    if len(strain) == len(steps) + 1:
        xs = np.arange(-1, len(steps))
    elif len(strain) == len(steps):
        xs = x
    else:
        raise InputError(f"{len(strain)} strain values for {len(steps)} steps")
    ok = _flags(converged, len(steps), "steps")
    y = _values(energies)
    fig = Figure(figsize=(5.8, 4.0))
    ax = fig.add_subplot()
    w = 0.38 if published is not None else 0.8
    xh = x - (w / 2 if published is not None else 0)
    bars = ax.bar(xh, np.nan_to_num(y), w, color="C0", alpha=0.7, label="ΔE (hetflow)")
    for b, good in zip(bars, ok):
        b.set_gid("bar" if good else "bar:unconverged")
        if not good:
            b.set_hatch("//")
            b.set_edgecolor(UNCONVERGED_COLOUR)
    _mark_unconverged(ax, xh.astype(float), y, ok, True)
    if published is not None:
        ax.bar(x[: len(published)] + w / 2, list(published), w, color="C1", alpha=0.6, label="ΔE (published)",
               gid="published")
    ax.set_xticks(x, list(steps), rotation=20)
    ax.set_ylabel(f"ΔE per exchanged halide ({unit})", color="C0")
    ax.set_xlabel("I/Cl step")
    ax2 = ax.twinx()
    ax2.plot(xs, _values(strain), "o-", color="C3", label="interfacial strain (hetflow)", gid="strain")
    if published_strain is not None:
        ax2.plot(xs[: len(published_strain)], list(published_strain), "s--", color="C3", alpha=0.5,
                 label="interfacial strain (published)", gid="published:strain")
        ax2.legend(fontsize=7, loc="upper right")
    ax2.set_ylabel("interfacial strain (%)", color="C3")
    if not ok.all() or published is not None:
        ax.legend(fontsize=7, loc="upper left")
    _decorate(fig, ax, title, meta, caption)
    return fig


def plot_s2(steps: Sequence[str], energies: Sequence[float | None], strain: Sequence[float],
            path: str | Path, **options: Any) -> Path:
    """Draw :func:`s2_figure` (same options) and write it to ``path`` (PNG)."""
    return _save(s2_figure(steps, energies, strain, **options), path)


def bars_figure(labels: Sequence[str], values: Sequence[float | None], unit: str = "kcal/mol",
                published: Sequence[float] | None = None, ylabel: str = "ΔE",
                title: str = "≈20 % Cl→I: iodide distributions", meta: PlotMeta | None = None,
                converged: Sequence[bool | None] | None = None, caption: str | None = None) -> Figure:
    """Grouped bars (Table S3 style): hetflow values beside the published ones;
    ``converged`` per bar (False: hatched and ✕)."""
    if len(values) != len(labels):
        raise InputError(f"{len(values)} values for {len(labels)} labels")
    ok = _flags(converged, len(labels), "bars")
    y = _values(values)
    fig = Figure(figsize=(5.8, 4.0))
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    w = 0.38 if published is not None else 0.6
    xh = x - (w / 2 if published is not None else 0)
    bars = ax.bar(xh, np.nan_to_num(y), w, label="hetflow", color="C0")
    for b, good in zip(bars, ok):
        b.set_gid("bar" if good else "bar:unconverged")
        if not good:
            b.set_hatch("//")
            b.set_edgecolor(UNCONVERGED_COLOUR)
    _mark_unconverged(ax, xh.astype(float), y, ok, True)
    if published is not None:
        ax.bar(x + w / 2, published, w, label="published", color="C1", alpha=0.7)
    if published is not None or not ok.all():
        ax.legend(fontsize=7)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(x, list(labels), rotation=20, ha="right")
    ax.set_ylabel(f"{ylabel} ({unit})")
    _decorate(fig, ax, title, meta, caption)
    return fig


def plot_bars(labels: Sequence[str], values: Sequence[float | None],
              path: str | Path, **options: Any) -> Path:
    """Draw :func:`bars_figure` (same options) and write it to ``path`` (PNG)."""
    return _save(bars_figure(labels, values, **options), path)


# --------------------------------------------------------------------------- level diagrams


@dataclass
class LevelModel:
    """One model's orbitals for a level diagram.

    label: panel title ("pristine", "partially exchanged", …).
    energies: (nmo,) orbital energies, eV.  occupations: (nmo,) 0…2.
    fractions: {domain: (nmo,)} domain fractions of each MO (e.g. from
        :func:`hetflow.analysis.projections.domain_fractions`).
    converged: did the calculation behind it (and the relaxation of its geometry) converge?
        None = not known.
    """

    label: str
    energies: Sequence[float]
    occupations: Sequence[float]
    fractions: Mapping[str, Sequence[float]]
    converged: bool | None = None

    def homo_lumo(self, occ_threshold: float = 0.5) -> tuple[int, int | None]:
        """Indices of HOMO (highest MO with occupation > threshold) and LUMO (lowest above it)."""
        e = np.asarray(self.energies, float)
        occ = np.asarray(self.occupations, float) > occ_threshold
        if not occ.any():
            raise InputError(f"model {self.label!r}: no occupied orbital")
        h = int(np.flatnonzero(occ)[np.argmax(e[occ])])
        above = np.flatnonzero((e > e[h]) & ~occ)
        return h, (int(above[np.argmin(e[above])]) if len(above) else None)


def level_model(result: Any, label: str, converged: bool | None = None,
                overrides: Any = None) -> LevelModel:
    """A :class:`LevelModel` from a calculation result with MO data (a CalcResult or a
    stored result; domain fractions by :func:`~hetflow.analysis.projections.domain_fractions`).
    ``converged`` defaults to the result's own flag."""
    from hetflow.analysis.projections import domain_fractions

    mo = getattr(result, "mo", None)
    if mo is None:
        raise InputError(f"model {label!r}: the result has no MO data (compute it with want_mo=True)")
    fr = domain_fractions(mo, result.atoms, overrides)
    return LevelModel(label, np.asarray(mo.eigenvalues, float), np.asarray(mo.occupations, float),
                      {g: np.asarray(v, float) for g, v in fr.items()},
                      getattr(result, "converged", None) if converged is None else converged)


def _ordered_groups(names) -> list[str]:
    names = list(names)
    return [g for g in DOMAIN_ORDER if g in names] + [g for g in names if g not in DOMAIN_ORDER]


def level_diagram_figure(models: Sequence[LevelModel], *, level: str = "",
                         system: str = "", window: tuple[float, float] = (2.0, 2.0),
                         colours: Mapping[str, str] | None = None, meta: PlotMeta | None = None,
                         caption: str | None = None, title: str = "MO domain projections") -> Figure:
    """Figure-6-style level diagrams of ``models`` side by side (see the module docstring).

    window: (eV below the HOMO, eV above the LUMO) of each panel.  level / system: level of
    theory and system for the title (default: from ``meta``).  Each panel is titled with its
    model's label and, when known, whether its calculation converged.
    """
    if not models:
        raise InputError("nothing to plot: no models")
    below, above = (float(window[0]), float(window[1]))
    if below <= 0 or above <= 0:
        raise InputError(f"energy window must be positive eV below the HOMO and above the LUMO, got {window}")
    cols = dict(DOMAIN_COLOURS, **(colours or {}))
    groups = _ordered_groups(dict.fromkeys(g for m in models for g in m.fractions))
    extra = iter(f"C{k}" for k in range(4, 20))
    for g in groups:
        cols.setdefault(g, next(extra))
    level = level or (meta.level if meta else "")
    system = system or (meta.model if meta else "")
    edges = [m.homo_lumo() for m in models]
    lo = min(float(np.asarray(m.energies)[h]) - below for m, (h, _) in zip(models, edges))
    hi = max(float(np.asarray(m.energies)[lu if lu is not None else h]) + above for m, (h, lu) in zip(models, edges))
    fig = Figure(figsize=(2.3 * len(models) + 1.6, 5.2))
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    for ax, m, (h, lu) in zip(axes, models, edges):
        e = np.asarray(m.energies, float)
        for g in m.fractions:
            if len(m.fractions[g]) != len(e):
                raise InputError(f"model {m.label!r}: {len(m.fractions[g])} fractions for {len(e)} orbitals on {g!r}")
        e_h = e[h]
        e_l = e[lu] if lu is not None else None
        top = (e_l if e_l is not None else e_h) + above
        sel = np.flatnonzero((e >= e_h - below) & (e <= top))
        mgroups = [g for g in groups if g in m.fractions]
        for i in sel:
            f = np.clip([float(m.fractions[g][i]) for g in mgroups], 0, None)
            f = f / f.sum() if f.sum() > 0 else f
            edge = i in (h, lu)
            x0 = 0.0
            for g, w in zip(mgroups, f):
                if w > 0:
                    ax.plot([x0, x0 + w], [e[i], e[i]], "-", color=cols[g], lw=2.4 if edge else 1.1,
                            solid_capstyle="butt", gid=f"level:{i}:{g}")
                x0 += w
        # labels right of the levels, kept ≥ 4 % of the axis apart however small the gap
        sep = 0.04 * (hi - lo)
        if e_l is None:
            ax.text(1.02, e_h, f"HOMO {e_h:.2f} eV", fontsize=6.5, va="center", ha="left", gid="homo")
        else:
            mid = 0.5 * (e_h + e_l)
            y_h, y_l = min(e_h, mid - sep), max(e_l, mid + sep)
            ax.text(1.02, y_h, f"HOMO {e_h:.2f} eV", fontsize=6.5, va="center", ha="left", gid="homo")
            ax.text(1.02, y_l, f"LUMO {e_l:.2f} eV", fontsize=6.5, va="center", ha="left", gid="lumo")
            ax.text(1.02, mid, f"gap {e_l - e_h:.2f} eV", fontsize=6.5, va="center", ha="left",
                    fontweight="bold", gid="gap")
            ax.axhspan(e_h, e_l, color="0.90", zorder=0)
            if e_l - e_h > sep:
                ax.annotate("", xy=(0.5, e_l), xytext=(0.5, e_h), arrowprops=dict(arrowstyle="<->", lw=0.8))
        state = "" if m.converged is None else ("\nconverged" if m.converged else "\nNOT converged")
        ax.set_title(f"{m.label}{state}", fontsize=8, color="k" if m.converged is not False else UNCONVERGED_COLOUR)
        ax.set_xlim(-0.03, 1.65)
        ax.set_xticks([0, 1], ["0", "1"], fontsize=6)
        ax.set_xlabel("domain fraction", fontsize=7)
        ax.set_ylim(lo, hi)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0].set_ylabel("orbital energy (eV)")
    for g in groups:
        axes[-1].plot([], [], color=cols[g], lw=3, label=g)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    head = " — ".join(x for x in (title, level) if x)
    fig.suptitle(head + (f"\n{system}" if system else ""), fontsize=9)
    fig.tight_layout()
    text = caption if caption is not None else (meta.caption() if meta is not None else "")
    if text:
        import textwrap

        fig.text(0.01, 0.0, "\n".join(textwrap.wrap(text, 120)), fontsize=6.5, ha="left", va="top", gid="caption")
    return fig


def plot_level_diagram(models: Sequence[LevelModel], path: str | Path, **options: Any) -> Path:
    """Draw :func:`level_diagram_figure` (same options) and write it to ``path`` (PNG)."""
    return _save(level_diagram_figure(models, **options), path)


def plot_levels(energies: Sequence[float], fractions: Mapping[str, Sequence[float]], path: str | Path,
                indices: Sequence[int] | None = None, homo: int | None = None,
                colours: Mapping[str, str] | None = None, title: str = "MO domain projections",
                occupations: Sequence[float] | None = None, label: str = "", **kw: Any) -> Path:
    """One-model level diagram from arrays (kept for callers of the earlier API): ``homo``
    (an MO index) or ``occupations`` locate the band edges; ``indices`` is ignored in favour
    of the HOMO/LUMO window of :func:`plot_level_diagram` (``window=`` in ``kw``)."""
    e = np.asarray(energies, float)
    if occupations is None:
        if homo is None:
            raise InputError("plot_levels needs homo= (an MO index) or occupations=")
        occupations = np.where(e <= e[homo] + 1e-9, 2.0, 0.0)
    return plot_level_diagram([LevelModel(label, e, occupations, fractions)], path, colours=colours,
                              title=title, **kw)
