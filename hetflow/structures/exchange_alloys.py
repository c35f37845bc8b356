"""Table S3 (Livakas et al.): alloy patterns on model (d) — a seeded random choice and whole CsX /
PbX2 planes parallel or perpendicular to the interface, all with the same exchanged count.  See
:mod:`hetflow.structures.exchange` for the patterns and the records they keep.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.geometry import find_mic

from hetflow.errors import InputError, StructureError
from hetflow.structures.exchange_layers import model_d
from hetflow.structures.exchange_sites import (
    _check_fraction, _round_half_up, _source, exchange_sites, halide_sites)
from hetflow.structures.labels import require_labels

__all__ = ["S3_PATTERNS", "inplane_axes", "alloy_patterns"]

#: the four distributions of Table S3
S3_PATTERNS = ("random", "csx_perp", "csx_par", "pbx2_perp")

_PLANE_TOL = 0.7  # Å: a site belongs to a plane through a cation column if within this distance


def inplane_axes(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, float]:
    """The perovskite's in-plane pseudo-cubic axes e1, e2 (unit vectors ⊥ z) and spacing a (Å),
    from nearest B–B (Pb–Pb) vectors within one perovskite layer."""
    pv = (atoms.arrays["domain"] == "perovskite") & (atoms.arrays["role"] == "B")
    idx = np.flatnonzero(pv)
    if len(idx) < 2:
        raise StructureError("need at least two perovskite B-site (Pb) atoms to find the in-plane axes")
    lay = atoms.arrays["layer"][idx]
    vecs = []
    for L in np.unique(lay):
        p = atoms.positions[idx[lay == L]]
        if len(p) < 2:
            continue
        d = p[None, :, :] - p[:, None, :]
        if atoms.pbc.any():
            flat, _ = find_mic(d.reshape(-1, 3), atoms.cell, atoms.pbc)
            d = flat.reshape(d.shape)
        r = np.linalg.norm(d, axis=2)
        r[r < 0.5] = np.inf
        vecs.append(d[r < r.min() * 1.15])
    if not vecs:
        # slab with one Pb per layer: use the periodic images
        raise StructureError("cannot find in-plane B–B vectors (one B site per layer)")
    v = np.concatenate(vecs)
    v = v[np.abs(v[:, 2]) < 0.5]
    a = float(np.linalg.norm(v, axis=1).mean())
    ang = np.mod(np.arctan2(v[:, 1], v[:, 0]), np.pi / 2)
    # circular mean with period 90°
    theta = np.angle(np.mean(np.exp(4j * ang))) / 4
    e1 = np.array([math.cos(theta), math.sin(theta), 0.0])
    e2 = np.array([-math.sin(theta), math.cos(theta), 0.0])
    return e1, e2, a


def _plane_period(atoms: Atoms, e: np.ndarray, a: float) -> float | None:
    """Period of the coordinate u = r·e imposed by in-plane periodic boundaries (Å), or None."""
    if not atoms.pbc[:2].any():
        return None
    best = None
    cell = np.asarray(atoms.cell)
    for i in range(-4, 5):
        for j in range(-4, 5):
            v = i * cell[0] * atoms.pbc[0] + j * cell[1] * atoms.pbc[1]
            u = abs(float(v @ e))
            if u > 0.1 and (best is None or u < best):
                best = u
    return best


def _perp_planes(atoms: Atoms, sites: np.ndarray, kind: str, axis: int) -> list[tuple[float, np.ndarray]]:
    """Planes ⊥ the interface (normal to in-plane axis e1 or e2) through A (``kind="csx"``) or
    B (``"pbx2"``) columns of the perovskite, with the given halide sites they contain."""
    e1, e2, a = inplane_axes(atoms)
    e = e1 if axis == 0 else e2
    role = "A" if kind == "csx" else "B"
    cat = np.flatnonzero((atoms.arrays["domain"] == "perovskite") & (atoms.arrays["role"] == role))
    period = _plane_period(atoms, e, a)
    uc = atoms.positions[cat] @ e
    us = atoms.positions[sites] @ e
    if period is not None:
        if period < 1.5 * a:
            raise InputError(
                f"the periodic cell holds only one perovskite plane ⊥ the interface along that axis "
                f"(period {period:.2f} Å): use a larger in-plane supercell")
        uc, us = np.mod(uc, period), np.mod(us, period)
    centres: list[float] = []
    for u in np.sort(uc):
        if not any(_pdist(u, c, period) < _PLANE_TOL for c in centres):
            centres.append(float(u))
    planes = []
    for c in centres:
        m = np.array([_pdist(u, c, period) < _PLANE_TOL for u in us], bool)
        if m.any():
            planes.append((c, sites[m]))
    return planes


def _pdist(u: float, c: float, period: float | None) -> float:
    d = abs(u - c)
    return min(d, period - d) if period else d


def _fill_planes(atoms: Atoms, planes: list[tuple[float, np.ndarray]], centre: float, n: int,
                 period: float | None = None) -> tuple[np.ndarray, list[dict]]:
    """Take whole planes nearest to ``centre`` first; complete the count ``n`` with the sites of
    the next plane nearest to that plane's own centroid (a compact patch)."""
    order = sorted(range(len(planes)), key=lambda i: (round(_pdist(planes[i][0], centre, period), 3), planes[i][0]))
    chosen: list[int] = []
    desc: list[dict] = []
    for i in order:
        if len(chosen) >= n:
            break
        c, s = planes[i]
        need = n - len(chosen)
        if len(s) <= need:
            take = s
        else:
            p = atoms.positions[s]
            dist = np.linalg.norm(p - p.mean(axis=0), axis=1)
            take = s[np.lexsort((s, dist.round(3)))[:need]]
        chosen += [int(v) for v in take]
        desc.append({"coordinate": float(c), "n_sites": int(len(s)), "n_taken": int(len(take))})
    return np.array(sorted(chosen), int), desc


