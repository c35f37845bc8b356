"""Shared plumbing of the recipes: method specs, running a workflow, references (the options,
:class:`RecipeOptions`, are in :mod:`hetflow.recipes.options`, re-exported here).

A recipe builds a :class:`~hetflow.workflows.graph.Workflow` (one task per calculation,
content-keyed, so a rerun only computes what is missing), runs it through the engine on the
chosen executor and store, and hands the stored results to the pure analysis layer.
"""

from __future__ import annotations

from typing import Any

from ase import Atoms

from hetflow.analysis.energetics import Reference
from hetflow.calculators import mlip_models
from hetflow.calculators.base import CalcSpec
from hetflow.errors import InputError
from hetflow.recipes.options import (
    EXECUTORS,
    FULL_FMAX,
    LEVELS,
    MAX_STEPS,
    MLIPS,
    PRERELAX,
    QUICK_FMAX,
    REFERENCES,
    ExecutorOptions,
    RecipeOptions,
)
from hetflow.structures.phases import get_phase
from hetflow.workflows._engine import Engine
from hetflow.workflows.executors import make_executor as _make
from hetflow.workflows.graph import Workflow
from hetflow.workflows.store import ResultStore

__all__ = [
    "make_spec", "make_executor", "run_workflow", "reference_structure", "add_references",
    "reference_from_results", "level_name", "HALIDE_MOLECULES",
    # the options live in :mod:`hetflow.recipes.options` (light, read by the CLI); re-exported here
    "RecipeOptions", "ExecutorOptions", "LEVELS", "REFERENCES", "EXECUTORS", "MLIPS", "PRERELAX",
    "FULL_FMAX", "QUICK_FMAX", "MAX_STEPS",
]

def make_spec(opts: RecipeOptions, task: str = "single_point", periodic: bool = False, want_mo: bool = False,
              max_steps: int | None = None, warm: bool = False, **settings: Any) -> CalcSpec:
    """The CalcSpec of a recipe calculation at ``opts.level`` (pre-relaxer on relaxations only).

    ``warm``: the relaxation starts from a relaxed parent's geometry; ``opts.accelerate`` guides it
    only with ``opts.accelerate_warm`` (near its minimum the target level alone is faster,
    BENCHMARKS.md §14d)."""
    steps = opts.relax_steps if max_steps is None else max_steps
    pre = opts.prerelax if task == "relax" else None
    if opts.level == "xtb":
        guided = task == "relax" and not settings.get("cell_filter") and (opts.accelerate_warm or not warm)
        return CalcSpec(backend="tblite", method=opts.method, task=task, periodic=periodic, want_mo=want_mo,
                        fmax=opts.relax_fmax, max_steps=steps, optimizer=opts.optimizer, settings=settings,
                        prerelax=pre, accelerate=opts.accelerate if guided else None)
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
    return _make(opts.executor, **opts.executor_options)


def run_workflow(wf: Workflow, opts: RecipeOptions) -> tuple[Any, dict[str, Any]]:
    """Run ``wf`` on the options' store/executor; returns (summary, results by task name)."""
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
    return Reference.from_structures(opts.reference, {h: results[n] for h, n in names.items()},
                                     note=level_name(opts))


def level_name(opts: RecipeOptions) -> str:
    """The level of theory of a recipe, as the reports name it."""
    if opts.level == "xtb":
        return f"{opts.method} (tblite)"
    if opts.level == "mlip":
        return mlip_models.model(opts.mlip).label
    return "PBE (CP2K, paper preset)"
