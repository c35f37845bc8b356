"""Lateral registry and gap of a perovskite (100) / chalcohalide (010) interface — pure geometry.

The epitaxial model of Toso et al. (Nat. Commun. 13, 3976, 2022; reused by Livakas et al.) is
defined by the **continuity of the Pb²⁺/Cs⁺ cation sub-network** across the interface.  Seen
down the stacking axis z, the perovskite's cations stand in columns on a square net of spacing
a/√2 (Pb columns at (0, 0) and (½, ½) of the √2 × √2 cell, Cs columns at (½, 0) and (0, ½));
Pb4S3X2's (010) face, cut between its Pb double sheets, exposes one Pb sheet with two Pb per
a × c cell.  Continuity puts those Pb on the perovskite's Pb columns, one perovskite step (≈ the
Pb–X bond) below the perovskite's terminal CsX monolayer: each top Pb then takes the terminal
layer's halide as its apical ligand, and the terminal Cs stand where the chalcohalide's next
Pb sheet would be.

A :class:`Registry` is one candidate junction: which chalcohalide axis lies along the
perovskite [110] (``orientation`` 0: a, 1: c), the lateral shift of the chalcohalide
(fractions of its a × c cell, relative to a perovskite Pb column at the origin) and the gap
(Å, from the terminal CsX plane down to the chalcohalide's top Pb sheet).
:func:`candidate_registries` enumerates a grid of them, each with the gap at which the
shortest cation–anion contact across the interface equals the perovskite's own B–X bond, and
scores them with :func:`continuity_score` (the default scorer of the builders, geometric).
A calculator-backed scorer (single-point energies on probe models) lives in
:mod:`hetflow.workflows.registry`; the builders take any scorer as an argument.

Lengths in Å.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "Registry",
    "InterfaceCell",
    "candidate_registries",
    "continuity_score",
    "column_offsets",
    "snap_top_sheet",
    "junction_displacements",
    "apply_junction_relaxation",
]


@dataclass(frozen=True)
class Registry:
    """One interface junction (see module doc).  ``score`` is what chose it (lower = better)
    and ``scorer`` names the scoring function ("continuity" or e.g. "energy:GFN1-xTB")."""

    orientation: int
    shift_frac: tuple[float, float]
    gap: float
    snap: bool = False
    score: float | None = None
    scorer: str = "continuity"
    details: dict = field(default_factory=dict, compare=False, hash=False)
    #: the relaxed junction (:func:`junction_displacements`): per-site displacements of the atoms
    #: next to the interface, applied by the builders; None = the rigid junction
    relaxation: dict | None = field(default=None, compare=False, hash=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shift_frac"] = [float(v) for v in self.shift_frac]
        if self.relaxation is None:
            d.pop("relaxation")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Registry":
        return cls(orientation=int(d["orientation"]), shift_frac=tuple(float(v) for v in d["shift_frac"]),
                   gap=float(d["gap"]), snap=bool(d.get("snap", False)), score=d.get("score"), scorer=str(d.get("scorer", "given")),
                   details=dict(d.get("details", {})), relaxation=_relaxation_from(d.get("relaxation")))

    def replace(self, **kw) -> "Registry":
        d = self.to_dict()
        d.update(kw)
        return Registry.from_dict(d)


def _relaxation_from(rel) -> dict | None:
    """A registry's ``relaxation`` record as given (dict with a ``sites`` table) or None."""
    if rel is None:
        return None
    if not isinstance(rel, dict) or not isinstance(rel.get("sites"), (list, tuple)):
        raise ValueError("relaxation must be a dict with a 'sites' table")
    for row in rel["sites"]:
        if len(row) != 7 or not isinstance(row[0], str) or not np.isfinite(np.asarray(row[1:], float)).all():
            raise ValueError(f"relaxation site rows are [symbol, fa, fc, z, dx, dy, dz] with finite numbers, got {row!r}")
    return dict(rel)


