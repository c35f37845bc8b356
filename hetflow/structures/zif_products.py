"""CsPbI3 / ZIF-62 interface products: a search over ligand exchanges, docking sites and
orientations (pure geometry, Å).

Ligand exchange at the interface (Li et al., Nat. Commun. 2023; SCIENCE.md B): an anionic
imidazolate leaves Zn and binds a surface Pb by N, the iodide it displaces binds that Zn:

    Pb–I + Zn–Im  →  Pb–Im + Zn–I        (k times, k = 1, 2, …)

A candidate is built from rigid pieces of the two (relaxed) fragments:

1. **exchanges** — k (surface site, linker) pairs: a surface site is a Pb with a terminal
   iodide pointing out of the fragment; linker l (anionic, terminal) moves onto that Pb with
   its N at 2.60 Å along the old Pb→I direction, spun about the bond to the least clash; the
   iodide takes l's place on Zn (Zn–I 2.60 Å along the old Zn→N direction);
2. **docking site** — a Pb q of the fragment near the exchanged Pb: the rest of the ZIF
   (Zn, its other linkers, the k iodides) docks on q through one of those iodides, 3.25 Å
   out along q's vacant coordination direction (a Pb–I–Zn bridge);
3. **orientation** — the I→Zn direction of that bridge (straight on, Pb–I–Zn 180°, or tilted
   by 50° at four azimuths) and the spin of the rest about it (12 steps, least clash kept).

Every candidate is scored by :func:`geometric_score` (clashes, Pb over-coordination, Zn
coordination, compactness); :func:`interface_candidates` returns the distinct ones — one per
(exchanged Pb set, docking Pb) — best first.  Elements are conserved exactly.  Energies are
not computed here: the recipe (:mod:`hetflow.recipes.zif`) pre-screens the
candidates and relaxes the best.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii, vdw_radii

from hetflow.errors import InputError, StructureError
from hetflow.structures.zif import (
    BONDS,
    PB_I_CUTOFF,
    PHASE_NAMES,
    Reaction,
    _axis_rotation,
    _rotation,
    check_conservation,
    perovskite_fragment,
    zif_fragment,
)

__all__ = [
    "BRIDGE_PB_I",
    "ExchangeSite",
    "surface_sites",
    "geometric_score",
    "interface_candidates",
    "ligand_exchange_products",
    "ligand_exchange_reaction",
]

#: Pb···I distance of the docking bridge Pb–I–Zn (Å), a long Pb–I bond
BRIDGE_PB_I = 3.25
#: tilt of the bridge's I→Zn direction from the Pb→I direction (degrees) and its azimuths
_TILTS = ((0.0, 0.0),) + tuple((50.0, a) for a in (0.0, 90.0, 180.0, 270.0))


def _vdw(numbers: np.ndarray) -> np.ndarray:
    r = vdw_radii[numbers]
    return np.where(np.isnan(r), 2.0, r)


def _limits(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """Closest allowed approach of non-bonded atoms of two rigid pieces (Å):
    max(0.8·Σ r_cov, 0.6·Σ r_vdW) — H···I 1.9 Å, C···I 2.2 Å, Pb···N 2.1 Å."""
    rc = 0.8 * (covalent_radii[za][:, None] + covalent_radii[zb][None])
    rv = 0.6 * (_vdw(za)[:, None] + _vdw(zb)[None])
    return np.maximum(rc, rv)


def _clash(pa: np.ndarray, pb: np.ndarray, lim: np.ndarray) -> float:
    """Σ max(0, limit − d)² over atom pairs of two pieces (Å²)."""
    if len(pa) == 0 or len(pb) == 0:
        return 0.0
    d = np.linalg.norm(pa[:, None] - pb[None], axis=2)
    return float(np.sum(np.clip(lim - d, 0.0, None) ** 2))


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if n < 1e-12:
        raise StructureError("zero-length direction in the interface builder")
    return v / n


def _perpendicular(v: np.ndarray) -> np.ndarray:
    a = np.array([1.0, 0, 0]) if abs(v[0]) < 0.9 else np.array([0, 1.0, 0])
    return _unit(np.cross(v, a))


# --------------------------------------------------------------------------- sites


@dataclass(frozen=True)
class ExchangeSite:
    """A surface Pb (index ``pb``) with a terminal iodide (``iodide``) pointing out of the
    fragment along ``direction`` (unit vector Pb→I)."""

    pb: int
    iodide: int
    direction: tuple[float, float, float]


def surface_sites(frag: Atoms, cutoff: float = PB_I_CUTOFF) -> list[ExchangeSite]:
    """Terminal iodides (bonded to exactly one Pb within ``cutoff`` Å) whose Pb→I bond points
    away from the fragment's centre, as :class:`ExchangeSite` (ordered by Pb, iodide)."""
    s = np.array(frag.get_chemical_symbols())
    d = frag.get_all_distances()
    pb = np.flatnonzero(s == "Pb")
    cen = frag.positions.mean(axis=0)
    out = []
    for i in np.flatnonzero(s == "I"):
        bonded = pb[d[i, pb] < cutoff]
        if len(bonded) != 1:
            continue
        p = int(bonded[0])
        v = frag.positions[i] - frag.positions[p]
        if v @ (frag.positions[i] - cen) > 0:
            out.append(ExchangeSite(p, int(i), tuple(_unit(v))))
    return sorted(out, key=lambda x: (x.pb, x.iodide))


