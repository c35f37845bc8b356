"""Shared plumbing of the recipes: options, method specs, running a workflow, references.

A recipe builds a :class:`~hetflow.workflows.graph.Workflow` (one task per calculation,
content-keyed, so a rerun only computes what is missing), runs it through the engine on the
chosen executor and store, and hands the stored results to the pure analysis layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from hetflow.calculators import mlip_models
from hetflow.calculators.base import CalcSpec
from hetflow.errors import InputError
from hetflow.structures.phases import get_phase
from hetflow.workflows.graph import Workflow

LEVELS = ("xtb", "pbe", "mlip")

#: machine-learned potentials usable as --level mlip (any model of the catalogue) and as --prerelax
MLIPS = mlip_models.choices()
PRERELAX = mlip_models.MLIP_BACKENDS


#: relaxation / gate thresholds (eV/Å) and the optimiser safety net (steps)
FULL_FMAX = 0.05
QUICK_FMAX = 0.1
MAX_STEPS = 3000


@dataclass
class RecipeOptions:
    """How a recipe runs.

    level: "xtb" (tblite, local by default), "pbe" (CP2K with the paper preset; realistic
        only on a cluster — use ``executor="slurm"`` etc.) or "mlip" (a PBE-trained
        machine-learned potential, ``mlip`` = a model of :mod:`hetflow.calculators.mlip_models`:
        a screening level, not DFT).
    method: xTB Hamiltonian for level xtb (GFN1-xTB default: robust relaxations of these
        clusters, see docs/MEASUREMENTS.md; GFN2-xTB selectable).
    quick: smaller faithful models (S1/S2: 2 × 2 × 5 perovskite; S3 keeps 3 × 3 × 5) and a looser,
        still converged threshold (fmax 0.1 eV/Å); never capped relaxations.
    reference: "molecule" (relaxed PbX2 molecules in vacuum, consistent with the finite
        models) or "bulk" (bulk PbX2 per formula unit, periodic).
    outdir: where tables, plots, the store (results.db) and the work directory go.
    store: result store location (SQLite path or postgresql:// URL); default outdir/results.db.
    executor: "local", "slurm", "pbs" or "lsf"; executor_options go to
        :func:`hetflow.workflows.executors.make_executor` (with a scheduler, ``{"pack": N}``
        runs N calculations per allocation and chains warm starts behind their parents' jobs:
        :mod:`hetflow.workflows.packing`).
    fmax: convergence threshold of every relaxation and of the table's gate, eV/Å (None: 0.05,
        quick 0.1).
    max_steps: safety net on the optimiser steps of one relaxation (None: 3000); a relaxation
        that reaches it is reported as not converged and its rows carry no number.
    optimizer: ASE optimiser of the xTB relaxations (FIRE, LBFGS, BFGS, PreconLBFGS, Sella).
    prerelax: None or a machine-learned potential (chgnet, sevennet) that relaxes each structure
        first; the energy that enters a table is always the target level's own, at its own
        converged geometry.
    mlip: the potential of ``level="mlip"``: a model name of
        :mod:`hetflow.calculators.mlip_models` (``chgnet`` = CHGNet-0.3.0, ``sevennet`` = 7net-0,
        ``chgnet-0.2.0``, ``chgnet-r2scan``, ``7net-l3i5``, ``7net-mf-0``).
    warm_start: relax each configuration from its parent's relaxed geometry (default); False
        relaxes every configuration from the relaxed pristine model instead (the earlier scheme,
        kept for the benchmark that compares the two).
    """

    level: str = "xtb"
    method: str = "GFN1-xTB"
    quick: bool = False
    reference: str = "molecule"
    outdir: Path = Path("hetflow-reproduce")
    store: str | None = None
    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    fmax: float | None = None
    max_steps: int | None = None
    optimizer: str = "FIRE"
    prerelax: str | None = None
    mlip: str = "chgnet"
    warm_start: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise InputError(f"unknown level {self.level!r}; choose one of {', '.join(LEVELS)}")
        if self.reference not in ("molecule", "bulk"):
            raise InputError(f"unknown reference {self.reference!r}; choose molecule or bulk")
        if mlip_models.resolve(self.mlip) is None:
            raise InputError(f"unknown machine-learned potential {self.mlip!r}; choose one of {', '.join(MLIPS)}")
        if self.prerelax is not None and self.prerelax not in PRERELAX:
            raise InputError(f"unknown prerelax {self.prerelax!r}; choose one of {', '.join(PRERELAX)}")
        self.outdir = Path(self.outdir)

    @property
    def store_location(self) -> str:
        return self.store or str(self.outdir / "results.db")

    @property
    def relax_fmax(self) -> float:
        return self.fmax if self.fmax is not None else (QUICK_FMAX if self.quick else FULL_FMAX)

    @property
    def relax_steps(self) -> int:
        return self.max_steps if self.max_steps is not None else MAX_STEPS


def make_spec(opts: RecipeOptions, task: str = "single_point", periodic: bool = False, want_mo: bool = False,
              max_steps: int | None = None, **settings: Any) -> CalcSpec:
    """The CalcSpec of a recipe calculation at ``opts.level`` (pre-relaxer on relaxations only)."""
    steps = opts.relax_steps if max_steps is None else max_steps
    pre = opts.prerelax if task == "relax" else None
    if opts.level == "xtb":
        return CalcSpec(backend="tblite", method=opts.method, task=task, periodic=periodic, want_mo=want_mo,
                        fmax=opts.relax_fmax, max_steps=steps, optimizer=opts.optimizer, settings=settings,
                        prerelax=pre)
    if opts.level == "mlip":
        m = mlip_models.model(opts.mlip)
        return CalcSpec(backend=m.backend, method=m.name, task=task, periodic=periodic, fmax=opts.relax_fmax, max_steps=steps,
                        optimizer=opts.optimizer, settings=settings)
    cp2k_settings = dict(settings)
    if not periodic:
        cp2k_settings.setdefault("vacuum", 8.0 if opts.quick else 12.0)
    return CalcSpec(backend="cp2k", method="PBE", task=task, periodic=periodic, want_mo=want_mo,
                    fmax=opts.relax_fmax, max_steps=steps, settings=cp2k_settings, prerelax=pre)


def make_executor(opts: RecipeOptions):
    from hetflow.workflows.executors import make_executor as _make

    return _make(opts.executor, **opts.executor_options)


def run_workflow(wf: Workflow, opts: RecipeOptions) -> tuple[Any, dict[str, Any]]:
    """Run ``wf`` on the options' store/executor; returns (summary, results by task name)."""
    from hetflow.workflows._engine import Engine
    from hetflow.workflows.store import ResultStore

    opts.outdir.mkdir(parents=True, exist_ok=True)
    store = ResultStore(opts.store_location)
    engine = Engine(wf, store, make_executor(opts), opts.outdir / "work" / wf.name, progress=opts.progress)
    summary = engine.run()
    return summary, engine.results


