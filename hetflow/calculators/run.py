"""``run_calculation``: the one entry point from (Atoms, CalcSpec) to a CalcResult.

A lookup: the backend object of ``spec.backend`` (:mod:`hetflow.calculators.registry`) checks the
input, then

- backends that relax through ASE (``relaxes_with_ase``: tblite, xtb-python, chgnet, sevennet) run
  :func:`run_local` where the backend's calculations run (``launch``: tblite in a worker process
  with OpenBLAS preloaded when available, :mod:`hetflow.calculators.blas`; the others in this
  process) — a single point by the backend's ``run``, a relaxation by
  :func:`hetflow.calculators.relax.relax` on the backend's ``engine``;
- the others (cp2k, which does its own geometry optimisation; fake) run their ``run``.

**Pre-relaxation** (``spec.prerelax = "chgnet"`` or ``"sevennet"``, ``task="relax"``): stage 1
relaxes with the MLIP (same ``optimizer``, ``fmax``, ``max_steps``, ``freeze``, ``optimizer_kwargs``
and ``threads``; checkpoints in ``<workdir>/prerelax``), stage 2 runs the target method's own
relaxation from the stage-1 geometry (checkpoints in ``<workdir>``).  Started again with the same
workdir, a finished stage 1 is not stepped again and stage 2 resumes from its checkpoint.  The
result's energy, forces, ``converged``, ``opt_steps`` and ``force_calls`` are the target method's own,
at its own final geometry; ``extra["prerelax"]`` records the MLIP stage (model, force calls, steps,
final fmax, converged, energy, wall time) and ``versions["prerelax"]`` its model and package
versions.  ``wall_time`` covers both stages.

**Guided relaxation** (``spec.accelerate`` = a machine-learned potential, ``task="relax"``):
:func:`hetflow.calculators.accelerated.relax_accelerated`, launched where the target backend runs
(the tblite worker process; CP2K: one single point per target call in ``<workdir>/target-NNN``);
checkpoints in ``<workdir>/accelerated.json``.

The returned ``result.atoms`` is a copy of the input with its per-atom label arrays
(``domain``, ``layer``, ``role``, …) preserved and, for relaxations, the final positions/cell.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ase import Atoms

from hetflow import validate
from hetflow.calculators import registry
from hetflow.calculators.accelerated import relax_accelerated
from hetflow.calculators.base import CalcResult, CalcSpec
from hetflow.calculators.relax import cell_filter_mode, relax
from hetflow.errors import InputError

log = logging.getLogger("hetflow.calculators")


def _clean_copy(atoms: Atoms) -> Atoms:
    out = atoms.copy()
    out.calc = None
    return out


def run_calculation(atoms: Atoms, spec: CalcSpec, workdir: str | Path | None = None) -> CalcResult:
    """Run ``spec`` on ``atoms`` (energies eV, forces eV/Å) and return a :class:`CalcResult`.

    ``workdir`` holds checkpoints (relaxation trajectory, optimiser state) and CP2K
    inputs/outputs; a relaxation started again with the same workdir resumes from its last
    checkpoint.  Without it, relaxations do not checkpoint and CP2K uses a temporary directory.
    """
    if not isinstance(atoms, Atoms):
        raise InputError(f"run_calculation needs an ase.Atoms, got {type(atoms).__name__}")
    if not isinstance(spec, CalcSpec):
        raise InputError(f"run_calculation needs a CalcSpec, got {type(spec).__name__}")
    # finite positions; a periodic cell of non-zero volume and bounded size — before any worker starts
    validate.calc_cell(atoms, spec.periodic, f"structure {atoms.get_chemical_formula()}")
    wd = None if workdir is None else Path(workdir).expanduser().resolve()
    atoms = _clean_copy(atoms)

    if spec.prerelax is not None:
        return _run_prerelaxed(atoms, spec, wd)
    backend = registry.backend(spec.backend)
    backend.check(atoms, spec)
    if spec.accelerate is not None:  # a guided relaxation runs where the target level runs
        if backend.relaxes_with_ase:
            return backend.launch("hetflow.calculators.accelerated:relax_accelerated", atoms, spec, wd)
        return relax_accelerated(atoms, spec, wd)
    if backend.relaxes_with_ase:
        return backend.launch("hetflow.calculators.run:run_local", atoms, spec, wd)
    return backend.run(atoms, spec, wd)


def run_local(atoms: Atoms, spec: CalcSpec, workdir: Path | None = None) -> CalcResult:
    """Run a calculation of a backend that relaxes through ASE in this process (what the tblite
    worker executes): a relaxation in :mod:`hetflow.calculators.relax`, else the backend's single point."""
    if spec.task == "relax":
        return relax(atoms, spec, workdir, cell=cell_filter_mode(spec) is not None)
    return registry.backend(spec.backend).run(atoms, spec, workdir)


#: Settings that the MLIP stage of a pre-relaxation takes over from the target spec.
PRERELAX_SETTINGS = ("freeze", "optimizer_kwargs", "threads")


def prerelax_spec(spec: CalcSpec) -> CalcSpec:
    """The MLIP relaxation spec of stage 1 of ``spec`` (which has ``prerelax`` set)."""
    if spec.prerelax is None:
        raise InputError("prerelax_spec needs a spec with prerelax set")
    s = spec.settings_dict
    return CalcSpec(
        backend=spec.prerelax, task="relax", charge=spec.charge, multiplicity=spec.multiplicity,
        periodic=spec.periodic, fmax=spec.fmax, max_steps=spec.max_steps, optimizer=spec.optimizer,
        settings={k: s[k] for k in PRERELAX_SETTINGS if k in s},
    )


def _run_prerelaxed(atoms: Atoms, spec: CalcSpec, wd: Path | None) -> CalcResult:
    """Stage 1: MLIP relaxation; stage 2: the target method's relaxation from its geometry."""
    pre_spec = prerelax_spec(spec)
    target_spec = spec.replace(prerelax=None)
    pre = run_calculation(atoms, pre_spec, None if wd is None else wd / "prerelax")
    log.info("prerelax %s: %d force calls, fmax %.3g eV/Å, converged=%s",
             pre_spec.method, pre.force_calls or 0, pre.extra.get("fmax_reached", float("nan")), pre.converged)
    start = atoms.copy()
    start.positions = pre.atoms.positions
    start.cell = pre.atoms.cell
    main = run_calculation(start, target_spec, wd)
    main.spec = spec
    main.wall_time += pre.wall_time
    main.extra["prerelax"] = {
        "backend": pre_spec.backend, "method": pre_spec.method, "optimizer": pre_spec.optimizer,
        "force_calls": pre.force_calls, "opt_steps": pre.opt_steps,
        "fmax_reached": pre.extra.get("fmax_reached"), "converged": bool(pre.converged),
        "energy": float(pre.energy), "wall_time": float(pre.wall_time),
    }
    if "resumed_from_step" in pre.extra:
        main.extra["prerelax"]["resumed_from_step"] = pre.extra["resumed_from_step"]
    main.versions["prerelax"] = ", ".join(f"{k} {v}" for k, v in pre.versions.items())
    return main
