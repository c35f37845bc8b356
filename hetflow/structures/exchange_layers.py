"""Layer-wise exchange series of Tables S1 and S2 (Livakas et al.): S1 — the halides of N perovskite
layers from the interface or from the bottom; S2 — model (d) and the interfacial series (e) into the
chalcohalide.  See :mod:`hetflow.structures.exchange` for the patterns and the records they keep.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from hetflow.errors import InputError, StructureError
from hetflow.structures.exchange_sites import (
    _check_fraction, _check_pair, _pristine, _round_half_up, _source, exchange_sites, halide_sites, layer_order)
from hetflow.structures.labels import require_labels

__all__ = ["S2_FRACTIONS", "layer_series", "model_d", "partner_halide_layers", "interfacial_series"]

#: default I/Cl steps of Table S2
S2_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)


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
