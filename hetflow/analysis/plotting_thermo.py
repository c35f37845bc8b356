"""Plots of the configurational thermodynamics (PNG, matplotlib Agg): the free energy of partial
exchange against composition, and the ordered S3 patterns against the distribution of random alloys.

Same conventions as :mod:`hetflow.analysis.plotting` (its :class:`~hetflow.analysis.plotting.PlotMeta`
caption, Agg canvas, ``*_figure`` / ``plot_*`` pairs); energies in the unit the caller passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from hetflow.analysis.plotting import PlotMeta, _decorate, _save, _values

__all__ = ["free_energy_figure", "plot_free_energy", "distribution_figure", "plot_distribution"]


def free_energy_figure(x: Sequence[float], per_halide: Mapping[str, Sequence[float | None]],
                       totals: Mapping[str, Sequence[float | None]], errors: Sequence[float | None] | None = None,
                       unit: str = "kcal/mol", title: str = "Partial exchange: configurational free energy",
                       meta: PlotMeta | None = None, caption: str | None = None) -> Figure:
    """Left: ΔE_min, ⟨ΔE⟩, ΔF per exchanged halide vs x (%), ΔF with ``errors``; right: the totals
    against model (d) at x = 0 with the straight line between the end members (dashed): a point
    below it is stabilised against separating into the two."""
    fig = Figure(figsize=(8.6, 3.8))
    ax, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    xs = np.asarray(list(x), float)
    for k, (name, vals) in enumerate(per_halide.items()):
        y = _values(vals)
        if name.startswith("ΔF") and errors is not None:
            ax.errorbar(xs, y, yerr=np.nan_to_num(_values(errors)), fmt="o-", color=f"C{k}", capsize=3,
                        label=name, gid=f"series:{name}")
        else:
            ax.plot(xs, y, "o-", color=f"C{k}", label=name, gid=f"series:{name}")
    ax.set_xlabel("I in the interfacial chalcohalide layers (%)")
    ax.set_ylabel(f"per exchanged halide ({unit})")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=7)
    for k, (name, vals) in enumerate(totals.items()):
        y = _values(vals)
        xt = np.asarray([0.0, *xs]) if len(y) == len(xs) + 1 else xs
        ax2.plot(xt, y, "o-", color=f"C{k + 3}", label=name, gid=f"total:{name}")
        if np.isfinite(y[[0, -1]]).all():
            ax2.plot(xt[[0, -1]], y[[0, -1]], "--", color=f"C{k + 3}", alpha=0.6, lw=1)
    ax2.set_xlabel("I in the interfacial chalcohalide layers (%)")
    ax2.set_ylabel(f"total against model (d) ({unit})")
    ax2.legend(fontsize=7)
    _decorate(fig, ax, title, meta, caption)
    return fig


def plot_free_energy(x: Sequence[float], per_halide: Mapping[str, Sequence[float | None]],
                     totals: Mapping[str, Sequence[float | None]], path: str | Path, **options: Any) -> Path:
    """Draw :func:`free_energy_figure` (same options) and write it to ``path`` (PNG)."""
    return _save(free_energy_figure(x, per_halide, totals, **options), path)


def distribution_figure(random: Sequence[float], ordered: Mapping[str, float | None],
                        lines: Mapping[str, float | None] | None = None, unit: str = "kcal/mol",
                        title: str = "Ordered patterns against the random alloys",
                        meta: PlotMeta | None = None, caption: str | None = None) -> Figure:
    """Histogram of the random configurations' energies with each ordered pattern as a solid vertical
    line and ``lines`` (e.g. the ensemble mean and its free energy) dashed.  A pattern with value
    None (withheld by the convergence gate) is listed in the legend as not converged."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    r = _values(random)
    r = r[np.isfinite(r)]
    if len(r):
        ax.hist(r, bins=max(5, min(30, len(r) // 2)), color="0.7", edgecolor="0.3",
                label=f"random alloys ({len(r)})", gid="hist:random")
    for k, (name, v) in enumerate(ordered.items()):
        if v is None:
            ax.plot([], [], "x", color="crimson", label=f"{name}: not converged")
            continue
        ax.axvline(v, color=f"C{k}", lw=2, label=name, gid=f"ordered:{name}")
    for k, (name, v) in enumerate((lines or {}).items()):
        if v is not None:
            ax.axvline(v, color=f"C{k + 5}", lw=1.2, ls="--", label=name, gid=f"line:{name}")
    ax.set_xlabel(f"ΔE total against model (d) ({unit})")
    ax.set_ylabel("configurations")
    ax.legend(fontsize=7)
    _decorate(fig, ax, title, meta, caption)
    return fig


def plot_distribution(random: Sequence[float], ordered: Mapping[str, float | None], path: str | Path,
                      **options: Any) -> Path:
    """Draw :func:`distribution_figure` (same options) and write it to ``path`` (PNG)."""
    return _save(distribution_figure(random, ordered, **options), path)
