"""Relaxation driver: ASE optimisers on the xTB engines, label constraints, checkpoints, restart.

- Optimisers: ``spec.optimizer`` ∈ FIRE, LBFGS, BFGS, PreconLBFGS; ``spec.fmax`` (eV/Å) and
  ``spec.max_steps`` (a budget over all restarts of the same relaxation).
- Constraints by label: ``settings["freeze"] = {"domain": ["chalcohalide"]}`` or
  ``{"layer": [0, -1]}`` (negative layers count from the top: −1 = highest layer) fixes every
  atom whose label matches any listed value (several keys: the union).
- Checkpoints (only with a ``workdir``): after every optimiser step ``checkpoint.json`` is
  replaced atomically (positions, cell, steps done, fingerprint of the starting structure);
  ``relax.<n>.traj`` holds the trajectory of the n-th start.  Starting the same relaxation
  again with the same workdir resumes from the checkpoint geometry with a fresh optimiser
  memory (ASE's own restart files are written inside ``step()`` and can be one step out of
  phase with the geometry after a kill, which poisons LBFGS; a fresh memory costs a few steps
  and is always safe).  A workdir holding another structure's checkpoint is refused.
- :func:`relax_cell` relaxes ions and cell together (ASE ``FrechetCellFilter``) for periodic
  cells, e.g. the optional GFN1-xTB relaxation of a derived Pb4S3Cl2 cell.

Reported ``forces`` are the physical forces (frozen atoms included); convergence is judged on
the constrained forces.  ``CalcResult.extra["trajectory"]`` lists the trajectory files.
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

from hetflow.calculators.base import CalcResult, CalcSpec, structure_fingerprint
from hetflow.errors import CalculatorError, InputError

log = logging.getLogger("hetflow.calculators.relax")

OPTIMIZERS = ("FIRE", "LBFGS", "BFGS", "PreconLBFGS")


class EngineCalculator(Calculator):
    """ASE calculator around an xTB engine (:class:`~hetflow.calculators.xtb.TBLiteEngine`).

    Collects the SCF iterations and recovery steps of every evaluation.
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


def _optimizer(name: str, target: Any, trajectory: str | None, logfile: str | None):
    from ase import optimize
    from ase.optimize.precon import PreconLBFGS

    cls = {"FIRE": optimize.FIRE, "LBFGS": optimize.LBFGS, "BFGS": optimize.BFGS, "PreconLBFGS": PreconLBFGS}.get(name)
    if cls is None:
        raise InputError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return cls(target, trajectory=trajectory, logfile=logfile)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    from hetflow.atomic import write_atomic  # unique temporary name per writer

    write_atomic(path, json.dumps(data), fsync=False)