@dataclass
class InterfaceCell:
    """One periodic in-plane cell of the junction, in the perovskite frame (x, y ∥ perovskite axes).

    ``vec_a``, ``vec_c``: the chalcohalide's strained in-plane vectors for ``orientation`` 0;
    ``pv_*``: the terminal CsX monolayer (z = 0) and the next PbX2 layer (z = +d_layer);
    ``ch_*``: the chalcohalide's top b/2 block (z ≤ 0, top Pb sheet at z = 0 before the gap),
    as fractional (fa, fc) in-plane coordinates and z."""

    a_in: float
    d_layer: float
    bx: float
    pv_symbols: list[str]
    pv_pos: np.ndarray
    ch_symbols: list[str]
    ch_frac: np.ndarray
    ch_z: np.ndarray
    charges: dict[str, int]

    def vectors(self, orientation: int) -> tuple[np.ndarray, np.ndarray]:
        va = self.a_in * np.array([1.0, 1.0, 0.0])
        vc = self.a_in * np.array([-1.0, 1.0, 0.0])
        return (va, vc) if orientation == 0 else (vc, -va)

    def chalcohalide_positions(self, reg: Registry) -> np.ndarray:
        """Cartesian positions (one cell) of the chalcohalide block for ``reg``."""
        va, vc = self.vectors(reg.orientation)
        f = self.ch_frac + np.asarray(reg.shift_frac)
        pos = f[:, :1] * va + f[:, 1:2] * vc + np.c_[np.zeros((len(f), 2)), self.ch_z - reg.gap]
        pos = snap_top_sheet(np.array(self.ch_symbols), pos, self.a_in) if reg.snap else pos
        return apply_junction_relaxation(self.ch_symbols, pos, self, reg)[0] if reg.relaxation else pos


def snap_top_sheet(syms: np.ndarray, pos: np.ndarray, a_in: float, top_tol: float = 0.3) -> np.ndarray:
    """Move the chalcohalide's top Pb sheet in plane onto the nearest perovskite Pb column
    (integer multiples of ``a_in`` from the origin column): the shared layer of the junction takes
    the perovskite's cation positions.  Other atoms stay; returns new positions (Å)."""
    out = pos.copy()
    pb = syms == "Pb"
    if not pb.any():
        return out
    top = pb & (pos[:, 2] > pos[pb, 2].max() - top_tol)
    out[top, :2] = np.round(pos[top, :2] / a_in) * a_in
    return out


def column_offsets(cell: InterfaceCell, reg: Registry, top_tol: float = 0.3) -> np.ndarray:
    """In-plane distance (Å) of each top-sheet chalcohalide Pb from the nearest perovskite cation
    column (Pb or Cs, the square net of spacing a/√2)."""
    pos = cell.chalcohalide_positions(reg)
    syms = np.array(cell.ch_symbols)
    pb = (syms == "Pb") & (cell.ch_z > cell.ch_z[syms == "Pb"].max() - top_tol)
    xy = pos[pb, :2] / cell.a_in  # perovskite fractional; columns at half-integers and integers (x+y even)
    # cation columns: Pb at integer (x, y); Cs at (x+½, y+½) → all points with 2x, 2y integers and x+y ∈ ℤ
    best = np.full(len(xy), np.inf)
    for off in ((0.0, 0.0), (0.5, 0.5)):
        d = xy - off
        d -= np.round(d)
        best = np.minimum(best, np.linalg.norm(d, axis=1))
    return best * cell.a_in


def _cross_distances(cell: InterfaceCell, reg: Registry) -> tuple[np.ndarray, np.ndarray]:
    """All perovskite–chalcohalide distances (periodic in plane) and the sign product of charges."""
    va, vc = cell.vectors(reg.orientation)
    m2 = np.array([va[:2], vc[:2]]).T
    minv = np.linalg.inv(m2)
    ch = cell.chalcohalide_positions(reg)
    d = cell.pv_pos[:, None, :] - ch[None, :, :]
    f = np.einsum("ij,pqj->pqi", minv, d[..., :2])
    f -= np.round(f)
    d[..., :2] = np.einsum("ij,pqj->pqi", m2, f)
    r = np.linalg.norm(d, axis=2)
    qp = np.sign([cell.charges[s] for s in cell.pv_symbols])
    qc = np.sign([cell.charges[s] for s in cell.ch_symbols])
    return r, qp[:, None] * qc[None, :]


def _contact_gap(cell: InterfaceCell, reg: Registry, lo: float = 1.0) -> float:
    """Smallest gap (Å, ≥ ``lo``) at which no cross-interface cation–anion pair is closer than the
    perovskite's B–X bond ``cell.bx``: for a pair at in-plane distance ρ and height difference
    h₀ + gap, that is gap ≥ √(bx² − ρ²) − h₀ (exact, no search)."""
    r, q = _cross_distances(cell, reg.replace(gap=0.0))
    ch_z = cell.ch_z
    h0 = cell.pv_pos[:, 2][:, None] - ch_z[None, :]
    rho2 = np.clip(r**2 - h0**2, 0.0, None)
    m = (q < 0) & (rho2 < cell.bx**2)
    if not m.any():
        return lo
    return round(max(lo, float(np.max(np.sqrt(cell.bx**2 - rho2[m]) - h0[m]))), 4)


