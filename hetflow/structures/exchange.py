"""Halide-exchange configurations of labelled heterostructures (Tables S1–S3 of Livakas et al.).

Works on any structure carrying the per-atom labels ``domain``, ``layer`` and ``role``
(see :mod:`hetflow.structures.interface`): layer 0 is the perovskite's interfacial CsX
monolayer, 1 … L go into the perovskite (L = its outer face, "the bottom"), −1, −2 … into
the chalcohalide.  A *halide site* is an atom with role ``"X"`` whose element is the source
halide (by default ``atoms.info["halide"]``, e.g. Cl).

Patterns (each configuration is a new :class:`ase.Atoms`; positions are never moved):

* **S1** (:func:`layer_series`): the halides of N = 1 … n_max perovskite layers, ordered
  from the interface (0, 1, …, N−1) or from the bottom (L, L−1, …, L−N+1).  Nested: the
  configuration N is built from N−1.
* **S2** (:func:`interfacial_series`): model (d) = bottom-first N = 5 plus layer 0 (the
  interfacial CsX monolayer); model (e) = (d) plus exchange in the first two
  halide-containing chalcohalide layers (from the interface) at 20, 40, 60, 80, 100 % of
  their halide sites, nested steps (a seeded permutation of the sites; each step adds
  iodide, never moves it).
* **S3** (:func:`alloy_patterns`): on model (d), ≈ 20 % of the halides still in the
  perovskite domain, as ``random`` (seeded), ``csx_perp`` (a CsX plane ⊥ interface),
  ``csx_par`` (a CsX plane ∥ interface) and ``pbx2_perp`` (a PbX2 plane ⊥ interface), all
  with the same exchanged count.
* **custom** (:func:`custom_exchange`, :func:`distinct_exchanges`): any selection of halide
  sites by layer/domain, a fraction of them (seeded) or every symmetry-distinct choice of
  k of them (:mod:`hetflow.structures.symmetry`).

Every configuration records in ``atoms.info``: ``name``, ``pattern``, ``parent`` (name),
``exchange`` ("Cl->I"), ``new_sites`` (indices exchanged relative to the parent),
``exchanged_sites`` (relative to the pristine model), ``n_exchanged_step`` and
``n_exchanged_total``; plus the pattern's own keys (``N``, ``step``, ``fraction`` …).  The
per-atom int array ``exchanged`` is 1 on every site exchanged relative to the pristine model.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from ase import Atoms

from hetflow import validate
from hetflow.errors import InputError, StructureError
from hetflow.structures.charge import HALIDES
from hetflow.structures.labels import require_labels

__all__ = [
    "PATTERNS",
    "S3_PATTERNS",
    "halide_sites",
    "exchange_sites",
    "perovskite_layers",
    "layer_order",
    "layer_series",
    "model_d",
    "interfacial_series",
    "alloy_patterns",
    "inplane_axes",
    "partner_halide_layers",
    "custom_exchange",
    "distinct_exchanges",
    "configurations",
]

#: pattern names understood by :func:`configurations` and the CLI
PATTERNS = ("s1", "s2", "s3", "custom")
#: the four distributions of Table S3
S3_PATTERNS = ("random", "csx_perp", "csx_par", "pbx2_perp")
#: default I/Cl steps of Table S2
S2_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)

_PLANE_TOL = 0.7  # Å: a site belongs to a plane through a cation column if within this distance


# --------------------------------------------------------------------------- basics


def _source(atoms: Atoms, source: str | None) -> str:
    src = source or atoms.info.get("halide")
    if src is None:
        raise InputError("source halide not given and the structure has no info['halide']")
    if src not in HALIDES:
        raise InputError(f"source must be a halide ({', '.join(HALIDES)}), got {src!r}")
    return str(src)


def _check_pair(source: str, target: str) -> None:
    if target not in HALIDES:
        raise InputError(f"target must be a halide ({', '.join(HALIDES)}), got {target!r}")
    if source == target:
        raise InputError(f"source and target halide are both {source}: nothing to exchange")


def _check_fraction(fraction: float, what: str = "fraction") -> float:
    try:
        f = float(fraction)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number in (0, 1], got {fraction!r}") from None
    if not (0.0 < f <= 1.0) or math.isnan(f):
        raise InputError(f"{what} must be in (0, 1], got {fraction}")
    return f


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5 + 1e-9))


def halide_sites(
    atoms: Atoms,
    element: str | None = None,
    layers: Iterable[int] | None = None,
    domain: str | None = None,
) -> np.ndarray:
    """Indices of halide sites (role ``"X"``) of ``element`` (default: ``info["halide"]``),
    optionally restricted to ``layers`` and/or a ``domain``; sorted ascending."""
    require_labels(atoms)
    el = _source(atoms, element)
    syms = np.array(atoms.get_chemical_symbols())
    mask = (atoms.arrays["role"] == "X") & (syms == el)
    if layers is not None:
        wanted = [validate.integer(v, "layer index", lo=-validate.MAX_COUNT, hi=validate.MAX_COUNT) for v in layers]
        mask &= np.isin(atoms.arrays["layer"], np.array(wanted, dtype=int))
    if domain is not None:
        doms = set(np.unique(atoms.arrays["domain"]).tolist())
        if domain not in doms:
            raise InputError(f"domain {domain!r} not in the structure (domains: {', '.join(sorted(doms))})")
        mask &= atoms.arrays["domain"] == domain
    return np.flatnonzero(mask)


def exchange_sites(
    atoms: Atoms,
    sites: Sequence[int],
    target: str = "I",
    *,
    name: str,
    pattern: str,
    **info,
) -> Atoms:
    """A copy of ``atoms`` with the halide ``sites`` replaced by ``target``.

    Every site must be a halide (role ``"X"``) of one element different from ``target``.
    The copy's ``info`` gets the provenance keys listed in the module docstring plus
    ``info``; its ``exchanged`` array accumulates over a chain of exchanges.
    """
    require_labels(atoms)
    if target not in HALIDES:
        raise InputError(f"target must be a halide ({', '.join(HALIDES)}), got {target!r}")
    sites = np.asarray(sorted(int(s) for s in sites), dtype=int)
    if len(np.unique(sites)) != len(sites):
        raise InputError("exchange site list contains duplicates")
    if len(sites) and (sites.min() < 0 or sites.max() >= len(atoms)):
        raise InputError(f"exchange site index out of range 0 … {len(atoms) - 1}")
    syms = np.array(atoms.get_chemical_symbols())
    roles = atoms.arrays["role"]
    if len(sites):
        if np.any(roles[sites] != "X"):
            bad = int(sites[np.flatnonzero(roles[sites] != "X")[0]])
            raise InputError(f"atom {bad} ({syms[bad]}, role {roles[bad]}) is not a halide site")
        srcs = set(syms[sites].tolist())
        if len(srcs) != 1:
            raise InputError(f"exchange sites mix elements {sorted(srcs)}; exchange one halide at a time")
        source = srcs.pop()
    else:
        source = _source(atoms, None)
    _check_pair(source, target)
    new = atoms.copy()
    new.info = dict(atoms.info)
    syms[sites] = target
    new.set_chemical_symbols(syms.tolist())
    prev = np.asarray(atoms.arrays.get("exchanged", np.zeros(len(atoms), int)), dtype=int)
    flag = prev.copy()
    flag[sites] = 1
    new.set_array("exchanged", flag)
    total = np.flatnonzero(flag).tolist()
    new.info.update(
        name=name,
        pattern=pattern,
        parent=str(atoms.info.get("name", "pristine")),
        exchange=f"{source}->{target}",
        new_sites=[int(s) for s in sites],
        exchanged_sites=[int(s) for s in total],
        n_exchanged_step=int(len(sites)),
        n_exchanged_total=int(len(total)),
    )
    new.info.update(info)
    return new


def perovskite_layers(atoms: Atoms) -> int:
    """L: the largest perovskite layer index (its outer face, "the bottom")."""
    require_labels(atoms)
    pv = atoms.arrays["domain"] == "perovskite"
    if not pv.any():
        raise StructureError("structure has no atoms with domain 'perovskite'")
    return int(atoms.info.get("perovskite_layers", int(atoms.arrays["layer"][pv].max())))


def layer_order(atoms: Atoms, start: str) -> list[int]:
    """Perovskite layers in exchange order: "interface" → 0, 1, …, L; "bottom" → L, …, 0."""
    L = perovskite_layers(atoms)
    if start == "interface":
        return list(range(0, L + 1))
    if start == "bottom":
        return list(range(L, -1, -1))
    raise InputError(f"start must be 'interface' or 'bottom', got {start!r}")


def _pristine(atoms: Atoms) -> Atoms:
    a = atoms.copy()
    a.info = dict(atoms.info)
    a.info.setdefault("name", "pristine")
    return a


# --------------------------------------------------------------------------- S1


def layer_series(
    atoms: Atoms,
    start: str = "interface",
    n_max: int = 5,
    target: str = "I",
    source: str | None = None,
) -> list[Atoms]:
    """Table S1: exchange all ``source`` halides of N = 1 … ``n_max`` perovskite layers.

    start: "interface" (layers 0, 1, …) or "bottom" (layers L, L−1, …).  Configuration N is
    built from N−1 (nested); N = 1's parent is the input (``info["name"]`` or "pristine").
    info keys: ``N``, ``start``, ``layers_exchanged`` (all layers so far), ``layer`` (this step's).
    """
    require_labels(atoms)
    src = _source(atoms, source)
    _check_pair(src, target)
    order = layer_order(atoms, start)
    if not isinstance(n_max, (int, np.integer)) or n_max < 1:
        raise InputError(f"N must be a positive integer, got {n_max!r}")
    if n_max > len(order):
        raise InputError(
            f"N = {n_max} is larger than the {len(order)} perovskite layers (0 … {len(order) - 1}) of this structure")
    out: list[Atoms] = []
    cur = _pristine(atoms)
    for n in range(1, n_max + 1):
        lay = order[n - 1]
        sites = halide_sites(cur, src, layers=[lay], domain="perovskite")
        if len(sites) == 0:
            raise StructureError(f"perovskite layer {lay} has no {src} sites to exchange")
        cur = exchange_sites(cur, sites, target, name=f"s1-{start}-N{n}", pattern="s1", N=n, start=start,
                             layer=lay, layers_exchanged=order[:n])
        out.append(cur)
    return out


# --------------------------------------------------------------------------- S2


def model_d(atoms: Atoms, n_bottom: int = 5, target: str = "I", source: str | None = None) -> Atoms:
    """Model (d): the bottom-first configuration with ``n_bottom`` layers plus layer 0 (the
    interfacial CsX monolayer of the perovskite) fully exchanged.  Parent: "s1-bottom-N<n>"."""
    src = _source(atoms, source)
    base = layer_series(atoms, "bottom", n_bottom, target, src)[-1]
    lay = base.info["layers_exchanged"]
    sites = halide_sites(base, src, layers=[0], domain="perovskite") if 0 not in lay else np.array([], int)
    return exchange_sites(base, sites, target, name="s2-d", pattern="s2", step="d",
                          layers_exchanged=sorted(set(lay) | {0}), n_bottom=int(n_bottom))


def partner_halide_layers(atoms: Atoms, n_layers: int = 2, source: str | None = None) -> list[int]:
    """The first ``n_layers`` chalcohalide layers (from the interface: −1, −2, …) that contain
    ``source`` halide sites."""
    src = _source(atoms, source)
    require_labels(atoms)
    syms = np.array(atoms.get_chemical_symbols())
    m = (atoms.arrays["domain"] != "perovskite") & (atoms.arrays["role"] == "X") & (syms == src)
    layers = sorted({int(v) for v in atoms.arrays["layer"][m] if v < 0}, reverse=True)
    if len(layers) < n_layers:
        raise InputError(f"the partner domain has {len(layers)} layer(s) with {src} sites, {n_layers} requested")
    return layers[:n_layers]


def interfacial_series(
    atoms: Atoms,
    fractions: Sequence[float] = S2_FRACTIONS,
    seed: int = 0,
    n_partner_layers: int = 2,
    target: str = "I",
    source: str | None = None,
    n_bottom: int = 5,
) -> list[Atoms]:
    """Table S2: model (d), then model (e) steps with ``fractions`` of the halide sites of the
    first ``n_partner_layers`` halide-containing chalcohalide layers exchanged.

    The sites are a seeded permutation of the pool; step k exchanges the next
    round(f_k·n) − round(f_{k−1}·n) of them, so the sets are nested.  Fractions must be
    strictly increasing, each in (0, 1], and give strictly increasing site counts.
    info keys of the (e) steps: ``step`` (1 …), ``fraction`` (requested), ``fraction_actual``
    (exchanged / pool), ``partner_layers``, ``pool_size``, ``seed``.
    """
    fr = [_check_fraction(f) for f in fractions]
    if not fr:
        raise InputError("at least one fraction is needed")
    if any(b <= a for a, b in zip(fr, fr[1:])):
        raise InputError(f"fractions must increase strictly, got {list(fractions)}")
    src = _source(atoms, source)
    d = model_d(atoms, n_bottom, target, src)
    layers = partner_halide_layers(d, n_partner_layers, src)
    pool = halide_sites(d, src, layers=layers)
    pool = pool[d.arrays["domain"][pool] != "perovskite"]
    n = len(pool)
    counts = [_round_half_up(f * n) for f in fr]
    if counts[0] < 1 or any(b <= a for a, b in zip(counts, counts[1:])):
        raise InputError(f"fractions {fr} give site counts {counts} of {n} sites: steps must add at least one site")
    perm = np.random.default_rng(seed).permutation(pool)
    out = [d]
    cur, prev = d, 0
    for k, (f, c) in enumerate(zip(fr, counts), start=1):
        cur = exchange_sites(cur, perm[prev:c], target, name=f"s2-e-{int(round(f * 100))}", pattern="s2",
                             step=k, fraction=f, fraction_actual=c / n, partner_layers=layers, pool_size=n,
                             seed=int(seed), n_partner_exchanged=int(c))
        out.append(cur)
        prev = c
    return out


# --------------------------------------------------------------------------- S3


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
            from ase.geometry import find_mic

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


# --------------------------------------------------------------------------- custom / enumeration


def _select(atoms: Atoms, src: str, layers, domain, sites) -> np.ndarray:
    if sites is not None:
        s = np.asarray(sorted(int(v) for v in sites), int)
        if layers is not None or domain is not None:
            s = np.intersect1d(s, halide_sites(atoms, src, layers, domain))
        return s
    return halide_sites(atoms, src, layers, domain)


def custom_exchange(
    atoms: Atoms,
    layers: Iterable[int] | None = None,
    domain: str | None = None,
    fraction: float = 1.0,
    seed: int = 0,
    target: str = "I",
    source: str | None = None,
    sites: Iterable[int] | None = None,
    name: str | None = None,
) -> Atoms:
    """Exchange ``fraction`` (seeded choice) of the ``source`` halide sites selected by
    ``layers`` / ``domain`` / explicit ``sites`` for ``target`` — any halide pair, any labelled
    structure."""
    require_labels(atoms)
    f = _check_fraction(fraction)
    src = _source(atoms, source)
    _check_pair(src, target)
    pool = _select(atoms, src, layers, domain, sites)
    if len(pool) == 0:
        raise InputError(f"no {src} sites match the selection (layers={layers}, domain={domain})")
    n = max(1, _round_half_up(f * len(pool)))
    chosen = pool if n == len(pool) else np.sort(np.random.default_rng(seed).choice(pool, n, replace=False))
    return exchange_sites(atoms, chosen, target, name=name or f"custom-{src}{target}-{n}", pattern="custom",
                          fraction=f, seed=int(seed), pool_size=int(len(pool)),
                          selection={"layers": None if layers is None else [int(v) for v in layers],
                                     "domain": domain})


def distinct_exchanges(
    atoms: Atoms,
    k: int,
    layers: Iterable[int] | None = None,
    domain: str | None = None,
    target: str = "I",
    source: str | None = None,
    sites: Iterable[int] | None = None,
    max_configs: int | None = 50,
    seed: int = 0,
    tol: float = 0.3,
    progress=None,
) -> list[Atoms]:
    """Every symmetry-distinct way to exchange ``k`` of the selected halide sites (or a seeded
    sample of at most ``max_configs``), one configuration per orbit with ``info["multiplicity"]``
    (orbit size), ``orbit`` (index), ``symmetry`` and the enumeration metadata ``enumeration``.
    ``progress``: callback of :func:`hetflow.structures.symmetry.distinct_subsets`."""
    from hetflow.structures.symmetry import distinct_subsets, symmetry_group

    require_labels(atoms)
    src = _source(atoms, source)
    _check_pair(src, target)
    pool = _select(atoms, src, layers, domain, sites)
    if len(pool) == 0:
        raise InputError(f"no {src} sites match the selection (layers={layers}, domain={domain})")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(pool):
        raise InputError(f"k must be 1 … {len(pool)} (selected {src} sites), got {k}")
    group = symmetry_group(atoms, tol)
    orbits, meta = distinct_subsets(pool, int(k), group, max_configs=max_configs, seed=seed, progress=progress)
    out = []
    for i, orb in enumerate(orbits):
        out.append(exchange_sites(atoms, orb.representative, target, name=f"distinct-k{k}-{i}", pattern="custom",
                                  k=int(k), orbit=i, multiplicity=int(orb.multiplicity), symmetry=group.symbol,
                                  enumeration=meta))
    return out


def configurations(atoms: Atoms, pattern: str, **kw) -> list[Atoms]:
    """All configurations of a named pattern (the CLI's entry point).

    s1: both series (``start`` "interface" and "bottom"), keyword ``n_max``.
    s2: :func:`interfacial_series` keywords.  s3: :func:`alloy_patterns` keywords.
    custom: :func:`distinct_exchanges` if ``k`` is given, else :func:`custom_exchange`.
    """
    require_labels(atoms)
    if pattern == "s1":
        starts = kw.pop("start", None)
        starts = ["interface", "bottom"] if starts is None else [starts]
        return [c for s in starts for c in layer_series(atoms, s, **kw)]
    if pattern == "s2":
        return interfacial_series(atoms, **kw)
    if pattern == "s3":
        return alloy_patterns(atoms, **kw)
    if pattern == "custom":
        if kw.get("k") is not None:
            kw.pop("fraction", None)
            return distinct_exchanges(atoms, **kw)
        kw.pop("k", None)
        kw.pop("max_configs", None)
        return [custom_exchange(atoms, **kw)]
    raise InputError(f"unknown exchange pattern {pattern!r}; choose from {', '.join(PATTERNS)}")
