"""Formal charges and charge balancing of finite ionic cuts.

Formal (oxidation-state) charges: Cs +1, Pb +2, Zn +2, halides −1, S/Se −2.  A finite cut of
an ionic crystal is generally not neutral; :func:`balance_charge` removes the least
coordinated surface ions — the ones a real nanocrystal would not hold — until the formal
charge equals the target.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from hetflow.errors import StructureError

FORMAL_CHARGES: dict[str, int] = {
    "Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1, "Ag": 1, "Cu": 1,
    "Mg": 2, "Ca": 2, "Sr": 2, "Ba": 2, "Pb": 2, "Sn": 2, "Ge": 2, "Zn": 2, "Cd": 2, "Mn": 2,
    "Bi": 3, "Sb": 3, "In": 3,
    "F": -1, "Cl": -1, "Br": -1, "I": -1,
    "O": -2, "S": -2, "Se": -2, "Te": -2,
}

HALIDES = ("F", "Cl", "Br", "I")

#: cation–anion contact cutoff used for coordination numbers (Å)
CONTACT_CUTOFF = 3.9


def formal_charges(atoms: Atoms) -> np.ndarray:
    """Per-atom formal charges (e); raises StructureError for elements without one."""
    out = np.zeros(len(atoms), dtype=int)
    for i, s in enumerate(atoms.get_chemical_symbols()):
        if s not in FORMAL_CHARGES:
            raise StructureError(f"no formal charge known for element {s} (atom {i})")
        out[i] = FORMAL_CHARGES[s]
    return out


def formal_charge(atoms: Atoms) -> int:
    """Sum of formal charges (e)."""
    return int(formal_charges(atoms).sum())


def counter_ion_coordination(atoms: Atoms, cutoff: float = CONTACT_CUTOFF) -> np.ndarray:
    """Number of oppositely charged neighbours of each atom within ``cutoff`` Å."""
    q = formal_charges(atoms)
    cn = np.zeros(len(atoms), dtype=int)
    if len(atoms) < 2:
        return cn
    i, j = neighbor_list("ij", atoms, cutoff)
    opposite = q[i] * q[j] < 0
    np.add.at(cn, i[opposite], 1)
    return cn


def balance_charge(
    atoms: Atoms,
    target: int = 0,
    protect: np.ndarray | None = None,
    cutoff: float = CONTACT_CUTOFF,
) -> tuple[Atoms, list[int]]:
    """Remove the least-coordinated ions until the formal charge equals ``target``.

    Parameters
    ----------
    atoms: finite ionic structure (labels in ``atoms.arrays`` are kept for survivors).
    target: desired total formal charge (e).
    protect: boolean mask of atoms that are removed only when nothing else can be.
    cutoff: cation–anion contact distance for coordination numbers (Å).

    Returns the balanced copy and the indices (in the input) of the removed atoms.
    Candidates are ranked by (protected, coordination, distance from the centroid — far
    first), and removals are spread out: among equal candidates the one farthest from the
    atoms already removed goes first, so vacancies do not cluster on one corner.
    """
    q = formal_charges(atoms)
    total = int(q.sum())
    if total == target:
        return atoms.copy(), []
    protect = np.zeros(len(atoms), bool) if protect is None else np.asarray(protect, bool)
    cn = counter_ion_coordination(atoms, cutoff)
    centroid = atoms.positions.mean(axis=0)
    rdist = np.linalg.norm(atoms.positions - centroid, axis=1)
    alive = np.ones(len(atoms), bool)
    removed: list[int] = []
    while total != target:
        excess = total - target
        want_sign = 1 if excess > 0 else -1
        cand = np.flatnonzero(alive & (np.sign(q) == want_sign))
        # prefer ions whose removal does not overshoot; fall back to any of the right sign
        exact = cand[np.abs(q[cand]) <= abs(excess)]
        if len(exact):
            cand = exact
        if len(cand) == 0:
            raise StructureError(
                f"cannot reach formal charge {target:+d}: no removable ion of charge sign {want_sign:+d}"
            )
        if removed:
            dmin = np.min(
                np.linalg.norm(atoms.positions[cand][:, None, :] - atoms.positions[removed][None, :, :], axis=2),
                axis=1,
            )
        else:
            dmin = np.zeros(len(cand))
        order = np.lexsort((-dmin.round(2), -rdist[cand].round(2), cn[cand], protect[cand]))
        pick = int(cand[order[0]])
        alive[pick] = False
        removed.append(pick)
        total -= int(q[pick])
    out = atoms[alive]
    return out, removed


def remove_isolated(atoms: Atoms, cutoff: float = CONTACT_CUTOFF, min_cn: int = 1) -> tuple[Atoms, list[int]]:
    """Drop ions with fewer than ``min_cn`` counter-ion neighbours (dangling after a cut)."""
    cn = counter_ion_coordination(atoms, cutoff)
    keep = cn >= min_cn
    return atoms[keep], [int(i) for i in np.flatnonzero(~keep)]