def continuity_score(cell: InterfaceCell, reg: Registry) -> tuple[float, dict]:
    """Geometric score of a junction (lower = better) and its parts.

    RMS in-plane offset (Å) of the chalcohalide's top Pb from the perovskite cation columns,
    plus 10 × Σ (overlap)² of like-charged pairs closer than 4.0 Å (cation–cation; Cs–Pb is
    4.85 Å in CsPbCl3) or 3.4 Å (anion–anion), minus 0.05 per cation–anion contact of 2.6–3.4 Å."""
    off = column_offsets(cell, reg)
    r, q = _cross_distances(cell, reg)
    cat = np.array([cell.charges[s] > 0 for s in cell.pv_symbols])[:, None] & (q > 0)
    lim = np.where(q > 0, np.where(cat, 4.0, 3.4), 0.0)
    clash = float(np.sum(np.clip(lim - r, 0, None) ** 2))
    contacts = int(np.sum((q < 0) & (r >= 2.6) & (r <= 3.4)))
    rms = float(np.sqrt(np.mean(off**2))) if len(off) else 0.0
    score = rms + 10.0 * clash - 0.05 * contacts
    return score, {"column_offset_rms": rms, "column_offset_max": float(off.max()) if len(off) else 0.0,
                   "clash": clash, "contacts": contacts,
                   "shortest_cation_cation": float(r[cat].min()) if cat.any() else None}


def _shift_from_perovskite(x: float, y: float) -> tuple[float, float]:
    """Chalcohalide (fa, fc) of a lateral shift given in perovskite fractions (x, y):
    s = fa·a_in(1, 1) + fc·a_in(−1, 1) = a_in(x, y)."""
    return (0.5 * (x + y)) % 1.0, (0.5 * (y - x)) % 1.0


def candidate_registries(cell: InterfaceCell, grid: int = 12, keep: int = 8, refine: int = 4,
                         min_separation: float = 0.6, orientations: tuple[int, ...] = (0,),
                         local_step: float = 0.2) -> list[Registry]:
    """The ``keep`` best junctions by :func:`continuity_score`, best first, mutually ≥
    ``min_separation`` Å apart in plane (so an energy scorer sees distinct candidates).

    Lateral shifts are scanned on a ``grid`` × ``grid`` mesh of one perovskite cell (shifts by a
    perovskite lattice vector are the same junction), each at its contact gap, then each kept
    candidate is refined on a mesh ``refine`` times finer around it; the best one also gets four
    neighbours ``local_step`` Å away along x and y (so a scorer can place the junction inside its basin).
    Orientation 1 (chalcohalide
    c along the perovskite [110]) is the image of orientation 0 under the perovskite's 4-fold
    axis — the same periodic junction — so only 0 is scanned unless asked."""
    def evaluate(orientation: int, x: float, y: float) -> Registry:
        reg = Registry(orientation, _shift_from_perovskite(x, y), 2.0, details={})
        reg = reg.replace(gap=_contact_gap(cell, reg))
        sc, parts = continuity_score(cell, reg)
        parts["shift_perovskite"] = [round(float(x) % 1.0, 6), round(float(y) % 1.0, 6)]
        return reg.replace(score=sc, scorer="continuity", details=parts)

    coarse = [evaluate(o, x, y) for o in orientations
              for x in np.arange(grid) / grid for y in np.arange(grid) / grid]
    coarse.sort(key=lambda r: r.score)
    step = 1.0 / grid
    refined = []
    for r in coarse[: 3 * keep]:
        x0, y0 = r.details["shift_perovskite"]
        local = [evaluate(r.orientation, x0 + dx, y0 + dy)
                 for dx in np.linspace(-step, step, 2 * refine + 1) for dy in np.linspace(-step, step, 2 * refine + 1)]
        refined.append(min(local, key=lambda t: t.score))
    refined.sort(key=lambda r: r.score)
    out: list[Registry] = []
    for reg in refined:
        p = np.asarray(reg.details["shift_perovskite"])
        close = False
        for o in out:
            if o.orientation != reg.orientation:
                continue
            d = p - np.asarray(o.details["shift_perovskite"])
            d -= np.round(d)
            if np.linalg.norm(d) * cell.a_in < min_separation:
                close = True
                break
        if not close:
            out.append(reg)
        if len(out) >= keep:
            break
    x0, y0 = out[0].details["shift_perovskite"]
    d = local_step / cell.a_in
    out[1:1] = [evaluate(out[0].orientation, x0 + dx, y0 + dy) for dx, dy in ((d, 0), (-d, 0), (0, d), (0, -d))]
    keep += 4
    # fill up with junctions far from those (farthest-point sampling of the coarse mesh), so a
    # scorer also sees registries continuity would not pick
    while len(out) < keep and coarse:
        pts = np.array([o.details["shift_perovskite"] for o in out])

        def sep(r: Registry) -> float:
            d = np.asarray(r.details["shift_perovskite"])[None, :] - pts
            d -= np.round(d)
            return float(np.min(np.linalg.norm(d, axis=1)))

        far = max(coarse, key=sep)
        if sep(far) * cell.a_in < min_separation:
            break
        out.append(far)
    return out


