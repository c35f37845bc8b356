"""Geometry and pictures of CsPbI3 / ZIF-62 interface products (pure analysis, Å).

* :func:`interface_geometry` — the bond lengths EXAFS sees (Zn–N, Pb–I) and the interfacial
  bonds of the ligand exchange (Pb–N, Zn–I), from cut-offs: Pb–N < 2.9, Zn–N < 2.8,
  Zn–I < 3.2, Pb–I < 3.6 Å.
* :func:`render_product` — a PNG with three orthogonal views of a product (ASE's
  matplotlib renderer), atoms coloured by element, the ZIF part drawn smaller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from hetflow import atomic

__all__ = ["EXAFS", "CUTOFFS", "interface_geometry", "render_product"]

#: EXAFS bond lengths after 350 °C sintering (Li et al.; SCIENCE.md B), Å
EXAFS = {"Zn-N": 1.98, "Pb-I": 3.12}
#: bond cut-offs (Å)
CUTOFFS = {"Pb-N": 2.9, "Zn-N": 2.8, "Zn-I": 3.2, "Pb-I": 3.6}


def _pairs(atoms: Atoms, a: str, b: str, cutoff: float) -> list[float]:
    s = np.array(atoms.get_chemical_symbols())
    d = atoms.get_all_distances()
    ia, ib = np.flatnonzero(s == a), np.flatnonzero(s == b)
    sub = d[np.ix_(ia, ib)]
    return sorted(float(x) for x in sub[(sub < cutoff) & (sub > 0.1)])


def interface_geometry(atoms: Atoms) -> dict[str, Any]:
    """Per bond type ("Pb-N", "Zn-N", "Zn-I", "Pb-I"): count, mean, min, max (Å)."""
    out: dict[str, Any] = {}
    for key, cut in CUTOFFS.items():
        a, b = key.split("-")
        v = _pairs(atoms, a, b, cut)
        out[key] = {"n": len(v), "mean": float(np.mean(v)) if v else None,
                    "min": min(v) if v else None, "max": max(v) if v else None}
    return out


def geometry_rows(products: dict[str, Atoms]) -> list[dict[str, Any]]:
    """Report rows: one per bond type, one column per product, the EXAFS value beside."""
    geo = {k: interface_geometry(a) for k, a in products.items()}
    rows = []
    for key in CUTOFFS:
        row: dict[str, Any] = {"bond": key}
        for k, g in geo.items():
            x = g[key]
            row[f"{k}: mean (Å)"] = x["mean"]
            row[f"{k}: n, range"] = (f"{x['n']}, {x['min']:.2f}–{x['max']:.2f}" if x["n"] else "0")
        row["EXAFS (Å)"] = EXAFS.get(key)
        rows.append(row)
    return rows


_COLOURS = {"Cs": "#7b3fb5", "Pb": "#3b3b3b", "I": "#a8329b", "Zn": "#4aa3a0", "N": "#2f5fd0",
            "C": "#909090", "H": "#f2f2f2"}


def render_product(atoms: Atoms, path: str | Path, title: str = "") -> Path:
    """Three views (along z, x, y) of ``atoms`` in one PNG; returns the path."""
    from ase.visualize.plot import plot_atoms
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = atoms.copy()
    a.pbc = False
    a.set_cell(None)
    s = a.get_chemical_symbols()
    colours = [_COLOURS.get(x, "#ffcc00") for x in s]
    radii = [0.3 if x == "H" else 0.45 if x in ("C", "N") else 0.6 if x == "Zn" else 0.75 for x in s]
    fig = Figure(figsize=(12, 4.4))
    FigureCanvasAgg(fig)
    for k, (rot, lab) in enumerate((("0x,0y,0z", "view along z"), ("-90x,0y,0z", "view along y"),
                                   ("0x,90y,0z", "view along x"))):
        ax = fig.add_subplot(1, 3, k + 1)
        plot_atoms(a, ax, rotation=rot, radii=radii, colors=colours)
        ax.set_title(lab, fontsize=9)
        ax.set_axis_off()
    present = [e for e in _COLOURS if e in set(s)]
    fig.legend(handles=[Patch(facecolor=_COLOURS[e], edgecolor="k", label=e) for e in present],
               loc="lower center", ncol=len(present), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    atomic.save_figure(fig, path, dpi=110)
    return path
