"""Pb–Pb strain of the perovskite domain and lattice mismatch (Å and %).

Definitions (SCIENCE.md, Livakas et al.):

* **Pairs.** For each perovskite B-site cation (``role == "B"``, Pb of the perovskite) its
  B-site neighbours within ``cutoff_factor · a`` (default 1.25·a), where ``a`` is the
  perovskite's Pb–Pb spacing (by default the median nearest-neighbour B–B distance of the
  structure itself).  Each unordered pair is counted once.  Chalcohalide Pb (``role == "M"``)
  never enters.  Distances are plain Cartesian (finite clusters, no periodic images).
* **Layers.** The ``layer`` array of the heterostructure: 0 = the shared interfacial CsX
  monolayer, +1, +3, … PbX2 planes into the perovskite.  A pair is *in-plane* in layer L when
  both of its Pb are in L (default); with ``pairs="touching"`` a pair counts for every layer
  one of its Pb is in, so pairs crossing between Pb planes are included too.
* **Interfacial perovskite layer** = the Pb plane closest to the interface, i.e. the smallest
  positive layer holding B atoms (normally +1).
* **Strain of a pair** = (d_HS − d_ref) / d_ref × 100, with d_ref the distance between the
  *same two sites* in the standalone perovskite NC of the same size (relaxed with the same
  method).  Sites are matched by the order of the B atoms (``match="order"``) or by position
  (``match="position"``, default: both B sublattices centred, scaled to the same size, rotated
  onto each other and assigned one-to-one to the nearest site).
* **Interfacial strain** = mean |strain| over the pairs of the interfacial layer, %.
* **Lattice mismatch** = (a_perovskite − a_partner) / a_perovskite × 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from ase import Atoms
from scipy.optimize import linear_sum_assignment

from hetflow.structures.interface import lattice_mismatch  # noqa: F401  (re-exported)
from hetflow.errors import InputError, StructureError

__all__ = [
    "PairStrain", "b_site_indices", "pb_pairs", "match_b_sites", "pair_strains",
    "layer_strains", "interfacial_layer", "interfacial_strain", "lattice_mismatch",
]

PairMode = Literal["in-plane", "touching"]
MatchMode = Literal["order", "position"]


@dataclass(frozen=True)
class PairStrain:
    """One Pb–Pb pair: atom indices in the heterostructure, their layers, distances (Å), strain (%)."""

    i: int
    j: int
    layer_i: int
    layer_j: int
    d: float
    d_ref: float
    strain: float

    @property
    def in_plane(self) -> bool:
        return self.layer_i == self.layer_j


def b_site_indices(atoms: Atoms, role: str = "B") -> np.ndarray:
    """Indices of the perovskite B-site cations (``role`` array; ``domain`` == perovskite if present)."""
    if "role" not in atoms.arrays:
        raise StructureError("structure has no per-atom 'role' array: cannot find the perovskite Pb (role B)")
    sel = np.asarray(atoms.arrays["role"]).astype(str) == role
    if "domain" in atoms.arrays:
        sel &= np.asarray(atoms.arrays["domain"]).astype(str) == "perovskite"
    idx = np.flatnonzero(sel)
    if len(idx) == 0:
        raise StructureError(f"structure has no perovskite atoms with role {role!r}")
    return idx


def _nn_spacing(pos: np.ndarray) -> float:
    if len(pos) < 2:
        raise StructureError("fewer than two B-site cations: no Pb–Pb pairs")
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


def pb_pairs(atoms: Atoms, cutoff_factor: float = 1.25, a: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """B–B pairs within ``cutoff_factor · a``: ((n, 2) atom indices with i < j, (n,) distances Å)."""
    if cutoff_factor <= 0:
        raise InputError(f"cutoff_factor must be > 0, got {cutoff_factor}")
    idx = b_site_indices(atoms)
    pos = atoms.positions[idx]
    a = _nn_spacing(pos) if a is None else float(a)
    if a <= 0:
        raise InputError(f"Pb–Pb spacing a must be > 0 Å, got {a}")
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    ii, jj = np.nonzero(np.triu(d <= cutoff_factor * a, k=1))
    return np.column_stack([idx[ii], idx[jj]]).astype(int), d[ii, jj]


def _kabsch(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rotation R minimising |p R − q| for centred p, q."""
    u, _, vt = np.linalg.svd(p.T @ q)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, sign]) @ vt


