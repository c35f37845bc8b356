"""Halide sites of a labelled heterostructure and their exchange: the basics every exchange
pattern (:mod:`hetflow.structures.exchange`) is built from.  Positions are never moved; the
bookkeeping of ``atoms.info`` and the ``exchanged`` array is described in that module's doc.
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

__all__ = ["halide_sites", "exchange_sites", "perovskite_layers", "layer_order"]


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
