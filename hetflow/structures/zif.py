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

from hetflow.errors import InputError, StructureError

__all__ = [
    "PHASE_NAMES",
    "BONDS",
    "imidazole",
    "perovskite_fragment",
    "zif_fragment",
    "geometric_score",
    "ligand_exchange_products",
    "Reaction",
    "ligand_exchange_reaction",
    "check_conservation",
]

#: CLI phase keyword → registry name
PHASE_NAMES = {"alpha": "CsPbI3-alpha", "delta": "CsPbI3-delta"}

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
    if n_zn not in (1, 2):
        raise InputError(f"n_zn must be 1 or 2, got {n_zn}")
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


def perovskite_fragment(phase: str = "alpha", n_units: int = 8) -> Atoms:
    """A charge-neutral Cs_n Pb_n I_3n fragment of CsPbI3 (``phase`` "alpha" or "delta", or a
    registry name) with ``n_units`` formula units (8 or 9 recommended; 2 … 27 accepted).

    The n Pb nearest a central Cs, the 3n iodides bonded to them (most Pb neighbours first,
    then nearest the centre), the n Cs with most iodide contacts (< 4.6 Å).  Labels:
    ``domain`` "perovskite", ``role`` A/B/X, ``pb_neighbours`` (int, for iodides: Pb within
    1.25 × the shortest Pb–I).
    """
    from hetflow.structures.phases import get_phase

    name = PHASE_NAMES.get(phase, phase)
    if not 2 <= int(n_units) <= 27:
        raise InputError(f"n_units must be 2 … 27 formula units, got {n_units}")
    n = int(n_units)
    bulk = get_phase(name)
    syms0 = set(bulk.get_chemical_symbols())
    if syms0 != {"Cs", "Pb", "I"}:
        raise InputError(f"phase {name!r} is not CsPbI3 (elements {sorted(syms0)})")
    reps = tuple(int(max(2, math.ceil(22.0 / L))) for L in bulk.cell.lengths())
    sc = bulk.repeat(reps)
    s = np.array(sc.get_chemical_symbols())
    pos = sc.positions
    centre_box = sc.cell.sum(axis=0) / 2
    cs = np.flatnonzero(s == "Cs")
    c0 = pos[cs[np.argmin(np.linalg.norm(pos[cs] - centre_box, axis=1))]]
    pb = np.flatnonzero(s == "Pb")
    dpb = np.linalg.norm(pos[pb] - c0, axis=1)
    chosen_pb = pb[np.lexsort((pb, dpb.round(3)))[:n]]
    io = np.flatnonzero(s == "I")
    dpi = np.linalg.norm(pos[io][:, None] - pos[pb][None], axis=2)
    d_pbi = float(dpi.min())
    nb = (np.linalg.norm(pos[io][:, None] - pos[chosen_pb][None], axis=2) < 1.25 * d_pbi).sum(axis=1)
    cand = np.flatnonzero(nb > 0)
    centroid = pos[chosen_pb].mean(axis=0)
    if len(cand) < 3 * n:
        raise StructureError(f"only {len(cand)} iodides bonded to the {n} Pb; cannot reach CsPbI3 stoichiometry")
    # greedy: the iodide next to the least-covered Pb first, bridging before terminal, then near
    bonded = np.linalg.norm(pos[io[cand]][:, None] - pos[chosen_pb][None], axis=2) < 1.25 * d_pbi
    di = np.linalg.norm(pos[io[cand]] - centroid, axis=1).round(3)
    count = np.zeros(n, int)
    free = np.ones(len(cand), bool)
    picked: list[int] = []
    for _ in range(3 * n):
        least = np.where(bonded, count[None, :], 10**6).min(axis=1)
        key = np.lexsort((io[cand], di, -nb[cand], least, ~free))
        k = int(key[0])
        picked.append(int(io[cand[k]]))
        free[k] = False
        count += bonded[k]
    chosen_i = np.array(picked, int)
    ci = (np.linalg.norm(pos[cs][:, None] - pos[chosen_i][None], axis=2) < 4.6).sum(axis=1)
    dcs = np.linalg.norm(pos[cs] - centroid, axis=1)
    chosen_cs = cs[np.lexsort((cs, dcs.round(3), -ci))[:n]]
    keep = np.concatenate([chosen_cs, chosen_pb, chosen_i])
    frag = sc[keep]
    frag.pbc = False
    frag.set_cell(None)
    frag.positions -= frag.positions.mean(axis=0)
    fs = np.array(frag.get_chemical_symbols())
    frag.set_array("domain", np.full(len(frag), "perovskite", dtype="<U16"))
    frag.set_array("role", np.where(fs == "Cs", "A", np.where(fs == "Pb", "B", "X")).astype("<U3"))
    frag.set_array("pb_neighbours", _pb_neighbours(frag, d_pbi))
    frag.info.update(kind="perovskite_fragment", phase=name, n_units=n, charge=0, d_pb_i=d_pbi)
    return frag


