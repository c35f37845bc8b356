"""Per-atom label helpers: atomic planes along an axis, label checks.

Labels travel as ``atoms.arrays`` and survive extxyz round trips.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from hetflow.errors import StructureError

REQUIRED_LABELS = ("domain", "layer", "role")


def plane_index(coords: np.ndarray, tol: float = 0.5) -> np.ndarray:
    """Group 1-D coordinates into planes: sorted, a new plane starts where the gap to the
    previous coordinate exceeds ``tol`` (Å).  Returns plane indices 0, 1, … from low to high."""
    coords = np.asarray(coords, float)
    order = np.argsort(coords)
    idx = np.empty(len(coords), dtype=int)
    k = 0
    for n, i in enumerate(order):
        if n and coords[i] - coords[order[n - 1]] > tol:
            k += 1
        idx[i] = k
    return idx


def assign_planes(atoms: Atoms, axis: int = 2, tol: float = 0.5, name: str = "layer") -> None:
    """Set ``atoms.arrays[name]`` to the atomic-plane index along ``axis`` (0 = lowest)."""
    atoms.set_array(name, plane_index(atoms.positions[:, axis], tol).astype(int))


def require_labels(atoms: Atoms, names: tuple[str, ...] = REQUIRED_LABELS) -> None:
    """Raise StructureError naming the missing per-atom arrays."""
    missing = [n for n in names if n not in atoms.arrays]
    if missing:
        raise StructureError(
            f"structure has no per-atom label(s) {', '.join(missing)}: build it with hetflow "
            "(hetflow build heterostructure) or label it first"
        )