def _vacant_direction(pos: np.ndarray, sym: np.ndarray, q: int, cen: np.ndarray, exclude: set[int]) -> np.ndarray:
    """Unit direction of Pb q's open coordination site: minus the sum of its bond unit vectors
    (I < 3.6 Å, N < 2.9 Å; atoms in ``exclude`` ignored), bent outward if it points inward."""
    d = np.linalg.norm(pos - pos[q], axis=1)
    lig = [j for j in np.flatnonzero(((sym == "I") & (d < PB_I_CUTOFF)) | ((sym == "N") & (d < 2.9)))
           if j not in exclude]
    out = pos[q] - cen
    out = _unit(out) if np.linalg.norm(out) > 1e-6 else np.array([0, 0, 1.0])
    if not lig:
        return out
    v = -np.sum([_unit(pos[j] - pos[q]) for j in lig], axis=0)
    if np.linalg.norm(v) < 0.3:
        return out
    v = _unit(v)
    if v @ out < 0:
        v = _unit(v + 1.5 * out)
    return v


# --------------------------------------------------------------------------- score


def geometric_score(atoms: Atoms, pairs: dict[str, list[tuple[int, int]]] | None = None) -> dict:
    """Geometric plausibility of a starting structure (lower is better).

    clash: Σ max(0, limit − d)² (Å²) over pairs of atoms of different rigid units that are
    not bonded (limit = max(0.8·Σr_cov, 0.6·Σr_vdW); units: the perovskite part, each
    linker, the ZIF rest — arrays ``domain`` and ``linker``).  pb_overcoordination: Σ over Pb
    of max(0, CN − 6) with I < 3.6 Å, N < 2.9 Å.  zn_coordination_deviation: Σ |CN(Zn) − 4|
    (N, I within 2.9 Å).  bond_lengths: the named bonded ``pairs`` (key "Pb-N", "Zn-I"),
    their deviation from :data:`BONDS` adds to the score.  score = 10·clash + the rest +
    0.01·radius of gyration (Å)."""
    s = np.array(atoms.get_chemical_symbols())
    z = atoms.numbers
    d = atoms.get_all_distances()
    np.fill_diagonal(d, np.inf)
    dom = np.asarray(atoms.arrays.get("domain", np.full(len(atoms), "x")))
    lk = np.asarray(atoms.arrays.get("linker", np.full(len(atoms), -1)))
    unit = np.where(dom == "perovskite", -2, lk)
    bonded = d < 1.15 * (covalent_radii[z][:, None] + covalent_radii[z][None])
    named = np.zeros_like(bonded)
    for plist in (pairs or {}).values():
        for i, j in plist:
            named[i, j] = named[j, i] = True
    mask = (unit[:, None] != unit[None]) & ~bonded & ~named
    iu = np.triu_indices(len(atoms), 1)
    lim = _limits(z, z)
    clash = float(np.sum((np.clip(lim - d, 0, None) ** 2)[iu][mask[iu]]))
    dev = 0.0
    lengths: dict[str, list[float]] = {}
    for key, plist in (pairs or {}).items():
        for i, j in plist:
            dij = float(np.linalg.norm(atoms.positions[i] - atoms.positions[j]))
            lengths.setdefault(key, []).append(dij)
            dev += abs(dij - BONDS[key])
    zn_dev = sum(abs(int(np.sum((d[k] < 2.9) & np.isin(s, ["N", "I"]))) - 4) for k in np.flatnonzero(s == "Zn"))
    over = 0
    for p in np.flatnonzero(s == "Pb"):
        cn = int(np.sum(((s == "I") & (d[p] < PB_I_CUTOFF)) | ((s == "N") & (d[p] < 2.9))))
        over += max(0, cn - 6)
    rg = float(np.sqrt(((atoms.positions - atoms.positions.mean(axis=0)) ** 2).sum(axis=1).mean()))
    score = 10.0 * clash + dev + float(zn_dev) + float(over) + 0.01 * rg
    return {"score": score, "clash": clash, "bond_deviation": dev, "zn_coordination_deviation": int(zn_dev),
            "pb_overcoordination": int(over), "radius_of_gyration": rg, "bond_lengths": lengths,
            "min_distance": float(d.min()) if len(atoms) > 1 else math.inf, "clash_free": clash < 1e-6}


