"""Bulk-phase analysis: Γ-point supercell convergence, lattice parameters, octahedral tilts.

Pure functions on structures and energies (eV, Å); no calculator is run here.

* :func:`convergence` — given per-formula-unit energies of a growing supercell series, the
  first size at which the change from the previous size is below a tolerance (kJ/mol per
  formula unit, 1 by default), and the table of the series.
* :func:`octahedral_tilts` — Pb–X–Pb angles of corner-sharing octahedra (periodic) and the
  tilt φ = (180° − ∠Pb–X–Pb)/2 of rigid octahedra; 0° for cubic α-CsPbI3.
* :func:`lattice_summary` — a, b, c, angles, volume per formula unit and the space group
  (spglib) of a cell, optionally in the setting of the cell a supercell was made from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from hetflow.analysis.units import from_ev
from hetflow.errors import InputError

__all__ = ["ConvergencePoint", "Convergence", "convergence", "octahedral_tilts", "lattice_summary"]

#: default convergence tolerance, kJ/mol per formula unit
DEFAULT_TOL_KJ = 1.0


@dataclass
class ConvergencePoint:
    """One supercell of a series: label, atoms, image distance (Å), energy per formula unit (eV)."""

    label: str
    n_atoms: int
    image_distance: float
    energy_per_fu: float

    def as_row(self, previous: "ConvergencePoint | None") -> dict[str, Any]:
        d = None if previous is None else from_ev(self.energy_per_fu - previous.energy_per_fu, "kJ/mol")
        return {"supercell": self.label, "atoms": self.n_atoms, "image distance (Å)": self.image_distance,
                "E per f.u. (eV)": self.energy_per_fu, "Δ from previous (kJ/mol per f.u.)": d}


@dataclass
class Convergence:
    """Outcome of a supercell series.

    converged: the last step changed the energy per formula unit by less than ``tol_kj``.
    value: energy per formula unit of the last supercell computed (eV) — the converged value
        when ``converged``; last_delta_kj: its change from the previous supercell (kJ/mol).
    points: the series in order.
    """

    points: list[ConvergencePoint]
    tol_kj: float
    converged: bool
    value: float
    last_delta_kj: float | None
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        return [p.as_row(self.points[i - 1] if i else None) for i, p in enumerate(self.points)]

    @property
    def uncertainty_kj(self) -> float | None:
        """|last change| (kJ/mol per f.u.): the size of the remaining Γ-point error estimate."""
        return None if self.last_delta_kj is None else abs(self.last_delta_kj)


def convergence(points: Sequence[ConvergencePoint], tol_kj: float = DEFAULT_TOL_KJ) -> Convergence:
    """Decide convergence of a growing supercell series (ordered, smallest first).

    The series is converged at the first supercell whose energy per formula unit differs from
    the previous one's by less than ``tol_kj`` kJ/mol; later points (if any) are dropped.
    With fewer than two points, or no such step, it is not converged and the value is that of
    the largest supercell."""
    if tol_kj <= 0:
        raise InputError(f"convergence tolerance must be > 0 kJ/mol, got {tol_kj}")
    pts = list(points)
    if not pts:
        raise InputError("convergence needs at least one supercell energy")
    for p in pts:
        if not math.isfinite(p.energy_per_fu):
            raise InputError(f"energy of supercell {p.label} is not finite")
    for i in range(1, len(pts)):
        if pts[i].n_atoms <= pts[i - 1].n_atoms:
            raise InputError("supercell series must grow: "
                             f"{pts[i].label} ({pts[i].n_atoms} atoms) after {pts[i - 1].label} ({pts[i - 1].n_atoms})")
        d = from_ev(pts[i].energy_per_fu - pts[i - 1].energy_per_fu, "kJ/mol")
        if abs(d) < tol_kj:
            return Convergence(pts[: i + 1], tol_kj, True, pts[i].energy_per_fu, d)
    last = None if len(pts) < 2 else from_ev(pts[-1].energy_per_fu - pts[-2].energy_per_fu, "kJ/mol")
    return Convergence(pts, tol_kj, False, pts[-1].energy_per_fu, last)


def _pbc_neighbours(atoms: Atoms, cutoff: float):
    from ase.neighborlist import neighbor_list

    return neighbor_list("ijdD", atoms, cutoff)


def octahedral_tilts(atoms: Atoms, metal: str = "Pb", halide: str = "I", cutoff: float = 3.8) -> dict[str, Any]:
    """Pb–X–Pb angles (degrees) of halides bridging two metals within ``cutoff`` Å, periodic.

    Returns n_bridges, mean/min angle, and the rigid-octahedron tilt φ = (180 − angle)/2
    (mean and max).  Edge-sharing (δ) or face-sharing motifs give small angles (≈ 90°): the
    tilt is meaningful for corner-sharing perovskites only."""
    s = np.array(atoms.get_chemical_symbols())
    if not (s == metal).any() or not (s == halide).any():
        raise InputError(f"octahedral_tilts needs {metal} and {halide} atoms")
    i, j, d, D = _pbc_neighbours(atoms, cutoff)
    angles = []
    for x in np.flatnonzero(s == halide):
        m = (i == x) & (s[j] == metal)
        vecs = D[m]
        if len(vecs) < 2:
            continue
        for a in range(len(vecs)):
            for b in range(a + 1, len(vecs)):
                c = vecs[a] @ vecs[b] / (np.linalg.norm(vecs[a]) * np.linalg.norm(vecs[b]))
                angles.append(math.degrees(math.acos(max(-1.0, min(1.0, c)))))
    if not angles:
        return {"n_bridges": 0, "mean_angle": None, "min_angle": None, "mean_tilt": None, "max_tilt": None}
    ang = np.array(angles)
    tilt = (180.0 - ang) / 2
    return {"n_bridges": int(len(ang)), "mean_angle": float(ang.mean()), "min_angle": float(ang.min()),
            "mean_tilt": float(tilt.mean()), "max_tilt": float(tilt.max())}


def _spacegroup(atoms: Atoms, symprec: float) -> str:
    import spglib

    cell = (np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.numbers)
    sg = spglib.get_spacegroup(cell, symprec=symprec)
    return sg or "P1 (1)"


def lattice_summary(atoms: Atoms, matrix=None, formula_units: int | None = None,
                    symprec: tuple[float, ...] = (0.01, 0.1)) -> dict[str, Any]:
    """a, b, c (Å), α, β, γ (°), volume per formula unit (Å³) and the space group at each
    ``symprec`` (Å).  With ``matrix`` (the supercell matrix), the lattice parameters are
    those of M⁻¹·cell — the setting of the cell the supercell was made from."""
    from ase.cell import Cell

    cell = np.asarray(atoms.cell, dtype=float)
    if matrix is not None:
        cell = np.linalg.solve(np.asarray(matrix, dtype=float), cell)
    par = Cell(cell).cellpar()
    out: dict[str, Any] = {"a": float(par[0]), "b": float(par[1]), "c": float(par[2]),
                           "alpha": float(par[3]), "beta": float(par[4]), "gamma": float(par[5])}
    if formula_units:
        out["volume_per_fu"] = float(abs(atoms.cell.volume) / formula_units)
    out["spacegroup"] = {f"{p:g}": _spacegroup(atoms, p) for p in symprec}
    return out
