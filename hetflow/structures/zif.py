"""CsPbI3 / ZIF-62 cluster models and ligand-exchange products (Li et al., Nat. Commun. 2023).

Three builders, all pure geometry (Å), all labelled with ``atoms.arrays["domain"]``
("perovskite" / "zif") — in a product each atom keeps the domain it came from:

* :func:`perovskite_fragment` — a charge-neutral Cs_n Pb_n I_3n fragment (n = 8 or 9 by
  default 8) cut from α (cubic) or δ (orthorhombic) CsPbI3 of the phase registry: the n Pb
  nearest a central Cs, the 3n iodides bonded to them (bridging ones first), the n Cs with
  the most iodide contacts.
* :func:`zif_fragment` — Zn tetrahedrally bound to imidazolate N (Zn–N 1.99 Å), ring
  geometry from the gas-phase imidazole bond lengths (PHASES.md), open ends capped with H
  (neutral imidazole) except as many as the requested charge needs (anionic imidazolate,
  free N); one Zn (Zn L4) or two Zn bridged by one imidazolate (Zn2 L7); ``n_bim`` terminal
  linkers can be benzimidazolate.
* :func:`ligand_exchange_products` — products of Pb–I + Zn–Im → Pb–Im + Zn–I: a terminal
  anionic imidazolate leaves Zn and binds a surface Pb by N (Pb–N 2.60 Å) in place of a
  terminal iodide; the iodide binds the Zn in the vacated tetrahedral site (Zn–I 2.60 Å)
  and the ZIF part docks on another surface Pb through that iodide (bridging Pb–I–Zn).
  All candidate (Pb/I site, linker, dock site, spin) combinations are scored by
  :func:`geometric_score` (clashes + bond-length and coordination checks) and returned
  best first — before any calculation.  Products conserve every element exactly.

Reaction energy: ΔE = E(product) − E(perovskite fragment) − E(ZIF fragment).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

from hetflow import validate
from hetflow.errors import InputError, StructureError

__all__ = [
    "PHASE_NAMES",
    "BONDS",
    "imidazole",
    "perovskite_fragment",
    "zif_fragment",
    "Reaction",
    "check_conservation",
]

#: CLI phase keyword → registry name
PHASE_NAMES = {"alpha": "CsPbI3-alpha", "delta": "CsPbI3-delta", "gamma": "CsPbI3-gamma"}

#: target bond lengths (Å): Zn–N (EXAFS 1.98, PHASES.md 1.98–2.00), Pb–N / Zn–I starting values
BONDS = {"Zn-N": 1.99, "Pb-N": 2.60, "Zn-I": 2.60, "Pb-I": 3.20, "C-H": 1.08, "N-H": 1.01, "CC_benzo": 1.39}

#: imidazole ring bond lengths (Å), gas phase (PHASES.md): N1–C2, C2–N3, N3–C4, C4–C5, C5–N1
_RING_BONDS = (1.36, 1.32, 1.38, 1.36, 1.37)
_RING = ("N", "C", "N", "C", "C")  # N1 C2 N3 C4 C5


# --------------------------------------------------------------------------- imidazole


def _ring_2d() -> np.ndarray:
    """Planar five-ring N1 C2 N3 C4 C5 (2-D, Å) with the published bond lengths, C2 on +y."""
    from scipy.optimize import least_squares

    ang = np.pi / 2 + 2 * np.pi * np.arange(5) / 5
    mean = float(np.mean(_RING_BONDS))
    r0 = mean / (2 * math.sin(math.pi / 5))
    # order around the ring: C2 at top; N1, C2, N3, C4, C5 consecutive
    start = np.roll(np.c_[np.cos(ang), np.sin(ang)] * r0, 1, axis=0)
    diag0 = mean * (1 + math.sqrt(5)) / 2

    def resid(x):
        p = x.reshape(5, 2)
        r = [np.linalg.norm(p[i] - p[(i + 1) % 5]) - _RING_BONDS[i] for i in range(5)]
        r += [0.1 * (np.linalg.norm(p[i] - p[(i + 2) % 5]) - diag0) for i in range(5)]
        return r

    p = least_squares(resid, start.ravel(), xtol=1e-12, ftol=1e-12).x.reshape(5, 2)
    p -= p.mean(axis=0)
    # rotate so that C2 (index 1) lies on +y
    t = math.atan2(p[1, 0], p[1, 1])
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return p @ rot.T


def _exterior(p: np.ndarray, i: int) -> np.ndarray:
    """Unit exterior bisector at ring atom i (direction of its H or lone pair)."""
    a, b = p[(i - 1) % 5] - p[i], p[(i + 1) % 5] - p[i]
    v = -(a / np.linalg.norm(a) + b / np.linalg.norm(b))
    return v / np.linalg.norm(v)


def imidazole(kind: str = "Im", cap: bool = False) -> tuple[Atoms, dict]:
    """One linker in a local frame: ring in the xy plane, N1 at the origin, its lone pair
    (the Zn–N direction) along −y.  kind "Im" (imidazolate) or "bIm" (benzimidazolate).
    cap=True puts H on N3 (neutral imidazole).  Returns (atoms, index map with "N1", "N3")."""
    if kind not in ("Im", "bIm"):
        raise InputError(f"linker must be 'Im' or 'bIm', got {kind!r}")
    p2 = _ring_2d()
    p = np.c_[p2, np.zeros(5)]
    syms = list(_RING)
    pos = [x for x in p]
    # hydrogens on C2, and C4/C5 for Im; the benzo ring replaces C4/C5 hydrogens for bIm
    h_on = [1] if kind == "bIm" else [1, 3, 4]
    for i in h_on:
        syms.append("H")
        pos.append(p[i] + BONDS["C-H"] * np.r_[_exterior(p2, i), 0])
    if kind == "bIm":
        c4, c5 = p[3], p[4]
        side = np.linalg.norm(c4 - c5)
        mid = 0.5 * (c4 + c5)
        out = mid - p.mean(axis=0)
        out /= np.linalg.norm(out)
        centre = mid + out * side * math.sqrt(3) / 2
        # hexagon vertices: C4, C5 and four more, 60° steps around the centre
        v0 = c5 - centre
        hexa = []
        for k in range(6):
            t = math.radians(60 * k)
            rot = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
            hexa.append(centre + rot @ v0)
        # order so that the first is C5; pick the 4 vertices that are not C4/C5
        new = [h for h in hexa if min(np.linalg.norm(h - c4), np.linalg.norm(h - c5)) > 0.1]
        for h in new:
            syms.append("C")
            pos.append(h)
            d = (h - centre) / np.linalg.norm(h - centre)
            syms.append("H")
            pos.append(h + BONDS["C-H"] * d)
    if cap:
        syms.append("H")
        pos.append(p[2] + BONDS["N-H"] * np.r_[_exterior(p2, 2), 0])
    pos = np.array(pos)
    # frame: N1 at origin, lone pair of N1 along −y
    lp = np.r_[_exterior(p2, 0), 0]
    pos -= pos[0]
    t = -math.pi / 2 - math.atan2(lp[1], lp[0])  # rotate lp onto −y
    rot = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    pos = pos @ rot.T
    at = Atoms(syms, positions=pos)
    return at, {"N1": 0, "N3": 2}


def _rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix taking unit vector a onto unit vector b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if np.linalg.norm(v) < 1e-10:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
        perp /= np.linalg.norm(perp)
        return 2 * np.outer(perp, perp) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx * (1 / (1 + c))


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    return np.array([
        [c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
        [y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s],
        [z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)],
    ])


def _place_linker(lig: Atoms, n_pos: np.ndarray, bond_dir: np.ndarray, spin: float) -> np.ndarray:
    """Positions of a linker whose N1 sits at ``n_pos`` with its lone pair pointing along
    −bond_dir (towards the metal), spun by ``spin`` rad about the bond."""
    lp = np.array([0.0, -1.0, 0.0])
    rot = _axis_rotation(bond_dir, spin) @ _rotation(lp, -bond_dir)
    return lig.positions @ rot.T + n_pos


# --------------------------------------------------------------------------- clash helpers


def _radii(atoms: Atoms) -> np.ndarray:
    return covalent_radii[atoms.numbers]


def _clash_penalty(pa, ra, pb, rb, scale: float = 1.0) -> float:
    """Σ max(0, scale·(r_i + r_j) − d_ij)² between two groups (Å²)."""
    if len(pa) == 0 or len(pb) == 0:
        return 0.0
    d = np.linalg.norm(pa[:, None] - pb[None], axis=2)
    lim = scale * (ra[:, None] + rb[None])
    return float(np.sum(np.clip(lim - d, 0, None) ** 2))


# --------------------------------------------------------------------------- ZIF fragment


def _tetra_dirs() -> np.ndarray:
    return np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) / math.sqrt(3)


def zif_fragment(n_zn: int = 1, charge: int = 0, n_bim: int = 0) -> Atoms:
    """A ZIF-62 cluster fragment: ``n_zn`` = 1 (Zn L4) or 2 (Zn2 L7, one bridging Im).

    Zn is tetrahedral, Zn–N = 1.99 Å.  Terminal linkers are neutral imidazoles (N3–H) except
    the anionic ones needed for the requested formal ``charge`` (e): 1 Zn → −2 … +2,
    2 Zn → −3 … +3 (the bridging Im is always anionic).  ``n_bim`` terminal linkers are
    benzimidazole(ate) (ZIF-62 is Zn(Im)1.95(bIm)0.05).

    Labels: ``domain`` "zif"; ``role`` "Zn", "N1" (N bound to Zn), "N3", "C", "H";
    ``linker`` (int, −1 for Zn); ``bridging`` (bool); info ``anionic_linkers``,
    ``terminal_linkers``, ``charge``.
    """
    n_zn = validate.check_size("n_zn", n_zn)
    n_bim = validate.check_size("n_bim", n_bim)
    n_term = 4 if n_zn == 1 else 6
    q_max = 2 * n_zn - (1 if n_zn == 2 else 0)
    n_anion = q_max - int(charge)
    if not 0 <= n_anion <= n_term:
        raise InputError(f"charge {charge} impossible for a Zn{n_zn} fragment: allowed {q_max - n_term} … {q_max}")
    if not 0 <= n_bim <= n_term:
        raise InputError(f"n_bim must be 0 … {n_term}, got {n_bim}")
    syms: list[str] = []
    pos: list[np.ndarray] = []
    role: list[str] = []
    linker: list[int] = []
    bridging: list[bool] = []
    zn_pos: list[np.ndarray] = []
    open_dirs: list[list[np.ndarray]] = []
    lid = 0
    if n_zn == 1:
        zn_pos.append(np.zeros(3))
        open_dirs.append(list(_tetra_dirs()))
    else:
        # bridging Im in the xy plane (ring frame of _ring_2d, C2 on +y), H on C2, C4, C5
        p2 = _ring_2d()
        bp = np.c_[p2, np.zeros(5)]
        ring_syms = list(_RING) + ["H", "H", "H"]
        ring_pos = [*bp, *(bp[i] + BONDS["C-H"] * np.r_[_exterior(p2, i), 0] for i in (1, 3, 4))]
        for k, (sym, p) in enumerate(zip(ring_syms, ring_pos)):
            syms.append(sym)
            pos.append(np.asarray(p, float))
            role.append("N1" if k in (0, 2) else sym)  # both N of the bridge bind Zn
            linker.append(lid)
            bridging.append(True)
        lid += 1
        for ni in (0, 2):
            d = np.r_[_exterior(p2, ni), 0]
            z = bp[ni] + BONDS["Zn-N"] * d
            zn_pos.append(z)
            # tetrahedral frame with one vertex towards the bridging N, spun about the Zn–N
            # axis so that the three open N sites stay farthest from the ring
            base = _tetra_dirs() @ _rotation(_tetra_dirs()[0], -d).T
            best = None
            for psi in np.radians(np.arange(0, 120, 5)):
                dirs = base[1:] @ _axis_rotation(d, psi).T
                npos = z + 2.0 * BONDS["Zn-N"] * dirs  # a point one linker out
                dmin = np.linalg.norm(npos[:, None] - np.array(pos)[None], axis=2).min()
                if best is None or dmin > best[0] + 1e-9:
                    best = (dmin, list(dirs))
            open_dirs.append(best[1])
    for z in zn_pos:
        syms.append("Zn")
        pos.append(z)
        role.append("Zn")
        linker.append(-1)
        bridging.append(False)
    # terminal linkers: anionic ones spread over the list, bIm last
    kinds = ["Im"] * n_term
    for k in range(n_bim):
        kinds[n_term - 1 - k] = "bIm"
    anionic = set(np.linspace(0, n_term - 1, n_anion).round().astype(int).tolist()) if n_anion else set()
    while len(anionic) < n_anion:
        anionic.add(min(set(range(n_term)) - anionic))
    t = 0
    for zi, dirs in enumerate(open_dirs):
        for d in dirs:
            lig, idx = imidazole(kinds[t], cap=t not in anionic)
            n_at = zn_pos[zi] + BONDS["Zn-N"] * d
            best = None
            placed = np.array(pos)
            rad_placed = _vdw(Atoms(syms))
            for spin in np.radians(np.arange(0, 360, 10)):
                pp = _place_linker(lig, n_at, d, spin)
                pen = _clash_penalty(pp[1:], _vdw(lig)[1:], placed, rad_placed, _VDW_SCALE)
                if best is None or pen < best[0] - 1e-9:
                    best = (pen, pp)
            for k, (s, p) in enumerate(zip(lig.get_chemical_symbols(), best[1])):
                syms.append(s)
                pos.append(p)
                role.append("N1" if k == idx["N1"] else "N3" if k == idx["N3"] else s)
                linker.append(lid)
                bridging.append(False)
            lid += 1
            t += 1
    at = Atoms(syms, positions=np.array(pos))
    at.set_array("domain", np.full(len(at), "zif", dtype="<U16"))
    at.set_array("role", np.array(role, dtype="<U3"))
    at.set_array("linker", np.array(linker, int))
    at.set_array("bridging", np.array(bridging, bool))
    term = sorted({linker[i] for i in range(len(at)) if linker[i] >= 0 and not bridging[i]})
    an_ids = [term[i] for i in sorted(anionic)]
    at.info.update(kind="zif_fragment", n_zn=n_zn, charge=int(charge), n_bim=int(n_bim),
                   terminal_linkers=term, anionic_linkers=an_ids)
    _check_no_clash(at, "ZIF fragment")
    return at


def _vdw(atoms: Atoms) -> np.ndarray:
    from ase.data import vdw_radii

    r = vdw_radii[atoms.numbers]
    return np.where(np.isnan(r), 2.0, r)


#: atoms of different rigid units closer than this × (r_vdW,i + r_vdW,j) clash
_VDW_SCALE = 0.6


def _check_no_clash(at: Atoms, what: str) -> None:
    """Raise StructureError if two atoms not covalently bonded (d > 1.2·Σr_cov) are closer
    than 0.6·Σr_vdW (H···H < 1.44 Å, C···C < 2.04 Å)."""
    d = at.get_all_distances()
    np.fill_diagonal(d, np.inf)
    rc, rv = _radii(at), _vdw(at)
    bonded = d < 1.2 * (rc[:, None] + rc[None])
    # 1–3 pairs inside one linker are closer than the vdW limit by construction
    lk = at.arrays.get("linker", np.full(len(at), -1))
    same = (lk[:, None] == lk[None]) & (lk[:, None] >= 0)
    bad = np.argwhere(~bonded & ~same & (d < _VDW_SCALE * (rv[:, None] + rv[None])))
    if len(bad):
        i, j = bad[0]
        raise StructureError(f"{what}: atoms {at[i].symbol}{i} and {at[j].symbol}{j} clash at {d[i, j]:.2f} Å")


# --------------------------------------------------------------------------- perovskite fragment

#: Pb–I bond cutoff of the fragment builder (Å): bulk Pb–I 3.05–3.35 Å in α, γ, δ
PB_I_CUTOFF = 3.6
#: Cs–I contact cutoff (Å) used to pick the Cs of a fragment (α Cs–I 4.45 Å)
CS_I_CONTACT = 4.6


def _select_iodides(m: np.ndarray, n_iodides: int, dist: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """Choose ``n_iodides`` rows of the iodide × Pb bond matrix ``m`` that maximise first the
    smallest Pb coordination, then the total (mixed-integer program, exact); ties go to the
    iodides nearest the centre (``dist``).  Returns (min CN, total CN, chosen mask)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    nc, npb = m.shape
    if nc < n_iodides:
        return None
    w = 1e-3 * (1.0 - dist / (dist.max() + 1e-9))
    c = np.r_[-(m.sum(axis=1) + w), -1000.0]  # maximise 1000·t + Σ CN (+ tiny centrality)
    rows = [np.r_[np.ones(nc), 0.0]] + [np.r_[m[:, j], -1.0] for j in range(npb)]
    lb = [n_iodides] + [0] * npb
    ub = [n_iodides] + [np.inf] * npb
    res = milp(c, constraints=LinearConstraint(np.array(rows), lb, ub), integrality=np.ones(nc + 1),
               bounds=Bounds(np.zeros(nc + 1), np.r_[np.ones(nc), 6.0]))
    if res.x is None:
        return None
    x = res.x[:nc].round().astype(bool)
    cn = m[x].sum(axis=0)
    return int(cn.min()), int(cn.sum()), x