HALIDE_MOLECULES = {"Cl": "PbCl2-molecule", "Br": "PbBr2-molecule", "I": "PbI2-molecule"}


def reference_structure(halide: str, kind: str) -> Atoms:
    """Starting structure of the PbX2 reference: the bent molecule or bulk (PbCl2 / PbI2)."""
    if kind == "molecule":
        if halide not in HALIDE_MOLECULES:
            raise InputError(f"no PbX2 molecule for halide {halide!r}")
        return get_phase(HALIDE_MOLECULES[halide])
    bulk = {"Cl": "PbCl2", "I": "PbI2"}
    if halide not in bulk:
        raise InputError(f"no bulk Pb{halide}2 phase registered; use reference='molecule'")
    return get_phase(bulk[halide])


def add_references(wf: Workflow, opts: RecipeOptions, halides: tuple[str, ...]) -> dict[str, str]:
    """Add the relaxation of the PbX2 molecule reference of each halide; returns halide → task name.

    Molecules are relaxed in vacuum with the model's method (tight: fmax 0.01 eV/Å).  The bulk
    reference is not a task of the scan: it is the relaxed, Γ-point-converged bulk PbX2 of
    :func:`hetflow.recipes.bulk.converged_bulk_reference` (its own workflow)."""
    names: dict[str, str] = {}
    if opts.reference == "bulk":
        return names
    for h in halides:
        atoms = reference_structure(h, opts.reference)
        if opts.reference == "molecule":
            spec = make_spec(opts, "relax", max_steps=200).replace(fmax=0.01)
        else:
            spec = make_spec(opts, "single_point", periodic=True)
        names[h] = wf.add_calc(f"ref-Pb{h}2-{opts.reference}", atoms, spec)
    return names


def reference_from_results(results: dict[str, Any], names: dict[str, str], opts: RecipeOptions):
    """The energetics :class:`~hetflow.analysis.energetics.Reference` from stored results."""
    from hetflow.analysis.energetics import Reference

    return Reference.from_structures(opts.reference, {h: results[n] for h, n in names.items()},
                                     note=level_name(opts))


def level_name(opts: RecipeOptions) -> str:
    """The level of theory of a recipe, as the reports name it."""
    if opts.level == "xtb":
        return f"{opts.method} (tblite)"
    if opts.level == "mlip":
        return mlip_models.model(opts.mlip).label
    return "PBE (CP2K, paper preset)"
