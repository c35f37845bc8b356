"""Relaxation driver: ASE/Sella optimisers on the xTB and MLIP engines, constraints, checkpoints.

- Engines: the ``engine(spec)`` of every backend with ``relaxes_with_ase``
  (:mod:`hetflow.calculators.registry`: tblite, xtb-python, chgnet, sevennet) — anything with
  ``compute(atoms) -> EngineResult`` (:class:`hetflow.calculators.base.Engine`).
- Optimisers: ``spec.optimizer`` ∈ :data:`OPTIMIZERS` = FIRE, LBFGS, BFGS, PreconLBFGS (ASE) and
  Sella (``sella``, minimisation ``order=0`` in **Cartesian** coordinates: ``internal=True`` is
  refused — internal-coordinate optimisers exhaust memory on these dense ionic clusters).
  ``settings["optimizer_kwargs"]`` (a dict) is passed to the optimiser's constructor, e.g.
  ``{"maxstep": 0.1}`` for FIRE or ``{"delta0": 0.05}`` for Sella.  ``spec.fmax`` (eV/Å) and
  ``spec.max_steps`` (a budget of optimiser steps over all restarts of the same relaxation).
- Force calls: every energy+force evaluation of the engine is counted
  (``CalcResult.force_calls``, summed over restarts) — not optimiser steps: LBFGS line searches,
  PreconLBFGS and Sella can evaluate more than once per step, and the final energy of a run that
  stopped on its step budget is one more evaluation.
- ``converged`` means the fmax criterion is met on the final geometry: max over atoms of
  |F| of the *constrained* forces (frozen atoms excluded; with a cell filter, the cell
  components too) < ``spec.fmax``, evaluated by this module, whatever the optimiser reports.
  ``extra["fmax_reached"]`` is that number.
- Constraints by label: ``settings["freeze"] = {"domain": ["chalcohalide"]}`` or
  ``{"layer": [0, -1]}`` (negative layers count from the top: −1 = highest layer) fixes every
  atom whose label matches any listed value (several keys: the union).
- Checkpoints (only with a ``workdir``): after every optimiser step ``checkpoint.json`` is
  replaced atomically (positions, cell, steps and force calls done, fingerprint of the starting
  structure, converged flag); ``relax.<n>.traj`` holds the trajectory of the n-th start.
  Starting the same relaxation again with the same workdir resumes from the checkpoint geometry
  with a fresh optimiser memory (ASE's own restart files are written inside ``step()`` and can
  be one step out of phase with the geometry after a kill, which poisons LBFGS; a fresh memory
  costs a few steps and is always safe).  A relaxation whose checkpoint says converged is not
  stepped again (one evaluation confirms its energy and forces).  A workdir holding another
  structure's checkpoint is refused.
- :func:`relax_cell` relaxes ions and cell together (ASE ``FrechetCellFilter``) for periodic
  cells, e.g. the optional GFN1-xTB relaxation of a derived Pb4S3Cl2 cell.

A pre-relaxation (``CalcSpec.prerelax``) is two calls of :func:`relax` orchestrated by
:func:`hetflow.calculators.run.run_calculation` (the MLIP stage in ``<workdir>/prerelax``).

Reported ``forces`` are the physical forces (frozen atoms included).
``CalcResult.extra["trajectory"]`` lists the trajectory files.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.constraints import FixAtoms

from hetflow.atomic import write_atomic
from hetflow.calculators import registry
from hetflow.calculators.base import OPTIMIZERS, CalcResult, CalcSpec, Engine, structure_fingerprint
from hetflow.errors import CalculatorError, InputError

log = logging.getLogger("hetflow.calculators.relax")


SELLA_INTERNAL_REFUSED = (
    "Sella with internal=True is not supported: internal-coordinate optimisers exhaust memory on these "
    "dense ionic clusters; use Sella in Cartesian coordinates (internal=False, the default here)"
)


class EngineCalculator(Calculator):
    """ASE calculator around an engine (xTB :class:`~hetflow.calculators.xtb.TBLiteEngine`, an
    :class:`~hetflow.calculators.mlip.MLIPEngine`, …).

    ``evaluations`` counts the engine's energy+force evaluations (the force calls); it also
    collects the SCF iterations and recovery steps of every evaluation.
    """

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, engine: Any) -> None:
        super().__init__()
        self.engine = engine
        self.scf_steps = 0
        self.evaluations = 0
        self.recovery: list[str] = []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):  # noqa: D401
        super().calculate(atoms, properties, system_changes)
        if not np.isfinite(self.atoms.positions).all() or not np.isfinite(np.asarray(self.atoms.cell)).all():
            raise CalculatorError("the optimiser produced non-finite positions; try optimizer FIRE")
        r = self.engine.compute(self.atoms)
        self.evaluations += 1
        self.scf_steps += r.scf_steps or 0
        self.recovery.extend(f"eval {self.evaluations}: {x}" for x in r.recovery)
        self.results = {"energy": r.energy, "free_energy": r.energy, "forces": r.forces}
        if r.stress is not None:
            self.results["stress"] = np.asarray(r.stress)


def make_engine(spec: CalcSpec) -> Engine:
    """The energy/force engine of ``spec`` (its backend's ``engine``)."""
    return registry.backend(spec.backend).engine(spec)


def freeze_mask(atoms: Atoms, freeze: dict[str, Any] | None) -> np.ndarray:
    """Boolean mask of atoms to fix, from ``{label: [values]}`` (see module doc)."""
    mask = np.zeros(len(atoms), dtype=bool)
    if not freeze:
        return mask
    if not isinstance(freeze, dict):
        raise InputError(f"settings 'freeze' must map a label to values, got {freeze!r}")
    for label, values in freeze.items():
        if label not in atoms.arrays:
            raise InputError(
                f"cannot freeze by {label!r}: the structure has no per-atom array {label!r} "
                f"(has {', '.join(k for k in atoms.arrays if k not in ('numbers', 'positions'))})"
            )
        arr = atoms.arrays[label]
        values = [values] if isinstance(values, (str, int, np.integer)) else list(values)
        if label == "layer" or np.issubdtype(np.asarray(arr).dtype, np.integer):
            top = int(np.max(arr))
            wanted = {int(v) + top + 1 if int(v) < 0 else int(v) for v in values}
            hit = np.isin(np.asarray(arr, dtype=int), list(wanted))
        else:
            hit = np.isin(np.asarray(arr).astype(str), [str(v) for v in values])
        if not hit.any():
            raise InputError(f"freeze {label}={values} matches no atom (values present: {sorted(set(map(str, arr)))[:10]})")
        mask |= hit
    if mask.all():
        raise InputError("freeze fixes every atom; nothing left to relax")
    return mask


def optimizer_kwargs(spec: CalcSpec, cell: bool = False) -> dict[str, Any]:
    """``settings["optimizer_kwargs"]`` validated for ``spec.optimizer`` (see module doc)."""
    if spec.optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {spec.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    kw = spec.settings_dict.get("optimizer_kwargs") or {}
    if not isinstance(kw, dict):
        raise InputError(f"settings 'optimizer_kwargs' must be a dict, got {kw!r}")
    reserved = {"trajectory", "logfile", "restart", "atoms"} & set(kw)
    if reserved:
        raise InputError(f"optimizer_kwargs may not set {', '.join(sorted(reserved))} (hetflow manages them)")
    if spec.optimizer == "Sella":
        if kw.get("internal"):
            raise InputError(SELLA_INTERNAL_REFUSED)
        if int(kw.get("order", 0)) != 0:
            raise InputError("Sella order must be 0 here (a minimisation; order 1 searches saddle points)")
        if cell or kw.get("optimize_cell"):
            raise InputError("Sella cell relaxation is not supported here; use FIRE, LBFGS, BFGS or PreconLBFGS")
    return dict(kw)


def _optimizer(name: str, target: Any, trajectory: str | None, logfile: str | None, kw: dict[str, Any]):
    if name == "Sella":
        try:
            from sella import Sella
        except ImportError as exc:
            raise CalculatorError(f"optimizer 'Sella' needs the sella package ({exc}); pip install 'hetflow[mlip]'") from None
        cls: Any = Sella
        kw = {"order": 0, "internal": False} | kw
    else:
        from ase import optimize
        from ase.optimize.precon import PreconLBFGS

        cls = {"FIRE": optimize.FIRE, "LBFGS": optimize.LBFGS, "BFGS": optimize.BFGS, "PreconLBFGS": PreconLBFGS}[name]
        if name == "PreconLBFGS":
            kw = _finite_precon(target, kw)
    try:
        return cls(target, trajectory=trajectory, logfile=logfile, **kw)
    except TypeError as exc:
        raise InputError(f"optimizer {name} does not accept optimizer_kwargs {sorted(kw)}: {exc}") from None


def _finite_precon(target: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """ASE's Exp preconditioner estimates the nearest-neighbour distance from the cell and fails on
    a cluster without one ("increased r_cut to twice system extent …"); give it that distance (Å)
    from the geometry instead.  Periodic systems and an explicit preconditioner object are left alone."""
    atoms = getattr(target, "atoms", target)
    precon = kw.get("precon", "auto")
    if not isinstance(precon, str) or precon not in ("Exp", "auto") or any(atoms.pbc) or len(atoms) < 2:
        return kw
    if precon == "auto" and len(atoms) < 100:  # ASE's auto: no preconditioner below 100 atoms
        return kw
    from ase.optimize.precon import Exp
    from scipy.spatial.distance import pdist

    r_nn = float(pdist(atoms.get_positions()).min())
    return {**kw, "precon": Exp(r_NN=r_nn)}


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data), fsync=False)


def read_checkpoint(path: Path, atoms: Atoms, **expected: Any) -> dict[str, Any] | None:
    """The checkpoint JSON at ``path`` (None if there is none), refused when it belongs to another
    relaxation: another starting structure, or another value of any ``expected`` field."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalculatorError(f"checkpoint {path} is unreadable ({exc}); delete it to start afresh") from None
    if data.get("start_fingerprint") != structure_fingerprint(atoms) or any(
            data.get(k) != v for k, v in expected.items()):
        raise CalculatorError(f"workdir {path.parent} holds a checkpoint of a different relaxation; use another workdir")
    return data


def max_force(forces: np.ndarray) -> float:
    """Largest per-atom force norm, eV/Å (0 for an empty array)."""
    f = np.asarray(forces, dtype=float).reshape(-1, 3)
    return float(np.sqrt((f ** 2).sum(axis=1)).max()) if len(f) else 0.0


def cell_filter_mode(spec: CalcSpec) -> str | None:
    """``settings["cell_filter"]``: None/False (ions only), True or "full" (ions + cell),
    "hydrostatic" (ions + isotropic cell scaling, the cell shape kept)."""
    mode = spec.settings_dict.get("cell_filter")
    if mode in (None, False):
        return None
    if mode is True or mode == "full":
        return "full"
    if mode == "hydrostatic":
        return "hydrostatic"
    raise InputError(f"setting cell_filter must be true, 'full' or 'hydrostatic', got {mode!r}")


def relax(atoms: Atoms, spec: CalcSpec, workdir: str | Path | None = None, cell: bool = False) -> CalcResult:
    """Relax ``atoms`` with ``spec.optimizer`` on ``spec``'s engine, in this process.

    ``cell=True`` also relaxes the cell (periodic specs only).  Prefer
    :func:`hetflow.calculators.run_calculation` (with ``task="relax"``), which picks the BLAS
    process for tblite and runs a ``prerelax`` stage first.
    """
    backend = registry.backend(spec.backend)
    if not backend.relaxes_with_ase:
        raise InputError(f"relax.py drives the {', '.join(registry.ase_relaxed_names())} backends; "
                         f"backend {spec.backend!r} relaxes natively")
    kw = optimizer_kwargs(spec, cell)
    if cell and not spec.periodic:
        raise InputError("cell relaxation needs a periodic spec (periodic=True) and a 3D cell")
    backend.check(atoms, spec)
    settings = spec.settings_dict
    t0 = time.perf_counter()

    work = atoms.copy()
    work.calc = None
    mask = freeze_mask(work, settings.get("freeze"))
    start_fp = structure_fingerprint(atoms)
    prior_steps = prior_calls = 0
    prior_converged = False
    traj_path = logfile = None
    if workdir is not None:
        wd = Path(workdir)
        wd.mkdir(parents=True, exist_ok=True)
        data = read_checkpoint(wd / "checkpoint.json", atoms, cell_relax=cell)
        if data is not None:
            work.positions = np.asarray(data["positions"], dtype=float)
            work.cell = np.asarray(data["cell"], dtype=float)
            prior_steps = int(data["steps"])
            prior_calls = int(data.get("force_calls", 0))
            # converged to *this* spec's fmax (a rerun asking for a tighter fmax goes on stepping)
            prior_converged = bool(data.get("converged")) and data.get("fmax") is not None \
                and float(data["fmax"]) < spec.fmax
            log.info("resuming relaxation in %s after %d steps (%d force calls)", wd, prior_steps, prior_calls)
        n = len(list(wd.glob("relax.*.traj"))) + 1
        traj_path = str(wd / f"relax.{n}.traj")
        logfile = str(wd / "relax.log")
    if mask.any():
        work.set_constraint(list(work.constraints) + [FixAtoms(mask=mask)])

    calc = EngineCalculator(make_engine(spec))
    work.calc = calc
    target: Any = work
    if cell:
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(work, hydrostatic_strain=cell_filter_mode(spec) == "hydrostatic",
                                   scalar_pressure=float(settings.get("scalar_pressure", 0.0)))
    opt = _optimizer(spec.optimizer, target, traj_path, logfile, kw)

    def fmax_now() -> float:
        return max_force(target.get_forces())

    def checkpoint(final: bool = False) -> None:
        if workdir is None:
            return
        fmax = fmax_now() if final else None
        _write_json_atomic(Path(workdir) / "checkpoint.json", {
            "start_fingerprint": start_fp, "cell_relax": cell,
            "steps": prior_steps + opt.nsteps, "force_calls": prior_calls + calc.evaluations,
            "positions": work.positions.tolist(), "cell": np.asarray(work.cell).tolist(),
            "energy": float(calc.results.get("energy", np.nan)),
            "method": spec.method, "backend": spec.backend, "optimizer": spec.optimizer,
            "converged": bool(final and fmax is not None and fmax < spec.fmax),
            "fmax": fmax,
        })

    opt.attach(checkpoint, interval=1)
    remaining = 0 if prior_converged else max(0, spec.max_steps - prior_steps)
    opt.run(fmax=spec.fmax, steps=remaining)

    energy = float(work.get_potential_energy())  # one more evaluation only if the last step moved atoms
    forces = np.asarray(work.get_forces(apply_constraint=False))
    fmax_reached = fmax_now()
    converged = fmax_reached < spec.fmax
    checkpoint(final=True)
    force_calls = prior_calls + calc.evaluations
    out = atoms.copy()
    out.calc = None
    out.positions = work.positions
    out.cell = work.cell
    extra: dict[str, Any] = {"fmax_reached": fmax_reached, "force_calls": force_calls,
                             "optimizer": spec.optimizer}
    if "stress" in calc.results:
        extra["stress"] = np.asarray(calc.results["stress"]).tolist()
    if workdir is not None:
        extra["trajectory"] = sorted(str(p) for p in Path(workdir).glob("relax.*.traj"))
        extra["resumed_from_step"] = prior_steps
    if hasattr(calc.engine, "threads"):
        extra["threads"] = calc.engine.threads
    if not converged:
        # an expected outcome (step caps), recorded in converged=False: INFO, not WARNING
        log.info("relaxation not converged: fmax %.3g eV/Å > %.3g after %d steps, %d force calls",
                 fmax_reached, spec.fmax, prior_steps + opt.nsteps, force_calls)
    return CalcResult(
        energy=energy, forces=forces, atoms=out, converged=converged, spec=spec,
        scf_steps=calc.scf_steps or None, opt_steps=prior_steps + opt.nsteps,
        wall_time=time.perf_counter() - t0, recovery=calc.recovery, mo=None,
        versions=backend.versions(spec), extra=extra, force_calls=force_calls,
    )


def relax_cell(atoms: Atoms, spec: CalcSpec, workdir: str | Path | None = None) -> CalcResult:
    """Relax ions and cell of a periodic structure (FrechetCellFilter), e.g. Pb4S3Cl2 with GFN1.

    ``spec`` must be periodic; the BLAS worker is used as for :func:`run_calculation`.
    ``settings["scalar_pressure"]`` (eV/Å³, default 0) sets an external pressure.
    A ``prerelax`` stage is not supported here.
    """
    if not spec.periodic:
        raise InputError("relax_cell needs a periodic spec (CalcSpec(periodic=True, ...))")
    if spec.prerelax is not None:
        raise InputError("prerelax is not supported with cell relaxation; relax the cell with the target method alone")
    spec = spec if spec.task == "relax" else spec.replace(task="relax")
    wd = None if workdir is None else Path(workdir).expanduser().resolve()
    backend = registry.backend(spec.backend)
    backend.check(atoms, spec)  # deterministic errors before any worker process is started
    return backend.launch("hetflow.calculators.relax:_relax_cell_local", atoms, spec, wd)


def _relax_cell_local(atoms: Atoms, spec: CalcSpec, workdir: Path | None) -> CalcResult:
    a = atoms.copy()
    a.calc = None
    return relax(a, spec, workdir, cell=True)