def match_b_sites(hs: Atoms, ref: Atoms, match: MatchMode = "position") -> dict[int, int]:
    """Map each heterostructure B atom index to the reference-NC B atom index of the same site."""
    hi, ri = b_site_indices(hs), b_site_indices(ref)
    if len(hi) != len(ri):
        raise InputError(
            f"heterostructure has {len(hi)} perovskite Pb but the reference NC has {len(ri)}: "
            "use the standalone NC of the same size"
        )
    if match == "order":
        return dict(zip(hi.tolist(), ri.tolist()))
    if match != "position":
        raise InputError(f"unknown match {match!r}; choose order or position")
    p = hs.positions[hi] - hs.positions[hi].mean(axis=0)
    q = ref.positions[ri] - ref.positions[ri].mean(axis=0)
    rp, rq = np.sqrt((p**2).sum(1).mean()), np.sqrt((q**2).sum(1).mean())
    if rp > 0 and rq > 0:
        p = p * (rq / rp)
    a_ref = _nn_spacing(ref.positions[ri]) if len(ri) > 1 else 1.0
    assign = np.arange(len(p))
    rot = np.eye(3)
    for _ in range(3):  # assign, rotate onto the assignment, reassign
        cost = np.linalg.norm((p @ rot)[:, None] - q[None], axis=-1)
        _, assign = linear_sum_assignment(cost)
        rot = _kabsch(p, q[assign])
    resid = np.linalg.norm(p @ rot - q[assign], axis=1)
    if len(p) > 1 and resid.max() > 0.35 * a_ref:
        raise InputError(
            f"cannot match perovskite Pb sites by position (worst site off by {resid.max():.2f} Å); "
            "is the reference the standalone NC of the same size?"
        )
    return dict(zip(hi.tolist(), ri[assign].tolist()))


def _layers(atoms: Atoms) -> np.ndarray:
    if "layer" not in atoms.arrays:
        raise StructureError("structure has no per-atom 'layer' array")
    return np.asarray(atoms.arrays["layer"]).astype(int)


def pair_strains(hs: Atoms, ref: Atoms, cutoff_factor: float = 1.25, a: float | None = None,
                 match: MatchMode = "position") -> list[PairStrain]:
    """Strain (%) of every B–B pair of the heterostructure against the same pair of the reference NC."""
    pairs, d = pb_pairs(hs, cutoff_factor, a)
    m = match_b_sites(hs, ref, match)
    lay = _layers(hs)
    out = []
    for (i, j), dij in zip(pairs, d):
        dref = float(np.linalg.norm(ref.positions[m[i]] - ref.positions[m[j]]))
        out.append(PairStrain(int(i), int(j), int(lay[i]), int(lay[j]), float(dij), dref,
                              (float(dij) - dref) / dref * 100.0))
    return out


def _select(strains: list[PairStrain], layer: int, pairs: PairMode) -> list[PairStrain]:
    if pairs == "in-plane":
        return [s for s in strains if s.layer_i == layer and s.layer_j == layer]
    if pairs == "touching":
        return [s for s in strains if layer in (s.layer_i, s.layer_j)]
    raise InputError(f"unknown pairs mode {pairs!r}; choose in-plane or touching")


def layer_strains(hs: Atoms, ref: Atoms, pairs: PairMode = "in-plane", **kw) -> dict[int, dict[str, float]]:
    """Per Pb layer: ``n_pairs``, ``mean_abs`` (mean |strain|, %), ``mean`` (%), ``max_abs`` (%)."""
    strains = pair_strains(hs, ref, **kw)
    lay = _layers(hs)[b_site_indices(hs)]
    out: dict[int, dict[str, float]] = {}
    for L in sorted(set(lay.tolist())):
        s = np.array([p.strain for p in _select(strains, L, pairs)])
        if len(s):
            out[L] = {"n_pairs": int(len(s)), "mean_abs": float(np.abs(s).mean()),
                      "mean": float(s.mean()), "max_abs": float(np.abs(s).max())}
    return out


def interfacial_layer(hs: Atoms) -> int:
    """The Pb plane of the perovskite closest to the interface: smallest positive layer with B atoms."""
    lay = _layers(hs)[b_site_indices(hs)]
    pos = lay[lay > 0]
    if len(pos) == 0:
        raise StructureError("no perovskite Pb in a positive layer: is the 'layer' array the heterostructure's?")
    return int(pos.min())


def interfacial_strain(hs: Atoms, ref: Atoms, layer: int | None = None, pairs: PairMode = "in-plane",
                       **kw) -> float:
    """Mean |strain| (%) over the Pb–Pb pairs of the interfacial perovskite layer (default +1)."""
    L = interfacial_layer(hs) if layer is None else int(layer)
    sel = _select(pair_strains(hs, ref, **kw), L, pairs)
    if not sel:
        raise InputError(f"no Pb–Pb pairs in layer {L} ({pairs}); the NC is too narrow for in-plane pairs")
    return float(np.mean([abs(s.strain) for s in sel]))
