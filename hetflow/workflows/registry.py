"""Energy-scored interface registry: single points of probe models over candidate junctions.

The structure builders (:func:`hetflow.structures.interface.build_heterostructure`,
``build_slab``) take a *scorer*; this module provides the calculator-backed one, so the
structures layer never imports a calculator.  :func:`energy_scorer` returns a scorer that

1. computes a single point (default GFN1-xTB, tblite) of the probe model — a 2 × 2 × 3
   perovskite NC on one b/2 block of the chalcohalide, the same for every model size, so quick,
   full and paper-scale models share one junction — for each candidate registry;
2. refines the gap of the lowest one on a five-point scan (± 0.2, ± 0.4 Å) and takes the
   minimum of a parabola through the three lowest points (kept inside the scanned range);
3. returns every evaluated registry with ``score`` = energy relative to the lowest (eV) and the
   absolute energy and SCF iterations in ``details``.

Energies are cached on disk by calculation key (structure + spec + code version) in
``$HETFLOW_CACHE`` (default ``~/.cache/hetflow``)/registry, so a second build costs nothing.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms

from hetflow.calculators.base import CalcSpec, calc_key
from hetflow.errors import HetflowError
from hetflow.structures.registry import Registry

__all__ = ["energy_scorer", "cache_dir", "choose_energy_registry"]

log = logging.getLogger("hetflow.workflows.registry")

#: gap offsets (Å) of the refinement scan around the best candidate
GAP_SCAN = (-0.4, -0.2, 0.2, 0.4)


def cache_dir() -> Path:
    """Where probe energies are cached (``$HETFLOW_CACHE``/registry, else ~/.cache/hetflow/registry)."""
    root = os.environ.get("HETFLOW_CACHE") or str(Path.home() / ".cache" / "hetflow")
    return Path(root).expanduser() / "registry"


def _energy(atoms: Atoms, spec: CalcSpec, cache: Path | None) -> tuple[float, int | None]:
    from hetflow.calculators.run import run_calculation

    key = calc_key(atoms, spec)
    path = None if cache is None else cache / f"{key}.json"
    if path is not None and path.is_file():
        try:
            d = json.loads(path.read_text())
            return float(d["energy"]), d.get("scf_steps")
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: recompute and overwrite
    r = run_calculation(atoms, spec)
    if not np.isfinite(r.energy):
        raise HetflowError(f"probe single point gave a non-finite energy ({r.energy})")
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"energy": r.energy, "scf_steps": r.scf_steps, "atoms": len(atoms),
                                       "formula": atoms.get_chemical_formula(), "spec": spec.key()}))
            os.replace(tmp, path)
        except OSError as exc:  # a read-only home must not stop a build
            log.info("registry cache not written (%s)", exc)
    return float(r.energy), r.scf_steps


def energy_scorer(spec: CalcSpec | None = None, cache: bool = True,
                  progress: Callable[[str], None] | None = None) -> Callable:
    """A registry scorer for the builders: single-point energies of probe models (see module doc).

    ``spec``: the calculation (default ``CalcSpec(method="GFN1-xTB")``, a single point);
    ``progress``: called with one line per evaluated candidate."""
    spec = (spec or CalcSpec(method="GFN1-xTB")).replace(task="single_point", want_mo=False)
    where = cache_dir() if cache else None
    say = progress or (lambda msg: log.info(msg))

    def scorer(candidates: list[Registry], probe: Callable[[Registry], Atoms]) -> list[Registry]:
        evaluated: list[Registry] = []

        def run(reg: Registry, what: str) -> Registry:
            atoms = probe(reg)
            e, scf = _energy(atoms, spec, where)
            out = reg.replace(score=e, scorer=f"energy:{spec.method}",
                              details={**reg.details, "energy_eV": e, "scf_steps": scf, "probe_atoms": len(atoms),
                                       "stage": what})
            evaluated.append(out)
            say(f"registry {what} {len(evaluated)}: shift {list(np.round(reg.shift_frac, 3))}, gap "
                f"{reg.gap:.2f} Å → E = {e:.3f} eV")
            return out

        scored = [run(r, "candidate") for r in candidates]
        best = min(scored, key=lambda r: r.score)
        scan = [best] + [run(best.replace(gap=round(best.gap + dg, 4)), "gap") for dg in GAP_SCAN]
        g = np.array([r.gap for r in scan])
        e = np.array([r.score for r in scan])
        order = np.argsort(e)[:3]
        gfit = float(g[order[0]])
        if len(set(np.round(g[order], 4))) == 3:
            c2, c1, _ = np.polyfit(g[order], e[order], 2)
            if c2 > 0:
                gfit = float(np.clip(-c1 / (2 * c2), g.min(), g.max()))
        if all(abs(gfit - x) > 0.02 for x in g):
            run(best.replace(gap=round(gfit, 4)), "gap-fit")
        emin = min(r.score for r in evaluated)
        return [r.replace(score=r.score - emin) for r in evaluated]

    return scorer


def choose_energy_registry(perovskite: str, partner: str, strain_to: str = "perovskite",
                           spec: CalcSpec | None = None, cache: bool = True,
                           progress: Callable[[str], None] | None = None) -> tuple[Registry, list[Registry]]:
    """The junction of lowest probe energy and every registry evaluated (relative energies, eV)."""
    from hetflow.structures.interface import choose_registry

    return choose_registry(perovskite, partner, strain_to, energy_scorer(spec, cache, progress))
