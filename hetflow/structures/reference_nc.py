"""The strain reference of an exchanged heterostructure: the standalone NC with the same exchange.

Livakas et al. compare the Pb–Pb distances of a heterostructure "to those in the corresponding
standalone perovskite NC".  For an exchanged model the corresponding NC is the standalone NC in
which *the same perovskite halide sites* carry the new halide: otherwise the strain measures the
larger lattice of the iodide (CsPbI3 is 11 % wider than CsPbCl3), not the interface.

The heterostructure's perovskite domain is, site for site, the standalone NC of the same size and
termination (:func:`hetflow.structures.nanocrystal.cut_nanocrystal`, the recipes' ``reference_nc``)
— same layers (0 = the face at the interface), same atoms per layer.  Sites are matched layer by
layer and element by element: both domains are centred on their centroids and each site is
assigned one-to-one to the nearest (:func:`scipy.optimize.linear_sum_assignment`), which holds
for the built geometry and for the relaxed junction's displacements (≤ 0.5 Å, against ≈ 4 Å between
halide sites).  Pure geometry: no calculator.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.optimize import linear_sum_assignment

from hetflow.errors import StructureError

__all__ = ["perovskite_site_map", "matching_reference_nc", "exchanged_reference_sites"]

#: a matched site farther than this from its partner means the two are not the same cut, Å
MAX_SITE_OFFSET = 1.5


def _labels(atoms: Atoms, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer, domain and site kind (``role``: A, B, X — the halide sites whatever they hold)."""
    for key in ("layer", "role"):
        if key not in atoms.arrays:
            raise StructureError(f"the {what} has no per-atom {key!r} array: build it with hetflow")
    layer = np.asarray(atoms.arrays["layer"], int)
    dom = np.asarray(atoms.arrays["domain"]).astype(str) if "domain" in atoms.arrays else np.full(len(atoms), "perovskite")
    return layer, dom, np.asarray(atoms.arrays["role"]).astype(str)


def perovskite_site_map(hs: Atoms, nc: Atoms) -> np.ndarray:
    """For each atom of ``nc`` the index of the same site in ``hs``'s perovskite domain (sites
    matched per layer and per role, so an exchanged halide still finds its site).

    Raises StructureError when the perovskite domain is not the NC's cut (other sites per layer,
    or a site farther than :data:`MAX_SITE_OFFSET` Å from its partner)."""
    hl, hd, hr = _labels(hs, "heterostructure")
    nl, _, nr = _labels(nc, "reference NC")
    pv = np.flatnonzero(hd == "perovskite")
    if len(pv) != len(nc):
        raise StructureError(f"the heterostructure's perovskite domain has {len(pv)} atoms, the reference NC "
                             f"{len(nc)}: not the same cut")
    shift = nc.positions.mean(axis=0) - hs.positions[pv].mean(axis=0)
    out = np.full(len(nc), -1, int)
    for lay in np.unique(nl):
        for role in np.unique(nr[nl == lay]):
            ni = np.flatnonzero((nl == lay) & (nr == role))
            hi = pv[(hl[pv] == lay) & (hr[pv] == role)]
            if len(hi) != len(ni):
                raise StructureError(f"perovskite layer {lay}: {len(hi)} {role} sites in the heterostructure, "
                                     f"{len(ni)} in the reference NC: not the same cut")
            d = np.linalg.norm(nc.positions[ni][:, None] - (hs.positions[hi] + shift)[None], axis=-1)
            r, c = linear_sum_assignment(d)
            if d[r, c].max() > MAX_SITE_OFFSET:
                raise StructureError(f"perovskite layer {lay}: a site is {d[r, c].max():.2f} Å from its partner in "
                                     "the reference NC: not the same cut")
            out[ni[r]] = hi[c]
    return out


def exchanged_reference_sites(config: Atoms, nc: Atoms, source: str | None = None) -> np.ndarray:
    """Indices of the NC halide sites whose heterostructure partner in ``config`` is no longer the
    ``source`` halide (default ``nc``'s own halide, ``info["halide"]`` of the config)."""
    src = source or config.info.get("halide")
    if not src:
        raise StructureError("the exchanged model carries no info['halide'] (the source halide)")
    site = perovskite_site_map(config, nc)
    syms = np.array(config.get_chemical_symbols())
    nsyms = np.array(nc.get_chemical_symbols())
    return np.flatnonzero((nsyms == src) & (syms[site] != src))


def matching_reference_nc(config: Atoms, nc: Atoms, name: str | None = None) -> Atoms:
    """The standalone NC ``nc`` with the perovskite halides that ``config`` has exchanged exchanged
    the same way (each NC site takes the element of its heterostructure partner).  The pristine
    model gives ``nc`` itself.  ``info``: ``name`` (default ``"nc-" + config's name``),
    ``exchanged_sites`` (count), ``reference_of`` (the config's name)."""
    site = perovskite_site_map(config, nc)
    out = nc.copy()
    out.info = dict(nc.info)
    moved = exchanged_reference_sites(config, nc)
    numbers = out.numbers.copy()
    numbers[moved] = config.numbers[site[moved]]
    out.numbers = numbers
    cname = str(config.info.get("name", "model"))
    out.info.update(name=name or f"nc-{cname}", exchanged_sites=int(len(moved)), reference_of=cname)
    return out
