"""``run_calculation``: the one entry point from (Atoms, CalcSpec) to a CalcResult.

Dispatch on ``spec.backend``:

- ``"tblite"`` / ``"xtb-python"`` → :mod:`hetflow.calculators.xtb` (single point) or
  :mod:`hetflow.calculators.relax` (``task="relax"``).  tblite runs in a worker process with
  OpenBLAS preloaded when available (:mod:`hetflow.calculators.blas`).
- ``"cp2k"`` → :mod:`hetflow.calculators.cp2k` (CP2K does its own geometry optimisation).
- ``"fake"`` → ``hetflow.calculators.fake.FakeCalculator`` (orchestration tests only).

The returned ``result.atoms`` is a copy of the input with its per-atom label arrays
(``domain``, ``layer``, ``role``, …) preserved and, for relaxations, the final positions/cell.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
from ase import Atoms

from hetflow.calculators._tblite_run import run_tblite
from hetflow.calculators.base import CalcResult, CalcSpec
from hetflow.errors import InputError

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
    if not np.isfinite(atoms.positions).all():
        raise InputError(f"structure {atoms.get_chemical_formula()} has non-finite (NaN/inf) atomic positions")
    wd = None if workdir is None else Path(workdir).expanduser().resolve()
    atoms = _clean_copy(atoms)

    if spec.backend == "fake":
        from hetflow.calculators.fake import FakeCalculator

        calc = FakeCalculator()
        params = inspect.signature(calc.run).parameters
        return calc.run(atoms, spec, wd) if "workdir" in params or len(params) > 2 else calc.run(atoms, spec)

    if spec.backend == "cp2k":
        from hetflow.calculators.cp2k import run_cp2k

        return run_cp2k(atoms, spec, wd)

    if spec.backend == "tblite":
        from hetflow.calculators.xtb import xtb_settings

        xtb_settings(spec)
        return run_tblite("hetflow.calculators.run:run_local", atoms, spec, wd)

    if spec.backend == "xtb-python":
        return run_local(atoms, spec, wd)

    raise InputError(f"unknown backend {spec.backend!r}")  # pragma: no cover - CalcSpec checks


def run_local(atoms: Atoms, spec: CalcSpec, workdir: Path | None = None) -> CalcResult:
    """Run an xTB calculation in this process (what the worker executes)."""
    if spec.task == "relax":
        from hetflow.calculators.relax import relax

        return relax(atoms, spec, workdir)
    from hetflow.calculators.xtb import single_point

    r = single_point(atoms, spec)
    return CalcResult(
        energy=r["energy"],
        forces=np.asarray(r["forces"]),
        atoms=_clean_copy(atoms),
        converged=True,
        spec=spec,
        scf_steps=r["scf_steps"],
        opt_steps=None,
        wall_time=r["wall_time"],
        recovery=list(r["recovery"]),
        mo=r["mo"],
        versions=dict(r["versions"]),
        extra={} if r["stress"] is None else {"stress": np.asarray(r["stress"]).tolist()},
    )