def perovskite_fragment(phase: str = "alpha", n_units: int = 8, seed: int = 0, trials: int = 24) -> Atoms:
    """A charge-neutral Cs_n Pb_n I_3n surface fragment of CsPbI3 (``phase`` "alpha", "delta",
    "gamma" or a registry name) with ``n_units`` = n formula units (8 or 9 as in Li et al.;
    2 … 27 accepted), cut so that its Pb are as highly coordinated as the phase allows.

    1. Pb set: compact clusters of n Pb grown in the bulk from the Pb nearest the centre,
       each step adding the Pb that shares most iodides with the cluster (greedy, plus
       ``trials`` seeded randomised growths).
    2. Iodides: the 3n of the iodides bonded to those Pb (Pb–I < 3.6 Å) that maximise the
       smallest Pb–I coordination, then the total (exact mixed-integer program).  The best
       (min CN, total CN, compactness) over all Pb sets is kept.
    3. Cs: the n Cs with most contacts (< 4.6 Å) to those iodides, nearest the centre first.

    In corner-sharing α every iodide bridges at most two Pb, so the Pb–I bonds of a fragment
    number 3n + (bridging iodides) ≤ 3n + (Pb–Pb edges of n cubic-lattice sites): 36 for
    n = 8 (a 2×2×2 cube, mean 4.5) — α allows a smallest coordination of 4; edge-sharing δ
    reaches 5 for every Pb.  Labels: ``domain`` "perovskite", ``role`` A/B/X,
    ``pb_neighbours`` (for iodides: bonded Pb), ``pb_coordination`` (for Pb: bonded I);
    info ``min_pb_coordination``, ``pb_i_bonds``, ``bridging_iodides``.
    """
    from hetflow.structures.phases import get_phase

    name = PHASE_NAMES.get(phase, phase)
    n = validate.check_size("n_units", n_units)
    trials = validate.check_size("trials", trials)
    bulk = get_phase(name)
    if set(bulk.get_chemical_symbols()) != {"Cs", "Pb", "I"}:
        raise InputError(f"phase {name!r} is not CsPbI3 (elements {sorted(set(bulk.get_chemical_symbols()))})")
    reps = tuple(int(max(2, math.ceil(26.0 / L))) for L in bulk.cell.lengths())
    sc = bulk.repeat(reps)
    s = np.array(sc.get_chemical_symbols())
    pos = sc.positions
    pb, io, cs = (np.flatnonzero(s == e) for e in ("Pb", "I", "Cs"))
    bond = np.linalg.norm(pos[io][:, None] - pos[pb][None], axis=2) < PB_I_CUTOFF  # iodide × Pb
    share = bond.T.astype(int) @ bond.astype(int)
    np.fill_diagonal(share, 0)
    centre = sc.cell.sum(axis=0) / 2
    rng = np.random.default_rng(seed)
    seeds = np.argsort(np.linalg.norm(pos[pb] - centre, axis=1), kind="stable")[:4]
    tried: set[tuple[int, ...]] = set()
    best = None
    for t in range(len(seeds) * (1 + trials // max(1, len(seeds)))):
        sel = [int(seeds[t % len(seeds)])]
        greedy = t < len(seeds)
        while len(sel) < n:
            gain = share[:, sel].sum(axis=1).astype(float)
            gain[sel] = -1.0
            if greedy:
                d = np.linalg.norm(pos[pb] - pos[pb[sel]].mean(axis=0), axis=1).round(3)
                k = int(np.lexsort((np.arange(len(pb)), d, -gain))[0])
            else:
                ok = np.flatnonzero(gain > 0)
                p = np.exp(gain[ok] - gain[ok].max())
                k = int(rng.choice(ok, p=p / p.sum()))
            sel.append(k)
        key = tuple(sorted(sel))
        if key in tried:
            continue
        tried.add(key)
        cand = np.flatnonzero(bond[:, key].any(axis=1))
        cen = pos[pb[list(key)]].mean(axis=0)
        got = _select_iodides(bond[np.ix_(cand, key)].astype(int), 3 * n, np.linalg.norm(pos[io[cand]] - cen, axis=1))
        if got is None:
            continue
        rg = float(np.linalg.norm(pos[pb[list(key)]] - cen, axis=1).mean())
        rank = (got[0], got[1], -round(rg, 3))
        if best is None or rank > best[0]:
            best = (rank, key, cand[got[2]])
    if best is None:
        raise StructureError(f"no {n}-unit fragment of {name} has 3n iodides bonded to its Pb")
    (min_cn, n_bonds, _), key, chosen_i = best
    chosen_pb = pb[list(key)]
    chosen_i = io[chosen_i]
    contacts = (np.linalg.norm(pos[cs][:, None] - pos[chosen_i][None], axis=2) < CS_I_CONTACT).sum(axis=1)
    cen = pos[chosen_pb].mean(axis=0)
    dcs = np.linalg.norm(pos[cs] - cen, axis=1).round(3)
    chosen_cs = cs[np.lexsort((cs, dcs, -contacts))[:n]]
    frag = sc[np.concatenate([chosen_cs, chosen_pb, chosen_i])]
    frag.pbc = False
    frag.set_cell(None)
    frag.positions -= frag.positions.mean(axis=0)
    fs = np.array(frag.get_chemical_symbols())
    frag.set_array("domain", np.full(len(frag), "perovskite", dtype="<U16"))
    frag.set_array("role", np.where(fs == "Cs", "A", np.where(fs == "Pb", "B", "X")).astype("<U3"))
    nb = pb_iodide_bonds(frag)
    frag.set_array("pb_neighbours", _per_atom(frag, nb, "I"))
    frag.set_array("pb_coordination", _per_atom(frag, nb, "Pb"))
    d_pbi = float(np.linalg.norm(pos[pb][:, None] - pos[io][None], axis=2).min())
    frag.info.update(kind="perovskite_fragment", phase=name, n_units=n, charge=0, d_pb_i=d_pbi,
                     min_pb_coordination=int(min_cn), pb_i_bonds=int(n_bonds),
                     bridging_iodides=int((_per_atom(frag, nb, "I")[fs == "I"] >= 2).sum()))
    return frag


def pb_iodide_bonds(frag: Atoms, cutoff: float = PB_I_CUTOFF) -> np.ndarray:
    """Boolean (n_atoms × n_atoms) matrix of Pb–I bonds (< ``cutoff`` Å) of a finite model."""
    s = np.array(frag.get_chemical_symbols())
    d = frag.get_all_distances()
    pbm, im = s == "Pb", s == "I"
    return (d < cutoff) & ((pbm[:, None] & im[None]) | (im[:, None] & pbm[None]))


def _per_atom(frag: Atoms, bonds: np.ndarray, element: str) -> np.ndarray:
    s = np.array(frag.get_chemical_symbols())
    return np.where(s == element, bonds.sum(axis=1), 0).astype(int)


def pb_coordination(atoms: Atoms, i_cutoff: float = PB_I_CUTOFF, n_cutoff: float = 2.9) -> dict[int, int]:
    """Pb index → number of I (< ``i_cutoff`` Å) and N (< ``n_cutoff`` Å) around it."""
    s = np.array(atoms.get_chemical_symbols())
    d = atoms.get_all_distances()
    return {int(p): int(np.sum(((s == "I") & (d[p] < i_cutoff)) | ((s == "N") & (d[p] < n_cutoff))))
            for p in np.flatnonzero(s == "Pb")}


# --------------------------------------------------------------------------- reactions


def check_conservation(reactants: list[Atoms], products: list[Atoms]) -> Counter:
    """Raise StructureError unless reactants and products hold exactly the same atoms."""
    cr = Counter(s for a in reactants for s in a.get_chemical_symbols())
    cp = Counter(s for a in products for s in a.get_chemical_symbols())
    if cr != cp:
        diff = dict((cr - cp) + (cp - cr))
        raise StructureError(f"reaction does not conserve elements: difference {diff}")
    return cr


def _charge(a: Atoms) -> int:
    return int(a.info.get("charge", 0))


@dataclass
class Reaction:
    """A reaction between cluster models: ΔE = Σ E(products) − Σ E(reactants) (eV).

    Every species carries its total charge in ``info["charge"]`` (e); :meth:`check` raises
    unless elements and charge balance.  ``charge_note`` says how a charged species is
    treated (no counter-ion: the charged fragment's energy in vacuum enters as is)."""

    name: str
    reactants: list[Atoms]
    products: list[Atoms]
    info: dict = field(default_factory=dict)

    def stoichiometry(self) -> dict[str, int]:
        return dict(check_conservation(self.reactants, self.products))

    @property
    def charges(self) -> tuple[list[int], list[int]]:
        return [_charge(a) for a in self.reactants], [_charge(a) for a in self.products]

    def check(self) -> dict[str, int]:
        """Element and charge balance; returns the stoichiometry."""
        st = self.stoichiometry()
        qr, qp = self.charges
        if sum(qr) != sum(qp):
            raise StructureError(f"reaction {self.name} does not conserve charge: reactants {qr}, products {qp}")
        return st

    @property
    def charge_note(self) -> str:
        qr, qp = self.charges
        if not any(qr) and not any(qp):
            return "all species neutral"
        return (f"charged species without counter-ion (reactant charges {qr}, product charges {qp}); "
                "energies are those of the charged clusters in vacuum")