def alloy_patterns(
    atoms: Atoms,
    fraction: float = 0.2,
    patterns: Sequence[str] = S3_PATTERNS,
    seed: int = 0,
    target: str = "I",
    source: str | None = None,
    axis: int = 0,
    n_bottom: int = 5,
    base: Atoms | None = None,
) -> list[Atoms]:
    """Table S3: on model (d) (or ``base``), exchange ≈ ``fraction`` of the ``source`` halides
    still in the perovskite domain, in the distributions ``patterns`` (see :data:`S3_PATTERNS`).

    n = round(fraction × remaining) sites for every pattern, so their energies compare (when
    one pattern's planes cannot hold n sites on this lattice, every pattern takes the largest
    count all can reach; ``info["n_requested"]`` and ``info["count_note"]`` say so):
    ``random`` — a seeded random choice; ``csx_par`` — halides of the remaining CsX layers
    (∥ interface, even layers), the middle one first; ``csx_perp`` / ``pbx2_perp`` — halides
    in planes normal to the in-plane axis ``axis`` (0 = e1, 1 = e2) through Cs (resp. Pb)
    columns, the plane nearest the domain's centre first.  When a plane holds more sites than
    needed, the compact patch nearest its centroid is taken; ``info["planes"]`` lists the
    planes used and ``info["complete_planes"]`` says whether they are whole.
    """
    f = _check_fraction(fraction)
    unknown = [p for p in patterns if p not in S3_PATTERNS]
    if unknown:
        raise InputError(f"unknown S3 pattern {unknown[0]!r}; choose from {', '.join(S3_PATTERNS)}")
    if axis not in (0, 1):
        raise InputError(f"axis must be 0 or 1 (in-plane perovskite axis), got {axis}")
    src = _source(atoms, source)
    d = base if base is not None else model_d(atoms, n_bottom, target, src)
    require_labels(d)
    remaining = halide_sites(d, src, domain="perovskite")
    if len(remaining) == 0:
        raise StructureError(f"no {src} left in the perovskite domain of the base model")
    n_requested = max(1, _round_half_up(f * len(remaining)))

    def pick(pat: str, n: int) -> tuple[np.ndarray, dict]:
        meta: dict = {}
        if pat == "random":
            sites = np.sort(np.random.default_rng(seed).choice(remaining, size=n, replace=False))
            meta = {"seed": int(seed)}
        elif pat == "csx_par":
            lay = d.arrays["layer"][remaining]
            roles_by_layer = {int(L): set(d.arrays["role"][d.arrays["layer"] == L].tolist()) for L in np.unique(lay)}
            csx_layers = sorted(L for L, r in roles_by_layer.items() if "A" in r)
            if not csx_layers:
                raise StructureError("no CsX layer left in the perovskite domain for a ∥ layer")
            planes = [(float(L), remaining[lay == L]) for L in csx_layers]
            sites, desc = _fill_planes(d, planes, float(np.mean(csx_layers)), n)
            meta = {"planes": [dict(x, layer=int(x["coordinate"])) for x in desc], "orientation": "parallel"}
        else:
            kind = "csx" if pat == "csx_perp" else "pbx2"
            planes = _perp_planes(d, remaining, kind, axis)
            if not planes:
                raise StructureError(f"no {kind} plane ⊥ the interface contains {src} sites")
            e = inplane_axes(d)[axis]
            period = _plane_period(d, e, inplane_axes(d)[2])
            us = d.positions[remaining] @ e
            centre = float(np.mod(us, period).mean() if period else us.mean())
            sites, desc = _fill_planes(d, planes, centre, n, period)
            meta = {"planes": desc, "orientation": "perpendicular", "axis": int(axis),
                    "plane_normal": [float(v) for v in e]}
        return np.asarray(sites), meta

    # every distribution exchanges the same number of sites: the requested one, or — when one
    # pattern's planes hold fewer sites than that on this lattice — the largest all can reach
    picks = {pat: pick(pat, n_requested) for pat in patterns}
    n = min(len(sites) for sites, _ in picks.values())
    if n < n_requested:
        picks = {pat: pick(pat, n) for pat in patterns}
    out = []
    for pat in patterns:
        sites, meta = picks[pat]
        if n < n_requested:
            short = [p for p in patterns if len(pick(p, n_requested)[0]) < n_requested]
            meta["count_note"] = (f"{n} sites in every distribution instead of {n_requested}: "
                                  f"{', '.join(short)} cannot hold more on this lattice")
        meta.setdefault("complete_planes", all(p["n_taken"] == p["n_sites"] for p in meta.get("planes", [])))
        out.append(exchange_sites(d, sites, target, name=f"s3-{pat}", pattern="s3", distribution=pat,
                                  fraction=f, n_target=int(n), n_requested=int(n_requested),
                                  n_remaining=int(len(remaining)),
                                  fraction_actual=len(sites) / len(remaining), **meta))
    return out
