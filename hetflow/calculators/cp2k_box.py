"""CP2K box and Poisson solver for a non-periodic model: chosen by rule, with the reason.

What CP2K accepts with ``&POISSON PERIODIC NONE`` (read in the CP2K sources, 2023.1 — the
Debian package — and unchanged on the development branch in 2025):

* ``WAVELET`` solves the free-space Poisson equation exactly for any box the density fits in
  (it only needs the density to vanish on the faces), **but** ``ps_wavelet_create``
  (``src/pw/ps_wavelet_methods.F``) aborts with "Poisson solver for non cubic cells not yet
  implemented" unless the real-space grid spacings along a, b and c are equal — in practice a
  cubic cell.
* ``MT`` (Martyna–Tuckerman) works in any orthorhombic cell, but CP2K's own input reference
  warns that "results are completely wrong if the cell is smaller than twice the cluster size
  (with electronic density)": every edge must be at least twice the extent of the charge density.
* ``ANALYTIC`` (0D) truncates the Coulomb kernel at half the shortest edge
  (``pw_poisson_types.F``: ``radius = 0.5*MINVAL(abc)``): exact only when the density's diameter
  is below that radius, and it converges slowly with the cutoff.

The rule (``settings["poisson_solver"]``, default ``"auto"``):

1. ``vacuum`` given → a **cubic** box, edge = largest model extent + 2·vacuum, ``WAVELET``
   (every model of a recipe therefore gets the same solver).
2. an explicit cubic ``box`` → ``WAVELET`` in that box.
3. an explicit non-cubic ``box`` (the paper's 52 × 68 × 52 Å) → ``MT`` in that box when every
   edge is ≥ 2 × the density extent (nuclei extent + 2 × :data:`DENSITY_TAIL`), else
   ``WAVELET`` in the cube of the largest edge (the box only grows, never shrinks).

``"WAVELET"``, ``"MT"`` or ``"ANALYTIC"`` force a solver; MT and ANALYTIC are refused
(InputError) when their size rule fails.  The choice and its reason are written into the
input's header comment and into ``CalcResult.extra["poisson"]``.

Lengths in Å.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms

from hetflow.errors import InputError

#: Å of valence density counted beyond the outermost nuclei for the MT/ANALYTIC size rules
DENSITY_TAIL = 3.5
#: smallest vacuum (Å) between the nuclei and an explicit box face
MIN_VACUUM = 2.0
SOLVERS = ("auto", "WAVELET", "MT", "ANALYTIC")


@dataclass(frozen=True)
class PoissonChoice:
    """Solver, the box actually used (Å), the box asked for and why."""

    solver: str
    box: tuple[float, float, float]
    requested: tuple[float, float, float]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_extent(atoms: Atoms) -> np.ndarray:
    """Extent of the nuclei along x, y, z (Å)."""
    if not len(atoms):
        return np.zeros(3)
    return atoms.positions.max(axis=0) - atoms.positions.min(axis=0)


def density_extent(atoms: Atoms) -> np.ndarray:
    """Extent of the electron density along x, y, z (Å): nuclei extent + 2·DENSITY_TAIL."""
    return model_extent(atoms) + 2 * DENSITY_TAIL


def _fmt(v) -> str:
    return " × ".join(f"{x:.2f}" for x in v)


def _is_cubic(box) -> bool:
    return max(box) - min(box) < 1e-6


def mt_fits(atoms: Atoms, box) -> bool:
    """Martyna–Tuckerman rule: every edge ≥ 2 × density extent."""
    return bool(np.all(np.asarray(box) >= 2 * density_extent(atoms) - 1e-9))


def analytic_fits(atoms: Atoms, box) -> bool:
    """ANALYTIC 0D rule: density diameter ≤ half the shortest edge."""
    return float(np.linalg.norm(density_extent(atoms))) <= 0.5 * min(box) + 1e-9


def choose_poisson(atoms: Atoms, settings: dict[str, Any]) -> PoissonChoice:
    """Box and Poisson solver for ``atoms`` under the merged CP2K ``settings`` (see module doc)."""
    want = str(settings.get("poisson_solver", "auto"))
    want = want if want == "auto" else want.upper()
    if want not in SOLVERS:
        raise InputError(f"setting 'poisson_solver' must be one of {', '.join(SOLVERS)}, got {settings.get('poisson_solver')!r}")
    ext = model_extent(atoms)
    if settings.get("vacuum") is not None:
        vac = float(settings["vacuum"])
        if vac <= 0:
            raise InputError(f"setting 'vacuum' must be > 0 Å, got {vac}")
        edge = float(ext.max() + 2 * vac)
        requested = (edge, edge, edge)
        origin = f"cubic box {edge:.2f} Å = largest model extent {ext.max():.2f} Å + 2 × {vac:g} Å vacuum"
    else:
        requested = tuple(float(x) for x in settings["box"])  # type: ignore[assignment]
        if np.any(ext + 2 * MIN_VACUUM > np.asarray(requested)):
            raise InputError(
                f"model extent {np.round(ext, 1).tolist()} Å does not fit the box {list(requested)} Å with "
                f"{MIN_VACUUM:g} Å vacuum each side; enlarge 'box' or use 'vacuum'")
        origin = f"box {_fmt(requested)} Å as given"
    dens = density_extent(atoms)
    need_mt = 2 * dens
    cube = (max(requested),) * 3
    wavelet_why = ("CP2K's WAVELET solver with PERIODIC NONE needs equal grid spacings along a, b, c "
                   "(pw/ps_wavelet_methods.F aborts otherwise)")

    if want == "MT" or want == "ANALYTIC":
        ok = mt_fits(atoms, requested) if want == "MT" else analytic_fits(atoms, requested)
        if not ok:
            rule = (f"every edge ≥ 2 × density extent = {_fmt(need_mt)} Å" if want == "MT" else
                    f"half the shortest edge ≥ density diameter {np.linalg.norm(dens):.2f} Å")
            raise InputError(f"Poisson solver {want} needs {rule} (density = nuclei + {DENSITY_TAIL:g} Å each side); "
                             f"the box is {_fmt(requested)} Å — enlarge it or use poisson_solver WAVELET")
        return PoissonChoice(want, requested, requested, f"{want} as requested; {origin}; size rule met")
    if _is_cubic(requested):
        return PoissonChoice("WAVELET", requested, requested,
                             f"WAVELET: {origin}; exact free-space solution in a cubic cell")
    if want == "auto" and mt_fits(atoms, requested):
        return PoissonChoice("MT", requested, requested,
                             f"MT: {origin} is not cubic ({wavelet_why}); every edge ≥ 2 × density extent "
                             f"{_fmt(need_mt)} Å, so Martyna–Tuckerman is exact in it")
    tail = "" if want == "WAVELET" else f"; too small for MT (needs ≥ {_fmt(need_mt)} Å)"
    return PoissonChoice("WAVELET", cube, requested,
                         f"WAVELET in the cube {cube[0]:.2f} Å enclosing the requested {origin}: {wavelet_why}{tail}")
