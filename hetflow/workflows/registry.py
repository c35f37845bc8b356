"""Energy-scored interface registry: single points of probe models over candidate junctions.

The structure builders (:func:`hetflow.structures.interface.build_heterostructure`,
``build_slab``) take a *scorer*; this module provides the calculator-backed one, so the
structures layer never imports a calculator.  :func:`energy_scorer` returns a scorer that

1. computes a single point (default GFN1-xTB, tblite, periodic) of the probe model — a periodic
   slab, 2 × 2 chalcohalide cells in plane (≈ 16 Å), five perovskite layers on one b/2 block, the
   same for every model size, so quick, full and paper-scale models share one junction; periodic
   in plane so that every registry has the same composition — for each candidate registry (a
   candidate whose probe cannot be built, atoms overlapping, is recorded as rejected);
2. refines the gap of the lowest one that continues the cation sub-network on a five-point scan
   (± 0.2, ± 0.4 Å) and takes the minimum of a parabola through the three lowest points (kept
   inside the scanned range);
3. returns every evaluated registry with ``score`` = energy relative to the lowest (eV) and the
   absolute energy and SCF iterations in ``details``.

:func:`energy_relaxer` then relaxes the chosen junction in its periodic probe slab (default
GFN1-xTB, LBFGS to 0.05 eV/Å; perovskite layers 0–2 and the chalcohalide's top five planes move,
the outer planes keep the bulk geometry); the builders give the atoms next to the interface the
relaxed junction's displacements.  The rigid junction puts the chalcohalide's top Pb 0.64 Å from the
perovskite's cation columns; relaxed they stand 0.42–0.44 Å from them.

Energies and relaxed junctions are cached on disk by calculation key (structure + spec + code
version) in ``$HETFLOW_CACHE`` (default ``~/.cache/hetflow``)/registry, so a second build costs
nothing.  The default pair's entries (CsPbCl3/Pb4S3Cl2: probes, relaxed junction, relaxed faces of
the quick and full models) ship with hetflow under the same keys (:func:`prepared_dir`, regenerated
by :mod:`hetflow.recipes.prepare`), so a fresh machine builds them in seconds; any other
pair, size or spec computes and caches as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from ase import Atoms

from hetflow.calculators.base import CalcSpec, calc_key
from hetflow.errors import HetflowError, StructureError
from hetflow.structures.registry import Registry

__all__ = ["energy_scorer", "energy_relaxer", "cache_dir", "prepared_dir", "record_cache_use",
           "choose_energy_registry", "JUNCTION_SPEC"]

log = logging.getLogger("hetflow.workflows.registry")

#: gap offsets (Å) of the refinement scan around the best candidate
GAP_SCAN = (-0.4, -0.2, 0.2, 0.4)

#: the junction relaxation: GFN1-xTB (periodic), LBFGS to 0.05 eV/Å (the probe slab starts at ≈ 1.1
#: eV/Å; ≈ 100 force calls, 5 min on 2 cores)
JUNCTION_SPEC = dict(method="GFN1-xTB", periodic=True, task="relax", fmax=0.05, max_steps=600, optimizer="LBFGS")


def cache_dir() -> Path:
    """Where probe energies are cached (``$HETFLOW_CACHE``/registry, else ~/.cache/hetflow/registry)."""
    root = os.environ.get("HETFLOW_CACHE") or str(Path.home() / ".cache" / "hetflow")
    return Path(root).expanduser() / "registry"


def prepared_dir() -> Path:
    """The prepared models shipped with hetflow (package data ``hetflow/prepared``): cache entries
    of the default pair's probe energies, relaxed junction and relaxed faces, under the same
    content keys as the user's cache, with ``manifest.json`` (what, method, key, date, commit)."""
    return Path(__file__).resolve().parent.parent / "prepared"


#: cache files read while recording (:func:`record_cache_use`), in order
_RECORDING: list[list[Path]] = []


@contextmanager
def record_cache_use() -> Iterator[list[Path]]:
    """Collect the cache files the builders read or write inside the ``with`` block (used by
    :mod:`hetflow.recipes.prepare` to ship exactly the entries a model needs)."""
    used: list[Path] = []
    _RECORDING.append(used)
    try:
        yield used
    finally:
        _RECORDING.remove(used)


