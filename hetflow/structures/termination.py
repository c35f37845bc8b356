"""Charge balance of CsX-terminated perovskite nanocrystals by surface Cs vacancies.

A cut of n1 × n2 × n3 PbX6 octahedra with CsX {100} faces carries +(n1 + n2 + n3 + 1) formal
charge.  Real CsPbX3 nanocrystals compensate it with A-site vacancies at the least coordinated
surface sites; the rule here (one rule for every perovskite NC hetflow builds, the perovskite
domain of a heterostructure and its standalone reference NC alike, so both share their surface
pattern face by face):

* only corner and edge Cs (sites on ≥ 2 faces) are removed;
* no face loses more than ``max_face_fraction`` (default ¼) of its Cs sites;
* the pattern is as symmetric as the count allows (mirror images through the NC centre along
  z, then x, y, kept together);
* among the vacancy sets that obey this, the one with the lowest total Cs–X coordination of the
  removed Cs (least coordinated first) is taken, then the most even spread over the faces, then
  the fewest vacancies on neighbouring sites.

The choice is an exact small integer programme (scipy's HiGHS ``milp``), so it is deterministic;
:class:`~hetflow.errors.StructureError` names the problem when no set obeys the face limit (a
1 × 1 × n column, a 2 × 2 × 2 cube: their few Cs sites are too many to spare).

Lengths in Å; charges in e.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from hetflow.errors import StructureError
from hetflow.structures.charge import formal_charge

__all__ = ["cs_faces", "surface_vacancies", "face_vacancy_counts", "MAX_FACE_FRACTION"]

#: largest fraction of a face's Cs sites that charge balance may remove
MAX_FACE_FRACTION = 0.25

FACE_NAMES = ("x-", "x+", "y-", "y+", "z-", "z+")


def cs_faces(atoms: Atoms, a_symbol: str = "Cs", tol: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the A-site cations and a boolean (n_A, 6) matrix of the faces each lies on
    (x−, x+, y−, y+, z−, z+: the outermost A planes along each Cartesian axis, within ``tol`` Å).

    The NC must have its pseudo-cubic axes along x, y, z (as cut by
    :func:`hetflow.structures.nanocrystal.cut_nanocrystal`)."""
    syms = np.array(atoms.get_chemical_symbols())
    idx = np.flatnonzero(syms == a_symbol)
    if len(idx) == 0:
        raise StructureError(f"no {a_symbol} in the structure")
    p = atoms.positions[idx]
    faces = np.zeros((len(idx), 6), bool)
    for ax in range(3):
        lo, hi = p[:, ax].min(), p[:, ax].max()
        faces[:, 2 * ax] = p[:, ax] < lo + tol
        faces[:, 2 * ax + 1] = p[:, ax] > hi - tol
    return idx, faces


def face_vacancy_counts(faces: np.ndarray, removed: np.ndarray) -> dict[str, tuple[int, int]]:
    """{face: (Cs removed, Cs sites)} for a boolean face matrix and a removed mask."""
    return {FACE_NAMES[f]: (int(faces[removed, f].sum()), int(faces[:, f].sum())) for f in range(6)}