def _site_coords(cell: InterfaceCell, reg: Registry, pos: np.ndarray) -> np.ndarray:
    """(fa, fc) ∈ [0, 1)² of Cartesian junction-frame positions in the chalcohalide's a × c cell."""
    va, vc = cell.vectors(reg.orientation)
    f = np.linalg.solve(np.array([va[:2], vc[:2]]).T, pos[:, :2].T).T
    return f - np.floor(f)


def junction_displacements(symbols, start: np.ndarray, relaxed: np.ndarray, cell: InterfaceCell, reg: Registry,
                           moved: np.ndarray, ndigits: int = 2) -> tuple[list[list], float]:
    """Per-site displacement table of a relaxed periodic junction, and its spread (Å).

    ``start``/``relaxed``: positions (Å) of a probe slab in the junction frame (x, y ∥ perovskite
    axes, origin on a perovskite Pb column, z = 0 the terminal CsX plane) before and after the
    relaxation; ``moved``: the atoms that were free.  Atoms that are images of one another under the
    a × c lattice (the probe is a supercell) are one site; the table holds each site's mean
    displacement as rows ``[symbol, fa, fc, z, dx, dy, dz]`` (fa, fc fractions of the a × c cell,
    z and d in Å).  The spread is the largest deviation of an image from its site's mean — a
    measure of how far the relaxation broke the cell's periodicity (octahedral tilts do)."""
    syms = np.asarray(symbols)
    moved = np.asarray(moved, bool)
    f = _site_coords(cell, reg, start[moved])
    z = start[moved, 2]
    d = relaxed[moved] - start[moved]
    keys: dict[tuple, list[int]] = {}
    for k, (s, fa, fc, zz) in enumerate(zip(syms[moved], f[:, 0], f[:, 1], z)):
        key = (str(s), round(float(fa) % 1.0, ndigits) % 1.0, round(float(fc) % 1.0, ndigits) % 1.0, round(float(zz), 1))
        keys.setdefault(key, []).append(k)
    rows: list[list] = []
    spread = 0.0
    for (s, _, _, _), idx in keys.items():
        mean = d[idx].mean(axis=0)
        spread = max(spread, float(np.linalg.norm(d[idx] - mean, axis=1).max()))
        fa, fc = f[idx[0]]
        rows.append([s, round(float(fa), 5), round(float(fc), 5), round(float(z[idx].mean()), 4),
                     *(round(float(v), 4) for v in mean)])
    rows.sort(key=lambda r: (-r[3], r[0], r[1], r[2]))
    return rows, spread


def apply_junction_relaxation(symbols, pos: np.ndarray, cell: InterfaceCell, reg: Registry,
                              tol: float = 0.25) -> tuple[np.ndarray, int]:
    """Positions (Å, junction frame) with ``reg.relaxation``'s site displacements added, and how many
    atoms were moved.  An atom takes the displacement of the site of its element that it sits on
    (within ``tol`` Å in plane, modulo the a × c lattice, and in z); atoms on no site (the rest of
    the model) stay where they are."""
    out = np.array(pos, float, copy=True)
    rel = reg.relaxation
    if not rel or not rel.get("sites"):
        return out, 0
    sites = rel["sites"]
    ssym = np.array([r[0] for r in sites])
    sf = np.array([[r[1], r[2]] for r in sites], float)
    sz = np.array([r[3] for r in sites], float)
    sd = np.array([r[4:7] for r in sites], float)
    va, vc = cell.vectors(reg.orientation)
    m2 = np.array([va[:2], vc[:2]]).T
    syms = np.asarray(symbols)
    f = _site_coords(cell, reg, out)
    hit = 0
    for k in range(len(out)):
        near = np.flatnonzero((ssym == syms[k]) & (np.abs(sz - out[k, 2]) < tol))
        if not len(near):
            continue
        df = f[k] - sf[near]
        df -= np.round(df)
        dist = np.linalg.norm(df @ m2.T, axis=1)
        j = int(np.argmin(dist))
        if dist[j] < tol:
            out[k] += sd[near[j]]
            hit += 1
    return out, hit