def _load_checkpoint(workdir: Path, atoms: Atoms, cell_relax: bool) -> dict[str, Any] | None:
    cp = workdir / "checkpoint.json"
    if not cp.exists():
        return None
    try:
        data = json.loads(cp.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalculatorError(f"checkpoint {cp} is unreadable ({exc}); delete it to start afresh") from None
    if data.get("start_fingerprint") != structure_fingerprint(atoms) or data.get("cell_relax") != cell_relax:
        raise CalculatorError(
            f"workdir {workdir} holds a checkpoint of a different relaxation; use another workdir"
        )
    return data


def relax(atoms: Atoms, spec: CalcSpec, workdir: str | Path | None = None, cell: bool = False) -> CalcResult:
    """Relax ``atoms`` with an ASE optimiser on ``spec``'s xTB engine (in this process).

    ``cell=True`` also relaxes the cell (periodic specs only).  Prefer
    :func:`hetflow.calculators.run_calculation` (with ``task="relax"``), which picks the BLAS.
    """
    from hetflow.calculators.xtb import check_xtb_input, make_engine, versions

    if spec.backend not in ("tblite", "xtb-python"):
        raise InputError(f"relax.py drives the xTB backends; backend {spec.backend!r} relaxes natively")
    if spec.optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {spec.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if cell and not spec.periodic:
        raise InputError("cell relaxation needs a periodic spec (periodic=True) and a 3D cell")
    check_xtb_input(atoms, spec)
    settings = spec.settings_dict
    t0 = time.perf_counter()

    work = atoms.copy()
    work.calc = None
    mask = freeze_mask(work, settings.get("freeze"))
    start_fp = structure_fingerprint(atoms)
    prior_steps = 0
    traj_path = logfile = None
    if workdir is not None:
        wd = Path(workdir)
        wd.mkdir(parents=True, exist_ok=True)
        data = _load_checkpoint(wd, atoms, cell)
        if data is not None:
            work.positions = np.asarray(data["positions"], dtype=float)
            work.cell = np.asarray(data["cell"], dtype=float)
            prior_steps = int(data["steps"])
            log.info("resuming relaxation in %s after %d steps", wd, prior_steps)
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

        target = FrechetCellFilter(work, scalar_pressure=float(settings.get("scalar_pressure", 0.0)))
    opt = _optimizer(spec.optimizer, target, traj_path, logfile)

    def checkpoint() -> None:
        if workdir is None:
            return
        _write_json_atomic(Path(workdir) / "checkpoint.json", {
            "start_fingerprint": start_fp, "cell_relax": cell,
            "steps": prior_steps + opt.nsteps,
            "positions": work.positions.tolist(), "cell": np.asarray(work.cell).tolist(),
            "energy": float(calc.results.get("energy", np.nan)),
            "method": spec.method, "optimizer": spec.optimizer,
        })

    opt.attach(checkpoint, interval=1)
    remaining = max(0, spec.max_steps - prior_steps)
    geo_converged = bool(opt.run(fmax=spec.fmax, steps=remaining))
    checkpoint()

    energy = float(work.get_potential_energy())
    forces = np.asarray(work.get_forces(apply_constraint=False))
    out = atoms.copy()
    out.calc = None
    out.positions = work.positions
    out.cell = work.cell
    extra: dict[str, Any] = {"fmax_reached": float(np.sqrt((np.asarray(target.get_forces()) ** 2).sum(axis=1)).max())}
    if "stress" in calc.results:
        extra["stress"] = np.asarray(calc.results["stress"]).tolist()
    if workdir is not None:
        extra["trajectory"] = sorted(str(p) for p in Path(workdir).glob("relax.*.traj"))
        extra["resumed_from_step"] = prior_steps
    if not geo_converged:
        log.warning("relaxation not converged to fmax %.3g eV/Å after %d steps", spec.fmax, prior_steps + opt.nsteps)
    return CalcResult(
        energy=energy, forces=forces, atoms=out, converged=geo_converged, spec=spec,
        scf_steps=calc.scf_steps or None, opt_steps=prior_steps + opt.nsteps,
        wall_time=time.perf_counter() - t0, recovery=calc.recovery, mo=None,
        versions=versions(spec.backend), extra=extra,
    )


def relax_cell(atoms: Atoms, spec: CalcSpec, workdir: str | Path | None = None) -> CalcResult:
    """Relax ions and cell of a periodic structure (FrechetCellFilter), e.g. Pb4S3Cl2 with GFN1.

    ``spec`` must be periodic; the BLAS worker is used as for :func:`run_calculation`.
    ``settings["scalar_pressure"]`` (eV/Å³, default 0) sets an external pressure.
    """
    if not spec.periodic:
        raise InputError("relax_cell needs a periodic spec (CalcSpec(periodic=True, ...))")
    spec = spec if spec.task == "relax" else spec.replace(task="relax")
    wd = None if workdir is None else Path(workdir).expanduser().resolve()
    if spec.backend == "tblite":
        from hetflow.calculators._tblite_run import run_tblite

        return run_tblite("hetflow.calculators.relax:_relax_cell_local", atoms, spec, wd)
    return _relax_cell_local(atoms, spec, wd)


def _relax_cell_local(atoms: Atoms, spec: CalcSpec, workdir: Path | None) -> CalcResult:
    a = atoms.copy()
    a.calc = None
    return relax(a, spec, workdir, cell=True)