# --------------------------------------------------------------------------- builder


class _Pieces:
    """Precomputed geometry of a (perovskite, ZIF) fragment pair."""

    def __init__(self, pv: Atoms, zif: Atoms, n_spin: int):
        for name, frag, dom in (("perovskite", pv, "perovskite"), ("zif", zif, "zif")):
            if "domain" not in frag.arrays or set(frag.arrays["domain"]) != {dom}:
                raise StructureError(f"{name} fragment must be labelled domain={dom!r} "
                                     "(build it with hetflow.structures.zif)")
        for key in ("role", "linker"):
            if key not in zif.arrays:
                raise StructureError(f"ZIF fragment lacks the per-atom array {key!r} (build it with zif_fragment)")
        if n_spin < 1:
            raise InputError(f"n_spin must be ≥ 1, got {n_spin}")
        self.pv, self.zif = pv, zif
        self.spins = [2 * math.pi * k / n_spin for k in range(n_spin)]
        self.ps = np.array(pv.get_chemical_symbols())
        self.zs = np.array(zif.get_chemical_symbols())
        self.cen = pv.positions.mean(axis=0)
        self.role = np.asarray(zif.arrays["role"])
        self.lk = np.asarray(zif.arrays["linker"])
        self.anionic = [int(x) for x in zif.info.get("anionic_linkers", [])]
        zn = np.flatnonzero(self.zs == "Zn")
        self.n1, self.zn_of = {}, {}
        for l in self.anionic:
            n1 = np.flatnonzero((self.lk == l) & (self.role == "N1"))
            if len(n1) == 0:
                raise StructureError(f"anionic linker {l} has no N bound to Zn")
            n1 = int(n1[np.argmin([np.min(np.linalg.norm(zif.positions[zn] - zif.positions[k], axis=1)) for k in n1])])
            self.n1[l] = n1
            self.zn_of[l] = int(zn[np.argmin(np.linalg.norm(zif.positions[zn] - zif.positions[n1], axis=1))])

    def spin_matrices(self, axis: np.ndarray) -> np.ndarray:
        """Rotation matrices (n_spin, 3, 3) about ``axis`` by each spin angle."""
        k = _unit(np.asarray(axis, dtype=float))
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        sn, cs = np.sin(self.spins)[:, None, None], np.cos(self.spins)[:, None, None]
        return np.eye(3)[None] + sn * K[None] + (1 - cs) * (K @ K)[None]

    def place_linker(self, l: int, site: ExchangeSite, others: list[tuple[np.ndarray, np.ndarray]]
                     ) -> np.ndarray:
        """Positions of linker l bound by N to site.pb, least clash with ``others``
        [(positions, numbers)] over the spins."""
        zif, pv = self.zif, self.pv
        mask = self.lk == l
        n1, zn = self.n1[l], self.zn_of[l]
        u = np.array(site.direction)
        lone = _unit(zif.positions[zn] - zif.positions[n1])
        rel = zif.positions[mask] - zif.positions[n1]
        base = _rotation(lone, -u)
        best = None
        lims = [_limits(zif.numbers[mask], zq) for _, zq in others]
        for sp in self.spins:
            p = rel @ (_axis_rotation(u, sp) @ base).T + pv.positions[site.pb] + BONDS["Pb-N"] * u
            pen = sum(_clash(p, q, lim) for (q, _), lim in zip(others, lims))
            if best is None or pen < best[0] - 1e-12:
                best = (pen, p)
        return best[1]

    def rest(self, exchanged: list[int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """ZIF atoms not in the exchanged linkers (indices) and, in the ZIF frame, the
        positions the k iodides take on Zn (one per exchanged linker)."""
        keep = np.flatnonzero(~np.isin(self.lk, exchanged))
        ipos = []
        for l in exchanged:
            zn = self.zn_of[l]
            ipos.append(self.zif.positions[zn] + BONDS["Zn-I"] * _unit(self.zif.positions[self.n1[l]] - self.zif.positions[zn]))
        return keep, np.array(ipos), [self.zn_of[l] for l in exchanged]


def _candidate(P: _Pieces, exchange: list[tuple[ExchangeSite, int]], docks: list[int]) -> list[dict]:
    """All docking variants of one exchange set: one best orientation per docking Pb."""
    pv, zif = P.pv, P.zif
    removed = {s.iodide for s, _ in exchange}
    pv_keep = np.array([k for k in range(len(pv)) if k not in removed])
    pv_part = (pv.positions[pv_keep], pv.numbers[pv_keep])
    placed: list[tuple[np.ndarray, np.ndarray]] = [pv_part]
    linkers = []
    for site, l in exchange:
        p = P.place_linker(l, site, placed)
        placed.append((p, zif.numbers[P.lk == l]))
        linkers.append(p)
    keep, ipos, zns = P.rest([l for _, l in exchange])
    rest_num = np.r_[zif.numbers[keep], np.full(len(ipos), 53)]
    rest_rel = np.vstack([zif.positions[keep], ipos])
    pos_all = pv.positions.copy()
    syms = P.ps.copy()
    out = []
    ex_pb = np.array([pv.positions[s.pb] for s, _ in exchange])
    for q in docks:
        v = _vacant_direction(pos_all, syms, q, P.cen, removed)
        x = pv.positions[q] + BRIDGE_PB_I * v
        best = None
        placed_pos = np.vstack([q_ for q_, _ in placed])
        lim = _limits(rest_num, np.concatenate([zq for _, zq in placed]))
        pp2 = np.einsum("mi,mi->m", placed_pos, placed_pos)
        for b in range(len(ipos)):
            zn_b = zns[b]
            zn_row = list(keep).index(zn_b) if zn_b in keep else None
            w = _unit(zif.positions[zn_b] - ipos[b])  # bridging iodide → its Zn, ZIF frame
            for tilt, az in _TILTS:
                if tilt:
                    perp = _axis_rotation(v, math.radians(az)) @ _perpendicular(v)
                    dvec = _axis_rotation(perp, math.radians(tilt)) @ v
                else:
                    dvec = v
                base = (rest_rel - ipos[b]) @ _rotation(w, dvec).T
                rs = np.einsum("sij,nj->sni", P.spin_matrices(dvec), base) + x  # (spin, atom, 3)
                d2 = (np.einsum("sni,sni->sn", rs, rs)[:, :, None] + pp2[None, None]
                      - 2.0 * np.einsum("sni,mi->snm", rs, placed_pos))
                d = np.sqrt(np.clip(d2, 0.0, None))
                pens = np.sum(np.clip(lim[None] - d, 0.0, None) ** 2, axis=(1, 2))
                if zn_row is not None:
                    spread = np.linalg.norm(rs[:, zn_row][:, None] - ex_pb[None], axis=2).mean(axis=1)
                else:
                    spread = np.zeros(len(rs))
                total = 10 * pens + 0.05 * np.clip(spread - 6.0, 0.0, None)
                k = int(np.argmin(total))
                if best is None or total[k] < best[0] - 1e-12:
                    best = (float(total[k]), b, tilt, az, P.spins[k], rs[k])
        out.append({"q": int(q), "penalty": best[0], "bridge": best[1], "tilt": best[2], "azimuth": best[3],
                    "spin": best[4], "rest": best[5], "linkers": linkers, "keep": keep, "n_iodide": len(ipos)})
    return out


def _assemble(P: _Pieces, exchange: list[tuple[ExchangeSite, int]], c: dict) -> Atoms:
    """Product Atoms: perovskite atoms first (indices unchanged; exchanged iodides moved onto
    Zn), then the exchanged linkers, then the ZIF rest."""
    pv, zif = P.pv, P.zif
    a = pv.copy()
    n_keep = len(c["keep"])
    iod = c["rest"][n_keep:]
    for (site, _), p in zip(exchange, iod):
        a.positions[site.iodide] = p
    parts = [a]
    link = [np.full(len(pv), -1, int)]
    for (site, l), p in zip(exchange, c["linkers"]):
        m = np.flatnonzero(P.lk == l)
        piece = zif[m]
        piece.positions = p
        parts.append(piece)
        link.append(np.full(len(m), int(l)))
    r = zif[c["keep"]]
    r.positions = c["rest"][:n_keep]
    parts.append(r)
    link.append(np.asarray(zif.arrays["linker"])[c["keep"]])
    for part in parts:
        for name in list(part.arrays):
            if name not in ("numbers", "positions", "domain", "role"):
                part.set_array(name, None)
        part.set_array("role", np.asarray(part.arrays["role"]).astype("<U3"))
        part.info = {}
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    out.set_array("linker", np.concatenate(link))
    return out


def interface_candidates(perovskite: Atoms, zif: Atoms, n_exchange: int | tuple[int, ...] = (1, 2),
                         n_spin: int = 12, max_dock_distance: float = 9.0, max_pair_distance: float = 9.0,
                         max_sites: int | None = None) -> list[Atoms]:
    """Ligand-exchange interface candidates of a perovskite and a ZIF fragment, best
    geometric score first, one per (number of exchanges, exchanged Pb, docking Pb).

    n_exchange: how many Pb–I/Zn–Im pairs are exchanged (each ≤ the ZIF's anionic terminal
    linkers).  Exchange sets of k ≥ 2 use distinct Pb no farther apart than
    ``max_pair_distance`` Å; docking Pb lie within ``max_dock_distance`` Å of an exchanged Pb.
    Each product's info: ``n_exchange``, ``exchanges`` [{pb, iodide, linker}], ``pb_n``
    [(Pb, N)] and ``zn_i`` [(Zn, I)] index pairs in the product, ``dock_pb``,
    ``bridging_iodide``, ``bridge_tilt_deg``, ``bridge_azimuth_deg``, ``spin_deg``, ``score``,
    ``charge``, ``candidate`` (a name), ``perovskite_phase``."""
    ks = (n_exchange,) if isinstance(n_exchange, int) else tuple(n_exchange)
    if not ks or any(int(k) < 1 for k in ks):
        raise InputError(f"n_exchange must be ≥ 1, got {n_exchange}")
    P = _Pieces(perovskite, zif, n_spin)
    if not P.anionic:
        raise InputError("the ZIF fragment has no anionic terminal imidazolate to exchange "
                         "(build it with a lower charge, e.g. zif_fragment(charge=0))")
    if max(ks) > len(P.anionic):
        raise InputError(f"n_exchange {max(ks)} exceeds the ZIF fragment's {len(P.anionic)} anionic terminal linkers")
    sites = surface_sites(perovskite)
    if max_sites:
        sites = sites[:max_sites]
    if not sites:
        raise StructureError("the perovskite fragment has no outward terminal iodide (surface Pb–I) site")
    pbs = np.flatnonzero(P.ps == "Pb")
    pos = perovskite.positions
    products = []
    for k in sorted(set(int(x) for x in ks)):
        seen: dict[tuple, tuple[float, Atoms]] = {}
        for combo in itertools.combinations(sites, k):
            pb_set = [s.pb for s in combo]
            if len(set(pb_set)) < k:
                continue
            if k > 1 and max(np.linalg.norm(pos[a] - pos[b]) for a, b in itertools.combinations(pb_set, 2)) > max_pair_distance:
                continue
            docks = [int(q) for q in pbs if min(np.linalg.norm(pos[q] - pos[p]) for p in pb_set) <= max_dock_distance]
            for links in itertools.permutations(P.anionic, k):
                exchange = list(zip(combo, links))
                for c in _candidate(P, exchange, docks):
                    key = (k, tuple(sorted(pb_set)), c["q"])
                    if key in seen and seen[key][0] <= c["penalty"]:
                        continue
                    seen[key] = (c["penalty"], (exchange, c))
        for key, (_, (exchange, c)) in seen.items():
            prod = _assemble(P, exchange, c)
            n_pv = len(perovskite)
            lens = [int((P.lk == l).sum()) for _, l in exchange]
            starts = np.cumsum([n_pv] + lens)
            pb_n = [(s.pb, int(starts[j] + np.flatnonzero(np.flatnonzero(P.lk == l) == P.n1[l])[0]))
                    for j, (s, l) in enumerate(exchange)]
            rest_start = int(starts[-1])
            keep = list(c["keep"])
            zn_i = [(rest_start + keep.index(P.zn_of[l]), s.iodide) for s, l in exchange]
            sc = geometric_score(prod, {"Pb-N": pb_n, "Zn-I": zn_i})
            name = (f"k{k}-pb{'.'.join(str(s.pb) for s, _ in exchange)}-I{'.'.join(str(s.iodide) for s, _ in exchange)}"
                    f"-dock{c['q']}")
            prod.info.update(
                kind="zif_interface_candidate", candidate=name, n_exchange=k,
                exchanges=[{"pb": s.pb, "iodide": s.iodide, "linker": int(l)} for s, l in exchange],
                pb_n=pb_n, zn_i=zn_i, dock_pb=c["q"], bridging_iodide=exchange[c["bridge"]][0].iodide,
                bridge_tilt_deg=float(c["tilt"]), bridge_azimuth_deg=float(c["azimuth"]),
                spin_deg=float(math.degrees(c["spin"])), score=sc,
                perovskite_phase=perovskite.info.get("phase"),
                charge=int(perovskite.info.get("charge", 0)) + int(zif.info.get("charge", 0)),
                reaction=f"{k} × (Pb-I + Zn-Im -> Pb-Im + Zn-I)")
            check_conservation([perovskite, zif], [prod])
            products.append(prod)
    products.sort(key=lambda a: (a.info["score"]["score"], a.info["candidate"]))
    for r, a in enumerate(products):
        a.info["rank"] = r
    return products


def ligand_exchange_products(perovskite: Atoms, zif: Atoms, max_products: int = 5,
                             n_exchange: int | tuple[int, ...] = 1, **kw) -> list[Atoms]:
    """The ``max_products`` best-scored :func:`interface_candidates` (ranks renumbered)."""
    if max_products < 1:
        raise InputError(f"max_products must be ≥ 1, got {max_products}")
    out = interface_candidates(perovskite, zif, n_exchange=n_exchange, **kw)[:max_products]
    for r, a in enumerate(out):
        a.info["rank"] = r
    return out


def ligand_exchange_reaction(phase: str = "alpha", n_units: int = 8, n_zn: int = 1, zif_charge: int = 0,
                             n_bim: int = 0, max_products: int = 3, n_exchange: int | tuple[int, ...] = 1
                             ) -> list[Reaction]:
    """CsPbI3 fragment + ZIF fragment (neutral by default) → the best-scored ligand-exchange
    products, one :class:`Reaction` per product (element and charge balance checked)."""
    pv = perovskite_fragment(phase, n_units)
    zf = zif_fragment(n_zn, zif_charge, n_bim)
    out = []
    for prod in ligand_exchange_products(pv, zf, max_products=max_products, n_exchange=n_exchange):
        name = f"{PHASE_NAMES.get(phase, phase)}+ZIF-{prod.info['candidate']}"
        r = Reaction(name, [pv, zf], [prod], {"rank": prod.info["rank"], "score": prod.info["score"]})
        r.check()
        out.append(r)
    return out
