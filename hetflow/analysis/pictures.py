"""Pictures of built models: side view and the view from the interface, coloured by element.

:func:`render_model` draws an :class:`ase.Atoms` model with ASE's matplotlib renderer
(``ase.visualize.plot.plot_atoms``, Jmol colours, covalent radii scaled down so the layers
stay visible) in two panels:

* **side**: looking along the perovskite's x axis, the stacking axis z upward — the layers,
  the terminal CsX monolayer on the chalcohalide's top Pb sheet, the chalcohalide blocks;
* **interface**: looking down −z onto the interface plane with the perovskite above the
  shared layer removed, so the chalcohalide's top Pb sheet and the terminal CsX layer show
  how the cation columns continue.

The title names the model (formula, atom count, size, registry).  Lengths in Å.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from hetflow import atomic

__all__ = ["render_model", "model_title"]

#: elements in the legend, in this order when present
_LEGEND = ("Cs", "Pb", "Cl", "Br", "I", "S", "Zn", "N", "C", "H")


def model_title(atoms: Atoms) -> str:
    """One line naming a model: kind, phases, size, atom count, formula."""
    info = atoms.info
    kind = info.get("kind", "model")
    bits = [kind.replace("_", " ")]
    if "perovskite_phase" in info:
        bits.append(f"{info['perovskite_phase']}/{info.get('partner_phase', '')}")
    if "size" in info:
        bits.append("size " + "×".join(str(v) for v in info["size"]))
    if "partner_cells" in info:
        bits.append(f"{info['partner_cells']} b/2 blocks")
    bits.append(f"{len(atoms)} atoms ({atoms.get_chemical_formula(mode='hill')})")
    return ", ".join(bits)


def _panel(ax, atoms: Atoms, rotation: str, title: str, radius_scale: float) -> None:
    from ase.data import covalent_radii
    from ase.visualize.plot import plot_atoms

    radii = covalent_radii[atoms.numbers] * radius_scale
    a = atoms.copy()
    a.set_cell(np.zeros((3, 3)))
    a.pbc = False
    plot_atoms(a, ax, rotation=rotation, radii=radii, show_unit_cell=0)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def render_model(atoms: Atoms, path: str | Path, radius_scale: float = 0.55, dpi: int = 130) -> Path:
    """Write a two-panel PNG (side view, view from the interface) of ``atoms``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from ase.data import atomic_numbers
    from ase.data.colors import jmol_colors

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4), gridspec_kw={"width_ratios": [1.1, 1]})
    _panel(axes[0], atoms, "-90x", "side view (stacking axis up)", radius_scale)
    top = atoms
    if "layer" in atoms.arrays and "domain" in atoms.arrays:
        lay, dom = atoms.arrays["layer"], atoms.arrays["domain"]
        ch = dom != "perovskite"
        z = atoms.positions[:, 2]
        ztop = z[ch & (np.array(atoms.get_chemical_symbols()) == "Pb")].max() if ch.any() else z.min()
        # the terminal CsX layer and the chalcohalide's top sheet (its Pb and their anions below)
        keep = ((dom == "perovskite") & (lay == 0)) | (ch & (z > ztop - 1.3))
        top = atoms[keep]
        title = "from the interface: terminal CsX layer on the top chalcohalide sheet"
    else:
        title = "top view"
    _panel(axes[1], top, "0x", title, 0.8 * radius_scale)
    present = [s for s in _LEGEND if s in set(atoms.get_chemical_symbols())]
    handles = [Line2D([0], [0], marker="o", ls="", mfc=jmol_colors[atomic_numbers[s]], mec="k", ms=8, label=s)
               for s in present]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    reg = atoms.info.get("registry")
    sub = ""
    if isinstance(reg, dict) and "gap" in reg:
        sub = (f"\nregistry: shift {np.round(reg.get('shift_frac', []), 3).tolist()} of the a×c cell, "
               f"gap {reg['gap']:.2f} Å, chosen by {reg.get('scorer', '?')}")
        rel = reg.get("relaxation")
        faces = atoms.info.get("partner_faces")
        if isinstance(rel, dict):
            sub += (f"; junction relaxed at {rel.get('method', '?')}"
                    + (", chalcohalide faces too" if isinstance(faces, dict) else ""))
        else:
            sub += "; rigid junction"
    fig.suptitle(model_title(atoms) + sub, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.93))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.save_figure(fig, path, dpi=dpi)
    plt.close(fig)
    return path