def _solve(cand: np.ndarray, cn: np.ndarray, faces: np.ndarray, budget: np.ndarray, k: int,
           p: np.ndarray, mirrors: list[np.ndarray]) -> np.ndarray | None:
    """Exact vacancy choice as a small integer programme (scipy ``milp``, HiGHS).

    Binary x over the corner/edge candidates, Σx = k, per-face Σx ≤ budget, x_i = x_mirror(i) for
    each mirror given (None when a candidate has no mirror image among the candidates).
    Objective, in order of weight: total coordination of the removed sites (least coordinated
    first), the largest per-face vacancy fraction (spread over the faces), the number of
    vacancy pairs closer than 1.05 × the smallest site spacing (spread within a face)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(cand)
    pos = {int(c): i for i, c in enumerate(cand)}
    dd = np.linalg.norm(p[cand][:, None] - p[cand][None], axis=2)
    near = dd[np.triu_indices(n, 1)].min() * 1.05
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if dd[i, j] <= near]
    m = len(pairs)
    nv = n + m + 1  # x, y (close pairs), t (max face fraction)
    sites = np.maximum(faces.sum(axis=0), 1)
    c = np.zeros(nv)
    c[:n] = 1000.0 * cn[cand]
    c[n:n + m] = 1.0
    c[-1] = 100.0
    rows, lo, hi = [], [], []

    def row() -> np.ndarray:
        return np.zeros(nv)

    r = row(); r[:n] = 1; rows.append(r); lo.append(k); hi.append(k)
    for f in range(6):
        r = row(); r[:n] = faces[cand, f]; rows.append(r); lo.append(-np.inf); hi.append(budget[f])
        r = row(); r[:n] = faces[cand, f] / sites[f]; r[-1] = -1; rows.append(r); lo.append(-np.inf); hi.append(0)
    for q, (i, j) in enumerate(pairs):  # y_ij ≥ x_i + x_j − 1
        r = row(); r[i] = 1; r[j] = 1; r[n + q] = -1; rows.append(r); lo.append(-np.inf); hi.append(1)
    for mir in mirrors:
        for i, ci in enumerate(cand):
            j = pos.get(int(mir[ci]), -1) if mir[ci] >= 0 else -1
            if j < 0:  # no mirror image: this site cannot be used in a symmetric pattern
                r = row(); r[i] = 1; rows.append(r); lo.append(0); hi.append(0)
            elif j > i:
                r = row(); r[i] = 1; r[j] = -1; rows.append(r); lo.append(0); hi.append(0)
    integrality = np.r_[np.ones(n + m), 0]
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=integrality,
               bounds=Bounds(np.zeros(nv), np.r_[np.ones(n + m), 1.0]), options={"time_limit": 20})
    if res.x is None or res.status not in (0, 1):
        return None
    x = np.round(res.x[:n]).astype(bool)
    if x.sum() != k:
        return None
    return cand[x]


def _a_site_coordination(atoms: Atoms, idx: np.ndarray, factor: float = 1.15) -> np.ndarray:
    """Anion neighbours of each A-site cation within ``factor`` × the shortest A–anion distance."""
    from ase.neighborlist import neighbor_list

    from hetflow.structures.charge import formal_charges

    q = formal_charges(atoms)
    an = np.flatnonzero(q < 0)
    d0 = np.min(np.linalg.norm(atoms.positions[idx][:, None] - atoms.positions[an][None], axis=2))
    i, j = neighbor_list("ij", atoms, factor * d0)
    cn = np.zeros(len(atoms), int)
    np.add.at(cn, i[q[j] < 0], 1)
    return cn[idx]


def _mirror_partners(p: np.ndarray, centre: np.ndarray, tol: float = 0.3) -> list[np.ndarray]:
    """For each axis, the index of each site's mirror image through the centre plane (−1 if none)."""
    out = []
    for ax in range(3):
        q = p.copy()
        q[:, ax] = 2 * centre[ax] - q[:, ax]
        d = np.linalg.norm(q[:, None, :] - p[None, :, :], axis=2)
        j = np.argmin(d, axis=1)
        out.append(np.where(d[np.arange(len(p)), j] < tol, j, -1))
    return out


def surface_vacancies(atoms: Atoms, charge: int = 0, a_symbol: str = "Cs",
                      max_face_fraction: float = MAX_FACE_FRACTION) -> tuple[np.ndarray, dict]:
    """Indices (into ``atoms``) of the A-site cations to remove so that the formal charge becomes
    ``charge``, chosen by the module's rule, and a report (per-face counts, criteria values)."""
    excess = formal_charge(atoms) - int(charge)
    if excess < 0:
        raise StructureError(
            f"the cut carries {formal_charge(atoms):+d} e; charge {charge:+d} would need added cations")
    idx, faces = cs_faces(atoms, a_symbol)
    sites = faces.sum(axis=0)
    budget = np.floor(sites * max_face_fraction + 1e-9).astype(int)
    if excess == 0:
        return np.array([], int), {"faces": face_vacancy_counts(faces, np.zeros(len(idx), bool)),
                                    "budget": dict(zip(FACE_NAMES, budget.tolist()))}
    cand = np.flatnonzero(faces.sum(axis=1) >= 2)
    cn = _a_site_coordination(atoms, idx)
    p = atoms.positions[idx]
    centre = 0.5 * (p.min(axis=0) + p.max(axis=0))
    partners = _mirror_partners(p, centre)
    chosen = None
    # the most symmetric feasible pattern: mirror planes through the centre along z, x, y
    for axes in ((2, 0, 1), (2, 0), (2, 1), (0, 1), (2,), (0,), (1,), ()):
        chosen = _solve(cand, cn, faces, budget, excess, p, [partners[a] for a in axes])
        if chosen is not None:
            break
    if chosen is None:
        raise StructureError(
            f"cannot remove {excess} corner/edge {a_symbol} without a face losing more than "
            f"{max_face_fraction:.0%} of its {a_symbol} sites (face sites {dict(zip(FACE_NAMES, sites.tolist()))}); "
            "make the nanocrystal wider")
    rem = np.zeros(len(idx), bool)
    rem[chosen] = True
    d = np.linalg.norm(p[rem][:, None] - p[rem][None], axis=2)
    sym = [FACE_NAMES[2 * ax][0] for ax in range(3)
           if np.all(partners[ax][rem] >= 0) and np.all(rem[partners[ax][rem]])]
    report = {
        "faces": face_vacancy_counts(faces, rem),
        "budget": dict(zip(FACE_NAMES, budget.tolist())),
        "removed_coordination": int(cn[rem].sum()),
        "mirror_symmetric_axes": sym,
        "min_vacancy_distance": float(d[np.triu_indices(len(d), 1)].min()) if len(d) > 1 else None,
        "rule": f"corner/edge {a_symbol}, ≤ {max_face_fraction:.0%} per face, least coordinated, even, symmetric",
    }
    return idx[rem], report