def _pb_neighbours(frag: Atoms, d_pbi: float) -> np.ndarray:
    s = np.array(frag.get_chemical_symbols())
    out = np.zeros(len(frag), int)
    pb = np.flatnonzero(s == "Pb")
    for i in np.flatnonzero(s == "I"):
        out[i] = int((np.linalg.norm(frag.positions[pb] - frag.positions[i], axis=1) < 1.25 * d_pbi).sum())
    return out


# --------------------------------------------------------------------------- score and products


def geometric_score(atoms: Atoms, bonds: dict[str, tuple[int, int]] | None = None) -> dict:
    """Geometric plausibility of a starting structure (lower is better; dimensionless/Å²).

    clash: Σ max(0, 0.8·(r_cov,i + r_cov,j) − d_ij)² over atom pairs that are not covalent
    neighbours (d > 0.8·(r_i + r_j) counts as no clash; bonded pairs inside a molecule are at
    ~1.0·(r_i + r_j)).  bonds: named pairs whose length is checked against
    :data:`BONDS` (|Δd| in Å added to the score).  zn_coordination: N + I within 2.9 Å of
    every Zn (4 expected, |CN − 4| added).  min_distance: shortest interatomic distance (Å).
    """
    s = np.array(atoms.get_chemical_symbols())
    d = atoms.get_all_distances()
    np.fill_diagonal(d, np.inf)
    r = _radii(atoms)
    rsum = r[:, None] + r[None]
    dom = atoms.arrays.get("domain", np.full(len(atoms), "x"))
    lig = atoms.arrays.get("linker", np.full(len(atoms), -1))
    # pairs inside one rigid unit (same linker, or perovskite–perovskite) are not scored
    same_unit = (lig[:, None] == lig[None]) & (lig[:, None] >= 0)
    intra_pv = (dom[:, None] == "perovskite") & (dom[None] == "perovskite")
    bonded = d < 1.15 * rsum
    mask = ~same_unit & ~intra_pv & ~bonded
    iu = np.triu_indices(len(atoms), 1)
    clash = float(np.sum(np.clip(0.8 * rsum - d, 0, None)[iu][mask[iu]] ** 2))
    # light atoms (H) too close to heavy ones across units — counted by the same rule
    dev = 0.0
    bond_lengths = {}
    for key, (i, j) in (bonds or {}).items():
        dij = float(np.linalg.norm(atoms.positions[i] - atoms.positions[j]))
        bond_lengths[key] = dij
        dev += abs(dij - BONDS[key])
    cn_dev = 0
    for z in np.flatnonzero(s == "Zn"):
        cn = int(np.sum((d[z] < 2.9) & np.isin(s, ["N", "I"])))
        cn_dev += abs(cn - 4)
    pb_over = 0
    for p in np.flatnonzero(s == "Pb"):
        cn = int(np.sum(((d[p] < 3.6) & (s == "I")) | ((d[p] < 2.9) & (s == "N"))))
        pb_over += max(0, cn - 6)
    rg = float(np.sqrt(((atoms.positions - atoms.positions.mean(axis=0)) ** 2).sum(axis=1).mean()))
    score = 10.0 * clash + dev + float(cn_dev) + float(pb_over) + 0.01 * rg
    return {"score": score, "clash": clash, "bond_deviation": dev, "zn_coordination_deviation": cn_dev,
            "pb_overcoordination": pb_over, "radius_of_gyration": rg,
            "bond_lengths": bond_lengths, "min_distance": float(d.min()) if len(atoms) > 1 else np.inf,
            "clash_free": clash < 1e-6}


def _surface_sites(frag: Atoms) -> list[tuple[int, int, np.ndarray]]:
    """(Pb, terminal iodide, outward unit vector Pb→I) pairs of a perovskite fragment."""
    s = np.array(frag.get_chemical_symbols())
    nbpb = frag.arrays.get("pb_neighbours")
    if nbpb is None:
        nbpb = _pb_neighbours(frag, float(frag.info.get("d_pb_i", 3.2)))
    cen = frag.positions.mean(axis=0)
    out = []
    for i in np.flatnonzero((s == "I") & (nbpb == 1)):
        pb = np.flatnonzero(s == "Pb")
        j = pb[np.argmin(np.linalg.norm(frag.positions[pb] - frag.positions[i], axis=1))]
        v = frag.positions[i] - frag.positions[j]
        v /= np.linalg.norm(v)
        if v @ (frag.positions[i] - cen) > 0:  # points out of the fragment
            out.append((int(j), int(i), v))
    return out


