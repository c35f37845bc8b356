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

The patterns in modules by idea: :mod:`~hetflow.structures.exchange_sites` (halide sites and
their exchange), :mod:`~hetflow.structures.exchange_layers` (S1, S2),
:mod:`~hetflow.structures.exchange_alloys` (S3); this module holds the custom selections, the
enumeration of distinct exchanges and :func:`configurations`, and re-exports the public names.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from ase import Atoms

from hetflow.errors import InputError
from hetflow.structures.exchange_alloys import S3_PATTERNS, alloy_patterns, inplane_axes
from hetflow.structures.exchange_layers import (
    S2_FRACTIONS, interfacial_series, layer_series, model_d, partner_halide_layers)
from hetflow.structures.exchange_sites import (
    _check_fraction, _check_pair, _round_half_up, _source, exchange_sites, halide_sites, layer_order,
    perovskite_layers)
from hetflow.structures.labels import require_labels
from hetflow.structures.symmetry import distinct_subsets, symmetry_group

__all__ = [
    "PATTERNS",
    "S2_FRACTIONS",
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
