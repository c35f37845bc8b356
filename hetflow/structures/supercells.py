"""Supercells for Γ-point periodic calculations, and symmetry-lowering starts (pure geometry, Å).

tblite samples the Brillouin zone at Γ only.  A Γ-point calculation of a supercell with
matrix M (rows = supercell vectors in units of the cell vectors) is the same as sampling the
|det M| k-points of the cell that M folds onto Γ; its quality is set by the shortest lattice
vector of the supercell, the distance from an atom to its nearest periodic image
(:func:`min_image_distance`).  Per atom, face-centred-cubic-shaped supercells of a cubic
cell reach the longest image distance (the fcc lattice is the densest packing), and they
fold the R point (½,½,½) of a simple-cubic cell onto Γ for every size — where the gap of
cubic α-CsPbI3 is — so the cubic series mixes diagonal, fcc- and bcc-shaped matrices.

* :func:`supercell_matrices` — candidate matrices (diagonal n1×n2×n3; for cubic cells also
  n·F and n·B) with their cell count and image distance.
* :func:`supercell_series` — the cheapest supercell reaching each of a rising list of image
  distances: the growth sequence of a convergence test.
* :func:`build_supercell` — ``make_supercell`` keeping per-atom labels; info records M.
* :func:`perturb` — seeded random displacements (rms, Å) and cell strain that break the
  symmetry of a saddle point (e.g. untilted cubic α-CsPbI3) before a relaxation.
* :func:`primitive_equivalent_cell` — M⁻¹·cell of a relaxed supercell: the lattice
  parameters in the setting of the original cell.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from hetflow.errors import InputError

__all__ = [
    "FCC",
    "BCC",
    "SupercellChoice",
    "min_image_distance",
    "supercell_matrices",
    "supercell_series",
    "build_supercell",
    "perturb",
    "primitive_equivalent_cell",
    "is_cubic_cell",
]

#: fcc- and bcc-shaped supercell matrices of a simple-cubic cell (det 2 and 4)
FCC = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
BCC = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])


@dataclass(frozen=True)
class SupercellChoice:
    """A supercell matrix with its size: ``n_cells`` = |det M|, ``image_distance`` (Å) =
    shortest non-zero lattice vector of the supercell, ``label`` e.g. "2×3×1" or "fcc·3"."""

    matrix: tuple[tuple[int, int, int], ...]
    n_cells: int
    image_distance: float
    label: str

    @property
    def M(self) -> np.ndarray:
        return np.array(self.matrix, dtype=int)


#: largest cell count for which every supercell (Hermite normal form) is tried
HNF_MAX_DET = 16


def _hnf(n: int):
    """All 3×3 integer lower-triangular Hermite normal forms of determinant n (rows = vectors)."""
    for a in range(1, n + 1):
        if n % a:
            continue
        for c in range(1, n // a + 1):
            if (n // a) % c:
                continue
            f = n // (a * c)
            # row operations reduce each sub-diagonal entry modulo its column's diagonal entry
            for b in range(a):
                for d in range(a):
                    for e in range(c):
                        yield np.array([[a, 0, 0], [b, c, 0], [d, e, f]])


def min_image_distance(cell) -> float:
    """Shortest non-zero lattice vector of ``cell`` (3×3, rows = vectors), Å.

    Minkowski-reduces the cell first (ASE), then checks all combinations with coefficients
    −1…1, which is exact for a reduced basis."""
    from ase.cell import Cell

    c = Cell(np.asarray(cell, dtype=float))
    if abs(c.volume) < 1e-9:
        raise InputError("min_image_distance needs a 3D cell (volume is zero)")
    red, _ = c.minkowski_reduce()
    v = np.asarray(red)
    best = math.inf
    for n in itertools.product((-1, 0, 1), repeat=3):
        if n == (0, 0, 0):
            continue
        best = min(best, float(np.linalg.norm(np.array(n) @ v)))
    return best


def _is_cubic(cell, tol: float = 1e-3) -> bool:
    c = np.asarray(cell, dtype=float)
    lengths = np.linalg.norm(c, axis=1)
    return bool(np.allclose(lengths, lengths[0], rtol=tol) and np.allclose(c @ c.T, np.diag(lengths**2),
                                                                             atol=tol * lengths[0] ** 2))


def is_cubic_cell(cell, tol: float = 1e-3) -> bool:
    """True for a simple-cubic cell (equal, mutually orthogonal vectors within ``tol``)."""
    return _is_cubic(cell, tol)


def supercell_matrices(atoms: Atoms, max_cells: int = 512, shapes: tuple[str, ...] | None = None
                       ) -> list[SupercellChoice]:
    """Candidate supercell matrices of ``atoms``' cell with at most ``max_cells`` cells.

    shapes: "hnf" (for each cell count up to :data:`HNF_MAX_DET`, the supercell with the
    longest image distance among all of them — Hermite normal forms), "diagonal" (n1×n2×n3,
    each n ≤ 12) and, for a cubic cell, "fcc" (n·F, det 2n³) and "bcc" (n·B, det 4n³).
    Default: all that apply.  Sorted by (cells, −image distance)."""
    if max_cells < 1:
        raise InputError(f"max_cells must be ≥ 1, got {max_cells}")
    cell = np.asarray(atoms.cell, dtype=float)
    if abs(np.linalg.det(cell)) < 1e-9:
        raise InputError("supercells need a structure with a 3D cell")
    cubic = _is_cubic(cell)
    if shapes is None:
        shapes = ("hnf", "diagonal", "fcc", "bcc") if cubic else ("hnf", "diagonal")
    bad = set(shapes) - {"hnf", "diagonal", "fcc", "bcc"}
    if bad:
        raise InputError(f"unknown supercell shape(s) {', '.join(sorted(bad))}; choose hnf, diagonal, fcc, bcc")
    if not cubic and set(shapes) & {"fcc", "bcc"}:
        raise InputError("fcc/bcc-shaped supercells are defined here for cubic cells only")
    out: dict[tuple, SupercellChoice] = {}

    def add(M: np.ndarray, label: str) -> None:
        n = int(round(abs(np.linalg.det(M))))
        if n < 1 or n > max_cells:
            return
        key = tuple(map(tuple, M.tolist()))
        out[key] = SupercellChoice(key, n, min_image_distance(M @ cell), label)

    if "hnf" in shapes:
        # every supercell up to HNF_MAX_DET cells (Hermite normal forms), best per cell count
        for n in range(1, min(max_cells, HNF_MAX_DET) + 1):
            best = None
            for M in _hnf(n):
                L = min_image_distance(M @ cell)
                if best is None or L > best[0] + 1e-6:
                    best = (L, M)
            add(best[1], f"hnf{n}:" + ",".join("".join(map(str, r)) for r in best[1].tolist()))

    if "diagonal" in shapes:
        for n1, n2, n3 in itertools.product(range(1, 13), repeat=3):
            if n1 * n2 * n3 <= max_cells:
                add(np.diag([n1, n2, n3]), f"{n1}×{n2}×{n3}")
    for name, base, det in (("fcc", FCC, 2), ("bcc", BCC, 4)):
        if name in shapes:
            n = 1
            while det * n**3 <= max_cells:
                add(n * base, f"{name}·{n}")
                n += 1
    return sorted(out.values(), key=lambda c: (c.n_cells, -c.image_distance, c.label))


def supercell_series(atoms: Atoms, start: float, step: float, max_atoms: int,
                     shapes: tuple[str, ...] | None = None) -> list[SupercellChoice]:
    """The growth sequence of a Γ-point convergence test.

    For target image distances start, start + step, … (Å), the supercell with the fewest
    atoms whose image distance reaches the target (ties: the longer image distance), as long
    as it has at most ``max_atoms`` atoms; repeated choices appear once.  The first entry is
    the cheapest supercell with image distance ≥ ``start``."""
    if step <= 0 or start <= 0:
        raise InputError(f"start and step must be > 0 Å, got start={start}, step={step}")
    per_cell = len(atoms)
    cands = supercell_matrices(atoms, max(1, max_atoms // max(per_cell, 1)), shapes)
    if not cands:
        raise InputError(f"no supercell of {atoms.get_chemical_formula()} fits in {max_atoms} atoms")
    series: list[SupercellChoice] = []
    target = start
    longest = max(c.image_distance for c in cands)
    while target <= longest + 1e-9:
        ok = [c for c in cands if c.image_distance >= target - 1e-9]
        if not ok:
            break
        best = min(ok, key=lambda c: (c.n_cells, -c.image_distance, c.label))
        if not series or best.matrix != series[-1].matrix:
            # a larger target can pick a supercell that is no longer than the previous one
            if not series or best.image_distance > series[-1].image_distance + 1e-6:
                series.append(best)
        target = max(target + step, best.image_distance + 1e-6)
    return series


def build_supercell(atoms: Atoms, choice: SupercellChoice | np.ndarray) -> Atoms:
    """The supercell of ``atoms`` for ``choice`` (per-atom arrays repeated, info kept plus
    ``supercell_matrix``, ``supercell_label``)."""
    M = choice.M if isinstance(choice, SupercellChoice) else np.asarray(choice, dtype=int)
    label = choice.label if isinstance(choice, SupercellChoice) else "×".join(map(str, np.diag(M)))
    sc = make_supercell(atoms, M, wrap=True)
    sc.info = dict(atoms.info)
    sc.info.update(supercell_matrix=M.tolist(), supercell_label=label, supercell_of=len(atoms))
    return sc


def perturb(atoms: Atoms, rms: float = 0.05, strain: float = 0.005, seed: int = 0) -> Atoms:
    """A copy with seeded random displacements (Gaussian, rms ``rms`` Å per Cartesian
    component, net translation removed) and, for periodic cells, a random symmetric cell
    strain with components of size ``strain`` (fractional coordinates kept).  Breaks every
    symmetry of a saddle point so that a relaxation can leave it."""
    if rms < 0 or strain < 0:
        raise InputError(f"rms and strain must be ≥ 0, got {rms}, {strain}")
    rng = np.random.default_rng(seed)
    out = atoms.copy()
    d = rng.normal(0.0, rms, size=(len(out), 3))
    d -= d.mean(axis=0)
    if out.pbc.any() and strain > 0:
        e = rng.uniform(-strain, strain, size=(3, 3))
        e = 0.5 * (e + e.T)
        out.set_cell(np.asarray(out.cell) @ (np.eye(3) + e), scale_atoms=True)
    out.positions = out.positions + d
    out.info["perturbation"] = {"rms": rms, "strain": strain, "seed": seed}
    return out


def primitive_equivalent_cell(supercell_cell, matrix) -> np.ndarray:
    """M⁻¹ · (supercell cell): the cell of the original setting implied by a (relaxed)
    supercell — e.g. the pseudo-cubic a, b, c and angles of a relaxed α-CsPbI3 supercell."""
    M = np.asarray(matrix, dtype=float)
    return np.linalg.solve(M, np.asarray(supercell_cell, dtype=float))