def ligand_exchange_products(
    perovskite: Atoms,
    zif: Atoms,
    max_products: int = 5,
    n_spin: int = 6,
    max_sites: int | None = None,
) -> list[Atoms]:
    """Ligand-exchange products Pb–I + Zn–Im → Pb–Im + Zn–I, best geometric score first.

    For each outward terminal iodide i on a surface Pb p, each anionic terminal linker l of
    the ZIF and ``n_spin`` rotations: l (with its ring) moves onto p, N1 at 2.60 Å along
    p→i; i moves onto its Zn in the vacated tetrahedral direction at 2.60 Å; the ZIF rest
    (rigid, with i) docks on another surface Pb q with the iodide 3.2 Å outward of q
    (bridging q–I–Zn).  Every candidate is scored by :func:`geometric_score`; the best
    ``max_products`` distinct (p, l, q) are returned with info: ``pb_site``, ``iodide_site``,
    ``linker``, ``dock_pb``, ``score`` (dict), ``rank``.  Positions of the input fragments'
    atoms are kept rigid; element counts equal those of the reactants exactly.
    """
    for name, frag, dom in (("perovskite", perovskite, "perovskite"), ("zif", zif, "zif")):
        if "domain" not in frag.arrays or set(frag.arrays["domain"]) != {dom}:
            raise StructureError(f"{name} fragment must be labelled domain={dom!r} (build it with hetflow.structures.zif)")
    anionic = list(zif.info.get("anionic_linkers", []))
    if not anionic:
        raise InputError("the ZIF fragment has no anionic terminal imidazolate to exchange (raise its negative charge)")
    if max_products < 1:
        raise InputError(f"max_products must be ≥ 1, got {max_products}")
    sites = _surface_sites(perovskite)
    if max_sites:
        sites = sites[:max_sites]
    if not sites:
        raise StructureError("the perovskite fragment has no outward terminal iodide (surface Pb–I) site")
    cen = perovskite.positions.mean(axis=0)
    zs = np.array(zif.get_chemical_symbols())
    role = zif.arrays["role"]
    lk = zif.arrays["linker"]
    pv_s = np.array(perovskite.get_chemical_symbols())
    pb_all = np.flatnonzero(pv_s == "Pb")
    dpbi = float(perovskite.info.get("d_pb_i", 3.2))
    pb_cn = {int(q): int(np.sum((pv_s == "I") & (np.linalg.norm(perovskite.positions - perovskite.positions[q], axis=1)
                                                   < 1.25 * dpbi))) for q in pb_all}
    cands = []
    for (p, i, v) in sites:
        for l in anionic:
            lmask = lk == l
            n1 = int(np.flatnonzero(lmask & (role == "N1"))[0])
            zn_all = np.flatnonzero(zs == "Zn")
            zn = int(zn_all[np.argmin(np.linalg.norm(zif.positions[zn_all] - zif.positions[n1], axis=1))])
            # linker in its own frame relative to N1 with lone pair direction (N1 → Zn)
            lone = zif.positions[zn] - zif.positions[n1]
            lone /= np.linalg.norm(lone)
            lig_rel = zif.positions[lmask] - zif.positions[n1]
            # rest of the ZIF + the iodide on Zn
            rest_idx = np.flatnonzero(~lmask)
            pv_keep = np.array([k for k in range(len(perovskite)) if k != i])
            for si in range(n_spin):
                spin = 2 * math.pi * si / n_spin
                # linker onto Pb: lone pair (N1→metal) must point along −v, N1 at p + 2.6 v
                rot_l = _axis_rotation(v, spin) @ _rotation(lone, -v)
                lig_pos = lig_rel @ rot_l.T + perovskite.positions[p] + BONDS["Pb-N"] * v
                best_dock = None
                for q in sorted(pb_all, key=lambda x: (pb_cn[int(x)], int(x))):
                    # Pb that would exceed 6-fold coordination with the bridging iodide cost 1
                    over = max(0, pb_cn[int(q)] + 1 - 6) + (1 if q == p else 0)
                    u = perovskite.positions[q] - cen
                    if np.linalg.norm(u) < 1e-6:
                        continue
                    u /= np.linalg.norm(u)
                    i_pos = perovskite.positions[q] + BONDS["Pb-I"] * u
                    # ZIF rest: Zn→I direction (−lone) must point to −u; Zn at i_pos + 2.6 u
                    for sj in range(n_spin):
                        rot_r = _axis_rotation(u, 2 * math.pi * sj / n_spin) @ _rotation(-lone, -u)
                        rest = (zif.positions[rest_idx] - zif.positions[zn]) @ rot_r.T + i_pos + BONDS["Zn-I"] * u
                        pen = over + (_clash_penalty(rest, _radii(zif)[rest_idx], perovskite.positions[pv_keep],
                                              _radii(perovskite)[pv_keep], 0.8)
                               + _clash_penalty(rest, _radii(zif)[rest_idx], lig_pos, _radii(zif)[lmask], 0.8))
                        if best_dock is None or pen < best_dock[0] - 1e-9:
                            best_dock = (pen, int(q), rest, i_pos)
                pen_l = _clash_penalty(lig_pos, _radii(zif)[lmask], perovskite.positions[pv_keep],
                                       _radii(perovskite)[pv_keep], 0.8)
                cands.append((pen_l + best_dock[0], p, i, l, spin, lig_pos, best_dock, lmask, rest_idx, zn, n1))
    cands.sort(key=lambda c: (round(c[0], 6), c[1], c[3], c[4]))
    products: list[Atoms] = []
    seen = set()
    for pen, p, i, l, spin, lig_pos, (dpen, q, rest, i_pos), lmask, rest_idx, zn, n1 in cands:
        key = (p, l, q)
        if key in seen:
            continue
        seen.add(key)
        prod = _assemble(perovskite, zif, i, i_pos, lig_pos, lmask, rest, rest_idx)
        # indices in the product: perovskite atoms first (iodide i moved to its new place)
        n_pv = len(perovskite)
        new_n1 = n_pv + int(np.flatnonzero(np.flatnonzero(lmask) == n1)[0])
        new_zn = n_pv + int(lmask.sum()) + int(np.flatnonzero(rest_idx == zn)[0])
        sc = geometric_score(prod, {"Pb-N": (p, new_n1), "Zn-I": (new_zn, i)})
        prod.info.update(kind="zif_ligand_exchange", pb_site=int(p), iodide_site=int(i), linker=int(l),
                         dock_pb=int(q), spin_deg=float(math.degrees(spin)), score=sc,
                         perovskite_phase=perovskite.info.get("phase"),
                         charge=int(perovskite.info.get("charge", 0)) + int(zif.info.get("charge", 0)), reaction="Pb-I + Zn-Im -> Pb-Im + Zn-I")
        products.append(prod)
    products.sort(key=lambda a: a.info["score"]["score"])
    products = products[:max_products]
    for r, a in enumerate(products):
        a.info["rank"] = r
        check_conservation([perovskite, zif], [a])
    return products


