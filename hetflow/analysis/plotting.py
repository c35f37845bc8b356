"""Plots of exchange energies, strain and MO domain projections (PNG, matplotlib Agg).

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas directly, so no
GUI backend and no global pyplot state is touched.  Every function writes ``path`` and
returns it as a :class:`pathlib.Path`.  Energies are plotted in the unit the caller passes
(convert with :mod:`hetflow.analysis.units` first — kcal/mol in the published tables).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hetflow.errors import InputError

__all__ = ["DOMAIN_COLOURS", "plot_layer_energies", "plot_s2", "plot_bars", "plot_levels"]

#: Figure-6 colours: chalcohalide grey, CsPbCl3 blue, CsPbI3 red (others: matplotlib cycle)
DOMAIN_COLOURS: dict[str, str] = {
    "chalcohalide": "0.55",
    "CsPbCl3": "tab:blue",
    "CsPbBr3": "tab:green",
    "CsPbI3": "tab:red",
}


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return path


def plot_layer_energies(layers: Sequence[int], series: Mapping[str, Sequence[float]], path: str | Path,
                        unit: str = "kcal/mol", published: Mapping[str, Sequence[float]] | None = None,
                        title: str = "Cl→I exchange energy per layer") -> Path:
    """ΔE per exchanged halide vs number of exchanged layers, one line per direction
    (e.g. ``{"from interface": [...], "from bottom": [...]}``); ``published`` drawn dashed."""
    if not series:
        raise InputError("nothing to plot: no energy series")
    fig = Figure(figsize=(5, 3.6))
    ax = fig.add_subplot()
    for k, (name, vals) in enumerate(series.items()):
        if len(vals) != len(layers):
            raise InputError(f"series {name!r} has {len(vals)} values for {len(layers)} layers")
        ax.plot(layers, vals, "o-", color=f"C{k}", label=f"{name} (hetflow)")
        if published and name in published:
            ax.plot(layers[: len(published[name])], published[name], "s--", color=f"C{k}", alpha=0.6,
                    label=f"{name} (published)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("exchanged perovskite layers N")
    ax.set_ylabel(f"ΔE per exchanged halide ({unit})")
    ax.set_xticks(list(layers))
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_s2(steps: Sequence[str], energies: Sequence[float], strain: Sequence[float], path: str | Path,
            unit: str = "kcal/mol", strain_steps: Sequence[str] | None = None,
            title: str = "I/Cl in the interfacial chalcohalide layers") -> Path:
    """ΔE per step (bars, left axis) and interfacial strain (line, right axis, %) vs I/Cl.

    ``strain`` may have one value per step or one more (the strain before the first step);
    ``strain_steps`` names its x positions (default: the step labels, or "start" + steps)."""
    if len(energies) != len(steps):
        raise InputError(f"{len(energies)} energies for {len(steps)} steps")
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(steps))
    ax.bar(x, energies, color="C0", alpha=0.7, label="ΔE")
    ax.set_xticks(x, list(steps), rotation=20)
    ax.set_ylabel(f"ΔE per exchanged halide ({unit})", color="C0")
    ax.set_xlabel("I/Cl step")
    ax2 = ax.twinx()
    if len(strain) == len(steps) + 1:
        xs = np.arange(-1, len(steps))
    elif len(strain) == len(steps):
        xs = x
    else:
        raise InputError(f"{len(strain)} strain values for {len(steps)} steps")
    ax2.plot(xs, strain, "o-", color="C3", label="interfacial strain")
    ax2.set_ylabel("interfacial strain (%)", color="C3")
    ax.set_title(title)
    return _save(fig, path)


def plot_bars(labels: Sequence[str], values: Sequence[float], path: str | Path, unit: str = "kcal/mol",
              published: Sequence[float] | None = None, ylabel: str = "ΔE",
              title: str = "≈20 % Cl→I: iodide distributions") -> Path:
    """Grouped bars (Table S3 style): hetflow values beside the published ones."""
    if len(values) != len(labels):
        raise InputError(f"{len(values)} values for {len(labels)} labels")
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    w = 0.38 if published is not None else 0.6
    ax.bar(x - (w / 2 if published is not None else 0), values, w, label="hetflow", color="C0")
    if published is not None:
        ax.bar(x + w / 2, published, w, label="published", color="C1", alpha=0.7)
        ax.legend(fontsize=7)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(x, list(labels), rotation=20, ha="right")
    ax.set_ylabel(f"{ylabel} ({unit})")
    ax.set_title(title)
    return _save(fig, path)


def plot_levels(energies: Sequence[float], fractions: Mapping[str, Sequence[float]], path: str | Path,
                indices: Sequence[int] | None = None, homo: int | None = None,
                colours: Mapping[str, str] | None = None, title: str = "MO domain projections") -> Path:
    """Figure-6-style level diagram: each MO a horizontal line at its energy (eV), split left
    to right into coloured segments whose lengths are its domain fractions (negative Mulliken
    fractions drawn as 0, the rest renormalised).  ``indices`` selects MOs (default all);
    ``homo`` (an MO index) draws occupied levels solid and empty ones dashed."""
    e = np.asarray(energies, float)
    idx = np.arange(len(e)) if indices is None else np.asarray(indices, int)
    cols = dict(DOMAIN_COLOURS, **(colours or {}))
    groups = list(fractions)
    extra = iter(f"C{k}" for k in range(4, 20))
    for g in groups:
        cols.setdefault(g, next(extra))
    fig = Figure(figsize=(3.6, 5))
    ax = fig.add_subplot()
    e_homo = e[homo] if homo is not None else None
    for i in idx:
        f = np.clip([float(fractions[g][i]) for g in groups], 0, None)
        f = f / f.sum() if f.sum() > 0 else f
        x0 = 0.0
        style = "-" if e_homo is None or e[i] <= e_homo + 1e-9 else "--"
        for g, w in zip(groups, f):
            if w > 0:
                ax.plot([x0, x0 + w], [e[i], e[i]], style, color=cols[g], lw=2.5, solid_capstyle="butt")
            x0 += w
    for g in groups:
        ax.plot([], [], color=cols[g], lw=3, label=g)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xticks([])
    ax.set_ylabel("orbital energy (eV)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)
