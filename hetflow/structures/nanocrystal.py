"""Charge-neutral, CsX-terminated nanocrystals cut from a registered perovskite.

A nanocrystal of ``n1 × n2 × n3`` PbX6 octahedra keeps

* the ``n1·n2·n3`` B-site (Pb) cations of a block of the pseudo-cubic Pb lattice,
* every halide bonded to them (3·n1·n2·n3 + n1·n2 + n2·n3 + n1·n3 of them), and
* the A-site (Cs) cations of the surrounding cube, (n1+1)(n2+1)(n3+1) of them,

so each {100} face is a CsX plane, as in real CsPbX3 NCs.  That cut carries a formal charge of
+(n1 + n2 + n3 + 1); corner and edge Cs are removed until the charge is the one asked for
(default 0) by the rule of :mod:`hetflow.structures.termination` (least coordinated first, no
face losing more than a quarter of its Cs, spread evenly and symmetrically over the faces).
Example: 3 × 3 × 3 → Cs54Pb27Cl108, 189 atoms.

Tilted perovskites (γ-CsPbI3) are cut in their pseudo-cubic frame (the three shortest,
mutually near-orthogonal Pb–Pb vectors).

Per-atom arrays on the result: ``domain`` = "perovskite", ``role`` (A/B/X) and ``layer``
(atomic plane index along z counted from the bottom CsX face, 0 … 2·n3).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from hetflow import validate
from hetflow.errors import InputError, StructureError
from hetflow.structures.charge import HALIDES, formal_charge
from hetflow.structures.labels import assign_planes
from hetflow.structures.phases import get_entry
from hetflow.structures.termination import surface_vacancies

__all__ = ["cut_nanocrystal", "pseudocubic_frame", "perovskite_species"]


def perovskite_species(atoms: Atoms) -> tuple[str, str, str]:
    """(A, B, X) element symbols of an ABX3 perovskite cell."""
    syms = set(atoms.get_chemical_symbols())
    x = [s for s in syms if s in HALIDES]
    b = [s for s in syms if s in ("Pb", "Sn", "Ge")]
    a = [s for s in syms if s in ("Cs", "Rb", "K", "Na", "Li")]
    if len(x) != 1 or len(b) != 1 or len(a) != 1:
        raise InputError(f"not a single-halide ABX3 perovskite: elements {sorted(syms)}")
    return a[0], b[0], x[0]


def pseudocubic_frame(bulk: Atoms, b_symbol: str = "Pb") -> np.ndarray:
    """3×3 matrix whose rows are the pseudo-cubic Pb–Pb vectors (Å), right-handed, ordered
    so that row k is the one closest to Cartesian axis k."""
    sc = bulk.repeat((3, 3, 3))
    pb = sc.positions[np.array(sc.get_chemical_symbols()) == b_symbol]
    c = pb.mean(axis=0)
    origin = pb[np.argmin(np.linalg.norm(pb - c, axis=1))]
    vec = pb - origin
    d = np.linalg.norm(vec, axis=1)
    order = np.argsort(d)[1:]
    dmin = d[order[0]]
    near = vec[order][d[order] < dmin * 1.15]
    # pick one vector per Cartesian axis (largest |component| along it, positive direction)
    rows = []
    for k in range(3):
        cand = near[np.argmax(near[:, k] / np.linalg.norm(near, axis=1))]
        rows.append(cand)
    frame = np.array(rows)
    if abs(np.linalg.det(frame)) < 1e-3 * dmin**3:
        raise StructureError("could not find three independent Pb–Pb vectors in the perovskite")
    return frame


def cut_nanocrystal(
    phase: str | Atoms,
    size: tuple[int, int, int] = (3, 3, 3),
    charge: int = 0,
    vacuum: float | None = None,
    max_face_fraction: float | None = None,
) -> Atoms:
    """Cut a CsX-terminated nanocrystal of ``size`` = (n1, n2, n3) octahedra.

    Parameters
    ----------
    phase: registered phase name (e.g. "CsPbCl3", "CsPbI3-gamma") or a perovskite Atoms cell.
    size: number of PbX6 octahedra along the pseudo-cubic axes; each ≥ 1.
    charge: wanted total formal charge (e); surface Cs are removed to reach it.
    vacuum: if given, put the NC in a box with this much vacuum (Å) on each side
        (pbc stays False); otherwise no cell.
    max_face_fraction: largest share of a face's Cs sites the charge balance may remove.
        ``None`` (default): ¼ where the size allows it (every NC of 2 × 2 × 3 and up), else the
        smallest of ⅓, ½, 1 that works (tiny test clusters such as 2 × 2 × 1); the value used
        is in ``info["termination"]["max_face_fraction"]``.  A number is a hard limit.

    Returns a finite :class:`ase.Atoms` with arrays ``domain``, ``role``, ``layer`` and info
    ``kind="nanocrystal"``, ``phase``, ``size``, ``charge``, ``removed_surface_ions``.
    """
    size = _check_size(size)
    name = phase if isinstance(phase, str) else phase.info.get("phase", "custom")
    bulk = get_entry(phase).atoms() if isinstance(phase, str) else phase.copy()
    a_sym, b_sym, x_sym = perovskite_species(bulk)
    frame = pseudocubic_frame(bulk, b_sym)
    n = np.array(size)
    reps = np.ceil((n.max() + 3) * np.linalg.norm(frame, axis=1).max() / bulk.cell.lengths()).astype(int) + 1
    sc = bulk.repeat(tuple(int(r) for r in reps))
    syms = np.array(sc.get_chemical_symbols())
    pb_all = sc.positions[syms == b_sym]
    # origin: the Pb closest to the supercell centre, then shift the block to centre it
    centre = sc.cell.sum(axis=0) / 2
    origin = pb_all[np.argmin(np.linalg.norm(pb_all - centre, axis=1))]
    origin = origin - frame.T @ ((n - 1) // 2)
    frac = np.linalg.solve(frame.T, (sc.positions - origin).T).T  # pseudo-cubic coordinates

    is_b = syms == b_sym
    is_a = syms == a_sym
    is_x = syms == x_sym
    idx_b = np.round(frac).astype(int)
    keep_b = is_b & np.all((idx_b >= 0) & (idx_b < n), axis=1) & np.all(np.abs(frac - idx_b) < 0.3, axis=1)
    # halides bonded to a kept Pb: pseudo-cubic coordinates with one half-integer component
    keep_x = np.zeros(len(sc), bool)
    pbk = sc.positions[keep_b]
    dpbx = _shortest(sc, b_sym, x_sym)
    for i in np.flatnonzero(is_x):
        if np.min(np.linalg.norm(pbk - sc.positions[i], axis=1)) < 1.3 * dpbx:
            keep_x[i] = True
    keep_a = is_a & np.all((frac > -1.0) & (frac < n), axis=1)
    keep = keep_b | keep_x | keep_a
    nc = sc[keep]
    nc.set_cell(None if vacuum is None else np.zeros((3, 3)))
    nc.pbc = False
    roles = np.where(np.array(nc.get_chemical_symbols()) == b_sym, "B",
                     np.where(np.array(nc.get_chemical_symbols()) == a_sym, "A", "X"))
    nc.set_array("role", roles.astype("<U2"))
    nc.set_array("domain", np.full(len(nc), "perovskite", dtype="<U16"))
    expected = (int(np.prod(n)), int(np.prod(n + 1)), int(3 * np.prod(n) + n[0] * n[1] + n[1] * n[2] + n[0] * n[2]))
    got = (int((roles == "B").sum()), int((roles == "A").sum()), int((roles == "X").sum()))
    if got != expected:
        raise StructureError(f"nanocrystal cut gave B/A/X = {got}, expected {expected} (phase {name})")
    q0 = formal_charge(nc)
    # rotate so that the pseudo-cubic axes become the Cartesian axes (polar part of the frame)
    unit = frame / np.linalg.norm(frame, axis=1)[:, None]
    u, _, vt = np.linalg.svd(unit)
    q = u @ vt  # nearest orthogonal matrix; its rows are the rotated axes
    nc.positions = nc.positions @ q.T
    nc.positions -= nc.positions.min(axis=0)
    removed, term = _terminate(nc, charge, a_sym, max_face_fraction)
    keep = np.ones(len(nc), bool)
    keep[removed] = False
    nc = nc[keep]
    assign_planes(nc, axis=2, tol=0.6)
    if vacuum is not None:
        nc.center(vacuum=vacuum)
    nc.info.update(
        kind="nanocrystal", phase=name, size=list(map(int, n)), charge=int(charge),
        removed_surface_ions=len(removed), charge_before_balancing=int(q0), stacking_axis=2,
        termination=term,
    )
    return nc


def _terminate(nc: Atoms, charge: int, a_sym: str, max_face_fraction: float | None) -> tuple[np.ndarray, dict]:
    """Surface Cs vacancies by the rule of :mod:`hetflow.structures.termination`."""
    from hetflow.structures.termination import MAX_FACE_FRACTION

    if max_face_fraction is not None:
        limits = [float(max_face_fraction)]
        if not 0 < limits[0] <= 1:
            raise InputError(f"max_face_fraction must be in (0, 1], got {max_face_fraction}")
    else:
        limits = [MAX_FACE_FRACTION, 1 / 3, 0.5, 1.0]
    for k, lim in enumerate(limits):
        try:
            removed, rep = surface_vacancies(nc, charge, a_sym, max_face_fraction=lim)
        except StructureError:
            if k == len(limits) - 1:
                raise
            continue
        rep["max_face_fraction"] = lim
        return removed, rep
    raise AssertionError("unreachable")


def _check_size(size) -> tuple[int, int, int]:
    """The size rule of the validation layer (:func:`hetflow.validate.size3`): three
    positive integers, bounded in total, whatever type they came as."""
    return validate.size3(size, "size")


def _shortest(atoms: Atoms, s1: str, s2: str) -> float:
    syms = np.array(atoms.get_chemical_symbols())
    p1 = atoms.positions[syms == s1][:20]
    p2 = atoms.positions[syms == s2]
    d = np.linalg.norm(p1[:, None] - p2[None], axis=2)
    return float(d[d > 0.1].min())