def _assemble(pv: Atoms, zif: Atoms, i: int, i_pos, lig_pos, lmask, rest, rest_idx) -> Atoms:
    a = pv.copy()
    a.positions[i] = i_pos
    lig = zif[np.flatnonzero(lmask)]
    lig.positions = lig_pos
    r = zif[rest_idx]
    r.positions = rest
    for part in (a, lig, r):
        for name in list(part.arrays):
            if name not in ("numbers", "positions", "domain", "role"):
                part.set_array(name, None)
        part.set_array("role", np.asarray(part.arrays["role"]).astype("<U3"))
    out = a + lig + r
    out.info = {}
    link = np.full(len(out), -1, int)
    link[len(a):len(a) + len(lig)] = 0
    link[len(a) + len(lig):] = np.where(zif.arrays["linker"][rest_idx] >= 0, zif.arrays["linker"][rest_idx] + 1, -1)
    out.set_array("linker", link)
    return out


def check_conservation(reactants: list[Atoms], products: list[Atoms]) -> Counter:
    """Raise StructureError unless reactants and products hold exactly the same atoms."""
    cr = Counter(s for a in reactants for s in a.get_chemical_symbols())
    cp = Counter(s for a in products for s in a.get_chemical_symbols())
    if cr != cp:
        diff = dict((cr - cp) + (cp - cr))
        raise StructureError(f"reaction does not conserve elements: difference {diff}")
    return cr


@dataclass
class Reaction:
    """A reaction between cluster models: ΔE = Σ E(products) − Σ E(reactants) (eV)."""

    name: str
    reactants: list[Atoms]
    products: list[Atoms]
    info: dict = field(default_factory=dict)

    def stoichiometry(self) -> dict[str, int]:
        return dict(check_conservation(self.reactants, self.products))


def ligand_exchange_reaction(phase: str = "alpha", n_units: int = 8, n_zn: int = 1, zif_charge: int = -1,
                             n_bim: int = 0, max_products: int = 3) -> list[Reaction]:
    """CsPbI3 fragment + ZIF fragment → ligand-exchange product(s), one :class:`Reaction` per
    ranked product (element conservation checked)."""
    pv = perovskite_fragment(phase, n_units)
    zf = zif_fragment(n_zn, zif_charge, n_bim)
    out = []
    for prod in ligand_exchange_products(pv, zf, max_products=max_products):
        name = f"{PHASE_NAMES.get(phase, phase)}+ZIF-rank{prod.info['rank']}"
        out.append(Reaction(name, [pv, zf], [prod], {"rank": prod.info["rank"], "score": prod.info["score"]}))
    return out
