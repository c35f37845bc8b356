"""Symmetry-distinct site subsets of finite clusters and slabs.

A model's symmetry operations are found as **permutations of its atoms** (each operation
maps every atom onto an atom of the same element within a distance tolerance, Å):

* finite cluster (no periodic direction): the point group, from pymatgen's
  :class:`~pymatgen.symmetry.analyzer.PointGroupAnalyzer` (operations about the centre of mass);
* periodic slab: the space-group operations spglib finds for the cell with vacuum (for a
  slab these are the layer-group operations, including in-plane supercell translations).

Substituting ``k`` of ``n`` sites: two choices are equivalent when an operation of the
group that maps the site set onto itself carries one onto the other.  The orbits of the
k-subsets are enumerated in lexicographic order (the first member met is the canonical,
lexicographically smallest form), each with its **multiplicity** (orbit size); the
multiplicities add up to C(n, k).  When C(n, k) exceeds ``max_enumerate`` a reproducible
(seeded) random sample of distinct orbits is drawn instead.

Long enumerations report progress: ``distinct_subsets(..., progress=callback)`` calls
``callback(examined, total, orbits_found)`` at most every :data:`PROGRESS_EVERY` seconds and
once at the end, and the ``hetflow.structures.symmetry`` logger says at INFO what is being
enumerated (the CLI shows both).

Nothing here imports a calculator.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from ase import Atoms

from hetflow.errors import InputError, StructureError

__all__ = [
    "SymmetryGroup",
    "Orbit",
    "symmetry_group",
    "site_permutations",
    "distinct_subsets",
    "canonical_subset",
]

#: default distance tolerance for two atoms to be symmetry images (Å)
SYMPREC = 0.3
#: above this many k-subsets the enumeration switches to seeded sampling
MAX_ENUMERATE = 200_000
#: seconds between two calls of a ``progress`` callback
PROGRESS_EVERY = 0.5

log = logging.getLogger("hetflow.structures.symmetry")
#: ``progress(examined, total, orbits_found)``
ProgressCallback = Callable[[int, int, int], None]


@dataclass
class SymmetryGroup:
    """Symmetry operations of a model as atom permutations.

    perms: int array (n_ops, n_atoms); ``perms[g, i]`` is the atom that atom ``i`` is mapped to.
    symbol: Schoenflies symbol (cluster) or international symbol (slab) as detected.
    kind: "point group" or "layer group".
    """

    perms: np.ndarray
    symbol: str
    kind: str
    tolerance: float = SYMPREC

    @property
    def order(self) -> int:
        return int(len(self.perms))


@dataclass
class Orbit:
    """One symmetry-distinct choice of sites: its canonical representative (sorted atom
    indices, lexicographically smallest in the orbit) and the orbit size."""

    representative: tuple[int, ...]
    multiplicity: int
    members: list[tuple[int, ...]] = field(default_factory=list, repr=False)


def _match_permutation(new_pos: np.ndarray, pos: np.ndarray, numbers: np.ndarray, tol: float,
                       cell: np.ndarray | None = None, pbc: np.ndarray | None = None) -> np.ndarray | None:
    """Permutation p with new_pos[i] ≈ pos[p[i]] (same element), or None if none within tol."""
    n = len(pos)
    perm = np.full(n, -1, dtype=int)
    inv_cell = np.linalg.inv(cell) if cell is not None else None
    for z in np.unique(numbers):
        idx = np.flatnonzero(numbers == z)
        d = new_pos[idx][:, None, :] - pos[idx][None, :, :]
        if cell is not None:
            f = d @ inv_cell
            f[..., pbc] -= np.round(f[..., pbc])
            d = f @ cell
        r = np.linalg.norm(d, axis=2)
        j = np.argmin(r, axis=1)
        if np.any(r[np.arange(len(idx)), j] > tol):
            return None
        tgt = idx[j]
        if len(np.unique(tgt)) != len(tgt):
            return None
        perm[idx] = tgt
    return perm


def symmetry_group(atoms: Atoms, tol: float = SYMPREC) -> SymmetryGroup:
    """Symmetry operations of ``atoms`` as atom permutations (distances in Å).

    Finite models (no periodic direction) get their point group, periodic ones the
    operations spglib finds (the layer group for a slab).  Operations that do not map
    every atom onto an atom of the same element within ``tol`` are discarded.
    """
    if tol <= 0:
        raise InputError(f"symmetry tolerance must be > 0 Å, got {tol}")
    numbers = atoms.numbers
    pos = atoms.positions
    if len(atoms) == 0:
        raise StructureError("cannot analyse the symmetry of an empty structure")
    perms: list[np.ndarray] = []
    log.info("finding the symmetry operations of %d atoms (%s)", len(atoms),
             "point group" if not atoms.pbc.any() else "spglib")
    if not atoms.pbc.any():
        from pymatgen.core import Molecule
        from pymatgen.symmetry.analyzer import PointGroupAnalyzer

        mol = Molecule(atoms.get_chemical_symbols(), pos)
        if len(atoms) == 1:
            return SymmetryGroup(np.arange(1)[None, :], "Kh", "point group", tol)
        pga = PointGroupAnalyzer(mol, tolerance=tol)
        centre = np.asarray(mol.center_of_mass)
        cpos = pos - centre
        for op in pga.get_symmetry_operations():
            p = _match_permutation(op.operate_multi(cpos), cpos, numbers, tol)
            if p is not None:
                perms.append(p)
        symbol, kind = str(pga.sch_symbol), "point group"
    else:
        import spglib

        cell = np.asarray(atoms.cell)
        if atoms.cell.rank < 3:
            raise StructureError("periodic structure without a full 3-D cell: cannot find its symmetry")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = spglib.get_symmetry_dataset((cell, atoms.get_scaled_positions(), numbers), symprec=tol)
        if ds is None:
            raise StructureError("spglib could not determine the symmetry of this structure")
        frac = atoms.get_scaled_positions(wrap=False)
        pbc = np.asarray(atoms.pbc, bool)
        for rot, tr in zip(ds.rotations, ds.translations):
            new_frac = frac @ rot.T + tr
            p = _match_permutation(new_frac @ cell, pos, numbers, tol, cell, pbc)
            if p is not None:
                perms.append(p)
        symbol, kind = str(ds.international), "layer group" if not pbc.all() else "space group"
    ident = np.arange(len(atoms))
    if not any(np.array_equal(p, ident) for p in perms):
        perms.insert(0, ident)
    uniq = np.unique(np.array(perms), axis=0)
    return SymmetryGroup(uniq, symbol, kind, tol)


def site_permutations(group: SymmetryGroup, sites) -> np.ndarray:
    """The operations that map the site set onto itself, as permutations of positions
    0 … n−1 in ``sites`` (array (n_ops, n)).  Always contains the identity."""
    sites = np.asarray(sites, dtype=int)
    if len(np.unique(sites)) != len(sites):
        raise InputError("site list contains duplicates")
    where = {int(s): i for i, s in enumerate(sites)}
    out = []
    for p in group.perms:
        img = p[sites]
        loc = [where.get(int(j), -1) for j in img]
        if min(loc, default=0) >= 0:
            out.append(loc)
    if not out:
        out = [list(range(len(sites)))]
    return np.unique(np.array(out, dtype=int).reshape(len(out), len(sites)), axis=0)


def _orbit(subset: tuple[int, ...], local: np.ndarray) -> set[tuple[int, ...]]:
    idx = np.asarray(subset, dtype=int)
    imgs = np.sort(local[:, idx], axis=1)
    return {tuple(int(v) for v in row) for row in imgs}


def canonical_subset(subset, local: np.ndarray) -> tuple[tuple[int, ...], int]:
    """The orbit of ``subset`` (positions 0 … n−1 in the site list) under the site permutations
    ``local`` (:func:`site_permutations`): its canonical representative (lexicographically smallest
    sorted image) and its size."""
    orb = _orbit(tuple(int(v) for v in subset), np.asarray(local, int))
    return min(orb), len(orb)


def distinct_subsets(
    sites,
    k: int,
    group: SymmetryGroup | np.ndarray,
    max_configs: int | None = None,
    seed: int = 0,
    max_enumerate: int = MAX_ENUMERATE,
    progress: ProgressCallback | None = None,
) -> tuple[list[Orbit], dict]:
    """Symmetry-distinct ways to choose ``k`` of the atoms ``sites``.

    group: a :class:`SymmetryGroup` of the whole model (or already site-local permutations).
    max_configs: keep at most this many orbits (a seeded sample if there are more).
    max_enumerate: exhaustive enumeration up to this many k-subsets, seeded sampling above.
    progress: called as ``progress(examined, total, orbits_found)`` during the enumeration (at
        most every PROGRESS_EVERY s, and once at the end); ``total`` is C(n, k) when exhaustive,
        else the sampling budget (50·max_configs draws).

    Returns (orbits, meta); each orbit's representative is given in **atom indices**, sorted;
    meta has ``n_sites``, ``k``, ``n_subsets`` (C(n, k)), ``group_order`` (operations that
    keep the site set), ``exhaustive`` and ``n_orbits`` (total, if exhaustive).
    """
    sites = np.asarray(sites, dtype=int)
    n = len(sites)
    if not isinstance(k, (int, np.integer)) or k < 1 or k > n:
        raise InputError(f"number of substituted sites k must be 1 … {n}, got {k}")
    if max_configs is not None and max_configs < 1:
        raise InputError(f"max_configs must be ≥ 1, got {max_configs}")
    local = site_permutations(group, sites) if isinstance(group, SymmetryGroup) else np.asarray(group, int)
    total = math.comb(n, int(k))
    orbits: list[tuple[tuple[int, ...], int]] = []
    exhaustive = total <= max_enumerate
    last = time.monotonic()
    log.info("symmetry-distinct choices of %d of %d sites: %s (%d operations keep the sites)", k, n,
             f"enumerating all C(n, k) = {total}" if exhaustive else f"sampling (C(n, k) = {total} > {max_enumerate})",
             len(local))
    if exhaustive:
        seen: set[tuple[int, ...]] = set()
        for i, comb in enumerate(itertools.combinations(range(n), int(k))):
            if progress is not None and not i % 512 and time.monotonic() - last >= PROGRESS_EVERY:
                progress(i, total, len(orbits))
                last = time.monotonic()
            if comb in seen:
                continue
            orb = _orbit(comb, local)
            seen |= orb
            orbits.append((comb, len(orb)))
        n_orbits = len(orbits)
        if progress is not None:
            progress(total, total, n_orbits)
        if max_configs is not None and n_orbits > max_configs:
            rng = np.random.default_rng(seed)
            pick = np.sort(rng.choice(n_orbits, size=max_configs, replace=False))
            orbits = [orbits[i] for i in pick]
    else:
        want = max_configs or 100
        rng = np.random.default_rng(seed)
        found: dict[tuple[int, ...], int] = {}
        attempts = 0
        while len(found) < want and attempts < 50 * want:
            attempts += 1
            comb = tuple(sorted(int(v) for v in rng.choice(n, size=int(k), replace=False)))
            orb = _orbit(comb, local)
            found.setdefault(min(orb), len(orb))
            if progress is not None and time.monotonic() - last >= PROGRESS_EVERY:
                progress(attempts, 50 * want, len(found))
                last = time.monotonic()
        if progress is not None:
            progress(attempts, attempts, len(found))
        orbits = sorted(found.items())
        n_orbits = None
    log.info("%s symmetry-distinct choices%s", n_orbits if exhaustive else len(orbits),
             "" if exhaustive else " sampled")
    out = [Orbit(tuple(int(sites[i]) for i in rep), mult) for rep, mult in orbits]
    meta = {"n_sites": n, "k": int(k), "n_subsets": total, "group_order": int(len(local)),
            "exhaustive": exhaustive, "n_orbits": n_orbits, "seed": int(seed)}
    if isinstance(group, SymmetryGroup):
        meta.update(symmetry=group.symbol, symmetry_kind=group.kind, model_group_order=group.order)
    return out, meta