def _load(path: Path) -> dict | None:
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # unreadable cache entry: recompute and overwrite
    return None


def _cache_read(atoms: Atoms, spec: CalcSpec, cache: Path | None, tag: str = "") -> tuple[Path | None, dict | None]:
    """The cache file of (atoms, spec[, tag]) and its content: the user's cache first, then the
    prepared models shipped with hetflow (None when neither has it, or the cache is off)."""
    if cache is None:
        return None, None
    name = f"{calc_key(atoms, spec)}{tag}.json"
    path = cache / name
    for used in _RECORDING:
        used.append(path)
    d = _load(path)
    if d is None and use_prepared():
        d = _load(prepared_dir() / name)
    return path, d


def use_prepared() -> bool:
    """Whether the shipped prepared models are used (``HETFLOW_PREPARED=0`` turns them off, to
    recompute everything in ``$HETFLOW_CACHE``)."""
    return os.environ.get("HETFLOW_PREPARED", "1").strip().lower() not in ("0", "no", "off", "false")


def _cache_write(path: Path | None, data: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home must not stop a build
        log.info("registry cache not written (%s)", exc)


def _energy(atoms: Atoms, spec: CalcSpec, cache: Path | None) -> tuple[float, int | None]:
    from hetflow.calculators.run import run_calculation

    path, d = _cache_read(atoms, spec, cache)
    if d is not None and "energy" in d:
        return float(d["energy"]), d.get("scf_steps")
    r = run_calculation(atoms, spec)
    if not np.isfinite(r.energy):
        raise HetflowError(f"probe single point gave a non-finite energy ({r.energy})")
    _cache_write(path, {"energy": r.energy, "scf_steps": r.scf_steps, "atoms": len(atoms),
                        "formula": atoms.get_chemical_formula(), "spec": spec.key()})
    return float(r.energy), r.scf_steps


def energy_scorer(spec: CalcSpec | None = None, cache: bool = True,
                  progress: Callable[[str], None] | None = None) -> Callable:
    """A registry scorer for the builders: single-point energies of probe models (see module doc).

    ``spec``: the calculation (default GFN1-xTB; always a periodic single point of the probe slab);
    ``progress``: called with one line per evaluated candidate."""
    spec = (spec or CalcSpec(method="GFN1-xTB", periodic=True)).replace(task="single_point", want_mo=False,
                                                                         periodic=True)
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
            say(f"registry {what} {len(evaluated)}: shift {np.round(reg.shift_frac, 3).tolist()}, gap "
                f"{reg.gap:.2f} Å → E = {e:.3f} eV")
            return out

        scored = []
        for r in candidates:
            try:
                scored.append(run(r, "candidate"))
            except StructureError as exc:  # a junction whose probe cannot be built (atoms overlap)
                evaluated.append(r.replace(score=None, scorer=f"energy:{spec.method}",
                                           details={**r.details, "stage": "candidate", "rejected": str(exc)}))
        eligible = [r for r in scored if r.details.get("continuity", True)] or scored
        if not eligible:
            raise HetflowError("no candidate registry could be evaluated")
        best = min(eligible, key=lambda r: r.score)
        scan = [best]
        for dg in GAP_SCAN:
            try:
                scan.append(run(best.replace(gap=round(best.gap + dg, 4)), "gap"))
            except StructureError:
                continue  # that gap puts atoms too close: not a candidate
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
        emin = min(r.score for r in evaluated if r.score is not None)
        return [r if r.score is None else r.replace(score=r.score - emin) for r in evaluated]

    return scorer


def energy_relaxer(spec: CalcSpec | None = None, cache: bool = True,
                   progress: Callable[[str], None] | None = None) -> Callable[[Atoms], tuple[np.ndarray, dict]]:
    """The relaxer of the builders (``relaxer=``): relaxes the atoms a structure marks ``free``, the
    others fixed — the periodic probe slab of the junction
    (:func:`~hetflow.structures.interface.junction_probe`) or, finite, the chalcohalide domain whose
    cut faces are relaxed (:func:`~hetflow.structures.interface.partner_faces_model`).

    ``spec``: the relaxation (default :data:`JUNCTION_SPEC`: periodic GFN1-xTB, LBFGS, 0.05 eV/Å);
    the result (positions, energies before/after, residual force, force calls) is cached like the
    probe energies, and the relaxation runs in ``<cache>/work/<key>/`` (``relax.log``, trajectory,
    checkpoint: an interrupted build resumes).  A relaxation that stops unconverged is kept and
    says so (``converged``)."""
    base = (spec or CalcSpec(**JUNCTION_SPEC)).replace(task="relax", want_mo=False)
    base = base.with_settings(freeze={"free": ["False"]})
    where = cache_dir() if cache else None
    say = progress or (lambda msg: log.info(msg))

    def relaxer(probe: Atoms) -> tuple[np.ndarray, dict]:
        from hetflow.calculators.run import run_calculation

        if "free" not in probe.arrays:
            raise HetflowError("the structure to relax carries no 'free' array (junction_probe / partner_faces)")
        spec = base.replace(periodic=bool(probe.pbc.any()))  # the periodic probe slab, or a finite domain
        what = probe.info.get("relax_what", "junction")
        free = np.asarray(probe.arrays["free"], bool)
        # which atoms move is part of the calculation: it enters the cache key
        tag = "-free-" + hashlib.sha256(np.packbits(free).tobytes()).hexdigest()[:12]
        path, d = _cache_read(probe, spec, where, tag)
        if d is None or "positions" not in d:
            # a work directory beside the cache: the optimiser's log shows progress, the trajectory
            # opens in ASE/OVITO, and an interrupted build resumes from the last step
            wd = None if path is None else path.parent / "work" / path.stem
            say(f"{what}: relaxing {int(free.sum())} of {len(probe)} atoms with "
                f"{spec.method} ({spec.optimizer}, fmax {spec.fmax} eV/Å)"
                + ("" if wd is None else f"; progress in {wd / 'relax.log'}"))
            start = run_calculation(probe, spec.replace(task="single_point"))
            r = run_calculation(probe, spec, workdir=wd)
            fmax = float(np.linalg.norm(np.asarray(r.forces)[free], axis=1).max())
            fmax0 = float(np.linalg.norm(np.asarray(start.forces)[free], axis=1).max())
            d = {"what": what, "atoms": len(probe), "formula": probe.get_chemical_formula(),
                 "positions": np.asarray(r.atoms.positions).tolist(), "method": spec.method, "optimizer": spec.optimizer,
                 "fmax_target": spec.fmax, "converged": bool(r.converged), "energy_rigid_eV": float(start.energy),
                 "energy_eV": float(r.energy), "fmax_rigid": round(fmax0, 4), "fmax": round(fmax, 4),
                 "force_calls": r.force_calls, "spec": spec.key()}
            _cache_write(path, d)
        say(f"{what}: {d['method']} relaxation {'converged' if d['converged'] else 'NOT converged'} in "
            f"{d['force_calls']} force calls, fmax {d['fmax_rigid']:.2f} → {d['fmax']:.3f} eV/Å, "
            f"E {d['energy_eV'] - d['energy_rigid_eV']:+.3f} eV")
        meta = {k: v for k, v in d.items() if k not in ("positions", "spec", "what", "atoms", "formula")}
        return np.asarray(d["positions"], float), meta

    return relaxer


def choose_energy_registry(perovskite: str, partner: str, strain_to: str = "perovskite",
                           spec: CalcSpec | None = None, cache: bool = True,
                           progress: Callable[[str], None] | None = None,
                           relax: bool = True) -> tuple[Registry, list[Registry]]:
    """The junction of lowest probe energy and every registry evaluated (relative energies, eV);
    with ``relax`` (default) the chosen junction relaxed by :func:`energy_relaxer`."""
    from hetflow.structures.interface import choose_registry

    return choose_registry(perovskite, partner, strain_to, energy_scorer(spec, cache, progress),
                           relaxer=energy_relaxer(cache=cache, progress=progress) if relax else None)
